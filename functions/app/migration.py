"""The contacts migration's reads and writes: one segment of a parallel Scan of RecipientsTable, page by page, each
item decided by app.domain.migration.plan_item and written here (docs/contacts.md).

An item to migrate costs two calls, in this order:
1. its membership, put only if the contact is on no such list yet (ConditionExpression attribute_not_exists): a
   membership that exists, in any state and from any writer, is kept whole, never a mix of two writers' fields;
2. one transaction of the contact's update, `REMOVE list_id` on condition that list_id is still the value read
   (created_by gets "migration" if it has none), and its "migrated" record in the contact's history.
A crash between them leaves the membership and the list_id, so a retry (or the next run) does 2 again and writes
nothing new in 1. An item without list_id costs nothing but its read: running the migration again writes nothing.
Status, strikes, the other lifecycle fields and the attributes are never in an update expression.

Each list met is registered once per call (EventsTable pk LISTS, as app.contacts.register_list does).

The history record and the list's registration are written here as app.recipients.audit_record and
app.contacts.register_list write them (tests/unit/test_migration.py holds them equal), not imported: those modules
also start and end lifecycle episodes (Step Functions), which this function neither does nor is granted, and
tests/checks/test_iam.py counts every call of every module a handler imports.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from app import clock
from app.clients import client
from app.domain import migration
from app.domain.migration import Counts, ItemPlan, MembershipPlan
from app.observability import logger, redact
from app.settings import Settings

AUDIT_RETENTION = timedelta(days=400)  # app.recipients.AUDIT_RETENTION: a history record's TTL
LISTS_PK = "LISTS"  # app.contacts.LISTS_PK
_plain = TypeDeserializer()
_NAMES = {f"#a{i}": name for i, name in enumerate(migration.READ)}
_PROJECTION = ", ".join(_NAMES)


def migrate_segment(segment: int, total_segments: int, cursor: dict[str, Any] | None, *, run: str, dry_run: bool,
                    page_items: int, more: Callable[[int], bool], settings: Settings,
                    counts: Counts | None = None) -> tuple[dict[str, Any] | None, Counts, int]:
    """Scan segment `segment` of `total_segments` from `cursor` (a LastEvaluatedKey of this segment; None: its
    start), `page_items` items a page, migrating each page whole before the next, until the segment ends or
    `more(pages read)` says stop. Returns the cursor to go on from (None: the segment is done), `counts` plus what
    this call did, and the pages read. `dry_run`: decide and count, write nothing."""
    counts = Counts(**counts.to_dict()) if counts is not None else Counts()
    request: dict[str, Any] = {
        "TableName": settings.recipients_table, "Segment": segment, "TotalSegments": total_segments,
        "Limit": page_items, "ProjectionExpression": _PROJECTION, "ExpressionAttributeNames": _NAMES}
    ddb, pages = client("dynamodb"), 0
    registered: set[str] = set()
    while True:
        if cursor:
            request["ExclusiveStartKey"] = cursor
        page = ddb.scan(**request)
        pages += 1
        now = clock.now()
        for raw in page["Items"]:
            plan = migration.plan_item({k: _plain.deserialize(v) for k, v in raw.items()}, iso(now))
            counts.count(plan)
            if plan.problem:
                logger.warning("left as it is", extra={"address": redact(str(raw.get("address", {}).get("S"))),
                                                       "problem": plan.problem})
            if plan.membership is None or dry_run:
                continue
            if plan.membership.list_id not in registered:
                register_list(plan.membership.list_id, now, settings)
                registered.add(plan.membership.list_id)
            migrate_item(plan, counts, run=run, now=now, settings=settings)
        cursor = page.get("LastEvaluatedKey")
        if cursor is None or not more(pages):
            return cursor, counts, pages


def migrate_item(plan: ItemPlan, counts: Counts, *, run: str, now: datetime, settings: Settings) -> None:
    """The two writes of one item to migrate (the module's docstring), counted."""
    assert plan.membership is not None
    if not put_membership(plan.membership, settings):
        counts.memberships_kept += 1
    if not detach_list(plan.membership, run=run, now=now, settings=settings):
        counts.changed(plan)


def put_membership(membership: MembershipPlan, settings: Settings) -> bool:
    """Write the membership unless the contact is on that list already; False when it was (nothing written)."""
    sets = ["#state = :state", "state_at = :at", "state_source = :source", "added_at = :added"]
    values = {":state": {"S": membership.state}, ":at": {"S": membership.state_at},
              ":source": {"S": membership.state_source}, ":added": {"S": membership.added_at}}
    if membership.state_reason:
        sets.append("state_reason = :reason")
        values[":reason"] = {"S": membership.state_reason}
    try:
        client("dynamodb").update_item(
            TableName=settings.memberships_table,
            Key={"list_id": {"S": membership.list_id}, "address": {"S": membership.address}},
            UpdateExpression="SET " + ", ".join(sets), ConditionExpression="attribute_not_exists(address)",
            ExpressionAttributeNames={"#state": "state"}, ExpressionAttributeValues=values)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def detach_list(membership: MembershipPlan, *, run: str, now: datetime, settings: Settings) -> bool:
    """REMOVE list_id from the contact if it is still `membership.list_id`, with the contact's "migrated" history
    record, in one transaction. False when list_id is no longer that value (nothing written)."""
    record = history_record(membership.address, f"migration-{run}", now,
                            {"kind": "migrated", "list_id": membership.list_id, "state": membership.state})
    try:
        client("dynamodb").transact_write_items(TransactItems=[
            {"Update": {
                "TableName": settings.recipients_table, "Key": {"address": {"S": membership.address}},
                "UpdateExpression": "SET created_by = if_not_exists(created_by, :by) REMOVE list_id",
                "ConditionExpression": "list_id = :list",
                "ExpressionAttributeValues": {":list": {"S": membership.list_id}, ":by": {"S": migration.SOURCE}},
            }},
            {"Put": {"TableName": settings.events_table, "Item": record}},
        ])
    except ClientError as error:
        reasons = [r.get("Code") for r in error.response.get("CancellationReasons") or []]
        if error.response["Error"]["Code"] == "TransactionCanceledException" and reasons[:1] == [
                "ConditionalCheckFailed"]:
            return False
        raise
    return True


def register_list(list_id: str, now: datetime, settings: Settings) -> None:
    """Record that the list exists, once (the item app.contacts.register_list writes on a list's first import)."""
    try:
        client("dynamodb").put_item(
            TableName=settings.events_table, ConditionExpression="attribute_not_exists(pk)",
            Item={"pk": {"S": LISTS_PK}, "sk": {"S": list_id}, "created_at": {"S": iso(now)}})
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


def history_record(address: str, event_id: str, at: datetime, extra: dict[str, Any]) -> dict[str, Any]:
    """One entry of the contact's history (EventsTable pk RECIPIENT#<address>), as app.recipients.audit_record
    writes one that moves no status, the actor being the migration."""
    fields = {"pk": f"RECIPIENT#{address}", "sk": f"{iso(at)}#{event_id}", "event_id": event_id,
              "actor": migration.SOURCE, "recorded_at": iso(at), "expires_at": int((at + AUDIT_RETENTION).timestamp()),
              **extra}
    return {k: ({"N": str(v)} if isinstance(v, int) else {"S": str(v)}) for k, v in fields.items() if v is not None}


def iso(moment: datetime) -> str:
    """app.recipients.iso: 2026-11-22T09:00:00.000Z, so history keys sort as one."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
