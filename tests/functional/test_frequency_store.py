"""app.frequency.reserve on the engine's DynamoDB: the conditional write that holds a contact's frequency cap."""

from datetime import timedelta

import pytest
from app import frequency
from app.domain import frequency as rules

from tests.contacts import add_contact
from tests.workflow.test_campaign_faults import config


@pytest.fixture(autouse=True)
def lambda_env(stack):
    """The Lambda code's environment for this stack (its region and endpoint), as the CLI gives it."""
    from sesflow.target import Target

    Target(name="test", region=stack.region, outputs=stack.outputs).apply_env()


CAP_1 = rules.effective("marketing", None, rules.Policy(1, 7))
CAP_2 = rules.effective("marketing", None, rules.Policy(2, 7))


def record(stack, address):
    item = stack.client("dynamodb").get_item(TableName=stack.outputs["RecipientsTableName"],
                                             Key={"address": {"S": address}})["Item"]
    return ({k: v["S"] for k, v in item.get("marketing_sends", {}).get("M", {}).items()},
            int(item.get("marketing_sends_version", {}).get("N", 0)))


def test_a_reservation_is_idempotent_for_its_campaign_and_caps_the_next(stack):
    add_contact(stack, "ada@example.org", ["news"])
    now, settings = stack.clock.now(), config(stack)

    assert frequency.reserve("ada@example.org", "spring", CAP_1, now, settings) is None
    assert frequency.reserve("ada@example.org", "spring", CAP_1, now + timedelta(hours=1), settings) is None
    assert frequency.reserve("ada@example.org", "summer", CAP_1, now, settings) == rules.CAPPED

    sends, _ = record(stack, "ada@example.org")
    assert sends == {"spring": now.isoformat()}  # reserved once, at its first time


def test_a_send_past_the_window_is_pruned_when_the_next_is_reserved(stack):
    add_contact(stack, "bob@example.org", ["news"])
    settings, start = config(stack), stack.clock.now()
    assert frequency.reserve("bob@example.org", "june", CAP_1, start, settings) is None
    later = start + timedelta(days=7, seconds=1)

    assert frequency.reserve("bob@example.org", "july", CAP_1, later, settings) is None

    sends, version = record(stack, "bob@example.org")
    assert sends == {"july": later.isoformat()} and version == 2


def test_two_under_a_cap_of_two_then_the_third_is_capped(stack):
    add_contact(stack, "cy@example.org", ["news"])
    settings, now = config(stack), stack.clock.now()

    answers = [frequency.reserve("cy@example.org", c, CAP_2, now, settings) for c in ("a", "b", "c")]

    assert answers == [None, None, rules.CAPPED]
    assert sorted(record(stack, "cy@example.org")[0]) == ["a", "b"]


def test_no_contact_item_is_not_sent_and_none_is_created(stack):
    settings = config(stack)

    assert frequency.reserve("gone@example.org", "a", CAP_1, stack.clock.now(), settings) == rules.NO_CONTACT
    assert "Item" not in stack.client("dynamodb").get_item(TableName=stack.outputs["RecipientsTableName"],
                                                           Key={"address": {"S": "gone@example.org"}})


def test_transactional_writes_nothing(stack):
    add_contact(stack, "dee@example.org", ["news"])
    cap = rules.effective("transactional", None, rules.Policy(1, 7))

    assert frequency.reserve("dee@example.org", "receipt", cap, stack.clock.now(), config(stack)) is None
    assert record(stack, "dee@example.org") == ({}, 0)
