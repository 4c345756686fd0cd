"""Bandit mode: the reweighting between rounds, the rounds of the audience and who gets what. Pure (no AWS)."""

from collections import Counter

import pytest
from app.domain.bandit import DRAWS, floor_shares, p_best, reweigh, round_variant, seed
from app.domain.breaker import lower_bound
from app.domain.campaign import HOLDOUT, assign_variant, bandit_round, parse_campaign, split_audience
from app.domain.winner import VariantStats


def campaign(variants=("a", "b"), **ab):
    return parse_campaign({
        "id": "bandit-unit", "sender": "news@example.com", "audience": {"lists": ["l"]},
        "variants": [{"name": n, "template": f"t-{n}"} for n in variants], "holdout_percent": 10,
        "ab": {"mode": "bandit", **ab}})


def stats(delivered, clicks, complaints=0, sent=None, opens=0):
    return VariantStats(sent=sent if sent is not None else delivered, delivered=delivered, opens=opens,
                        clicks=clicks, complaints=complaints)


def test_the_better_variant_gains_weight():
    result = reweigh(campaign(), {"a": stats(1_000, 20), "b": stats(1_000, 45)}, 2)
    weights = result.weights
    assert weights["b"] > 0.9 and weights["a"] < 0.1 and sum(weights.values()) == pytest.approx(1)
    numbers = {v.name: v for v in result.variants}
    assert (numbers["b"].alpha, numbers["b"].beta) == (46, 956) and numbers["b"].p_best > 0.99
    assert result.reason.startswith("round 2: a 5% (click rate 2% of 1,000 delivered), b 95%")


def test_equal_variants_keep_about_equal_weights():
    weights = reweigh(campaign(), {"a": stats(1_000, 30), "b": stats(1_000, 30)}, 2).weights
    assert weights["a"] == pytest.approx(0.5, abs=0.03) and weights["b"] == pytest.approx(0.5, abs=0.03)


def test_the_metric_decides_what_counts_as_a_success():
    numbers = {"a": stats(1_000, clicks=50, opens=100), "b": stats(1_000, clicks=10, opens=400)}
    assert reweigh(campaign(metric="click"), numbers, 2).weights["a"] > 0.9
    assert reweigh(campaign(metric="open"), numbers, 2).weights["b"] > 0.9


def test_the_floor_holds_for_a_hopeless_variant():
    result = reweigh(campaign(("a", "b", "c"), min_share=0.1), {"a": stats(2_000, 10), "b": stats(2_000, 200),
                                                                "c": stats(2_000, 12)}, 3)
    assert result.weights["a"] == pytest.approx(0.1) and result.weights["c"] == pytest.approx(0.1)
    assert result.weights["b"] == pytest.approx(0.8)
    assert "floored at the minimum share 10%" in {v.name: v for v in result.variants}["a"].note


def test_floor_shares_keeps_the_proportions_of_the_variants_above_it():
    assert floor_shares({"a": 0.6, "b": 0.38, "c": 0.02}, 0.05) == pytest.approx(
        {"a": 0.6 / 0.98 * 0.95, "b": 0.38 / 0.98 * 0.95, "c": 0.05})
    assert floor_shares({"a": 0.0, "b": 0.0, "c": 1.0}, 0.0) == {"a": 0.0, "b": 0.0, "c": 1.0}
    assert sum(floor_shares({"a": 0.97, "b": 0.02, "c": 0.01}, 0.3).values()) == pytest.approx(1)


def test_a_variant_shown_over_the_complaint_halt_level_gets_weight_zero_and_the_reason_says_so():
    camp = campaign()
    # 3 complaints in 1,000 sends: at 95% the lower bound is above the 0.08% halt level
    assert lower_bound(3, 1_000, camp.thresholds.confidence) > camp.thresholds.complaint.halt
    result = reweigh(camp, {"a": stats(1_000, 10), "b": stats(1_000, 90, complaints=3)}, 2)
    assert result.weights == {"a": 1.0, "b": 0.0}
    b = {v.name: v for v in result.variants}["b"]
    assert b.p_best == 0 and b.complaint_bound > camp.thresholds.complaint.halt
    assert b.note.startswith("complaint guard: 3 complaints of 1,000 sends") and "not sent again" in b.note
    assert "b at 0 (complaint guard)" in result.reason


def test_one_complaint_early_does_not_trip_the_guard():
    result = reweigh(campaign(), {"a": stats(300, 5), "b": stats(300, 15, complaints=1)}, 2)
    assert result.weights["b"] > 0.5  # its bound is below the halt level: evidence, not one unlucky event


def test_a_variant_at_zero_stays_at_zero_in_later_rounds():
    result = reweigh(campaign(), {"a": stats(2_000, 10), "b": stats(1_000, 90, complaints=3)}, 3,
                     previous={"a": 1.0, "b": 0.0})
    assert result.weights["b"] == 0 and "since an earlier round" in {v.name: v for v in result.variants}["b"].note


def test_every_variant_guarded_stops_the_campaign():
    result = reweigh(campaign(), {"a": stats(1_000, 10, complaints=4), "b": stats(1_000, 9, complaints=5)}, 2)
    assert result.stop and result.weights == {"a": 0.0, "b": 0.0} and "nothing more is sent" in result.reason
    assert result.to_dict()["stop"] is True


def test_a_reweighting_is_reproducible_and_each_round_has_its_own_seed():
    numbers = {"a": stats(400, 12), "b": stats(400, 16)}
    first, again = reweigh(campaign(), numbers, 2), reweigh(campaign(), numbers, 2)
    assert first == again and first.to_dict() == again.to_dict()
    assert seed("bandit-unit", 2) != seed("bandit-unit", 3) != seed("other", 3)
    assert first.seed == seed("bandit-unit", 2) and first.seed < 2**53  # exact as a JSON number
    assert first.draws == DRAWS


def test_p_best_estimates_the_probability_of_being_best():
    import random
    chances = p_best({"a": (11, 91), "b": (11, 91)}, random.Random(1))
    assert chances["a"] == pytest.approx(0.5, abs=0.02) and sum(chances.values()) == pytest.approx(1)


def test_a_round_out_of_range_is_refused():
    with pytest.raises(ValueError, match="round_number: 1 is not a reweighted round"):
        reweigh(campaign(), {}, 1)
    with pytest.raises(ValueError, match="round_number: 6 is not a reweighted round"):
        reweigh(campaign(), {}, 6)


def test_rounds_are_of_equal_size_and_independent_of_the_variant():
    camp = campaign(rounds=4)
    addresses = [f"user{i}@example.org" for i in range(8_000)]
    split = split_audience(camp, addresses, set())
    assert list(split.cohorts) == ["round-1", "round-2", "round-3", "round-4"]
    sizes = [len(m) for m in split.cohorts.values()]
    assert sum(sizes) == len(addresses) - len(split.holdout) and min(sizes) > 0.9 * max(sizes)
    first = Counter(v for _, v in split.cohorts["round-1"])
    assert first["a"] == pytest.approx(first["b"], rel=0.15)
    assert all(bandit_round(camp, a) == int(name[-1]) for name, m in split.cohorts.items() for a, _ in m)


def test_a_later_round_recipient_s_variant_is_a_pure_function_of_the_weights():
    camp = campaign()
    addresses = [f"user{i}@example.org" for i in range(5_000)]
    got = [round_variant(camp, {"a": 0.2, "b": 0.8}, a) for a in addresses]
    assert got == [round_variant(camp, {"a": 0.2, "b": 0.8}, a) for a in addresses]
    sent = Counter(v for v in got if v is not None)
    assert sent["b"] / sum(sent.values()) == pytest.approx(0.8, abs=0.03)
    assert {a for a, v in zip(addresses, got, strict=True) if v is None} == {
        a for a in addresses if assign_variant(camp, a) == HOLDOUT}
    assert {round_variant(camp, {"a": 1.0, "b": 0.0}, a) for a in addresses} <= {"a", None}
    assert {round_variant(camp, {"a": 0.0, "b": 0.0}, a) for a in addresses} == {None}


def test_bandit_fields_round_trip_and_take_their_defaults():
    camp = campaign()
    assert camp.ab.to_dict() == {"mode": "bandit", "metric": "click", "rounds": 5, "round_seconds": 3600,
                                 "min_share": 0.05}
    assert parse_campaign(camp.to_dict()) == camp
    given = campaign(rounds=3, round_seconds=600, min_share=0.0, metric="open")
    assert (given.ab.rounds, given.ab.round_seconds, given.ab.min_share, given.ab.metric) == (3, 600, 0.0, "open")
