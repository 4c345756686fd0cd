"""Bandit mode: between rounds of the send, weight moves toward the variant doing better. Pure, stdlib only.

The metric is test-then-winner's (app.domain.winner): unique openers or clickers over delivered, counted once per
person. Before each round after the first, from the campaign's counters so far:

1. Complaint guard: a variant whose complaint rate's one-sided lower bound (app.domain.breaker.lower_bound, at
   thresholds.confidence: the breaker's own bound) is above the complaint halt level gets weight 0, and a variant
   at 0 in an earlier round stays at 0: it is never sent again.
2. Thompson sampling: each variant left has the posterior Beta(1 + successes, 1 + failures) (a uniform prior);
   its probability of being the best is estimated by DRAWS Monte Carlo draws from the posteriors, with a random
   generator seeded from the campaign id and the round, so a reweighting computed again gives the same numbers.
3. The new weights are those probabilities, each floored at ab.min_share and renormalized to sum to 1 (the
   variants above the floor keep their proportions among themselves), so every variant left keeps being explored.

A recipient of a later round gets its variant from that round's weights (round_variant): a pure function of the
campaign, the weights and the address, so a retry or a resume of a batch sends the same variant to each.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from app.domain.breaker import lower_bound
from app.domain.campaign import HOLDOUT, Campaign, assign_variant
from app.domain.winner import VariantStats

DRAWS = 10_000  # Monte Carlo draws per reweighting: the probabilities to about +-0.005
_DIGITS = 6  # weights and probabilities as recorded


@dataclass(frozen=True)
class VariantWeight:
    """One variant's numbers in a reweighting."""

    name: str
    sent: int
    delivered: int
    successes: int  # unique openers or clickers
    complaints: int
    complaint_bound: float  # the one-sided lower bound of complaints / sent
    alpha: int  # the posterior Beta(alpha, beta): 1 + successes
    beta: int  # 1 + failures (delivered - successes)
    p_best: float  # the probability of being the best (0 for a guarded variant)
    weight: float  # the share of the next round
    note: str  # why the weight is what it is

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sent": self.sent, "delivered": self.delivered, "successes": self.successes,
                "complaints": self.complaints, "complaint_bound": self.complaint_bound, "alpha": self.alpha,
                "beta": self.beta, "p_best": self.p_best, "weight": self.weight, "note": self.note}


@dataclass(frozen=True)
class Reweighting:
    """The weights of one round (2 to ab.rounds), and how they came."""

    round: int
    metric: str
    seed: int
    draws: int
    variants: tuple[VariantWeight, ...]  # in the campaign's order
    reason: str

    @property
    def weights(self) -> dict[str, float]:
        return {v.name: v.weight for v in self.variants}

    def to_dict(self) -> dict[str, Any]:
        return {"round": self.round, "metric": self.metric, "seed": self.seed, "draws": self.draws,
                "weights": self.weights, "variants": [v.to_dict() for v in self.variants], "reason": self.reason,
                "stop": self.stop}

    @property
    def stop(self) -> bool:
        """Every weight is 0: nothing more is sent."""
        return not any(v.weight > 0 for v in self.variants)


def seed(campaign_id: str, round_number: int) -> int:
    """The random generator's seed of a reweighting: fixed by the campaign and the round."""
    digest = hashlib.sha256(f"bandit\x00{campaign_id}\x00{round_number}".encode()).digest()
    return int.from_bytes(digest[:6], "big")  # 48 bits: exact as a JSON number (a double), as JSONata holds it


def p_best(posteriors: Mapping[str, tuple[int, int]], rng: random.Random, draws: int = DRAWS) -> dict[str, float]:
    """Each arm's probability of having the highest rate, from `draws` draws of its Beta(alpha, beta) posterior
    (the first arm wins a tie)."""
    names = list(posteriors)
    wins = dict.fromkeys(names, 0)
    for _ in range(draws):
        samples = [rng.betavariate(*posteriors[name]) for name in names]
        wins[names[samples.index(max(samples))]] += 1
    return {name: wins[name] / draws for name in names}


def floor_shares(shares: Mapping[str, float], least: float) -> dict[str, float]:
    """`shares` (summing to 1) with each at least `least` and the sum 1 again: the ones under the floor are raised to
    it, the others scaled down in proportion to fill what is left (repeated until none falls under)."""
    if least * len(shares) > 1:
        raise ValueError(f"least: {least} for {len(shares)} variants is over 1 in all")
    floored: set[str] = set()
    out = dict(shares)
    while True:
        free = [name for name in out if name not in floored]
        room = 1 - least * len(floored)
        total = sum(shares[name] for name in free)
        out = {name: least if name in floored else (shares[name] / total * room if total else room / len(free))
               for name in out}
        under = {name for name in free if out[name] < least}
        if not under:
            return out
        floored |= under


def reweigh(campaign: Campaign, stats_by_variant: Mapping[str, VariantStats], round_number: int,
            previous: Mapping[str, float] | None = None, draws: int = DRAWS) -> Reweighting:
    """The weights of round `round_number` (2 to ab.rounds) from the counters so far; previous: the last round's
    weights (None: the campaign's own), whose zeros stay zero. See the module docstring."""
    if not 2 <= round_number <= campaign.ab.rounds:
        raise ValueError(f"round_number: {round_number} is not a reweighted round (2 to {campaign.ab.rounds})")
    ab, thresholds = campaign.ab, campaign.thresholds
    halt = thresholds.complaint.halt
    rows: dict[str, dict[str, Any]] = {}
    for variant in campaign.variants:
        stats = stats_by_variant.get(variant.name, VariantStats())
        successes = stats.opens if ab.metric == "open" else stats.clicks
        if min(stats.sent, stats.delivered, successes, stats.complaints) < 0:
            raise ValueError(f"stats[{variant.name}]: counts cannot be negative")
        successes = min(successes, stats.delivered)  # at least once counters: never more people than delivered
        bound = lower_bound(min(stats.complaints, stats.sent), stats.sent, thresholds.confidence)
        if previous is not None and not previous.get(variant.name):
            note = "weight 0 since an earlier round: not sent again"
        elif bound > halt:
            note = (f"complaint guard: {stats.complaints:,} complaints of {stats.sent:,} sends, at "
                    f"{_pct(thresholds.confidence)} confidence at least {_pct(bound)}, above the halt level "
                    f"{_pct(halt)}: weight 0, not sent again")
        else:
            note = ""
        rows[variant.name] = {"sent": stats.sent, "delivered": stats.delivered, "successes": successes,
                              "complaints": stats.complaints, "complaint_bound": round(bound, _DIGITS),
                              "alpha": 1 + successes, "beta": 1 + stats.delivered - successes, "note": note}
    eligible = {name: (row["alpha"], row["beta"]) for name, row in rows.items() if not row["note"]}
    random_seed = seed(campaign.id, round_number)
    best = p_best(eligible, random.Random(random_seed), draws) if len(eligible) > 1 else dict.fromkeys(eligible, 1.0)
    shares = floor_shares(best, ab.min_share) if eligible else {}
    variants = []
    for name, row in rows.items():
        weight = round(shares.get(name, 0.0), _DIGITS)
        note = row.pop("note")
        if not note:
            note = f"probability of being best {_pct(best[name])}"
            if best[name] < ab.min_share:
                note += f", floored at the minimum share {_pct(ab.min_share)}"
        variants.append(VariantWeight(name=name, **row, p_best=round(best.get(name, 0.0), _DIGITS), weight=weight,
                                      note=note))
    return Reweighting(round_number, ab.metric, random_seed, draws if len(eligible) > 1 else 0, tuple(variants),
                       _reason(round_number, variants, ab.metric))


def _reason(round_number: int, variants: list[VariantWeight], metric: str) -> str:
    sent = [v for v in variants if v.weight > 0]
    guarded = [v.name for v in variants if v.weight == 0]
    if not sent:
        return f"round {round_number}: every variant is at weight 0 (complaint guard): nothing more is sent"
    shares = ", ".join(f"{v.name} {_pct(v.weight)} ({metric} rate {_pct(v.successes / max(v.delivered, 1))} of "
                       f"{v.delivered:,} delivered)" for v in sent)
    tail = f"; {', '.join(guarded)} at 0 (complaint guard)" if guarded else ""
    return f"round {round_number}: {shares}{tail}"


def round_variant(campaign: Campaign, weights: Mapping[str, float], address: str) -> str | None:
    """The variant a later round's recipient gets from that round's weights, or None (every weight is 0, or the
    address is held out). A variant at weight 0 is never drawn."""
    if assign_variant(campaign, address) == HOLDOUT:
        return None
    chosen = tuple(replace(v, weight=float(weights[v.name])) for v in campaign.variants if weights.get(v.name, 0) > 0)
    if not chosen:
        return None
    return assign_variant(replace(campaign, variants=chosen), address)


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.3g}%"
