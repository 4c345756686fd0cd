"""The account-wide send-rate bucket, pure: how many sends a caller may make and from when, given the recent grants.
No AWS, no environment, no clock: times are integer milliseconds since the epoch, passed in.

SES's rule (quotas.html, and the engine's simulator, src/sesflow/engine/ses.py `SesAccount.admit`): within any one
second, the recipients already sent plus a call's may not exceed MaxSendRate (a call over it is refused whole), and
within a rolling 24 hours not Max24HourSend. A classic token bucket (capacity one second of rate, refilled
continuously) breaks the first rule: a full bucket's burst at t plus the refill of the next 0.99 s is nearly twice the
rate within one second. So here a token comes back exactly one window (1 s plus a safety margin) after it was taken:
a grant of n at time t holds n tokens until t + window. That is a token bucket whose refill is the return of each
token one window after use, or equivalently a sliding-window limiter, and it never lets more than the rate through
in any one-second window, however the grants fall.

Grants may be reserved ahead: a caller with nothing free now gets the earliest time at which its tokens are free,
writes its grant at that time and sleeps until then. Every window containing a grant is checked, including windows
around grants reserved later still, so a grant placed early (backfill) never spoils a later reservation. Callers are
served in order of arrival at the earliest slot, without polling: one conditional write per grant.

Limits (each a count of sends within a window):
- the account: floor(MaxSendRate) within `window_ms` (at least one), every stream;
- marketing, when a transactional reserve r is set: floor(MaxSendRate * (1 - r)) within a window shortened so the
  long-run rate is exactly MaxSendRate * (1 - r) / window (the account limit still holds every second);
- a lane (a campaign) with rate_share s < 1: floor(MaxSendRate * s) likewise.
A share below one send per window is rounded up to one send per window.

The daily quota: SentLast24Hours from GetAccount at the last refresh, plus every grant still held then (sent or about
to be, so perhaps not yet counted by SES: counting them twice only errs on the safe side), plus every grant since.
Marketing may use Max24HourSend * (1 - r) of it, transactional all of it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace

# The spellings of app.domain.campaign's streams.
MARKETING, TRANSACTIONAL = "marketing", "transactional"
STREAMS = (MARKETING, TRANSACTIONAL)

WINDOW_MS = 1010  # SES's one second, plus 10 ms for the time between a grant and SES's clock reading the call


@dataclass(frozen=True)
class Grant:
    """`count` sends that may start at `at` (ms); they hold their tokens until `at` plus the window."""

    at: int
    count: int
    tag: str  # stream initial ("m" or "t"), then a hash of the lane when the lane is not the stream itself

    @property
    def stream(self) -> str:
        return TRANSACTIONAL if self.tag.startswith("t") else MARKETING


@dataclass(frozen=True)
class Quota:
    """The account's quota as of `refreshed_at` (ms)."""

    max_send_rate: float  # recipients per second
    max_24h_send: float
    sent_24h: float  # SentLast24Hours at the refresh, plus the grants held then
    refreshed_at: int


@dataclass(frozen=True)
class Bucket:
    """What the governor item holds. version 0: no item yet."""

    version: int = 0
    grants: tuple[Grant, ...] = ()
    quota: Quota | None = None
    granted: int = 0  # sends granted since the quota was refreshed
    seen: int = 0  # the latest `now` (ms) a write was planned at: no grant is ever placed before it


@dataclass(frozen=True)
class Policy:
    window_ms: int = WINDOW_MS  # at least 1000: SES counts per second
    transactional_reserve: float = 0.0  # fraction of the rate and of the daily quota marketing may never use
    refresh_ms: int = 60_000  # GetAccount at most this often

    def __post_init__(self) -> None:
        if self.window_ms < 1000:
            raise ValueError(f"window_ms: {self.window_ms} is under SES's one second")
        if not 0 <= self.transactional_reserve < 1:
            raise ValueError(f"transactional_reserve: {self.transactional_reserve} is not in [0, 1)")
        if self.refresh_ms <= 0:
            raise ValueError(f"refresh_ms: {self.refresh_ms} is not positive")


@dataclass(frozen=True)
class Limit:
    """At most `count` sends within any `window_ms` by the grants it applies to: all of them (scope ""), one stream
    ("stream:m"), or one lane ("tag:<tag>")."""

    count: int
    window_ms: int
    scope: str = ""

    def applies(self, grant: Grant) -> bool:
        kind, _, value = self.scope.partition(":")
        if kind == "stream":
            return grant.tag.startswith(value)
        if kind == "tag":
            return grant.tag == value
        return True


@dataclass(frozen=True)
class Plan:
    at: int  # ms: the caller may send from then
    count: int
    limits: tuple[Limit, ...] = field(default=(), compare=False)


def lane_tag(stream: str, lane: str | None = None) -> str:
    """Short and stable: the stream's initial, then 6 hex digits of the lane's hash unless the lane is the stream."""
    if stream not in STREAMS:
        raise ValueError(f"stream: {stream!r} is not one of {STREAMS}")
    if lane is None or lane == stream:
        return stream[0]
    return stream[0] + hashlib.blake2b(lane.encode(), digest_size=3).hexdigest()


def _rate_limit(rate: float, window_ms: int, scope: str) -> Limit:
    """floor(rate) sends per window_ms, the window shortened so that the long-run rate is exactly `rate` per
    window_ms (a share's floor loses nothing); a rate under one send per window is one send per window."""
    count = max(1, math.floor(rate + 1e-9))
    if rate < 1:
        return Limit(1, window_ms, scope)
    return Limit(count, max(1, math.floor(window_ms * count / rate)), scope)


def limits(quota: Quota, policy: Policy, *, stream: str, tag: str, rate_share: float = 1.0) -> tuple[Limit, ...]:
    """The limits a grant to (stream, tag) must keep."""
    if not 0 < rate_share <= 1:
        raise ValueError(f"rate_share: {rate_share} is not in (0, 1]")
    rate = quota.max_send_rate
    # The account's own limit is never shortened: SES counts whole seconds.
    found = [Limit(max(1, math.floor(rate + 1e-9)), policy.window_ms)]
    if stream == MARKETING and policy.transactional_reserve > 0:
        found.append(_rate_limit(rate * (1 - policy.transactional_reserve), policy.window_ms, "stream:m"))
    if rate_share < 1:
        found.append(_rate_limit(rate * rate_share, policy.window_ms, f"tag:{tag}"))
    return tuple(found)


def free_at(grants: tuple[Grant, ...], limit: Limit, at: int) -> int:
    """How many sends at `at` keep `limit` in every window that would contain them: [at, at + window)."""
    held = [g for g in grants if limit.applies(g)]
    # A window (x - w, x]'s sum only rises at a grant's time, so the peak over x in [at, at + w) is at `at` or at
    # one of the grants after it.
    ends = [at] + [g.at for g in held if at < g.at < at + limit.window_ms]
    peak = max(sum(g.count for g in held if x - limit.window_ms < g.at <= x) for x in ends)
    return limit.count - peak


def plan(bucket: Bucket, policy: Policy, *, want: int, now: int, stream: str, tag: str,
         rate_share: float = 1.0) -> Plan:
    """The earliest time from `now` at which at least one send is free under every limit, and how many (at most
    `want`). Not the daily quota: cap `want` with `daily_left` first.

    Never before `bucket.seen`: a writer whose clock is ahead may have dropped grants that a window before its
    `now` still holds, so a caller whose clock is behind plans from that writer's time (and waits a little longer).
    """
    now = max(now, bucket.seen)
    if want < 1:
        raise ValueError(f"want: {want} is not positive")
    if bucket.quota is None:
        raise ValueError("the bucket has no quota yet: refresh it from GetAccount first")
    found = limits(bucket.quota, policy, stream=stream, tag=tag, rate_share=rate_share)
    # Free sends only grow when a grant leaves some window: at a grant's time plus a limit's window.
    candidates = sorted({now} | {g.at + lim.window_ms for lim in found for g in bucket.grants
                                 if lim.applies(g) and g.at + lim.window_ms > now})
    for at in candidates:
        free = min(free_at(bucket.grants, lim, at) for lim in found)
        if free >= 1:
            return Plan(at, min(want, free), found)
    raise AssertionError("unreachable: after the last grant's window every limit is free")  # pragma: no cover


def daily_left(bucket: Bucket, policy: Policy, *, stream: str) -> int:
    """Sends the stream may still make under the 24-hour quota (whole sends, never negative)."""
    if bucket.quota is None:
        raise ValueError("the bucket has no quota yet: refresh it from GetAccount first")
    cap = bucket.quota.max_24h_send
    if stream == MARKETING:
        cap *= 1 - policy.transactional_reserve
    return max(0, math.floor(cap - bucket.quota.sent_24h - bucket.granted + 1e-9))


def needs_refresh(bucket: Bucket, policy: Policy, now: int) -> bool:
    return bucket.quota is None or now - bucket.quota.refreshed_at >= policy.refresh_ms


def prune(grants: tuple[Grant, ...], now: int, policy: Policy) -> tuple[Grant, ...]:
    """Drop the grants no window from `now` on can contain (every limit's window is at most policy.window_ms)."""
    return tuple(g for g in grants if g.at + policy.window_ms > now)


def refreshed(bucket: Bucket, policy: Policy, *, now: int, max_send_rate: float, max_24h_send: float,
              sent_last_24h: float) -> Bucket:
    """The bucket with GetAccount's SendQuota as read at `now`."""
    grants = prune(bucket.grants, max(now, bucket.seen), policy)
    held = sum(g.count for g in grants)
    return replace(bucket, grants=grants, granted=0, seen=max(bucket.seen, now),
                   quota=Quota(float(max_send_rate), float(max_24h_send), float(sent_last_24h) + held, now))


def take(bucket: Bucket, policy: Policy, chosen: Plan, *, now: int, tag: str) -> Bucket:
    """The bucket with the planned grant added (merged into a grant of the same lane at the same time)."""
    now = max(now, bucket.seen)
    grants = list(prune(bucket.grants, now, policy))
    for i, g in enumerate(grants):
        if g.at == chosen.at and g.tag == tag:
            grants[i] = Grant(g.at, g.count + chosen.count, tag)
            break
    else:
        grants.append(Grant(chosen.at, chosen.count, tag))
    grants.sort(key=lambda g: (g.at, g.tag))
    return replace(bucket, grants=tuple(grants), granted=bucket.granted + chosen.count, seen=max(bucket.seen, now))


# --- the log's text form ------------------------------------------------------------------------------------


def encode_grants(grants: tuple[Grant, ...]) -> tuple[int, str]:
    """(base ms, "offset:count:tag,...") with offsets from the base: a few bytes per grant."""
    if not grants:
        return 0, ""
    base = min(g.at for g in grants)
    return base, ",".join(f"{g.at - base}:{g.count}:{g.tag}" for g in grants)


def decode_grants(base: int, text: str) -> tuple[Grant, ...]:
    grants = []
    for part in filter(None, text.split(",")):
        offset, count, tag = part.split(":")
        grants.append(Grant(base + int(offset), int(count), tag))
    return tuple(grants)
