"""Test-then-winner: the decision for the remainder, and who gets what. Pure (no AWS)."""

import json
import random
from collections import Counter

import pytest
from app.domain.campaign import HOLDOUT, AbTest, assign_variant, parse_campaign
from app.domain.winner import (
    WINNER,
    VariantStats,
    decide_winner,
    pick_winner,
    stats_from_counters,
    two_proportion_p_value,
    variant_for_remainder,
)

AB = AbTest(mode="test_then_winner")  # click, 500 per variant, 95%, send_control
HALT = 0.0008  # the default complaint halt level
CONFIDENCE = 0.95  # the default thresholds.confidence


def stats(delivered, clicks, complaints=0, opens=0, sent=None):
    return VariantStats(sent=sent if sent is not None else delivered, delivered=delivered, opens=opens,
                        clicks=clicks, complaints=complaints)


def test_a_clearly_better_variant_wins():
    decision = pick_winner({"a": stats(5_000, 350), "b": stats(5_000, 500)}, AB, HALT, CONFIDENCE)
    assert decision.winner == "b" and decision.applied_policy == WINNER and decision.remainder == ("b",)
    assert decision.p_value < 1e-6 and decision.alpha == pytest.approx(0.05)
    assert decision.reason.startswith("b wins: b click rate 10% vs a 7% (p=")
    assert [(n.name, n.delivered, n.successes, n.rate) for n in decision.numbers] == [
        ("a", 5_000, 350, 0.07), ("b", 5_000, 500, 0.10)]


@pytest.mark.parametrize(
    ("policy", "applied", "remainder"),
    [("send_control", "send_control", ("a",)), ("split", "split", ("a", "b")), ("stop", "stop", ())],
)
def test_equal_variants_apply_the_no_winner_policy(policy, applied, remainder):
    ab = AbTest(mode="test_then_winner", no_winner=policy)
    decision = pick_winner({"a": stats(5_000, 400), "b": stats(5_000, 410)}, ab, HALT, CONFIDENCE)
    assert decision.winner is None
    assert (decision.applied_policy, decision.remainder) == (applied, remainder)
    assert decision.p_value > 0.05
    assert decision.reason.startswith("no winner: no variant is significantly better: b click rate 8.2% vs a 8%")
    assert f"policy {policy}" in decision.reason


def test_an_insufficient_sample_names_no_winner_however_big_the_gap():
    decision = pick_winner({"a": stats(499, 10), "b": stats(5_000, 2_000)}, AB, HALT, CONFIDENCE)
    assert decision.winner is None and decision.p_value is None
    assert decision.applied_policy == "send_control" and decision.remainder == ("a",)
    assert "too small a sample (delivered: a 499; 500 needed per variant)" in decision.reason


def test_the_better_clicking_variant_with_too_many_complaints_cannot_win():
    decision = pick_winner({"a": stats(5_000, 300, complaints=1), "b": stats(5_000, 900, complaints=10)}, AB, HALT,
                           CONFIDENCE)
    assert decision.winner == "a"  # by elimination: b's 0.2% complaints are at least 0.12% at 95%, over 0.08%
    assert decision.reason == "a wins by elimination: b over the complaint halt level"
    a, b = decision.numbers
    assert a.eligible and a.complaint_bound < HALT
    assert not b.eligible and b.complaint_rate == 0.002 and b.complaint_bound == pytest.approx(0.001196, abs=1e-6)
    assert b.note == ("complaint rate 0.2% (10 of 5,000 sends): at 95% confidence at least 0.12%, above the halt "
                      "level 0.08%")


def test_one_complaint_in_a_thousand_test_sends_does_not_disqualify_a_variant():
    # 0.1% is over the 0.08% halt level, but one complaint proves nothing: its bound is 0.022%.
    decision = pick_winner({"a": stats(1_000, 20), "b": stats(1_000, 60, complaints=1)}, AB, HALT, CONFIDENCE)
    b = decision.numbers[1]
    assert b.complaint_rate == 0.001 and b.eligible and b.note == ""
    assert b.complaint_bound == pytest.approx(0.000223, abs=1e-6)
    assert decision.winner == "b"


def test_ten_complaints_in_a_thousand_test_sends_disqualify_a_variant():
    decision = pick_winner({"a": stats(1_000, 20), "b": stats(1_000, 60, complaints=10)}, AB, HALT, CONFIDENCE)
    b = decision.numbers[1]
    assert not b.eligible and b.complaint_bound > HALT
    assert "at 95% confidence at least 0.599%, above the halt level 0.08%" in b.note
    assert decision.winner == "a" and decision.reason == "a wins by elimination: b over the complaint halt level"


def test_the_guard_uses_the_campaigns_confidence():
    # Two complaints in 1,000: at least 0.066% at 95% (eligible), at least 0.085% at 90% (excluded).
    numbers = {"a": stats(1_000, 20), "b": stats(1_000, 60, complaints=2)}
    assert pick_winner(numbers, AB, HALT, 0.95).numbers[1].eligible
    lax = pick_winner(numbers, AB, HALT, 0.90).numbers[1]
    assert not lax.eligible and "at 90% confidence at least" in lax.note


def test_a_guarded_variant_is_left_out_of_the_comparison_and_the_split():
    split = AbTest(mode="test_then_winner", no_winner="split")
    decision = pick_winner({"a": stats(5_000, 400), "b": stats(5_000, 900, complaints=10), "c": stats(5_000, 405)},
                           split, HALT, CONFIDENCE)
    assert decision.winner is None and decision.remainder == ("a", "c")
    assert decision.alpha == pytest.approx(0.05)  # one comparison: c against a


def test_a_guarded_control_is_not_sent_by_send_control():
    decision = pick_winner({"a": stats(5_000, 400, complaints=15), "b": stats(100, 9), "c": stats(100, 9)}, AB, HALT,
                           CONFIDENCE)
    assert decision.winner is None and decision.applied_policy == "stop" and decision.remainder == ()
    assert "the control a is over the complaint halt level: stop" in decision.reason


def test_every_variant_over_the_complaint_level_stops():
    decision = pick_winner({"a": stats(5_000, 400, complaints=15), "b": stats(5_000, 400, complaints=15)},
                           AbTest(mode="test_then_winner", no_winner="split"), HALT, CONFIDENCE)
    assert (decision.winner, decision.applied_policy, decision.remainder) == (None, "stop", ())
    assert "every variant is over the complaint halt level" in decision.reason


def test_three_variants_one_clearly_best():
    decision = pick_winner({"a": stats(4_000, 200), "b": stats(4_000, 240), "c": stats(4_000, 360)}, AB, HALT,
                           CONFIDENCE)
    assert decision.winner == "c"
    assert decision.alpha == pytest.approx(0.025)  # Bonferroni over two comparisons
    assert decision.p_value == pytest.approx(two_proportion_p_value(360, 4_000, 240, 4_000))


def test_three_variants_the_best_must_beat_each_other_one():
    # c beats a clearly but not b: no winner.
    decision = pick_winner({"a": stats(4_000, 200), "b": stats(4_000, 340), "c": stats(4_000, 360)}, AB, HALT,
                           CONFIDENCE)
    assert decision.winner is None and decision.remainder == ("a",)
    assert two_proportion_p_value(360, 4_000, 200, 4_000) < 0.001


def test_a_tie_goes_to_no_winner_not_to_the_first():
    decision = pick_winner({"a": stats(1_000, 0), "b": stats(1_000, 0)}, AB, HALT, CONFIDENCE)
    assert decision.winner is None and decision.p_value == 1.0


def test_the_open_metric_counts_opens():
    ab = AbTest(mode="test_then_winner", metric="open")
    decision = pick_winner({"a": stats(5_000, 900, opens=1_000), "b": stats(5_000, 100, opens=1_500)}, ab, HALT,
                           CONFIDENCE)
    assert decision.winner == "b" and decision.metric == "open"
    assert decision.numbers[1].successes == 1_500


def test_the_control_can_be_named():
    decision = pick_winner({"a": stats(10, 1), "b": stats(10, 1)}, AB, HALT, CONFIDENCE, control="b")
    assert decision.remainder == ("b",)
    with pytest.raises(ValueError, match="control: 'z' is not among the variants"):
        pick_winner({"a": stats(10, 1)}, AB, HALT, CONFIDENCE, control="z")


def test_event_counts_instead_of_unique_recipients_are_refused():
    with pytest.raises(ValueError, match=r"stats\[a\]: 120 clicks exceed 100 delivered; count each recipient's"):
        pick_winner({"a": stats(100, 120), "b": stats(100, 1)}, AB, HALT, CONFIDENCE)
    with pytest.raises(ValueError, match="no variants"):
        pick_winner({}, AB, HALT, CONFIDENCE)
    with pytest.raises(ValueError, match=r"stats\[a\]: complaints cannot be negative"):
        pick_winner({"a": stats(100, 1, complaints=-1)}, AB, HALT, CONFIDENCE)


def test_two_proportion_p_value_matches_the_textbook():
    # 10% of 1,000 against 7% of 1,000: pooled 8.5%, z = 2.405, two-sided p = 0.0162.
    assert two_proportion_p_value(100, 1_000, 70, 1_000) == pytest.approx(0.0162, abs=1e-4)
    assert two_proportion_p_value(70, 1_000, 100, 1_000) == two_proportion_p_value(100, 1_000, 70, 1_000)
    assert two_proportion_p_value(50, 100, 50, 100) == 1.0


def test_equal_variants_rarely_produce_a_winner():
    # Under the null the false-winner rate stays at or below 1 - confidence, with three variants too.
    rng = random.Random(5)
    ab = AbTest(mode="test_then_winner", min_sample_per_variant=600)
    trials = 300
    wins = 0
    for _ in range(trials):
        numbers = {name: stats(600, sum(rng.random() < 0.1 for _ in range(600))) for name in "abc"}
        wins += pick_winner(numbers, ab, HALT, CONFIDENCE).winner is not None
    assert wins / trials < 0.08


def test_decision_to_dict_is_json_ready():
    document = pick_winner({"a": stats(5_000, 350), "b": stats(5_000, 500)}, AB, HALT, CONFIDENCE).to_dict()
    assert json.loads(json.dumps(document)) == document
    assert document["winner"] == "b" and document["numbers"][0]["name"] == "a"


CAMPAIGN = parse_campaign({
    "id": "newsletter", "sender": "n@example.com", "audience": {"list_id": "l"},
    "variants": [{"name": "a", "weight": 2, "template": "t-a"}, {"name": "b", "template": "t-b"},
                 {"name": "c", "template": "t-c"}],
    "holdout_percent": 10,
    "ab": {"mode": "test_then_winner", "min_sample_per_variant": 100},
    "thresholds": {"complaint": {"warn": 0.001, "halt": 0.002}},
})
ADDRESSES = [f"u{i}@example.org" for i in range(6_000)]


def test_decide_winner_uses_the_campaign_order_control_and_complaint_level():
    decision = decide_winner(CAMPAIGN, {"c": stats(1_000, 50), "b": stats(1_000, 52, complaints=2),
                                        "a": stats(1_000, 51), "zz": stats(1_000, 999)})
    assert [n.name for n in decision.numbers] == ["a", "b", "c"]  # "zz" is not in the campaign
    assert decision.numbers[1].eligible  # 0.2% is not over this campaign's 0.2% halt level
    assert decision.remainder == ("a",)  # no winner: the control


def test_decide_winner_counts_a_variant_without_stats_as_zero():
    decision = decide_winner(CAMPAIGN, {"a": stats(1_000, 50), "b": stats(1_000, 52)})
    assert decision.winner is None and "c 0" in decision.reason


def test_the_remainder_gets_the_winner_and_the_holdout_nothing():
    decision = decide_winner(CAMPAIGN, {"a": stats(1_000, 50), "b": stats(1_000, 52), "c": stats(1_000, 200)})
    assert decision.winner == "c"
    for address in ADDRESSES[:500]:
        expected = None if assign_variant(CAMPAIGN, address) == HOLDOUT else "c"
        assert variant_for_remainder(CAMPAIGN, decision, address) == expected


def test_split_keeps_each_recipients_weighted_variant():
    decision = pick_winner({"a": stats(10, 1), "b": stats(10, 1), "c": stats(10, 1)},
                           AbTest(mode="test_then_winner", no_winner="split"), HALT, CONFIDENCE)
    assert decision.remainder == ("a", "b", "c")
    for address in ADDRESSES[:500]:
        original = assign_variant(CAMPAIGN, address)
        assert variant_for_remainder(CAMPAIGN, decision, address) == (None if original == HOLDOUT else original)


def test_split_among_the_variants_left_follows_their_weights():
    decision = pick_winner({"a": stats(1_000, 1), "b": stats(1_000, 1, complaints=50), "c": stats(1_000, 1)},
                           AbTest(mode="test_then_winner", no_winner="split"), HALT, CONFIDENCE)
    assert decision.remainder == ("a", "c")
    given = Counter(variant_for_remainder(CAMPAIGN, decision, a) for a in ADDRESSES)
    assert set(given) == {"a", "c", None}
    assert abs(given["a"] / (given["a"] + given["c"]) - 2 / 3) < 0.03  # weights 2 : 1


def test_stop_sends_the_remainder_nothing():
    decision = pick_winner({"a": stats(10, 1), "b": stats(10, 1)}, AbTest(mode="test_then_winner", no_winner="stop"),
                           HALT, CONFIDENCE)
    assert all(variant_for_remainder(CAMPAIGN, decision, a) is None for a in ADDRESSES[:100])


def test_stats_come_from_the_campaign_counters():
    from decimal import Decimal

    # Delivered is sent less bounces, rejects and rendering failures (Delivery events are published for probation only).
    item = {"campaign_id": "newsletter#stats", "sent": Decimal(10), "opens#a": Decimal(99),
            "sent#a": Decimal(1_000), "delivered#a": Decimal(3), "hard_bounces#a": Decimal(6),
            "soft_bounces#a": Decimal(3), "rejects#a": Decimal(1), "unique_opens#a": Decimal(300),
            "unique_clicks#a": Decimal(40), "complaints#a": Decimal(1), "sent#b": Decimal(1_000)}
    assert stats_from_counters(item) == {"a": VariantStats(1_000, 990, 300, 40, 1),
                                         "b": VariantStats(sent=1_000, delivered=1_000)}
    assert stats_from_counters(item, opens="opens")["a"].opens == 99


def test_a_message_that_failed_to_render_is_not_delivered_in_the_stats():
    from decimal import Decimal

    item = {"sent#a": Decimal(1_000), "rendering_failures#a": Decimal(200), "hard_bounces#a": Decimal(10)}

    assert stats_from_counters(item)["a"].delivered == 790
