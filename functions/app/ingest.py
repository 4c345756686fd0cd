"""Applies one Lambda batch of parsed feedback to DynamoDB and the lifecycle workflow (the I/O side).

Per batch: the recipients the events concern are read once; each recipient's events are folded through the
lifecycle policy in time order (app.domain.lifecycle.decide); then transactions write, all or nothing, per
recipient: the audit record of each bounce, complaint and reject (also the event's idempotency marker: a
conditional put keyed by the event), the recipient's new state (conditional on the version read) and the
campaign counters. A replayed event finds its marker and changes nothing; a recipient changed meanwhile is read
again and decided again. After the write, episodes start (a soft bounce quarantines) or end (the recipient moved
on), the campaigns' other counters are added, send batches with unknown outcomes are reconciled, and the breaker
of each campaign that got a bounce or a complaint is evaluated.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from app import campaign_breaker, campaign_control, clock, recipients, sends
from app.clients import client
from app.domain import engagement, lifecycle
from app.domain.feedback import FeedbackEvent
from app.domain.feedback_apply import EXACT_KINDS, tally
from app.domain.lifecycle import Decision, Policy
from app.observability import logger, redact
from app.recipients import Stored
from app.settings import Settings

# The kinds that can move a recipient (app.domain.lifecycle.decide); the rest only count.
LIFECYCLE_KINDS = frozenset({"bounce", "complaint", "delivery", "subscription"})
_TRANSACTION_LIMIT = 100
_EVENTS_PER_RECIPIENT = 40  # per transaction; a recipient's further events wait for the next pass
_CONFLICT_RETRIES = 4
UNIQUE_MARKER_RETENTION = timedelta(days=30)
_MAX_PASSES = 20  # each pass writes, or learns why it could not (a duplicate, a recipient changed)


def event_time(event: FeedbackEvent, now: datetime) -> datetime:
    """When SES says it happened: strikes, windows and deadlines count from there, so a replay decides alike."""
    if event.timestamp:
        try:
            moment = datetime.fromisoformat(event.timestamp.replace("Z", "+00:00"))
            if moment.tzinfo is not None:
                return moment
        except ValueError:
            pass
    return now


def marker_key(event: FeedbackEvent) -> dict[str, Any]:
    # Deterministic from the event alone, so the same event delivered twice hits the same key.
    sort_key = f"{event.timestamp or '0'}#{event.event_id}"
    return {"pk": {"S": recipients.audit_pk(event.recipient)}, "sk": {"S": sort_key}}


def event_record(event: FeedbackEvent, decision: Decision | None, now: datetime) -> dict[str, Any]:
    """An event's audit record: what SES said, and the transition it caused, if any."""
    item = recipients.audit_record(event.recipient, decision, event_id=event.event_id, actor="ses-feedback", at=now,
                                   extra={"kind": event.kind, "campaign_id": event.campaign_id,
                                          "variant": event.variant, "message_id": event.message_id,
                                          "bounce_type": event.bounce_type, "bounce_subtype": event.bounce_subtype,
                                          "complaint_type": event.complaint_type})
    return {**item, **marker_key(event)}


@dataclasses.dataclass
class _Unit:
    """One recipient's share of a transaction: its items, and what each item stands for."""

    address: str
    items: list[dict[str, Any]]
    owners: list[tuple[str, FeedbackEvent | None]]
    exact: list[FeedbackEvent]
    decisions: list[tuple[Decision, FeedbackEvent]]
    episode: str | None


class _Batch:
    """The state of applying one batch: pending events, how each marker is written, recipients as read."""

    def __init__(self, events: list[FeedbackEvent], stored: dict[str, Stored], policy: Policy, now: datetime,
                 settings: Settings) -> None:
        self.pending: dict[str, list[FeedbackEvent]] = defaultdict(list)
        for event in sorted(events, key=lambda e: (e.timestamp or "", e.event_id)):
            self.pending[event.recipient].append(event)
        self.stored, self.policy, self.now, self.settings = stored, policy, now, settings
        self.completing: set[str] = set()  # events whose marker an untagged copy left: counters only
        self.applied: set[str] = set()
        self.moved: list[tuple[Stored, list[tuple[Decision, FeedbackEvent]], str | None]] = []

    def unit(self, address: str) -> _Unit:
        stored, events = self.stored[address], self.pending[address][:_EVENTS_PER_RECIPIENT]
        state, decisions = stored.state, []
        for event in events:
            if event.event_id in self.completing or not stored.exists:
                continue  # its lifecycle effect is already applied, or the recipient is not ours to track
            at = event_time(event, self.now)
            if stored.reinstated_at and at < stored.reinstated_at:
                continue  # about mail from before an operator reinstated it
            decision = lifecycle.decide(self.policy, state, event, at)
            if decision:
                decisions.append((decision, event))
                state = decision.state
        caused = {event.event_id: decision for decision, event in decisions}
        items, owners = [], []
        for event in events:
            if event.kind in EXACT_KINDS and event.event_id in self.completing:
                items.append({"Update": {
                    "TableName": self.settings.events_table, "Key": marker_key(event),
                    "UpdateExpression": "SET campaign_id = :c, variant = :v",
                    "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(campaign_id)",
                    "ExpressionAttributeValues": {":c": {"S": event.campaign_id}, ":v": {"S": event.variant or "-"}},
                }})
                owners.append(("completion", event))
            elif event.kind in EXACT_KINDS or event.event_id in caused:
                put = {"TableName": self.settings.events_table,
                       "Item": event_record(event, caused.get(event.event_id), self.now)}
                if event.kind in EXACT_KINDS:
                    put["ConditionExpression"] = "attribute_not_exists(pk)"
                items.append({"Put": put})
                owners.append(("marker" if event.kind in EXACT_KINDS else "audit", event))
        episode = stored.episode
        if decisions:
            episode = recipients.episode_after(stored, [(d, e.event_id) for d, e in decisions])
            last = decisions[-1]
            update = recipients.transition_update(stored, last[0], episode, last[1].event_id, self.settings, self.now)
            items.append(update)
            owners.append(("recipient", None))
        exact = [e for e in events if e.kind in EXACT_KINDS]
        return _Unit(address, items, owners, exact, decisions, episode)

    def run_pass(self) -> None:
        """Write every recipient's next events, in transactions of at most 100 items."""
        chunk: list[_Unit] = []
        size = 0
        for address in sorted(a for a, events in self.pending.items() if events):
            unit = self.unit(address)
            campaigns = {e.campaign_id for u in [*chunk, unit] for e in u.exact if e.campaign_id}
            if chunk and size + len(unit.items) + len(campaigns) > _TRANSACTION_LIMIT:
                self.commit(chunk)
                chunk, size = [], 0
            chunk.append(unit)
            size += len(unit.items)
        if chunk:
            self.commit(chunk)

    def commit(self, units: list[_Unit]) -> None:
        items = [item for u in units for item in u.items]
        owners = [(u, kind, event) for u in units for kind, event in u.owners]
        counts = tally(e for u in units for e in u.exact)
        for campaign_id, counter in sorted(counts.items()):
            items.append({"Update": campaign_control.counts_update(campaign_id, counter, self.settings)})
            owners.append((None, "stats", None))
        if not items:
            self.finish(units)
            return
        for attempt in range(_CONFLICT_RETRIES + 1):
            try:
                client("dynamodb").transact_write_items(TransactItems=items)
                self.finish(units)
                return
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                codes = [r.get("Code") for r in error.response.get("CancellationReasons") or []]
                failed = [owners[i] for i, code in enumerate(codes) if code == "ConditionalCheckFailed"]
                if failed:
                    self.learn(failed)  # nothing was written; the next pass decides again from what is known now
                    return
                if "TransactionConflict" not in codes or attempt == _CONFLICT_RETRIES:
                    raise
                time.sleep(random.uniform(0, 0.05 * 2**attempt))  # another batch is on the same items

    def learn(self, failed: list[tuple[_Unit | None, str, FeedbackEvent | None]]) -> None:
        for unit, kind, event in failed:
            if kind == "marker" and event is not None:
                marker = client("dynamodb").get_item(TableName=self.settings.events_table, Key=marker_key(event),
                                                     ConsistentRead=True).get("Item", {})
                if event.campaign_id and marker and "campaign_id" not in marker:
                    self.completing.add(event.event_id)  # a tagged copy of an identity notification we applied
                else:
                    self._drop(event)  # applied before: a duplicate
            elif kind == "completion" and event is not None:
                self._drop(event)
            elif kind == "recipient" and unit is not None:
                self.stored.update(recipients.read({unit.address}, self.settings, consistent=True))

    def _drop(self, event: FeedbackEvent) -> None:
        self.pending[event.recipient] = [e for e in self.pending[event.recipient] if e.event_id != event.event_id]

    def finish(self, units: list[_Unit]) -> None:
        for unit in units:
            self.applied |= {e.event_id for e in unit.exact}
            self.pending[unit.address] = self.pending[unit.address][_EVENTS_PER_RECIPIENT:]
            if unit.decisions:
                before = self.stored[unit.address]
                self.moved.append((before, unit.decisions, unit.episode))
                final = unit.decisions[-1][0]
                self.stored[unit.address] = dataclasses.replace(
                    before, state=final.state, episode=unit.episode,
                    episode_token=before.episode_token if unit.episode == before.episode else None)


def count_unique_engagement(events: list[FeedbackEvent], settings: Settings) -> None:
    """Test-then-winner and bandit compare unique openers or clickers per variant (some people open ten times): while a
    campaign counts them (app.domain.engagement.counts_unique), the first human open and the first human click of
    each recipient get a marker (EventsTable, conditional put) and count as unique_opens / unique_clicks. A machine's
    open or click (engagement.is_machine: a scanner, Apple's privacy proxy) takes no marker, so the person's own
    later open still counts; tally() counts it as machine_opens / machine_clicks. Other campaigns skip this write.
    At most once: a crash between the marker and the counter loses that count."""
    engaged = {(e.campaign_id, e.recipient, e.kind): e for e in events
               if e.kind in engagement.ENGAGEMENT_KINDS and e.campaign_id and not engagement.is_machine(e)}
    if not engaged:
        return
    ddb = client("dynamodb")
    testing = {}
    for campaign_id in {c for c, _, _ in engaged}:
        item = ddb.get_item(TableName=settings.campaigns_table, Key={"campaign_id": {"S": campaign_id}},
                            ProjectionExpression="#d, decision, #s",
                            ExpressionAttributeNames={"#d": "definition", "#s": "status"}).get("Item", {})
        definition = json.loads(item["definition"]["S"]) if "definition" in item else {}
        ended = item.get("status", {}).get("S") in (campaign_control.COMPLETED, campaign_control.CANCELLED)
        testing[campaign_id] = engagement.counts_unique(definition, decided="decision" in item, ended=ended)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    expires = int((clock.now() + UNIQUE_MARKER_RETENTION).timestamp())
    for (campaign_id, recipient, kind), event in sorted(engaged.items()):
        if not testing[campaign_id]:
            continue
        try:
            ddb.put_item(TableName=settings.events_table, ConditionExpression="attribute_not_exists(pk)", Item={
                "pk": {"S": f"ENGAGED#{campaign_id}"}, "sk": {"S": f"{kind}#{recipient}"},
                "expires_at": {"N": str(expires)}})
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                continue  # not this recipient's first
            raise
        counts[campaign_id][f"unique_{kind}s"] += 1
        if event.variant:
            counts[campaign_id][f"unique_{kind}s#{event.variant}"] += 1
    for campaign_id, counter in sorted(counts.items()):
        campaign_control.add_counts(campaign_id, counter, settings)


def reconcile(events: list[FeedbackEvent], settings: Settings) -> None:
    """Any event about a message proves its SES call was made. For the calls whose outcome was unknown (listed on
    their campaign's counters item, read once per batch), record which of their recipients the events name."""
    tagged = [e for e in events if e.campaign_id and e.batch and e.call is not None]
    unknown = campaign_control.unknown_calls({e.campaign_id for e in tagged}, settings) if tagged else {}
    seen: dict[tuple[str, str, int], set[str]] = defaultdict(set)
    for e in tagged:
        batch = e.batch.replace("-", "#", 1)
        if sends.call_id(batch, e.call) in unknown.get(e.campaign_id, ()):
            seen[(e.campaign_id, batch, e.call)].add(e.recipient)
    for (campaign_id, batch, call), addresses in sorted(seen.items()):
        sends.confirm(campaign_id, batch, call, addresses, settings)


def rendering_failure(event: FeedbackEvent) -> dict[str, Any]:
    """A Rendering Failure as app.campaign_breaker.failure() takes it: SES's errorMessage, the batch and recipient."""
    return {"code": "RenderingFailure",
            "message": str(event.detail.get("errorMessage") or "SES could not render the message"),
            "batch": event.batch.replace("-", "#", 1) if event.batch else None, "recipient": event.recipient}


def apply_events(events: list[FeedbackEvent], settings: Settings, lifecycle_arn: str,
                 policy: Policy | None = None) -> dict[str, int]:
    """Everything a batch changes. Safe to run again on the same events (SQS redelivery)."""
    policy = policy or lifecycle.load_policy()
    now = clock.now()
    # The same event twice in one batch (SNS retries, both routes) is one event, the copy that knows its
    # campaign if any (a transaction may not touch one item twice anyway).
    unique: dict[str, FeedbackEvent] = {}
    for event in events:
        if event.event_id not in unique or unique[event.event_id].campaign_id is None:
            unique[event.event_id] = event
    events = list(unique.values())
    written = [e for e in events if e.kind in EXACT_KINDS or e.kind in LIFECYCLE_KINDS]
    stored = recipients.read({e.recipient for e in written}, settings)
    batch = _Batch(written, dict(stored), policy, now, settings)
    for _ in range(_MAX_PASSES):
        if not any(batch.pending.values()):
            break
        batch.run_pass()
    else:
        raise RuntimeError(f"recipients kept changing under {_MAX_PASSES} passes; the batch will be retried")

    loose = tally(e for e in events if e.kind not in EXACT_KINDS)
    for campaign_id, counter in sorted(loose.items()):
        campaign_control.add_counts(campaign_id, counter, settings)  # at least once
    count_unique_engagement(events, settings)
    reconcile(events, settings)
    # The breaker, as feedback arrives: a campaign that just got bounces or complaints is evaluated now.
    for campaign_id in sorted({e.campaign_id for e in events if e.kind in EXACT_KINDS and e.campaign_id}):
        campaign_breaker.check_by_id(campaign_id, settings)
    # Messages SES accepted and could not render: too many of them fail the campaign (as a missing template would).
    unrendered = {e.campaign_id: e for e in sorted(events, key=lambda e: e.event_id)
                  if e.kind == "rendering_failure" and e.campaign_id}
    for campaign_id, event in sorted(unrendered.items()):
        campaign_breaker.check_rendering(campaign_id, rendering_failure(event), settings)

    started: set[str] = set()
    for before, decisions, episode in batch.moved:
        final = decisions[-1][0]
        if episode != before.episode:
            recipients.end_episode(before, final)
        if episode and episode != before.episode and final.state.quarantined_until:
            recipients.start_episode(before.address, episode, final.state.quarantined_until, policy, lifecycle_arn)
            started.add(before.address)
        for decision, event in decisions:
            logger.info("recipient transition", extra={
                "recipient": redact(before.address), "from": decision.from_status, "to": decision.to_status,
                "cause": decision.cause, "event_id": event.event_id})
    # A batch that failed after its write comes back with its events already applied: the episode one of them
    # began must still run (starting it again is a no-op).
    batch_ids = {e.event_id for e in events}
    for address, was in stored.items():
        if (address not in started and was.state.status == lifecycle.QUARANTINED and was.episode in batch_ids
                and was.state.quarantined_until):
            recipients.start_episode(address, was.episode, was.state.quarantined_until, policy, lifecycle_arn)
    return {"events": len(events), "applied_exact": len(batch.applied),
            "transitions": sum(len(decisions) for _, decisions, _ in batch.moved)}
