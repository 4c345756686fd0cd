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
        ("Transient", "General", False),
        ("Transient", "MessageTooLarge", False),
        ("Transient", "AttachmentRejected", False),
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
         "Message.notificationType 'Received': an SES receiving event (an inbound email), not feedback"),
        (sns({"notificationType": "Bogus", "mail": {}}),
         "Message.notificationType 'Bogus' is not an SES feedback notification type"),
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


def test_malformed_and_refused_samples_are_refused():
    samples = sorted(p for p in BODIES.iterdir() if p.name.startswith(("malformed_", "refused_")))
    assert len(samples) >= 8
    for path in samples:
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


# ---------------------------------------------------------------- shapes beyond the queue's own


def lambda_sns_record(notification: str, *, lambda_spelling: bool = True) -> dict:
    """The record a Lambda function gets when the SNS topic invokes it directly."""
    sns_body = json.loads(notification)
    if lambda_spelling:  # SNS spells these two differently for Lambda than for SQS and HTTP
        sns_body["SigningCertUrl"] = sns_body.pop("SigningCertURL", "https://sns.example/cert.pem")
        sns_body["UnsubscribeUrl"] = sns_body.pop("UnsubscribeURL", "https://sns.example/unsubscribe")
    return {"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "arn:aws:sns:us-east-1:1:t:s",
            "Sns": {"Subject": None, "MessageAttributes": {}, **sns_body}}


@pytest.mark.parametrize("lambda_spelling", [True, False])
@pytest.mark.parametrize("name", ["sns_bounce_permanent.json", "notification_complaint.json", "sns_click.json"])
def test_lambda_sns_record_gives_the_events_of_its_notification_when_a_topic_invokes_a_function(name,
                                                                                                   lambda_spelling):
    record = lambda_sns_record(body(name), lambda_spelling=lambda_spelling)
    via_queue = parse_feedback(body(name)).events
    direct = parse_feedback(record).events
    assert [(e.event_id, e.kind, e.recipient, e.envelope) for e in direct] == [
        (e.event_id, e.kind, e.recipient, "sns") for e in via_queue] and direct
    assert parse_feedback(json.dumps(record)).events == direct  # as a file or a queue body, too


def test_lambda_sns_event_sample_parses_record_by_record():
    event = json.loads((EVENTS / "sns_event.json").read_text())
    assert event["Records"][0]["Sns"]["SigningCertUrl"] and "SigningCertURL" not in event["Records"][0]["Sns"]
    events = [e for record in event["Records"] for e in parse_feedback(record).events]
    assert [(e.kind, e.recipient, e.hard, e.campaign_id) for e in events] == [
        ("bounce", "bounce@simulator.amazonses.com", True, "spring-sale"),
        ("bounce", "nomail.hard@example.com", True, None)]
    with pytest.raises(FeedbackParseError, match="a Lambda event with Records"):
        parse_feedback(event)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"EventSource": "aws:sns", "Sns": "{}"}, "Sns: not an object"),
        ({"EventSource": "aws:sns", "Sns": {"Message": "{}"}}, "Sns.Type: missing"),
        ({"EventSource": "aws:sns", "Sns": {"Type": "Notification", "Message": "{oops"}},
         "Sns.Message: not JSON (line 1 col 2)"),
    ],
)
def test_broken_lambda_sns_record_is_refused_saying_where(record, reason):
    with pytest.raises(FeedbackParseError) as raised:
        parse_feedback(record)
    assert reason in str(raised.value)


MAILLESS = [  # file, kind, recipient, (bounce_type, hard, complaint_type)
    ("notification_bounce_without_mail.json", "bounce", "nomail.hard@example.com", ("Permanent", True, None)),
    ("notification_complaint_without_mail.json", "complaint", "nomail.complaint@example.com", NOT_BOUNCE),
    ("notification_delivery_without_mail.json", "delivery", "nomail.delivered@example.com", NOT_BOUNCE),
]


@pytest.mark.parametrize(("name", "kind", "recipient", "classes"), MAILLESS)
def test_identity_notification_without_mail_is_an_event_of_no_campaign_and_no_message(name, kind, recipient,
                                                                                      classes):
    event = only(parse_feedback(body(name)))
    assert (event.kind, event.recipient, event.source, event.envelope) == (kind, recipient, NOTE, "sns")
    assert (event.bounce_type, event.hard, event.complaint_type) == classes
    assert (event.campaign_id, event.variant, event.message_id, event.batch, event.call) == (None,) * 5
    assert event.timestamp == ses_record(name)[kind]["timestamp"]  # its own; there is no mail.timestamp


def test_mail_without_tags_headers_or_common_headers_is_accepted_and_counts_for_no_campaign():
    bare = only(parse_feedback(body("notification_bounce_transient_bare_mail.json")))
    assert (bare.kind, bare.recipient, bare.hard, bare.campaign_id) == ("bounce", "bare.soft@example.com", False, None)
    assert bare.message_id.startswith("0100019355a10102")

    full = ses_record("sns_bounce_permanent.json")
    for missing in ("tags", "headers", "commonHeaders", "timestamp", "destination", "headersTruncated"):
        record = copy.deepcopy(full)
        del record["mail"][missing]
        event = only(parse_feedback(sns(record)))
        assert event.event_id == only(parse_feedback(sns(full))).event_id, missing
        assert (event.campaign_id is None) == (missing == "tags"), missing


def test_mail_without_message_id_is_like_no_mail_for_a_bounce():
    record = ses_record("sns_bounce_permanent.json")
    del record["mail"]["messageId"]
    event = only(parse_feedback(sns(record)))
    assert event.message_id is None and event.campaign_id == "spring-sale" and event.hard is True


def test_event_without_mail_is_identified_by_its_feedback_id_else_its_timestamp():
    record = ses_record("notification_bounce_without_mail.json")
    again = only(parse_feedback(sns(record))).event_id
    assert again == only(parse_feedback(body("notification_bounce_without_mail.json"))).event_id
    other = copy.deepcopy(record)
    other["bounce"]["feedbackId"] = "another-feedback"
    assert only(parse_feedback(sns(other))).event_id != again
    del other["bounce"]["feedbackId"]
    by_time = only(parse_feedback(sns(other))).event_id
    other["bounce"]["timestamp"] = "2026-11-23T10:00:00.000Z"
    assert only(parse_feedback(sns(other))).event_id not in (by_time, again)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"notificationType": "Bounce", "bounce": {"bounceType": "Permanent",
                                                   "bouncedRecipients": [{"emailAddress": "a@example.com"}]}},
         "Message.bounce: no feedbackId or timestamp and no mail.messageId"),
        ({"notificationType": "Delivery", "delivery": {"recipients": ["a@example.com"]}},
         "Message.delivery: no timestamp and no mail.messageId"),
        ({"eventType": "Open", "open": {"timestamp": "2026-11-22T09:00:00.000Z"}}, "Message.mail: missing"),
        ({"eventType": "Send", "send": {}, "mail": {"destination": ["a@example.com"]}},
         "Message.mail.messageId: missing"),
        ({"notificationType": "Bounce", "mail": "m-1", "bounce": {}}, "Message.mail: not an object"),
    ],
)
def test_event_without_mail_is_refused_when_nothing_else_names_or_identifies_it(record, reason):
    with pytest.raises(FeedbackParseError) as raised:
        parse_feedback(sns(record))
    assert reason in str(raised.value)


@pytest.mark.parametrize(("spelled", "canonical", "hard"), [
    ("PERMANENT", "Permanent", True), ("permanent", "Permanent", True), ("TRANSIENT", "Transient", False),
    ("UNDETERMINED", "Undetermined", False)])
def test_bounce_type_is_matched_whatever_its_case_and_kept_in_ses_event_spelling(spelled, canonical, hard):
    record = ses_record("sns_bounce_permanent.json")
    record["bounce"]["bounceType"] = spelled
    event = only(parse_feedback(sns(record)))
    assert (event.bounce_type, event.hard) == (canonical, hard)


def test_eventbridge_event_delivered_by_an_sns_target_gives_the_same_event():
    via_sns = only(parse_feedback(body("sns_eventbridge_bounce_permanent.json")))
    direct = only(parse_feedback(body("eventbridge_bounce_permanent.json")))
    assert (via_sns.event_id, via_sns.envelope, via_sns.campaign_id) == (direct.event_id, "eventbridge", "spring-sale")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (body("refused_received_notification.json"), "'Received': an SES receiving event (an inbound email)"),
        (body("refused_s3_event_notification.json"), "body: an S3 event notification: the feedback is in the object"),
        (json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-22T12:00:00.000Z",
                     "Bucket": "sesflow-ses-events"}), "body: an S3 event notification"),
        (json.loads(body("refused_s3_event_notification.json"))["Records"][0], "body: an S3 event notification"),
        ({"eventSource": "aws:ses", "eventVersion": "1.0", "ses": {"mail": {}, "receipt": {}}},
         "body: an SES receiving event (an inbound email)"),
        (json.dumps({"Records": [{"eventSource": "aws:ses", "ses": {}}]}), "body: an SES receiving event"),
        (body("refused_eventbridge_sending_disabled.json"),
         "detail-type: 'Sending Status Disabled' is not an SES email event (an SES account event"),
        (sns({**json.loads(body("refused_eventbridge_sending_disabled.json"))}),
         "Message.detail-type: 'Sending Status Disabled' is not an SES email event"),
    ],
)
def test_what_is_not_feedback_is_refused_naming_what_it_is(message, reason):
    with pytest.raises(FeedbackParseError) as raised:
        parse_feedback(message)
    assert reason in str(raised.value)


def test_complaint_from_the_account_suppression_list_suppresses_and_keeps_its_subtype():
    record = ses_record("sns_complaint.json")
    del record["complaint"]["complaintFeedbackType"]
    record["complaint"]["complaintSubType"] = "OnAccountSuppressionList"
    event = only(parse_feedback(sns(record)))
    assert (event.complaint_type, event.detail["complaintSubType"]) == (None, "OnAccountSuppressionList")
