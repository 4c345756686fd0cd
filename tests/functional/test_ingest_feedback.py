"""SES feedback through the real path on the engine: feedback queue -> IngestFeedbackFunction -> tables."""

import copy
import json
from collections import Counter

import pytest
from app.domain.feedback import parse_feedback
from app.errors import FeedbackParseError

from tests.conftest import ROOT
from tests.contacts import add_contact

BODIES = ROOT / "events" / "ingest_feedback" / "bodies"
UNUSABLE = ("malformed_", "refused_")  # broken, or well-formed but not feedback about mail we sent
GOOD = sorted(p for p in BODIES.iterdir() if not p.name.startswith(UNUSABLE))
MALFORMED = sorted(p for p in BODIES.iterdir() if p.name.startswith(UNUSABLE))


def send(stack, *bodies: str) -> None:
    for body in bodies:
        stack.client("sqs").send_message(QueueUrl=stack.outputs["FeedbackQueueUrl"], MessageBody=body)
    stack.deliver_queues()


def stats(stack, campaign_id="spring-sale") -> dict[str, int]:
    item = stack.client("dynamodb").get_item(
        TableName=stack.outputs["CampaignsTableName"], Key={"campaign_id": {"S": f"{campaign_id}#stats"}}
    ).get("Item", {})
    return {k: int(v["N"]) for k, v in item.items() if "N" in v}


def recipient(stack, address):
    return stack.client("dynamodb").get_item(
        TableName=stack.outputs["RecipientsTableName"], Key={"address": {"S": address}}).get("Item")


def history(stack, address):
    return stack.client("dynamodb").query(
        TableName=stack.outputs["EventsTableName"], KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": f"RECIPIENT#{address}"}})["Items"]


def add_recipients(stack, *addresses, status="ACTIVE"):
    for address in addresses:
        add_contact(stack, address, ["newsletter"], status=status, attributes={"version": 1})


def dead_letters(stack):
    messages = stack.client("sqs").receive_message(
        QueueUrl=stack.outputs["FeedbackDeadLetterQueueUrl"], MaxNumberOfMessages=10,
        MessageAttributeNames=["All"]).get("Messages", [])
    return {m["Body"]: m["MessageAttributes"]["reason"]["StringValue"] for m in messages}


def body(name: str) -> str:
    return (BODIES / name).read_text()


@pytest.mark.parametrize("sample", GOOD, ids=lambda p: p.name)
def test_every_sample_is_applied_and_nothing_reaches_the_dead_letter_queue(stack, sample):
    parsed = parse_feedback(sample.read_text())
    add_recipients(stack, *{e.recipient for e in parsed.events})

    send(stack, sample.read_text())

    assert dead_letters(stack) == {}
    expected = Counter()
    for event in parsed.events:
        if event.campaign_id:
            from app.domain.feedback_apply import counter_name
            expected[counter_name(event)] += 1
            expected[f"{counter_name(event)}#{event.variant}"] += 1
    assert stats(stack) == dict(expected)


def test_hard_bounce_suppresses_with_an_audit_record_and_counts_once_when_delivered_twice(stack):
    add_recipients(stack, "bounce@simulator.amazonses.com")

    send(stack, body("sns_bounce_permanent.json"), body("sns_bounce_permanent.json"))
    send(stack, body("eventbridge_bounce_permanent.json"))  # the same event, by the other route

    assert stats(stack) == {"hard_bounces": 1, "hard_bounces#a": 1}
    item = recipient(stack, "bounce@simulator.amazonses.com")
    assert item["status"]["S"] == "SUPPRESSED"
    assert item["version"]["N"] == "2"
    (audit,) = history(stack, "bounce@simulator.amazonses.com")
    assert (audit["from_status"]["S"], audit["to_status"]["S"], audit["actor"]["S"]) == (
        "ACTIVE", "SUPPRESSED", "ses-feedback")
    assert audit["reason"]["S"].startswith("hard bounce (Permanent/")


def test_complaint_suppresses_the_recipient(stack):
    parsed = parse_feedback(body("sns_complaint.json")).events
    add_recipients(stack, *{e.recipient for e in parsed})

    send(stack, body("sns_complaint.json"))

    assert {recipient(stack, e.recipient)["status"]["S"] for e in parsed} == {"SUPPRESSED"}
    assert stats(stack)["complaints"] == len(parsed)


def test_delivery_after_a_bounce_does_not_undo_the_suppression(stack):
    add_recipients(stack, "bounce@simulator.amazonses.com")
    bounce = json.loads(json.loads(body("sns_bounce_permanent.json"))["Message"])
    delivery = {"eventType": "Delivery", "mail": bounce["mail"],
                "delivery": {"timestamp": "2026-11-22T09:05:00.000Z", "recipients": ["bounce@simulator.amazonses.com"],
                             "processingTimeMillis": 100, "smtpResponse": "250 ok"}}

    send(stack, body("sns_bounce_permanent.json"))
    send(stack, json.dumps(delivery))

    assert recipient(stack, "bounce@simulator.amazonses.com")["status"]["S"] == "SUPPRESSED"
    assert stats(stack) == {"hard_bounces": 1, "hard_bounces#a": 1, "delivered": 1, "delivered#a": 1}


def test_delivery_ends_probation_for_a_recipient_in_recovery(stack):
    parsed = parse_feedback(body("sns_delivery.json")).events
    add_recipients(stack, *{e.recipient for e in parsed}, status="RECOVERY")

    send(stack, body("sns_delivery.json"))

    for event in parsed:
        assert recipient(stack, event.recipient)["status"]["S"] == "ACTIVE"
        assert [a["to_status"]["S"] for a in history(stack, event.recipient)] == ["ACTIVE"]


def test_each_recipient_of_a_multi_recipient_bounce_is_applied(stack):
    parsed = parse_feedback(body("sns_bounce_multiple_recipients.json")).events
    add_recipients(stack, *{e.recipient for e in parsed})

    send(stack, body("sns_bounce_multiple_recipients.json"))

    assert len(parsed) >= 2
    assert stats(stack)["hard_bounces"] + stats(stack).get("soft_bounces", 0) == len(parsed)
    for event in parsed:
        assert len(history(stack, event.recipient)) == 1


def test_identity_notification_finds_its_campaign_by_the_headers_sendbatch_writes(stack):
    """Identity notifications carry no tags; with original headers included they carry SendBatch's headers."""
    envelope = json.loads(body("notification_bounce_permanent.json"))
    notification = json.loads(envelope["Message"])
    notification["mail"]["headers"] += [{"name": "X-Sesflow-Campaign", "value": "spring-sale"},
                                        {"name": "X-Sesflow-Variant", "value": "b"}]
    with_headers = json.dumps({**envelope, "Message": json.dumps(notification)})
    parsed = parse_feedback(with_headers).events
    add_recipients(stack, *{e.recipient for e in parsed})

    send(stack, with_headers, body("notification_bounce_permanent.json"))  # the copy without headers counts nowhere

    assert stats(stack) == {"hard_bounces": len(parsed), "hard_bounces#b": len(parsed)}


def test_poison_message_goes_to_the_dead_letter_queue_with_its_reason_and_the_batch_is_applied(stack):
    add_recipients(stack, "bounce@simulator.amazonses.com")

    send(stack, body("sns_delivery.json"), *(p.read_text() for p in MALFORMED), body("sns_bounce_permanent.json"))

    dlq = dead_letters(stack)
    assert set(dlq) == {p.read_text() for p in MALFORMED}
    assert all(reason for reason in dlq.values())
    assert "is not an SES event type" in dlq[body("malformed_unknown_event_type.json")]
    assert "an SES receiving event (an inbound email)" in dlq[body("refused_received_notification.json")]
    assert "an S3 event notification" in dlq[body("refused_s3_event_notification.json")]
    assert "'Sending Status Disabled' is not an SES email event" in dlq[
        body("refused_eventbridge_sending_disabled.json")]
    assert "could not be told from another" in dlq[body("malformed_bounce_without_mail_or_feedback_id.json")]
    assert stats(stack)["hard_bounces"] == 1 and stats(stack)["delivered"] >= 1
    assert recipient(stack, "bounce@simulator.amazonses.com")["status"]["S"] == "SUPPRESSED"


def test_tagged_copy_counts_for_its_campaign_when_an_untagged_notification_came_first(stack):
    add_recipients(stack, "bounce@simulator.amazonses.com")
    tagged = json.loads(json.loads(body("sns_bounce_permanent.json"))["Message"])
    untagged = {**tagged, "mail": {k: v for k, v in tagged["mail"].items() if k != "tags"}}

    send(stack, json.dumps(untagged))  # nothing in SendsTable yet: no campaign to count it for
    send(stack, json.dumps(tagged))

    assert stats(stack) == {"hard_bounces": 1, "hard_bounces#a": 1}
    assert recipient(stack, "bounce@simulator.amazonses.com")["status"]["S"] == "SUPPRESSED"


def status(stack, address):
    return recipient(stack, address)["status"]["S"]


@pytest.mark.parametrize(("name", "before", "after"), [
    ("notification_bounce_without_mail.json", "ACTIVE", "SUPPRESSED"),
    ("notification_complaint_without_mail.json", "ACTIVE", "SUPPRESSED"),
    ("notification_bounce_transient_bare_mail.json", "ACTIVE", "QUARANTINED"),
    ("notification_delivery_without_mail.json", "RECOVERY", "ACTIVE"),
])
def test_identity_notification_without_a_campaign_still_moves_its_recipient(stack, name, before, after):
    (event,) = parse_feedback(body(name)).events
    add_recipients(stack, event.recipient, status=before)
    add_recipients(stack, "bystander@example.com", status=before)

    send(stack, body(name))

    assert dead_letters(stack) == {}
    assert status(stack, event.recipient) == after
    (audit,) = history(stack, event.recipient)
    assert (audit["from_status"]["S"], audit["to_status"]["S"], audit["actor"]["S"]) == (before, after, "ses-feedback")
    assert "campaign_id" not in audit and ("message_id" in audit) == (event.message_id is not None)
    assert status(stack, "bystander@example.com") == before  # only the recipient the event names
    assert stats(stack) == {}  # no campaign to count it for


def test_mailless_hard_bounce_delivered_twice_is_applied_once(stack):
    add_recipients(stack, "nomail.hard@example.com")

    send(stack, body("notification_bounce_without_mail.json"), body("notification_bounce_without_mail.json"))
    send(stack, body("notification_bounce_without_mail.json"))

    assert status(stack, "nomail.hard@example.com") == "SUPPRESSED"
    assert recipient(stack, "nomail.hard@example.com")["version"]["N"] == "2"
    assert len(history(stack, "nomail.hard@example.com")) == 1


def invoke(stack, event: dict):
    response = stack.client("lambda").invoke(FunctionName=stack.physical_id("IngestFeedbackFunction"),
                                             Payload=json.dumps(event).encode())
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def test_sns_topic_invoking_the_function_directly_applies_each_record_and_dead_letters_the_unusable(stack):
    """Not the template's wiring (SES -> SNS -> SQS), but the handler takes the event an SNS subscription gives."""
    event = json.loads((ROOT / "events" / "ingest_feedback" / "sns_event.json").read_text())
    bad = copy.deepcopy(event["Records"][1])
    bad["Sns"]["MessageId"] = "sns-bad-1"
    bad["Sns"]["Message"] = json.loads(body("refused_received_notification.json"))["Message"]
    event["Records"].insert(1, bad)
    add_recipients(stack, "bounce@simulator.amazonses.com", "nomail.hard@example.com")

    error, result = invoke(stack, event)

    assert (error, result) == (None, {"batchItemFailures": []})
    assert status(stack, "bounce@simulator.amazonses.com") == status(stack, "nomail.hard@example.com") == "SUPPRESSED"
    assert stats(stack) == {"hard_bounces": 1, "hard_bounces#a": 1}  # the mail-less one counts for no campaign
    ((dead_body, reason),) = dead_letters(stack).items()
    assert "an SES receiving event" in reason
    assert json.loads(dead_body)["MessageId"] == "sns-bad-1"  # the SNS notification, as SQS would have had it
    with pytest.raises(FeedbackParseError, match="an SES receiving event"):  # its redrive meets the same parser
        parse_feedback(dead_body)


def test_sns_direct_event_that_fails_to_apply_raises_so_lambda_retries_it(stack, monkeypatch):
    import app.handlers.ingest_feedback as handler

    def broken(*args, **kwargs):
        raise RuntimeError("DynamoDB is down")

    monkeypatch.setattr(handler, "apply_events", broken)
    event = json.loads((ROOT / "events" / "ingest_feedback" / "sns_event.json").read_text())

    error, result = invoke(stack, event)

    assert error is not None and result["errorType"] == "RuntimeError"


def test_sns_direct_record_the_dlq_does_not_take_raises_after_the_rest_is_applied(stack, monkeypatch):
    import app.handlers.ingest_feedback as handler

    def unavailable(*args, **kwargs):
        raise RuntimeError("SQS is down")

    monkeypatch.setattr(handler, "dead_letter", unavailable)
    event = json.loads((ROOT / "events" / "ingest_feedback" / "sns_event.json").read_text())
    event["Records"][1]["Sns"]["Message"] = "{oops"
    add_recipients(stack, "bounce@simulator.amazonses.com")

    error, result = invoke(stack, event)

    assert error is not None and "could not be dead-lettered" in result["errorMessage"]
    assert status(stack, "bounce@simulator.amazonses.com") == "SUPPRESSED"  # applied; the retry absorbs it


def test_a_machines_open_takes_no_first_open_and_the_persons_later_open_counts(stack):
    # spring-sale's test is open (test-then-winner, no decision yet): each recipient's first human open and click
    # count as unique. Apple's privacy proxy opens grace's message first; a link scanner clicks seconds after the
    # send; then grace opens and clicks herself.
    stack.client("dynamodb").put_item(TableName=stack.outputs["CampaignsTableName"], Item={
        "campaign_id": {"S": "spring-sale"}, "definition": {"S": json.dumps({"ab": {"mode": "test_then_winner"}})}})
    add_recipients(stack, "grace@example.com")

    send(stack, body("sns_open_privacy_proxy.json"), body("sns_click_link_scanner.json"))
    assert stats(stack) == {"machine_opens": 1, "machine_opens#a": 1, "machine_clicks": 1, "machine_clicks#a": 1}
    send(stack, body("sns_open.json"), body("sns_click.json"))

    assert stats(stack) == {"machine_opens": 1, "machine_opens#a": 1, "machine_clicks": 1, "machine_clicks#a": 1,
                            "opens": 1, "opens#a": 1, "clicks": 1, "clicks#a": 1, "unique_opens": 1,
                            "unique_opens#a": 1, "unique_clicks": 1, "unique_clicks#a": 1}
    assert dead_letters(stack) == {}
