"""Test setup: contacts written straight into the tables (docs/contacts.md), the way an import would leave them.

A contact is its RecipientsTable item (address, lifecycle status, the team's attributes); each list it is on is a
MembershipsTable item (list_id, address, state). This writes both through the DynamoDB client, with no import and
no audit record: setup only. What an import itself writes is app.imports' to test.

    add_contact(stack, "ada@example.org", ["newsletter"], status="RECOVERY", attributes={"first_name": "Ada"})
    add_contact(stack, "bob@example.org", {"newsletter": UNSUBSCRIBED, "offers": SUBSCRIBED})

`target` is anything with `.outputs` (RecipientsTableName, MembershipsTableName) and `.client(service)`: the
engine's LocalStack, a sesflow Target, the e2e Deployed stack.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from boto3.dynamodb.types import TypeSerializer

SUBSCRIBED, UNSUBSCRIBED = "SUBSCRIBED", "UNSUBSCRIBED"
_typed = TypeSerializer()

Lists = Iterable[str] | Mapping[str, str]


def _states(lists: Lists, state: str) -> dict[str, str]:
    if isinstance(lists, str):
        raise TypeError(f"lists: give a list of list names, not the string {lists!r}")
    given = dict(lists) if isinstance(lists, Mapping) else dict.fromkeys(lists, state)
    for name, value in given.items():
        if value not in (SUBSCRIBED, UNSUBSCRIBED):
            raise ValueError(f"lists[{name!r}]: state must be {SUBSCRIBED} or {UNSUBSCRIBED}, got {value!r}")
    return given


def contact_items(address: str, lists: Lists = (), *, status: str = "ACTIVE",
                  attributes: Mapping[str, Any] | None = None,
                  state: str = SUBSCRIBED) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The contact's RecipientsTable item and its MembershipsTable items, in DynamoDB JSON.

    `lists`: the lists it is on, each in `state` (SUBSCRIBED unless told), or a mapping list -> state.
    `attributes`: plain values (str, int, bool, list, dict...) set on the contact item as they are: the team's
    attributes, or lifecycle fields a test needs (version, strike_times)."""
    contact = {"address": {"S": address}, "status": {"S": status},
               **{name: _typed.serialize(value) for name, value in (attributes or {}).items()}}
    memberships = [{"list_id": {"S": name}, "address": {"S": address}, "state": {"S": value}}
                   for name, value in _states(lists, state).items()]
    return contact, memberships


def add_contact(target: Any, address: str, lists: Lists = (), *, status: str = "ACTIVE",
                attributes: Mapping[str, Any] | None = None, state: str = SUBSCRIBED) -> None:
    """Write one contact and its memberships (see contact_items)."""
    contact, memberships = contact_items(address, lists, status=status, attributes=attributes, state=state)
    ddb = target.client("dynamodb")
    ddb.put_item(TableName=target.outputs["RecipientsTableName"], Item=contact)
    for item in memberships:
        ddb.put_item(TableName=target.outputs["MembershipsTableName"], Item=item)


def add_contacts(target: Any, statuses: Mapping[str, str], lists: Lists, *, state: str = SUBSCRIBED,
                 attributes: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """Many contacts on the same lists: address -> lifecycle status, and address -> attributes for some. Written
    25 items to a BatchWriteItem (its limit), what it leaves unprocessed written again."""
    writes: dict[str, list[dict[str, Any]]] = {target.outputs["RecipientsTableName"]: [],
                                               target.outputs["MembershipsTableName"]: []}
    recipients, memberships = writes
    for address, status in statuses.items():
        contact, on_lists = contact_items(address, lists, status=status,
                                          attributes=(attributes or {}).get(address), state=state)
        writes[recipients].append(contact)
        writes[memberships] += on_lists
    ddb = target.client("dynamodb")
    for table, items in writes.items():
        for start in range(0, len(items), 25):
            pending: dict[str, Any] = {table: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]}
            while pending:
                pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def put_contacts_in_moto(stack: Any, statuses: Mapping[str, str], lists: Lists, *,
                         state: str = SUBSCRIBED) -> None:
    """Many contacts straight into moto's tables of an in-process LocalStack, bypassing the HTTP layer: for
    audiences of thousands, where setup through the client would take longer than the test."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][stack.region]
    recipients, memberships = stack.outputs["RecipientsTableName"], stack.outputs["MembershipsTableName"]
    for address, status in statuses.items():
        contact, on_lists = contact_items(address, lists, status=status, state=state)
        backend.put_item(recipients, contact)
        for item in on_lists:
            backend.put_item(memberships, item)
