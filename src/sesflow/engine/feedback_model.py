"""What SES reports back about each message the simulated SES accepts: the feedback a population of
recipients (and the SES mailbox simulator) produces, as event-publishing records.

Turn it on for a run with `ses.simulator().configure(feedback=FeedbackModel(...))` (after the stack is up:
`LocalStack.up` resets the simulator), or pass `ses_account={..., "feedback": FeedbackModel(...)}` to
LocalStack. Then every message accepted by SendEmail or SendBulkEmail with a configuration set publishes its
events, at once, to that set's event destinations (`ses.publish_event`: SNS or EventBridge, then the stack's
FeedbackQueue), each stamped with when it would have happened in virtual time: the send time plus a
delay (a delivery after seconds, a soft bounce after minutes, an open minutes to hours later). Messages
without a configuration set publish nothing, as on SES. With no model (the default) nothing is published.
`deferred=True` queues instead, for `flush()` to publish outside the sender's timed Lambda invocation.

Per recipient of a message, after the message's one Send event:

- an address on the account's suppression list: Bounce Permanent/OnAccountSuppressionList (SES does not try);
- a template that failed to render: one Rendering Failure for the message, nothing delivered;
- a mailbox simulator address (send-an-email-from-console.html, "Using the mailbox simulator"; labels
  such as bounce+label1@ behave as the address without the label):
    success@simulator.amazonses.com          Delivery
    bounce@simulator.amazonses.com           Bounce Permanent/General, SMTP 550 5.1.1 user unknown
                                             (never put on the suppression list)
    ooto@simulator.amazonses.com             Delivery; the out-of-office reply goes to the Return-Path
                                             mailbox, not to event publishing
    complaint@simulator.amazonses.com        Delivery, then Complaint (feedback type abuse)
    suppressionlist@simulator.amazonses.com  Bounce Permanent/Suppressed, as if on SES's global suppression list
  other addresses at that domain follow the population model;
- anyone else, the population model with the rates (`Rates`) that apply to the message's variant tag and the
  address's class: a hard bounce (Permanent/General) or a soft bounce (Transient/MailboxFull) with the
  probabilities `hard_bounce` and `soft_bounce` per message; otherwise a Delivery, then with probabilities
  per delivered message an Open (`open`), a Click (`click`; a click implies an open) and a Complaint
  (`complaint`). Machines open and click too, besides the person and whatever the person does: with
  probability `proxy` per delivered message a privacy proxy (Apple Mail Privacy Protection's) loads the open
  pixel minutes after delivery with its bare "Mozilla/5.0" user agent, and with probability `scanner` a mail
  security gateway opens the message and fetches every link in `links` within seconds of delivery, with its own
  user agent (SCANNER_USER_AGENT). app.domain.engagement counts both as machine opens and clicks, never as a
  person's. Recovering addresses (a share `recovering` of all addresses, chosen by hash, plus any
  listed in `recovering_addresses`) soft bounce on their first `recover_after` messages, then behave as
  everyone else: the "mailbox full, later fixed" recipient whom quarantine is for.

Deterministic: every draw comes from a hash of the seed, the message's key and the address, never from a
global random generator. The key is the message's campaign tag when it has one (a campaign sends a
recipient at most once, and moto's message ids are random, so this keeps runs with one seed alike), else the
message id. Only the count of messages a recovering address has had is state.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import logging
import math
import struct
import threading
from collections import Counter, deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any

from sesflow.engine.ses import (
    CLICK_USER_AGENT,
    SentEmail,
    SuppressedDestination,
    feedback_record,
    publish_event,
    rendering_failure_record,
    simulator,
)

logger = logging.getLogger(__name__)

SIMULATOR_DOMAIN = "simulator.amazonses.com"
SIMULATOR_ADDRESSES = ("success", "bounce", "ooto", "complaint", "suppressionlist")
_UNKNOWN_USER = {"action": "failed", "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}
_MAILBOX_FULL = {"action": "failed", "status": "4.2.2", "diagnosticCode": "smtp; 452 4.2.2 Mailbox full"}
_SUPPRESSED = {"action": "failed", "status": "5.1.1", "diagnosticCode": (
    "Amazon SES has suppressed sending to this address because it has a recent history of bouncing as an "
    "invalid address. For more information about how to remove an address from the suppression list, see the "
    "Amazon SES Developer Guide: http://docs.aws.amazon.com/ses/latest/DeveloperGuide/remove-from-suppressionlist"
    ".html ")}
_ON_ACCOUNT_LIST = {"action": "failed", "status": "5.1.1", "diagnosticCode": (
    "Amazon SES did not send the message to this address because it is on the suppression list for your account. "
    "For more information about removing addresses from the suppression list, see the Amazon SES Developer Guide "
    "at https://docs.aws.amazon.com/ses/latest/DeveloperGuide/sending-email-suppression-list.html")}
_DELIVERED = {"smtpResponse": "250 2.6.0 Message received", "reportingMTA": "a8-70.smtp-out.amazonses.com"}
_MTA = {"reportingMTA": "dsn; a8-70.smtp-out.amazonses.com"}
# Apple Mail Privacy Protection's proxy (app.domain.engagement.APPLE_PROXY_AGENT) and a link scanner that poses as
# a browser (caught by how soon it comes, not by its agent).
PROXY_USER_AGENT = "Mozilla/5.0"
SCANNER_USER_AGENT = CLICK_USER_AGENT


@dataclass(frozen=True)
class Rates:
    """Probabilities. hard_bounce and soft_bounce are per message sent; open, click and complaint per
    message delivered (click <= open: whoever clicks has opened); proxy and scanner per message delivered too:
    a machine's open (a privacy proxy), a machine's open and click of every link (a link scanner)."""

    hard_bounce: float = 0.005
    soft_bounce: float = 0.01
    open: float = 0.25
    click: float = 0.03
    complaint: float = 0.0005
    proxy: float = 0.0
    scanner: float = 0.0

    def __post_init__(self) -> None:
        for name, value in dataclasses.asdict(self).items():
            if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
                raise ValueError(f"Rates.{name}: {value!r} is not a probability (0 to 1)")
        if self.hard_bounce + self.soft_bounce > 1.0:
            raise ValueError(f"Rates: hard_bounce + soft_bounce = {self.hard_bounce + self.soft_bounce:g} > 1")
        if self.click > self.open:
            raise ValueError(f"Rates: click {self.click} > open {self.open} (a click implies an open)")


_RATE_NAMES = frozenset(f.name for f in dataclasses.fields(Rates))
Overrides = Mapping[str, float] | Rates


def _overrides(value: Overrides, where: str) -> dict[str, float]:
    if isinstance(value, Rates):
        return dataclasses.asdict(value)
    if unknown := set(value) - _RATE_NAMES:
        raise ValueError(f"{where}: unknown rate(s) {sorted(unknown)}; rates are {sorted(_RATE_NAMES)}")
    return dict(value)


@dataclass
class FeedbackModel:
    """The feedback population of the simulated SES (see the module docstring).

    rates:    the population's rates (a Rates, or a mapping of the ones that differ from Rates()'s).
    variants: per value of the message's `variant_tag`, rates that replace some (a mapping) or all (a Rates)
              of those; e.g. {"b": {"open": 0.35, "click": 0.06}, "c": {"complaint": 0.01}}.
    classes:  address classes, the first whose glob matches the lower-cased address applying, e.g.
              [("*@old-list.example.org", {"hard_bounce": 0.2})]. A variant's rates apply over its class's.
    """

    seed: int = 0
    rates: Rates | Mapping[str, float] = field(default_factory=Rates)
    variants: Mapping[str, Overrides] = field(default_factory=dict)
    classes: Sequence[tuple[str, Overrides]] = ()
    recovering: float = 0.0
    recovering_addresses: Collection[str] = ()
    recover_after: int = 1
    campaign_tag: str = "campaign"
    variant_tag: str = "variant"
    links: Sequence[str] = ("https://example.com/",)
    # SES adds a hard-bounced or complaining address to the account's suppression list when the account's
    # SuppressedReasons include BOUNCE or COMPLAINT (never a mailbox simulator address). Off by default.
    auto_suppress: bool = False
    # False: a message's events are published inside the SES call that accepted it (simplest: they are in the
    # queue when the call returns). True: the call only queues the message and flush() publishes, e.g. from
    # the engine's queue pump, so the publishing is not timed as part of the Lambda or Express execution
    # that sent (SES publishes asynchronously; it costs the sender nothing).
    deferred: bool = False

    published: Counter[str] = field(default_factory=Counter, init=False, repr=False, compare=False)
    failures: int = field(default=0, init=False, repr=False, compare=False)
    _attempts: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)
    _resolved: dict[tuple[int, str | None], Rates] = field(default_factory=dict, init=False, repr=False,
                                                           compare=False)
    _pending: deque[SentEmail] = field(default_factory=deque, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.rates, Rates):
            self.rates = Rates(**_overrides(self.rates, "rates"))
        if not 0.0 <= self.recovering <= 1.0:
            raise ValueError(f"recovering: {self.recovering!r} is not a share (0 to 1)")
        if self.recover_after < 1:
            raise ValueError(f"recover_after: {self.recover_after!r} must be at least 1")
        if not self.links:
            raise ValueError("links: at least one link to click")
        self._variants = {name: _overrides(value, f"variants[{name!r}]") for name, value in self.variants.items()}
        self._classes = [(pattern.lower(), _overrides(value, f"classes[{pattern!r}]"))
                         for pattern, value in self.classes]
        self._recovering_set = frozenset(a.lower() for a in self.recovering_addresses)
        for variant in (None, *self._variants):  # refuse bad combinations now, not at the first send
            for index in range(-1, len(self._classes)):
                try:
                    self.rates_for(variant, index)
                except ValueError as error:
                    where = " with ".join(part for part in (
                        f"variants.{variant}" if variant is not None else "",
                        f"classes[{index}]" if index >= 0 else "") if part) or "rates"
                    raise ValueError(f"{where}: {error}") from None

    # ------------------------------------------------------------------ rates and draws

    def rates_for(self, variant: str | None, class_index: int = -1) -> Rates:
        """The rates of a variant (None: no variant tag) for the address class at class_index (-1: none)."""
        key = (class_index, variant)
        found = self._resolved.get(key)
        if found is None:
            changes = dict(self._classes[class_index][1]) if class_index >= 0 else {}
            changes.update(self._variants.get(variant or "", {}) if variant is not None else {})
            found = self._resolved[key] = dataclasses.replace(self.rates, **changes)
        return found

    def address_class(self, address: str) -> int:
        """The index of the first class whose glob matches the (lower-case) address, or -1."""
        for index, (pattern, _) in enumerate(self._classes):
            if fnmatch.fnmatchcase(address, pattern):
                return index
        return -1

    def _draws(self, *parts: str) -> tuple[float, ...]:
        digest = hashlib.blake2b("\x1f".join((str(self.seed), *parts)).encode(), digest_size=32).digest()
        return tuple(n / 4294967296.0 for n in struct.unpack("<8I", digest))

    def is_recovering(self, address: str) -> bool:
        return address in self._recovering_set or (
            self.recovering > 0.0 and self._draws("\x00recovering", address)[0] < self.recovering)

    def _still_bouncing(self, address: str) -> bool:
        """A recovering address's next message: True while it has had fewer than recover_after."""
        with self._lock:
            attempts = self._attempts.get(address, 0)
            if attempts >= self.recover_after:
                return False
            self._attempts[address] = attempts + 1
            return True

    # ------------------------------------------------------------------ records

    def records(self, message_id: str, address: str, sent_at: datetime, *,
                tags: Mapping[str, str] | None = None, source: str = "news@example.com") -> list[dict]:
        """The event records SES publishes for one message to one recipient: Send, then its outcome."""
        sent = SentEmail(message_id=message_id, operation="SendEmail", account_id="", region="",
                         from_address=source, to=(address,), cc=(), bcc=(), configuration_set=None,
                         tags=dict(tags or {}), template_name=None, template_data=None, subject=None, headers={},
                         list_management=None, suppressed=(), rendering_failure=None, sent_at=sent_at)
        return self.records_for(sent)

    def records_for(self, sent: SentEmail) -> list[dict]:
        """The event records for one accepted message: one Send (every recipient in mail.destination), then
        each recipient's outcome, in that order (their timestamps say when each happened)."""
        destination = list(sent.recipients)
        tags = {name: [value] for name, value in sent.tags.items()}
        tags.setdefault("ses:operation", [sent.operation])
        source = _address(sent.from_address or "") or "news@example.com"
        tags.setdefault("ses:from-domain", [source.rpartition("@")[2]])
        context = _Context(sent.message_id, destination, tags, source, sent.sent_at)
        records = [context.record("send", _address(destination[0]) if destination else "", sent.sent_at)]
        if sent.rendering_failure:
            records.append(rendering_failure_record(sent))
            return records
        key = sent.tags.get(self.campaign_tag) or sent.message_id
        variant = sent.tags.get(self.variant_tag)
        suppressed = set(sent.suppressed)
        for raw in destination:
            address = _address(raw).lower()
            if raw in suppressed:
                records.append(context.record("hard_bounce", address, sent.sent_at + timedelta(seconds=0.05),
                                              subtype="OnAccountSuppressionList", recipient=_ON_ACCOUNT_LIST,
                                              detail={"reportingMTA": "dns; amazonses.com"}))
            else:
                records.extend(self._outcome(context, address, key, variant))
        return records

    def _outcome(self, context: _Context, address: str, key: str, variant: str | None) -> list[dict]:
        u = self._draws(key, address)
        local, _, domain = address.rpartition("@")
        if domain == SIMULATOR_DOMAIN and (mailbox := local.partition("+")[0]) in SIMULATOR_ADDRESSES:
            return self._simulated(context, address, mailbox, u)
        at = context.sent_at
        if self.is_recovering(address) and self._still_bouncing(address):
            return [context.record("soft_bounce", address, at + _log_uniform(u[1], 60, 3600),
                                   recipient=_MAILBOX_FULL, detail=_MTA)]
        rates = self.rates_for(variant, self.address_class(address))
        if u[0] < rates.hard_bounce:
            return [context.record("hard_bounce", address, at + _seconds(0.5 + 2.5 * u[1]),
                                   recipient=_UNKNOWN_USER, detail=_MTA)]
        if u[0] < rates.hard_bounce + rates.soft_bounce:
            return [context.record("soft_bounce", address, at + _log_uniform(u[1], 60, 3600),
                                   recipient=_MAILBOX_FULL, detail=_MTA)]
        delivered = at + _seconds(0.5 + 3.5 * u[1])
        out = [context.record("delivery", address, delivered, detail=_delivery(u[1]))]
        if u[2] < rates.open:
            opened = delivered + _log_uniform(u[3], 60, 12 * 3600)
            out.append(context.record("open", address, opened))
            if u[2] < rates.click:
                link = self.links[int(u[5] * len(self.links)) % len(self.links)]
                out.append(context.record("click", address, opened + _log_uniform(u[4], 5, 600),
                                          detail={"link": link, "linkTags": {}}))
        if rates.proxy or rates.scanner:
            out.extend(self._machines(context, address, key, delivered, rates))
        if u[6] < rates.complaint:
            out.append(context.record("complaint", address, delivered + _log_uniform(u[7], 300, 24 * 3600),
                                      detail={"userAgent": "Mozilla/5.0", "complaintSubType": None}))
        return out

    def _machines(self, context: _Context, address: str, key: str, delivered: datetime, rates: Rates) -> list[dict]:
        """What machines make of one delivered message (its own draws, so a run without them draws as before)."""
        m = self._draws("\x00machines", key, address)
        out = []
        if m[0] < rates.proxy:
            out.append(context.record("open", address, delivered + _log_uniform(m[1], 60, 1800),
                                      detail={"userAgent": PROXY_USER_AGENT, "ipAddress": "192.0.2.17"}))
        if m[2] < rates.scanner:
            at = delivered + _seconds(0.5 + 2.5 * m[3])
            agent = {"userAgent": SCANNER_USER_AGENT, "ipAddress": "198.51.100.7"}
            out.append(context.record("open", address, at, detail=agent))
            for i, link in enumerate(self.links):
                out.append(context.record("click", address, at + _seconds(0.2 * (i + 1)),
                                          detail={**agent, "link": link, "linkTags": {}}))
        return out

    @staticmethod
    def _simulated(context: _Context, address: str, mailbox: str, u: tuple[float, ...]) -> list[dict]:
        at = context.sent_at
        if mailbox == "bounce":
            return [context.record("hard_bounce", address, at + _seconds(0.5 + u[1]), recipient=_UNKNOWN_USER,
                                   detail=_MTA)]
        if mailbox == "suppressionlist":
            return [context.record("hard_bounce", address, at + _seconds(0.05), subtype="Suppressed",
                                   recipient=_SUPPRESSED, detail={"reportingMTA": "dns; amazonses.com"})]
        delivered = at + _seconds(0.5 + u[1])
        out = [context.record("delivery", address, delivered, detail=_delivery(u[1]))]
        if mailbox == "complaint":
            out.append(context.record("complaint", address, delivered + _seconds(1 + u[2]), detail={
                "userAgent": "Amazon SES Mailbox Simulator", "complaintSubType": None}))
        return out

    # ------------------------------------------------------------------ publishing

    def publish(self, sent: SentEmail) -> int:
        """Publish one accepted message's records to its configuration set's destinations, as SES does after
        accepting it (deferred: queue it for flush()); returns how many deliveries to destinations were made.
        A destination that fails is logged and counted in `failures` (SES never fails a send because
        publishing an event failed)."""
        if not sent.configuration_set:
            return 0
        if self.deferred:
            with self._lock:
                self._pending.append(sent)
            return 0
        return self._publish(sent)

    def flush(self) -> int:
        """Publish every message queued by a deferred model, oldest first; returns the deliveries made."""
        published = 0
        while True:
            with self._lock:
                if not self._pending:
                    return published
                sent = self._pending.popleft()
            published += self._publish(sent)

    @property
    def pending(self) -> int:
        """Messages a deferred model has queued and not yet published."""
        return len(self._pending)

    def _publish(self, sent: SentEmail) -> int:
        records = self.records_for(sent)
        published = 0
        for record in records:
            try:
                published += publish_event(sent.configuration_set, record, region=sent.region,
                                           account_id=sent.account_id, direct=True)
            except Exception:  # noqa: BLE001 - SES's send already succeeded; publishing is best effort
                with self._lock:
                    self.failures += 1
                logger.warning("feedback: could not publish a %s event of %s", record["eventType"], sent.message_id,
                               exc_info=True)
        with self._lock:
            self.published.update(r["eventType"] for r in records)
        if self.auto_suppress:
            self._suppress(sent, records)
        return published

    def _suppress(self, sent: SentEmail, records: Iterable[dict]) -> None:
        sim = simulator()
        with sim.lock:
            account = sim.account(sent.account_id, sent.region)
            for record in records:
                if record["eventType"] == "Bounce" and record["bounce"]["bounceType"] == "Permanent":
                    reason, entries = "BOUNCE", record["bounce"]["bouncedRecipients"]
                elif record["eventType"] == "Complaint":
                    reason, entries = "COMPLAINT", record["complaint"]["complainedRecipients"]
                else:
                    continue
                for entry in entries:
                    address = entry["emailAddress"].lower()
                    if (reason in account.suppressed_reasons and address not in account.suppressed
                            and not address.endswith("@" + SIMULATOR_DOMAIN)):
                        at = datetime.fromisoformat(record[reason.lower()]["timestamp"].replace("Z", "+00:00"))
                        account.suppressed[address] = SuppressedDestination(entry["emailAddress"], reason, at)


@dataclass(frozen=True)
class _Context:
    """What every record of one message shares."""

    message_id: str
    destination: list[str]
    tags: dict[str, list[str]]
    source: str
    sent_at: datetime

    def record(self, kind: str, address: str, at: datetime, **extra: Any) -> dict:
        return feedback_record(kind, address, at, self.message_id, tags=self.tags, destination=self.destination,
                               source=self.source, sent_at=self.sent_at, **extra)


def _address(raw: str) -> str:
    """The address in "Name <a@b>" or "a@b" (parseaddr is slow: most recipients have no display name)."""
    if "<" in raw or " " in raw or '"' in raw or "(" in raw:
        return parseaddr(raw)[1]
    return raw


def _seconds(value: float) -> timedelta:
    return timedelta(milliseconds=round(value * 1000))


def _log_uniform(u: float, low: float, high: float) -> timedelta:
    """From low to high seconds, as likely within any factor: most within minutes, a tail over hours."""
    return _seconds(low * math.exp(u * math.log(high / low)))


def _delivery(u: float) -> dict:
    return {**_DELIVERED, "processingTimeMillis": 500 + int(u * 3500)}


# ---------------------------------------------------------------------------------------------- a model's file

# What a feedback file may set besides the population's rates (Rates' fields, at the top level), and how.
_FILE_FIELDS = ("seed", "variants", "classes", "recovering", "recovering_addresses", "recover_after", "links",
                "auto_suppress", "campaign_tag", "variant_tag")


class FeedbackFileError(ValueError):
    """A feedback file that cannot be a FeedbackModel; the message names the file and the field."""


def model_from_file(path: Any, *, deferred: bool = False) -> FeedbackModel:
    """A FeedbackModel from a JSON object: the population's rates at the top level (hard_bounce, soft_bounce,
    open, click, complaint, proxy, scanner; one left out keeps Rates()' default), and optionally

        "seed": 7,                                        every draw is a hash of it (default 0)
        "variants": {"b": {"open": 0.35, "click": 0.06}}  per value of the message's variant tag
        "classes": [{"match": "*@old-list.example.org", "rates": {"hard_bounce": 0.2}}]   first match applies
        "recovering": 0.005, "recover_after": 1           a share of addresses soft bounces that many times first
        "recovering_addresses": ["a@example.org"], "links": ["https://example.com/"], "auto_suppress": false,
        "campaign_tag": "campaign", "variant_tag": "variant"

    Raises FeedbackFileError naming the file and the field (`variants.b.click`, `classes[0].match`)."""
    import json
    from pathlib import Path

    name = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise FeedbackFileError(f"{name}: cannot read it ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise FeedbackFileError(f"{name}: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise FeedbackFileError(f"{name}: not JSON ({error.msg} at line {error.lineno}, column {error.colno})") \
            from None
    if not isinstance(data, dict):
        raise FeedbackFileError(f"{name}: a feedback model is a JSON object of rates (e.g. {{\"complaint\": 0.001}})")

    def fail(where: str, problem: str) -> FeedbackFileError:
        return FeedbackFileError(f"{name}: {where}: {problem}")

    def rates(value: Any, where: str) -> dict[str, float]:
        if not isinstance(value, dict):
            raise fail(where, f"{json.dumps(value)} is not an object of rates ({', '.join(sorted(_RATE_NAMES))})")
        for key, rate in value.items():
            if key not in _RATE_NAMES:
                raise fail(f"{where}.{key}" if where else key, f"not a rate (rates: {', '.join(sorted(_RATE_NAMES))})")
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
                raise fail(f"{where}.{key}" if where else key, f"{json.dumps(rate)} is not a probability (0 to 1)")
        return dict(value)

    unknown = sorted(set(data) - _RATE_NAMES - set(_FILE_FIELDS))
    if unknown:
        raise fail(unknown[0], f"not a field of a feedback model (rates: {', '.join(sorted(_RATE_NAMES))}; "
                               f"others: {', '.join(_FILE_FIELDS)})")
    kwargs: dict[str, Any] = {"rates": rates({k: v for k, v in data.items() if k in _RATE_NAMES}, "")}
    if "seed" in data:
        if isinstance(data["seed"], bool) or not isinstance(data["seed"], int):
            raise fail("seed", f"{json.dumps(data['seed'])} is not an integer")
        kwargs["seed"] = data["seed"]
    if "variants" in data:
        if not isinstance(data["variants"], dict):
            raise fail("variants", 'an object of variant name -> rates, e.g. {"b": {"click": 0.05}}')
        kwargs["variants"] = {str(k): rates(v, f"variants.{k}") for k, v in data["variants"].items()}
    if "classes" in data:
        if not isinstance(data["classes"], list):
            raise fail("classes", 'a list of {"match": GLOB, "rates": {...}}')
        classes = []
        for i, entry in enumerate(data["classes"]):
            if not isinstance(entry, dict) or set(entry) != {"match", "rates"} or not isinstance(entry["match"], str):
                raise fail(f"classes[{i}]", '{"match": GLOB, "rates": {...}} (match: an address glob, e.g. '
                                            '"*@old-list.example.org")')
            classes.append((entry["match"], rates(entry["rates"], f"classes[{i}].rates")))
        kwargs["classes"] = classes
    if "recovering" in data:
        value = data["recovering"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise fail("recovering", f"{json.dumps(value)} is not a share (0 to 1)")
        kwargs["recovering"] = value
    if "recover_after" in data:
        value = data["recover_after"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise fail("recover_after", f"{json.dumps(value)} is not a whole number of at least 1")
        kwargs["recover_after"] = value
    for key in ("recovering_addresses", "links"):
        if key in data:
            value = data[key]
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value) or \
                    (key == "links" and not value):
                raise fail(key, "a list of strings" + (" (at least one)" if key == "links" else ""))
            kwargs[key] = tuple(value)
    for key in ("campaign_tag", "variant_tag"):
        if key in data:
            if not isinstance(data[key], str) or not data[key]:
                raise fail(key, "a message tag's name")
            kwargs[key] = data[key]
    if "auto_suppress" in data:
        if not isinstance(data["auto_suppress"], bool):
            raise fail("auto_suppress", f"{json.dumps(data['auto_suppress'])} is not true or false")
        kwargs["auto_suppress"] = data["auto_suppress"]
    try:
        return FeedbackModel(deferred=deferred, **kwargs)
    except ValueError as error:  # a combination: hard_bounce + soft_bounce > 1, click > open
        raise FeedbackFileError(f"{name}: {error}") from None
