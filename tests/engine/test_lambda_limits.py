"""Lambda's limits on the engine: each function's Timeout (through Invoke, Step Functions and an SQS trigger) and
MemorySize, as the template sets them."""

import json
import re

import pytest

from sesflow.engine.patches import lambda_bridge
from sesflow.engine.stack import LocalStack
from tests.engine.test_stack import PROBE, write_template

TIMED_OUT = re.compile(r"RequestId: [0-9a-f-]{36} Error: Task timed out after 2\.00 seconds")


@pytest.fixture
def slow_stack(tmp_path):
    (tmp_path / "sm.asl.json").write_text(json.dumps({
        "StartAt": "Call",
        "States": {"Call": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                            "Arguments": {"FunctionName": "${Fn}", "Payload": "{% $states.input %}"},
                            "Output": "{% $states.result.Payload %}", "QueryLanguage": "JSONata", "End": True}},
    }))
    path = write_template(tmp_path, f"""
        Markers:
          Type: AWS::DynamoDB::Table
          Properties:
            BillingMode: PAY_PER_REQUEST
            AttributeDefinitions: [{{AttributeName: id, AttributeType: S}}]
            KeySchema: [{{AttributeName: id, KeyType: HASH}}]
        DeadLetters: {{Type: AWS::SQS::Queue}}
        Work:
          Type: AWS::SQS::Queue
          Properties:
            VisibilityTimeout: 12
            RedrivePolicy: {{deadLetterTargetArn: !GetAtt DeadLetters.Arn, maxReceiveCount: 2}}
        Slow:
          Type: AWS::Serverless::Function
          Properties:
            CodeUri: {PROBE}
            Handler: engine_probe_handlers.sleepy
            Runtime: python3.11
            MemorySize: 1024
            Policies: [DynamoDBWritePolicy: {{TableName: !Ref Markers}}]
            Events:
              Work:
                Type: SQS
                Properties: {{Queue: !GetAtt Work.Arn, BatchSize: 1}}
        Busy:
          Type: AWS::Serverless::Function
          Properties:
            CodeUri: {PROBE}
            Handler: engine_probe_handlers.busy
            Runtime: python3.11
            Timeout: 1
            Policies: [DynamoDBWritePolicy: {{TableName: !Ref Markers}}]
        Machine:
          Type: AWS::Serverless::StateMachine
          Properties:
            DefinitionUri: sm.asl.json
            DefinitionSubstitutions: {{Fn: !GetAtt Slow.Arn}}
            Policies: [LambdaInvokePolicy: {{FunctionName: !Ref Slow}}]
    """)
    text = path.read_text().replace("Resources:", "Globals:\n  Function:\n    Timeout: 2\nResources:", 1)
    path.write_text(text)
    with LocalStack(template_path=path) as up:
        yield up


def invoke(stack, logical_id, payload):
    response = stack.client("lambda").invoke(FunctionName=stack.physical_id(logical_id), Payload=json.dumps(payload))
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def markers(stack):
    items = stack.client("dynamodb").scan(TableName=stack.physical_id("Markers"))["Items"]
    return sorted(item["id"]["S"] for item in items)


def test_invoke_fails_with_sandbox_timedout_when_the_handler_sleeps_past_its_timeout(slow_stack):
    before = slow_stack.clock.now()

    error, body = invoke(slow_stack, "Slow", {"sleep": 5, "table": slow_stack.physical_id("Markers"), "id": "a"})

    assert error == "Unhandled"  # the runtime did not handle it (a handler's own exception is "Handled")
    assert body["errorType"] == "Sandbox.Timedout"
    assert TIMED_OUT.fullmatch(body["errorMessage"]), body["errorMessage"]
    # stopped at its deadline (Globals' Timeout 2): what it wrote before stays, nothing after it ran
    assert markers(slow_stack) == ["a#before"]
    assert (slow_stack.clock.now() - before).total_seconds() < 2.5
    function = slow_stack.physical_id("Slow")
    snapshot = slow_stack.meter.snapshot()
    assert snapshot["lambda_billed_ms"] == {function: 2000}  # a timed-out invocation is billed its whole timeout
    assert snapshot["lambda_gb_seconds"][function] == pytest.approx(2.0)  # 2 s at 1 GB


def test_remaining_time_counts_the_virtual_seconds_slept_when_the_handler_sleeps(slow_stack):
    error, body = invoke(slow_stack, "Slow", {"sleep": 1.5})

    assert error is None
    assert 0 < body["remaining_ms"] <= 500


def test_invoke_fails_with_sandbox_timedout_when_the_handler_computes_past_its_timeout(slow_stack):
    error, body = invoke(slow_stack, "Busy", {"cpu": 1.2})

    assert error is not None
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Error: Task timed out after 1.00 seconds")


def test_handler_past_its_timeout_makes_no_more_aws_calls_when_it_computed_past_it(slow_stack):
    error, body = invoke(slow_stack, "Busy", {"cpu": 1.1, "table": slow_stack.physical_id("Markers")})

    assert body["errorType"] == "Sandbox.Timedout"
    assert markers(slow_stack) == []  # its PutItem came after the deadline: Lambda had stopped it


def test_step_functions_task_fails_with_sandbox_timedout_when_its_function_times_out(slow_stack):
    result = slow_stack.run("Machine", {"sleep": 30})

    assert result.status == "FAILED"
    assert result.error == "Sandbox.Timedout"
    assert TIMED_OUT.search(json.loads(result.cause)["errorMessage"])


def test_sqs_message_is_retried_then_dead_lettered_when_its_function_times_out(slow_stack):
    sqs = slow_stack.client("sqs")
    sqs.send_message(QueueUrl=slow_stack.physical_id("Work"), MessageBody="60")

    batches = slow_stack.deliver_queues()

    assert batches == 2  # received twice (maxReceiveCount 2), timed out both times
    dead = sqs.receive_message(QueueUrl=slow_stack.physical_id("DeadLetters"))["Messages"]
    assert [m["Body"] for m in dead] == ["60"]
    assert lambda_bridge.function(slow_stack.physical_id("Slow")).timed_out == 2
    # each failure hid the message for the queue's VisibilityTimeout (12 s) before it was received again
    assert [s for s in slow_stack.clock.sleeps if s[0] == "SQS visibility timeout"] == [
        ("SQS visibility timeout", 12.0)] * 2


def test_context_and_environment_carry_the_memory_size_of_the_template(slow_stack):
    spec = lambda_bridge.function(slow_stack.physical_id("Slow"))
    assert (spec.memory_mb, spec.timeout_s) == (1024, 2)
    busy = lambda_bridge.function(slow_stack.physical_id("Busy"))
    assert (busy.memory_mb, busy.timeout_s) == (128, 1)
    config = slow_stack.client("lambda").get_function(FunctionName=spec.name)["Configuration"]
    assert (config["MemorySize"], config["Timeout"]) == (1024, 2)
