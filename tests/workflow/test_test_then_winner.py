"""Test-then-winner on the engine: the test cohort gets its variants, SES feedback (deliveries, clicks) comes back
through the real ingestion path while the campaign waits out its evaluation window (virtual time), the decision is
recorded, and the remainder gets the winner."""

import hashlib
import json
from collections import Counter

import pytest
from app.domain.campaign import HOLDOUT, TEST, assign_variant, cohort, parse_campaign

from sesflow.engine.ses import simulator
from tests.workflow.feedback import Feedback
from tests.workflow.test_campaign import LIST, seed

RECIPIENTS = 2500


def definition(**ab):
    return {
        "id": "winter-sale",
        "sender": "news@example.com",
        "audience": {"list_id": LIST},
        "variants": [{"name": "a", "weight": 50, "template": "spring-a"},
                     {"name": "b", "weight": 50, "template": "spring-b"}],
        "holdout_percent": 5,
        "ab": {"mode": "test_then_winner", "test_percent": 30, "evaluation_seconds": 7200, "metric": "click",
               "min_sample_per_variant": 150, "confidence": 0.95, "no_winner": "send_control", **ab},
    }


def clicks(rates: dict[str, float]):
    """Everyone's message is delivered; a recipient clicks with its variant's rate (deterministic per address)."""
    def kinds(message):
        draw = int(hashlib.sha256(message.to[0].encode()).hexdigest()[:8], 16) / 2**32
        return ["delivery", "open", "click"] if draw < rates[message.tags["variant"]] else ["delivery"]
    return kinds


@pytest.fixture
def audience(stack):
    simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)  # a production account: not about pacing
    seed(stack, {f"user{i:04d}@example.org": "ACTIVE" for i in range(RECIPIENTS)})
    return [f"user{i:04d}@example.org" for i in range(RECIPIENTS)]


def outcome(stack, audience, raw):
    campaign = parse_campaign(raw)
    got = {m.to[0]: m.tags["variant"] for m in simulator().outbox}
    assert set(Counter(r for m in simulator().outbox for r in m.to).values()) == {1}, "someone got it twice"
    test = {a for a in audience if assign_variant(campaign, a) != HOLDOUT and cohort(campaign, a) == TEST}
    rest = {a for a in audience if assign_variant(campaign, a) != HOLDOUT} - test
    for address in test:
        assert got[address] == assign_variant(campaign, address)
    control = stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"],
                                                Key={"campaign_id": {"S": "winter-sale"}})["Item"]
    decision = json.loads(control["decision"]["S"])
    return decision, {a: got.get(a) for a in rest}


def test_the_clearly_better_variant_wins_and_the_remainder_gets_it(stack, audience):
    with Feedback(stack, clicks({"a": 0.04, "b": 0.20})):
        result = stack.run("CampaignStateMachine", definition())

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    decision, remainder = outcome(stack, audience, definition())
    assert decision["winner"] == "b" and decision["p_value"] < 0.05
    assert set(remainder.values()) == {"b"}
    assert result.output["decision"]["winner"] == "b" and result.output["status"] == "COMPLETED"
    numbers = {n["name"]: n for n in decision["numbers"]}
    assert numbers["b"]["rate"] > numbers["a"]["rate"]


def test_no_clear_winner_applies_the_no_winner_policy(stack, audience):
    with Feedback(stack, clicks({"a": 0.10, "b": 0.10})):
        result = stack.run("CampaignStateMachine", definition())

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    decision, remainder = outcome(stack, audience, definition())
    assert decision["winner"] is None and decision["applied_policy"] == "send_control"
    assert set(remainder.values()) == {"a"}  # the control


def test_no_winner_with_the_stop_policy_sends_nothing_more(stack, audience):
    with Feedback(stack, clicks({"a": 0.10, "b": 0.10})):
        result = stack.run("CampaignStateMachine", definition(no_winner="stop"))

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    decision, remainder = outcome(stack, audience, definition(no_winner="stop"))
    assert decision["winner"] is None and set(remainder.values()) == {None}
    assert result.output["accounted"]["not_sent"] == 0  # the remainder was never the audience to send to
