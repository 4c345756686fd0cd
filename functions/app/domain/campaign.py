"""Campaign definitions, variant assignment, test-then-winner cohorts and bandit rounds: pure functions, no AWS, no
environment.

The schema is docs/campaign-schema.md. parse_campaign validates a definition at the boundary and reports every
problem at once as "path: what is wrong"; Campaign.to_dict() is the normalised definition with every default
explicit, and parse_campaign(c.to_dict()) == c, so it can travel through the state machine and be parsed again
by each handler.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
import math
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Decimal
from email.utils import formataddr
from typing import Any

from app.domain import frequency
from app.domain import send_window as windows
from app.domain.audience import CONTACT_FIELDS
from app.domain.send_window import SendWindow
from app.domain.templates import UNSUBSCRIBE_URL
from app.errors import CampaignDefinitionError

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
_EMAIL = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")
_CONFIGURATION_SET = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # SES's own rule for configuration set names
# A list's name: what `contacts import --list NAME` creates and a campaign's audience names.
_LIST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
LIST_NAME_RULE = "1 to 128 letters, digits, _ . : -, starting with a letter or digit"
# A contact attribute's name: what filters, personalization and a contacts file's columns may name.
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,254}$")

HOLDOUT = "holdout"
MARKETING, TRANSACTIONAL = "marketing", "transactional"
STREAMS = (MARKETING, TRANSACTIONAL)
SPLIT, TEST_THEN_WINNER, BANDIT = "split", "test_then_winner", "bandit"
AB_MODES = (SPLIT, TEST_THEN_WINNER, BANDIT)
METRICS = ("open", "click")
SEND_CONTROL, STOP = "send_control", "stop"
NO_WINNER_POLICIES = (SEND_CONTROL, SPLIT, STOP)
TEST, REMAINDER = "test", "remainder"
ROUND_PREFIX = "round-"  # a bandit's phases: "round-1", "round-2", ...
MAX_ROUNDS = 20  # each round adds a wait and a Map Run to the parent's history (25,000 events)

# The definition rides in every batch's input (Step Functions: 256 KiB) and in the claim item (DynamoDB: 400 KB);
# bodies bigger than this belong in an SES template.
MAX_DEFINITION_BYTES = 100_000
# The recipient item's own fields: eligibility is sesflow's decision, never a campaign filter's.
RESERVED_FILTER_ATTRIBUTES = CONTACT_FIELDS
MAX_EVALUATION_SECONDS = 365 * 86_400  # a Standard execution lives at most a year
# The contact item's own bookkeeping: never template data (an episode's task token is a credential), and its
# status is sesflow's decision. The address is a contact's own, and templates may show it.
RESERVED_TEMPLATE_FIELDS = CONTACT_FIELDS - {"address"}
# Every field sesflow itself writes on a contact item or an erased marker (docs/contacts.md): a contacts file's
# column may name none of them, since an import writes only the team's own attributes.
RESERVED_CONTACT_FIELDS = CONTACT_FIELDS
MAX_TEMPLATE_FIELDS = 50
_TOP_LEVEL = ("id", "name", "sender", "from_name", "reply_to", "configuration_set", "stream", "audience",
              "variants", "holdout_percent", "ab", "thresholds", "rate_share", "start_at", "personalization",
              "frequency_cap", "send_window")
_IGNORED = ("$comment",)  # free text, for people; dropped by to_dict
# "Name <address>" (the name may be quoted); a bare address is the other form a sender or reply-to takes.
_MAILBOX = re.compile(r"^\s*(?P<name>[^<>]*?)\s*<(?P<address>[^<>]*)>\s*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # a line break in a header value would start another header
# RFC 5322 section 2.1.1: a header line is at most 998 characters; "From: " or "Reply-To: " precede the mailbox.
MAX_MAILBOX_CHARACTERS = 998 - len("Reply-To: ")
# What `campaign resume --definition` (and the workflow's ValidateCampaign) lets a resume change: the breaker's
# levels and the campaign's share of the send rate. Everything else decides who gets what, from whom, and the
# frozen audience was drawn with it. A path here covers every field under it.
RESUME_MAY_CHANGE = ("thresholds", "rate_share")


@dataclass(frozen=True)
class Variant:
    """Either an SES template (template) or inline content (subject with html and/or text), never both."""

    name: str
    weight: float
    template: str | None = None
    subject: str | None = None
    html: str | None = None
    text: str | None = None

    @property
    def inline(self) -> bool:
        return self.template is None

    def ses_content(self, template_data: dict[str, Any] | None = None) -> dict[str, Any]:
        """SES v2 BulkEmailContent / EmailContent for this variant, with the campaign-wide template data."""
        data = json.dumps(template_data or {}, separators=(",", ":"))
        if self.template is not None:
            return {"Template": {"TemplateName": self.template, "TemplateData": data}}
        parts = {"Subject": self.subject, "Html": self.html, "Text": self.text}
        return {"Template": {"TemplateContent": {k: v for k, v in parts.items() if v is not None},
                             "TemplateData": data}}

    def to_dict(self) -> dict[str, Any]:
        content = {"template": self.template, "subject": self.subject, "html": self.html, "text": self.text}
        return {"name": self.name, "weight": self.weight, **{k: v for k, v in content.items() if v is not None}}


@dataclass(frozen=True)
class Audience:
    """The contacts subscribed on any of `lists`, less the members of any of `exclude_lists`, narrowed by
    attribute filters (attribute name -> the values any one of which matches). One email per contact, however many
    of the lists it is on (app.domain.audience)."""

    lists: tuple[str, ...]
    attributes: tuple[tuple[str, tuple[str | int | float | bool, ...]], ...] = ()
    exclude_lists: tuple[str, ...] = ()

    def matches(self, item: dict[str, Any]) -> bool:
        """Whether a recipient item passes every filter (see matches_filters)."""
        return all(_attribute_matches(item.get(name), allowed) for name, allowed in self.attributes)

    def to_dict(self) -> dict[str, Any]:
        return {"lists": list(self.lists), "exclude_lists": list(self.exclude_lists),
                "filters": {"attributes": {k: list(v) for k, v in self.attributes}}}


@dataclass(frozen=True)
class AbTest:
    """How variants are chosen: split (every recipient gets its weighted variant now), test_then_winner, or bandit
    (the send in rounds, the weights moved toward the better variant between them: app.domain.bandit)."""

    mode: str = SPLIT
    test_percent: float = 20.0  # of the audience not held out
    evaluation_seconds: int = 14_400
    metric: str = "click"
    min_sample_per_variant: int = 500
    confidence: float = 0.95
    no_winner: str = SEND_CONTROL
    rounds: int = 5  # bandit: the audience not held out, cut into this many rounds of equal size
    round_seconds: int = 3_600  # bandit: the wait after each round but the last, for its feedback
    min_share: float = 0.05  # bandit: the least weight a variant keeps (not one over the complaint guard)

    def to_dict(self) -> dict[str, Any]:
        if self.mode == SPLIT:
            return {"mode": SPLIT}
        if self.mode == BANDIT:
            return {"mode": BANDIT, "metric": self.metric, "rounds": self.rounds,
                    "round_seconds": self.round_seconds, "min_share": self.min_share}
        return {"mode": self.mode, "test_percent": self.test_percent, "evaluation_seconds": self.evaluation_seconds,
                "metric": self.metric, "min_sample_per_variant": self.min_sample_per_variant,
                "confidence": self.confidence, "no_winner": self.no_winner}


@dataclass(frozen=True)
class Levels:
    """A rate's warn and halt levels, as fractions: warn < halt."""

    warn: float
    halt: float

    def to_dict(self) -> dict[str, float]:
        return {"warn": self.warn, "halt": self.halt}


@dataclass(frozen=True)
class Thresholds:
    """The breaker's levels. Defaults halt well before AWS reviews an account (5% bounces, 0.1% complaints)."""

    bounce: Levels = Levels(0.02, 0.04)
    complaint: Levels = Levels(0.0005, 0.0008)
    min_sends: int = 500  # no halt before this many sends
    confidence: float = 0.95  # of the one-sided lower bound that must clear the halt level

    def to_dict(self) -> dict[str, Any]:
        return {"bounce": self.bounce.to_dict(), "complaint": self.complaint.to_dict(),
                "min_sends": self.min_sends, "confidence": self.confidence}


@dataclass(frozen=True)
class Personalization:
    """The template data: `defaults` go to every message; each of `fields` is a recipients-table attribute that,
    where the recipient has it (not blank), replaces its default in that recipient's message. Every field has a
    default, so a recipient without the attribute still renders."""

    fields: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)

    def template_data(self, attributes: dict[str, Any]) -> dict[str, Any]:
        """A recipient's data: the defaults, with its own non-blank values of the fields over them."""
        own = {f: json_value(attributes[f]) for f in self.fields if not _blank(attributes.get(f))}
        return {**self.defaults, **own}

    def to_dict(self) -> dict[str, Any]:
        return {"fields": list(self.fields), "defaults": self.defaults}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


@dataclass(frozen=True)
class FrequencyCap:
    """A campaign's own frequency cap, over the account's (app.domain.frequency): `max` marketing emails per contact
    per rolling `days`, or `exempt` from the cap; always with the operator's `reason`."""

    reason: str
    max: int | None = None
    days: int | None = None
    exempt: bool = False

    def to_dict(self) -> dict[str, Any]:
        if self.exempt:
            return {"exempt": True, "reason": self.reason}
        return {"max": self.max, "days": self.days, "reason": self.reason}


@dataclass(frozen=True)
class Campaign:
    id: str
    name: str
    sender: str
    variants: tuple[Variant, ...]
    holdout_percent: float
    start_at: str | None
    configuration_set: str | None = None  # None: the stack's
    stream: str = MARKETING
    audience: Audience = Audience(("default",))
    ab: AbTest = AbTest()
    thresholds: Thresholds = Thresholds()
    rate_share: float = 1.0
    personalization: Personalization = Personalization()
    from_name: str | None = None  # the display name recipients see beside the sender's address
    reply_to: tuple[str, ...] = ()  # each "address" or "Name <address>", as given
    frequency_cap: FrequencyCap | None = None  # None: the account's (app.domain.frequency.effective)
    send_window: SendWindow | None = None  # None: send at any time

    @property
    def from_header(self) -> str:
        """SES's FromEmailAddress: the address, with the display name MIME-encoded when it is not ASCII."""
        return mailbox(self.from_name, self.sender)

    @property
    def reply_to_addresses(self) -> list[str]:
        """SES's ReplyToAddresses, each display name encoded as in from_header."""
        return [mailbox(*_split_mailbox(entry)) for entry in self.reply_to]

    def cap(self, policy: frequency.Policy) -> frequency.Cap:
        """The frequency cap that holds for this campaign under the account's `policy`."""
        return frequency.effective(self.stream, self.frequency_cap.to_dict() if self.frequency_cap else None,
                                   policy)

    @property
    def control(self) -> Variant:
        """The first variant: what the no-winner policy send_control sends."""
        return self.variants[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "sender": self.sender,
            "from_name": self.from_name,
            "reply_to": list(self.reply_to),
            "configuration_set": self.configuration_set,
            "stream": self.stream,
            "audience": self.audience.to_dict(),
            "variants": [v.to_dict() for v in self.variants],
            "holdout_percent": self.holdout_percent,
            "ab": self.ab.to_dict(),
            "thresholds": self.thresholds.to_dict(),
            "rate_share": self.rate_share,
            "start_at": self.start_at,
            "personalization": self.personalization.to_dict(),
            "frequency_cap": self.frequency_cap.to_dict() if self.frequency_cap else None,
            "send_window": self.send_window.to_dict() if self.send_window else None,
        }


class _Check:
    """Collects "path: what is wrong" problems while reading a definition, so all are reported at once."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def obj(self, path: str, value: Any, known: tuple[str, ...], required: bool = False) -> dict[str, Any]:
        """An object with only known keys (a typo must not pass silently); {} when absent or wrong."""
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            self.fail(path, "required, an object" if value is None else f"must be an object, got {_show(value)}")
            return {}
        prefix = f"{path}." if path != "campaign" else ""
        for key in value:
            if key in known or (path == "campaign" and key in _IGNORED):
                continue
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known) or 'none'}"
            self.fail(f"{prefix}{key}", f"unknown field ({hint})")
        return value

    def text(self, path: str, value: Any, pattern: re.Pattern[str] | None = None, required: bool = True,
             max_length: int = 10_000_000) -> str | None:
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(path, "required, a non-empty string" if required else f"must be a non-empty string, "
                            f"got {_show(value)}")
            return None
        if pattern and not pattern.match(value):
            self.fail(path, f"{value!r} is not valid")
        elif len(value) > max_length:
            self.fail(path, f"at most {max_length} characters, got {len(value)}")
        return value

    def number(self, path: str, value: Any, default: float, ok: Any, rule: str) -> float:
        if value is None:
            return default
        if not _finite(value) or not ok(value):
            self.fail(path, f"must be {rule}, got {_show(value)}")
            return default
        return float(value)

    def whole(self, path: str, value: Any, default: int, least: int, most: int | None = None) -> int:
        """A whole number (500.0 passes: JSON tools may write integers that way)."""
        if value is None:
            return default
        ok = _finite(value) and value == int(value) and least <= value and (most is None or value <= most)
        if not ok:
            span = f"from {least} to {most}" if most is not None else f"of at least {least}"
            self.fail(path, f"must be a whole number {span}, got {_show(value)}")
            return default
        return int(value)

    def choice(self, path: str, value: Any, default: str, options: tuple[str, ...]) -> str:
        if value is None:
            return default
        if value not in options:
            self.fail(path, f"must be one of {', '.join(repr(o) for o in options)}, got {_show(value)}")
            return default
        return value


def _finite(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float | Decimal) and math.isfinite(value)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_campaign(raw: Any, allowed_configuration_sets: Collection[str] | None = None) -> Campaign:
    """Validate a definition; raise CampaignDefinitionError listing every bad field by its path.

    allowed_configuration_sets: the configuration sets the stack may send through (its own and its
    AllowedConfigurationSets parameter's); a campaign naming another is refused. None: not checked (a definition
    already validated, parsed again by a later handler)."""
    if not isinstance(raw, dict):
        raise CampaignDefinitionError("campaign: must be a JSON object")
    check = _Check()
    check.obj("campaign", raw, _TOP_LEVEL)

    campaign_id = check.text("id", raw.get("id"), _ID) or ""
    name = check.text("name", raw.get("name"), required=False, max_length=256) or campaign_id
    sender, from_name = _sender(check, raw.get("sender"), raw.get("from_name"))
    reply_to = _reply_to(check, raw.get("reply_to"))
    configuration_set = check.text("configuration_set", raw.get("configuration_set"), _CONFIGURATION_SET,
                                   required=False)
    if (configuration_set is not None and _CONFIGURATION_SET.match(configuration_set)
            and allowed_configuration_sets is not None and configuration_set not in allowed_configuration_sets):
        allowed = ", ".join(repr(name) for name in sorted(allowed_configuration_sets)) or "none"
        check.fail("configuration_set", f"{configuration_set!r} is not a configuration set this stack may send "
                                        f"through (allowed: {allowed}); add it to the stack's "
                                        f"AllowedConfigurationSets parameter, or leave the field out")
    stream = check.choice("stream", raw.get("stream"), MARKETING, STREAMS)
    audience = _audience(check, raw.get("audience"))
    variants = _variants(check, raw.get("variants"))
    holdout = check.number("holdout_percent", raw.get("holdout_percent"), 0.0, lambda v: 0 <= v < 100,
                           "a number from 0 to below 100")
    ab = _ab(check, raw.get("ab"), len(variants))
    thresholds = _thresholds(check, raw.get("thresholds"))
    rate_share = check.number("rate_share", raw.get("rate_share"), 1.0, lambda v: 0 < v <= 1,
                              "a fraction above 0 and at most 1")
    personalization = _personalization(check, raw.get("personalization"))
    frequency_cap = _frequency_cap(check, raw.get("frequency_cap"), stream)
    send_window = _send_window(check, raw.get("send_window"))

    start_at = raw.get("start_at")
    if start_at is not None and not (isinstance(start_at, str) and _RFC3339_UTC.match(start_at)):
        # Exactly what a Wait state's Timestamp takes; refused here, before the campaign is claimed.
        check.fail("start_at", f"{start_at!r} is not a UTC time like 2026-12-01T09:00:00Z")

    if stream == TRANSACTIONAL:
        # Transactional mail (receipts, resets) is owed to every recipient, and owed now.
        if holdout:
            check.fail("holdout_percent", f"must be 0 for a transactional campaign (everyone is owed it), got "
                                          f"{_show(raw.get('holdout_percent'))}")
        if ab.mode == TEST_THEN_WINNER:
            check.fail("ab.mode", "test_then_winner holds the remainder back for the evaluation window, and "
                                  "a transactional campaign cannot wait (use split)")
        if send_window is not None:
            check.fail("send_window", "a transactional campaign cannot wait for a window: leave it out")
        if ab.mode == BANDIT:
            check.fail("ab.mode", "bandit holds later rounds back for their feedback, and a transactional "
                                  "campaign cannot wait (use split)")

    if check.problems:
        raise CampaignDefinitionError("; ".join(check.problems))
    campaign = Campaign(
        id=campaign_id, name=name, sender=sender, from_name=from_name, reply_to=reply_to, variants=variants,
        holdout_percent=holdout, start_at=start_at, configuration_set=configuration_set, stream=stream,
        audience=audience, ab=ab, thresholds=thresholds, rate_share=rate_share, personalization=personalization,
        frequency_cap=frequency_cap,
        send_window=send_window,
    )
    size = len(json.dumps(campaign.to_dict()).encode())
    if size > MAX_DEFINITION_BYTES:
        raise CampaignDefinitionError(f"campaign: {size} bytes as JSON, at most {MAX_DEFINITION_BYTES}: it travels "
                                      "in every batch's input, so put large bodies in an SES template")
    return campaign


def mailbox(name: str | None, address: str) -> str:
    """An address with its display name as SES takes it: a non-ASCII name as RFC 2047 encoded-words (UTF-8,
    base64, each at most 75 characters and holding whole characters, joined by spaces), an ASCII one quoted where
    RFC 5322 needs it."""
    if not name:
        return address
    if name.isascii():
        return formataddr((name, address))
    words, chunk = [], ""
    for character in name:
        if chunk and len((chunk + character).encode()) > _ENCODED_WORD_BYTES:
            words.append(chunk)
            chunk = ""
        chunk += character
    words.append(chunk)
    encoded = " ".join(f"=?utf-8?b?{base64.b64encode(w.encode()).decode()}?=" for w in words)
    return f"{encoded} <{address}>"


# An encoded-word is at most 75 characters (RFC 2047 section 2): "=?utf-8?b?" and "?=" leave 63, i.e. 60 of
# base64, i.e. 45 bytes of UTF-8.
_ENCODED_WORD_BYTES = 45


def _split_mailbox(text: str) -> tuple[str | None, str]:
    """(display name or None, address) of "Name <address>", '"Name" <address>' or "address"."""
    found = _MAILBOX.match(text)
    if not found:
        return None, text.strip()
    name = found["name"].strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = re.sub(r"\\(.)", r"\1", name[1:-1])
    return name or None, found["address"].strip()


def _address(check: _Check, path: str, text: str, address: str) -> bool:
    if not _EMAIL.match(address):
        check.fail(path, f"{text!r} is not valid: an address like news@example.com, or \"Name <news@example.com>\"")
        return False
    if not address.isascii():
        check.fail(path, f"{address!r}: an address must be 7-bit ASCII (SES does not support SMTPUTF8); write a "
                         "domain with other characters in Punycode (xn--...)")
        return False
    return True


def _display_name(check: _Check, path: str, name: str | None, address: str) -> bool:
    if name is None:
        return True
    if _CONTROL.search(name):
        check.fail(path, f"the display name {_show(name)} holds a control character or a line break")
        return False
    size = len(mailbox(name, address))
    if size > MAX_MAILBOX_CHARACTERS:
        check.fail(path, f"the display name is too long: {size} characters as SES gets it, encoded, at most "
                         f"{MAX_MAILBOX_CHARACTERS} (a header line is at most 998, RFC 5322)")
        return False
    return True


def _sender(check: _Check, raw: Any, raw_from_name: Any) -> tuple[str, str | None]:
    """(address, display name): `sender` is "address" or "Name <address>"; `from_name` gives the name apart."""
    text = check.text("sender", raw)
    from_name = check.text("from_name", raw_from_name, required=False)
    if text is None:
        return "", None
    name, address = _split_mailbox(text)
    if not _address(check, "sender", text, address):
        return "", None
    if name is not None and from_name is not None:
        check.fail("from_name", f"the sender already has a display name ({name!r}): give it in sender or in "
                                "from_name, not both")
        return address, None
    name = name if name is not None else from_name
    path = "from_name" if from_name is not None else "sender"
    return address, name if _display_name(check, path, name, address) else None


def _reply_to(check: _Check, raw: Any) -> tuple[str, ...]:
    """One reply-to address or a list of them, each "address" or "Name <address>" (SES ReplyToAddresses)."""
    if raw is None or raw == []:  # [] is what to_dict writes for none
        return ()
    if isinstance(raw, str):
        entries, paths = [raw], ["reply_to"]
    elif isinstance(raw, list):
        entries, paths = raw, [f"reply_to[{i}]" for i in range(len(raw))]
    else:
        check.fail("reply_to", f"must be an address or a list of addresses, got {_show(raw)}")
        return ()
    kept = []
    for path, entry in zip(paths, entries, strict=True):
        text = check.text(path, entry)
        if text is None:
            continue
        name, address = _split_mailbox(text)
        if _address(check, path, text, address) and _display_name(check, path, name, address):
            kept.append(text.strip())
    return tuple(kept)


def resume_changes(stored: dict[str, Any], new: Campaign) -> list[str]:
    """What a resume's definition changes that a resume may not (outside RESUME_MAY_CHANGE), each as "path: was
    X, now Y", against the definition the campaign was stored with (the workflow stores the normalised form).
    Both sides are normalised first, so a default written out or left out is no change."""
    try:
        before = parse_campaign(stored).to_dict()
    except CampaignDefinitionError:  # stored by another version of the schema: compare it as it is
        before = stored
    found: list[tuple[str, Any, Any]] = []
    _differences("", before, new.to_dict(), found)
    allowed = tuple(RESUME_MAY_CHANGE)
    return [f"{path}: was {_show(old)}, now {_show(value)}" for path, old, value in found
            if not any(path == a or path.startswith((f"{a}.", f"{a}[")) for a in allowed)]


def check_resume(stored: dict[str, Any], new: Campaign) -> None:
    """Refuse a resume whose definition changes more than RESUME_MAY_CHANGE (CampaignDefinitionError naming each
    changed field). The one rule both `sesflow campaign resume` and ValidateCampaignFunction apply."""
    changes = resume_changes(stored, new)
    if changes:
        raise CampaignDefinitionError(
            f"campaign {new.id}: a resume may change only {' and '.join(RESUME_MAY_CHANGE)}, and this definition "
            f"also changes {'; '.join(changes)} (a different send is a new campaign, with a new id)")


_MISSING = object()


def _differences(path: str, old: Any, new: Any, found: list[tuple[str, Any, Any]]) -> None:
    """Every leaf where `old` and `new` differ: objects by key, lists of objects of one length by index; any other
    list as a whole (audience.lists is one field)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            inner = f"{path}.{key}" if path else str(key)
            a, b = old.get(key, _MISSING), new.get(key, _MISSING)
            if a is _MISSING or b is _MISSING:
                found.append((inner, None if a is _MISSING else a, None if b is _MISSING else b))
            else:
                _differences(inner, a, b, found)
    elif (isinstance(old, list) and isinstance(new, list) and len(old) == len(new)
          and all(isinstance(v, dict) for v in old + new)):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _differences(f"{path}[{i}]", a, b, found)
    elif old != new:
        found.append((path, old, new))


def _audience(check: _Check, raw: Any) -> Audience:
    audience = check.obj("audience", raw, ("lists", "list_id", "exclude_lists", "filters"), required=True)
    lists = _list_names(check, "audience.lists", audience.get("lists"))
    if "list_id" in audience:  # one list, the older spelling of lists: [NAME]
        one = check.text("audience.list_id", audience.get("list_id"), _LIST_NAME)
        if one and "lists" in audience:
            check.fail("audience.list_id", "give lists or list_id, not both")
        elif one:
            lists = (one,)
    elif "lists" not in audience and isinstance(raw, dict):
        check.fail("audience.lists", "required: the lists to send to, e.g. [\"newsletter\"]")
    exclude = _list_names(check, "audience.exclude_lists", audience.get("exclude_lists"), required=False)
    for name in sorted(set(lists) & set(exclude)):
        check.fail("audience.exclude_lists", f"{name!r} is also in lists: a campaign cannot send to a list it excludes")
    filters = check.obj("audience.filters", audience.get("filters"), ("attributes",))
    raw_attributes = filters.get("attributes")
    if raw_attributes is None:
        return Audience(lists, exclude_lists=exclude)
    if not isinstance(raw_attributes, dict):
        check.fail("audience.filters.attributes", f"must be an object of attribute: value or [values], got "
                                                  f"{_show(raw_attributes)}")
        return Audience(lists, exclude_lists=exclude)
    attributes = []
    for key, value in raw_attributes.items():
        path = f"audience.filters.attributes.{key}"
        if not ATTRIBUTE_NAME.match(str(key)):
            check.fail(path, "not a valid attribute name")
            continue
        if key in RESERVED_FILTER_ATTRIBUTES:
            check.fail(path, "sesflow's own field (sesflow decides eligibility and the list): "
                             "filter on your own attributes")
            continue
        values = value if isinstance(value, list) else [value]
        if not values or not all(_filter_value(v) for v in values):
            check.fail(path, f"must be a string, number or boolean, or a non-empty list of them, got {_show(value)}")
            continue
        attributes.append((str(key), tuple(values)))
    return Audience(lists, tuple(attributes), exclude)


def valid_list_name(name: str) -> bool:
    """Whether `name` can name a list (LIST_NAME_RULE)."""
    return isinstance(name, str) and bool(_LIST_NAME.match(name))


def _list_names(check: _Check, path: str, value: Any, required: bool = True) -> tuple[str, ...]:
    """A non-empty list of distinct list names (the names an import gives lists)."""
    if value is None:
        return ()
    if not isinstance(value, list) or (required and not value):
        check.fail(path, f"must be a non-empty list of list names, got {_show(value)}")
        return ()
    names = []
    for i, name in enumerate(value):
        if not isinstance(name, str) or not _LIST_NAME.match(name):
            check.fail(f"{path}[{i}]", f"must be a list name ({LIST_NAME_RULE}), got {_show(name)}")
        elif name in names:
            check.fail(f"{path}[{i}]", f"{name!r} is given twice")
        else:
            names.append(name)
    return tuple(names)


def _filter_value(value: Any) -> bool:
    return isinstance(value, str | bool | int) or (isinstance(value, float) and math.isfinite(value))


def _variants(check: _Check, raw: Any) -> tuple[Variant, ...]:
    if not isinstance(raw, list) or not raw:
        check.fail("variants", "required, a non-empty list")
        return ()
    variants: list[Variant] = []
    for i, item in enumerate(raw):
        path = f"variants[{i}]"
        if not isinstance(item, dict):
            check.fail(path, "must be an object")
            continue
        check.obj(path, item, ("name", "weight", "template", "subject", "html", "text"))
        name = check.text(f"{path}.name", item.get("name"), _ID) or ""
        if name == HOLDOUT:
            check.fail(f"{path}.name", f"{HOLDOUT!r} is reserved for the holdout group")
        weight = check.number(f"{path}.weight", item.get("weight"), 1.0, lambda v: v > 0, "a number above 0")
        template, subject, html, text = _content(check, path, item)
        variants.append(Variant(name, weight, template, subject, html, text))
    names = [v.name for v in variants]
    for name in sorted({n for n in names if n and names.count(n) > 1}):
        check.fail("variants", f"name {name!r} is used more than once")
    return tuple(variants)


def _content(check: _Check, path: str, item: dict[str, Any]) -> tuple[str | None, ...]:
    """Exactly one form: an SES template name, or inline subject with html and/or text."""
    inline = [k for k in ("subject", "html", "text") if k in item]
    if "template" in item and inline:
        check.fail(path, f"give either template or inline subject/html/text, not both (has template and "
                         f"{', '.join(inline)})")
        return None, None, None, None
    if not inline:
        if "template" not in item:
            check.fail(f"{path}.template", "required: an SES template name, or inline subject with html and/or text")
            return None, None, None, None
        return check.text(f"{path}.template", item.get("template")), None, None, None
    subject = item.get("subject")
    if subject is None:
        check.fail(f"{path}.subject", "required for an inline variant, a non-empty string")
    else:
        subject = check.text(f"{path}.subject", subject, max_length=998)  # RFC 5322's line limit
    html = check.text(f"{path}.html", item.get("html"), required=False)
    text = check.text(f"{path}.text", item.get("text"), required=False)
    if "html" not in item and "text" not in item:
        check.fail(path, "an inline variant needs html, text or both")
    return None, subject, html, text


def _personalization(check: _Check, raw: Any) -> Personalization:
    personalization = check.obj("personalization", raw, ("fields", "defaults"))
    raw_fields, defaults = personalization.get("fields", []), personalization.get("defaults", {})
    if not isinstance(defaults, dict):
        check.fail("personalization.defaults", f"must be an object of template variable: value, got {_show(defaults)}")
        defaults = {}
    if not isinstance(raw_fields, list):
        check.fail("personalization.fields", f"must be a list of recipient attribute names, got {_show(raw_fields)}")
        raw_fields = []
    if len(raw_fields) > MAX_TEMPLATE_FIELDS:
        check.fail("personalization.fields", f"at most {MAX_TEMPLATE_FIELDS} attributes, got {len(raw_fields)}")
    if UNSUBSCRIBE_URL in defaults:
        check.fail(f"personalization.defaults.{UNSUBSCRIBE_URL}", "sesflow's: every message's data has its "
                   "recipient's one-click unsubscribe link under this name")
    fields: list[str] = []
    for i, name in enumerate(raw_fields):
        path = f"personalization.fields[{i}]"
        if not isinstance(name, str) or not ATTRIBUTE_NAME.match(name):
            check.fail(path, f"not a valid attribute name: {_show(name)}")
        elif name in RESERVED_TEMPLATE_FIELDS or name == UNSUBSCRIBE_URL:
            check.fail(path, f"{name!r} is sesflow's bookkeeping, not template data")
        elif name in fields:
            check.fail(path, f"{name!r} is listed more than once")
        elif _blank(defaults.get(name)):
            check.fail(path, f"{name!r} needs a non-blank value in personalization.defaults: a recipient without "
                             "it would otherwise fail to render (SES reports a Rendering Failure and sends nothing)")
        else:
            fields.append(name)
    return Personalization(tuple(fields), {str(k): json_value(v) for k, v in defaults.items()})


def json_value(value: Any) -> Any:
    """Template data as JSON has it (DynamoDB gives numbers as Decimal, and sets)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):  # a DynamoDB set: one type, no order
        return sorted(json_value(v) for v in value)
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


# The ab fields each mode takes besides `mode` (split takes none).
_AB_FIELDS = {
    SPLIT: (),
    TEST_THEN_WINNER: ("test_percent", "evaluation_seconds", "metric", "min_sample_per_variant", "confidence",
                       "no_winner"),
    BANDIT: ("metric", "rounds", "round_seconds", "min_share"),
}


def _ab(check: _Check, raw: Any, variant_count: int) -> AbTest:
    ab = check.obj("ab", raw, tuple(AbTest.__dataclass_fields__))
    mode = check.choice("ab.mode", ab.get("mode"), SPLIT, AB_MODES)
    for key in sorted(set(ab) - {"mode"}):
        if key in AbTest.__dataclass_fields__ and key not in _AB_FIELDS.get(mode, ()):
            modes = " or ".join(repr(m) for m, keys in _AB_FIELDS.items() if key in keys)
            check.fail(f"ab.{key}", f"only for mode {modes}")
    if mode == SPLIT:
        return AbTest()
    if variant_count < 2:
        check.fail("ab.mode", f"{mode} needs at least 2 variants, got {variant_count}")
    defaults = AbTest()
    if mode == BANDIT:
        return _bandit(check, ab, variant_count, defaults)
    return AbTest(
        mode=mode,
        test_percent=check.number("ab.test_percent", ab.get("test_percent"), defaults.test_percent,
                                  lambda v: 0 < v < 100, "a number above 0 and below 100"),
        evaluation_seconds=check.whole("ab.evaluation_seconds", ab.get("evaluation_seconds"),
                                       defaults.evaluation_seconds, 60, MAX_EVALUATION_SECONDS),
        metric=check.choice("ab.metric", ab.get("metric"), defaults.metric, METRICS),
        min_sample_per_variant=check.whole("ab.min_sample_per_variant", ab.get("min_sample_per_variant"),
                                           defaults.min_sample_per_variant, 1),
        confidence=_confidence(check, "ab.confidence", ab.get("confidence"), defaults.confidence),
        no_winner=check.choice("ab.no_winner", ab.get("no_winner"), defaults.no_winner, NO_WINNER_POLICIES),
    )


_WINDOW_FIELDS = ("days", "start", "end", "at", "time_zone", "zone_attribute")


def _send_window(check: _Check, raw: Any) -> SendWindow | None:
    """A window (days, start, end) or a time of day (days, at), in each recipient's zone (docs/campaign-schema.md)."""
    if raw is None:
        return None
    window = check.obj("send_window", raw, _WINDOW_FIELDS)
    if not window:
        if isinstance(raw, dict):
            check.fail("send_window", "give start and end (a window) or at (a time of day), and time_zone")
        return None
    zone_name = window.get("time_zone")
    if zone_name is None:
        check.fail("send_window.time_zone", "required: the campaign's IANA time zone name (e.g. \"Europe/Paris\"), "
                                            "for recipients without a valid zone of their own")
    elif windows.zone(zone_name) is None:
        close = difflib.get_close_matches(str(zone_name), windows.zone_names(), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "e.g. \"America/New_York\""
        check.fail("send_window.time_zone", f"{_show(zone_name)} is not an IANA time zone name ({hint})")
    days = _days(check, window.get("days"))
    times = {}
    for key in ("start", "end", "at"):
        if key in window:
            times[key] = window[key]
            if windows.clock_time(window[key]) is None:
                check.fail(f"send_window.{key}", f"must be a local time \"HH:MM\" from 00:00 to 23:59, got "
                                                 f"{_show(window[key])}")
    if "at" in times and ("start" in times or "end" in times):
        check.fail("send_window", "give either start and end (a window) or at (a time of day), not both")
    elif "at" not in times:
        for key in ("start", "end"):
            if key not in times:
                check.fail(f"send_window.{key}", "required for a window (or give at, a time of day)")
        start, end = windows.clock_time(times.get("start")), windows.clock_time(times.get("end"))
        if start is not None and end is not None and end <= start:
            check.fail("send_window.end", f"must be after start ({times['start']}), got {times['end']}: a window "
                                          "ends on the day it starts")
    attribute = window.get("zone_attribute", windows.ZONE_ATTRIBUTE)
    if not isinstance(attribute, str) or not ATTRIBUTE_NAME.match(attribute):
        check.fail("send_window.zone_attribute", f"not a valid attribute name: {_show(attribute)}")
    elif attribute in CONTACT_FIELDS:
        check.fail("send_window.zone_attribute", f"{attribute!r} is sesflow's bookkeeping, not a contact's zone")
    return SendWindow(time_zone=str(zone_name), days=days, start=times.get("start") if "at" not in times else None,
                      end=times.get("end") if "at" not in times else None, at=times.get("at"),
                      zone_attribute=str(attribute))


def _days(check: _Check, raw: Any) -> tuple[int, ...]:
    if raw is None:
        return tuple(range(7))
    names = ", ".join(windows.DAYS)
    if not isinstance(raw, list) or not raw:
        check.fail("send_window.days", f"must be a non-empty list of days ({names}), got {_show(raw)}")
        return tuple(range(7))
    days: list[int] = []
    for i, day in enumerate(raw):
        if day not in windows.DAYS:
            check.fail(f"send_window.days[{i}]", f"must be one of {names}, got {_show(day)}")
        elif windows.DAYS.index(day) in days:
            check.fail(f"send_window.days[{i}]", f"{day!r} is given twice")
        else:
            days.append(windows.DAYS.index(day))
    return tuple(sorted(days)) or tuple(range(7))
def _bandit(check: _Check, ab: dict[str, Any], variant_count: int, defaults: AbTest) -> AbTest:
    # Below an even share, or every variant's floor would fix the weights for good.
    count = max(variant_count, 2)
    most = 1 / count
    return AbTest(
        mode=BANDIT,
        metric=check.choice("ab.metric", ab.get("metric"), defaults.metric, METRICS),
        rounds=check.whole("ab.rounds", ab.get("rounds"), defaults.rounds, 2, MAX_ROUNDS),
        round_seconds=check.whole("ab.round_seconds", ab.get("round_seconds"), defaults.round_seconds, 60,
                                  MAX_EVALUATION_SECONDS),
        min_share=check.number("ab.min_share", ab.get("min_share"), defaults.min_share,
                               lambda v: 0 <= v < most,
                               f"a fraction from 0 to below 1 / variants ({most:.4g} for {count})"),
    )


def _confidence(check: _Check, path: str, value: Any, default: float) -> float:
    return check.number(path, value, default, lambda v: 0.5 <= v <= 0.999, "a number from 0.5 to 0.999")


def _frequency_cap(check: _Check, raw: Any, stream: str) -> FrequencyCap | None:
    """The campaign's override of the account's frequency cap: {"max", "days", "reason"} or {"exempt": true,
    "reason"}. A reason is required: an override is a decision someone must be able to read later."""
    path = "frequency_cap"
    if raw is None:
        return None
    item = check.obj(path, raw, ("max", "days", "exempt", "reason"))
    if not item:
        if isinstance(raw, dict):
            check.fail(path, "give max and days, or exempt: true, with a reason (leave it out for the account's cap)")
        return None
    reason = item.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        check.fail(f"{path}.reason", "required, a non-blank string saying why this campaign overrides the "
                                     "account's frequency cap (e.g. \"Black Friday week\")")
        reason = None
    elif len(reason) > frequency.MAX_REASON_CHARACTERS:
        check.fail(f"{path}.reason", f"at most {frequency.MAX_REASON_CHARACTERS} characters, got {len(reason)}")
    if stream == TRANSACTIONAL:
        check.fail(path, "a transactional campaign is exempt from the frequency cap already: leave it out")
    exempt = item.get("exempt")
    if exempt is not None:
        if exempt is not True:
            check.fail(f"{path}.exempt", f"must be true (leave frequency_cap out for the account's cap), got "
                                         f"{_show(exempt)}")
        for name in ("max", "days"):
            if name in item:
                check.fail(f"{path}.{name}", "not with exempt: an exempt campaign has no cap of its own")
        return FrequencyCap(reason.strip(), exempt=True) if reason and exempt is True else None
    for name in ("max", "days"):
        if item.get(name) is None:
            check.fail(f"{path}.{name}", "required (or exempt: true)")
    emails = check.whole(f"{path}.max", item.get("max"), 0, 1, frequency.MAX_EMAILS)
    days = check.whole(f"{path}.days", item.get("days"), 0, 1, frequency.MAX_DAYS)
    if not (reason and emails and days):
        return None
    return FrequencyCap(reason.strip(), max=emails, days=days)


def _thresholds(check: _Check, raw: Any) -> Thresholds:
    thresholds = check.obj("thresholds", raw, ("bounce", "complaint", "min_sends", "confidence"))
    defaults = Thresholds()
    return Thresholds(
        bounce=_levels(check, "thresholds.bounce", thresholds.get("bounce"), defaults.bounce),
        complaint=_levels(check, "thresholds.complaint", thresholds.get("complaint"), defaults.complaint),
        min_sends=check.whole("thresholds.min_sends", thresholds.get("min_sends"), defaults.min_sends, 1),
        confidence=_confidence(check, "thresholds.confidence", thresholds.get("confidence"), defaults.confidence),
    )


def _levels(check: _Check, path: str, raw: Any, default: Levels) -> Levels:
    levels = check.obj(path, raw, ("warn", "halt"))
    rule = "a fraction above 0 and below 1 (0.02 is 2%)"
    warn = check.number(f"{path}.warn", levels.get("warn"), default.warn, lambda v: 0 < v < 1, rule)
    halt = check.number(f"{path}.halt", levels.get("halt"), default.halt, lambda v: 0 < v < 1, rule)
    if warn >= halt:
        check.fail(path, f"warn ({warn:g}) must be below halt ({halt:g})")
    return Levels(warn, halt)


def _attribute_matches(value: Any, allowed: tuple[Any, ...]) -> bool:
    """A missing attribute never matches; a set or list attribute matches when any element does."""
    if value is None:
        return False
    candidates = value if isinstance(value, set | frozenset | list | tuple) else (value,)
    return any(_same(c, a) for c in candidates for a in allowed)


def _same(value: Any, allowed: Any) -> bool:
    # DynamoDB gives numbers as Decimal: compare numbers as numbers, and never True with 1.
    if isinstance(allowed, bool) or isinstance(value, bool):
        return isinstance(allowed, bool) and isinstance(value, bool) and value == allowed
    if isinstance(allowed, int | float | Decimal) and isinstance(value, int | float | Decimal):
        return Decimal(str(value)) == Decimal(str(allowed))
    return type(value) is type(allowed) and value == allowed


def matches_filters(campaign: Campaign, item: dict[str, Any]) -> bool:
    """Whether a recipient item (its top-level attributes, as DynamoDB returns them) passes audience.filters.

    Every filtered attribute must match (AND); an attribute matches when it equals any of the listed values (OR).
    """
    return campaign.audience.matches(item)


def _point(salt: str, campaign: Campaign, address: str) -> float:
    """Uniform in [0, 100), fixed by the salt, the campaign and the address."""
    digest = hashlib.sha256(f"{salt}{campaign.id}\x00{address}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def assign_variant(campaign: Campaign, address: str) -> str:
    """The same campaign and address always get the same variant (or HOLDOUT), in proportion to weights."""
    point = _point("", campaign, address)  # no salt: the assignment the first snapshots made, kept stable
    if point < campaign.holdout_percent:
        return HOLDOUT
    point = (point - campaign.holdout_percent) / (100 - campaign.holdout_percent)  # back to [0, 1)
    total = sum(v.weight for v in campaign.variants)
    edge = 0.0
    for variant in campaign.variants:
        edge += variant.weight / total
        if point < edge:
            return variant.name
    return campaign.variants[-1].name


def cohort(campaign: Campaign, address: str) -> str:
    """TEST or REMAINDER for a recipient not held out, stable, and independent of its variant.

    Test-then-winner sends the TEST cohort (ab.test_percent of the recipients not held out) its assigned variant
    now; the REMAINDER waits for the winner. With mode split there is no remainder: everyone is TEST.
    """
    if campaign.ab.mode == SPLIT:
        return TEST
    # A salt of its own, so the cohort draw and the variant draw are independent.
    return TEST if _point("cohort\x00", campaign, address) < campaign.ab.test_percent else REMAINDER


def bandit_round(campaign: Campaign, address: str) -> int:
    """A bandit's round (1 to ab.rounds) for a recipient not held out: stable, of equal sizes, and independent of
    its variant (a salt of its own)."""
    return min(int(_point("round\x00", campaign, address) / 100 * campaign.ab.rounds), campaign.ab.rounds - 1) + 1


def round_phase(number: int) -> str:
    return f"{ROUND_PREFIX}{number}"


@dataclass(frozen=True)
class Split:
    """Who of a campaign's eligible contacts goes where: what the snapshot freezes and the plan shows.

    assigned: (address, variant or HOLDOUT) of every eligible contact not on the account's SES suppression list;
    cohorts: phase name -> (address, variant) of those sent to ("all" in split mode; "test" and "remainder" in
    test_then_winner, where the remainder's variant is replaced by the winner's; "round-1" to "round-N" in bandit,
    where the variant of every round after the first is replaced by its reweighting's); ses_suppressed: how many
    eligible contacts the SES suppression list holds back."""

    assigned: tuple[tuple[str, str], ...]
    cohorts: dict[str, tuple[tuple[str, str], ...]]
    ses_suppressed: int

    @property
    def holdout(self) -> tuple[str, ...]:
        return tuple(a for a, v in self.assigned if v == HOLDOUT)

    @property
    def by_variant(self) -> dict[str, int]:
        """Eligible contacts per assigned variant, the holdout included (the snapshot's by_variant)."""
        counts: dict[str, int] = {}
        for _, variant in self.assigned:
            counts[variant] = counts.get(variant, 0) + 1
        return dict(sorted(counts.items()))

    @property
    def recipients(self) -> int:
        return sum(len(members) for members in self.cohorts.values())


def split_audience(campaign: Campaign, eligible: Collection[str], suppressed: Collection[str]) -> Split:
    """The eligible contacts (app.domain.audience.select's chosen) less the SES-suppressed ones, each with its
    variant or the holdout, and the sent ones in their phases. Order: `eligible`'s."""
    assigned = tuple((a, assign_variant(campaign, a)) for a in eligible if a not in suppressed)
    sendable = tuple((a, v) for a, v in assigned if v != HOLDOUT)
    if campaign.ab.mode == TEST_THEN_WINNER:
        cohorts = {TEST: tuple(m for m in sendable if cohort(campaign, m[0]) == TEST),
                   REMAINDER: tuple(m for m in sendable if cohort(campaign, m[0]) == REMAINDER)}
    elif campaign.ab.mode == BANDIT:  # round 1 by the campaign's weights; later rounds by their reweighting's
        rounds = [bandit_round(campaign, a) for a, _ in sendable]
        cohorts = {round_phase(n): tuple(m for m, r in zip(sendable, rounds, strict=True) if r == n)
                   for n in range(1, campaign.ab.rounds + 1)}
    else:
        cohorts = {"all": sendable}
    return Split(assigned, cohorts, len(eligible) - len(assigned))


def batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def interleave(runs: list[list[list[Any]]]) -> list[list[Any]]:
    """The batches of every variant in one send order that keeps each variant at its share all along.

    `runs` holds each variant's batches in its own order. A batch is placed at the middle of the span of its
    variant's recipients it covers, as a fraction of that variant's total: sorting by it alternates the variants in
    proportion to their sizes (their weights), so at any point of the send each variant has had its share to within
    one batch. A batch stays one variant, so this costs no SES call. Ties keep the variants' order."""
    keyed = []
    for rank, run in enumerate(runs):
        total, done = sum(map(len, run)), 0
        for batch in run:
            keyed.append(((done + len(batch) / 2) / total, rank, batch))
            done += len(batch)
    return [batch for *_, batch in sorted(keyed, key=lambda k: k[:2])]
