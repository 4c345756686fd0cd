"""Contacts, their lists and their subscriptions in DynamoDB (the I/O side of app.domain.audience; docs/contacts.md).

A contact is the RecipientsTable item of its address (its lifecycle is app.recipients'); a membership is the
MembershipsTable item (list_id, address) with its subscription state. Every write here leaves the lifecycle alone:
a contact is created with `status = if_not_exists(status, ACTIVE)` and a membership with
`state = if_not_exists(state, SUBSCRIBED)`, so a suppression or an unsubscribe written by anyone at any moment
survives an import, even one racing it. Only `resubscribe` sets SUBSCRIBED over UNSUBSCRIBED, and it is audited.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from app.clients import client
from app.domain.audience import CONTACT_FIELDS, SUBSCRIBED, UNSUBSCRIBED, Contact, Membership
from app.domain.frequency import SENDS_FIELD
from app.recipients import AUDIT_RETENTION, audit_pk, iso
from app.settings import Settings

ERASED_PREFIX = "erased:"
LISTS_PK = "LISTS"  # EventsTable: the lists that exist, one item each (sk: the list)
_plain, _typed = TypeDeserializer(), TypeSerializer()


def erased_key(address: str) -> str:
    """The key of an erased contact's marker: the normalized address's SHA-256, so no address is kept."""
    return ERASED_PREFIX + hashlib.sha256(address.encode()).hexdigest()


def _memberships_table(settings: Settings) -> str:
    if not settings.memberships_table:
        raise RuntimeError("MEMBERSHIPS_TABLE is not set: the template gives it to every function")
    return settings.memberships_table


def _to_contact(item: dict[str, Any]) -> Contact:
    plain = {k: _plain.deserialize(v) for k, v in item.items()}
    return Contact(
        address=plain["address"],
        status=plain.get("status") or "ACTIVE",
        attributes={k: v for k, v in plain.items() if k not in CONTACT_FIELDS},
        unsubscribed_all=bool(plain.get("unsubscribed_all_at")),
        erased=plain["address"].startswith(ERASED_PREFIX),
        marketing_sends={str(k): str(v) for k, v in (plain.get(SENDS_FIELD) or {}).items()},
    )


def _to_membership(item: dict[str, Any]) -> Membership:
    plain = {k: _plain.deserialize(v) for k, v in item.items()}
    return Membership(list_id=plain["list_id"], address=plain["address"], state=plain.get("state") or SUBSCRIBED,
                      state_at=plain.get("state_at"), state_reason=plain.get("state_reason"),
                      state_source=plain.get("state_source"))


def _batch_get(table: str, keys: list[dict[str, Any]], projection: str | None = None,
               names: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    ddb = client("dynamodb")
    for start in range(0, len(keys), 100):  # BatchGetItem's limit
        request: dict[str, Any] = {"Keys": keys[start : start + 100]}
        if projection:
            request.update(ProjectionExpression=projection, ExpressionAttributeNames=names or {})
        pending = {table: request}
        while pending:
            response = ddb.batch_get_item(RequestItems=pending)
            yield from response["Responses"].get(table, [])
            pending = response.get("UnprocessedKeys") or {}


def read_contacts(addresses: Iterable[str], settings: Settings, *, with_markers: bool = True) -> dict[str, Contact]:
    """The contacts that exist among `addresses`, and (`with_markers`, as an import needs) the erased markers of any
    of them, keyed by the address they hash, with erased=True. An erased contact is on no list, so a reader that
    starts from memberships (the snapshot) needs no markers: half the keys. Eventually consistent."""
    wanted = sorted(set(addresses))
    markers = {erased_key(a): a for a in wanted} if with_markers else {}
    keys = [{"address": {"S": k}} for k in (*wanted, *markers)]
    found: dict[str, Contact] = {}
    for item in _batch_get(settings.recipients_table, keys):
        contact = _to_contact(item)
        if contact.erased:
            found[markers[contact.address]] = Contact(markers[contact.address], "SUPPRESSED", erased=True)
        elif contact.address not in found:  # a live contact never shadows its own erased marker
            found[contact.address] = contact
    return found


def read_memberships(list_id: str, addresses: Iterable[str], settings: Settings) -> dict[str, Membership]:
    keys = [{"list_id": {"S": list_id}, "address": {"S": a}} for a in sorted(set(addresses))]
    return {m.address: m for m in map(_to_membership, _batch_get(_memberships_table(settings), keys))}


def members(list_id: str, settings: Settings) -> Iterator[Membership]:
    """Every membership of a list, in address order (one Query, paged)."""
    query: dict[str, Any] = {"TableName": _memberships_table(settings), "KeyConditionExpression": "list_id = :l",
                             "ExpressionAttributeValues": {":l": {"S": list_id}}}
    ddb = client("dynamodb")
    while True:
        page = ddb.query(**query)
        yield from map(_to_membership, page["Items"])
        if "LastEvaluatedKey" not in page:
            return
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def lists_of(address: str, settings: Settings) -> list[Membership]:
    """The memberships of one contact (ContactListsIndex), read whole from the table so states are current."""
    ddb, table = client("dynamodb"), _memberships_table(settings)
    query: dict[str, Any] = {"TableName": table, "IndexName": "ContactListsIndex",
                             "KeyConditionExpression": "address = :a",
                             "ExpressionAttributeValues": {":a": {"S": address}}}
    keys = []
    while True:
        page = ddb.query(**query)
        keys += [{"list_id": i["list_id"], "address": i["address"]} for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sorted(map(_to_membership, _batch_get(table, keys)), key=lambda m: m.list_id)


def lists(settings: Settings) -> list[dict[str, Any]]:
    """The lists that exist (EventsTable pk LISTS), each with when it was created."""
    ddb, query = client("dynamodb"), {"TableName": settings.events_table, "KeyConditionExpression": "pk = :p",
                                      "ExpressionAttributeValues": {":p": {"S": LISTS_PK}}}
    found = []
    while True:
        page = ddb.query(**query)
        found += [{k: _plain.deserialize(v) for k, v in item.items()} for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return [{"list": f["sk"], "created_at": f.get("created_at")} for f in found]
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@dataclass
class WriteCount:
    """What a batch of writes did, in DynamoDB calls and the write units AWS bills for them (1 per item of at most
    1 KB written; an UpdateItem is billed on the larger of the item before and after)."""

    calls: int = 0
    write_units: int = 0
    by_table: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, units: int = 1, calls: int = 1) -> None:
        self.calls += calls
        self.write_units += units
        self.by_table[table] = self.by_table.get(table, 0) + units


def _units(item_bytes: int) -> int:
    return max(1, -(-item_bytes // 1024))


def register_list(list_id: str, now: datetime, settings: Settings, count: WriteCount) -> None:
    """Record that the list exists (the first import into it), once."""
    try:
        client("dynamodb").put_item(
            TableName=settings.events_table, ConditionExpression="attribute_not_exists(pk)",
            Item={"pk": {"S": LISTS_PK}, "sk": {"S": list_id}, "created_at": {"S": iso(now)}})
        count.add(settings.events_table)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


def upsert_contact(address: str, attributes: dict[str, Any], created_by: str, now: datetime, settings: Settings,
                   count: WriteCount) -> None:
    """Create the contact if absent (ACTIVE) and set `attributes` on it; never touches an existing status."""
    names = {"#status": "status"}
    values: dict[str, Any] = {":active": {"S": "ACTIVE"}, ":now": {"S": iso(now)}, ":by": {"S": created_by}}
    sets = ["#status = if_not_exists(#status, :active)", "created_at = if_not_exists(created_at, :now)",
            "created_by = if_not_exists(created_by, :by)"]
    for i, (name, value) in enumerate(sorted(attributes.items())):
        names[f"#a{i}"] = name
        values[f":a{i}"] = _typed.serialize(value)
        sets.append(f"#a{i} = :a{i}")
    client("dynamodb").update_item(
        TableName=settings.recipients_table, Key={"address": {"S": address}},
        UpdateExpression="SET " + ", ".join(sets), ExpressionAttributeNames=names, ExpressionAttributeValues=values)
    size = len(address) + sum(len(k) + len(str(v)) for k, v in attributes.items()) + 80
    count.add(settings.recipients_table, _units(size))


def add_new(contacts_new: dict[str, dict[str, Any]], memberships_new: list[str], list_id: str, source: str,
            created_by: str, now: datetime, settings: Settings, count: WriteCount) -> set[str]:
    """Write contacts and memberships an import found absent, as conditional Puts (attribute_not_exists) in
    transactions of at most 100 actions (TransactWriteItems' limit): one call per chunk instead of two per row, and
    a contact or membership made meanwhile by anyone is never overwritten, since its transaction is cancelled.
    `contacts_new`: address -> attributes of contacts to create (each also joins the list); `memberships_new`:
    existing contacts to add to the list. Returns the addresses of cancelled transactions, for the caller to write
    one by one (upsert_contact, add_membership: safe against any state). Transactional writes bill 2 units an item."""
    stamp = iso(now)
    rows: list[tuple[str, list[dict[str, Any]]]] = []
    membership = {"list_id": {"S": list_id}, "state": {"S": SUBSCRIBED}, "state_at": {"S": stamp},
                  "state_source": {"S": source}, "added_at": {"S": stamp}}
    absent = "attribute_not_exists(address)"
    for address, attributes in contacts_new.items():
        item = {**{k: _typed.serialize(v) for k, v in attributes.items()}, "address": {"S": address},
                "status": {"S": "ACTIVE"}, "created_at": {"S": stamp}, "created_by": {"S": created_by}}
        rows.append((address, [
            {"Put": {"TableName": settings.recipients_table, "Item": item, "ConditionExpression": absent}},
            {"Put": {"TableName": _memberships_table(settings), "Item": {**membership, "address": {"S": address}},
                     "ConditionExpression": absent}}]))
    for address in memberships_new:
        rows.append((address, [{"Put": {"TableName": _memberships_table(settings),
                                        "Item": {**membership, "address": {"S": address}},
                                        "ConditionExpression": absent}}]))
    cancelled: set[str] = set()
    group: list[tuple[str, list[dict[str, Any]]]] = []
    for row in [*rows, None]:
        if row is not None and sum(len(a) for _, a in group) + len(row[1]) <= 100:
            group.append(row)
            continue
        if group:
            try:
                client("dynamodb").transact_write_items(TransactItems=[a for _, actions in group for a in actions])
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                cancelled |= {address for address, _ in group}
            else:
                count.calls += 1
                for _, actions in group:
                    for action in actions:
                        put = action["Put"]
                        size = sum(len(k) + len(json.dumps(v)) for k, v in put["Item"].items())
                        count.add(put["TableName"], 2 * _units(size), calls=0)
        group = [row] if row is not None else []
    return cancelled


def add_membership(list_id: str, address: str, source: str, now: datetime, settings: Settings,
                   count: WriteCount) -> None:
    """Put the contact on the list, SUBSCRIBED, unless it is on it already in any state (if_not_exists)."""
    client("dynamodb").update_item(
        TableName=_memberships_table(settings), Key={"list_id": {"S": list_id}, "address": {"S": address}},
        UpdateExpression="SET #state = if_not_exists(#state, :sub), state_at = if_not_exists(state_at, :now), "
                         "state_source = if_not_exists(state_source, :src), added_at = if_not_exists(added_at, :now)",
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues={":sub": {"S": SUBSCRIBED}, ":now": {"S": iso(now)}, ":src": {"S": source}})
    count.add(_memberships_table(settings))


def set_subscription(list_id: str, address: str, state: str, *, reason: str, source: str, actor: str,
                     event_id: str, now: datetime, settings: Settings, create: bool = False,
                     audit_extra: dict[str, Any] | None = None) -> bool:
    """Set one membership's state with its audit record in the contact's history, in one transaction.

    Without `create` the membership must exist (a link for a list the contact is not on changes nothing). Returns
    False when nothing changed: it is in that state already, or (without create) not on the list."""
    if state not in (SUBSCRIBED, UNSUBSCRIBED):
        raise ValueError(f"state: must be {SUBSCRIBED} or {UNSUBSCRIBED}, got {state!r}")
    condition = "#state <> :state" if create else "attribute_exists(#state) AND #state <> :state"
    record = _audit(address, event_id, actor, now, {"kind": "subscription", "list_id": list_id, "to_state": state,
                                                    "reason": reason, "source": source, **(audit_extra or {})})
    try:
        client("dynamodb").transact_write_items(TransactItems=[
            {"Update": {
                "TableName": _memberships_table(settings),
                "Key": {"list_id": {"S": list_id}, "address": {"S": address}},
                "UpdateExpression": "SET #state = :state, state_at = :now, state_reason = :reason, "
                                    "state_source = :src, added_at = if_not_exists(added_at, :now)",
                "ConditionExpression": condition if not create else f"attribute_not_exists(#state) OR {condition}",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": {":state": {"S": state}, ":now": {"S": iso(now)},
                                              ":reason": {"S": reason}, ":src": {"S": source}},
            }},
            {"Put": {"TableName": settings.events_table, "Item": record}},
        ])
    except ClientError as error:
        if error.response["Error"]["Code"] == "TransactionCanceledException":
            return False
        raise
    return True


def unsubscribe_all(address: str, *, source: str, actor: str, event_id: str, now: datetime,
                    settings: Settings) -> list[str]:
    """"Unsubscribe from everything": every membership UNSUBSCRIBED, and the contact marked so that no later
    import puts it on a list. Returns the lists it left. Nothing happens for an address that is no contact."""
    try:
        client("dynamodb").update_item(
            TableName=settings.recipients_table, Key={"address": {"S": address}},
            UpdateExpression="SET unsubscribed_all_at = if_not_exists(unsubscribed_all_at, :now), "
                             "unsubscribed_all_source = if_not_exists(unsubscribed_all_source, :src)",
            ConditionExpression="attribute_exists(address)",
            ExpressionAttributeValues={":now": {"S": iso(now)}, ":src": {"S": source}})
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return []
        raise
    left = []
    for membership in lists_of(address, settings):
        if membership.state == SUBSCRIBED and set_subscription(
                membership.list_id, address, UNSUBSCRIBED, reason="unsubscribed from everything", source=source,
                actor=actor, event_id=f"{event_id}-{membership.list_id}"[:200], now=now, settings=settings):
            left.append(membership.list_id)
    return left


def remove_membership(list_id: str, address: str, *, actor: str, now: datetime, settings: Settings) -> bool:
    """Take the contact off the list (the membership goes; the contact and its history stay), audited."""
    try:
        client("dynamodb").transact_write_items(TransactItems=[
            {"Delete": {"TableName": _memberships_table(settings),
                        "Key": {"list_id": {"S": list_id}, "address": {"S": address}},
                        "ConditionExpression": "attribute_exists(address)"}},
            {"Put": {"TableName": settings.events_table,
                     "Item": _audit(address, f"remove-{list_id}-{iso(now)}", actor, now,
                                    {"kind": "membership_removed", "list_id": list_id})}},
        ])
    except ClientError as error:
        if error.response["Error"]["Code"] == "TransactionCanceledException":
            return False
        raise
    return True


def _audit(address: str, event_id: str, actor: str, at: datetime, extra: dict[str, Any]) -> dict[str, Any]:
    fields = {"pk": audit_pk(address), "sk": f"{iso(at)}#{event_id}", "event_id": event_id, "actor": actor,
              "recorded_at": iso(at), "expires_at": int((at + AUDIT_RETENTION).timestamp()), **extra}
    return {k: ({"N": str(v)} if isinstance(v, int) else {"S": str(v)}) for k, v in fields.items() if v is not None}


def record_import(list_id: str, import_id: str, summary: dict[str, Any], actor: str, now: datetime,
                  settings: Settings) -> None:
    """The import's own record in the list's history (EventsTable pk LIST#<list>): who, when, what it did."""
    client("dynamodb").put_item(TableName=settings.events_table, Item={
        "pk": {"S": f"LIST#{list_id}"}, "sk": {"S": f"{iso(now)}#import-{import_id}"},
        "actor": {"S": actor}, "kind": {"S": "import"}, "summary": _typed.serialize(summary)})


def erase(address: str, reason: str, actor: str, now: datetime, settings: Settings) -> dict[str, int]:
    """The right to erasure: the contact's attributes, memberships and history go, and the address with them; one
    marker keyed by the address's hash stays (SUPPRESSED, with when and why), so a later import skips the person
    and no campaign reaches them. The erasure's own record (EventsTable pk ERASED#<hash>) holds no address.

    Also deleted: the unique-engagement markers of every campaign (EventsTable ENGAGED#<campaign>, open#/click#
    <address>). Not reachable from here, and gone on their own: campaign manifests in S3 (the bucket expires them
    after 90 days) and quarantine episodes' execution input (Step Functions keeps a closed execution 90 days).
    Returns what was deleted, by kind. Raises ValueError for an empty reason, LookupError when there is nothing."""
    if not reason or not reason.strip():
        raise ValueError("reason: required (why the contact is erased), for the erasure's record")
    ddb, marker = client("dynamodb"), erased_key(address)
    item = ddb.get_item(TableName=settings.recipients_table, Key={"address": {"S": address}},
                        ConsistentRead=True).get("Item")
    if item is None:
        if ddb.get_item(TableName=settings.recipients_table, Key={"address": {"S": marker}}).get("Item"):
            raise LookupError("already erased: only its hashed marker is left")
        raise LookupError(f"no contact {address} in {settings.recipients_table}")
    deleted = {"memberships": 0, "history": 0, "engagement_markers": 0}
    for membership in lists_of(address, settings):
        ddb.delete_item(TableName=_memberships_table(settings),
                        Key={"list_id": {"S": membership.list_id}, "address": {"S": address}})
        deleted["memberships"] += 1
    query: dict[str, Any] = {"TableName": settings.events_table, "KeyConditionExpression": "pk = :p",
                             "ExpressionAttributeValues": {":p": {"S": audit_pk(address)}},
                             "ProjectionExpression": "pk, sk"}
    while True:
        page = ddb.query(**query)
        for key in page["Items"]:
            ddb.delete_item(TableName=settings.events_table, Key=key)
            deleted["history"] += 1
        if "LastEvaluatedKey" not in page:
            break
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    scan: dict[str, Any] = {"TableName": settings.campaigns_table, "ProjectionExpression": "campaign_id"}
    while True:
        page = ddb.scan(**scan)
        for campaign in page["Items"]:
            for kind in ("open", "click"):
                gone = ddb.delete_item(TableName=settings.events_table, ReturnValues="ALL_OLD", Key={
                    "pk": {"S": f"ENGAGED#{campaign['campaign_id']['S']}"}, "sk": {"S": f"{kind}#{address}"}})
                deleted["engagement_markers"] += "Attributes" in gone
        if "LastEvaluatedKey" not in page:
            break
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    digest = marker.removeprefix(ERASED_PREFIX)
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": settings.recipients_table, "Item": {
            "address": {"S": marker}, "status": {"S": "SUPPRESSED"}, "erased_at": {"S": iso(now)},
            "erased_reason": {"S": reason.strip()}}}},
        {"Delete": {"TableName": settings.recipients_table, "Key": {"address": {"S": address}}}},
        {"Put": {"TableName": settings.events_table, "Item": {
            "pk": {"S": f"ERASED#{digest}"}, "sk": {"S": iso(now)}, "actor": {"S": actor},
            "reason": {"S": reason.strip()}, "kind": {"S": "erasure"},
            "deleted": {"S": ", ".join(f"{k} {v}" for k, v in deleted.items())}}}},
    ])
    token = item.get("episode_token", {}).get("S")
    if token:  # a quarantine episode waits on it: end it now (it would find no contact at its deadline anyway)
        try:
            client("stepfunctions").send_task_success(taskToken=token, output=json.dumps(
                {"ended_by": "erasure", "status": "SUPPRESSED", "reason": "contact erased"}))
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken"):
                raise
    return deleted


def applied(marker: str, settings: Settings) -> bool:
    """Whether a change named `marker` (an EventsTable key, e.g. UNSUBSCRIBE#<event>) was made already."""
    return "Item" in client("dynamodb").get_item(TableName=settings.events_table, ConsistentRead=True,
                                                 Key={"pk": {"S": marker}, "sk": {"S": "marker"}})


def record_applied(marker: str, event_id: str, now: datetime, settings: Settings) -> None:
    """Mark a change as made, so the same request again changes nothing (kept as long as audit records)."""
    client("dynamodb").put_item(TableName=settings.events_table, Item={
        "pk": {"S": marker}, "sk": {"S": "marker"}, "event_id": {"S": event_id}, "recorded_at": {"S": iso(now)},
        "expires_at": {"N": str(int((now + AUDIT_RETENTION).timestamp()))}})
