"""Bandit against test-then-winner on the demo's population: the clicks each mode earns over the whole campaign, and
how many emails of the worse variant it sends, on the embedded engine.

    .venv/bin/python benchmarks/bandit.py [--recipients 10000] [--seeds 1,2,3] [--rounds N] [--min-share X]
        [--modes test_then_winner,bandit]

(from a worktree whose code is not the one installed: PYTHONPATH=src:functions first)

For each seed, the demo's list (sesflow.demo.audience: 10,000 recipients, 2.5% suppressed by the old provider) and
population (docs/feedback-population.json: 22% open and 2% click, the "teaser" subject line 28% and 4%; opens come
1 minute to 12 hours after delivery, clicks 5 s to 10 minutes after the open) get two campaigns, each on a fresh
stack through the real CampaignStateMachine with feedback ingested while it sends:

- test_then_winner: events/campaign/newsletter_test_then_winner.json (20% test cohort, 4 hours, two-proportion test
  on clicks, the remainder to the winner);
- bandit: events/campaign/newsletter_bandit.json (5 rounds an hour apart, Thompson sampling on clicks, 5% floor;
  --rounds and --min-share change its ab.rounds and ab.min_share).

Both run under the same campaign id, so each person answers a variant the same way in both (the population draws
per campaign id and address): the difference is which variant each person was sent. For scale, the clicks had
everyone got the teaser (the best a mode could do knowing the answer) and had everyone got the plain one, from
the same people's draws. Prints one JSON document (per seed, then the means); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = {"test_then_winner": ROOT / "events/campaign/newsletter_test_then_winner.json",
         "bandit": ROOT / "events/campaign/newsletter_bandit.json"}
CAMPAIGN_ID = "newsletter-benchmark"  # one id for both modes: the same people answer the same way
WORSE, BETTER = "plain", "teaser"  # the population's click rates: 2% and 4%


def clicked(model, message) -> bool:
    return any(r.get("eventType") == "Click" for r in model.records_for(message))


def run(mode: str, recipients: int, seed: int, ab: dict | None = None) -> dict:
    from sesflow.demo import audience, first_names, population, run_scenario, seed_audience
    from sesflow.engine.ses import simulator
    from sesflow.engine.stack import LocalStack

    definition = {**json.loads(MODES[mode].read_text()), "id": CAMPAIGN_ID}
    definition["ab"] = {**definition["ab"], **(ab or {})}
    statuses, model = audience(recipients, seed), population(seed)
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr), tempfile.TemporaryDirectory() as folder, \
            LocalStack(template_path=ROOT / "template.yaml", ses_identities=("example.com",)) as stack:
        simulator().configure(max_send_rate=1000, max_24h_send=1_000_000, feedback=model)
        seed_audience(stack, statuses, first_names(statuses, seed), Path(folder))
        with stack.poller(interval=0.05):
            outcome = run_scenario(stack, mode, definition, model)
        sent = [m for m in simulator().outbox if m.tags.get("campaign") == CAMPAIGN_ID and m.rendering_failure is None]
        rounds = [json.loads(e["S"]) for e in stack.client("dynamodb").get_item(
            TableName=stack.outputs["CampaignsTableName"], Key={"campaign_id": {"S": CAMPAIGN_ID}}
        )["Item"].get("bandit_rounds", {}).get("L", [])]
    by_variant = {name: sum(1 for m in sent if m.tags["variant"] == name) for name in (WORSE, BETTER)}
    clicks = {name: sum(1 for m in sent if m.tags["variant"] == name and clicked(model, m)) for name in by_variant}

    def had_all(variant: str) -> int:
        return sum(clicked(model, dataclasses.replace(m, tags={**m.tags, "variant": variant})) for m in sent)

    return {
        "mode": mode, "seed": seed, "status": outcome["status"], "duplicates": outcome["duplicates"],
        "emails": len(sent), "emails_by_variant": by_variant, "clicks": sum(clicks.values()),
        "clicks_by_variant": clicks, "clicks_had_all_teaser": had_all(BETTER), "clicks_had_all_plain": had_all(WORSE),
        "decision": (outcome.get("winner") or {}).get("reason"),
        "round_weights": [{"round": r["round"], **r["weights"]} for r in rounds],
        "parent_history_events": outcome["parent_history_events"],
        "virtual_hours": round(outcome["virtual_seconds"] / 3600, 2),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--modes", default=",".join(MODES), help="which modes to run (default: both)")
    parser.add_argument("--rounds", type=int, help="the bandit's ab.rounds (default: the sample's)")
    parser.add_argument("--min-share", type=float, help="the bandit's ab.min_share (default: the sample's)")
    args = parser.parse_args()
    tuned = {k: v for k, v in (("rounds", args.rounds), ("min_share", args.min_share)) if v is not None}
    seeds = [int(s) for s in args.seeds.split(",")]
    modes = [m for m in MODES if m in args.modes.split(",")]
    runs = []
    for seed in seeds:
        for mode in modes:
            print(f"seed {seed}: {mode} ...", file=sys.stderr, flush=True)
            runs.append(run(mode, args.recipients, seed, tuned if mode == "bandit" else None))
            print(f"  {json.dumps(runs[-1])}", file=sys.stderr, flush=True)
    means = {}
    for mode in modes:
        mine = [r for r in runs if r["mode"] == mode]
        means[mode] = {
            "clicks": round(statistics.mean(r["clicks"] for r in mine), 1),
            "emails_of_the_worse_variant": round(statistics.mean(r["emails_by_variant"][WORSE] for r in mine), 1),
            "emails": round(statistics.mean(r["emails"] for r in mine), 1),
            "clicks_had_all_teaser": round(statistics.mean(r["clicks_had_all_teaser"] for r in mine), 1),
            "clicks_had_all_plain": round(statistics.mean(r["clicks_had_all_plain"] for r in mine), 1),
            "virtual_hours": round(statistics.mean(r["virtual_hours"] for r in mine), 2),
        }
    print(json.dumps({"recipients": args.recipients, "seeds": seeds, "bandit_ab": tuned or "the sample's",
                      "runs": runs, "means": means}, indent=2))


if __name__ == "__main__":
    main()
