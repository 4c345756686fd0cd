"""The campaign rules `sesflow campaign plan` applies before anything starts, pure: the start time, filters that can
match nothing, the contacts whose data the templates are rendered with, and how long and how much the send takes at
the account's quota. No AWS, no clock: times and quotas are passed in.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.domain import send_window
from app.domain import token_bucket as tb
from app.domain.campaign import BANDIT, HOLDOUT, TEST_THEN_WINNER, Audience, Campaign

SAMPLE_PER_VARIANT = 20


def start_problem(start_at: str | None, now: datetime, *, now_given: bool = False) -> str | None:
    """The one rule for a campaign's start time: a start_at already past is refused (the workflow's Wait would go on
    at once, which is rarely what a scheduled campaign meant) unless the operator says so with --now; --now with a
    start_at still ahead is refused too (the campaign would wait for it all the same). None: fine."""
    if start_at is None:
        return None
    at = datetime.fromisoformat(start_at.replace("Z", "+00:00"))
    if at >= now:
        return (f"start_at {start_at} is in the future: the campaign waits for it; --now is for a start_at already "
                f"past (to start now, leave start_at out)") if now_given else None
    if now_given:
        return None
    return (f"start_at {start_at} is in the past (it is now {now.strftime('%Y-%m-%dT%H:%M:%SZ')}): the campaign would "
            f"start at once; give --now to start it now anyway, or set a later start_at")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "text"
    return "other"


def _elements(value: Any) -> Iterable[Any]:
    return value if isinstance(value, set | frozenset | list | tuple) else (value,)


def filter_type_warnings(audience: Audience, stored: Iterable[Mapping[str, Any]]) -> list[str]:
    """A warning for each attribute filter whose values are of a kind (number, text, boolean) that none of the
    members' stored values of that attribute is: it matches nobody. The common case is a number in the filter
    (`"age": 30`) against a CSV import, which stores every value as text ("30"). `stored`: the members' attributes."""
    found: dict[str, list[Any]] = {name: [] for name, _ in audience.attributes}
    for attributes in stored:
        for name in found:
            value = attributes.get(name)
            if value is not None:
                found[name].extend(_elements(value))
    warnings = []
    for name, allowed in audience.attributes:
        values = found[name]
        kinds = {_kind(v) for v in values}
        wanted = {_kind(a) for a in allowed}
        if values and not kinds & wanted:
            example = next(v for v in values if _kind(v) in kinds)
            shown = ", ".join(repr(a) for a in allowed[:3]) + (", ..." if len(allowed) > 3 else "")
            hint = (" (a CSV import stores text: write the value as a string, e.g. \"30\" rather than 30)"
                    if wanted == {"number"} and kinds == {"text"} else "")
            warnings.append(f"audience.filters.attributes.{name}: compares {' or '.join(sorted(wanted))} ({shown}) "
                            f"but all {len(values)} stored values of {name} are {' or '.join(sorted(kinds))} "
                            f"(e.g. {_plain(example)!r}), so it matches nobody{hint}")
    return warnings


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def sample(campaign: Campaign, assigned: Iterable[tuple[str, str]], per_variant: int = SAMPLE_PER_VARIANT,
           ) -> dict[str, list[str]]:
    """Up to `per_variant` contacts of each variant (the holdout is sent nothing), the same ones every time for
    the same campaign and audience: the first by a hash of campaign and address, so a sample is spread over the
    list rather than its first addresses in sort order."""
    ranked: dict[str, list[tuple[bytes, str]]] = {v.name: [] for v in campaign.variants}
    for address, variant in assigned:
        if variant != HOLDOUT and variant in ranked:
            ranked[variant].append((hashlib.sha256(f"plan\x00{campaign.id}\x00{address}".encode()).digest(),
                                    address))
    return {name: [a for _, a in sorted(members)[:per_variant]] for name, members in ranked.items()}


@dataclass(frozen=True)
class Estimate:
    """How the send runs at the account's quota: `rate` sends a second (the campaign's share, as the governor
    grants it), `sending_seconds` at that rate, `waiting_seconds` of the test-then-winner evaluation window (or
    a bandit's round windows); `daily_left` sends the stream may still make in this 24 hours and `daily_cap` per
    24 hours (None: unlimited); `days` of 24 hours the send spans (1 when the remaining quota suffices);
    `ses_usd` at SES's price."""

    recipients: int
    rate: float
    sending_seconds: float
    waiting_seconds: int
    daily_left: int | None
    daily_cap: int | None
    days: int
    ses_usd: float

    @property
    def quota_suffices(self) -> bool:
        return self.daily_left is None or self.recipients <= self.daily_left

    def to_dict(self) -> dict[str, Any]:
        return {"recipients": self.recipients, "sends_per_second": round(self.rate, 3),
                "sending_seconds": round(self.sending_seconds, 1), "waiting_seconds": self.waiting_seconds,
                "daily_quota_left": self.daily_left, "daily_quota": self.daily_cap, "days": self.days,
                "quota_suffices": self.quota_suffices, "ses_usd": round(self.ses_usd, 4)}


def campaign_rate(campaign: Campaign, max_send_rate: float, transactional_reserve: float = 0.0) -> float:
    """Sends a second this campaign may make in the long run: the tightest of the governor's limits for it
    (app.domain.token_bucket.limits: the account's rate per window, the marketing share left by the transactional
    reserve, the campaign's rate_share)."""
    quota = tb.Quota(float(max_send_rate), 0.0, 0.0, 0)
    policy = tb.Policy(transactional_reserve=transactional_reserve)
    found = tb.limits(quota, policy, stream=campaign.stream, tag=tb.lane_tag(campaign.stream, campaign.id),
                      rate_share=campaign.rate_share)
    return min(limit.count * 1000 / limit.window_ms for limit in found)


def estimate(campaign: Campaign, recipients: int, *, max_send_rate: float, max_24h_send: float,
             sent_last_24h: float, price_per_email: float, transactional_reserve: float = 0.0) -> Estimate:
    """The send's duration, the quota it needs and its SES cost. Max24HourSend -1 is an unlimited quota (SES API
    SendQuota). Days: the remaining quota today, then a full quota every 24 hours, if nothing else sends."""
    rate = campaign_rate(campaign, max_send_rate, transactional_reserve)
    waiting = (campaign.ab.evaluation_seconds if campaign.ab.mode == TEST_THEN_WINNER else
               (campaign.ab.rounds - 1) * campaign.ab.round_seconds if campaign.ab.mode == BANDIT else 0)
    if max_24h_send < 0:
        left = cap = None
        days = 1
    else:
        share = 1 - transactional_reserve if campaign.stream == tb.MARKETING else 1.0
        cap = max(0, math.floor(max_24h_send * share + 1e-9))
        left = max(0, math.floor(max_24h_send * share - sent_last_24h + 1e-9))
        if recipients <= left:
            days = 1
        elif cap == 0:
            days = 0  # never: no quota at all
        else:
            days = 1 + math.ceil((recipients - left) / cap)
    return Estimate(recipients, rate, recipients / rate if rate > 0 else math.inf, waiting, left, cap, days,
                    recipients * price_per_email)


def duration_text(seconds: float) -> str:
    """2 d 3 h, 3 h 25 min, 12 min 4 s, 38 s, under a second."""
    if math.isinf(seconds):
        return "never"
    if seconds < 1:
        return "under a second"
    seconds = round(seconds)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


@dataclass(frozen=True)
class ZoneStart:
    """When one time zone's recipients are first sent under a send window."""

    zone: str
    recipients: int
    opens_at: datetime  # UTC

    def to_dict(self) -> dict[str, Any]:
        return {"zone": self.zone, "recipients": self.recipients,
                "opens_at": self.opens_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "local": send_window.local_text(self.opens_at, self.zone)}


def zone_starts(window: send_window.SendWindow, recipients_by_zone: Mapping[str, int], start: datetime,
                ) -> list[ZoneStart]:
    """Each zone's first send at or after `start` (the campaign's start), in the order the zones are sent (the
    snapshot's: app.domain.send_window.first_openings)."""
    return [ZoneStart(zone, recipients_by_zone[zone], opening)
            for zone, opening in send_window.first_openings(window, recipients_by_zone, start)]
