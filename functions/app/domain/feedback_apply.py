"""What a batch of feedback events adds to its campaigns' counters. Pure.

Counters: bounces, complaints and rejects are counted exactly once (each event's audit record is also its
idempotency marker, written in the same transaction as the counters); sends, deliveries, opens, clicks
and the rest are at-least-once (SNS and SQS may deliver twice; a marker per event would cost a write per
event, ten times what the counters cost).

Opens and clicks a machine made (app.domain.engagement.is_machine: a scanner, a prefetching proxy) count as
`machine_opens` and `machine_clicks`, never as `opens` and `clicks`: those are people's.

What an event does to its recipient is app.domain.lifecycle's to decide.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from app.domain.engagement import is_machine
from app.domain.feedback import FeedbackEvent

EXACT_KINDS = frozenset({"bounce", "complaint", "reject"})
_COUNTER = {
    "send": "ses_sends",  # SES Send events; `sent`, exact, is SendBatch's own count
    "delivery": "delivered",
    "complaint": "complaints",
    "reject": "rejects",
    "open": "opens",
    "click": "clicks",
    "rendering_failure": "rendering_failures",
    "delivery_delay": "delivery_delays",
    "subscription": "unsubscribes",
}


_MACHINE_COUNTER = {"open": "machine_opens", "click": "machine_clicks"}


def counter_name(event: FeedbackEvent) -> str:
    if event.kind == "bounce":
        return "hard_bounces" if event.hard else "soft_bounces"
    if event.kind in _MACHINE_COUNTER and is_machine(event):
        return _MACHINE_COUNTER[event.kind]
    return _COUNTER[event.kind]


def tally(events: Iterable[FeedbackEvent]) -> dict[str, Counter[str]]:
    """Counter increments per campaign: `name` for the campaign and `name#variant` per variant."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for event in events:
        if event.campaign_id is None:
            continue
        name = counter_name(event)
        counts[event.campaign_id][name] += 1
        if event.variant:
            counts[event.campaign_id][f"{name}#{event.variant}"] += 1
    return dict(counts)
