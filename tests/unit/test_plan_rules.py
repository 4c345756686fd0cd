"""The plan's pure campaign rules (app.domain.plan), the audience split the snapshot and the plan share, and the
feedback rule that a test message counts toward no campaign."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from app.domain.campaign import HOLDOUT, assign_variant, parse_campaign, split_audience
from app.domain.feedback import parse_feedback
from app.domain.plan import campaign_rate, estimate, filter_type_warnings, sample, start_problem

from sesflow.engine.ses import feedback_record

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def definition(**changes):
    return parse_campaign({"id": "spring", "sender": "news@example.com", "audience": {"lists": ["newsletter"]},
                           "variants": [{"name": "a", "template": "t-a"}, {"name": "b", "template": "t-b"}],
                           **changes})


def test_a_past_start_at_is_refused_unless_now_is_given_and_a_future_one_waits():
    assert start_problem("2026-12-04T11:59:59Z", NOW) == (
        "start_at 2026-12-04T11:59:59Z is in the past (it is now 2026-12-04T12:00:00Z): the campaign would start at "
        "once; give --now to start it now anyway, or set a later start_at")
    assert start_problem("2026-12-04T11:59:59Z", NOW, now_given=True) is None
    assert start_problem("2026-12-04T12:00:01Z", NOW) is None
    assert start_problem(None, NOW) is None
    assert start_problem(None, NOW, now_given=True) is None
    assert start_problem("2026-12-04T12:00:01Z", NOW, now_given=True).startswith(
        "start_at 2026-12-04T12:00:01Z is in the future: the campaign waits for it; --now is for")


def test_a_number_filter_over_text_values_warns_and_a_matching_kind_does_not():
    audience = definition(audience={"lists": ["l"], "filters": {"attributes": {"age": 30, "tier": "gold"}}}).audience
    stored = [{"age": "30", "tier": "gold"}, {"age": "41"}, {}]

    (warning,) = filter_type_warnings(audience, stored)

    assert warning.startswith("audience.filters.attributes.age: compares number (30) but all 2 stored values of age "
                              "are text (e.g. '30'), so it matches nobody (a CSV import stores text")
    assert filter_type_warnings(audience, [{"age": Decimal(30), "tier": "gold"}]) == []
    assert filter_type_warnings(audience, [{}]) == []  # nobody has it: nothing to compare with


def test_the_sample_is_the_same_each_time_per_variant_and_leaves_the_holdout_out():
    campaign = definition(holdout_percent=20)
    assigned = [(f"u{i}@example.org", assign_variant(campaign, f"u{i}@example.org")) for i in range(200)]

    chosen = sample(campaign, assigned, per_variant=5)

    assert chosen == sample(campaign, list(reversed(assigned)), per_variant=5)
    assert {name: len(found) for name, found in chosen.items()} == {"a": 5, "b": 5}
    variant_of = dict(assigned)
    assert all(variant_of[a] == name for name, found in chosen.items() for a in found)
    assert HOLDOUT not in chosen


def test_the_split_counts_what_the_snapshot_freezes():
    campaign = definition(holdout_percent=10, ab={"mode": "test_then_winner", "test_percent": 25})
    eligible = [f"u{i}@example.org" for i in range(400)]

    split = split_audience(campaign, eligible, {"u1@example.org", "u2@example.org"})

    assert split.ses_suppressed == 2 and len(split.assigned) == 398
    assert split.by_variant == {v: sum(1 for _, x in split.assigned if x == v) for v in ("a", "b", HOLDOUT)}
    assert split.recipients == 398 - len(split.holdout) == len(split.cohorts["test"]) + len(split.cohorts["remainder"])
    assert 0 < len(split.cohorts["test"]) < len(split.cohorts["remainder"])


def test_the_rate_is_the_governors_share_and_the_days_count_the_quota_left_then_a_full_one_a_day():
    campaign = definition(rate_share=0.5)
    assert campaign_rate(campaign, 14) == pytest.approx(7 * 1000 / 1010)  # 7 per window of 1,010 ms
    assert campaign_rate(campaign, 14, transactional_reserve=0.5) == pytest.approx(7 * 1000 / 1010)
    assert campaign_rate(definition(), 14, transactional_reserve=0.5) == pytest.approx(7 * 1000 / 1010)

    short = estimate(definition(), 25_000, max_send_rate=14, max_24h_send=10_000, sent_last_24h=4_000,
                     price_per_email=0.0001)
    assert (short.daily_left, short.daily_cap, short.days, short.quota_suffices) == (6_000, 10_000, 3, False)
    assert short.ses_usd == pytest.approx(2.5)
    fits = estimate(definition(), 6_000, max_send_rate=14, max_24h_send=10_000, sent_last_24h=4_000,
                    price_per_email=0.0001)
    assert (fits.days, fits.quota_suffices) == (1, True)
    unlimited = estimate(definition(), 10**7, max_send_rate=14, max_24h_send=-1, sent_last_24h=0, price_per_email=0)
    assert (unlimited.daily_left, unlimited.days, unlimited.quota_suffices) == (None, 1, True)
    waiting = estimate(definition(ab={"mode": "test_then_winner", "evaluation_seconds": 3600}), 100, max_send_rate=14,
                       max_24h_send=-1, sent_last_24h=0, price_per_email=0)
    assert waiting.waiting_seconds == 3600


def test_feedback_about_a_test_message_counts_for_no_campaign_whatever_else_it_carries():
    record = feedback_record("hard_bounce", "me@example.org", NOW, "m-1",
                             tags={"campaign": ["spring"], "variant": ["a"], "batch": ["all-0"], "call": ["0"],
                                   "sesflow-test": ["spring"]})
    (event,) = parse_feedback(json.dumps(record)).events
    assert (event.campaign_id, event.variant, event.batch, event.call) == (None, None, None, None)
    assert event.kind == "bounce" and event.recipient == "me@example.org"  # its lifecycle still applies

    del record["mail"]["tags"]["sesflow-test"]
    (campaign_event,) = parse_feedback(json.dumps(record)).events
    assert campaign_event.campaign_id == "spring"
