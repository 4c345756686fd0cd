"""Applies one Lambda batch of parsed feedback to DynamoDB and the lifecycle workflow (the I/O side).

Per batch: events without tags find their campaign through SendsTable's MessageIdIndex; per campaign,
one transaction writes the exact events' audit records (each also the event's idempotency marker:
a conditional put keyed by the event) together with one counter update; then recipients change status
by conditional, versioned writes, and soft bounces start a quarantine episode.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from app.clients import client
from app.domain.feedback import FeedbackEvent
from app.domain.feedback_apply import EXACT_KINDS, QUARANTINED, SUPPRESSED, Transition, tally, transition_for
from app.observability import logger
from app.settings import Settings

AUDIT_RETENTION = timedelta(days=400)
QUARANTINE_SECONDS = 86_400  # the first strike's rest; the lifecycle policy (issue 4) grows it
_TRANSACTION_LIMIT = 100
_CONFLICT_RETRIES = 4
_RANK = {"ACTIVE": 0, "RECOVERY": 1, "QUARANTINED": 2, "SUPPRESSED": 3}


def redact(address: str) -> str:
    """Addresses never appear in logs: a short stable hash lets an operator correlate lines."""
    return "rcpt-" + hashlib.sha256(address.encode()).hexdigest()[:12]


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in item.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = {"BOOL": value}
        elif isinstance(value, int | float):
            out[key] = {"N": str(value)}
        else:
            out[key] = {"S": str(value)}
    return out


def resolve_campaigns(events: list[FeedbackEvent], settings: Settings) -> list[FeedbackEvent]:
    """Identity notifications carry no tags: find campaign and variant from the message id we recorded."""
    found: dict[str, tuple[str, str | None]] = {}
    ddb = client("dynamodb")
    for message_id in {e.message_id for e in events if e.campaign_id is None}:
        page = ddb.query(
            TableName=settings.sends_table, IndexName="MessageIdIndex", Limit=1,
            KeyConditionExpression="message_id = :m", ExpressionAttributeValues={":m": {"S": message_id}},
        )
        if page["Items"]:
            item = page["Items"][0]
            found[message_id] = (item["campaign_id"]["S"], item.get("variant", {}).get("S"))
    return [
        dataclasses.replace(e, campaign_id=found[e.message_id][0], variant=found[e.message_id][1])
        if e.campaign_id is None and e.message_id in found else e
        for e in events
    ]


def recipient_statuses(addresses: set[str], settings: Settings) -> dict[str, str]:
    statuses: dict[str, str] = {}
    ddb = client("dynamodb")
    keys = [{"address": {"S": a}} for a in sorted(addresses)]
    for start in range(0, len(keys), 100):  # BatchGetItem's limit
        request = {settings.recipients_table: {
            "Keys": keys[start : start + 100], "ProjectionExpression": "address, #s",
            "ExpressionAttributeNames": {"#s": "status"}}}
        while request:
            response = ddb.batch_get_item(RequestItems=request)
            for item in response["Responses"].get(settings.recipients_table, []):
                statuses[item["address"]["S"]] = item.get("status", {}).get("S", "ACTIVE")
            request = response.get("UnprocessedKeys") or {}
    return statuses


def audit_item(event: FeedbackEvent, transition: Transition | None, now: datetime) -> dict[str, Any]:
    return serialize({
        "pk": f"RECIPIENT#{event.recipient}",
        # Deterministic from the event alone, so the same event delivered twice hits the same key.
        "sk": f"{event.timestamp or '0'}#{event.event_id}",
        "event_id": event.event_id,
        "kind": event.kind,
        "campaign_id": event.campaign_id,
        "variant": event.variant,
        "message_id": event.message_id,
        "bounce_type": event.bounce_type,
        "bounce_subtype": event.bounce_subtype,
        "complaint_type": event.complaint_type,
        "from_status": transition.from_status if transition else None,
        "to_status": transition.to_status if transition else None,
        "reason": transition.reason if transition else None,
        "actor": "ses-feedback",
        "recorded_at": now.isoformat(),
        "expires_at": int((now + AUDIT_RETENTION).timestamp()),
    })


def stats_update(campaign_id: str, counts: Counter[str], settings: Settings) -> dict[str, Any]:
    names = {f"#c{i}": name for i, name in enumerate(sorted(counts))}
    return {"Update": {
        "TableName": settings.campaigns_table,
        # The campaign's counters, in one small item beside it: what the breaker reads.
        "Key": {"campaign_id": {"S": f"{campaign_id}#stats"}},
        "UpdateExpression": "ADD " + ", ".join(f"{alias} :v{alias[2:]}" for alias in names),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {f":v{alias[2:]}": {"N": str(counts[n])} for alias, n in names.items()},
    }}


def status_update(transition: Transition, now: datetime) -> dict[str, Any]:
    """Conditional, versioned status write: it applies only if the recipient is still where we read it."""
    return {
        "TableName": None,  # set by the caller
        "Key": {"address": {"S": transition.recipient}},
        "UpdateExpression": "SET #s = :to, status_reason = :why, status_event = :event, status_changed_at = :now "
                            "ADD version :one",
        "ConditionExpression": "#s = :from OR (attribute_not_exists(#s) AND :from = :active)",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": serialize({
            ":to": transition.to_status, ":from": transition.from_status, ":why": transition.reason,
            ":event": transition.event_id, ":now": now.isoformat(), ":one": 1, ":active": "ACTIVE"}),
    }


def record_once(exact: list[FeedbackEvent], counts: Counter[str] | None, campaign_id: str | None,
                transitions: dict[str, Transition], settings: Settings, now: datetime) -> set[str]:
    """One transaction per chunk: the new events' audit records, the suppressions they cause, and the counters.

    All or nothing, so a failure after it cannot lose a suppression, and a retry finds every event done.
    Returns the ids of the events applied now (duplicates are left out).
    """
    ddb = client("dynamodb")
    applied: set[str] = set()
    chunk_size = _TRANSACTION_LIMIT // 2 - 1  # each event may bring its status write along
    chunks = [exact[i : i + chunk_size] for i in range(0, len(exact), chunk_size)] or [[]]
    for index, chunk in enumerate(chunks):
        pending = list(chunk)
        loose = Counter(counts or {}) if index == 0 else Counter()
        conflicts = 0
        while True:  # each pass drops what failed its condition, so it ends
            items: list[dict[str, Any]] = []
            owners: list[tuple[str, FeedbackEvent | None]] = []
            for event in pending:
                transition = transitions.get(event.event_id)
                items.append({"Put": {
                    "TableName": settings.events_table, "Item": audit_item(event, transition, now),
                    # A tagged copy may complete a marker an untagged identity notification left first.
                    "ConditionExpression": "attribute_not_exists(pk)" if event.campaign_id is None
                    else "attribute_not_exists(pk) OR attribute_not_exists(campaign_id)"}})
                owners.append(("audit", event))
                if transition and transition.to_status == SUPPRESSED:
                    items.append({"Update": {**status_update(transition, now), "TableName": settings.recipients_table}})
                    owners.append(("status", event))
            chunk_counts = loose + tally_exact(pending)
            if campaign_id is not None and chunk_counts:
                items.append(stats_update(campaign_id, chunk_counts, settings))
                owners.append(("stats", None))
            if not items:
                break
            try:
                ddb.transact_write_items(TransactItems=items)
                applied.update(e.event_id for e in pending)
                break
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                codes = [r.get("Code") for r in error.response.get("CancellationReasons") or []]
                failed = [(owners[i], code) for i, code in enumerate(codes) if code == "ConditionalCheckFailed"]
                for (kind, event), _ in failed:
                    if kind == "audit":  # already applied: a duplicate
                        pending = [e for e in pending if e is not event]
                    elif kind == "status":  # the recipient changed meanwhile: no transition from here
                        transitions.pop(event.event_id, None)
                if failed:
                    continue
                if "TransactionConflict" not in codes or conflicts == _CONFLICT_RETRIES:
                    raise
                conflicts += 1
                time.sleep(random.uniform(0, 0.05 * 2**conflicts))  # another batch is on the same counters
    return applied


def tally_exact(events: list[FeedbackEvent]) -> Counter[str]:
    return next(iter(tally(events).values()), Counter())


def apply_transition(transition: Transition, settings: Settings, now: datetime) -> bool:
    try:
        client("dynamodb").update_item(**{**status_update(transition, now), "TableName": settings.recipients_table})
        return True
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            logger.info("recipient changed meanwhile; transition skipped",
                        extra={"recipient": redact(transition.recipient), "event_id": transition.event_id})
            return False
        raise


def start_quarantine(transition: Transition, lifecycle_arn: str) -> None:
    """Quarantine is an episode of the lifecycle workflow; the execution name makes it start once per event."""
    try:
        client("stepfunctions").start_execution(
            stateMachineArn=lifecycle_arn,
            name=f"quarantine-{transition.event_id}",
            input=json.dumps({"address": transition.recipient, "quarantine_seconds": QUARANTINE_SECONDS,
                              "reason": transition.reason, "event_id": transition.event_id}),
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise


def apply_events(events: list[FeedbackEvent], settings: Settings, lifecycle_arn: str) -> dict[str, int]:
    """Everything a batch changes. Safe to run again on the same events (SQS redelivery)."""
    now = datetime.now(UTC)
    # The same event twice in one batch (SNS retries, both routes) is one event, the copy that knows its
    # campaign if any (a transaction may not touch one item twice anyway).
    unique: dict[str, FeedbackEvent] = {}
    for event in resolve_campaigns(events, settings):
        if event.event_id not in unique or unique[event.event_id].campaign_id is None:
            unique[event.event_id] = event
    events = list(unique.values())
    statuses = recipient_statuses({e.recipient for e in events if e.kind in EXACT_KINDS | {"delivery",
                                                                                        "subscription"}}, settings)
    # A recipient moves at most once per batch (from the status read above), the strongest move winning;
    # the next batch starts from the new status.
    strongest: dict[str, Transition] = {}
    for event in events:
        transition = transition_for(event, statuses.get(event.recipient))
        held = strongest.get(event.recipient)
        if transition and (held is None or _RANK[transition.to_status] > _RANK[held.to_status]):
            strongest[event.recipient] = transition
    transitions = {t.event_id: t for t in strongest.values()}

    exact_by_campaign: dict[str | None, list[FeedbackEvent]] = defaultdict(list)
    for event in events:
        if event.kind in EXACT_KINDS:
            exact_by_campaign[event.campaign_id].append(event)
    loose = tally(e for e in events if e.kind not in EXACT_KINDS)
    applied: set[str] = set()
    for campaign_id in set(exact_by_campaign) | set(loose):
        applied |= record_once(exact_by_campaign.get(campaign_id, []), loose.get(campaign_id), campaign_id,
                               transitions, settings, now)

    changed = sum(1 for e in events if e.event_id in applied and e.event_id in transitions
                  and transitions[e.event_id].to_status == SUPPRESSED)
    for event in events:
        transition = transitions.get(event.event_id)
        # Suppressions of exact kinds were written in their transaction. Quarantine starts are named after
        # their event, so starting again after a failed batch is safe; deliveries and unsubscribes are
        # idempotent by their condition (RECOVERY -> ACTIVE happens once) and get their audit record here.
        if transition is None or (event.kind in EXACT_KINDS and transition.to_status == SUPPRESSED):
            continue
        if transition.to_status == QUARANTINED:
            start_quarantine(transition, lifecycle_arn)
            changed += 1
        elif apply_transition(transition, settings, now):
            changed += 1
            if event.kind not in EXACT_KINDS:
                client("dynamodb").put_item(TableName=settings.events_table,
                                            Item=audit_item(event, transition, now))
        logger.info("recipient transition", extra={
            "recipient": redact(transition.recipient), "from": transition.from_status,
            "to": transition.to_status, "event_id": transition.event_id})
    return {"events": len(events), "applied_exact": len(applied), "transitions": changed}
