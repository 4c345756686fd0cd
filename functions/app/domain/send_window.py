"""Send windows in each recipient's local time: pure arithmetic over the IANA time zone database (zoneinfo).

A campaign's `send_window` (docs/campaign-schema.md) takes one of two forms:

- a window: on `days`, from `start` to `end` local time (e.g. Monday to Friday, 09:00 to 18:00). A zone's batches
  are sent only while its window is open; a window that closes mid-send stops that zone until the next opening.
- a time of day: `at` (e.g. 09:00) on `days`. A zone's batches start at the first `at` local time at or after the
  phase is ready to send (the campaign's start, the end of the evaluation window for the remainder, a resume) and
  then go on until the zone is done.

Times are wall-clock times in the zone, so a window is 09:00 to 18:00 local on the days of a DST change too (then
it is an hour shorter or longer in UTC). A wall-clock time that does not exist that day (skipped by a DST change)
is taken as the same time before the change, which lands just after the gap; one that occurs twice is its first
occurrence (zoneinfo's fold 0).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
ZONE_ATTRIBUTE = "time_zone"  # the contact attribute that holds a recipient's IANA zone name
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# Zone names the snapshot's reasons use for a recipient sent in the campaign's zone.
MISSING, INVALID = "missing", "invalid"


@dataclass(frozen=True)
class SendWindow:
    """`days` (weekday numbers, Monday 0) with `start`/`end` ("HH:MM") for a window, or `at` ("HH:MM") for a time of
    day; `time_zone` is the campaign's zone, used for a recipient whose own zone is missing or not a zone name."""

    time_zone: str
    days: tuple[int, ...] = tuple(range(7))
    start: str | None = None
    end: str | None = None
    at: str | None = None
    zone_attribute: str = ZONE_ATTRIBUTE

    @property
    def is_time_of_day(self) -> bool:
        return self.at is not None

    def to_dict(self) -> dict[str, object]:
        shape: dict[str, object] = {"at": self.at} if self.at is not None else {"start": self.start, "end": self.end}
        return {"days": [DAYS[d] for d in self.days], **shape, "time_zone": self.time_zone,
                "zone_attribute": self.zone_attribute}


def clock_time(text: object) -> time | None:
    """"HH:MM" (00:00 to 23:59) as a time, or None."""
    match = _CLOCK.match(text) if isinstance(text, str) else None
    return time(int(match.group(1)), int(match.group(2))) if match else None


@cache
def zone(name: str) -> ZoneInfo | None:
    """The IANA zone of that name, or None when there is none (or the name is not one zoneinfo may look up)."""
    if not isinstance(name, str) or not name or name != name.strip():
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


@cache
def zone_names() -> tuple[str, ...]:
    """Every IANA zone name the database holds (for a "did you mean" hint)."""
    return tuple(sorted(available_timezones()))


def recipient_zone(window: SendWindow, value: object) -> tuple[str, str | None]:
    """The zone a recipient is sent in, and why it is the campaign's (MISSING, INVALID) when it is not its own."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return window.time_zone, MISSING
    if isinstance(value, str) and zone(value) is not None:
        return value, None
    return window.time_zone, INVALID


def _at(day: datetime, wall: time, tz: ZoneInfo) -> datetime:
    """The UTC moment of `wall` on the local date of `day` in `tz`."""
    return datetime.combine(day.date(), wall, tzinfo=tz).astimezone(UTC)


def _bounds(window: SendWindow) -> tuple[time, time | None]:
    if window.at is not None:
        return clock_time(window.at) or time(0), None
    start, end = clock_time(window.start), clock_time(window.end)
    if start is None or end is None:
        raise ValueError(f"not a window: {window!r}")
    return start, end


def is_open(window: SendWindow, zone_name: str, moment: datetime) -> bool:
    """Whether the window (the first form) is open at `moment` in that zone."""
    start, end = _bounds(window)
    local = moment.astimezone(_zone(zone_name))
    return local.weekday() in window.days and end is not None and start <= local.time() < end


def next_opening(window: SendWindow, zone_name: str, moment: datetime) -> datetime:
    """The first moment at or after `moment` when the window is open in that zone (`moment` itself if it is open);
    for the time-of-day form, the first `at` on one of `days` at or after `moment`. UTC."""
    if window.at is None and is_open(window, zone_name, moment):
        return moment.astimezone(UTC)
    start, _ = _bounds(window)
    tz = _zone(zone_name)
    local = moment.astimezone(tz)
    for offset in range(8):
        day = local + timedelta(days=offset)
        if day.weekday() in window.days:
            opening = _at(day, start, tz)
            if opening >= moment:
                return opening
    raise AssertionError("a window has at least one day")  # parse_campaign refuses an empty `days`


def closes_at(window: SendWindow, zone_name: str, moment: datetime) -> datetime | None:
    """When the window open at `moment` closes (UTC); None for the time-of-day form, or if it is not open."""
    if window.at is not None or not is_open(window, zone_name, moment):
        return None
    _, end = _bounds(window)
    tz = _zone(zone_name)
    return _at(moment.astimezone(tz), end or time(0), tz)


def wait_until(window: SendWindow, zone_name: str, now: datetime, ready_at: datetime | None) -> datetime | None:
    """When a batch of that zone may next be sent, if not now (None: send now).

    A window: its next opening. A time of day: the first `at` at or after `ready_at` (when the phase became ready
    to send), and from then on at once."""
    if window.at is not None:
        opening = next_opening(window, zone_name, ready_at or now)
        return opening if opening > now else None
    return None if is_open(window, zone_name, now) else next_opening(window, zone_name, now)


def first_openings(window: SendWindow, zones: Iterable[str], moment: datetime) -> list[tuple[str, datetime]]:
    """Each zone with its first opening at or after `moment` (UTC), in the order the zones send: by that opening,
    then by name."""
    found = {name: next_opening(window, name, moment) for name in set(zones)}
    return sorted(found.items(), key=lambda item: (item[1], item[0]))


def describe(window: SendWindow) -> str:
    """The window for people: "mon-fri 09:00-18:00", "every day at 09:00"."""
    days = ("every day" if len(window.days) == 7 else f"{DAYS[window.days[0]]}-{DAYS[window.days[-1]]}"
            if window.days == tuple(range(window.days[0], window.days[-1] + 1)) else
            ",".join(DAYS[d] for d in window.days))
    return f"{days} at {window.at}" if window.at is not None else f"{days} {window.start}-{window.end}"


def local_text(moment: datetime, zone_name: str) -> str:
    """A moment as the zone's wall clock shows it, with the weekday and the offset: "Mon 2026-12-07 09:00 +01:00"."""
    local = moment.astimezone(_zone(zone_name))
    offset = local.strftime("%z")
    return f"{DAYS[local.weekday()].capitalize()} {local:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"


def _zone(name: str) -> ZoneInfo:
    found = zone(name)
    if found is None:
        raise ValueError(f"not an IANA time zone name: {name!r}")
    return found
