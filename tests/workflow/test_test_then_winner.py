"""Test-then-winner on the engine: the test cohort gets its variants, SES feedback (deliveries, clicks) comes back
through the real ingestion path while the campaign waits out its evaluation window (virtual time), the decision is
recorded, and the remainder gets the winner."""

import hashlib
import json
import threading
from collections import Counter

import pytest
from app.domain.campaign import HOLDOUT, TEST, assign_variant, cohort, parse_campaign

from sesflow.engine.ses import feedback_record, simulator
from tests.workflow.feedback import Feedback
from tests.workflow.test_campaign import LIST, seed

RECIPIENTS = 2500


def definition(**ab):
    return {
        "id": "winter-sale",
        "sender": "news@example.com",
        "audience": {"lists": [LIST]},
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


def test_complaints_applied_before_their_sends_are_counted_still_halt_the_campaign(stack, monkeypatch):
    """SES's feedback about a call can be ingested before SendBatch has recorded that call's sends (on AWS: a slow
    batch, paced by the governor; here: made to happen). The breaker never counts more complaints than sends, so
    at that moment it lets them pass; once the sends are counted it must trip, not leave the complaint guard to
    stop the remainder quietly with the campaign COMPLETED."""
    import app.handlers.send_batch as send_batch

    simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)
    audience = [f"user{i:02d}@example.org" for i in range(40)]
    seed(stack, dict.fromkeys(audience, "ACTIVE"))
    raw = {**definition(test_percent=50, evaluation_seconds=3600),
           "thresholds": {"complaint": {"warn": 0.001, "halt": 0.002}, "min_sends": 1}}
    real_call = send_batch.send_call

    def send_call(campaign, variant, probation, addresses, *rest):
        before = len(simulator().outbox)
        accepted = real_call(campaign, variant, probation, addresses, *rest)
        sqs = stack.client("sqs")
        for message in simulator().outbox[before:]:  # every recipient of this call complains at once...
            record = feedback_record("complaint", message.to[0], stack.clock.now(), message.message_id,
                                     tags={k: [v] for k, v in message.tags.items()})
            sqs.send_message(QueueUrl=stack.outputs["FeedbackQueueUrl"], MessageBody=json.dumps(record))
        ingest = threading.Thread(target=stack.deliver_queues)  # ...and is ingested before SendBatch goes on
        ingest.start()
        ingest.join()
        return accepted

    monkeypatch.setattr(send_batch, "send_call", send_call)

    result = stack.run("CampaignStateMachine", raw)

    control = stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"],
                                                Key={"campaign_id": {"S": "winter-sale"}})["Item"]
    assert (result.status, result.error) == ("FAILED", "CampaignHalted"), (control.get("decision"), result.cause)
    assert control["status"]["S"] == "HALTED"
    assert json.loads(control["halt"]["S"])["metric"] == "complaint"
    campaign = parse_campaign(raw)
    test = {a for a in audience if assign_variant(campaign, a) != HOLDOUT and cohort(campaign, a) == TEST}
    assert {m.to[0] for m in simulator().outbox} == test  # the remainder got nothing
