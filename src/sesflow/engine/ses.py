"""The SES v2 account the embedded engine sends through: sending quota, suppression list, an outbox and
the configuration sets' event destinations, and `publish_event`, which plays SES's part in event publishing.

`patches/sesv2.py` answers SES v2 calls from this state. There is one simulator per process (moto's
backends are process-global too), with account state kept per (account, region). Templates, identities
and configuration sets live in moto and reset with it; this state does not: call `simulator().reset()`
when a run (or test) starts. Time is the active Runtime's virtual clock.
"""

from __future__ import annotations

import copy
import functools
import json
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from itertools import takewhile
from typing import Any

import boto3
import botocore.session
from moto.core.exceptions import JsonRESTError
from moto.core.models import botocore_stubber
from moto.events.models import events_backends
from moto.sns.models import sns_backends

from sesflow.engine import iam, runtime

# https://docs.aws.amazon.com/ses/latest/dg/quotas.html: a new (sandbox) account may send 200 emails
# per 24 hours at 1 email per second; quotas count recipients, not messages.
SANDBOX_MAX_24H_SEND = 200.0
SANDBOX_MAX_SEND_RATE = 1.0
SUPPRESSION_REASONS = ("BOUNCE", "COMPLAINT")

# Event publishing. A record's "eventType" (event-publishing-retrieving-sns-contents.html) -> the SES v2
# MatchingEventTypes value that selects it, and the detail-type SES gives it on EventBridge (events-ref-ses).
EVENT_TYPES = {
    "Send": ("SEND", "Email Sent"),
    "Reject": ("REJECT", "Email Rejected"),
    "Bounce": ("BOUNCE", "Email Bounced"),
    "Complaint": ("COMPLAINT", "Email Complaint Received"),
    "Delivery": ("DELIVERY", "Email Delivered"),
    "Open": ("OPEN", "Email Opened"),
    "Click": ("CLICK", "Email Clicked"),
    "Rendering Failure": ("RENDERING_FAILURE", "Email Rendering Failed"),
    "DeliveryDelay": ("DELIVERY_DELAY", "Email Delivery Delayed"),
    "Subscription": ("SUBSCRIPTION", "Email Subscribed"),
}
# The same types as CloudFormation (AWS::SES::ConfigurationSetEventDestination) and SES v1 spell them.
CFN_EVENT_TYPES = {
    "send": "SEND",
    "reject": "REJECT",
    "bounce": "BOUNCE",
    "complaint": "COMPLAINT",
    "delivery": "DELIVERY",
    "open": "OPEN",
    "click": "CLICK",
    "renderingFailure": "RENDERING_FAILURE",
    "deliveryDelay": "DELIVERY_DELAY",
    "subscription": "SUBSCRIPTION",
}
MAX_EVENT_DESTINATIONS = 10  # per configuration set (quotas.html)


@functools.cache
def _sesv2_model():
    return botocore.session.get_session().get_service_model("sesv2")


def aws_error(name: str, message: str) -> JsonRESTError:
    """An SES v2 error as AWS sends it; the HTTP status is the one botocore's model gives that error."""
    error = JsonRESTError(name, message)
    error.code = _sesv2_model().shape_for(name).metadata["error"]["httpStatusCode"]
    return error


@dataclass(frozen=True)
class SesConfig:
    """The account's sending quota as GetAccount reports it. enforce_rate=False accepts every send
    (usage is still counted) for runs that test something other than pacing."""

    max_send_rate: float = SANDBOX_MAX_SEND_RATE
    max_24h_send: float = SANDBOX_MAX_24H_SEND
    enforce_rate: bool = True
    production_access: bool = False
    # A feedback_model.FeedbackModel, or None (no events). When set, every accepted message sent with a
    # configuration set publishes the events the model gives it to that set's destinations, as SES does.
    feedback: Any = None
    # Served (`sesflow local up --serve`): the virtual clock stands still between an operator's commands, so a
    # once-a-second operation (TestRenderEmailTemplate) also counts the wall time since its last call.
    wall_time_passes: bool = False


@dataclass(frozen=True)
class SentEmail:
    """One accepted message: a SendEmail call, or one BulkEmailEntry of a SendBulkEmail call."""

    message_id: str
    operation: str  # "SendEmail" | "SendBulkEmail"
    account_id: str
    region: str
    from_address: str  # the From header: "address", or "Name <address>" with the name as SES got it
    to: tuple[str, ...]
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    configuration_set: str | None
    tags: dict[str, str]
    template_name: str | None
    template_data: dict | None  # the data it rendered with: the entry's own, or else the bulk call's default
    subject: str | None  # rendered; None if rendering failed
    headers: dict[str, str]
    list_management: dict | None
    suppressed: tuple[str, ...]  # recipients on the account's suppression list: accepted, not delivered
    rendering_failure: str | None  # AWS accepts the call and reports this later as a Rendering Failure event
    sent_at: datetime
    html: str | None = None  # the body's parts as sent (rendered); None if absent or rendering failed
    text: str | None = None
    reply_to: tuple[str, ...] = ()  # ReplyToAddresses, as given

    @property
    def recipients(self) -> tuple[str, ...]:
        return self.to + self.cc + self.bcc

    @property
    def delivered_to(self) -> tuple[str, ...]:
        if self.rendering_failure:
            return ()
        return tuple(r for r in self.recipients if r not in self.suppressed)


@dataclass(frozen=True)
class SuppressedDestination:
    email_address: str
    reason: str
    last_update_time: datetime


@dataclass
class SesAccount:
    """What SES keeps per account and region. Callers hold the simulator's lock."""

    suppressed: dict[str, SuppressedDestination] = field(default_factory=dict)  # by lower-cased address
    suppressed_reasons: list[str] = field(default_factory=lambda: list(SUPPRESSION_REASONS))
    # configuration set -> destination name -> the EventDestination as GetConfigurationSetEventDestinations
    # returns it (Name, Enabled, MatchingEventTypes, and one of SnsDestination, EventBridgeDestination, ...)
    event_destinations: dict[str, dict[str, dict]] = field(default_factory=dict)
    _sends: deque[tuple[datetime, int]] = field(default_factory=deque)  # (virtual time, recipients)
    last_test_render: datetime | None = None  # TestRenderEmailTemplate's last call (at most one a second)
    last_test_render_wall: float = 0.0  # ...and its time.monotonic(), for a served engine
    sending_enabled: bool = True  # PutAccountSendingAttributes; False: every send is SendingPausedException
    _sent_in_window: int = 0  # recipients in _sends, which holds the last 24 hours only

    def sent_last_24h(self, now: datetime) -> int:
        while self._sends and self._sends[0][0] <= now - timedelta(days=1):
            self._sent_in_window -= self._sends.popleft()[1]
        return self._sent_in_window

    def admit(self, recipients: int, now: datetime, config: SesConfig) -> None:
        """Count a send against the quota, or refuse it as AWS does: within a rolling 24 hours and within
        one second, the recipients already sent plus this call's may not exceed the quota."""
        day = self.sent_last_24h(now)
        second = sum(  # sends stamped later than now are another invocation's, ahead on its own time (VirtualClock)
            n for at, n in takewhile(lambda s: s[0] > now - timedelta(seconds=1), reversed(self._sends)) if at <= now
        )
        if config.enforce_rate:
            if day + recipients > config.max_24h_send:
                raise aws_error("LimitExceededException", "Daily message quota exceeded.")
            if second + recipients > config.max_send_rate:
                raise aws_error("TooManyRequestsException", "Maximum sending rate exceeded.")
        self._sends.append((now, recipients))
        self._sent_in_window += recipients


class SesSimulator:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Back to a fresh sandbox account: default quota, empty outbox, no suppressions, no usage."""
        with self.lock:
            self.config = SesConfig()
            self.outbox: list[SentEmail] = []
            self._accounts: dict[tuple[str, str], SesAccount] = {}

    def configure(self, **changes) -> SesConfig:
        """Change SesConfig fields by name, e.g. configure(max_send_rate=14, max_24h_send=50_000)."""
        with self.lock:
            self.config = replace(self.config, **changes)
            return self.config

    def account(self, account_id: str, region: str) -> SesAccount:
        with self.lock:
            return self._accounts.setdefault((account_id, region), SesAccount())


_simulator = SesSimulator()


def simulator() -> SesSimulator:
    return _simulator


_clients_lock = threading.Lock()
_clients: dict[tuple[str, str, bool], Any] = {}
_clients_session: Any = None


def _client(service: str, region: str) -> Any:
    """One boto3 client per service and region for the current default session (building one costs ~10 ms,
    as much as the publish itself); mock_aws replaces that session on entry, which empties the cache."""
    global _clients_session
    with _clients_lock:
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        if _clients_session is not boto3.DEFAULT_SESSION:
            _clients_session = boto3.DEFAULT_SESSION
            _clients.clear()
        key = (service, region, botocore_stubber.enabled)
        if key not in _clients:
            _clients[key] = boto3.client(service, region_name=region)
        return _clients[key]


def publish_event(
    configuration_set: str, record: dict, *, region: str | None = None, account_id: str | None = None,
    direct: bool = False,
) -> int:
    """Do what SES does with an event of a message sent with `configuration_set`: publish the record to
    every enabled event destination of that set whose MatchingEventTypes include the record's eventType.
    Returns how many destinations it was published to.

    `record` is the event-publishing record (eventType, mail, and bounce/complaint/... as SES writes
    them). As SES does, mail.tags gets "ses:configuration-set": [configuration_set] if it lacks it.
    SNS destinations get Publish(Message=the record as JSON), so subscribers see SNS's envelope around it.
    EventBridge destinations get PutEvents(Source "aws.ses", DetailType as SES names the event, Detail
    the record, Resources [the configuration set's ARN], Time the virtual clock) on the destination's bus.
    CloudWatch destinations are recorded but receive nothing (metrics are not evaluated locally).
    The destinations searched are those of every simulated account and region unless narrowed.

    direct=True hands the event to moto's SNS or EventBridge backend as SES does, service to service: no
    API call (none in the meter's api_calls), the same publish, delivery and event counts, and 3 to 4 times
    faster than through boto3 (which is what the feedback model uses while a campaign sends).
    """
    event_type = record.get("eventType")
    if event_type not in EVENT_TYPES:
        raise ValueError(f"eventType {event_type!r} is not one SES publishes: {sorted(EVENT_TYPES)}")
    matching, detail_type = EVENT_TYPES[event_type]
    record = copy.deepcopy(record)
    mail = record.setdefault("mail", {})
    mail.setdefault("tags", {}).setdefault("ses:configuration-set", [configuration_set])
    sim = simulator()
    with sim.lock:
        targets = [
            (acct, reg, copy.deepcopy(destination))
            for (acct, reg), account in sim._accounts.items()
            if (region is None or reg == region) and (account_id is None or acct == account_id)
            for destination in account.event_destinations.get(configuration_set, {}).values()
            if destination.get("Enabled") and matching in destination.get("MatchingEventTypes", [])
        ]
    body, published = json.dumps(record), 0
    with iam.acting_as(None):  # SES publishes as itself, not as the function whose send caused the event
        for acct, reg, destination in targets:
            if "SnsDestination" in destination:
                topic = destination["SnsDestination"]["TopicArn"]
                if direct:
                    _, _, _, topic_region, topic_account, _ = topic.split(":", 5)
                    sns_backends[topic_account][topic_region].publish(body, arn=topic)
                else:
                    _client("sns", reg).publish(TopicArn=topic, Message=body)
            elif "EventBridgeDestination" in destination:
                entry = {
                    "Source": "aws.ses",
                    "DetailType": detail_type,
                    "Detail": body,
                    "Resources": [f"arn:aws:ses:{reg}:{acct}:configuration-set/{configuration_set}"],
                    "EventBusName": destination["EventBridgeDestination"]["EventBusArn"],
                    "Time": runtime.current().clock.now(),
                }
                if direct:
                    entry["Time"] = entry["Time"].timestamp()  # as PutEvents hands it to the backend
                    entries = events_backends[acct][reg].put_events([entry])
                else:
                    entries = _client("events", reg).put_events(Entries=[entry])["Entries"]
                if any("ErrorCode" in e for e in entries):
                    raise RuntimeError(f"EventBridge refused the {event_type} event: {entries}")
            else:
                continue
            published += 1
    return published


# A person's mail client and browser, as in SES's example Open and Click records (event-publishing-retrieving-sns-
# examples.html): what feedback_record gives an open or click unless `detail` says otherwise (a scanner's agent).
OPEN_USER_AGENT = ("Mozilla/5.0 (iPhone; CPU iPhone OS 10_3_3 like Mac OS X) AppleWebKit/603.3.8 (KHTML, like Gecko) "
                   "Mobile/14G60")
CLICK_USER_AGENT = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                    "Chrome/60.0.3112.90 Safari/537.36")


def feedback_record(kind: str, address: str, at: datetime, message_id: str, *,
                    tags: dict[str, list[str]] | None = None, subtype: str | None = None,
                    complaint_type: str | None = "abuse", destination: list[str] | None = None,
                    source: str = "news@example.com", sent_at: datetime | None = None,
                    detail: dict | None = None, recipient: dict | None = None) -> dict:
    """An event-publishing record as SES writes it for one recipient of one message (what publish_event takes).

    kind: send, delivery, soft_bounce (Transient/`subtype`, default MailboxFull), hard_bounce (Permanent/`subtype`,
    default General), complaint (`complaint_type`; None for none), open, click, delivery_delay or
    rendering_failure. `at` is when the event happened; mail.timestamp is `sent_at` (default `at`), mail.destination
    `destination` (default [address]). `detail` adds to (or overrides) the event's own object (bounce, delivery,
    open, failure, ...), `recipient` to the address's entry in bouncedRecipients, complainedRecipients or
    delayedRecipients (action, status, diagnosticCode)."""
    stamp = _stamp(at)
    mail = {"timestamp": _stamp(sent_at) if sent_at is not None else stamp, "source": source,
            "messageId": message_id, "destination": list(destination) if destination is not None else [address],
            "tags": {name: list(v) if isinstance(v, list) else copy.deepcopy(v) for name, v in (tags or {}).items()}}
    feedback_id = f"{message_id}-{kind}"
    entry = {"emailAddress": address, **(recipient or {})}
    if kind in ("soft_bounce", "hard_bounce"):
        bounce_type = "Transient" if kind == "soft_bounce" else "Permanent"
        obj = {"bounceType": bounce_type, "bounceSubType": subtype or ("MailboxFull" if bounce_type == "Transient"
                                                                       else "General"),
               "bouncedRecipients": [entry], "timestamp": stamp, "feedbackId": feedback_id}
        event_type, name = "Bounce", "bounce"
    elif kind == "complaint":
        obj = {"complainedRecipients": [entry], "timestamp": stamp, "feedbackId": feedback_id}
        if complaint_type:
            obj["complaintFeedbackType"] = complaint_type
        event_type, name = "Complaint", "complaint"
    elif kind == "delivery":
        obj = {"timestamp": stamp, "recipients": [address], "processingTimeMillis": 120,
               "smtpResponse": "250 2.0.0 OK"}
        event_type, name = "Delivery", "delivery"
    elif kind == "send":
        obj, event_type, name = {}, "Send", "send"
    elif kind == "open":
        obj = {"timestamp": stamp, "userAgent": OPEN_USER_AGENT, "ipAddress": "192.0.2.1"}
        event_type, name = "Open", "open"
    elif kind == "click":
        obj = {"timestamp": stamp, "userAgent": CLICK_USER_AGENT, "ipAddress": "192.0.2.1",
               "link": "https://example.com/", "linkTags": {}}
        event_type, name = "Click", "click"
    elif kind == "delivery_delay":
        obj = {"timestamp": stamp, "delayType": "TransientCommunicationFailure", "delayedRecipients": [entry]}
        event_type, name = "DeliveryDelay", "deliveryDelay"
    elif kind == "rendering_failure":
        obj = {"errorMessage": "Attribute 'name' is not present in the rendering data.", "templateName": "template"}
        event_type, name = "Rendering Failure", "failure"
    else:
        raise ValueError(f"kind: {kind!r} is not one feedback_record makes")
    if detail:
        obj.update(detail)
    return {"eventType": event_type, "mail": mail, name: obj}


def rendering_failure_record(sent: SentEmail) -> dict:
    """The Rendering Failure record SES publishes for an accepted message that did not render (what
    publish_event takes): mail as for every event of the message, failure {errorMessage, templateName}
    (event-publishing-retrieving-sns-contents.html, "Rendering Failure object")."""
    tags = {name: [value] for name, value in sent.tags.items()}
    tags.setdefault("ses:operation", [sent.operation])
    source = parseaddr(sent.from_address or "")[1] or sent.from_address
    tags.setdefault("ses:from-domain", [source.rpartition("@")[2]])
    return feedback_record("rendering_failure", "", sent.sent_at, sent.message_id, tags=tags,
                           destination=list(sent.recipients), source=source,
                           detail={"errorMessage": sent.rendering_failure or "",
                                   "templateName": sent.template_name or ""})


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
