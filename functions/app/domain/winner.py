"""Test-then-winner: what the remainder gets, from the test cohort's numbers. Pure, stdlib only.

The metric is unique recipients who opened (ab.metric "open") or clicked ("click") over those delivered (sent
less bounces, rejects and rendering failures; see stats_from_counters), so a bounce does not count as a failure of
the content. Opens and clicks must be counted once per recipient (first open, first click), not per event: a
proportion test needs successes <= delivered.

1. Complaint guard: a variant whose complaint rate (complaints / sent, as the breaker counts it) is shown to be
   above the campaign's complaint halt level cannot win, and is never sent to the remainder. Shown as the breaker
   shows it: the one-sided lower Wilson bound of the rate at thresholds.confidence (app.domain.breaker.lower_bound)
   is above the halt level. Evidence, not one unlucky event: with the defaults (0.08%, 95%) one complaint among
   1,000 test sends (bound 0.022%) or two (0.066%) leave the variant in the running; three (0.12%) or ten (0.6%)
   exclude it.
2. Minimum sample: every variant left needs ab.min_sample_per_variant delivered, or there is no winner.
3. The best rate among them is tested against each other one with a two-sided two-proportion z-test (pooled);
   it wins when every p-value is below (1 - ab.confidence) / comparisons (Bonferroni), so that among equal
   variants a winner is declared falsely at most 1 - confidence of the time, however many there are.
   If the guard leaves one variant with its sample, it wins by elimination.
4. No winner: ab.no_winner applies. send_control sends the first variant (the control), split sends each
   recipient its weighted variant, stop sends nothing more. A variant excluded by the guard is never sent:
   split divides among the others, and send_control with an excluded control stops.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any

from app.domain.breaker import lower_bound
from app.domain.campaign import HOLDOUT, SEND_CONTROL, SPLIT, STOP, AbTest, Campaign, assign_variant

WINNER = "winner"  # Decision.applied_policy when a variant won; else the no-winner policy that applied


@dataclass(frozen=True)
class VariantStats:
    """One variant's numbers from the test cohort."""

    sent: int = 0
    delivered: int = 0
    opens: int = 0  # recipients who opened at least once
    clicks: int = 0  # recipients who clicked at least once
    complaints: int = 0


@dataclass(frozen=True)
class VariantResult:
    name: str
    sent: int
    delivered: int  # the metric's denominator
    successes: int  # unique openers or clickers
    rate: float  # successes / delivered
    complaints: int
    complaint_rate: float  # complaints / sent
    eligible: bool  # False: shown over the complaint halt level (complaint_bound above it), cannot win
    note: str  # why not eligible, or ""
    complaint_bound: float = 0.0  # the one-sided lower confidence bound of complaint_rate

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sent": self.sent, "delivered": self.delivered, "successes": self.successes,
                "rate": self.rate, "complaints": self.complaints, "complaint_rate": self.complaint_rate,
                "eligible": self.eligible, "note": self.note, "complaint_bound": self.complaint_bound}


@dataclass(frozen=True)
class Decision:
    winner: str | None  # the variant that won, or None
    reason: str
    numbers: tuple[VariantResult, ...]  # per variant, in the campaign's order
    p_value: float | None  # the largest p-value of the best variant against the others; None if not tested
    applied_policy: str  # "winner", or the no-winner policy that applied: "send_control", "split" or "stop"
    remainder: tuple[str, ...]  # the variants the remainder is split among by weight; () sends nothing more
    metric: str
    alpha: float | None  # the p-value each comparison had to be below

    def to_dict(self) -> dict[str, Any]:
        return {"winner": self.winner, "reason": self.reason, "numbers": [n.to_dict() for n in self.numbers],
                "p_value": self.p_value, "applied_policy": self.applied_policy, "remainder": list(self.remainder),
                "metric": self.metric, "alpha": self.alpha}


def two_proportion_p_value(successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test; 1.0 when it cannot tell (no variance)."""
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b))
    if se == 0:
        return 1.0
    z = (successes_a / trials_a - successes_b / trials_b) / se
    return 2 * (1 - NormalDist().cdf(abs(z)))


def pick_winner(stats_by_variant: Mapping[str, VariantStats], ab: AbTest, complaint_halt: float, confidence: float,
                control: str | None = None) -> Decision:
    """The decision for the remainder; see the module docstring. confidence: of the complaint guard's lower bound
    (the campaign's thresholds.confidence). control: the first variant unless named."""
    if not stats_by_variant:
        raise ValueError("stats_by_variant: no variants")
    control = control if control is not None else next(iter(stats_by_variant))
    if control not in stats_by_variant:
        raise ValueError(f"control: {control!r} is not among the variants {sorted(stats_by_variant)}")
    numbers = tuple(_result(name, stats, ab.metric, complaint_halt, confidence)
                    for name, stats in stats_by_variant.items())

    def decide(winner: VariantResult, reason: str, p_value: float | None = None,
               alpha: float | None = None) -> Decision:
        return Decision(winner.name, reason, numbers, p_value, WINNER, (winner.name,), ab.metric, alpha)

    def no_winner(reason: str, p_value: float | None = None, alpha: float | None = None) -> Decision:
        policy, remainder, why = _no_winner_policy(ab.no_winner, numbers, control)
        return Decision(None, f"no winner: {reason}; {why}", numbers, p_value, policy, remainder, ab.metric, alpha)

    candidates = [n for n in numbers if n.eligible]
    if not candidates:
        return no_winner("every variant is over the complaint halt level")
    short = [n for n in candidates if n.delivered < ab.min_sample_per_variant]
    if short:
        counts = ", ".join(f"{n.name} {n.delivered:,}" for n in short)
        return no_winner(f"too small a sample (delivered: {counts}; {ab.min_sample_per_variant:,} needed per "
                         "variant)")
    best = max(candidates, key=lambda n: n.rate)  # the first of equals: the control when it ties
    if len(candidates) == 1:
        excluded = ", ".join(n.name for n in numbers if not n.eligible)
        if not excluded:
            return decide(best, f"{best.name} is the only variant")
        return decide(best, f"{best.name} wins by elimination: {excluded} over the complaint halt level")
    others = [n for n in candidates if n is not best]
    p_values = {n.name: two_proportion_p_value(best.successes, best.delivered, n.successes, n.delivered)
                for n in others}
    p_value = max(p_values.values())
    alpha = (1 - ab.confidence) / len(others)
    versus = ", ".join(f"{n.name} {_pct(n.rate)} (p={p_values[n.name]:.3g})" for n in others)
    summary = f"{best.name} {ab.metric} rate {_pct(best.rate)} vs {versus}; needs p < {alpha:.3g}"
    if p_value < alpha:
        return decide(best, f"{best.name} wins: {summary}", p_value, alpha)
    return no_winner(f"no variant is significantly better: {summary}", p_value, alpha)


def _result(name: str, stats: VariantStats, metric: str, complaint_halt: float, confidence: float) -> VariantResult:
    successes = stats.opens if metric == "open" else stats.clicks
    counts = {"sent": stats.sent, "delivered": stats.delivered, metric + "s": successes,
              "complaints": stats.complaints}
    negative = [k for k, v in counts.items() if v < 0]
    if negative:
        raise ValueError(f"stats[{name}]: {', '.join(negative)} cannot be negative")
    if successes > stats.delivered:
        raise ValueError(f"stats[{name}]: {successes} {metric}s exceed {stats.delivered} delivered; count each "
                         f"recipient's first {metric} only")
    rate = successes / stats.delivered if stats.delivered else 0.0
    trials = max(stats.sent, stats.complaints)  # more complaints than sends (counted first) is a rate of 1
    complaint_rate = stats.complaints / trials if stats.complaints else 0.0
    bound = lower_bound(stats.complaints, trials, confidence) if stats.complaints else 0.0
    eligible = bound <= complaint_halt
    note = "" if eligible else (f"complaint rate {_pct(complaint_rate)} ({stats.complaints:,} of {trials:,} sends): "
                                f"at {_pct(confidence)} confidence at least {_pct(bound)}, above the halt level "
                                f"{_pct(complaint_halt)}")
    return VariantResult(name, stats.sent, stats.delivered, successes, rate, stats.complaints, complaint_rate,
                         eligible, note, bound)


def _no_winner_policy(policy: str, numbers: tuple[VariantResult, ...], control: str
                      ) -> tuple[str, tuple[str, ...], str]:
    """(applied policy, remainder variants, why): a variant over the complaint level is never sent."""
    eligible = tuple(n.name for n in numbers if n.eligible)
    if policy == SEND_CONTROL:
        if control in eligible:
            return SEND_CONTROL, (control,), f"policy send_control: the remainder gets the control {control}"
        return STOP, (), f"policy send_control, but the control {control} is over the complaint halt level: stop"
    if policy == SPLIT:
        if not eligible:
            return STOP, (), "policy split, but every variant is over the complaint halt level: stop"
        return SPLIT, eligible, f"policy split: the remainder gets {', '.join(eligible)} by weight"
    return STOP, (), "policy stop: nothing more is sent"


def decide_winner(campaign: Campaign, stats_by_variant: Mapping[str, VariantStats]) -> Decision:
    """pick_winner with the campaign's ab settings, complaint halt level, confidence and control, in the campaign's
    variant order; a variant with no stats counts as all zeros, and stats of names not in the campaign are ignored."""
    ordered = {v.name: stats_by_variant.get(v.name, VariantStats()) for v in campaign.variants}
    return pick_winner(ordered, campaign.ab, campaign.thresholds.complaint.halt, campaign.thresholds.confidence,
                       control=campaign.control.name)


def variant_for_remainder(campaign: Campaign, decision: Decision, address: str) -> str | None:
    """The variant a remainder recipient gets after the decision, or None (stop, or the address is held out)."""
    return remainder_variant(campaign, decision.remainder, address)


def remainder_variant(campaign: Campaign, remainder: Sequence[str], address: str) -> str | None:
    """The variant a remainder recipient gets among `remainder` (the decision's), or None (nothing more is sent,
    or the address is held out). With several remainder variants each recipient keeps its weighted draw among
    them: with all of them, exactly its assign_variant variant."""
    if not remainder or assign_variant(campaign, address) == HOLDOUT:
        return None
    if len(remainder) == 1:
        return remainder[0]
    subset = tuple(v for v in campaign.variants if v.name in remainder)
    return assign_variant(replace(campaign, variants=subset), address)


def stats_from_counters(stats: Mapping[str, Any], opens: str = "unique_opens", clicks: str = "unique_clicks"
                        ) -> dict[str, VariantStats]:
    """VariantStats per variant from a campaign stats item's `counter#variant` attributes (`sent`, the bounce,
    reject and rendering failure counters, `complaints`, and the unique open and click counters named by `opens`
    and `clicks`).

    Delivered is sent less bounces (hard and soft), rejects and rendering failures (SES sends nothing for a message
    that failed to render): the configuration set publishes Delivery events only for recipients on probation (their
    cost would be ~80% of the feedback bill), and what SES did not bounce, reject or fail to render it delivered,
    once the bounces are in (the evaluation window's job)."""
    names = {"sent": "sent", "complaints": "complaints", opens: "opens", clicks: "clicks",
             "hard_bounces": "undelivered", "soft_bounces": "undelivered", "rejects": "undelivered",
             "rendering_failures": "undelivered"}
    fields: dict[str, dict[str, int]] = {}
    for key, value in stats.items():
        counter, _, variant = str(key).partition("#")
        if variant and counter in names:
            target = fields.setdefault(variant, {})
            target[names[counter]] = target.get(names[counter], 0) + int(value)
    return {name: VariantStats(**{k: v for k, v in values.items() if k != "undelivered"},
                               delivered=max(0, values.get("sent", 0) - values.get("undelivered", 0)))
            for name, values in sorted(fields.items())}


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.3g}%"
