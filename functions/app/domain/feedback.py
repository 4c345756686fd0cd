"""SES feedback in every shape SES sends, turned into one normalized event per recipient. Pure: no AWS, no environment.

One queue message (its body, or the whole Lambda SQS or SNS record for the CLI and the handler) holds one of:
- an SES record: event publishing (`eventType`, from a configuration set) or an identity notification
  (`notificationType`: Bounce, Complaint, Delivery; no tags);
- that record inside an SNS notification (`Type` "Notification", the record as the `Message` string), as SNS raw
  message delivery (the record is the body), or inside an EventBridge event (`source` aws.ses, record in `detail`),
  that EventBridge event itself inside an SNS notification (an EventBridge rule with an SNS target);
- a Lambda SQS record (its `body` is one of the above) or a Lambda SNS record (what a function subscribed to the
  topic directly receives: {"EventSource": "aws:sns", "Sns": {...}}, the notification with SNS's Lambda spelling
  SigningCertUrl / UnsubscribeUrl instead of SigningCertURL / UnsubscribeURL; neither field is read);
- a control message: SNS SubscriptionConfirmation / UnsubscribeConfirmation, SES's AmazonSnsSubscriptionSucceeded
  notification, or the plain-text topic validation SES publishes when an event destination is created. These are
  reported in ParseResult.control, never as events and never as failures.

Refused with a reason that says what it is (FeedbackParseError; the ingest function dead-letters it): SES
receiving's `Received` notification and its Lambda event (an inbound email, not feedback about one we sent), an S3
event notification (the feedback is in the object it names: `sesflow events parse` or `replay` the object itself),
EventBridge's SES account events (Sending Status Enabled/Disabled, Advisor Recommendation ...), a whole Lambda event
(`Records`: parse each record) and anything else that is not one of the shapes above.

Sources: "Amazon SNS notification contents for Amazon SES" and "Examples of event data that Amazon SES publishes to
Amazon SNS" (SES Developer Guide), "Amazon Simple Email Service events" (EventBridge events reference), "Amazon SNS
message format" / Lambda's "Using Lambda with Amazon SNS" (the Lambda SNS record).

What a missing field means (SES adds fields at will: unknown ones are ignored):
- `mail` (or its `messageId`) missing: the message is unknown, so the event counts for no campaign and reconciles
  no send; its recipients' lifecycle still applies (a hard bounce in such a notification suppresses the address).
  Only kinds that list their own recipients (bounce, complaint, delivery, delivery delay) can do without it; for the
  others mail.destination is the only list of recipients, and mail.messageId their only identity, so they are
  refused. Without a message id the event's identity rests on the feedbackId (bounce, complaint) or its timestamp
  (also the only one for delivery and delivery delay); an event with neither is refused, since it could not be
  told from the next one. The same bounce once with its mail and once without has two identities: a hard bounce or
  complaint applied twice changes nothing (the address is already SUPPRESSED); a soft bounce would count twice.
- a test message (tag sesflow-test, or header X-Sesflow-Test): no campaign, variant, batch or call, so it counts
  toward no campaign; its recipients' lifecycle still applies, as for any message.
- mail.tags missing (identity notifications never have them): campaign and variant come from the original headers
  SendBatch writes (X-Sesflow-Campaign, X-Sesflow-Variant) when the identity includes headers; mail.headers
  missing too: no campaign. mail.commonHeaders is never read. mail.timestamp missing: the event's own timestamp,
  else none (ingestion then uses the time it arrives).
- bounce.bounceSubType missing: the class comes from bounceType alone. complaint.complaintFeedbackType missing (most
  mailbox providers send no feedback report): complaint_type None, and the complaint suppresses.
- feedbackId missing: the event's own timestamp tells two bounces or complaints of one message apart.

Bounces are hard or soft by SES's taxonomy: bounceType Permanent is hard (SES will not deliver to the address
again); Transient and Undetermined are soft (SES gave up for now; a later send may succeed). bounceType is matched
case-insensitively (SES API v2 spells the same types PERMANENT, TRANSIENT, UNDETERMINED) and kept in SES's event
spelling. The subtype never changes the class, so a subtype SES adds tomorrow (General, NoEmail, Suppressed,
OnAccountSuppressionList; MailboxFull, MessageTooLarge, ContentRejected, AttachmentRejected; Undetermined are
today's) falls back on bounceType; an unknown bounceType counts as soft, the reversible choice (quarantine, not
suppression).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from app.domain import addresses
from app.errors import FeedbackParseError

# SES eventType -> kind. Identity notifications use the first three names under notificationType.
KINDS = {
    "Send": "send",
    "Delivery": "delivery",
    "Bounce": "bounce",
    "Complaint": "complaint",
    "Reject": "reject",
    "Open": "open",
    "Click": "click",
    "Rendering Failure": "rendering_failure",
    "DeliveryDelay": "delivery_delay",
    "Subscription": "subscription",
}
NOTIFICATION_TYPES = ("Bounce", "Complaint", "Delivery")
# EventBridge detail-type -> the eventType of the SES record in `detail`.
DETAIL_TYPES = {
    "Email Sent": "Send",
    "Email Delivered": "Delivery",
    "Email Bounced": "Bounce",
    "Email Complaint Received": "Complaint",
    "Email Rejected": "Reject",
    "Email Opened": "Open",
    "Email Clicked": "Click",
    "Email Rendering Failed": "Rendering Failure",
    "Email Delivery Delayed": "DeliveryDelay",
    "Email Subscribed": "Subscription",
}
# The record's object for each kind; where it lists recipients, the list's field (else mail.destination is used).
_OBJECT = {
    "send": "send", "delivery": "delivery", "bounce": "bounce", "complaint": "complaint", "reject": "reject",
    "open": "open", "click": "click", "rendering_failure": "failure", "delivery_delay": "deliveryDelay",
    "subscription": "subscription",
}
_RECIPIENTS = {
    "bounce": "bouncedRecipients", "complaint": "complainedRecipients", "delivery": "recipients",
    "delivery_delay": "delayedRecipients",
}
HARD_BOUNCE_TYPES = {"Permanent": True, "Transient": False, "Undetermined": False}
_BOUNCE_TYPE_SPELLING = {name.lower(): name for name in HARD_BOUNCE_TYPES}
ENVELOPES = ("sns", "sns_raw", "eventbridge", "sqs")
SNS_CONTROL_TYPES = ("SubscriptionConfirmation", "UnsubscribeConfirmation")
SES_SUBSCRIPTION_SUCCEEDED = "AmazonSnsSubscriptionSucceeded"
# SES publishes this text (not JSON) to the topic when an SNS event destination is created or updated.
SES_TOPIC_VALIDATION = "Successfully validated SNS topic for Amazon SES event publishing."
TOPIC_VALIDATION_CONTROL = "SesTopicValidation"
# Not feedback about mail we sent: named in the refusal so an operator sees at once what reached the queue.
SES_RECEIVED = "Received"
_NOT_FEEDBACK = {
    "aws:ses": "an SES receiving event (an inbound email), not feedback about one sent",
    "aws:s3": "an S3 event notification: the feedback is in the object it names, not in the message",
}


CAMPAIGN_HEADER, VARIANT_HEADER = "X-Sesflow-Campaign", "X-Sesflow-Variant"  # written by SendBatch
# A test message (`sesflow campaign test`) carries the campaign it previews in this tag and this header instead: its
# events count for no campaign (no counter, no breaker, no reconciliation), whatever else the message carries.
TEST_TAG, TEST_HEADER = "sesflow-test", "X-Sesflow-Test"

@dataclass(frozen=True)
class FeedbackEvent:
    """What SES said happened to one recipient of one message."""

    event_id: str
    kind: str
    recipient: str
    bounce_type: str | None
    bounce_subtype: str | None
    hard: bool | None
    complaint_type: str | None
    message_id: str | None  # None: the record had no mail object (or no mail.messageId)
    campaign_id: str | None
    variant: str | None
    timestamp: str | None
    source: str  # "event_publishing" | "notification"
    envelope: str  # "sns" | "sns_raw" | "eventbridge" | "sqs"
    detail: dict[str, Any] = field(default_factory=dict, hash=False)
    batch: str | None = None  # the SendsTable batch the message went out in (tag "batch"), for reconciliation
    call: int | None = None  # the SES call's first position in that batch (tag "call"), for reconciliation
    sent_at: str | None = None  # mail.timestamp, when SES accepted the message (app.domain.engagement reads it)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ParseResult:
    """What one queue message holds: its events, or the control message it is (then no events)."""

    events: list[FeedbackEvent] = field(default_factory=list)
    control: str | None = None  # e.g. "SubscriptionConfirmation": recognised, nothing to apply


def event_id(message_id: str, kind: str, recipient: str, discriminator: str) -> str:
    """sha256 over message id, kind, recipient and discriminator (NUL-separated), hex, first 32 characters.

    The discriminator tells apart two events of one kind for one recipient of one message: the feedbackId for a
    bounce or complaint (falling back on its timestamp), the event's own timestamp for delivery, open, delivery
    delay and subscription, timestamp and link for a click, nothing for send, reject and rendering failure (SES
    sends one per message). Only SES's content goes in, never the envelope or the source, so the same event
    delivered twice, through SNS and EventBridge, or as both notification and event publishing, has one id. A
    record without mail.messageId hashes an empty message id (the parser then requires a non-empty discriminator).
    """
    return hashlib.sha256("\x00".join((message_id, kind, recipient, discriminator)).encode()).hexdigest()[:32]


def normalize_address(value: Any, path: str = "address") -> str:
    """`"Doe, Jane" <Jane.Doe@Example.com>` -> `jane.doe@example.com`: app.domain.addresses.normalize (the
    RecipientsTable key), refused as FeedbackParseError naming `path` when it is missing or not an address."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise FeedbackParseError(f"{path}: missing")
    if not isinstance(value, str):
        raise FeedbackParseError(f"{path}: not a string")
    try:
        return addresses.normalize(value)
    except addresses.InvalidAddress as error:
        # The value is not quoted (nor is it in the reason): this message is logged, and logs never carry addresses.
        raise FeedbackParseError(f"{path}: not an email address ({error})") from None


def parse_feedback(body: str | dict[str, Any], *, envelope_hint: str | None = None) -> ParseResult:
    """Turn one queue message into its normalized events (one per recipient) or a control message.

    envelope_hint names the envelope of a bare SES record, which does not say how it came (default "sns_raw",
    the only AWS route that puts one on the queue; "sqs" when something sends SES records to the queue itself).
    Envelopes that describe themselves (SNS notification, EventBridge event) ignore it.
    Raises FeedbackParseError naming what is wrong and where.
    """
    if envelope_hint is not None and envelope_hint not in ENVELOPES:
        raise ValueError(f"envelope_hint must be one of {ENVELOPES}, got {envelope_hint!r}")
    return _message(body, "", envelope_hint or "sns_raw")


def _decode(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise FeedbackParseError(f"{where}: not JSON (line {error.lineno} col {error.colno})") from None


def _message(body: Any, prefix: str, hint: str) -> ParseResult:
    where = prefix[:-1] or "body"
    if isinstance(body, str):
        if body.strip() == SES_TOPIC_VALIDATION:
            return ParseResult(control=TOPIC_VALIDATION_CONTROL)
        body = _decode(body, where)
    if not isinstance(body, dict):
        raise FeedbackParseError(f"{where}: not a JSON object")
    if "Records" in body:
        records = body["Records"] if isinstance(body["Records"], list) else []
        sources = {_source(r) for r in records}
        for source, what in _NOT_FEEDBACK.items():
            if source in sources:
                raise FeedbackParseError(f"{where}: {what}")
        raise FeedbackParseError(f"{where}: a Lambda event with Records, not one message: parse each record")
    source = "aws:s3" if body.get("Event") == "s3:TestEvent" else _source(body)  # S3's test of a new notification
    if source in _NOT_FEEDBACK:
        raise FeedbackParseError(f"{where}: {_NOT_FEEDBACK[source]}")
    if "body" in body and ("receiptHandle" in body or source == "aws:sqs"):  # a Lambda SQS record
        if not isinstance(body["body"], str):
            raise FeedbackParseError(f"{prefix}body: not a string")
        return _message(body["body"], f"{prefix}body.", hint)
    if "Sns" in body and source == "aws:sns":  # a Lambda SNS record: the topic invoked a function directly
        if not isinstance(body["Sns"], dict):
            raise FeedbackParseError(f"{prefix}Sns: not an object")
        if "Type" not in body["Sns"]:
            raise FeedbackParseError(f"{prefix}Sns.Type: missing")
        return _sns(body["Sns"], f"{prefix}Sns.")
    if "Type" in body:
        return _sns(body, prefix)
    if "detail-type" in body:
        return _eventbridge(body, prefix)
    if "eventType" in body or "notificationType" in body:
        return _record(body, prefix, hint)
    keys = ", ".join(sorted(body)[:8])
    raise FeedbackParseError(f"{where}: not an SES record, SNS message or EventBridge event (keys: {keys})")


def _sns(body: dict[str, Any], prefix: str) -> ParseResult:
    kind = body["Type"]
    if kind in SNS_CONTROL_TYPES:
        return ParseResult(control=kind)
    if kind != "Notification":
        raise FeedbackParseError(f"{prefix}Type: {kind!r} is not an SNS message type")
    message = body.get("Message")
    if not isinstance(message, str):
        raise FeedbackParseError(f"{prefix}Message: missing" if message is None else f"{prefix}Message: not a string")
    if message.strip() == SES_TOPIC_VALIDATION:
        return ParseResult(control=TOPIC_VALIDATION_CONTROL)
    record = _decode(message, f"{prefix}Message")
    if isinstance(record, dict) and "detail-type" in record and "eventType" not in record:
        return _eventbridge(record, f"{prefix}Message.")  # an EventBridge rule whose target is the topic
    return _record(record, f"{prefix}Message.", "sns")


def _eventbridge(body: dict[str, Any], prefix: str) -> ParseResult:
    if body.get("source") != "aws.ses":
        raise FeedbackParseError(f"{prefix}source: {body.get('source')!r} is not aws.ses")
    detail_type = body["detail-type"]
    event_type = DETAIL_TYPES.get(detail_type) if isinstance(detail_type, str) else None
    if event_type is None:
        raise FeedbackParseError(f"{prefix}detail-type: {detail_type!r} is not an SES email event (an SES account "
                                 "event or another service's: not feedback about an email)")
    detail = body.get("detail")
    if not isinstance(detail, dict):
        raise FeedbackParseError(f"{prefix}detail: missing" if detail is None else f"{prefix}detail: not an object")
    declared = detail.get("eventType", event_type)  # SES always sets it; infer it if a relay dropped it
    if declared != event_type:
        raise FeedbackParseError(f"{prefix}detail.eventType: {declared!r} does not match detail-type {detail_type!r}")
    return _record({**detail, "eventType": event_type}, f"{prefix}detail.", "eventbridge")


def _record(record: Any, prefix: str, envelope: str) -> ParseResult:
    """One SES record (event publishing or identity notification) -> one event per recipient."""
    if not isinstance(record, dict):
        raise FeedbackParseError(f"{prefix[:-1] or 'body'}: not a JSON object")
    if "eventType" in record:
        name, source = record["eventType"], "event_publishing"
        if not isinstance(name, str) or name not in KINDS:
            raise FeedbackParseError(f"{prefix}eventType {name!r} is not an SES event type")
    else:
        name, source = record.get("notificationType"), "notification"
        if name == SES_SUBSCRIPTION_SUCCEEDED:
            return ParseResult(control=name)
        if name == SES_RECEIVED:
            raise FeedbackParseError(f"{prefix}notificationType 'Received': {_NOT_FEEDBACK['aws:ses']}")
        if name not in NOTIFICATION_TYPES:
            raise FeedbackParseError(f"{prefix}notificationType {name!r} is not an SES feedback notification type")
    kind = KINDS[name]

    mail = record.get("mail")
    if mail is not None and not isinstance(mail, dict):
        raise FeedbackParseError(f"{prefix}mail: not an object")
    if mail is None and kind not in _RECIPIENTS:
        raise FeedbackParseError(f"{prefix}mail: missing")
    mail = mail or {}
    message_id = _text(mail.get("messageId"))
    if message_id is None and kind not in _RECIPIENTS:
        raise FeedbackParseError(f"{prefix}mail.messageId: missing")
    tags = mail.get("tags") if isinstance(mail.get("tags"), dict) else {}

    obj_name = _OBJECT[kind]
    obj = record.get(obj_name)
    if obj is None and kind in _RECIPIENTS:
        raise FeedbackParseError(f"{prefix}{obj_name}: missing")
    if obj is not None and not isinstance(obj, dict):
        raise FeedbackParseError(f"{prefix}{obj_name}: not an object")
    obj = obj or {}
    own_time = _text(obj.get("timestamp"))

    bounce_type = bounce_subtype = hard = complaint_type = None
    if kind == "bounce":
        bounce_type = _text(obj.get("bounceType"))
        if bounce_type is None:
            raise FeedbackParseError(f"{prefix}bounce.bounceType: missing")
        bounce_type = _BOUNCE_TYPE_SPELLING.get(bounce_type.lower(), bounce_type)
        bounce_subtype = _text(obj.get("bounceSubType"))
        hard = HARD_BOUNCE_TYPES.get(bounce_type, False)
    elif kind == "complaint":
        complaint_type = _text(obj.get("complaintFeedbackType"))

    if kind in ("bounce", "complaint"):
        discriminator = _text(obj.get("feedbackId")) or own_time or ""
    elif kind == "click":
        discriminator = f"{own_time or ''}\x00{_text(obj.get('link')) or ''}"
    elif kind in ("send", "reject", "rendering_failure"):
        discriminator = ""
    else:
        discriminator = own_time or ""
    if message_id is None and not discriminator:
        what = "feedbackId or timestamp" if kind in ("bounce", "complaint") else "timestamp"
        raise FeedbackParseError(f"{prefix}{obj_name}: no {what} and no mail.messageId: this event could not be "
                                 "told from another")

    test = _tag(tags, TEST_TAG) is not None or _header(mail, TEST_HEADER) is not None
    if test:
        tags = {}
    events: dict[str, FeedbackEvent] = {}
    for recipient, extra in _recipients(kind, obj, mail, prefix):
        if recipient not in events:  # the same address twice in one event is one event
            events[recipient] = FeedbackEvent(
                event_id=event_id(message_id or "", kind, recipient, discriminator),
                kind=kind,
                recipient=recipient,
                bounce_type=bounce_type,
                bounce_subtype=bounce_subtype,
                hard=hard,
                complaint_type=complaint_type,
                message_id=message_id,
                # Identity notifications carry no tags, only the original headers (when the identity includes
                # them): SendBatch writes the campaign and variant in both.
                campaign_id=None if test else _tag(tags, "campaign") or _header(mail, CAMPAIGN_HEADER),
                variant=None if test else _tag(tags, "variant") or _header(mail, VARIANT_HEADER),
                timestamp=own_time or _text(mail.get("timestamp")),
                source=source,
                envelope=envelope,
                detail=_detail(kind, obj, extra),
                batch=_tag(tags, "batch"),
                call=_position(_tag(tags, "call")),
                sent_at=_text(mail.get("timestamp")),
            )
    return ParseResult(events=list(events.values()))


def _source(record: Any) -> str | None:
    """The event source a Lambda record names (SQS and S3 spell it eventSource, SNS EventSource)."""
    if not isinstance(record, dict):
        return None
    source = record.get("eventSource", record.get("EventSource"))
    return source if isinstance(source, str) else None


def _position(tag: str | None) -> int | None:
    return int(tag) if tag is not None and tag.isdigit() else None


def _recipients(kind: str, obj: dict[str, Any], mail: dict[str, Any], prefix: str) -> list[tuple[str, dict]]:
    """(normalized address, the recipient's own object if SES gives one) for each recipient of the event."""
    if kind in _RECIPIENTS:
        path, items = f"{prefix}{_OBJECT[kind]}.{_RECIPIENTS[kind]}", obj.get(_RECIPIENTS[kind])
    else:
        path, items = f"{prefix}mail.destination", mail.get("destination")
    if items is None:
        raise FeedbackParseError(f"{path}: missing")
    if not isinstance(items, list) or not items:
        raise FeedbackParseError(f"{path}: must be a non-empty list")
    recipients = []
    for i, item in enumerate(items):
        if isinstance(item, dict):  # bouncedRecipients, complainedRecipients, delayedRecipients
            recipients.append((normalize_address(item.get("emailAddress"), f"{path}[{i}].emailAddress"), item))
        else:
            recipients.append((normalize_address(item, f"{path}[{i}]"), {}))
    return recipients


def _detail(kind: str, obj: dict[str, Any], recipient: dict[str, Any]) -> dict[str, Any]:
    """The few extras worth keeping; the IP address of opens and clicks is left out on purpose (personal data)."""
    if kind == "bounce":
        picked = {"feedbackId": obj.get("feedbackId"), "status": recipient.get("status"),
                  "diagnosticCode": recipient.get("diagnosticCode")}
    elif kind == "complaint":
        picked = {"feedbackId": obj.get("feedbackId"), "complaintSubType": obj.get("complaintSubType")}
    elif kind == "delivery":
        picked = {"smtpResponse": obj.get("smtpResponse")}
    elif kind == "reject":
        picked = {"reason": obj.get("reason")}
    elif kind == "open":
        picked = {"userAgent": obj.get("userAgent")}
    elif kind == "click":
        picked = {"link": obj.get("link"), "linkTags": obj.get("linkTags"), "userAgent": obj.get("userAgent")}
    elif kind == "rendering_failure":
        picked = {"templateName": obj.get("templateName"), "errorMessage": obj.get("errorMessage")}
    elif kind == "delivery_delay":
        picked = {"delayType": obj.get("delayType"), "expirationTime": obj.get("expirationTime"),
                  "status": recipient.get("status"), "diagnosticCode": recipient.get("diagnosticCode")}
    elif kind == "subscription":
        new = obj.get("newTopicPreferences") if isinstance(obj.get("newTopicPreferences"), dict) else {}
        topics = new.get("topicSubscriptionStatus") if isinstance(new.get("topicSubscriptionStatus"), list) else []
        picked = {
            "contactList": obj.get("contactList"),
            "source": obj.get("source"),
            "unsubscribeAll": new.get("unsubscribeAll"),
            "topics": {t["topicName"]: t.get("subscriptionStatus") for t in topics
                       if isinstance(t, dict) and isinstance(t.get("topicName"), str)} or None,
            "topicDefaultSubscriptionStatus": new.get("topicDefaultSubscriptionStatus"),
        }
    else:
        picked = {}
    return {key: value for key, value in picked.items() if value is not None}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _header(mail: dict[str, Any], name: str) -> str | None:
    """An original header of the message (mail.headers: [{name, value}]), by case-insensitive name."""
    headers = mail.get("headers")
    if not isinstance(headers, list):
        return None
    wanted = name.lower()
    for header in headers:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == wanted:
            return _text(header.get("value"))
    return None


def _tag(tags: dict[str, Any], name: str) -> str | None:
    """mail.tags maps a name to a list of values (event publishing); the first one counts."""
    values = tags.get(name)
    if isinstance(values, list) and values:
        return _text(values[0])
    return _text(values)
