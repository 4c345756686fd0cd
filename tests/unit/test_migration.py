"""app.domain.migration: what the contacts migration makes of one item of the one-list model."""

from datetime import UTC, datetime

import pytest
from app import contacts, migration, recipients
from app.contracts import MigrateContactsInput
from app.domain import lifecycle
from app.domain import migration as domain
from app.domain.migration import (
    ALREADY,
    ERASED,
    INVALID_LIST,
    MIGRATE,
    SUPPRESSION_ONLY,
    Counts,
    MembershipPlan,
    plan_item,
)
from app.errors import ContractError

NOW = "2026-04-01T12:00:00.000Z"


def test_a_contact_with_a_list_id_becomes_subscribed_to_that_list_from_when_it_was_created():
    plan = plan_item({"address": "ada@example.com", "list_id": "newsletter", "status": "QUARANTINED",
                      "created_at": "2025-01-01T00:00:00.000Z"}, NOW)

    assert plan.outcome == MIGRATE
    assert plan.membership == MembershipPlan("newsletter", "ada@example.com", "SUBSCRIBED", NOW,
                                             "2025-01-01T00:00:00.000Z")


def test_the_old_one_click_unsubscribe_becomes_unsubscribed_with_its_time_and_reason():
    item = {"address": "una@example.com", "list_id": "newsletter", "status": lifecycle.SUPPRESSED,
            "status_cause": lifecycle.UNSUBSCRIBE, "status_reason": lifecycle.UNSUBSCRIBED_REASON,
            "status_since": "2026-03-02T10:00:00.000Z"}

    plan = plan_item(item, NOW)

    assert plan.unsubscribed
    assert plan.membership == MembershipPlan("newsletter", "una@example.com", "UNSUBSCRIBED",
                                             "2026-03-02T10:00:00.000Z", "2026-03-02T10:00:00.000Z", "unsubscribed")


@pytest.mark.parametrize("cause", [lifecycle.HARD_BOUNCE, lifecycle.COMPLAINT, lifecycle.STRIKE_LIMIT,
                                   lifecycle.OPERATOR_SUPPRESS])
def test_a_contact_suppressed_for_any_other_cause_stays_subscribed_and_suppressed(cause):
    plan = plan_item({"address": "x@example.com", "list_id": "l", "status": "SUPPRESSED", "status_cause": cause}, NOW)

    assert (plan.outcome, plan.membership.state) == (MIGRATE, "SUBSCRIBED")


def test_a_reinstated_contact_that_once_unsubscribed_is_subscribed():
    plan = plan_item({"address": "x@example.com", "list_id": "l", "status": "ACTIVE",
                      "status_cause": lifecycle.OPERATOR_REINSTATE}, NOW)

    assert plan.membership.state == "SUBSCRIBED"


@pytest.mark.parametrize(("item", "outcome"), [
    ({"address": "new@example.com", "status": "ACTIVE", "created_by": "import:a.csv"}, ALREADY),
    ({"address": "blocked@example.com", "status": "SUPPRESSED", "created_by": "suppression-import"}, SUPPRESSION_ONLY),
    ({"address": "erased:" + "0" * 64, "status": "SUPPRESSED", "list_id": "newsletter"}, ERASED),
    ({"address": "odd@example.com", "list_id": "has space"}, INVALID_LIST),
    ({"address": "odd@example.com", "list_id": 7}, INVALID_LIST),
    ({"address": "odd@example.com", "list_id": ""}, INVALID_LIST),
])
def test_an_item_without_a_list_to_migrate_is_left_alone(item, outcome):
    plan = plan_item(item, NOW)

    assert (plan.outcome, plan.membership) == (outcome, None)


def test_counts_tell_the_outcomes_apart_and_add_up():
    counts = Counts()
    for item in ({"address": "a@x.org", "list_id": "l"}, {"address": "b@x.org"}, {"address": "erased:00"},
                 {"address": "u@x.org", "list_id": "l", "status": "SUPPRESSED", "status_cause": "unsubscribe"}):
        counts.count(plan_item(item, NOW))
    counts.changed(plan_item({"address": "a@x.org", "list_id": "l"}, NOW))

    total = counts.add(Counts(scanned=1, already=1))
    assert total.to_dict() == {"scanned": 5, "migrated": 1, "unsubscribed": 1, "memberships_kept": 0, "already": 2,
                               "erased": 1, "suppression_only": 0, "invalid_list_id": 0, "changed_meanwhile": 1}
    assert total.skipped == 1


def test_the_history_record_and_the_list_registration_are_the_ones_the_other_writers_make():
    at = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
    extra = {"kind": "migrated", "list_id": "newsletter", "state": "SUBSCRIBED"}

    assert migration.history_record("ada@example.com", "migration-run1", at, extra) == recipients.audit_record(
        "ada@example.com", None, event_id="migration-run1", actor="migration", at=at, extra=extra)
    assert (migration.LISTS_PK, migration.AUDIT_RETENTION, migration.iso(at)) == (
        contacts.LISTS_PK, recipients.AUDIT_RETENTION, recipients.iso(at))
    assert domain.ERASED_PREFIX == contacts.ERASED_PREFIX


@pytest.mark.parametrize(("changes", "message"), [
    ({"total_segments": 0}, "total_segments: must be 1 to 40, got 0"),
    ({"total_segments": 41}, "total_segments: must be 1 to 40, got 41"),
    ({"segment": 4}, "segment: must be 0 to 3, got 4"),
    ({"run": ""}, "run: required"),
])
def test_a_call_for_a_segment_that_cannot_be_is_refused(changes, message):
    with pytest.raises(ContractError, match=message):
        MigrateContactsInput.from_dict({"segment": 0, "total_segments": 4, "run": "r", **changes})
