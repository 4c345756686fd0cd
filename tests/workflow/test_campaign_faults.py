"""The fault matrix of issue 5, on the engine: a campaign of a few hundred recipients and three variants meets a
crash of SendBatch before or after its SES call, SES throttling, DynamoDB throttling, a Lambda retry and a halt with
a resume. What a user would notice is checked each time: nobody got the campaign twice, and every recipient the
campaign should reach is accounted for (sent, failed, not sent, unknown-and-confirmed or unknown), with `unknown`
only where an SES call's outcome really was unknown, and those never resent.

Faults come from sesflow.engine.faults (an AWS call failing as AWS can make it fail) or from a crash of SendBatch
itself (its module's functions patched: the engine runs handlers in-process).
"""

import json
import threading
import zlib
from collections import Counter
from datetime import timedelta

import pytest
from app import campaign_control, sends
from app.domain.campaign import HOLDOUT, assign_variant, parse_campaign
from app.settings import Settings

from sesflow.engine import faults
from sesflow.engine.ses import feedback_record, simulator
from tests.workflow.test_campaign import LIST, seed

CAMPAIGN = "fault-sale"
OUTCOMES = ("sent", "failed", "not_sent", "unknown_confirmed", "unknown")

def definition(**changes):
    return {
        "id": CAMPAIGN,
        "sender": "news@example.com",
        "audience": {"lists": [LIST]},
        "variants": [{"name": "a", "weight": 50, "template": "spring-a"},
                     {"name": "b", "weight": 30, "template": "spring-b"},
                     {"name": "c", "weight": 20, "template": "spring-c"}],
        "holdout_percent": 10,
        **changes,
    }


@pytest.fixture
def audience(stack):
    simulator().configure(max_send_rate=1000, max_24h_send=1_000_000, enforce_rate=False)  # not about pacing
    statuses = {f"user{i:03d}@example.org": "ACTIVE" for i in range(290)}
    statuses |= {f"probation{i}@example.org": "RECOVERY" for i in range(10)}
    statuses |= {f"gone{i}@example.org": "SUPPRESSED" for i in range(5)}
    statuses |= {f"resting{i}@example.org": "QUARANTINED" for i in range(5)}
    seed(stack, statuses)
    return statuses


def expected(audience) -> set[str]:
    """Who the campaign is for: the eligible recipients, less the holdout."""
    campaign = parse_campaign(definition())
    return {a for a, status in audience.items()
            if status in ("ACTIVE", "RECOVERY") and assign_variant(campaign, a) != HOLDOUT}


def holdout(audience) -> int:
    campaign = parse_campaign(definition())
    return sum(s in ("ACTIVE", "RECOVERY") and assign_variant(campaign, a) == HOLDOUT for a, s in audience.items())


def sent_once(audience) -> set[str]:
    """Who got the campaign, after checking nobody got it twice and nobody outside the campaign got it."""
    sent = Counter(r for m in simulator().outbox for r in m.to)
    twice = {a: n for a, n in sent.items() if n > 1}
    assert not twice, f"{len(twice)} recipients got the campaign more than once"
    assert set(sent) <= expected(audience), "an ineligible or held-out recipient got the campaign"
    return set(sent)


def assert_accounted(accounted: dict[str, int], audience, unknown: int = 0) -> None:
    """Every recipient the campaign is for is in exactly one outcome; `unknown` (confirmed or not) only as given."""
    assert set(accounted) == set(OUTCOMES), accounted
    assert sum(accounted.values()) == len(expected(audience)), accounted
    assert accounted["unknown"] + accounted["unknown_confirmed"] == unknown, accounted
    assert accounted["failed"] == 0, accounted


def config(stack) -> Settings:
    outputs = stack.outputs
    return Settings(recipients_table=outputs["RecipientsTableName"], campaigns_table=outputs["CampaignsTableName"],
                    sends_table=outputs["SendsTableName"], events_table=outputs["EventsTableName"],
                    manifest_bucket=outputs["ManifestBucketName"], alert_topic_arn=outputs["AlertTopicArn"],
                    configuration_set=outputs["ConfigurationSetName"], feedback_dlq_url=None,
                    lifecycle_state_machine_arn=None, lifecycle_policy=None)


def claims(stack) -> dict[str, dict[str, str]]:
    items = stack.client("dynamodb").query(
        TableName=stack.outputs["SendsTableName"], KeyConditionExpression="campaign_id = :c",
        ExpressionAttributeValues={":c": {"S": CAMPAIGN}})["Items"]
    return {i["batch"]["S"]: {k: next(iter(v.values())) for k, v in i.items()} for i in items}


def campaign_status(stack) -> str:
    return stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"],
                                             Key={"campaign_id": {"S": CAMPAIGN}})["Item"]["status"]["S"]


def run_to_the_end(stack, campaign):
    """Run the campaign; if SendBatch's failure failed the run and left the campaign RUNNING (BUG_CRASH_NOT_RETRIED),
    take the operator's way out: pause it, then resume it."""
    result = stack.run("CampaignStateMachine", campaign)
    if result.status == "FAILED" and campaign_status(stack) == campaign_control.RUNNING:
        assert result.error == "States.ExceedToleratedFailureThreshold", (result.error, result.cause)
        assert campaign_control.change_status(CAMPAIGN, campaign_control.PAUSED, config(stack))
        result = stack.run("CampaignStateMachine", {**campaign, "resume": True})
    return result


def feed(stack, kind: str, messages) -> None:
    """SES's feedback for these messages, through the feedback queue and IngestFeedbackFunction."""
    sqs, queue = stack.client("sqs"), stack.outputs["FeedbackQueueUrl"]
    for message in messages:
        record = feedback_record(kind, message.to[0], stack.clock.now(), message.message_id,
                                 tags={k: [v] for k, v in message.tags.items()})
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(record))
    stack.deliver_queues()


# Step Functions' error for a Lambda that ran out of time: SendBatch "crashes" with it (any unhandled error is alike).
Timedout = type("Sandbox.Timedout", (Exception,), {})


class Crash:
    """SendBatch dies once, at its `nth` SES call (of those `only(variant, addresses)` accepts), at `point`:
    "before the in-flight mark" (after its claim, before the first call of a batch is marked), "before the call"
    (marked in flight, SES never called) or "after the call" (SES sent, the answer never recorded). `group`: the
    recipients of that call; `batch`: its batch."""

    POINTS = ("before the in-flight mark", "before the call", "after the call")

    def __init__(self, monkeypatch, point: str, nth: int = 2, only=None):
        import app.handlers.send_batch as send_batch

        assert point in self.POINTS
        self.point, self.nth, self.only, self.seen = point, nth, only, 0
        self.group: list[str] = []
        self.batch: str | None = None
        self._lock = threading.Lock()
        real_mark, real_call = sends.in_flight, send_batch.send_call

        def in_flight(campaign_id, batch, position, count, settings, failed=None, owner=""):
            if point == self.POINTS[0] and position == 0 and self._due(batch, None, []):
                raise Timedout(f"crashed after claiming {batch}, before marking its first call")
            return real_mark(campaign_id, batch, position, count, settings, failed=failed, owner=owner)

        def send_call(campaign, variant, probation, addresses, batch, *rest):
            if point == self.POINTS[1] and self._due(batch, variant, addresses):
                raise Timedout(f"crashed before calling SES for {len(addresses)} recipients of {batch}")
            accepted = real_call(campaign, variant, probation, addresses, batch, *rest)
            if point == self.POINTS[2] and self._due(batch, variant, addresses):
                raise Timedout(f"crashed after SES sent to {len(addresses)} recipients of {batch}")
            return accepted

        monkeypatch.setattr(sends, "in_flight", in_flight)
        monkeypatch.setattr(send_batch, "send_call", send_call)

    def _due(self, batch: str, variant: str | None, addresses: list[str]) -> bool:
        if self.only is not None and not self.only(variant, addresses):
            return False
        with self._lock:
            self.seen += 1
            if self.seen != self.nth:
                return False
            self.batch, self.group = batch, list(addresses)
            return True


# --------------------------------------------------------------------------- crash before and after the SES call


@pytest.mark.parametrize("point", Crash.POINTS)
def test_a_send_batch_that_crashes_is_retried_and_the_campaign_completes_with_nobody_twice(
        stack, audience, monkeypatch, point):
    crash = Crash(monkeypatch, point)

    result = stack.run("CampaignStateMachine", definition())

    assert crash.batch is not None, "SendBatch never crashed"
    sent = sent_once(audience)
    unknown = 0 if point == "before the in-flight mark" else len(crash.group)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.output["status"] == "COMPLETED"
    assert_accounted(result.output["accounted"], audience, unknown=unknown)
    if point == "before the call":  # marked in flight, so unknown: never sent, never resent
        assert not sent & set(crash.group)
        assert sent == expected(audience) - set(crash.group)
    else:
        assert sent == expected(audience)


def test_a_crash_after_the_ses_call_leaves_its_recipients_unknown_never_resent_and_feedback_confirms_them(
        stack, audience, monkeypatch):
    crash = Crash(monkeypatch, "after the call")

    result = run_to_the_end(stack, definition())

    assert result.status == "SUCCEEDED" and result.output["status"] == "COMPLETED", (result.error, result.cause)
    sent = sent_once(audience)
    assert sent == expected(audience)  # the crashed call did send; nobody of it got a second email
    assert_accounted(result.output["accounted"], audience, unknown=len(crash.group))
    assert result.output["accounted"]["unknown"] == len(crash.group)
    assert int(claims(stack)[crash.batch]["unknown"]) == len(crash.group)

    # SES's Delivery events for the messages of the call whose answer was lost reconcile them.
    feed(stack, "delivery", [m for m in simulator().outbox if m.to[0] in crash.group])

    reconciled = sends.summary(CAMPAIGN, config(stack), audience=len(expected(audience)))
    assert (reconciled["unknown_confirmed"], reconciled["unknown"]) == (len(crash.group), 0)
    assert_accounted(reconciled, audience, unknown=len(crash.group))
    assert sent_once(audience) == expected(audience)


def test_deliveries_to_the_rest_of_a_batch_do_not_confirm_unknown_recipients_that_were_never_sent(
        stack, audience, monkeypatch):
    # The snapshot cuts each variant's recipients, those on probation last, into batches of 50, so variant a's
    # call of fewer than 50 shares its batch with another call (its probationers'), which is sent.
    assert sum(assign_variant(parse_campaign(definition()), a) == "a" for a in expected(audience)) % 50
    crash = Crash(monkeypatch, "before the call", nth=1, only=lambda variant, addresses: (
        variant == "a" and len(addresses) < 50))
    result = run_to_the_end(stack, definition())
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    sent = sent_once(audience)
    assert not sent & set(crash.group) and sent == expected(audience) - set(crash.group)
    assert int(claims(stack)[crash.batch]["recipients"]) > len(crash.group)  # others of the batch were sent

    # SES reports a Delivery for every message it sent (none for the crashed call: it was never made).
    feed(stack, "delivery", list(simulator().outbox))

    reconciled = sends.summary(CAMPAIGN, config(stack), audience=len(expected(audience)))
    assert (reconciled["unknown_confirmed"], reconciled["unknown"]) == (0, len(crash.group))


# --------------------------------------------------------------------------- SES: a lost answer, throttling


@pytest.mark.parametrize("lost", ["InternalFailure", "timeout"])
def test_an_ses_call_whose_answer_is_lost_is_never_resent(stack, audience, lost):
    fault = faults.ses_internal_failure(calls=2) if lost == "InternalFailure" else faults.ses_timeout(calls=2)
    with fault as lost_answer:
        result = stack.run("CampaignStateMachine", definition())

    assert lost_answer.fired == [2]
    group = [e["Destination"]["ToAddresses"][0] for e in lost_answer.hits[0].params["BulkEmailEntries"]]
    assert sent_once(audience) == expected(audience)  # SES did send that call: once
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert_accounted(result.output["accounted"], audience, unknown=len(group))


def test_ses_throttling_stops_the_batch_and_the_maps_retry_sends_the_rest_once(stack, audience):
    simulator().configure(enforce_rate=True, max_send_rate=100)
    # SES refuses four calls in a row for its rate: more than botocore's own attempts, so SendBatch sees it.
    with faults.inject("sesv2", "SendBulkEmail", error="TooManyRequestsException", status=429,
                       message="Maximum sending rate exceeded.", calls=range(2, 6)) as throttled:
        result = stack.run("CampaignStateMachine", definition())

    assert throttled.fired == [2, 3, 4, 5]
    assert result.status == "SUCCEEDED" and result.output["status"] == "COMPLETED", (result.error, result.cause)
    assert sent_once(audience) == expected(audience)
    assert result.output["accounted"] == {"sent": len(expected(audience)), "failed": 0, "not_sent": 0,
                                          "unknown_confirmed": 0, "unknown": 0}
    assert {c["status"] for c in claims(stack).values()} == {sends.SENT}


# --------------------------------------------------------------------------- DynamoDB throttling


def test_brief_dynamodb_throttling_of_the_claims_and_the_rate_governor_is_absorbed(stack, audience):
    governor = faults.table(stack.outputs["CampaignsTableName"])
    with faults.dynamodb_throttled(stack.outputs["SendsTableName"], calls=[2, 3, 5, 8, 13]) as on_claims, \
            faults.inject("dynamodb", "UpdateItem", error="ProvisionedThroughputExceededException",
                          where=lambda call: governor(call) and call.params["Key"]["campaign_id"]["S"] == "#governor",
                          calls=[1, 4, 5]) as on_governor:
        result = stack.run("CampaignStateMachine", definition())

    assert on_claims.fired == [2, 3, 5, 8, 13] and on_governor.fired == [1, 4, 5]
    assert result.status == "SUCCEEDED" and result.output["status"] == "COMPLETED", (result.error, result.cause)
    assert sent_once(audience) == expected(audience)
    assert_accounted(result.output["accounted"], audience)
    assert result.output["accounted"]["sent"] == len(expected(audience))


def test_dynamodb_throttling_that_outlasts_the_sdk_retries_is_retried_by_the_workflow(stack, audience):
    # Six refusals in a row on SendsTable: more than botocore's attempts for one write and the next.
    with faults.dynamodb_throttled(stack.outputs["SendsTableName"], calls=range(3, 9)) as throttled:
        result = stack.run("CampaignStateMachine", definition())

    assert throttled.fired == [3, 4, 5, 6, 7, 8]
    assert sent_once(audience) == expected(audience)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert_accounted(result.output["accounted"], audience)  # refused writes are known: nothing unknown


def test_dynamodb_throttling_of_the_workflows_own_status_check_is_retried(stack, audience):
    campaigns = faults.table(stack.outputs["CampaignsTableName"])
    with faults.inject("dynamodb", "GetItem", error="ProvisionedThroughputExceededException",
                       where=lambda call: campaigns(call) and call.params.get("ProjectionExpression") == "#status",
                       calls=1) as throttled:
        result = stack.run("CampaignStateMachine", definition())

    assert throttled.fired == [1]  # CheckCampaign, after the send phase
    assert sent_once(audience) == expected(audience)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert_accounted(result.output["accounted"], audience)


# --------------------------------------------------------------------------- Lambda retry


@pytest.mark.parametrize("ran", [False, True], ids=["invoke refused", "answer lost after the function ran"])
def test_a_lambda_service_error_on_send_batch_is_retried_and_nobody_gets_two_emails(stack, audience, ran):
    function = stack.physical_id("SendBatchFunction")
    with faults.lambda_service_exception(function, calls=2, after=ran) as service_error:
        result = stack.run("CampaignStateMachine", definition())

    assert service_error.fired == [2]
    assert result.status == "SUCCEEDED" and result.output["status"] == "COMPLETED", (result.error, result.cause)
    assert sent_once(audience) == expected(audience)
    assert result.output["accounted"] == {"sent": len(expected(audience)), "failed": 0, "not_sent": 0,
                                          "unknown_confirmed": 0, "unknown": 0}
    batches = len(claims(stack))
    invocations = stack.meter.snapshot()["lambda_invocations"][function]
    assert invocations == batches + ran  # the function ran again after its answer was lost, and sent nothing


# --------------------------------------------------------------------------- resume after halt


def test_a_halt_mid_send_then_a_resume_sends_the_rest_with_nobody_twice_and_everyone_accounted_for(
        stack, audience, monkeypatch):
    import app.handlers.send_batch as send_batch

    real_call = send_batch.send_call
    campaign = parse_campaign(definition())  # a third of variant b's recipients are addresses that no longer exist
    bouncing = {a for a in expected(audience) if assign_variant(campaign, a) == "b" and zlib.crc32(a.encode()) % 3 == 0}

    def send_call(campaign, variant, probation, addresses, *rest):
        accepted = real_call(campaign, variant, probation, addresses, *rest)
        # SES's hard bounces for this call arrive at once and go through ingestion, which trips the breaker.
        feed(stack, "hard_bounce", [m for m in simulator().outbox[-len(addresses):] if m.to[0] in bouncing])
        return accepted

    monkeypatch.setattr(send_batch, "send_call", send_call)
    thresholds = {"bounce": {"warn": 0.02, "halt": 0.04}, "min_sends": 50}
    halted = stack.run("CampaignStateMachine", definition(thresholds=thresholds))

    assert (halted.status, halted.error) == ("FAILED", "CampaignHalted"), halted.cause
    first = sent_once(audience)
    assert 0 < len(first) < len(expected(audience))
    at_halt = sends.summary(CAMPAIGN, config(stack), audience=len(expected(audience)))
    assert_accounted(at_halt, audience)
    assert at_halt["sent"] == len(first) and at_halt["not_sent"] == len(expected(audience)) - len(first)

    raised = {"bounce": {"warn": 0.5, "halt": 0.9}, "min_sends": 50}
    resumed = stack.run("CampaignStateMachine", definition(thresholds=raised, resume=True))

    assert resumed.status == "SUCCEEDED" and resumed.output["status"] == "COMPLETED", (resumed.error, resumed.cause)
    assert sent_once(audience) == expected(audience)
    assert resumed.output["accounted"] == {"sent": len(expected(audience)), "failed": 0, "not_sent": 0,
                                           "unknown_confirmed": 0, "unknown": 0}
    assert resumed.output["holdout"] == holdout(audience)


def test_a_dynamodb_server_error_in_the_workflows_own_status_check_is_retried(stack, audience):
    """DynamoDB answers 500 InternalServerError four times: Step Functions reports it as DynamoDB.InternalServerError
    (the API's code, no Exception appended), which the workflow's Retry must name or the campaign fails."""
    campaigns = faults.table(stack.outputs["CampaignsTableName"])
    with faults.inject("dynamodb", "GetItem", error="InternalServerError", status=500,
                       message="Internal server error", calls=range(1, 5),
                       where=lambda call: campaigns(call) and call.params.get("ProjectionExpression") == "#status",
                       ) as failing:
        result = stack.run("CampaignStateMachine", definition())

    assert failing.fired == [1, 2, 3, 4]
    assert result.status == "SUCCEEDED" and result.output["status"] == "COMPLETED", (result.error, result.cause)
    assert sent_once(audience) == expected(audience)


def test_every_send_phase_child_running_twice_sends_nobody_a_second_email(stack, audience):
    """EXPRESS executions are at-least-once: here every SendPhase child is delivered twice (the second after the
    first ends); the claims make the second a no-op."""
    stack.runtime.express_redelivery = 1.0

    result = stack.run("CampaignStateMachine", definition())

    assert result.status == "SUCCEEDED" and result.output["status"] == "COMPLETED", (result.error, result.cause)
    assert sent_once(audience) == expected(audience)
    assert_accounted(result.output["accounted"], audience)
    batches = len(claims(stack))
    children = sum(n for (name, kind), n in stack.meter.executions.items() if kind == "EXPRESS")
    assert children == 2 * batches


def test_a_send_batch_whose_claim_was_taken_over_between_calls_makes_no_further_call(stack, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", stack.region)  # app.sends' client, outside an invocation
    # The first invocation made its first call; while that call can still be running the batch is busy. Once
    # its mark is older than any invocation lives, a rerun of the phase (or a retry) takes the batch over as it
    # would a crashed one's: that call becomes unknown, the rerun sends from after it.
    settings, batch = config(stack), "all#000001"
    assert sends.claim(CAMPAIGN, batch, 100, settings, owner="first") == (0, None)
    assert sends.in_flight(CAMPAIGN, batch, 0, 50, settings, owner="first")
    assert sends.claim(CAMPAIGN, batch, 100, settings, owner="rerun") == (None, sends.SENDING)  # busy
    later = sends.clock.now() + timedelta(seconds=sends.IN_FLIGHT_STALE_SECONDS + 1)
    monkeypatch.setattr(sends.clock, "now", lambda: later)
    assert sends.claim(CAMPAIGN, batch, 100, settings, owner="rerun") == (50, None)

    assert not sends.in_flight(CAMPAIGN, batch, 50, 50, settings, owner="first")  # it must not call SES
    assert sends.in_flight(CAMPAIGN, batch, 50, 50, settings, owner="rerun")
    sends.finish(CAMPAIGN, batch, sends.SENT, 100, settings, owner="first")  # no effect: not its claim any more
    item = stack.client("dynamodb").get_item(TableName=stack.outputs["SendsTableName"],
                                             Key=sends._key(CAMPAIGN, batch))["Item"]
    assert (item["status"]["S"], item["inflight"]["N"], item["claimed_by"]["S"]) == ("SENDING", "50", "rerun")


def test_a_batch_busy_in_another_invocations_call_is_asked_for_again_not_skipped(stack, audience, monkeypatch):
    """A rerun of the phase meets a batch whose call is in flight in an invocation of the failed Map Run, which
    nothing may retry: the rerun's child must come back for the rest, not end as if the batch were done."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", stack.region)  # app.sends' client, outside an invocation
    settings, batch = config(stack), "all#000000"
    sends.claim(CAMPAIGN, batch, 50, settings, owner="earlier run")
    sends.in_flight(CAMPAIGN, batch, 0, 2, settings, owner="earlier run")
    campaign = parse_campaign(definition())
    stack.client("dynamodb").put_item(TableName=stack.outputs["CampaignsTableName"], Item={
        "campaign_id": {"S": CAMPAIGN}, "status": {"S": "RUNNING"}, "definition": {"S": json.dumps(definition())}})
    recipients = [{"address": a, "variant": "a"} for a in sorted(expected(audience))[:50]]
    payload = {"campaign": campaign.to_dict(), "phase": "all", "decision": {},
               "batch": {"index": 0, "recipients": recipients}}

    answer = json.loads(stack.client("lambda").invoke(
        FunctionName=stack.physical_id("SendBatchFunction"), Payload=json.dumps(payload))["Payload"].read())

    assert "skipped" not in answer and answer["wait_seconds"] > 0, answer
    assert simulator().outbox == []  # nothing sent while the other call may still be running
