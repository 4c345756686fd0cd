"""The SES feedback parser, pure: every event type in every envelope, real-world variety, and what it refuses."""

import copy
import json
from pathlib import Path

import pytest
from app.domain.feedback import DETAIL_TYPES, KINDS, SES_TOPIC_VALIDATION, normalize_address, parse_feedback
from app.errors import FeedbackParseError, SesflowError
from hypothesis import given
from hypothesis import strategies as st

EVENTS = Path(__file__).resolve().parents[2] / "events" / "ingest_feedback"
BODIES = EVENTS / "bodies"


def body(name: str) -> str:
    return (BODIES / name).read_text()


def ses_record(name: str) -> dict:
    """The SES record inside an SNS sample, as a dict."""
    return json.loads(json.loads(body(name))["Message"])


def sns(record: dict) -> str:
    return json.dumps({"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:1:t",
                       "Message": json.dumps(record)})


def eventbridge(record: dict, detail_type: str) -> str:
    return json.dumps({"version": "0", "id": "e-1", "detail-type": detail_type, "source": "aws.ses",
                       "account": "123456789012", "time": "2026-11-22T09:00:05Z", "region": "us-east-1",
                       "resources": [], "detail": record})


def sqs_record(message_body: str) -> dict:
    return {"messageId": "q-1", "receiptHandle": "AQEB", "body": message_body, "attributes": {},
            "messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": "us-east-1"}


def only(result):
    assert result.control is None and len(result.events) == 1, result
    return result.events[0]


EP, NOTE, TAGS, UNTAGGED = "event_publishing", "notification", ("spring-sale", "a"), (None, None)
NOT_BOUNCE = (None, None, None)  # (bounce_type, hard, complaint_type)
SIM = "@simulator.amazonses.com"
SAMPLES = [  # file, kind, recipients, envelope, source, (bounce_type, hard, complaint_type), (campaign, variant)
    ("sns_send.json", "send", ["jane.doe@example.com"], "sns", EP, NOT_BOUNCE, TAGS),
    ("sns_delivery.json", "delivery", [f"success{SIM}"], "sns", EP, NOT_BOUNCE, TAGS),
    ("sns_bounce_permanent.json", "bounce", [f"bounce{SIM}"], "sns", EP, ("Permanent", True, None), TAGS),
    ("sns_bounce_transient.json", "bounce", ["ada@example.com"], "sns", EP, ("Transient", False, None), TAGS),
    ("sns_bounce_multiple_recipients.json", "bounce", ["jane.doe@example.com", "richard@example.com"], "sns", EP,
     ("Permanent", True, None), TAGS),
    ("sns_complaint.json", "complaint", [f"complaint{SIM}"], "sns", EP, (None, None, "abuse"), TAGS),
    ("sns_reject.json", "reject", ["grace@example.com"], "sns", EP, NOT_BOUNCE, TAGS),
    ("sns_open.json", "open", ["grace@example.com"], "sns", EP, NOT_BOUNCE, TAGS),
    ("sns_click.json", "click", ["grace@example.com"], "sns", EP, NOT_BOUNCE, TAGS),
    ("sns_rendering_failure.json", "rendering_failure", ["linus@example.com"], "sns", EP, NOT_BOUNCE, TAGS),
    ("sns_delivery_delay.json", "delivery_delay", ["alan@example.com"], "sns", EP, NOT_BOUNCE, TAGS),
    ("sns_subscription.json", "subscription", ["grace@example.com"], "sns", EP, NOT_BOUNCE, TAGS),
    ("sns_raw_delivery.json", "delivery", [f"success{SIM}"], "sns_raw", EP, NOT_BOUNCE, TAGS),
    ("sns_raw_bounce_permanent.json", "bounce", [f"bounce{SIM}"], "sns_raw", EP, ("Permanent", True, None), TAGS),
    ("sns_raw_complaint.json", "complaint", [f"complaint{SIM}"], "sns_raw", EP, (None, None, "abuse"), TAGS),
    ("eventbridge_bounce_permanent.json", "bounce", [f"bounce{SIM}"], "eventbridge", EP, ("Permanent", True, None),
     TAGS),
    ("eventbridge_complaint.json", "complaint", [f"complaint{SIM}"], "eventbridge", EP, (None, None, "abuse"), TAGS),
    ("eventbridge_subscription.json", "subscription", ["grace@example.com"], "eventbridge", EP, NOT_BOUNCE, TAGS),
    ("notification_bounce_permanent.json", "bounce", ["jane@example.com"], "sns", NOTE, ("Permanent", True, None),
     UNTAGGED),
    ("notification_bounce_transient.json", "bounce", ["richard@example.com"], "sns", NOTE, ("Transient", False, None),
     UNTAGGED),
    ("notification_complaint.json", "complaint", ["richard@example.com"], "sns", NOTE, NOT_BOUNCE, UNTAGGED),
    ("notification_delivery.json", "delivery", ["jane@example.com"], "sns", NOTE, NOT_BOUNCE, UNTAGGED),
]


@pytest.mark.parametrize(("name", "kind", "recipients", "envelope", "source", "classes", "tags"), SAMPLES)
def test_sample_is_normalized_one_event_per_recipient(name, kind, recipients, envelope, source, classes, tags):
    result = parse_feedback(body(name))

    assert result.control is None
    assert [e.recipient for e in result.events] == recipients
    for event in result.events:
        assert (event.kind, event.envelope, event.source) == (kind, envelope, source)
        assert (event.bounce_type, event.hard, event.complaint_type) == classes
        assert (event.campaign_id, event.variant) == tags
        assert len(event.event_id) == 32 and int(event.event_id, 16) >= 0
        assert event.message_id and event.timestamp
    assert len({e.event_id for e in result.events}) == len(result.events)


@pytest.mark.parametrize("event_type", sorted(KINDS))
def test_each_event_type_gives_the_same_events_in_every_envelope(event_type):
    kind = KINDS[event_type]
    record = ses_record("sns_bounce_permanent.json" if kind == "bounce" else f"sns_{kind}.json")
    detail_type = {ses: name for name, ses in DETAIL_TYPES.items()}[event_type]
    shapes = {
        "sns": parse_feedback(sns(record)),
        "sns_raw": parse_feedback(json.dumps(record)),
        "eventbridge": parse_feedback(eventbridge(record, detail_type)),
        "sqs": parse_feedback(json.dumps(record), envelope_hint="sqs"),
        "dict": parse_feedback(copy.deepcopy(record)),
        "sqs record": parse_feedback(sqs_record(sns(record))),
    }
    envelopes = {name: [e.envelope for e in result.events] for name, result in shapes.items()}
    assert envelopes["sns"][0] == "sns" and envelopes["eventbridge"][0] == "eventbridge"
    assert envelopes["sns_raw"][0] == envelopes["dict"][0] == "sns_raw" and envelopes["sqs"][0] == "sqs"
    assert envelopes["sqs record"][0] == "sns"
    identities = {name: [(e.event_id, e.kind, e.recipient) for e in result.events] for name, result in shapes.items()}
    assert all(ids == identities["sns"] for ids in identities.values()), identities
    assert identities["sns"][0][1] == KINDS[event_type]


@pytest.mark.parametrize("name", sorted(p.name.removeprefix("eventbridge_") for p in BODIES.glob("eventbridge_*")))
def test_same_event_via_sns_and_eventbridge_has_the_same_event_id(name):
    via_sns = [e.event_id for e in parse_feedback(body(f"sns_{name}")).events]
    via_eventbridge = [e.event_id for e in parse_feedback(body(f"eventbridge_{name}")).events]
    assert via_sns == via_eventbridge and via_sns


def test_same_bounce_as_notification_and_event_publishing_has_the_same_event_id():
    record = ses_record("notification_bounce_permanent.json")
    published = {**record, "eventType": "Bounce"}
    del published["notificationType"]
    assert only(parse_feedback(sns(record))).event_id == only(parse_feedback(sns(published))).event_id


def test_two_opens_of_one_message_have_different_event_ids():
    first = ses_record("sns_open.json")
    second = copy.deepcopy(first)
    second["open"]["timestamp"] = "2026-11-22T18:42:00.001Z"
    assert only(parse_feedback(sns(first))).event_id != only(parse_feedback(sns(second))).event_id


def test_two_clicks_at_once_on_different_links_have_different_event_ids():
    first = ses_record("sns_click.json")
    second = copy.deepcopy(first)
    second["click"]["link"] = "https://www.example.com/unsubscribe"
    assert only(parse_feedback(sns(first))).event_id != only(parse_feedback(sns(second))).event_id


def test_events_of_different_kinds_for_one_recipient_have_different_event_ids():
    delivery = ses_record("sns_delivery.json")
    bounce = {**delivery, "eventType": "Bounce", "bounce": {
        "bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "success@simulator.amazonses.com"}],
        "timestamp": delivery["delivery"]["timestamp"]}}
    assert only(parse_feedback(sns(delivery))).event_id != only(parse_feedback(sns(bounce))).event_id


@pytest.mark.parametrize(
    ("bounce_type", "subtype", "hard"),
    [
        ("Permanent", "General", True),
        ("Permanent", "NoEmail", True),
        ("Permanent", "Suppressed", True),
        ("Permanent", "OnAccountSuppressionList", True),
        ("Permanent", "ExampleNewSubType", True),
        ("Permanent", None, True),
        ("Transient", "MailboxFull", False),
        ("Transient", "ContentRejected", False),
        ("Transient", "ExampleNewSubType", False),
        ("Undetermined", "Undetermined", False),
        ("ExampleNewType", "General", False),
    ],
)
def test_bounce_is_hard_only_when_permanent_whatever_the_subtype(bounce_type, subtype, hard):
    record = ses_record("sns_bounce_permanent.json")
    record["bounce"]["bounceType"] = bounce_type
    if subtype is None:
        del record["bounce"]["bounceSubType"]
    else:
        record["bounce"]["bounceSubType"] = subtype
    event = only(parse_feedback(sns(record)))
    assert (event.bounce_type, event.bounce_subtype, event.hard) == (bounce_type, subtype, hard)


def test_complaint_without_feedback_report_has_no_complaint_type():
    event = only(parse_feedback(body("notification_complaint.json")))
    assert event.kind == "complaint" and event.complaint_type is None and event.hard is None


def test_several_recipients_give_one_event_each_and_only_those_the_event_names():
    events = parse_feedback(body("sns_bounce_multiple_recipients.json")).events
    assert [e.recipient for e in events] == ["jane.doe@example.com", "richard@example.com"]  # mary did not bounce
    assert events[0].bounce_subtype == "ExampleNewSubType" and all(e.hard for e in events)


def test_same_address_twice_in_one_event_is_one_event():
    record = ses_record("sns_send.json")
    record["mail"]["destination"] = ["Grace@Example.com", '"Grace" <grace@example.com>']
    assert [e.recipient for e in parse_feedback(sns(record)).events] == ["grace@example.com"]


def test_missing_optional_fields_leave_their_fields_empty():
    record = {"eventType": "Delivery", "mail": {"messageId": "m-1"}, "delivery": {"recipients": ["A@example.com"]}}
    event = only(parse_feedback(record))
    assert (event.recipient, event.timestamp, event.campaign_id, event.variant, event.detail) == (
        "a@example.com", None, None, None, {})

    opened = only(parse_feedback({"eventType": "Open", "mail": {
        "messageId": "m-1", "timestamp": "2026-11-22T09:00:00.000Z", "destination": ["a@example.com"]}}))
    assert opened.timestamp == "2026-11-22T09:00:00.000Z"  # mail.timestamp when the event has none


def test_campaign_and_variant_come_from_the_tags_only():
    record = ses_record("sns_delivery.json")
    record["mail"]["tags"] = {"ses:configuration-set": ["x"], "campaign": ["black-friday"], "variant": ["b", "c"]}
    event = only(parse_feedback(sns(record)))
    assert (event.campaign_id, event.variant) == ("black-friday", "b")


def test_details_keep_the_useful_extras():
    click = only(parse_feedback(body("sns_click.json")))
    delay = only(parse_feedback(body("sns_delivery_delay.json")))
    subscription = only(parse_feedback(body("sns_subscription.json")))
    bounce = only(parse_feedback(body("sns_bounce_permanent.json")))
    assert click.detail["link"].startswith("https://www.example.com/") and "ipAddress" not in click.detail
    assert delay.detail["delayType"] == "TransientCommunicationFailure"
    assert subscription.detail["unsubscribeAll"] is True and subscription.detail["topics"] == {"promotions": "OptOut"}
    assert bounce.detail["diagnosticCode"] == "smtp; 550 5.1.1 user unknown" and bounce.detail["feedbackId"]


def test_event_to_dict_is_plain_json_with_every_field():
    event = only(parse_feedback(body("sns_bounce_permanent.json")))
    as_dict = json.loads(json.dumps(event.to_dict()))
    for key in ("event_id", "kind", "recipient", "bounce_type", "bounce_subtype", "hard", "complaint_type",
                "message_id", "campaign_id", "variant", "timestamp", "source", "envelope", "detail"):
        assert key in as_dict
    assert as_dict["hard"] is True


def test_lambda_sqs_record_is_parsed_through_its_body():
    records = json.loads((EVENTS / "sqs_batch.json").read_text())["Records"]
    event = only(parse_feedback(records[0]))
    assert (event.kind, event.recipient, event.campaign_id, event.envelope) == (
        "delivery", "ada@example.org", "spring-sale", "sns_raw")
    with pytest.raises(FeedbackParseError, match=r"^body: not JSON \(line 1 col 1\)$"):
        parse_feedback(records[1])


@pytest.mark.parametrize(
    ("message", "control"),
    [
        (body("sns_subscription_confirmation.json"), "SubscriptionConfirmation"),
        (body("sns_unsubscribe_confirmation.json"), "UnsubscribeConfirmation"),
        (body("notification_subscription_succeeded.json"), "AmazonSnsSubscriptionSucceeded"),
        (json.loads(body("notification_subscription_succeeded.json"))["Message"], "AmazonSnsSubscriptionSucceeded"),
        (body("sns_topic_validation.json"), "SesTopicValidation"),
        (SES_TOPIC_VALIDATION, "SesTopicValidation"),  # the same text by SNS raw delivery
        (sqs_record(body("sns_subscription_confirmation.json")), "SubscriptionConfirmation"),
    ],
)
def test_control_message_is_recognised_not_an_event_nor_a_failure(message, control):
    result = parse_feedback(message)
    assert (result.control, result.events) == (control, [])


def _without(name: str, *path: str) -> str:
    record = ses_record(name)
    target = record
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return sns(record)


def _with(name: str, key: str, value) -> str:
    return sns({**ses_record(name), key: value})


def _eventbridge_with(key: str, value: str) -> str:
    return json.dumps({**json.loads(body("eventbridge_bounce_permanent.json")), key: value})


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("this is not JSON", "body: not JSON (line 1 col 1)"),
        ("[1, 2]", "body: not a JSON object"),
        ('{"hello": "world"}', "body: not an SES record, SNS message or EventBridge event (keys: hello)"),
        (json.dumps({"Records": []}), "body: a Lambda event with Records"),
        (json.dumps({"Type": "Notification", "TopicArn": "t", "Message": "{oops"}), "Message: not JSON (line 1 col 2)"),
        (json.dumps({"Type": "Notification", "TopicArn": "t"}), "Message: missing"),
        (json.dumps({"Type": "Notification", "TopicArn": "t", "Message": {"eventType": "Send"}}),
         "Message: not a string"),
        (json.dumps({"Type": "Notification", "TopicArn": "t", "Message": "[]"}), "Message: not a JSON object"),
        (json.dumps({"Type": "Bogus", "TopicArn": "t"}), "Type: 'Bogus' is not an SNS message type"),
        (_with("sns_send.json", "eventType", "Bogus"), "Message.eventType 'Bogus' is not an SES event type"),
        (sns({"notificationType": "Received", "mail": {}}),
         "Message.notificationType 'Received' is not an SES feedback notification type"),
        (_without("sns_send.json", "mail"), "Message.mail: missing"),
        (_without("sns_send.json", "mail", "messageId"), "Message.mail.messageId: missing"),
        (_without("sns_send.json", "mail", "destination"), "Message.mail.destination: missing"),
        (_without("sns_bounce_permanent.json", "bounce"), "Message.bounce: missing"),
        (_without("sns_bounce_permanent.json", "bounce", "bouncedRecipients"),
         "Message.bounce.bouncedRecipients: missing"),
        (_without("sns_bounce_permanent.json", "bounce", "bounceType"), "Message.bounce.bounceType: missing"),
        (_without("sns_complaint.json", "complaint", "complainedRecipients"),
         "Message.complaint.complainedRecipients: missing"),
        (_without("sns_delivery.json", "delivery", "recipients"), "Message.delivery.recipients: missing"),
        (_without("sns_delivery_delay.json", "deliveryDelay", "delayedRecipients"),
         "Message.deliveryDelay.delayedRecipients: missing"),
        (_with("sns_bounce_permanent.json", "bounce", "Permanent"), "Message.bounce: not an object"),
        (sns({**ses_record("sns_send.json"), "mail": {**ses_record("sns_send.json")["mail"], "destination": []}}),
         "Message.mail.destination: must be a non-empty list"),
        (sns({**ses_record("sns_send.json"), "mail": {**ses_record("sns_send.json")["mail"],
                                                       "destination": ["not an address"]}}),
         "Message.mail.destination[0]: not an email address"),
        (sns({**ses_record("sns_complaint.json"), "complaint": {"complainedRecipients": [{}]}}),
         "Message.complaint.complainedRecipients[0].emailAddress: missing"),
        (_eventbridge_with("source", "aws.sns"), "source: 'aws.sns' is not aws.ses"),
        (_eventbridge_with("detail-type", "Sending Status Disabled"),
         "detail-type: 'Sending Status Disabled' is not an SES email event"),
        (_eventbridge_with("detail-type", "Email Delivered"),
         "detail.eventType: 'Bounce' does not match detail-type 'Email Delivered'"),
        (json.dumps({"detail-type": "Email Sent", "source": "aws.ses"}), "detail: missing"),
        (sqs_record("{}}"), "body: not JSON (line 1 col 3)"),
        (sqs_record(sns({"eventType": "Send", "mail": {"messageId": "m"}})), "body.Message.mail.destination: missing"),
    ],
)
def test_unusable_input_is_refused_saying_what_and_where(message, reason):
    with pytest.raises(FeedbackParseError) as raised:
        parse_feedback(message)
    assert reason in str(raised.value)


def test_malformed_samples_are_refused():
    for path in sorted(BODIES.glob("malformed_*")):
        with pytest.raises(FeedbackParseError):
            parse_feedback(path.read_text())


def test_feedback_parse_error_is_a_sesflow_error_and_a_bad_hint_a_bug():
    assert issubclass(FeedbackParseError, SesflowError) and FeedbackParseError.__name__.endswith("Error")
    with pytest.raises(ValueError, match="envelope_hint"):
        parse_feedback(body("sns_raw_delivery.json"), envelope_hint="kinesis")


@pytest.mark.parametrize(
    ("raw", "address"),
    [
        ('"Doe, Jane" <Jane.Doe@Example.com>', "jane.doe@example.com"),
        ("Jane Doe <JANE@EXAMPLE.COM>", "jane@example.com"),
        ("<jane@example.com>", "jane@example.com"),
        ('"jane@example.com"', "jane@example.com"),
        ("  Jane@Example.com  ", "jane@example.com"),
        ('"A <b@c>" <real@example.com>', "real@example.com"),
    ],
)
def test_address_is_stripped_of_display_name_and_lowercased(raw, address):
    assert normalize_address(raw) == address


@given(st.emails(), st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_any_address_in_a_display_name_normalizes_to_the_bare_lowercase_address(address, name):
    expected = normalize_address(address)
    assert expected == address.lower()
    assert normalize_address(f'"{name}" <{address}>') == expected
    assert normalize_address(f"{name} <{address.upper()}>") == expected
