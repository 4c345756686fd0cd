"""The recipient lifecycle: the policy as data, the recipient's state, and pure transition functions. No AWS, no env.

Statuses: ACTIVE (sendable), QUARANTINED (resting after a soft bounce, not sendable, until a deadline), RECOVERY
(probation: sendable, the next outcome decides), SUPPRESSED (never sent to; only an operator's reinstate leaves it).

A strike is one soft bounce. Strikes are kept as their times, so the strike window is exact: a strike older than
strike_window_seconds no longer counts (it is dropped at the recipient's next change).

The policy document (lifecycle_policy.json beside this module is the shipped default; a deployment may supply its
own through `load_policy(document)`, giving every field; "$comment" is free text and ignored):

- hard_bounces: {bounceType: [bounceSubType, ...]}, the bounces that suppress at once.
  Default Permanent: General, NoEmail, Suppressed, OnAccountSuppressionList.
- soft_bounces: {bounceType: [bounceSubType, ...]}, the bounces that count a strike (quarantine).
  Default Transient: General, MailboxFull, MessageTooLarge, ContentRejected, AttachmentRejected; and Undetermined.
  A (type, subtype) pair may be in one list only.
- hard_bounce_types: [bounceType, ...]. A bounce whose pair is in neither list (a subtype SES adds tomorrow, or no
  subtype) is hard when its type is here, soft otherwise. Default ["Permanent"]: with the default lists this is the
  parser's own classification (feedback.HARD_BOUNCE_TYPES), so counters and lifecycle agree.
- complaint_types_not_suppressed: complaintFeedbackType values (compared case-insensitively) that do not suppress.
  Any other complaint suppresses, including one with no feedback type (most mailbox providers send none).
  Default ["not-spam"].
- quarantine_seconds: [seconds, ...]. The n-th strike rests quarantine_seconds[n-1]; strikes past the end of the
  list rest the last period. Positive, non-decreasing, at most strike_limit - 1 entries (the strike_limit-th strike
  suppresses, so it never rests). Default 1 day, then 3 days.
- strike_limit: the soft bounce that makes this many strikes within the window suppresses (reason: the strike
  limit) instead of quarantining. Default 3: the 1st strike rests 1 day, the 2nd 3 days, the 3rd suppresses.
- strike_window_seconds: how long a strike counts. Default 30 days.
- strike_decay: what a delivery during probation (RECOVERY -> ACTIVE) takes off: "one" (the oldest strike) or
  "all". Default "one": a delivery proves the mailbox works today, but an address that fails more often than it
  delivers must still reach the limit; with "all", bounce, delivery, bounce, ... would rest 1 day forever.
- probation_seconds: how long RECOVERY waits for an outcome (a delivery or a bounce). Default 14 days.
- probation_end: when probation ends with no outcome the recipient becomes ACTIVE, with its strikes as they are
  ("keep_strikes") or decayed as a delivery would ("decay"). Default "keep_strikes": no send is no evidence, so
  nothing is forgiven, and the strikes still age out of the window. ACTIVE rather than staying in RECOVERY because
  both are sendable and a soft bounce quarantines from either with the next period, so nothing is lost, and the
  episode (the workflow's wait for an outcome) always ends.

Every function returns a Decision (the new state, from and to status, a cause code and an audit reason) or None
when nothing changes. Each Decision increments the state's version by exactly one. `now` must carry a time zone.
Two transitions keep the status: a soft bounce while QUARANTINED (mail already in flight when the quarantine
began) counts a strike but keeps the current deadline, unless it reaches past the strike limit, which suppresses;
and an operator's reinstate of an ACTIVE recipient that holds strikes clears them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.domain.feedback import FeedbackEvent

ACTIVE, QUARANTINED, RECOVERY, SUPPRESSED = "ACTIVE", "QUARANTINED", "RECOVERY", "SUPPRESSED"
STATUSES = (ACTIVE, QUARANTINED, RECOVERY, SUPPRESSED)

# Decision.cause: a short code for queries and metrics; Decision.reason is the text for people.
HARD_BOUNCE, COMPLAINT, UNSUBSCRIBE = "hard_bounce", "complaint", "unsubscribe"
SOFT_BOUNCE, STRIKE_LIMIT, DELIVERY = "soft_bounce", "strike_limit", "delivery"
QUARANTINE_END, PROBATION_END = "quarantine_end", "probation_end"
OPERATOR_REINSTATE, OPERATOR_SUPPRESS = "operator_reinstate", "operator_suppress"
UNSUBSCRIBED_REASON = "unsubscribed"

DEFAULT_POLICY_PATH = Path(__file__).with_name("lifecycle_policy.json")
FIELDS = (
    "hard_bounces", "soft_bounces", "hard_bounce_types", "complaint_types_not_suppressed", "quarantine_seconds",
    "strike_limit", "strike_window_seconds", "strike_decay", "probation_seconds", "probation_end",
)
STRIKE_DECAYS = ("one", "all")
PROBATION_ENDS = ("keep_strikes", "decay")
# One quarantine episode (longest rest, then probation) must fit a Standard Step Functions execution.
MAX_EPISODE_SECONDS = 365 * 86_400


@dataclass(frozen=True)
class Policy:
    """A validated policy document; see the module docstring for each field."""

    hard_bounces: frozenset[tuple[str, str]]
    soft_bounces: frozenset[tuple[str, str]]
    hard_bounce_types: frozenset[str]
    complaint_types_not_suppressed: frozenset[str]  # lower case
    quarantine_seconds: tuple[int, ...]
    strike_limit: int
    strike_window_seconds: int
    strike_decay: str
    probation_seconds: int
    probation_end: str

    def is_hard(self, bounce_type: str | None, bounce_subtype: str | None) -> bool:
        pair = (bounce_type or "", bounce_subtype or "")
        if pair in self.hard_bounces:
            return True
        if pair in self.soft_bounces:
            return False
        return bounce_type in self.hard_bounce_types

    def suppresses_complaint(self, complaint_type: str | None) -> bool:
        return complaint_type is None or complaint_type.lower() not in self.complaint_types_not_suppressed

    def quarantine_period(self, strikes: int) -> timedelta:
        """How long the `strikes`-th strike rests."""
        if strikes < 1:
            raise ValueError(f"strikes: a quarantine follows a strike, got {strikes}")
        return timedelta(seconds=self.quarantine_seconds[min(strikes, len(self.quarantine_seconds)) - 1])

    def to_dict(self) -> dict[str, Any]:
        """The policy as a document; load_policy(policy.to_dict()) == policy."""

        def table(pairs: frozenset[tuple[str, str]]) -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for bounce_type, subtype in sorted(pairs):
                out.setdefault(bounce_type, []).append(subtype)
            return out

        return {
            "hard_bounces": table(self.hard_bounces),
            "soft_bounces": table(self.soft_bounces),
            "hard_bounce_types": sorted(self.hard_bounce_types),
            "complaint_types_not_suppressed": sorted(self.complaint_types_not_suppressed),
            "quarantine_seconds": list(self.quarantine_seconds),
            "strike_limit": self.strike_limit,
            "strike_window_seconds": self.strike_window_seconds,
            "strike_decay": self.strike_decay,
            "probation_seconds": self.probation_seconds,
            "probation_end": self.probation_end,
        }


def default_document() -> dict[str, Any]:
    """A fresh copy of the shipped policy document (to override a field: {**default_document(), field: value})."""
    return json.loads(DEFAULT_POLICY_PATH.read_text())


def load_policy(data: dict[str, Any] | None = None) -> Policy:
    """Validate a policy document (None: the shipped default). Raises ValueError naming every bad field."""
    if data is None:
        return _default_policy()
    return _parse(data)


@lru_cache(maxsize=4)
def policy_with_overrides(text: str | None) -> Policy:
    """The shipped policy with a deployment's overrides: a JSON object of some policy fields (empty: none)."""
    if not text or not text.strip():
        return _default_policy()
    try:
        overrides = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"lifecycle policy: the overrides are not JSON ({error})") from None
    if not isinstance(overrides, dict):
        raise ValueError("lifecycle policy: the overrides must be a JSON object of policy fields")
    return _parse({**default_document(), **overrides})


@lru_cache(maxsize=1)
def _default_policy() -> Policy:
    return _parse(default_document())


def _parse(data: Any) -> Policy:
    if not isinstance(data, dict):
        raise ValueError("lifecycle policy: must be a JSON object")
    problems: list[str] = []
    problems += [f"{key}: not a policy field" for key in sorted(map(str, set(data) - set(FIELDS) - {"$comment"}))]
    problems += [f"{key}: required" for key in FIELDS if key not in data]

    def integer(name: str, minimum: int) -> int:
        value = data.get(name)
        if name not in data:
            return minimum
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            problems.append(f"{name}: must be an integer of at least {minimum}, got {value!r}")
            return minimum
        return value

    def names(name: str) -> frozenset[str]:
        value = data.get(name)
        if name not in data:
            return frozenset()
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            problems.append(f"{name}: must be a list of non-empty strings, got {value!r}")
            return frozenset()
        return frozenset(value)

    def choice(name: str, allowed: tuple[str, ...]) -> str:
        value = data.get(name)
        if name in data and value not in allowed:
            problems.append(f"{name}: must be one of {', '.join(allowed)}, got {value!r}")
        return value if value in allowed else allowed[0]

    def bounces(name: str) -> frozenset[tuple[str, str]]:
        value = data.get(name)
        if name not in data:
            return frozenset()
        if not isinstance(value, dict):
            problems.append(f"{name}: must be an object of bounceType -> list of bounceSubType, got {value!r}")
            return frozenset()
        pairs: set[tuple[str, str]] = set()
        for bounce_type, subtypes in value.items():
            if not isinstance(bounce_type, str) or not bounce_type.strip():
                problems.append(f"{name}: a bounce type must be a non-empty string, got {bounce_type!r}")
            elif not isinstance(subtypes, list) or not all(isinstance(s, str) and s.strip() for s in subtypes):
                problems.append(f"{name}.{bounce_type}: must be a list of non-empty strings, got {subtypes!r}")
            else:
                pairs |= {(bounce_type, subtype) for subtype in subtypes}
        return frozenset(pairs)

    hard, soft = bounces("hard_bounces"), bounces("soft_bounces")
    for bounce_type, subtype in sorted(hard & soft):
        problems.append(f"soft_bounces.{bounce_type}: {subtype!r} is also in hard_bounces")
    known = len(problems)
    strike_limit = integer("strike_limit", 2)  # 1 would make every soft bounce hard
    limit_known = len(problems) == known and "strike_limit" in data
    periods: tuple[int, ...] = (1,)
    raw = data.get("quarantine_seconds")
    if "quarantine_seconds" in data:
        if (not isinstance(raw, list) or not raw
                or not all(isinstance(p, int) and not isinstance(p, bool) and p >= 1 for p in raw)):
            problems.append(f"quarantine_seconds: must be a non-empty list of whole seconds of at least 1, got {raw!r}")
        elif any(later < earlier for earlier, later in zip(raw, raw[1:], strict=False)):
            problems.append(f"quarantine_seconds: must not decrease (rests grow with strikes), got {raw!r}")
        elif limit_known and len(raw) > strike_limit - 1:
            problems.append(f"quarantine_seconds: {len(raw)} periods, but strike_limit {strike_limit} allows only "
                            f"{strike_limit - 1} quarantines")
        else:
            periods = tuple(raw)
    probation = integer("probation_seconds", 1)
    if max(periods) + probation > MAX_EPISODE_SECONDS:
        problems.append(f"probation_seconds: the longest quarantine plus probation ({max(periods) + probation}s) "
                        f"must fit one Step Functions execution ({MAX_EPISODE_SECONDS}s)")
    policy = Policy(
        hard_bounces=hard,
        soft_bounces=soft,
        hard_bounce_types=names("hard_bounce_types"),
        complaint_types_not_suppressed=frozenset(t.lower() for t in names("complaint_types_not_suppressed")),
        quarantine_seconds=periods,
        strike_limit=strike_limit,
        strike_window_seconds=integer("strike_window_seconds", 1),
        strike_decay=choice("strike_decay", STRIKE_DECAYS),
        probation_seconds=probation,
        probation_end=choice("probation_end", PROBATION_ENDS),
    )
    if problems:
        raise ValueError("lifecycle policy: " + "; ".join(problems))
    return policy


@dataclass(frozen=True)
class RecipientState:
    """What the lifecycle knows of one recipient (the recipients table item holds it, plus the address)."""

    status: str = ACTIVE
    strike_times: tuple[datetime, ...] = ()  # one per strike, oldest first
    quarantined_until: datetime | None = None  # set exactly when QUARANTINED
    status_since: datetime | None = None  # when the status last changed; None when unknown
    version: int = 0  # +1 per transition: the condition of the versioned write

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status: {self.status!r} is not one of {', '.join(STATUSES)}")
        if (self.status == QUARANTINED) != (self.quarantined_until is not None):
            raise ValueError(f"quarantined_until: set exactly when QUARANTINED (status {self.status})")
        for name, value in (("quarantined_until", self.quarantined_until), ("status_since", self.status_since)):
            if value is not None:
                _aware(value, name)
        for value in self.strike_times:
            _aware(value, "strike_times")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 0:
            raise ValueError(f"version: must be an integer of at least 0, got {self.version!r}")
        object.__setattr__(self, "strike_times", tuple(sorted(self.strike_times)))

    @property
    def strikes(self) -> int:
        return len(self.strike_times)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO-8601 strings."""
        return {
            "status": self.status,
            "strike_times": [t.isoformat() for t in self.strike_times],
            "quarantined_until": self.quarantined_until.isoformat() if self.quarantined_until else None,
            "status_since": self.status_since.isoformat() if self.status_since else None,
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecipientState:
        """The inverse of to_dict; a missing field takes its default (an item written before the field existed)."""

        def time(value: str | None) -> datetime | None:
            return datetime.fromisoformat(value) if value else None

        return cls(
            status=data.get("status") or ACTIVE,
            strike_times=tuple(datetime.fromisoformat(t) for t in data.get("strike_times") or ()),
            quarantined_until=time(data.get("quarantined_until")),
            status_since=time(data.get("status_since")),
            version=int(data.get("version") or 0),
        )


@dataclass(frozen=True)
class Decision:
    """One transition: the new state and what the audit record says."""

    state: RecipientState  # the new state; its version is the old one + 1
    from_status: str
    to_status: str
    cause: str  # one of the cause codes above
    reason: str  # for the audit record and the operator
    deadline: datetime | None = None  # QUARANTINED: when the quarantine ends (the new state's quarantined_until)

    @property
    def starts_quarantine(self) -> bool:
        """A new quarantine episode begins (QUARANTINED -> QUARANTINED keeps the running one)."""
        return self.to_status == QUARANTINED and self.from_status != QUARANTINED


def decide(policy: Policy, state: RecipientState, event: FeedbackEvent, now: datetime) -> Decision | None:
    """What one SES feedback event does to a recipient, or None when it changes nothing.

    Hard bounce, complaint (unless its feedback type is one the policy keeps) and unsubscribeAll suppress; a soft
    bounce counts a strike and quarantines, or suppresses past the strike limit; a delivery ends probation.
    Send, Reject, Rendering Failure, DeliveryDelay, Open, Click and kinds not known here change nothing.
    SUPPRESSED changes only by operator_reinstate. The bounce class comes from the policy, not event.hard.
    """
    _aware(now, "now")
    if state.status == SUPPRESSED:
        return None
    if event.kind == "bounce":
        label = f"{event.bounce_type or 'no type'}/{event.bounce_subtype or 'no subtype'}"
        if policy.is_hard(event.bounce_type, event.bounce_subtype):
            return _transition(state, now, SUPPRESSED, HARD_BOUNCE, f"hard bounce ({label})")
        return _strike(policy, state, now, f"soft bounce ({label})")
    if event.kind == "complaint":
        if not policy.suppresses_complaint(event.complaint_type):
            return None
        reason = f"complaint ({event.complaint_type or 'no feedback type'})"
        return _transition(state, now, SUPPRESSED, COMPLAINT, reason)
    if event.kind == "subscription":
        return unsubscribe(state, now) if event.detail.get("unsubscribeAll") is True else None
    if event.kind == "delivery" and state.status == RECOVERY:
        live = _live(policy, state.strike_times, now)
        kept = _decay(policy, live)
        return _transition(state, now, ACTIVE, DELIVERY,
                           f"delivered during probation: strikes {len(live)} -> {len(kept)}", strike_times=kept)
    return None


def unsubscribe(state: RecipientState, now: datetime) -> Decision | None:
    """An unsubscribe (SES subscription management's unsubscribeAll, or our one-click endpoint) suppresses."""
    _aware(now, "now")
    if state.status == SUPPRESSED:
        return None
    return _transition(state, now, SUPPRESSED, UNSUBSCRIBE, UNSUBSCRIBED_REASON)


def end_quarantine(state: RecipientState, now: datetime) -> Decision | None:
    """QUARANTINED -> RECOVERY once the deadline has passed; otherwise None."""
    _aware(now, "now")
    if state.status != QUARANTINED or state.quarantined_until is None or now < state.quarantined_until:
        return None
    return _transition(state, now, RECOVERY, QUARANTINE_END,
                       f"quarantine ended {state.quarantined_until.isoformat()}: on probation")


def end_probation(policy: Policy, state: RecipientState, now: datetime) -> Decision | None:
    """RECOVERY with no outcome for probation_seconds -> ACTIVE per policy.probation_end; otherwise None.

    When status_since is unknown the caller's word (its wait timed out) is taken that the window has passed.
    """
    _aware(now, "now")
    if state.status != RECOVERY:
        return None
    window = timedelta(seconds=policy.probation_seconds)
    if state.status_since is not None and now < state.status_since + window:
        return None
    live = _live(policy, state.strike_times, now)
    kept = live if policy.probation_end == "keep_strikes" else _decay(policy, live)
    what = f"{len(kept)} strikes kept" if kept == live else f"strikes {len(live)} -> {len(kept)}"
    return _transition(state, now, ACTIVE, PROBATION_END,
                       f"probation ended with no delivery or bounce within {_span(window)}: {what}",
                       strike_times=kept)


def operator_reinstate(state: RecipientState, reason: str, now: datetime) -> Decision | None:
    """An operator makes any recipient ACTIVE with no strikes (the only way out of SUPPRESSED).

    None when it is ACTIVE with no strikes already. Raises ValueError when the reason is empty.
    """
    _aware(now, "now")
    text = _operator_reason(reason)
    if state.status == ACTIVE and not state.strike_times:
        return None
    return _transition(state, now, ACTIVE, OPERATOR_REINSTATE, f"operator reinstated: {text}", strike_times=())


def operator_suppress(state: RecipientState, reason: str, now: datetime) -> Decision | None:
    """An operator suppresses any recipient (None when already SUPPRESSED). Raises ValueError on an empty reason."""
    _aware(now, "now")
    text = _operator_reason(reason)
    if state.status == SUPPRESSED:
        return None
    return _transition(state, now, SUPPRESSED, OPERATOR_SUPPRESS, f"operator suppressed: {text}")


def _strike(policy: Policy, state: RecipientState, now: datetime, label: str) -> Decision:
    times = (*_live(policy, state.strike_times, now), now)
    count, limit = len(times), policy.strike_limit
    if count >= limit:
        window = _span(timedelta(seconds=policy.strike_window_seconds))
        return _transition(state, now, SUPPRESSED, STRIKE_LIMIT,
                           f"{label}: strike {count} within {window} reaches the strike limit of {limit}",
                           strike_times=times)
    if state.status == QUARANTINED:
        return _transition(state, now, QUARANTINED, SOFT_BOUNCE,
                           f"{label} while quarantined: strike {count} of {limit}, deadline unchanged",
                           strike_times=times, quarantined_until=state.quarantined_until)
    period = policy.quarantine_period(count)
    return _transition(state, now, QUARANTINED, SOFT_BOUNCE,
                       f"{label}: strike {count} of {limit}, quarantined for {_span(period)}",
                       strike_times=times, quarantined_until=now + period)


def _transition(state: RecipientState, now: datetime, to: str, cause: str, reason: str, *,
                strike_times: tuple[datetime, ...] | None = None,
                quarantined_until: datetime | None = None) -> Decision:
    new = RecipientState(
        status=to,
        strike_times=state.strike_times if strike_times is None else strike_times,
        quarantined_until=quarantined_until if to == QUARANTINED else None,
        status_since=now if to != state.status else state.status_since,
        version=state.version + 1,
    )
    return Decision(new, state.status, to, cause, reason, new.quarantined_until)


def _live(policy: Policy, times: tuple[datetime, ...], now: datetime) -> tuple[datetime, ...]:
    """The strikes still inside the window."""
    since = now - timedelta(seconds=policy.strike_window_seconds)
    return tuple(t for t in times if t > since)


def _decay(policy: Policy, times: tuple[datetime, ...]) -> tuple[datetime, ...]:
    return times[1:] if policy.strike_decay == "one" else ()


def _operator_reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("reason: an operator's change needs a reason for the audit record")
    return reason.strip()


def _aware(value: Any, name: str) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}: must be a datetime with a time zone, got {value!r}")


def _span(span: timedelta) -> str:
    """86400 s -> "1 day", 259200 s -> "3 days", 5400 s -> "90 minutes"."""
    seconds = int(span.total_seconds())
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
