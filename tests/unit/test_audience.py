"""The rules of imports and audiences (app.domain.audience), pure."""

from collections import Counter

from app.domain.audience import (
    SUBSCRIBED,
    UNSUBSCRIBED,
    Contact,
    Membership,
    candidates,
    plan_row,
    select,
)


def test_a_new_contact_is_created_with_every_attribute_and_joins_the_list():
    plan = plan_row({"first_name": "Ada"}, None, None)
    assert (plan.outcome, plan.set_attributes, plan.create, plan.add_to_list) == ("created", {"first_name": "Ada"},
                                                                                  True, True)


def test_only_what_differs_is_written_and_numbers_compare_as_numbers():
    from decimal import Decimal

    stored = Contact("a@x.org", attributes={"score": Decimal("7"), "plan": "pro"})
    same = plan_row({"score": 7, "plan": "pro"}, stored, Membership("l", "a@x.org"))
    changed = plan_row({"score": 8, "plan": "pro"}, stored, Membership("l", "a@x.org"))
    assert (same.outcome, same.writes) == ("unchanged", False)
    assert (changed.outcome, changed.set_attributes, changed.add_to_list) == ("updated", {"score": 8}, False)


def test_suppressed_erased_and_unsubscribed_rows_are_skipped_and_write_nothing():
    suppressed = plan_row({"a": "1"}, Contact("a@x.org", "SUPPRESSED"), None)
    erased = plan_row({}, Contact("a@x.org", "SUPPRESSED", erased=True), None)
    left_list = plan_row({}, Contact("a@x.org"), Membership("l", "a@x.org", UNSUBSCRIBED))
    left_all = plan_row({}, Contact("a@x.org", unsubscribed_all=True), None)
    for plan, reason in ((suppressed, "suppressed"), (erased, "suppressed"), (left_list, "unsubscribed"),
                         (left_all, "unsubscribed")):
        assert (plan.outcome, plan.writes) == (reason, False)


def test_resubscribe_sets_an_unsubscribed_member_back_but_never_a_suppressed_one():
    again = plan_row({}, Contact("a@x.org"), Membership("l", "a@x.org", UNSUBSCRIBED), resubscribe=True)
    assert (again.outcome, again.resubscribe) == ("unchanged", True)
    assert plan_row({}, Contact("a@x.org", "SUPPRESSED"), None, resubscribe=True).outcome == "suppressed"
    left_all = Contact("a@x.org", unsubscribed_all=True)
    assert plan_row({}, left_all, Membership("l", "a@x.org", UNSUBSCRIBED), resubscribe=True).outcome == "unsubscribed"


def test_a_quarantined_contact_is_updated_but_its_status_is_never_part_of_the_write():
    plan = plan_row({"city": "Oslo"}, Contact("a@x.org", "QUARANTINED"), Membership("l", "a@x.org"))
    assert plan.set_attributes == {"city": "Oslo"} and "status" not in plan.set_attributes


def test_a_contact_on_two_lists_is_chosen_once_and_each_left_out_member_has_its_reason():
    lists = {
        "a": [Membership("a", "one@x.org"), Membership("a", "left@x.org", UNSUBSCRIBED),
              Membership("a", "sup@x.org"), Membership("a", "rest@x.org"), Membership("a", "vip@x.org")],
        "b": [Membership("b", "one@x.org"), Membership("b", "left@x.org", UNSUBSCRIBED)],
    }
    subscribed, left = candidates(lists, excluded={"vip@x.org"})
    stored = {"one@x.org": Contact("one@x.org", attributes={"plan": "pro"}), "left@x.org": Contact("left@x.org"),
              "sup@x.org": Contact("sup@x.org", "SUPPRESSED"), "rest@x.org": Contact("rest@x.org", "QUARANTINED")}
    chosen = select(subscribed, stored, left)
    assert chosen.chosen == {"one@x.org": "ACTIVE"}
    assert chosen.left_out == Counter(excluded=1, unsubscribed=1, suppressed=1, quarantined=1)
    assert subscribed["one@x.org"] is True and SUBSCRIBED == "SUBSCRIBED"
    assert select(subscribed, stored, left, matches=lambda a: a.get("plan") == "free").left_out["filtered_out"] == 1
