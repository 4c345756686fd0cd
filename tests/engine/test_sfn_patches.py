"""sesflow.engine.patches.sfn: each test shows something a user of stock moto 5.2.5 would hit."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import datetime, timedelta

import boto3
import botocore.session
import pytest
from moto import mock_aws
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from sesflow.engine.limits import HISTORY_EVENT_LIMIT, PAYLOAD_LIMIT_BYTES
from sesflow.engine.patches import MotoDriftError, sfn
from tests.engine.conftest import BUCKET, EXECUTING, REGION

ACCOUNT = "123456789012"

ROLE = f"arn:aws:iam::{ACCOUNT}:role/sfn"


def create(client, definition: dict, name: str = "sm") -> str:
    created = client.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)
    return created["stateMachineArn"]


def wait_for(client, execution_arn: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while (described := client.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{execution_arn} still RUNNING after {timeout} s"
        time.sleep(0.02)
    return described


def run(client, definition: dict, payload=None, name: str = "sm") -> dict:
    """Create a state machine, start it and return describe_execution once it is no longer RUNNING."""
    kwargs = {} if payload is None else {"input": json.dumps(payload)}
    started = client.start_execution(stateMachineArn=create(client, definition, name), **kwargs)
    return wait_for(client, started["executionArn"])


def output(described: dict):
    assert described["status"] == "SUCCEEDED", (described.get("error"), described.get("cause"))
    return json.loads(described["output"])


def test_three_day_wait_takes_no_wall_time_when_clock_is_virtual(client, engine):
    start = engine.clock.now()
    definition = {"StartAt": "Wait", "States": {
        "Wait": {"Type": "Wait", "Seconds": 3 * 86400, "Next": "Until"},
        "Until": {"Type": "Wait", "TimestampPath": "$.until", "Next": "Stamp"},
        "Stamp": {"Type": "Pass", "Parameters": {"entered.$": "$$.State.EnteredTime"}, "End": True}}}
    four_days_later = start.replace(microsecond=0) + timedelta(days=4)
    began = time.monotonic()
    described = run(client, definition, {"until": four_days_later.strftime("%Y-%m-%dT%H:%M:%SZ")})
    assert time.monotonic() - began < 1.0
    assert engine.clock.now() == four_days_later
    assert datetime.fromisoformat(output(described)["entered"]) == four_days_later
    assert described["stopDate"] == four_days_later
    events = client.get_execution_history(executionArn=described["executionArn"])["events"]
    assert events[-1]["timestamp"] == four_days_later
    assert [reason for reason, _ in engine.clock.sleeps] == ["Wait", "Wait"]


def test_retry_backoff_takes_no_wall_time_when_retrying_for_hours(client, engine):
    definition = {"StartAt": "Get", "States": {"Get": {
        "Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem",
        "Parameters": {"TableName": "missing", "Key": {"pk": {"S": "x"}}},
        "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 3600, "MaxAttempts": 3,
                   "BackoffRate": 2.0, "MaxDelaySeconds": 10000}],
        "End": True}}}
    began = time.monotonic()
    assert run(client, definition)["status"] == "FAILED"
    assert time.monotonic() - began < 5.0
    assert engine.clock.sleeps == [("Retry", 3600), ("Retry", 7200), ("Retry", 10000)]


def test_jsonata_arguments_output_assign_and_condition_work_when_query_language_is_jsonata(client, engine):
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(TableName="greetings", BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    definition = {"QueryLanguage": "JSONata", "StartAt": "Greet", "States": {
        "Greet": {"Type": "Pass", "Assign": {"greeting": "{% 'say \"hi\" to ' & $states.input.name %}"},
                  "Next": "Many"},
        "Many": {"Type": "Choice", "Default": "Few",
                 "Choices": [{"Condition": "{% $count($states.input.nums[$ > 1]) = 2 %}", "Next": "Store"}]},
        "Few": {"Type": "Fail", "Error": "Few"},
        "Store": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem",
                  "Arguments": {"TableName": "greetings", "Item": {"pk": {"S": "{% $greeting %}"}}},
                  "Output": {"greeting": "{% $greeting %}", "hash": "{% $hash('abc', 'SHA-256') %}",
                             "uuid": "{% $uuid() %}", "chunks": "{% $partition($states.input.nums, 2) %}",
                             "now": "{% $now() %}", "nothing": None},
                  "End": True}}}
    result = output(run(client, definition, {"name": "Ann", "nums": [1, 2, 3]}))
    assert result["greeting"] == 'say "hi" to Ann'
    assert result["hash"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert uuid.UUID(result["uuid"])
    assert result["chunks"] == [[1, 2], [3]]
    assert result["nothing"] is None
    assert abs(datetime.fromisoformat(result["now"]) - engine.clock.now()) < timedelta(milliseconds=1)
    assert "Item" in dynamodb.get_item(TableName="greetings", Key={"pk": {"S": 'say "hi" to Ann'}})


def test_a_field_holding_null_is_null_when_a_jsonata_expression_reads_it(client):
    # AWS: `{% $states.input.coupon %}` on {"coupon": null} is null; only a field that is absent is undefined,
    # which fails the state with States.QueryEvaluationError.
    definition = {"QueryLanguage": "JSONata", "StartAt": "Read", "States": {
        "Read": {"Type": "Pass", "Output": {"coupon": "{% $states.input.coupon %}",
                                            "is_null": "{% $states.input.coupon = null %}"}, "Next": "Absent"},
        "Absent": {"Type": "Pass", "Output": {"missing": "{% $states.input.nowhere %}"}, "End": True}}}
    described = run(client, definition, {"coupon": None})
    assert described["status"] == "FAILED" and described["error"] == "States.QueryEvaluationError"
    events = client.get_execution_history(executionArn=described["executionArn"])["events"]
    read = next(e for e in events if e["type"] == "PassStateExited"
                and e["stateExitedEventDetails"]["name"] == "Read")
    assert json.loads(read["stateExitedEventDetails"]["output"]) == {"coupon": None, "is_null": True}


def test_variables_resolve_when_referenced_from_jsonpath_states(client):
    definition = {"StartAt": "Remember", "States": {
        "Remember": {"Type": "Pass", "Assign": {"who.$": "$.name", "count": 2, "quote": 'say "hi"'},
                     "Next": "Use"},
        "Use": {"Type": "Pass", "Parameters": {"who.$": "$who", "count.$": "$count", "quote.$": "$quote"},
                "End": True}}}
    assert output(run(client, definition, {"name": "Bob"})) == {"who": "Bob", "count": 2, "quote": 'say "hi"'}


def test_unnamed_executions_get_unique_names_when_started_without_name(client):
    arn = create(client, {"StartAt": "Name", "States": {
        "Name": {"Type": "Pass", "Parameters": {"name.$": "$$.Execution.Name"}, "End": True}}})
    first, second = (wait_for(client, client.start_execution(stateMachineArn=arn)["executionArn"])
                     for _ in range(2))
    assert first["name"] != second["name"]
    for described in (first, second):
        assert output(described)["name"] == described["name"] == str(uuid.UUID(described["name"]))


def test_context_object_is_json_when_passed_whole(client):
    described = run(client, {"StartAt": "Ctx", "States": {
        "Ctx": {"Type": "Pass", "Parameters": {"ctx.$": "$$"}, "End": True}}})
    context = output(described)["ctx"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", context["Execution"]["StartTime"])
    assert context["Execution"]["StartTime"] == context["State"]["EnteredTime"]


def test_nested_execution_returns_child_output_when_started_with_sync2(client):
    child = create(client, {"StartAt": "Double", "States": {
        "Double": {"Type": "Pass", "Parameters": {"doubled.$": "States.MathAdd($.n, $.n)"}, "End": True}}},
        name="child")
    start = {"Type": "Task", "Parameters": {"StateMachineArn": child, "Input": {"n.$": "$.n"}}}
    parent = {"StartAt": "Start", "States": {
        "Start": {**start, "Resource": "arn:aws:states:::states:startExecution", "ResultPath": "$.started",
                  "Next": "Child"},
        "Child": {**start, "Resource": "arn:aws:states:::states:startExecution.sync:2",
                  "ResultSelector": {"child.$": "$.Output", "started.$": "$.StartDate"}, "End": True}}}
    result = output(run(client, parent, {"n": 21}, name="parent"))
    assert result["child"] == {"doubled": 42}
    assert isinstance(result["started"], int)  # epoch milliseconds, as AWS reports integration timestamps


def test_s3_object_body_is_text_when_read_through_aws_sdk(client, bucket):
    bucket.put_object(Bucket=BUCKET, Key="k.txt", Body=b"hello")
    definition = {"StartAt": "Get", "States": {"Get": {
        "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
        "Parameters": {"Bucket": BUCKET, "Key": "k.txt"},
        "ResultSelector": {"body.$": "$.Body", "length.$": "$.ContentLength"}, "End": True}}}
    assert output(run(client, definition)) == {"body": "hello", "length": 5}


def distributed_map(tolerance: dict) -> dict:
    """A Distributed Map over s3://BUCKET/items.json whose items fail unless `ok` is true."""
    return {"StartAt": "Items", "States": {"Items": {
        "Type": "Map", "End": True, **tolerance,
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
                       "Parameters": {"Bucket": BUCKET, "Key": "items.json"}},
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "Check",
            "States": {"Check": {"Type": "Choice", "Default": "Bad",
                                 "Choices": [{"Variable": "$.ok", "BooleanEquals": True, "Next": "Good"}]},
                       "Bad": {"Type": "Fail", "Error": "BadItem"},
                       "Good": {"Type": "Succeed"}}}}}}


def test_distributed_map_fails_when_failed_items_exceed_tolerance(client, bucket):
    bucket.put_object(Bucket=BUCKET, Key="items.json", Body=json.dumps([{"ok": True}] * 3 + [{"ok": False}]))
    cases = [({}, "FAILED"),  # one of four items fails
             ({"ToleratedFailureCount": 0}, "FAILED"), ({"ToleratedFailureCount": 1}, "SUCCEEDED"),
             ({"ToleratedFailurePercentage": 10.0}, "FAILED"),
             ({"ToleratedFailurePercentage": 25.0}, "SUCCEEDED")]
    for number, (tolerance, status) in enumerate(cases):
        described = run(client, distributed_map(tolerance), name=f"sm{number}")
        expected_error = "States.ExceedToleratedFailureThreshold" if status == "FAILED" else None
        assert (tolerance, described["status"], described.get("error")) == (tolerance, status, expected_error)


def test_inline_map_with_2000_items_succeeds_when_max_concurrency_is_1(client):
    definition = {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "MaxConcurrency": 1, "End": True, "ItemsPath": "$.items",
        "ItemProcessor": {"StartAt": "One", "States": {"One": {"Type": "Pass", "End": True}}}}}}
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # Python's default; importing jsonata-python raises it to 10,000
    try:
        assert output(run(client, definition, {"items": list(range(2000))})) == list(range(2000))
    finally:
        sys.setrecursionlimit(limit)


def test_execution_fails_when_history_would_exceed_25000_events(client):
    definition = {"StartAt": "Ping", "States": {
        "Ping": {"Type": "Pass", "Next": "Pong"},
        "Pong": {"Type": "Pass", "Next": "Ping"}}}
    described = run(client, definition)
    assert (described["status"], described["error"]) == ("FAILED", "States.Runtime")
    assert "25,000" in described["cause"] and re.search(r"state 'P[io]ng'", described["cause"])
    # The backend's get_execution_history: moto's JSON serializer alone needs ~18 s for 25,000 events.
    events = stepfunctions_parser_backends[ACCOUNT][REGION].get_execution_history(described["executionArn"])
    assert len(events["events"]) <= HISTORY_EVENT_LIMIT
    assert events["events"][-1]["type"] == "ExecutionFailed"


@pytest.mark.parametrize(("payload", "parameters", "what"), [
    ({"s": "x" * 150_000}, {"a.$": "$.s", "b.$": "$.s"}, "output"),
    ({"s": "x" * (PAYLOAD_LIMIT_BYTES + 1)}, None, "input"),
])
def test_execution_fails_with_data_limit_when_a_payload_exceeds_256_kib(client, payload, parameters, what):
    state = {"Type": "Pass", "End": True, **({"Parameters": parameters} if parameters else {})}
    described = run(client, {"StartAt": "Big", "States": {"Big": state}}, payload)
    assert (described["status"], described["error"]) == ("FAILED", "States.DataLimitExceeded")
    assert f"{what} of state 'Big'" in described["cause"]
    assert re.search(r"\d{3},\d{3} bytes", described["cause"])


def test_transitions_and_executions_are_metered_when_a_distributed_map_runs(client, engine):
    definition = {"StartAt": "First", "States": {
        "First": {"Type": "Pass", "Next": "Fan"},
        "Fan": {"Type": "Map", "ItemsPath": "$.items", "Next": "Last",
                "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                                  "StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"},
                                                             "B": {"Type": "Pass", "End": True}}}},
        "Last": {"Type": "Pass", "End": True}}}
    output(run(client, definition, {"items": [1, 2, 3]}))
    meter = engine.meter.snapshot()
    assert meter["transitions"] == {"sm/STANDARD": 3, "sm/Fan/STANDARD": 6}
    assert meter["executions"] == {"sm/STANDARD": 1, "sm/Fan/STANDARD": 3}


def test_task_states_share_one_client_when_calling_the_same_service(monkeypatch):
    created = []
    create_client = botocore.session.Session.create_client

    def counting(self, service_name, *args, **kwargs):
        created.append(service_name)
        return create_client(self, service_name, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "create_client", counting)
    sfn.install()
    for _ in range(2):  # a new mock_aws must not reuse the previous mock's client
        with mock_aws(config=EXECUTING):
            sqs = boto3.client("sqs", region_name=REGION)
            url = sqs.create_queue(QueueName="q")["QueueUrl"]
            send = {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
                    "Parameters": {"QueueUrl": url, "MessageBody.$": "$"}}
            states = {f"S{i}": {**send, "Next": f"S{i + 1}"} for i in range(10)}
            states["S10"] = {"Type": "Succeed"}
            client = boto3.client("stepfunctions", region_name=REGION)
            output(run(client, {"StartAt": "S0", "States": states}))
            messages = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
            assert messages["Attributes"]["ApproximateNumberOfMessages"] == "10"
    assert created.count("sqs") == 2 * 2  # per mock: one in this test, one in the engine


def test_pass_loop_is_fast_when_states_use_jsonpath(client):
    count = 300
    definition = {"StartAt": "Init", "States": {
        "Init": {"Type": "Pass", "Result": 0, "ResultPath": "$.i", "Next": "Inc"},
        "Inc": {"Type": "Pass", "Parameters": {"i.$": "States.MathAdd($.i, 1)"}, "Next": "Check"},
        "Check": {"Type": "Choice", "Default": "Done",
                  "Choices": [{"Variable": "$.i", "NumericLessThan": count, "Next": "Inc"}]},
        "Done": {"Type": "Succeed"}}}
    began = time.monotonic()
    assert output(run(client, definition, {})) == {"i": count}
    assert time.monotonic() - began < 5.0  # stock: jsonpath-ng re-parses every path, ~27 transitions/s


def test_parser_logs_nothing_when_definitions_use_unsupported_fields(client, caplog):
    with caplog.at_level(logging.DEBUG):
        create(client, distributed_map({"ToleratedFailureCount": 1}))
    assert not [record for record in caplog.records if record.name.startswith("moto.stepfunctions.parser")]


def test_install_raises_drift_error_when_a_patched_target_is_missing(monkeypatch):
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

    sfn.install()
    monkeypatch.setattr(sfn, "_installed", False)
    monkeypatch.delattr(WaitFunction, "_wait_interval")
    with pytest.raises(MotoDriftError, match=r"WaitFunction\._wait_interval: missing"):
        sfn.install()


EXPRESS_MAP = {
    "StartAt": "Each",
    "States": {
        "Each": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                "StartAt": "Echo",
                "States": {"Echo": {"Type": "Pass", "End": True}},
            },
            "End": True,
        }
    },
}


def test_stock_grammar_still_rejects_express_map_children():
    """If this fails, moto accepts EXPRESS children: drop sfn._fix_express_map_children."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    with pytest.raises(Exception, match="EXPRESS"):
        StepFunctionsParserBackend._validate_definition(definition=json.dumps(EXPRESS_MAP))


def test_express_map_children_run_and_are_metered_as_express(client, engine):
    arn = create(client, EXPRESS_MAP, name="fanout")

    described = wait_for(client, client.start_execution(stateMachineArn=arn, input='{"items": [1, 2, 3]}')[
        "executionArn"])

    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == [1, 2, 3]
    assert engine.meter.executions[("fanout/Each", "EXPRESS")] == 3
    assert engine.meter.transitions[("fanout/Each", "EXPRESS")] == 3


def test_both_patch_modules_keep_their_wrappers_when_they_patch_the_same_method():
    """sfn (Map results, EXPRESS budgets) and iam (the state machine's role) wrap the same moto methods: installing
    both keeps both, in either order of installation."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
        StateTaskService,
    )

    from sesflow.engine.patches import install_all

    install_all()
    for owner, name in ((StateMap, "_eval_execution"), (StateTaskService, "_eval_execution")):
        chain, value = [], getattr(owner, name)
        while value is not None:
            chain.append(getattr(value, "__sesflow_module__", "moto"))
            value = getattr(value, "__sesflow_original__", None)
        assert {"sesflow.engine.patches.sfn", "sesflow.engine.patches.iam"} <= set(chain), (name, chain)
        assert chain[-1] == "moto" and len(chain) == 3, chain  # each wraps once
