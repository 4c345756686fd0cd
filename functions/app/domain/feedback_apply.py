"""What a batch of feedback events changes: campaign counters, and recipient transitions. Pure.

Counters: bounces, complaints and rejects are counted exactly once (each event's audit record is also its
idempotency marker, written in the same transaction as the counters); sends, deliveries, opens, clicks
and the rest are at-least-once (SNS and SQS may deliver twice; a marker per event would cost a write per
event, ten times what the counters cost).

Transitions: the seam to the recipient lifecycle. `transition_for` is the minimal policy until the
lifecycle's policy document (issue 4) replaces it: hard bounce, complaint (other than not-spam) and
unsubscribe suppress; a soft bounce quarantines; a delivery ends probation. Only an operator leaves
SUPPRESSED.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from app.domain.feedback import FeedbackEvent

EXACT_KINDS = frozenset({"bounce", "complaint", "reject"})
_COUNTER = {
    "send": "sent",
    "delivery": "delivered",
    "complaint": "complaints",
    "reject": "rejects",
    "open": "opens",
    "click": "clicks",
    "rendering_failure": "rendering_failures",
    "delivery_delay": "delivery_delays",
    "subscription": "unsubscribes",
}
ACTIVE, QUARANTINED, RECOVERY, SUPPRESSED = "ACTIVE", "QUARANTINED", "RECOVERY", "SUPPRESSED"


def counter_name(event: FeedbackEvent) -> str:
    if event.kind == "bounce":
        return "hard_bounces" if event.hard else "soft_bounces"
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


@dataclass(frozen=True)
class Transition:
    recipient: str
    from_status: str
    to_status: str
    reason: str
    event_id: str


def transition_for(event: FeedbackEvent, status: str | None) -> Transition | None:
    """The recipient's next status after this event, or None when the event changes nothing."""
    if status is None or status == SUPPRESSED:
        return None  # unknown recipients are not ours to track; only an operator reinstates
    target, reason = None, ""
    if event.kind == "bounce" and event.hard:
        target, reason = SUPPRESSED, f"hard bounce ({event.bounce_type}/{event.bounce_subtype})"
    elif event.kind == "complaint" and (event.complaint_type or "").lower() != "not-spam":
        target, reason = SUPPRESSED, f"complaint ({event.complaint_type or 'no feedback type'})"
    elif event.kind == "subscription" and event.detail.get("unsubscribeAll"):
        target, reason = SUPPRESSED, "unsubscribed"
    elif event.kind == "bounce" and status in (ACTIVE, RECOVERY):
        target, reason = QUARANTINED, f"soft bounce ({event.bounce_type}/{event.bounce_subtype})"
    elif event.kind == "delivery" and status == RECOVERY:
        target, reason = ACTIVE, "delivered during probation"
    if target is None or target == status:
        return None
    return Transition(event.recipient, status, target, reason, event.event_id)
