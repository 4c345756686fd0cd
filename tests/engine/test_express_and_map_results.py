"""EXPRESS Distributed Map children and Map results on the engine, as AWS runs them: an EXPRESS child ends after five
minutes, has its own execution context, and a Map's gathered result is held to 256 KiB unless a ResultWriter
takes it to S3."""

from __future__ import annotations

import json

from sesflow.engine.limits import EXPRESS_MAX_SECONDS, PAYLOAD_LIMIT_BYTES
from tests.engine.conftest import BUCKET
from tests.engine.test_sfn_patches import output, run


def express_map(child: dict, *, tolerance: dict | None = None, writer: dict | None = None, **map_fields) -> dict:
    """A JSONata state machine whose Distributed Map runs `child` as EXPRESS children over input.items."""
    state = {"Type": "Map", "Items": "{% $states.input.items %}", "End": True,
             "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"}, **child},
             **(tolerance or {}), **map_fields}
    if writer is not None:
        state["ResultWriter"] = writer
    return {"QueryLanguage": "JSONata", "StartAt": "Each", "States": {"Each": state}}


def waits(seconds: int) -> dict:
    return {"StartAt": "Rest", "States": {
        "Rest": {"Type": "Wait", "Seconds": seconds, "Next": "Done"},
        "Done": {"Type": "Pass", "Output": {"done": True}, "End": True}}}


def test_express_child_times_out_when_it_would_run_past_five_minutes(client):
    described = run(client, express_map(waits(EXPRESS_MAX_SECONDS + 60)), {"items": [1]})

    assert described["status"] == "FAILED"
    assert described["error"] == "States.ExceedToleratedFailureThreshold"
    map_run = client.list_map_runs(executionArn=described["executionArn"])["mapRuns"][0]
    counts = client.describe_map_run(mapRunArn=map_run["mapRunArn"])["itemCounts"]
    assert (counts["timedOut"], counts["succeeded"]) == (1, 0)


def test_express_child_succeeds_when_it_waits_within_five_minutes(client):
    assert output(run(client, express_map(waits(EXPRESS_MAX_SECONDS - 60)), {"items": [1, 2]})) == [
        {"done": True}, {"done": True}]


def test_express_child_stops_retrying_when_its_back_off_passes_five_minutes(client, engine):
    """A Retry that would wait 15 minutes inside an EXPRESS child (as a quota wait once did): the child ends at its
    deadline and the Task is not attempted again after it."""
    attempts = []
    child = {"StartAt": "Try", "States": {"Try": {
        "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
        "Arguments": {"Bucket": BUCKET, "Key": "missing.json"},
        "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 900, "MaxAttempts": 100, "BackoffRate": 1.0}],
        "End": True}}}
    from moto.core.botocore_stubber import BotocoreStubber

    original = BotocoreStubber.__call__

    def counting(self, event_name, request, **kwargs):
        if "GetObject" in event_name:
            attempts.append(event_name)
        return original(self, event_name, request, **kwargs)

    BotocoreStubber.__call__ = counting
    try:
        described = run(client, express_map(child), {"items": [1]})
    finally:
        BotocoreStubber.__call__ = original

    assert described["status"] == "FAILED"
    assert len(attempts) == 1, f"the Task ran {len(attempts)} times; the 2nd attempt would be 15 minutes in"


def test_express_child_has_its_own_execution_context_when_the_parent_waited_first(client):
    child = {"StartAt": "Who", "States": {"Who": {"Type": "Pass", "End": True, "Output": {
        "name": "{% $states.context.Execution.Name %}", "started": "{% $states.context.Execution.StartTime %}"}}}}
    definition = express_map(child)
    definition["StartAt"] = "Later"
    definition["States"]["Later"] = {"Type": "Wait", "Seconds": 3600, "Next": "Each"}

    described = run(client, definition, {"items": [1, 2]})

    children = output(described)
    parent_start = described["startDate"]
    assert len({c["name"] for c in children}) == 2, "each child is its own execution"
    assert all(c["started"] > parent_start.isoformat()[:19] for c in children)  # an hour after the parent began


def test_map_fails_with_data_limit_when_its_gathered_result_is_over_256_kib(client):
    child = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True,
                                                    "Output": {"padding": "{% $pad('', 1000, 'x') %}"}}}}
    items = list(range(PAYLOAD_LIMIT_BYTES // 1000 + 10))  # ~266 results of ~1 KB

    described = run(client, express_map(child, Output={}), {"items": items})

    assert described["status"] == "FAILED"
    assert described["error"] == "States.DataLimitExceeded"
    assert "gathered result" in described["cause"]


def test_map_output_stays_small_when_a_result_writer_takes_the_results_to_s3(client, bucket):
    child = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True,
                                                    "Output": {"padding": "{% $pad('', 1000, 'x') %}"}}}}
    items = list(range(PAYLOAD_LIMIT_BYTES // 1000 + 10))
    writer = {"Resource": "arn:aws:states:::s3:putObject", "Arguments": {"Bucket": BUCKET, "Prefix": "results/"}}

    details = output(run(client, express_map(child, writer=writer), {"items": items}))

    assert set(details) == {"MapRunArn", "ResultWriterDetails"}
    manifest = json.loads(bucket.get_object(Bucket=BUCKET, Key=details["ResultWriterDetails"]["Key"])["Body"].read())
    (succeeded,) = manifest["ResultFiles"]["SUCCEEDED"]
    results = json.loads(bucket.get_object(Bucket=BUCKET, Key=succeeded["Key"])["Body"].read())
    assert len(results) == len(items)
    assert json.loads(results[0]["Output"]) == {"padding": "x" * 1000}


def test_map_run_starts_no_more_children_when_its_tolerance_is_exceeded(client):
    child = {"StartAt": "Check", "States": {
        "Check": {"Type": "Choice", "Default": "Fine",
                  "Choices": [{"Condition": "{% $states.input = 0 %}", "Next": "Broken"}]},
        "Broken": {"Type": "Fail", "Error": "Broken"},
        "Fine": {"Type": "Succeed"}}}

    described = run(client, express_map(child, tolerance={"ToleratedFailurePercentage": 0.0}, MaxConcurrency=1),
                    {"items": list(range(50))})

    assert (described["status"], described["error"]) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    map_run = client.list_map_runs(executionArn=described["executionArn"])["mapRuns"][0]
    counts = client.describe_map_run(mapRunArn=map_run["mapRunArn"])["itemCounts"]
    assert (counts["failed"], counts["succeeded"]) == (1, 0), counts  # the first item failed; none ran after it


def test_express_child_waiting_for_a_timestamp_hours_away_ends_at_five_minutes(client, engine):
    """A Wait with a Timestamp ten hours ahead inside an EXPRESS child (a send window's wait in the wrong place):
    the child is TIMED_OUT at its five minutes, and the account's clock moves five minutes, not ten hours."""
    from datetime import timedelta

    started = engine.clock.now()
    later = (started + timedelta(hours=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    child = {"StartAt": "Rest", "States": {"Rest": {"Type": "Wait", "Timestamp": later, "Next": "Done"},
                                           "Done": {"Type": "Pass", "End": True}}}
    described = run(client, express_map(child), {"items": [1]})

    assert described["error"] == "States.ExceedToleratedFailureThreshold"
    map_run = client.list_map_runs(executionArn=described["executionArn"])["mapRuns"][0]
    assert client.describe_map_run(mapRunArn=map_run["mapRunArn"])["itemCounts"]["timedOut"] == 1
    assert engine.clock.now() - started < timedelta(seconds=EXPRESS_MAX_SECONDS + 5)


def test_a_wait_timestamp_must_be_utc_with_an_uppercase_t_and_z(client):
    """AWS's Wait: RFC 3339 with an uppercase T between date and time and an uppercase Z for UTC; anything else
    fails the execution with States.Runtime."""
    def wait_until(text: str) -> dict:
        return {"QueryLanguage": "JSONata", "StartAt": "Rest", "States": {
            "Rest": {"Type": "Wait", "Timestamp": "{% $states.input.until %}", "End": True}}}

    for text in ("2020-01-01t09:00:00Z", "2020-01-01T09:00:00z", "2020-01-01 09:00:00Z", "2020-01-01T09:00:00",
                 "2020-01-01T09:00Z"):
        described = run(client, wait_until(text), {"until": text}, name=f"bad{abs(hash(text))}")
        assert (described["status"], described.get("error")) == ("FAILED", "States.Runtime"), text
    assert run(client, wait_until("x"), {"until": "2020-01-01T09:00:00.123Z"}, name="good")["status"] == "SUCCEEDED"
