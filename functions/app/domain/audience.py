"""Who is on a list and who a campaign reaches: the rules of imports and audiences, pure (docs/contacts.md).

An import row meets what is stored (the contact, its membership of the list, an erased marker) and `plan_row`
decides what to write and how to count it. A campaign's audience meets the stored contacts and memberships and
`select` decides who is sent to and why each other member is left out. No AWS here: app.contacts reads and writes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SUBSCRIBED, UNSUBSCRIBED = "SUBSCRIBED", "UNSUBSCRIBED"
SENDABLE = frozenset({"ACTIVE", "RECOVERY"})
# A contact item's fields that are sesflow's own (app.recipients writes the lifecycle ones, app.contacts the rest):
# never an imported column, a template field or a filter. Everything else on the item is the team's attributes.
LIFECYCLE_FIELDS = frozenset({
    "status", "strike_times", "quarantined_until", "status_since", "version", "status_cause", "status_reason",
    "status_event", "status_changed_at", "episode", "episode_token", "reinstated_at",
})
CONTACT_FIELDS = LIFECYCLE_FIELDS | {
    "address", "list_id", "created_at", "created_by", "unsubscribed_all_at", "unsubscribed_all_source",
    "erased_at", "erased_reason", "marketing_sends", "marketing_sends_version",  # app.domain.frequency
}

# Why an import skips a row, and why a campaign leaves a member out: the names the summaries and reports use.
SKIP_SUPPRESSED = "suppressed"
SKIP_UNSUBSCRIBED = "unsubscribed"
SKIP_INVALID = "invalid"
LEFT_SUPPRESSED = "suppressed"
LEFT_QUARANTINED = "quarantined"
LEFT_UNSUBSCRIBED = "unsubscribed"
LEFT_EXCLUDED = "excluded"
LEFT_FILTERED = "filtered_out"
LEFT_SES_SUPPRESSED = "ses_suppressed"
LEFT_NO_CONTACT = "no_contact"
LEFT_FREQUENCY_CAPPED = "frequency_capped"


@dataclass(frozen=True)
class Contact:
    address: str
    status: str = "ACTIVE"
    attributes: dict[str, Any] = field(default_factory=dict)
    unsubscribed_all: bool = False
    erased: bool = False  # only an erased marker: the contact is gone, its address hashed
    marketing_sends: dict[str, str] = field(default_factory=dict)  # campaign id -> when (app.domain.frequency)


@dataclass(frozen=True)
class Membership:
    list_id: str
    address: str
    state: str = SUBSCRIBED
    state_at: str | None = None
    state_reason: str | None = None
    state_source: str | None = None


@dataclass(frozen=True)
class RowPlan:
    """What one import row does: the attributes to set on the contact (None: write no contact), whether to add the
    membership or set it SUBSCRIBED again, and the outcome counted (created, updated, unchanged, or skipped:
    a SKIP_* reason)."""

    outcome: str
    set_attributes: dict[str, Any] | None = None
    create: bool = False
    add_to_list: bool = False
    resubscribe: bool = False

    @property
    def writes(self) -> bool:
        return self.set_attributes is not None or self.add_to_list or self.resubscribe


def _same(stored: Any, given: Any) -> bool:
    """Whether a stored attribute already holds the imported value (DynamoDB numbers come back as Decimal)."""
    if isinstance(given, bool) or isinstance(stored, bool):
        return type(stored) is type(given) and stored == given
    if isinstance(given, int | float) and not isinstance(stored, str):
        try:
            return float(stored) == float(given)
        except (TypeError, ValueError):
            return False
    return stored == given


def plan_row(attributes: Mapping[str, Any], contact: Contact | None, membership: Membership | None, *,
             resubscribe: bool = False) -> RowPlan:
    """Decide one row of an import into a list.

    - a suppressed or erased address, or a contact that unsubscribed from everything: skipped, nothing written
      (an import never adds a suppressed address unnoticed, never changes a status, and never overrides the
      person's own "unsubscribe from everything", --resubscribe included);
    - a contact UNSUBSCRIBED from this list: skipped, unless `resubscribe` (the operator's audited decision);
    - otherwise the attributes that differ are set (a new contact gets all of them), and the membership is added
      when absent. A row that changes nothing writes nothing."""
    if contact is not None and (contact.erased or contact.status == "SUPPRESSED"):
        return RowPlan(SKIP_SUPPRESSED)
    if contact is not None and contact.unsubscribed_all:  # the person's own "everything": not even --resubscribe
        return RowPlan(SKIP_UNSUBSCRIBED)
    again = membership is not None and membership.state == UNSUBSCRIBED
    if again and not resubscribe:
        return RowPlan(SKIP_UNSUBSCRIBED)
    if contact is None:
        return RowPlan("created", dict(attributes), create=True, add_to_list=True)
    changed = {k: v for k, v in attributes.items() if not _same(contact.attributes.get(k), v)}
    outcome = "updated" if changed else "unchanged"
    return RowPlan(outcome, changed or None, add_to_list=membership is None, resubscribe=again)


@dataclass
class Selection:
    """A campaign's audience: the sendable contacts (address -> status) and every other member's reason."""

    chosen: dict[str, str] = field(default_factory=dict)
    left_out: Counter[str] = field(default_factory=Counter)
    states: Counter[str] = field(default_factory=Counter)  # the members' lifecycle states, sent to or not


def candidates(lists: Mapping[str, Iterable[Membership]], excluded: set[str]) -> tuple[dict[str, bool], Counter[str]]:
    """The members of a campaign's lists, once each however many lists they are on: address -> subscribed on at
    least one of them; and the members left out already (excluded by an exclude list)."""
    found: dict[str, bool] = {}
    left: Counter[str] = Counter()
    for memberships in lists.values():
        for m in memberships:
            found[m.address] = found.get(m.address, False) or m.state == SUBSCRIBED
    for address in [a for a in found if a in excluded]:
        del found[address]
        left[LEFT_EXCLUDED] += 1
    return found, left


def select(subscribed: Mapping[str, bool], contacts: Mapping[str, Contact], left: Counter[str],
           matches: Any = None, capped: Any = None) -> Selection:
    """Who of the members is sent to: subscribed on a list of the campaign, a live contact in a sendable state, not
    unsubscribed from everything, passing the filters (`matches(attributes)`) and not at its frequency cap
    (`capped(contact)`); the reason for every other."""
    chosen = Selection(left_out=Counter(left))
    for address, is_subscribed in sorted(subscribed.items()):
        contact = contacts.get(address)
        if contact is None or contact.erased:
            chosen.left_out[LEFT_NO_CONTACT] += 1
            continue
        chosen.states[contact.status] += 1
        if contact.status == "SUPPRESSED":
            reason = LEFT_SUPPRESSED
        elif contact.status not in SENDABLE:
            reason = LEFT_QUARANTINED
        elif not is_subscribed or contact.unsubscribed_all:
            reason = LEFT_UNSUBSCRIBED
        elif matches is not None and not matches(contact.attributes):
            reason = LEFT_FILTERED
        elif capped is not None and capped(contact):
            reason = LEFT_FREQUENCY_CAPPED
        else:
            chosen.chosen[address] = contact.status
            continue
        chosen.left_out[reason] += 1
    return chosen
