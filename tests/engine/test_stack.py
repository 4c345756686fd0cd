"""The engine deploys template.yaml into moto: every resource exists as AWS would create it."""

import json
import textwrap
import threading

import boto3
import pytest

from sesflow.engine.stack import LocalStack, UnsupportedResourceError
from sesflow.engine.template import TemplateError
from tests.conftest import ROOT

PROBE = ROOT / "tests" / "engine" / "probe"


def write_template(tmp_path, resources: str):
    path = tmp_path / "template.yaml"
    body = textwrap.indent(textwrap.dedent(resources), "  ")
    path.write_text("Transform: AWS::Serverless-2016-10-31\nResources:\n" + body)
    return path


def test_every_resource_of_the_template_exists_when_the_stack_is_up(stack):
    ddb = stack.client("dynamodb")
    for logical_id in ("RecipientsTable", "MembershipsTable", "CampaignsTable", "SendsTable", "EventsTable"):
        ddb.describe_table(TableName=stack.physical_id(logical_id))
    recipients = ddb.describe_table(TableName=stack.physical_id("RecipientsTable"))["Table"]
    assert not recipients.get("GlobalSecondaryIndexes")  # a list's members are MembershipsTable's
    memberships = ddb.describe_table(TableName=stack.physical_id("MembershipsTable"))["Table"]
    assert [k["AttributeName"] for k in memberships["KeySchema"]] == ["list_id", "address"]
    assert [i["IndexName"] for i in memberships["GlobalSecondaryIndexes"]] == ["ContactListsIndex"]
    ttl = ddb.describe_time_to_live(TableName=stack.physical_id("SendsTable"))["TimeToLiveDescription"]
    assert ttl == {"AttributeName": "expires_at", "TimeToLiveStatus": "ENABLED"}
    stack.client("s3").head_bucket(Bucket=stack.outputs["ManifestBucketName"])
    redrive = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.outputs["FeedbackQueueUrl"], AttributeNames=["RedrivePolicy", "VisibilityTimeout"]
    )["Attributes"]
    assert json.loads(redrive["RedrivePolicy"])["maxReceiveCount"] == 5
    assert redrive["VisibilityTimeout"] == "180"
    stack.client("sns").get_topic_attributes(TopicArn=stack.outputs["AlertTopicArn"])
    stack.client("sesv2").get_configuration_set(ConfigurationSetName=stack.outputs["ConfigurationSetName"])
    for name in ("ValidateCampaignFunction", "SnapshotAudienceFunction", "SendBatchFunction", "IngestFeedbackFunction"):
        config = stack.client("lambda").get_function(FunctionName=stack.physical_id(name))["Configuration"]
        assert config["Environment"]["Variables"]["CAMPAIGNS_TABLE"] == stack.outputs["CampaignsTableName"]
    sfn = stack.client("stepfunctions")
    campaign = sfn.describe_state_machine(stateMachineArn=stack.outputs["CampaignStateMachineArn"])
    assert "${" not in campaign["definition"]
    assert stack.physical_id("SendBatchFunction") in campaign["definition"]
    skipped = {d.logical_id for d in stack.deployed if d.skipped}
    assert "CampaignStateMachineLogGroup" in skipped


def test_topic_key_exists_at_the_template_arn_with_rotation_and_its_policy_when_the_stack_is_up(stack):
    kms, key = stack.client("kms"), stack.resource("TopicKey")
    metadata = kms.describe_key(KeyId=key.physical_id)["KeyMetadata"]
    assert metadata["Arn"] == key.attributes["Arn"] and metadata["KeyState"] == "Enabled"
    assert kms.get_key_rotation_status(KeyId=key.physical_id)["KeyRotationEnabled"] is True
    policy = json.loads(kms.get_key_policy(KeyId=key.physical_id, PolicyName="default")["Policy"])
    services = {s["Principal"].get("Service") for s in policy["Statement"]}
    assert {"cloudwatch.amazonaws.com", "ses.amazonaws.com"} <= services
    for topic in ("AlertTopicArn", "FeedbackTopicArn"):
        attributes = stack.client("sns").get_topic_attributes(TopicArn=stack.outputs[topic])["Attributes"]
        assert attributes["KmsMasterKeyId"] == key.attributes["Arn"]


def test_key_keeps_its_tags_and_state_at_the_resolved_key_id_when_deployed(tmp_path):
    path = write_template(tmp_path, """
        Key:
          Type: AWS::KMS::Key
          Properties:
            Enabled: false
            Tags: [{Key: team, Value: mail}]
        Topic: {Type: AWS::SNS::Topic, Properties: {KmsMasterKeyId: !Ref Key}}
    """)
    with LocalStack(template_path=path) as up:
        kms, key = up.client("kms"), up.resource("Key")
        assert kms.describe_key(KeyId=key.physical_id)["KeyMetadata"]["KeyState"] == "Disabled"
        assert kms.list_resource_tags(KeyId=key.physical_id)["Tags"] == [{"TagKey": "team", "TagValue": "mail"}]
        assert kms.get_key_rotation_status(KeyId=key.physical_id)["KeyRotationEnabled"] is False
        topic = up.client("sns").get_topic_attributes(TopicArn=up.physical_id("Topic"))["Attributes"]
        assert topic["KmsMasterKeyId"] == key.physical_id


def test_unsupported_resource_type_is_refused_by_name(tmp_path):
    path = write_template(tmp_path, """
        Queue: {Type: AWS::SQS::Queue}
        Box: {Type: AWS::EC2::Instance, Properties: {ImageId: ami-1}}
    """)
    with pytest.raises(UnsupportedResourceError, match=r"cannot create Box \(AWS::EC2::Instance\)"):
        LocalStack(template_path=path).up()


def test_definition_placeholder_without_substitution_is_refused(tmp_path):
    (tmp_path / "sm.asl.json").write_text(json.dumps({
        "StartAt": "P", "States": {"P": {"Type": "Pass", "Result": "${TableName}", "End": True}}
    }))
    path = write_template(tmp_path, """
        Machine:
          Type: AWS::Serverless::StateMachine
          Properties:
            DefinitionUri: sm.asl.json
            DefinitionSubstitutions: {Other: x}
    """)
    with pytest.raises(TemplateError, match=r"Machine: the definition uses \$\{TableName\}"):
        LocalStack(template_path=path).up()


@pytest.fixture
def probe_stack(tmp_path):
    path = write_template(tmp_path, f"""
        Alpha:
          Type: AWS::Serverless::Function
          Properties:
            CodeUri: {PROBE}
            Handler: engine_probe_handlers.whoami
            Runtime: python3.11
            MemorySize: 512
            Environment: {{Variables: {{WHO: alpha}}}}
        Beta:
          Type: AWS::Serverless::Function
          Properties:
            CodeUri: {PROBE}
            Handler: engine_probe_handlers.whoami
            Runtime: python3.11
            Environment: {{Variables: {{WHO: beta}}}}
        Failing:
          Type: AWS::Serverless::Function
          Properties:
            CodeUri: {PROBE}
            Handler: engine_probe_handlers.fail
            Runtime: python3.11
    """)
    with LocalStack(template_path=path) as up:
        yield up


def invoke(stack, logical_id, payload=None):
    response = stack.client("lambda").invoke(
        FunctionName=stack.physical_id(logical_id), Payload=json.dumps(payload or {})
    )
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def test_each_function_sees_only_its_own_environment_when_invoked_concurrently(probe_stack):
    seen: list[tuple[str, str]] = []

    def call(logical_id):
        for _ in range(50):
            _, body = invoke(probe_stack, logical_id)
            seen.append((logical_id, body["who"]))

    threads = [threading.Thread(target=call, args=(name,)) for name in ("Alpha", "Beta", "Alpha", "Beta")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 200
    assert all(who == logical_id.lower() for logical_id, who in seen)


def test_handler_gets_the_lambda_context_the_template_describes(probe_stack):
    _, body = invoke(probe_stack, "Alpha")
    assert body == {"who": "alpha", "function": probe_stack.physical_id("Alpha"), "memory": 512}


def test_exception_becomes_the_lambda_error_named_by_its_class(probe_stack):
    error, body = invoke(probe_stack, "Failing", {"card": "4242"})
    assert error is not None
    assert body["errorType"] == "PaymentDeclinedError"
    assert body["errorMessage"] == "card 4242 declined"


def test_only_failed_items_of_a_batch_reach_the_dead_letter_queue_after_max_receives(tmp_path):
    path = write_template(tmp_path, f"""
        DeadLetters: {{Type: AWS::SQS::Queue}}
        Work:
          Type: AWS::SQS::Queue
          Properties:
            RedrivePolicy: {{deadLetterTargetArn: !GetAtt DeadLetters.Arn, maxReceiveCount: 3}}
        Consumer:
          Type: AWS::Serverless::Function
          Properties:
            CodeUri: {PROBE}
            Handler: engine_probe_handlers.partial
            Runtime: python3.11
            Events:
              Work:
                Type: SQS
                Properties: {{Queue: !GetAtt Work.Arn, BatchSize: 50, FunctionResponseTypes: [ReportBatchItemFailures]}}
    """)
    with LocalStack(template_path=path) as stack:
        sqs = stack.client("sqs")
        work, dead = stack.physical_id("Work"), stack.physical_id("DeadLetters")
        for body in ["ok"] * 20 + ["bad"] + ["ok"] * 20:
            sqs.send_message(QueueUrl=work, MessageBody=body)

        batches = stack.deliver_queues()

        assert [m["Body"] for m in sqs.receive_message(QueueUrl=dead, MaxNumberOfMessages=10)["Messages"]] == ["bad"]
        assert sqs.receive_message(QueueUrl=work).get("Messages") is None
        assert batches == 3  # 41 messages in one batch of up to 50, then the failed one twice more
        assert stack.meter.snapshot()["lambda_invocations"] == {stack.physical_id("Consumer"): 3}
        # each of its 3 failures hid it for the queue's visibility timeout (30 s by default) on the virtual
        # clock; the receive after the third moved it to the dead-letter queue
        assert [s for s in stack.clock.sleeps if s[0] == "SQS visibility timeout"] == [
            ("SQS visibility timeout", 30.0)] * 3


def test_meter_counts_lambda_invocations_and_api_calls(probe_stack):
    invoke(probe_stack, "Alpha")
    invoke(probe_stack, "Alpha")
    counts = probe_stack.meter.snapshot()
    assert counts["lambda_invocations"] == {probe_stack.physical_id("Alpha"): 2}
    assert counts["api_calls"]["lambda:Invoke"] == 2
    assert counts["lambda_gb_seconds"][probe_stack.physical_id("Alpha")] > 0


def test_throttled_sdk_call_backs_off_on_the_virtual_clock_and_succeeds(stack):
    from botocore.config import Config

    from sesflow.engine.ses import simulator

    simulator().configure(max_send_rate=1)
    ses = boto3.client("sesv2", region_name=stack.region, config=Config(retries={"max_attempts": 10}))
    ses.create_email_template(TemplateName="t", TemplateContent={"Subject": "s", "Text": "x"})
    send = {"FromEmailAddress": "news@example.com",
            "Content": {"Template": {"TemplateName": "t", "TemplateData": "{}"}}}
    ses.send_email(Destination={"ToAddresses": ["a@example.org"]}, **send)
    before = stack.clock.now()

    ses.send_email(Destination={"ToAddresses": ["b@example.org"]}, **send)  # over 1/s: throttled, retried

    assert [r for m in simulator().outbox for r in m.to] == ["a@example.org", "b@example.org"]
    assert any(reason == "SDK retry" for reason, _ in stack.clock.sleeps)
    assert stack.clock.now() > before
