"""The campaign breaker: bounce and complaint rates against the campaign's thresholds. Pure, stdlib only.

Rates are over sends: hard bounces / sent and complaints / sent, as SES's reputation metrics count them (soft
bounces are not counted: they say nothing about list quality and SES does not count them either).

- halt: sent >= thresholds.min_sends AND the one-sided lower Wilson score bound of the rate, at
  thresholds.confidence, is above the halt level. Evidence, not one unlucky event: with the defaults, one complaint
  never halts (at 500 sends its bound is 0.045%, under the 0.08% halt), while 1% complaints over 2,000 sends does
  (bound 0.695%). The bound is conservative by design: a 5% bounce rate over 1,000 sends is not yet proof of more
  than 4% (bound 3.98%); over 1,300 sends it is.
- warn: the point estimate is above the warn level, once WARN_MIN_SENDS sends are in (or min_sends, if lower,
  so a halt is never the first alert).
- ok: otherwise.

The breaker is evaluated many times during a send; each look at 95% can err, so over a campaign the chance of a
false halt is above 5% when the true rate sits right at the halt level, and far below it when the rate is at the
warn level or under. That is the intended trade: halting a campaign that is near the limit is cheap.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from app.domain.campaign import Levels, Thresholds

OK, WARN, HALT = "ok", "warn", "halt"
LEVELS = (OK, WARN, HALT)
BOUNCE, COMPLAINT = "bounce", "complaint"
WARN_MIN_SENDS = 100  # below this a rate is noise: 1 complaint in 50 sends is 2%
COUNTERS = {"sent": "sent", "hard_bounces": "bounces", "complaints": "complaints"}  # the counters ingestion writes


@dataclass(frozen=True)
class Counts:
    sent: int = 0
    bounces: int = 0  # hard bounces only
    complaints: int = 0


@dataclass(frozen=True)
class Verdict:
    level: str  # "ok", "warn" or "halt"
    metric: str  # the metric that decided the level: "bounce" or "complaint"
    rate: float  # events / sent, the point estimate
    bound: float  # the one-sided lower confidence bound of the rate
    reason: str  # for the alert and the operator
    sent: int = 0
    events: int = 0
    halt_level: float = 1.0  # what the bound was held against
    campaign_sent: int | None = None  # the whole campaign's sent when judged (`sent` may be one variant's)

    @property
    def halted(self) -> bool:
        return self.level == HALT

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "metric": self.metric, "rate": self.rate, "bound": self.bound,
                "reason": self.reason, "sent": self.sent, "events": self.events, "halt_level": self.halt_level,
                **({"campaign_sent": self.campaign_sent} if self.campaign_sent is not None else {})}


def lower_bound(events: int, trials: int, confidence: float) -> float:
    """The one-sided lower Wilson score bound of events / trials at `confidence` (0 when there are no trials)."""
    if trials <= 0:
        return 0.0
    z = NormalDist().inv_cdf(confidence)
    p = events / trials
    centre = p + z * z / (2 * trials)
    margin = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, (centre - margin) / (1 + z * z / trials))


def check_rate(metric: str, events: int, sent: int, levels: Levels, thresholds: Thresholds) -> Verdict:
    """One metric's verdict. More events than sends (feedback counted before its Send events) is a rate of 1."""
    if events < 0 or sent < 0:
        raise ValueError(f"{metric}: counts cannot be negative (sent {sent}, events {events})")
    events = min(events, sent)
    rate = events / sent if sent else 0.0
    bound = lower_bound(events, sent, thresholds.confidence)
    observed = f"{metric} rate {_pct(rate)} ({events:,} of {sent:,} sends)"
    confidence = f"at {_pct(thresholds.confidence)} confidence at least {_pct(bound)}"
    if sent >= thresholds.min_sends and bound > levels.halt:
        return Verdict(HALT, metric, rate, bound, f"{observed}: {confidence}, above the halt level "
                                                  f"{_pct(levels.halt)}", sent, events, levels.halt)
    if sent >= min(WARN_MIN_SENDS, thresholds.min_sends) and rate > levels.warn:
        if rate <= levels.halt:
            why = f"below the halt level {_pct(levels.halt)}"
        elif sent < thresholds.min_sends:
            why = f"no halt before {thresholds.min_sends:,} sends"
        else:
            why = f"not yet shown above the halt level {_pct(levels.halt)}: {confidence}"
        return Verdict(WARN, metric, rate, bound, f"{observed} is above the warn level {_pct(levels.warn)}; {why}",
                       sent, events, levels.halt)
    return Verdict(OK, metric, rate, bound, f"{observed} is within its thresholds", sent, events, levels.halt)


def evaluate(sent: int, bounces: int, complaints: int, thresholds: Thresholds) -> Verdict:
    """The campaign's verdict: the more severe of its bounce and complaint verdicts."""
    return worst([
        check_rate(COMPLAINT, complaints, sent, thresholds.complaint, thresholds),
        check_rate(BOUNCE, bounces, sent, thresholds.bounce, thresholds),
    ])


def evaluate_variants(counts_by_variant: Mapping[str, Counts], thresholds: Thresholds) -> dict[str, Verdict]:
    """Each variant's verdict on its own counts (min_sends applies per variant)."""
    return {name: evaluate(c.sent, c.bounces, c.complaints, thresholds) for name, c in counts_by_variant.items()}


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """The most severe verdict; between equals, the one whose rate is nearest its halt level (first on a tie)."""
    verdicts = list(verdicts)
    if not verdicts:
        raise ValueError("worst: no verdicts")
    return max(verdicts, key=lambda v: (LEVELS.index(v.level), v.rate / v.halt_level))


def counts_from_stats(stats: Mapping[str, Any]) -> tuple[Counts, dict[str, Counts]]:
    """The campaign's and each variant's Counts from its stats item (the counters SendBatch and ingestion write:
    `sent`, `hard_bounces`, `complaints`, and `name#variant` per variant). Other attributes are ignored; a missing
    counter is 0."""
    campaign: dict[str, int] = {}
    variants: dict[str, dict[str, int]] = {}
    for key, value in stats.items():
        counter, _, variant = str(key).partition("#")
        if counter not in COUNTERS:
            continue
        target = variants.setdefault(variant, {}) if variant else campaign
        target[COUNTERS[counter]] = int(value)
    return Counts(**campaign), {name: Counts(**fields) for name, fields in sorted(variants.items())}


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.3g}%"


# A message SES accepts but cannot render (a variable the template uses that the message's data lacks) is dropped,
# and SES publishes a Rendering Failure: nothing reaches the recipient. A few are a data problem of a few
# recipients; more than this share of the sends is the template or the campaign's data, as bad as a missing
# template, and the campaign FAILS (app.campaign_breaker.check_rendering) rather than drop its whole audience.
RENDERING_FAILURE_SHARE = 0.02
# ... once at least this many failed (or every message sent so far, when fewer were sent): one odd recipient early
# in a send is not the template's fault.
RENDERING_FAILURE_MIN = 10


def rendering_failed(failures: int, sent: int) -> bool:
    """Too many Rendering Failures for the sends (counters, at least once: a duplicate event may count twice)."""
    if failures <= 0 or sent <= 0:
        return False
    return failures >= min(RENDERING_FAILURE_MIN, sent) and failures > RENDERING_FAILURE_SHARE * sent
