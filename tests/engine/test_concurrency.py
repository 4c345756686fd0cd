"""Concurrent invocations on the engine, as on Lambda: a Map's children run a function at the same time, up to the
Map's MaxConcurrency and the function's concurrency; an SQS queue is consumed by several batches at once."""

import json
import threading

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sesflow.engine.patches import lambda_bridge
from sesflow.engine.stack import LocalStack
from sesflow.engine.template import TemplateError
from tests.engine.test_stack import PROBE, write_template


def map_definition(max_concurrency: int) -> str:
    return json.dumps({
        "QueryLanguage": "JSONata",
        "StartAt": "Each",
        "States": {"Each": {
            "Type": "Map", "Items": "{% $states.input.items %}", "MaxConcurrency": max_concurrency,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                "StartAt": "Call",
                "States": {"Call": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                                    "Arguments": {"FunctionName": "${Fn}", "Payload": "{% $states.input %}"},
                                    "Output": "{% $states.result.Payload %}", "End": True}},
            },
            "End": True,
        }},
    })


def function(logical_id: str, extra: str = "") -> str:
    return f"""
        {logical_id}:
          Type: AWS::Serverless::Function
          Properties:
            CodeUri: {PROBE}
            Handler: engine_probe_handlers.overlapping
            Runtime: python3.11
            Timeout: 30{extra}
    """


def test_map_runs_up_to_max_concurrency_invocations_of_one_function_at_once(tmp_path):
    (tmp_path / "sm.asl.json").write_text(map_definition(10))
    path = write_template(tmp_path, function("Worker") + """
        Machine:
          Type: AWS::Serverless::StateMachine
          Properties:
            DefinitionUri: sm.asl.json
            DefinitionSubstitutions: {Fn: !GetAtt Worker.Arn}
            Policies:
              - LambdaInvokePolicy: {FunctionName: !Ref Worker}
              - Statement:  # the Distributed Map's child executions (a test: on any state machine)
                  - {Effect: Allow, Action: [states:StartExecution, states:DescribeExecution, states:StopExecution],
                     Resource: "*"}
    """)
    with LocalStack(template_path=path) as stack:
        result = stack.run("Machine", {"items": [{"expect": 10, "n": n} for n in range(25)]}, timeout=120)

        assert result.status == "SUCCEEDED", (result.error, result.cause)
        assert lambda_bridge.function(stack.physical_id("Worker")).max_in_flight == 10


def test_invoke_is_throttled_when_the_function_has_used_its_reserved_concurrency(tmp_path):
    path = write_template(tmp_path, function("Worker", "\n            ReservedConcurrentExecutions: 2"))
    with LocalStack(template_path=path) as stack:
        client = boto3.client("lambda", region_name=stack.region, config=Config(retries={"total_max_attempts": 1}))
        outcomes: list[str] = []

        def call() -> None:
            try:
                client.invoke(FunctionName=stack.physical_id("Worker"), Payload=json.dumps({"expect": 5}))
                outcomes.append("ran")
            except ClientError as error:
                outcomes.append(error.response["Error"]["Code"])

        threads = [threading.Thread(target=call) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(outcomes) == ["TooManyRequestsException"] * 3 + ["ran"] * 2
        spec = lambda_bridge.function(stack.physical_id("Worker"))
        assert (spec.max_in_flight, spec.throttled) == (2, 3)
        concurrency = stack.client("lambda").get_function_concurrency(FunctionName=spec.name)
        assert concurrency["ReservedConcurrentExecutions"] == 2


def test_stack_is_refused_when_reserved_concurrency_leaves_less_than_100_unreserved(tmp_path):
    path = write_template(tmp_path, function("Worker", "\n            ReservedConcurrentExecutions: 901"))
    with pytest.raises(TemplateError, match="leaves 99 of the account's 1000 unreserved"):
        LocalStack(template_path=path).up()


def queue_stack(tmp_path, scaling: str = ""):
    return write_template(tmp_path, f"""
        Work: {{Type: AWS::SQS::Queue}}
        Consumer:
          Type: AWS::Serverless::Function
          Properties:
            CodeUri: {PROBE}
            Handler: engine_probe_handlers.overlapping
            Runtime: python3.11
            Environment: {{Variables: {{EXPECT: "5"}}}}
            Events:
              Work:
                Type: SQS
                Properties:
                  Queue: !GetAtt Work.Arn
                  BatchSize: 2
                  FunctionResponseTypes: [ReportBatchItemFailures]{scaling}
    """)


MAXIMUM_2 = "\n                  ScalingConfig: {MaximumConcurrency: 2}"


@pytest.mark.parametrize(("scaling", "at_once"), [("", 5), (MAXIMUM_2, 2)], ids=["default", "maximum-concurrency-2"])
def test_queue_is_consumed_by_several_batches_at_once_when_it_holds_many_messages(tmp_path, scaling, at_once):
    with LocalStack(template_path=queue_stack(tmp_path, scaling)) as stack:
        sqs = stack.client("sqs")
        for start in range(0, 40, 10):
            sqs.send_message_batch(QueueUrl=stack.physical_id("Work"), Entries=[
                {"Id": str(i), "MessageBody": str(i)} for i in range(start, start + 10)])

        batches = stack.deliver_queues()

        assert batches == 20
        assert sqs.receive_message(QueueUrl=stack.physical_id("Work")).get("Messages") is None
        (trigger,) = stack.triggers
        assert trigger.max_concurrent_batches == at_once
        assert lambda_bridge.function(stack.physical_id("Consumer")).max_in_flight == at_once


def test_poller_runs_more_batches_at_once_as_a_backlog_lasts(tmp_path):
    with LocalStack(template_path=queue_stack(tmp_path)) as stack:
        (trigger,) = stack.triggers
        now = stack.clock.now()
        assert trigger.concurrent_batches(now) == 5
        trigger.backlog_since = now
        stack.clock.advance(30)
        assert trigger.concurrent_batches(stack.clock.now()) == 155  # 5, plus 300 a minute
        stack.clock.advance(3600)
        assert trigger.concurrent_batches(stack.clock.now()) == 1000


def test_function_url_answers_429_when_the_function_has_used_its_reserved_concurrency(tmp_path):
    path = write_template(tmp_path, function("Worker", "\n            ReservedConcurrentExecutions: 1"
                                                       "\n            FunctionUrlConfig: {AuthType: NONE}"
                                                       "\n            Environment: {Variables: {EXPECT: '3'}}"))
    path.write_text(path.read_text() + "Outputs:\n  WorkerUrl: {Value: !GetAtt WorkerUrl.FunctionUrl}\n")
    with LocalStack(template_path=path) as stack:
        statuses: list[int] = []

        def call() -> None:  # waiting for 3 in flight, the one that runs holds its slot half a second
            statuses.append(stack.request(stack.outputs["WorkerUrl"])["statusCode"])

        threads = [threading.Thread(target=call) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(statuses) == [200, 429, 429]


def test_invocation_acts_at_the_time_it_woke_when_another_invocation_slept_further_meanwhile():
    from datetime import timedelta

    from sesflow.engine.clock import VirtualClock

    clock = VirtualClock()
    start = clock.now()
    woke, acted = threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def granted_at_one_second() -> None:  # sleeps to its grant, then (later, in real time) calls SES
        with clock.timeline():
            clock.sleep(1)
            woke.set()
            acted.wait(5)
            seen["a"] = clock.now()

    with clock.timeline():  # another invocation, started at the same time, sleeps to its own grant meanwhile
        a = threading.Thread(target=granted_at_one_second)
        a.start()
        woke.wait(5)
        clock.sleep(2)
        seen["b"] = clock.now()
    acted.set()
    a.join()

    assert seen == {"a": start + timedelta(seconds=1), "b": start + timedelta(seconds=2)}
    assert clock.now() == start + timedelta(seconds=2)  # the clock is the latest of them
