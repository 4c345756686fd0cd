"""From one list per contact to memberships: what the migration does with one RecipientsTable item, pure.

A contact of the one-list model carries its list on its own item (`list_id`), and the one-click unsubscribe of
that model suppressed it (status SUPPRESSED, status_cause app.domain.lifecycle.UNSUBSCRIBE, status_reason
lifecycle.UNSUBSCRIBED_REASON). The contact of today keeps its lifecycle and attributes on that item and has one
MembershipsTable item per list (docs/contacts.md). `plan_item` decides what an item becomes:

- an item with a `list_id` that names a list: its membership of that list, SUBSCRIBED, or UNSUBSCRIBED with the
  old unsubscribe's time and reason when the one-click unsubscribe of the old model is what suppressed it; then
  `list_id` goes from the item. Its status, strikes, every other lifecycle field and every attribute stay;
- an item without `list_id` (a contact migrated already or made by an import of this model, an erased contact's
  marker, a suppression with no contact behind it) is counted and left as it is;
- a `list_id` that is not a list's name (not a string, or not what a campaign's audience can name) is counted and
  left, list_id and all, for the operator to correct and migrate again.

No AWS here: app.migration scans and writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from app.domain import lifecycle
from app.domain.audience import SUBSCRIBED, UNSUBSCRIBED
from app.domain.campaign import _LIST_NAME, LIST_NAME_RULE

SOURCE = "migration"  # the memberships' state_source, the contacts' created_by, the history records' actor
ERASED_PREFIX = "erased:"  # app.contacts.ERASED_PREFIX: an erased contact's marker
SUPPRESSION_ONLY_CREATOR = "suppression-import"  # created_by of a suppression with no contact (docs/contacts.md)

# What happened to an item; app.migration counts each.
MIGRATE, ALREADY, ERASED, SUPPRESSION_ONLY, INVALID_LIST = (
    "migrate", "already", "erased", "suppression_only", "invalid_list_id")
# The attributes of an old item the decision reads (the scan projects these, not the whole item).
READ = ("address", "list_id", "status", "status_cause", "status_reason", "status_since", "status_changed_at",
        "created_at", "created_by")


@dataclass(frozen=True)
class MembershipPlan:
    """The membership an old item becomes, as MembershipsTable holds it (docs/contacts.md)."""

    list_id: str
    address: str
    state: str
    state_at: str
    added_at: str
    state_reason: str | None = None
    state_source: str = SOURCE


@dataclass(frozen=True)
class ItemPlan:
    outcome: str  # MIGRATE, ALREADY, ERASED, SUPPRESSION_ONLY or INVALID_LIST
    membership: MembershipPlan | None = None  # MIGRATE only
    problem: str | None = None  # INVALID_LIST: why, for the log

    @property
    def unsubscribed(self) -> bool:
        return self.membership is not None and self.membership.state == UNSUBSCRIBED


def unsubscribed_by_old_model(item: Mapping[str, Any]) -> bool:
    """Whether the one-list model's unsubscribe is what suppressed this contact: it is SUPPRESSED and its last
    transition was lifecycle.unsubscribe (only an operator's reinstate leaves SUPPRESSED, so that transition is
    still the one that holds it)."""
    return item.get("status") == lifecycle.SUPPRESSED and item.get("status_cause") == lifecycle.UNSUBSCRIBE


def plan_item(item: Mapping[str, Any], now: str) -> ItemPlan:
    """What the migration does with one item (plain values, as TypeDeserializer gives them); `now` is the ISO time
    the membership is written at, used where the old item says nothing better."""
    address = str(item.get("address", ""))
    if address.startswith(ERASED_PREFIX):
        return ItemPlan(ERASED)
    if "list_id" not in item:
        if item.get("created_by") == SUPPRESSION_ONLY_CREATOR and item.get("status") == lifecycle.SUPPRESSED:
            return ItemPlan(SUPPRESSION_ONLY)
        return ItemPlan(ALREADY)
    list_id = item["list_id"]
    if not isinstance(list_id, str) or not _LIST_NAME.match(list_id):
        return ItemPlan(INVALID_LIST, problem=f"list_id: must be a list name ({LIST_NAME_RULE}), got {list_id!r:.80}")
    created = item.get("created_at")
    if unsubscribed_by_old_model(item):
        at = str(item.get("status_since") or item.get("status_changed_at") or now)
        reason = str(item.get("status_reason") or lifecycle.UNSUBSCRIBED_REASON)
        return ItemPlan(MIGRATE, MembershipPlan(list_id, address, UNSUBSCRIBED, at, str(created or at), reason))
    return ItemPlan(MIGRATE, MembershipPlan(list_id, address, SUBSCRIBED, now, str(created or now)))


@dataclass
class Counts:
    """What a migration did, or (dry) would do, to the items it read.

    migrated: memberships made from a list_id (unsubscribed: those of them UNSUBSCRIBED); memberships_kept: of
    the migrated, those whose membership existed already and was left as it was; already: items without list_id;
    erased, suppression_only, invalid_list_id: items left alone; changed_meanwhile: items whose list_id changed
    between the read and the write (left as they are now; a later run migrates a new list_id)."""

    scanned: int = 0
    migrated: int = 0
    unsubscribed: int = 0
    memberships_kept: int = 0
    already: int = 0
    erased: int = 0
    suppression_only: int = 0
    invalid_list_id: int = 0
    changed_meanwhile: int = 0

    @property
    def skipped(self) -> int:
        return self.erased + self.suppression_only + self.invalid_list_id

    def count(self, plan: ItemPlan) -> None:
        """One item read, and what its plan says (a MIGRATE is counted as migrated until a write says otherwise)."""
        self.scanned += 1
        if plan.outcome == MIGRATE:
            self.migrated += 1
            self.unsubscribed += plan.unsubscribed
        elif plan.outcome == ALREADY:
            self.already += 1
        else:
            setattr(self, plan.outcome, getattr(self, plan.outcome) + 1)

    def changed(self, plan: ItemPlan) -> None:
        """A MIGRATE counted whose list_id was no longer the one read: it was not migrated by this run."""
        self.migrated -= 1
        self.unsubscribed -= plan.unsubscribed
        self.changed_meanwhile += 1

    def add(self, other: Counts) -> Counts:
        return Counts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def to_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
