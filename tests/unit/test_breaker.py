"""The campaign breaker: halts on evidence, not on one unlucky complaint. Pure (no AWS)."""

import pytest
from app.domain.breaker import (
    HALT,
    OK,
    WARN,
    Counts,
    Verdict,
    check_rate,
    counts_from_stats,
    evaluate,
    evaluate_variants,
    lower_bound,
    worst,
)
from app.domain.campaign import Levels, Thresholds

DEFAULTS = Thresholds()


@pytest.mark.parametrize("sent", [1, 10, 100, 499, 500, 1_000, 10_000, 1_000_000])
def test_one_early_complaint_in_a_big_send_does_not_halt(sent):
    assert evaluate(sent, 0, 1, DEFAULTS).level != HALT


def test_one_complaint_among_a_million_sends_is_ok():
    verdict = evaluate(1_000_000, 0, 1, DEFAULTS)
    assert verdict.level == OK and verdict.metric == "complaint"


def test_one_percent_complaints_over_two_thousand_sends_halts():
    verdict = evaluate(2_000, 0, 20, DEFAULTS)
    assert verdict.level == HALT and verdict.halted
    assert verdict.metric == "complaint" and verdict.rate == 0.01
    assert verdict.bound == pytest.approx(0.00695, abs=5e-5)
    assert verdict.reason == ("complaint rate 1% (20 of 2,000 sends): at 95% confidence at least 0.695%, "
                              "above the halt level 0.08%")


def test_five_percent_bounces_halts_once_the_sample_proves_it():
    # 5% over 1,000 sends is not yet proof of more than 4% at 95% (bound 3.98%): a warning, not a halt.
    not_yet = evaluate(1_000, 50, 0, DEFAULTS)
    assert (not_yet.level, not_yet.metric) == (WARN, "bounce")
    assert not_yet.bound == pytest.approx(0.0398, abs=1e-4)
    assert "not yet shown above the halt level 4%" in not_yet.reason
    assert evaluate(1_300, 65, 0, DEFAULTS).level == HALT  # the same 5% over 1,300 sends
    assert evaluate(1_000, 60, 0, DEFAULTS).level == HALT  # 6% over 1,000


def test_five_percent_bounces_over_a_thousand_halts_at_a_lower_confidence():
    assert evaluate(1_000, 50, 0, Thresholds(confidence=0.9)).level == HALT


def test_warn_without_halt():
    verdict = evaluate(1_000, 25, 0, DEFAULTS)
    assert (verdict.level, verdict.metric) == (WARN, "bounce")
    assert verdict.reason == ("bounce rate 2.5% (25 of 1,000 sends) is above the warn level 2%; "
                              "below the halt level 4%")


def test_a_rate_over_halt_only_warns_before_min_sends():
    verdict = evaluate(499, 0, 10, DEFAULTS)  # 2% complaints: far over, but too few sends to halt
    assert verdict.level == WARN and "no halt before 500 sends" in verdict.reason
    assert evaluate(500, 0, 10, DEFAULTS).level == HALT


def test_warn_needs_a_hundred_sends():
    assert evaluate(99, 3, 0, DEFAULTS).level == OK
    assert evaluate(100, 3, 0, DEFAULTS).level == WARN


def test_warn_comes_no_later_than_halt_when_min_sends_is_small():
    thresholds = Thresholds(min_sends=20)
    assert evaluate(20, 1, 0, thresholds).level == WARN  # 5% bounces, bound 1.1%
    assert evaluate(20, 10, 0, thresholds).level == HALT


def test_a_rate_at_the_warn_level_is_ok():
    assert evaluate(10_000, 200, 5, DEFAULTS).level == OK  # exactly 2% bounces and 0.05% complaints


def test_halt_needs_the_bound_strictly_above_the_halt_level():
    bound = lower_bound(30, 1_000, 0.95)
    at = Thresholds(bounce=Levels(0.001, bound))
    just_under = Thresholds(bounce=Levels(0.001, bound - 1e-9))
    assert check_rate("bounce", 30, 1_000, at.bounce, at).level == WARN
    assert check_rate("bounce", 30, 1_000, just_under.bounce, just_under).level == HALT


def test_lower_bound_is_the_wilson_score_bound():
    # The Wilson bound p0 is where the score statistic (p - p0) / sqrt(p0 (1 - p0) / n) equals z.
    from statistics import NormalDist

    events, trials, confidence = 20, 2_000, 0.95
    z, p = NormalDist().inv_cdf(confidence), events / trials
    low, high = 0.0, p
    for _ in range(100):
        mid = (low + high) / 2
        score = (p - mid) / (mid * (1 - mid) / trials) ** 0.5
        low, high = (mid, high) if score > z else (low, mid)
    assert lower_bound(events, trials, confidence) == pytest.approx(low, rel=1e-9)


def test_lower_bound_edges():
    assert lower_bound(0, 0, 0.95) == 0.0
    assert lower_bound(0, 1_000, 0.95) == 0.0
    assert 0 < lower_bound(1_000, 1_000, 0.95) < 1
    assert lower_bound(10, 1_000, 0.99) < lower_bound(10, 1_000, 0.95) < lower_bound(10, 1_000, 0.5)


def test_no_sends_is_ok():
    verdict = evaluate(0, 0, 0, DEFAULTS)
    assert (verdict.level, verdict.rate, verdict.bound) == (OK, 0.0, 0.0)


def test_more_feedback_than_sends_counts_as_a_rate_of_one():
    verdict = evaluate(600, 0, 700, DEFAULTS)  # complaints counted before their Send events
    assert verdict.level == HALT and verdict.rate == 1.0 and verdict.events == 600


def test_negative_counts_are_a_bug():
    with pytest.raises(ValueError, match="bounce: counts cannot be negative"):
        evaluate(10, -1, 0, DEFAULTS)


def test_the_more_severe_metric_decides():
    verdict = evaluate(2_000, 50, 20, DEFAULTS)  # bounces warn (2.5%), complaints halt (1%)
    assert (verdict.level, verdict.metric) == (HALT, "complaint")
    verdict = evaluate(2_000, 200, 1, DEFAULTS)  # bounces halt (10%), complaints warn
    assert (verdict.level, verdict.metric) == (HALT, "bounce")


def test_ok_names_the_metric_nearest_its_halt_level():
    assert evaluate(10_000, 10, 0, DEFAULTS).metric == "bounce"
    assert evaluate(10_000, 10, 5, DEFAULTS).metric == "complaint"  # 0.05% of 0.08% beats 0.1% of 4%


def test_worst_needs_a_verdict():
    with pytest.raises(ValueError):
        worst([])
    only = Verdict(OK, "bounce", 0.0, 0.0, "fine")
    assert worst([only]) is only


def test_each_variant_is_judged_on_its_own_counts():
    verdicts = evaluate_variants({"a": Counts(2_000, 10, 0), "b": Counts(2_000, 10, 20), "c": Counts(50, 0, 5)},
                                 DEFAULTS)
    assert {name: v.level for name, v in verdicts.items()} == {"a": OK, "b": HALT, "c": OK}


def test_counts_come_from_the_issue_3_stats_item():
    from decimal import Decimal

    item = {"campaign_id": "spring-sale#stats", "sent": Decimal(3_000), "hard_bounces": Decimal(40),
            "soft_bounces": Decimal(99), "complaints": Decimal(2), "opens": Decimal(900),
            "sent#a": Decimal(2_000), "hard_bounces#a": Decimal(30), "complaints#a": Decimal(2),
            "sent#b": Decimal(1_000), "hard_bounces#b": Decimal(10), "soft_bounces#b": Decimal(7)}
    campaign, variants = counts_from_stats(item)
    assert campaign == Counts(3_000, 40, 2)
    assert variants == {"a": Counts(2_000, 30, 2), "b": Counts(1_000, 10, 0)}
    assert counts_from_stats({}) == (Counts(), {})


def test_verdict_to_dict_is_json_ready():
    import json

    document = evaluate(2_000, 0, 20, DEFAULTS).to_dict()
    assert json.loads(json.dumps(document)) == document
    assert document["level"] == "halt" and document["halt_level"] == 0.0008
