"""A campaign stopped mid-send on the engine: the breaker halts it on a complaint spike fed back through the real
ingestion path, an operator pauses or cancels it, and a resume sends the rest, nobody twice."""

import json
from collections import Counter

import pytest
from app import campaign_breaker, campaign_control

from sesflow.engine.ses import simulator
from tests.workflow.feedback import Feedback
from tests.workflow.test_campaign import LIST, seed

RECIPIENTS = 2000


def definition(**changes):
    return {
        "id": "autumn-sale",
        "sender": "news@example.com",
        "audience": {"lists": [LIST]},
        "variants": [{"name": "a", "weight": 50, "template": "spring-a"},
                     {"name": "b", "weight": 50, "template": "spring-b"}],
        "thresholds": {"complaint": {"warn": 0.0005, "halt": 0.0008}, "min_sends": 200},
        **changes,
    }


@pytest.fixture
def audience(stack):
    simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)  # a production account: not about pacing
    statuses = {f"user{i:04d}@example.org": "ACTIVE" for i in range(RECIPIENTS)}
    seed(stack, statuses)
    return statuses


def every_tenth_b_complains(message):
    """A variant whose content offends: every 10th recipient of variant b complains."""
    return ["complaint"] if message.tags.get("variant") == "b" and int(message.to[0][4:8]) % 10 == 0 else []


def sent_counts():
    return Counter(r for m in simulator().outbox for r in m.to)


def test_complaint_spike_halts_mid_send_then_a_resume_with_raised_thresholds_sends_the_rest_once(
        stack, audience, monkeypatch):
    halted_at: list[int] = []
    original_halt = campaign_breaker.halt

    def halt(campaign_id, verdict, settings):
        tripped = original_halt(campaign_id, verdict, settings)
        if tripped:
            halted_at.append(len(simulator().outbox))
        return tripped

    monkeypatch.setattr(campaign_breaker, "halt", halt)
    with Feedback(stack, every_tenth_b_complains):
        result = stack.run("CampaignStateMachine", definition())

    assert (result.status, result.error) == ("FAILED", "CampaignHalted"), result.cause
    cause = json.loads(result.cause)
    assert "complaint" in cause["reason"]
    sent = sent_counts()
    assert set(sent.values()) == {1} and 0 < len(sent) < RECIPIENTS
    (at_halt,) = halted_at
    after = simulator().outbox[at_halt:]
    calls_after = {(m.tags["batch"], m.tags["variant"]) for m in after}
    assert len(calls_after) <= 10, "more SES calls after the halt than batches in flight (MaxConcurrency 10)"
    control = stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"],
                                                Key={"campaign_id": {"S": "autumn-sale"}})["Item"]
    assert control["status"]["S"] == "HALTED" and json.loads(control["halt"]["S"])["metric"] == "complaint"
    alerts = stack.client("sns").list_topics()  # the alert went to the AlertTopic (counted by the meter)
    assert alerts and stack.meter.snapshot()["api_calls"].get("sns:Publish", 0) >= 1

    raised = definition(thresholds={"complaint": {"warn": 0.2, "halt": 0.5}, "min_sends": 200}, resume=True)
    resumed = stack.run("CampaignStateMachine", raised)

    assert resumed.status == "SUCCEEDED", (resumed.error, resumed.cause)
    sent = sent_counts()
    assert set(sent.values()) == {1}, "someone got the campaign twice"
    assert set(sent) == set(audience)
    assert resumed.output["status"] == "COMPLETED"
    assert resumed.output["accounted"]["sent"] == RECIPIENTS and resumed.output["accounted"]["unknown"] == 0


def test_pause_stops_before_the_next_batch_and_resume_sends_only_the_rest(stack, audience):
    config = None

    def pause_after(count):
        nonlocal config
        if count >= 300 and config is None:
            from app.settings import Settings
            outputs = stack.outputs
            config = Settings(recipients_table=outputs["RecipientsTableName"],
                              campaigns_table=outputs["CampaignsTableName"], sends_table=outputs["SendsTableName"],
                              events_table=outputs["EventsTableName"], manifest_bucket=outputs["ManifestBucketName"],
                              alert_topic_arn=outputs["AlertTopicArn"],
                              configuration_set=outputs["ConfigurationSetName"], feedback_dlq_url=None,
                              lifecycle_state_machine_arn=None, lifecycle_policy=None)
            assert campaign_control.change_status("calm-sale", campaign_control.PAUSED, config)

    with Feedback(stack, lambda message: [], on_sent=pause_after):
        paused = stack.run("CampaignStateMachine", definition(id="calm-sale", thresholds={}))

    assert paused.status == "SUCCEEDED" and paused.output["status"] == "PAUSED"
    first = sent_counts()
    assert 300 <= len(first) < RECIPIENTS
    assert paused.output["accounted"]["not_sent"] + len(first) == RECIPIENTS - paused.output["accounted"]["unknown"]

    resumed = stack.run("CampaignStateMachine", definition(id="calm-sale", thresholds={}, resume=True))

    assert resumed.status == "SUCCEEDED" and resumed.output["status"] == "COMPLETED", (resumed.error, resumed.cause)
    sent = sent_counts()
    assert set(sent.values()) == {1} and set(sent) == set(audience)


def test_a_cancelled_campaign_stops_and_cannot_be_resumed(stack, audience):
    outputs = stack.outputs

    def cancel_after(count):
        if count >= 200:
            stack.client("dynamodb").update_item(
                TableName=outputs["CampaignsTableName"], Key={"campaign_id": {"S": "gone-sale"}},
                UpdateExpression="SET #s = :c", ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":c": {"S": "CANCELLED"}})

    with Feedback(stack, lambda message: [], on_sent=cancel_after):
        cancelled = stack.run("CampaignStateMachine", definition(id="gone-sale", thresholds={}))

    assert cancelled.output["status"] == "CANCELLED" and len(sent_counts()) < RECIPIENTS
    again = stack.run("CampaignStateMachine", definition(id="gone-sale", thresholds={}, resume=True))
    assert (again.status, again.error) == ("FAILED", "CampaignNotResumable")


def test_a_pause_during_a_wait_for_the_send_rate_stops_the_batch_before_its_call(stack, audience, monkeypatch):
    # SendBatch waits up to 10 s for the governor's grant; an operator's pause during that wait must stop the
    # batch before the call it waited for, not after it.
    from app.handlers import send_batch

    original, paused_at, waited = send_batch._acquire_or_wait, [], set()

    def slow_grant(campaign, todo, position, left, config):
        granted = original(campaign, todo, position, left, config)
        if len(simulator().outbox) >= 300 and not paused_at:
            assert campaign_control.change_status(campaign.id, campaign_control.PAUSED, config)
            paused_at.append(len(simulator().outbox))
            waited.update(address for address, _, _ in todo[position:position + granted])
            stack.clock.sleep(5)  # the rest of the wait for the grant, during which the pause came
        return granted

    monkeypatch.setattr(send_batch, "_acquire_or_wait", slow_grant)
    paused = stack.run("CampaignStateMachine", definition(id="calm-sale", thresholds={}))

    assert paused.status == "SUCCEEDED" and paused.output["status"] == "PAUSED"
    (at_pause,) = paused_at
    assert waited and not waited & set(sent_counts())  # the call the grant was for was never made
    after = {m.tags["batch"] for m in simulator().outbox[at_pause:]}
    # Only calls already past their check when the pause came (other batches in flight, MaxConcurrency 10) go out.
    assert len(after) < 10, after
