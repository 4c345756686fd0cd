"""sesflow.engine.faults: chosen AWS calls fail as AWS makes them fail, before or after the service did them."""

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from sesflow.engine import faults, runtime
from sesflow.engine.patches import install_all
from sesflow.engine.ses import simulator

REGION = "us-east-1"
ONCE = Config(retries={"total_max_attempts": 1})  # no SDK retries: each call is seen as it is answered


@pytest.fixture
def aws():
    install_all()
    runtime.activate(runtime.Runtime())
    simulator().reset()
    simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION, config=ONCE)
        for name in ("claims", "other"):
            ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                             AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                             KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        yield ddb
    runtime.deactivate()
    simulator().reset()


def update(ddb, table, key, value=1):
    return ddb.update_item(TableName=table, Key={"pk": {"S": key}}, UpdateExpression="SET v = :v",
                           ExpressionAttributeValues={":v": {"N": str(value)}})


def stored(ddb, table, key):
    return ddb.get_item(TableName=table, Key={"pk": {"S": key}}).get("Item")


def test_the_chosen_calls_of_an_operation_on_a_table_fail_and_nothing_else(aws):
    with faults.dynamodb_throttled("claims", calls=[2, 3]) as throttled:
        update(aws, "claims", "one")
        refused = []
        for key in ("two", "three"):
            with pytest.raises(ClientError) as error:
                update(aws, "claims", key)
            refused.append(error.value.response)
        update(aws, "other", "elsewhere")  # another table: not counted
        update(aws, "claims", "four")

    assert (throttled.seen, throttled.fired) == (4, [2, 3])
    assert [h.params["Key"]["pk"]["S"] for h in throttled.hits] == ["two", "three"]
    assert {(r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]) for r in refused} == {
        ("ProvisionedThroughputExceededException", 400)}
    assert [k for k in ("one", "two", "three", "four") if stored(aws, "claims", k)] == ["one", "four"]
    assert stored(aws, "other", "elsewhere")


def test_after_the_service_did_the_call_only_its_answer_is_lost(aws):
    with faults.inject("dynamodb", "UpdateItem", error="InternalServerError", status=500, after=True) as lost, \
            pytest.raises(ClientError) as error:
        update(aws, "claims", "written")

    assert lost.fired == [1]
    assert error.value.response["Error"]["Code"] == "InternalServerError"
    assert stored(aws, "claims", "written") == {"pk": {"S": "written"}, "v": {"N": "1"}}


@pytest.mark.parametrize("after", [False, True])
def test_a_timeout_raises_botocores_read_timeout_with_or_without_the_work_done(aws, after):
    with faults.inject("dynamodb", "UpdateItem", timeout=True, after=after), pytest.raises(ReadTimeoutError):
        update(aws, "claims", "maybe")

    assert bool(stored(aws, "claims", "maybe")) is after


def test_botocore_retries_an_injected_throttle_as_it_would_one_from_aws(aws):
    retrying = boto3.client("dynamodb", region_name=REGION)  # default retries

    with faults.dynamodb_throttled("claims", calls=1) as throttled:
        update(retrying, "claims", "eventually")

    assert (throttled.seen, throttled.fired) == (2, [1])  # refused once, then the SDK's retry went through
    assert stored(aws, "claims", "eventually")


def test_an_ses_internal_failure_after_the_call_leaves_the_email_sent(aws):
    ses = boto3.client("sesv2", region_name=REGION, config=ONCE)
    ses.create_email_identity(EmailIdentity="example.com")
    ses.create_email_template(TemplateName="t", TemplateContent={"Subject": "Hi", "Text": "Hello"})

    with faults.ses_internal_failure() as lost, pytest.raises(ClientError) as error:
        ses.send_bulk_email(FromEmailAddress="news@example.com",
                            DefaultContent={"Template": {"TemplateName": "t", "TemplateData": json.dumps({})}},
                            BulkEmailEntries=[{"Destination": {"ToAddresses": ["a@example.org"]}}])

    assert lost.fired == [1]
    assert (error.value.response["Error"]["Code"], error.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "InternalFailure", 500)
    assert [m.to for m in simulator().outbox] == [("a@example.org",)]


def test_lambda_invokes_are_matched_by_function_name_or_arn():
    def call(url):
        return faults.Call("lambda", "Invoke", url, {})

    of = faults.function("stack-SendBatchFunction-ABC")
    base = "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/"
    assert of(call(base + "stack-SendBatchFunction-ABC/invocations"))
    assert of(call(base + "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Astack-SendBatchFunction-ABC"
                          "/invocations"))
    assert of(call(base + "arn:aws:lambda:us-east-1:123456789012:function:stack-SendBatchFunction-ABC:live"
                          "/invocations"))
    assert not of(call(base + "stack-SendBatchFunction-ABCD/invocations"))
    assert not of(call(base + "stack-Other/invocations"))


def test_faults_nest_and_the_stubber_is_restored_when_the_last_closes(aws):
    before = BotocoreStubber.__call__
    with faults.dynamodb_throttled("claims", calls=None) as outer:
        with faults.dynamodb_throttled("other", calls=None) as inner:
            for table in ("claims", "other"):
                with pytest.raises(ClientError):
                    update(aws, table, "x")
        with pytest.raises(ClientError):
            update(aws, "claims", "y")
        update(aws, "other", "y")  # the inner fault is closed

    assert BotocoreStubber.__call__ is before
    assert (outer.fired, inner.fired) == ([1, 2], [1])
    update(aws, "claims", "z")


@pytest.mark.parametrize(("args", "message"), [
    ({}, "give an error code or timeout=True"),
    ({"error": "Throttling", "timeout": True}, "give an error code or timeout=True"),
    ({"error": "Throttling", "service": "nosuchservice"}, "not a botocore service id"),
    ({"error": "Throttling", "service": "sns", "operation": "Publish"}, "sns speaks query"),
])
def test_inject_refuses_a_fault_it_cannot_make(args, message):
    args = {"service": "dynamodb", "operation": "UpdateItem", **args}
    with pytest.raises(ValueError, match=message), faults.inject(args.pop("service"), args.pop("operation"), **args):
        pass
