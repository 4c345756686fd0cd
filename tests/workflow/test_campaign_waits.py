"""A campaign that must wait for the account's 24-hour quota or its send rate: the waits happen where AWS allows them
(minutes or hours in the Standard execution; seconds in an EXPRESS SendPhase child, within its five minutes), and
everyone still gets exactly one email."""

from collections import Counter
from datetime import timedelta

import pytest

from sesflow.engine.ses import simulator
from tests.workflow.test_campaign import seed
from tests.workflow.test_campaign_scale import add_recipients, definition, powertools_metrics  # noqa: F401


def sent_once(stack, audience: set[str]) -> None:
    sent = Counter(r for m in simulator().outbox for r in m.to)
    assert set(sent.values()) == {1}, "someone got the campaign twice"
    assert set(sent) == audience


def states_entered(stack, arn: str) -> Counter:
    return Counter(e["stateEnteredEventDetails"]["name"] for e in stack.history(arn) if "stateEnteredEventDetails" in e)


@pytest.mark.slow
def test_campaign_waits_hours_for_the_daily_quota_in_its_execution_when_the_quota_runs_out(stack):
    """150 recipients, a quota of 100 a day: the first 100 go at once, the rest when the first sends are 24 hours
    old. The wait is in the parent (an EXPRESS child would be ended after five minutes, the campaign PAUSED)."""
    simulator().configure(enforce_rate=True, max_send_rate=50, max_24h_send=100)
    seed(stack, {})
    audience = add_recipients(stack, "daily", 150)
    started = stack.clock.now()

    result = stack.run("CampaignStateMachine", definition("daily", "daily"), timeout=600, poll=0.2)

    assert (result.status, result.output["status"]) == ("SUCCEEDED", "COMPLETED"), (result.error, result.cause)
    sent_once(stack, audience)
    times = sorted(m.sent_at for m in simulator().outbox)
    assert times[99] - started < timedelta(hours=1)  # the first day's quota went out at once
    assert timedelta(hours=24) <= times[100] - started < timedelta(hours=25)  # the rest a day later
    entered = states_entered(stack, result.arn)
    assert entered["WaitForDeferral"] >= 1
    assert result.history_events < 2_000  # the waits cost a few events each, none per recipient
    claims = stack.client("dynamodb").scan(TableName=stack.outputs["SendsTableName"])["Items"]
    assert {c["status"]["S"] for c in claims} == {"SENT"}
    control = stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"],
                                                Key={"campaign_id": {"S": "daily"}})["Item"]
    assert "deferred_until" not in control  # the execution cleared its last wait


@pytest.mark.slow
def test_everyone_gets_one_email_at_the_account_rate_when_batches_must_wait_for_it(stack):
    """A send rate of 2 a second and ten batches in flight: the governor has the rate booked minutes ahead, so
    batches wait (in their child when it fits, else in the parent) and none goes over the rate or is sent twice."""
    rate = 2
    simulator().configure(enforce_rate=True, max_send_rate=rate, max_24h_send=1_000_000)
    seed(stack, {})
    audience = add_recipients(stack, "slow", 600)

    result = stack.run("CampaignStateMachine", definition("slow", "slow"), timeout=600, poll=0.2)

    assert (result.status, result.output["status"]) == ("SUCCEEDED", "COMPLETED"), (result.error, result.cause)
    print("ACCOUNTED", result.output.get("accounted"), states_entered(stack, result.arn))
    claims = stack.client("dynamodb").scan(TableName=stack.outputs["SendsTableName"])["Items"]
    print("CLAIMS", sorted((c["batch"]["S"], c["status"]["S"], c.get("next", {}).get("N")) for c in claims))
    sent_once(stack, audience)
    times = sorted(m.sent_at for m in simulator().outbox)
    busiest = max(sum(1 for u in times if t - timedelta(seconds=1) < u <= t) for t in sorted(set(times)))
    assert busiest <= rate
    assert states_entered(stack, result.arn)["RecordFailure"] == 0
