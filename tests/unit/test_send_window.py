"""The send window's arithmetic (app.domain.send_window): when a zone's window opens and closes, in its wall clock,
on ordinary days and on the days the clocks change."""

from datetime import UTC, datetime

import pytest
from app.domain.campaign import parse_campaign
from app.domain.send_window import (
    INVALID,
    MISSING,
    SendWindow,
    closes_at,
    is_open,
    local_text,
    next_opening,
    recipient_zone,
    wait_until,
)
from app.errors import CampaignDefinitionError

WEEKDAYS = SendWindow("Europe/Paris", days=(0, 1, 2, 3, 4), start="09:00", end="18:00")
AT_NINE = SendWindow("Europe/Paris", at="09:00")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(("zone", "moment", "expected"), [
    ("Europe/Paris", utc(2026, 12, 7, 8, 0), True),  # Monday 09:00 CET: the window opens
    ("Europe/Paris", utc(2026, 12, 7, 7, 59, 59), False),
    ("Europe/Paris", utc(2026, 12, 7, 16, 59, 59), True),
    ("Europe/Paris", utc(2026, 12, 7, 17, 0), False),  # 18:00: closed (the end is not in the window)
    ("America/New_York", utc(2026, 12, 7, 14, 0), True),  # 09:00 EST
    ("America/New_York", utc(2026, 12, 7, 13, 59), False),
    ("Asia/Tokyo", utc(2026, 12, 7, 0, 0), True),  # 09:00 JST Monday is Sunday 24:00 UTC
    ("Asia/Tokyo", utc(2026, 12, 6, 23, 59), False),
    ("Europe/Paris", utc(2026, 12, 5, 10, 0), False),  # Saturday
])
def test_is_open_in_the_zones_wall_clock(zone, moment, expected):
    assert is_open(WEEKDAYS, zone, moment) is expected


def test_next_opening_is_now_when_open_and_the_next_start_otherwise():
    assert next_opening(WEEKDAYS, "Europe/Paris", utc(2026, 12, 7, 10, 0)) == utc(2026, 12, 7, 10, 0)
    assert next_opening(WEEKDAYS, "Europe/Paris", utc(2026, 12, 7, 5, 0)) == utc(2026, 12, 7, 8, 0)
    assert next_opening(WEEKDAYS, "Europe/Paris", utc(2026, 12, 7, 17, 0)) == utc(2026, 12, 8, 8, 0)


def test_a_window_that_closes_on_friday_opens_again_on_monday():
    friday_close = utc(2026, 12, 4, 17, 0)  # Friday 18:00 in Paris
    assert closes_at(WEEKDAYS, "Europe/Paris", utc(2026, 12, 4, 16, 55)) == friday_close
    assert next_opening(WEEKDAYS, "Europe/Paris", friday_close) == utc(2026, 12, 7, 8, 0)  # Monday 09:00
    assert local_text(utc(2026, 12, 7, 8, 0), "Europe/Paris") == "Mon 2026-12-07 09:00 +01:00"


def test_the_window_keeps_its_wall_clock_hours_across_a_dst_change():
    # Europe/Paris moves to summer time on Sunday 2026-03-29; New York on Sunday 2026-03-08.
    assert next_opening(WEEKDAYS, "Europe/Paris", utc(2026, 3, 27, 17, 0)) == utc(2026, 3, 30, 7, 0)  # 09:00 CEST
    assert closes_at(WEEKDAYS, "Europe/Paris", utc(2026, 3, 30, 7, 0)) == utc(2026, 3, 30, 16, 0)
    assert next_opening(WEEKDAYS, "America/New_York", utc(2026, 3, 6, 23, 0)) == utc(2026, 3, 9, 13, 0)  # EDT
    every_day = SendWindow("Europe/Paris", start="01:00", end="04:00")
    # On the change day 02:00-03:00 does not exist: the window is two hours long in UTC, then three again.
    assert closes_at(every_day, "Europe/Paris", utc(2026, 3, 29, 0, 0)) == utc(2026, 3, 29, 2, 0)
    assert is_open(every_day, "Europe/Paris", utc(2026, 3, 29, 1, 30))
    assert not is_open(every_day, "Europe/Paris", utc(2026, 3, 29, 2, 0))  # 04:00 CEST
    autumn = next_opening(every_day, "Europe/Paris", utc(2026, 10, 25, 0, 0))  # 01:00 CEST, before the change
    assert autumn == utc(2026, 10, 25, 0, 0)  # open: 02:00 CEST is inside 01:00-04:00
    assert closes_at(every_day, "Europe/Paris", utc(2026, 10, 25, 0, 0)) == utc(2026, 10, 25, 3, 0)  # 04:00 CET


def test_a_time_of_day_opens_at_the_first_such_time_after_the_phase_is_ready_and_stays_open():
    ready = utc(2026, 12, 7, 12, 0)  # Monday noon UTC
    assert wait_until(AT_NINE, "Asia/Tokyo", ready, ready) == utc(2026, 12, 8, 0, 0)  # Tuesday 09:00 JST
    assert wait_until(AT_NINE, "America/New_York", ready, ready) == utc(2026, 12, 7, 14, 0)
    assert wait_until(AT_NINE, "Europe/Paris", ready, ready) == utc(2026, 12, 8, 8, 0)
    # Once it is past that 09:00, the zone sends at once, at any hour, until it is done.
    assert wait_until(AT_NINE, "America/New_York", utc(2026, 12, 7, 23, 30), ready) is None
    weekdays_at_nine = SendWindow("Europe/Paris", days=(0, 1, 2, 3, 4), at="09:00")
    saturday = utc(2026, 12, 5, 12, 0)
    assert wait_until(weekdays_at_nine, "Europe/Paris", saturday, saturday) == utc(2026, 12, 7, 8, 0)


def test_a_recipient_without_a_valid_zone_is_sent_in_the_campaigns():
    assert recipient_zone(WEEKDAYS, "Asia/Tokyo") == ("Asia/Tokyo", None)
    assert recipient_zone(WEEKDAYS, None) == ("Europe/Paris", MISSING)
    assert recipient_zone(WEEKDAYS, " ") == ("Europe/Paris", MISSING)
    for bad in ("Mars/Olympus", "../../etc/passwd", "/etc/localtime", 5, "asia/tokyo "):
        assert recipient_zone(WEEKDAYS, bad) == ("Europe/Paris", INVALID)


BASE = {"id": "w", "sender": "news@example.com", "audience": {"lists": ["n"]},
        "variants": [{"name": "a", "template": "t"}]}


def test_send_window_round_trips_with_its_defaults():
    campaign = parse_campaign({**BASE, "send_window": {"start": "09:00", "end": "18:00", "time_zone": "UTC"}})
    assert campaign.to_dict()["send_window"] == {
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "09:00", "end": "18:00",
        "time_zone": "UTC", "zone_attribute": "time_zone"}
    assert parse_campaign(campaign.to_dict()) == campaign
    at = parse_campaign({**BASE, "send_window": {"at": "09:00", "days": ["fri", "mon"], "time_zone": "Asia/Tokyo"}})
    assert at.send_window.days == (0, 4) and parse_campaign(at.to_dict()) == at


def test_every_problem_of_a_send_window_is_named_by_its_path():
    with pytest.raises(CampaignDefinitionError) as error:
        parse_campaign({**BASE, "send_window": {"days": ["mon", "mon", "someday"], "start": "9:00", "end": "08:00",
                                                "time_zone": "Europe/Parris", "zone_attribute": "status",
                                                "timezone": "x"}})
    message = str(error.value)
    for expected in ("send_window.timezone: unknown field (did you mean 'time_zone'?",
                     "send_window.days[1]: 'mon' is given twice",
                     "send_window.days[2]: must be one of mon", "send_window.start: must be a local time",
                     "send_window.time_zone: 'Europe/Parris' is not an IANA time zone name (did you mean "
                     "'Europe/Paris'?)",
                     "send_window.zone_attribute: 'status' is sesflow's bookkeeping"):
        assert expected in message, message
    with pytest.raises(CampaignDefinitionError, match="send_window.end: must be after start"):
        parse_campaign({**BASE, "send_window": {"start": "18:00", "end": "09:00", "time_zone": "UTC"}})
    with pytest.raises(CampaignDefinitionError, match="send_window: give either start and end"):
        parse_campaign({**BASE, "send_window": {"start": "09:00", "end": "18:00", "at": "09:00", "time_zone": "UTC"}})
    with pytest.raises(CampaignDefinitionError, match="send_window.time_zone: required"):
        parse_campaign({**BASE, "send_window": {"at": "09:00"}})
    with pytest.raises(CampaignDefinitionError, match="send_window: a transactional campaign cannot wait"):
        parse_campaign({**BASE, "stream": "transactional", "send_window": {"at": "09:00", "time_zone": "UTC"}})
