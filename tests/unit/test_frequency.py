"""The frequency cap's rules (app.domain.frequency) and the campaign field that overrides it."""

from datetime import UTC, datetime, timedelta

import pytest
from app.domain import frequency
from app.domain.campaign import parse_campaign
from app.errors import CampaignDefinitionError

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
POLICY = frequency.Policy(emails=2, days=7)


def ago(**delta) -> str:
    return (NOW - timedelta(**delta)).isoformat()


def definition(**changes):
    return {"id": "bf", "sender": "news@example.com", "audience": {"lists": ["n"]},
            "variants": [{"name": "a", "template": "t"}], **changes}


def test_a_send_counts_while_it_is_younger_than_the_window_and_not_after():
    sends = {"a": ago(days=6, hours=23), "b": ago(days=7), "c": ago(days=8), "d": ago(minutes=1)}

    assert sorted(frequency.within(sends, NOW, 7)) == ["a", "d"]
    assert frequency.counted(sends, "new", NOW, 7) == 2
    assert frequency.counted(sends, "d", NOW, 7) == 1  # a campaign's own send never counts against it


def test_a_contact_is_at_its_cap_when_the_window_holds_as_many_other_sends():
    cap = frequency.effective("marketing", None, POLICY)

    assert frequency.at_cap({"a": ago(days=1), "b": ago(days=2)}, "new", NOW, cap)
    assert not frequency.at_cap({"a": ago(days=1), "b": ago(days=9)}, "new", NOW, cap)
    # Reserved already (a retried or resumed batch): it is sent, whatever the others did since.
    assert not frequency.at_cap({"a": ago(days=1), "b": ago(days=2), "new": ago(minutes=5)}, "new", NOW, cap)


def test_an_unreadable_time_counts_rather_than_let_a_contact_past_its_cap():
    cap = frequency.effective("marketing", None, frequency.Policy(1, 7))

    assert frequency.at_cap({"a": "not a time"}, "new", NOW, cap)


def test_reserving_prunes_what_no_window_in_use_counts_and_keeps_the_first_time():
    sends = {"old": ago(days=30), "recent": ago(days=3), "again": ago(hours=1)}
    cap = frequency.effective("marketing", None, POLICY)

    assert frequency.reserved(sends, "new", NOW, cap) == {"recent": ago(days=3), "again": ago(hours=1),
                                                          "new": NOW.isoformat()}
    assert frequency.reserved(sends, "again", NOW, cap)["again"] == ago(hours=1)
    longer = frequency.effective("marketing", {"max": 5, "days": 31, "reason": "r"}, POLICY)
    assert "old" in frequency.reserved(sends, "new", NOW, longer)  # kept for the longest window in use


@pytest.mark.parametrize(("stream", "override", "policy", "expected"), [
    ("marketing", None, POLICY, (2, 7, True, "account")),
    ("marketing", None, frequency.Policy(), (None, 0, False, "none")),
    ("transactional", None, POLICY, (None, 0, False, "transactional")),
    ("marketing", {"max": 5, "days": 3, "reason": "BF"}, POLICY, (5, 3, True, "campaign")),
    ("marketing", {"max": 5, "days": 3, "reason": "BF"}, frequency.Policy(), (5, 3, True, "campaign")),
    ("marketing", {"exempt": True, "reason": "r"}, POLICY, (None, 7, True, "exempt")),
    ("marketing", {"exempt": True, "reason": "r"}, frequency.Policy(), (None, 0, False, "exempt")),
])
def test_the_cap_that_holds_for_a_campaign(stream, override, policy, expected):
    cap = frequency.effective(stream, override, policy)

    assert (cap.emails, cap.days, cap.record, cap.source) == expected


def test_an_override_round_trips_and_its_reason_is_kept():
    for given in ({"max": 5, "days": 7, "reason": "Black Friday week"}, {"exempt": True, "reason": "legal notice"}):
        campaign = parse_campaign(definition(frequency_cap=given))

        assert campaign.to_dict()["frequency_cap"] == given
        assert parse_campaign(campaign.to_dict()) == campaign
    assert parse_campaign(definition()).to_dict()["frequency_cap"] is None


@pytest.mark.parametrize(("given", "problems"), [
    ({"max": 5, "days": 7}, ["frequency_cap.reason: required, a non-blank string"]),
    ({"exempt": True, "reason": " \t"}, ["frequency_cap.reason: required, a non-blank string"]),
    ({"max": 0, "days": 366, "reason": "r"}, ["frequency_cap.max: must be a whole number from 1 to 1000, got 0",
                                              "frequency_cap.days: must be a whole number from 1 to 365, got 366"]),
    ({"max": "5", "days": 7, "reason": "r"}, ["frequency_cap.max: must be a whole number from 1 to 1000, got '5'"]),
    ({"days": 7, "reason": "r"}, ["frequency_cap.max: required (or exempt: true)"]),
    ({"exempt": True, "max": 3, "reason": "r"}, ["frequency_cap.max: not with exempt"]),
    ({"exempt": "yes", "reason": "r"}, ["frequency_cap.exempt: must be true"]),
    ({"max": 1, "days": 1, "reason": "r", "window": 3}, ["frequency_cap.window: unknown field"]),
    ({}, ["frequency_cap: give max and days, or exempt: true, with a reason"]),
    ({"max": 1, "days": 1, "reason": "x" * 501}, ["frequency_cap.reason: at most 500 characters, got 501"]),
])
def test_a_bad_override_is_refused_naming_each_problem(given, problems):
    with pytest.raises(CampaignDefinitionError) as refused:
        parse_campaign(definition(frequency_cap=given))

    for problem in problems:
        assert problem in str(refused.value)


def test_a_transactional_campaign_takes_no_override():
    with pytest.raises(CampaignDefinitionError, match="frequency_cap: a transactional campaign is exempt"):
        parse_campaign(definition(stream="transactional", frequency_cap={"max": 1, "days": 1, "reason": "r"}))
