"""SES feedback reaches the feedback queue by the route the template chose, as on AWS: SES publishes to the
configuration set's event destination, SNS or EventBridge wraps it, the queue hands it to the function."""

import json
import sys
import textwrap

import pytest

from sesflow.engine import ses
from sesflow.engine.stack import LocalStack
from tests.conftest import ROOT, SENDER_DOMAIN

PROBE = ROOT / "tests" / "engine" / "probe"


def bounce(message_id="0100-bounce", recipient="gone@example.org", tags=None):
    """A Bounce record as SES publishes it (event-publishing-retrieving-sns-examples.html), trimmed."""
    return {
        "eventType": "Bounce",
        "bounce": {
            "feedbackId": f"{message_id}-feedback",
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": recipient, "action": "failed", "status": "5.1.1"}],
            "timestamp": "2024-05-01T10:00:01.000Z",
            "reportingMTA": "dsn; example.org",
        },
        "mail": {
            "timestamp": "2024-05-01T10:00:00.000Z",
            "source": f"news@{SENDER_DOMAIN}",
            "messageId": message_id,
            "destination": [recipient],
            "tags": dict(tags or {"campaign_id": ["c-1"]}),
            "commonHeaders": {"subject": "Hello <id> & <detail>"},  # text EventBridge must not rewrite
        },
    }


def drain(stack, queue_url, at_most=100):
    sqs, bodies = stack.client("sqs"), []
    while len(bodies) < at_most:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def queue_depth(stack, queue_url):
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def eventbridge_stack():
    with LocalStack(template_path=ROOT / "template.yaml", ses_identities=(SENDER_DOMAIN,),
                    parameters={"FeedbackRoute": "eventbridge"}) as up:
        yield up


def expected_record(stack, record):
    tagged = json.loads(json.dumps(record))
    tagged["mail"]["tags"]["ses:configuration-set"] = [stack.outputs["ConfigurationSetName"]]
    return tagged


# ---------------------------------------------------------------- the destinations the template declares


# Every type but SEND: SendBatch counts its own sends, and Send events would be ~40% of the feedback bill.
EVERY_TYPE = ["REJECT", "BOUNCE", "COMPLAINT", "DELIVERY", "OPEN", "CLICK", "RENDERING_FAILURE",
              "DELIVERY_DELAY", "SUBSCRIPTION"]
# The campaign configuration set publishes every type but Delivery (and Send); only the probation one, which
# recipients in RECOVERY are sent through, publishes Delivery, which ends a probation.
ALL_BUT_DELIVERY = [t for t in EVERY_TYPE if t != "DELIVERY"]


def the_destination(stack, output="ConfigurationSetName"):
    [destination] = stack.client("sesv2").get_configuration_set_event_destinations(
        ConfigurationSetName=stack.outputs[output]
    )["EventDestinations"]
    return destination


def test_sns_route_records_one_enabled_destination_per_configuration_set(stack):
    target = {"SnsDestination": {"TopicArn": stack.outputs["FeedbackTopicArn"]}}
    assert the_destination(stack) == {
        "Name": "sesflow-feedback-sns", "Enabled": True, "MatchingEventTypes": ALL_BUT_DELIVERY, **target}
    assert the_destination(stack, "ProbationConfigurationSetName") == {
        "Name": "sesflow-feedback-sns", "Enabled": True, "MatchingEventTypes": EVERY_TYPE, **target}
    assert "FeedbackRule" not in stack.template.resources


def test_eventbridge_route_records_the_default_bus_and_creates_the_rule(eventbridge_stack):
    stack = eventbridge_stack
    target = {"EventBridgeDestination": {
        "EventBusArn": f"arn:aws:events:{stack.region}:123456789012:event-bus/default"}}
    assert the_destination(stack) == {
        "Name": "sesflow-feedback-eventbridge", "Enabled": True, "MatchingEventTypes": ALL_BUT_DELIVERY, **target}
    assert the_destination(stack, "ProbationConfigurationSetName") == {
        "Name": "sesflow-feedback-eventbridge", "Enabled": True, "MatchingEventTypes": EVERY_TYPE, **target}
    rule = stack.client("events").describe_rule(Name=stack.physical_id("FeedbackRule"))
    assert rule["Arn"] == stack.resource("FeedbackRule").attributes["Arn"]
    assert rule["State"] == "ENABLED"
    assert json.loads(rule["EventPattern"])["detail"]["mail"]["tags"] == {
        "ses:configuration-set": [stack.outputs["ConfigurationSetName"], stack.outputs["ProbationConfigurationSetName"]]
    }
    assert "FeedbackTopic" not in stack.template.resources


# ---------------------------------------------------------------- SNS route


def test_bounce_arrives_through_sns_in_the_sns_envelope(stack):
    record = bounce()

    assert ses.publish_event(stack.outputs["ConfigurationSetName"], record) == 1

    [body] = drain(stack, stack.outputs["FeedbackQueueUrl"])
    assert body["Type"] == "Notification"
    assert body["TopicArn"] == stack.outputs["FeedbackTopicArn"]
    assert body["MessageId"] and body["Timestamp"] and body["SignatureVersion"]
    assert json.loads(body["Message"]) == expected_record(stack, record)
    assert record["mail"]["tags"] == {"campaign_id": ["c-1"]}  # the caller's record is left as it was


def test_raw_message_delivery_subscription_gets_the_bare_record(stack):
    sqs, sns = stack.client("sqs"), stack.client("sns")
    raw = sqs.create_queue(QueueName="raw-feedback")["QueueUrl"]
    sns.subscribe(TopicArn=stack.outputs["FeedbackTopicArn"], Protocol="sqs",
                  Endpoint="arn:aws:sqs:us-east-1:123456789012:raw-feedback", Attributes={"RawMessageDelivery": "true"})
    record = bounce()

    ses.publish_event(stack.outputs["ConfigurationSetName"], record)

    assert drain(stack, raw) == [expected_record(stack, record)]
    assert drain(stack, stack.outputs["FeedbackQueueUrl"])[0]["Type"] == "Notification"


def test_only_enabled_destinations_matching_the_event_type_get_it(stack):
    sesv2, sns, sqs = stack.client("sesv2"), stack.client("sns"), stack.client("sqs")
    sesv2.create_configuration_set(ConfigurationSetName="bounces-only")
    topic = sns.create_topic(Name="bounces-only")["TopicArn"]
    queue = sqs.create_queue(QueueName="bounces-only")["QueueUrl"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint="arn:aws:sqs:us-east-1:123456789012:bounces-only")
    for name, enabled in (("on", True), ("off", False)):
        sesv2.create_configuration_set_event_destination(
            ConfigurationSetName="bounces-only", EventDestinationName=name,
            EventDestination={"Enabled": enabled, "MatchingEventTypes": ["BOUNCE", "COMPLAINT"],
                              "SnsDestination": {"TopicArn": topic}},
        )
    opened = {**bounce(), "eventType": "Open", "open": {"timestamp": "2024-05-01T11:00:00.000Z"}}

    assert ses.publish_event("bounces-only", opened) == 0
    assert ses.publish_event("bounces-only", bounce()) == 1

    assert [json.loads(b["Message"])["eventType"] for b in drain(stack, queue)] == ["Bounce"]
    assert drain(stack, stack.outputs["FeedbackQueueUrl"]) == []  # the stack's set published nothing


def test_an_event_type_ses_does_not_publish_is_refused(stack):
    with pytest.raises(ValueError, match="Bounced"):
        ses.publish_event(stack.outputs["ConfigurationSetName"], {**bounce(), "eventType": "Bounced"})


# ---------------------------------------------------------------- EventBridge route


def test_bounce_arrives_through_eventbridge_in_the_eventbridge_envelope(eventbridge_stack):
    stack = eventbridge_stack
    stack.clock.advance(3 * 86400)  # the envelope's time is the virtual clock's, not the real one
    now = stack.clock.now()
    record = bounce()

    assert ses.publish_event(stack.outputs["ConfigurationSetName"], record) == 1

    [body] = drain(stack, stack.outputs["FeedbackQueueUrl"])
    assert list(body) == ["version", "id", "detail-type", "source", "account", "time", "region", "resources",
                          "detail"]
    assert body["detail-type"] == "Email Bounced"
    assert body["source"] == "aws.ses"
    assert body["account"] == "123456789012"
    assert body["region"] == stack.region
    assert body["time"] == now.strftime("%Y-%m-%dT%H:%M:%SZ")  # EventBridge's format: seconds, Z
    assert body["resources"] == [
        f"arn:aws:ses:{stack.region}:123456789012:configuration-set/{stack.outputs['ConfigurationSetName']}"
    ]
    assert body["detail"] == expected_record(stack, record)


def test_every_event_type_gets_the_detail_type_ses_gives_it(eventbridge_stack):
    stack = eventbridge_stack
    for event_type in ses.EVENT_TYPES:
        ses.publish_event(stack.outputs["ProbationConfigurationSetName"], {**bounce(), "eventType": event_type})

    received = drain(stack, stack.outputs["FeedbackQueueUrl"])

    assert sorted(b["detail-type"] for b in received) == sorted([  # not "Email Sent": not published
        "Email Rejected", "Email Bounced", "Email Complaint Received", "Email Delivered",
        "Email Opened", "Email Clicked", "Email Rendering Failed", "Email Delivery Delayed", "Email Subscribed",
    ])


def test_an_event_of_another_configuration_set_is_not_matched_by_the_stack_rule(eventbridge_stack):
    stack = eventbridge_stack
    sesv2 = stack.client("sesv2")
    sesv2.create_configuration_set(ConfigurationSetName="someone-else")
    sesv2.create_configuration_set_event_destination(
        ConfigurationSetName="someone-else", EventDestinationName="bus",
        EventDestination={"Enabled": True, "MatchingEventTypes": ["BOUNCE"], "EventBridgeDestination": {
            "EventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/default"}},
    )

    assert ses.publish_event("someone-else", bounce()) == 1  # on the bus...
    assert drain(stack, stack.outputs["FeedbackQueueUrl"]) == []  # ...but the rule wants the stack's set
    ses.publish_event(stack.outputs["ConfigurationSetName"], bounce())
    assert len(drain(stack, stack.outputs["FeedbackQueueUrl"])) == 1


def test_a_record_that_already_carries_the_configuration_set_tag_keeps_it(eventbridge_stack):
    stack = eventbridge_stack
    name = stack.outputs["ConfigurationSetName"]
    record = bounce(tags={"ses:configuration-set": [name], "ses:from-domain": [SENDER_DOMAIN]})

    ses.publish_event(name, record)

    [body] = drain(stack, stack.outputs["FeedbackQueueUrl"])
    assert body["detail"]["mail"]["tags"] == {"ses:configuration-set": [name], "ses:from-domain": [SENDER_DOMAIN]}


# ---------------------------------------------------------------- EventBridge rules as AWS runs them


def put_rule_to_queue(stack, name, pattern, state="ENABLED", **target):
    stack.client("sqs").create_queue(QueueName=name)
    events = stack.client("events")
    events.put_rule(Name=name, EventPattern=json.dumps(pattern), State=state)
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": f"arn:aws:sqs:us-east-1:123456789012:{name}", **target}])
    return f"https://sqs.us-east-1.amazonaws.com/123456789012/{name}"


def test_rules_match_inside_arrays_of_objects_and_disabled_rules_deliver_nothing(eventbridge_stack):
    stack = eventbridge_stack
    by_recipient = put_rule_to_queue(stack, "by-recipient", {
        "source": ["aws.ses"], "detail": {"bounce": {"bouncedRecipients": {"emailAddress": ["gone@example.org"]}}}
    })
    by_prefix = put_rule_to_queue(stack, "by-prefix", {
        "detail": {"mail": {"destination": [{"prefix": "gone@"}]},
                   "bounce": {"bounceType": [{"anything-but": "Transient"}]}}
    })
    disabled = put_rule_to_queue(stack, "disabled", {"source": ["aws.ses"]}, state="DISABLED")
    name = stack.outputs["ConfigurationSetName"]

    ses.publish_event(name, bounce(recipient="gone@example.org"))
    ses.publish_event(name, bounce(recipient="other@example.org"))

    assert [b["detail"]["mail"]["destination"] for b in drain(stack, by_recipient)] == [["gone@example.org"]]
    assert len(drain(stack, by_prefix)) == 1
    assert drain(stack, disabled) == []
    assert len(drain(stack, stack.outputs["FeedbackQueueUrl"])) == 2


def test_targets_get_input_path_constant_input_or_transformed_input(eventbridge_stack):
    stack = eventbridge_stack
    pattern = {"source": ["aws.ses"]}
    path = put_rule_to_queue(stack, "input-path", pattern, InputPath="$.detail.bounce")
    constant = put_rule_to_queue(stack, "constant", pattern, Input='{"kind": "constant"}')
    transformed = put_rule_to_queue(stack, "transformed", pattern, InputTransformer={
        "InputPathsMap": {"who": "$.detail.mail.destination[0]", "type": "$.detail-type",
                          "subject": "$.detail.mail.commonHeaders.subject"},
        "InputTemplate": '{"text": "<who>: <type>", "who": <who>, "subject": <subject>, '
                         '"rule": "<aws.events.rule-name>"}',
    })

    ses.publish_event(stack.outputs["ConfigurationSetName"], bounce())

    assert [b["bounceType"] for b in drain(stack, path)] == ["Permanent"]
    assert drain(stack, constant) == [{"kind": "constant"}]
    assert drain(stack, transformed) == [{"text": "gone@example.org: Email Bounced", "who": "gone@example.org",
                                          "subject": "Hello <id> & <detail>", "rule": "transformed"}]


# ---------------------------------------------------------------- the queue hands the records to the function


def test_deliver_queues_hands_published_events_to_the_ingest_function(stack):
    name = stack.outputs["ConfigurationSetName"]
    for i in range(12):
        ses.publish_event(name, bounce(message_id=f"0100-{i}", recipient=f"r{i}@example.org"))
    assert queue_depth(stack, stack.outputs["FeedbackQueueUrl"]) == 12

    batches = stack.deliver_queues()

    assert batches >= 1
    assert queue_depth(stack, stack.outputs["FeedbackQueueUrl"]) == 0
    assert stack.meter.snapshot()["lambda_invocations"][stack.physical_id("IngestFeedbackFunction")] >= 1
    trigger = next(t for t in stack.triggers if t.function == stack.physical_id("IngestFeedbackFunction"))
    assert (trigger.batch_size, trigger.batching_window_s, trigger.report_item_failures) == (100, 5, True)


def test_deliver_queues_hands_the_function_eventbridge_events_too(eventbridge_stack):
    stack = eventbridge_stack
    ses.publish_event(stack.outputs["ConfigurationSetName"], bounce())

    stack.deliver_queues()

    assert queue_depth(stack, stack.outputs["FeedbackQueueUrl"]) == 0
    assert stack.meter.snapshot()["lambda_invocations"][stack.physical_id("IngestFeedbackFunction")] >= 1


# ---------------------------------------------------------------- Lambda's SQS poller: batches and redrive


@pytest.fixture
def queue_stack(tmp_path):
    body = textwrap.dedent(f"""\
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Dead:
            Type: AWS::SQS::Queue
          Work:
            Type: AWS::SQS::Queue
            Properties:
              RedrivePolicy: {{deadLetterTargetArn: !GetAtt Dead.Arn, maxReceiveCount: 2}}
          Consumer:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: {PROBE}
              Handler: engine_probe_queue.record
              Runtime: python3.11
              Events:
                Work:
                  Type: SQS
                  Properties:
                    Queue: !GetAtt Work.Arn
                    BatchSize: 25
                    MaximumBatchingWindowInSeconds: 1
                    FunctionResponseTypes: [ReportBatchItemFailures]
        """)
    path = tmp_path / "template.yaml"
    path.write_text(body)
    with LocalStack(template_path=path) as up:
        yield up
    sys.modules.pop("engine_probe_queue", None)


def probe_batches():
    return sys.modules["engine_probe_queue"].BATCHES


def test_a_batch_gathers_up_to_batch_size_messages_over_several_receives(queue_stack):
    sqs, url = queue_stack.client("sqs"), queue_stack.physical_id("Work")
    for i in range(60):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")

    assert queue_stack.deliver_queues() == 3

    # the three batches run at once (Lambda's poller starts with five), so they reach the handler in any order
    assert sorted(len(batch) for batch in probe_batches()) == [10, 25, 25]
    assert sorted(b for batch in probe_batches() for b in batch) == sorted(f"m{i}" for i in range(60))
    assert queue_depth(queue_stack, url) == 0


def test_failed_items_come_back_until_redrive_moves_them_to_the_dead_letter_queue(queue_stack):
    sqs, url = queue_stack.client("sqs"), queue_stack.physical_id("Work")
    for body in ("ok1", "fail", "ok2"):
        sqs.send_message(QueueUrl=url, MessageBody=body)

    queue_stack.deliver_queues()

    assert sorted(probe_batches()[0]) == ["fail", "ok1", "ok2"]
    assert probe_batches()[1:] == [["fail"]]  # once more; the third receive passes maxReceiveCount
    dead = sqs.receive_message(QueueUrl=queue_stack.physical_id("Dead"), MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in dead] == ["fail"]
    assert queue_depth(queue_stack, url) == 0
