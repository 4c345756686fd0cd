"""Demo benchmark: wall time and peak memory of `sesflow demo` at 10,000 recipients (the default), and how they
grow at 30,000 and 100,000, on this machine.

    .venv/bin/python benchmarks/demo.py [--sizes 10000,30000,100000] [--seed 1]
    .venv/bin/python benchmarks/demo.py --sizes 10000 --against REV [--rounds 2]

With --against, the same demo also runs from a checkout of REV (a git worktree made for the run and removed
after), the two alternating for --rounds rounds so that both meet the same machine; it prints each run and the
ratio of this tree's median wall time and peak memory to REV's (what a change of the engine costs or saves).

Each size runs `sesflow demo --recipients N --json` in its own process (both scenarios: test-then-winner, then
the complaint spike that halts and is resumed), timed from outside, interpreter start included; peak memory
is that process's own maximum resident set, and the spike's halt point with the emails of each variant before it.
Prints one JSON document; progress goes to stderr. Targets: under 30 s for 10,000; the spike halts within 1,500
emails at every size (its variants alternate, so the bad one is seen early).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 30.0
HALT_TARGET_EMAILS = 1500  # the complaint spike halts within this many emails, whatever the list's size


def run(recipients: int, seed: int, root: Path = ROOT) -> dict:
    """One demo in its own process, from the tree at `root` (its src/ first on the path)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(root / "src")}
    with tempfile.TemporaryDirectory() as reports:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "sesflow.cli", "demo", "--recipients", str(recipients), "--seed", str(seed),
             "--json", "--report-dir", reports],
            cwd=root, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - started
    if not done.stdout.strip():
        raise SystemExit(f"sesflow demo --recipients {recipients} printed nothing (exit {done.returncode}):\n"
                         f"{done.stderr[-3000:]}")
    summary = json.loads(done.stdout)
    emails = summary["emails_sent"]
    return {
        "recipients": recipients, "exit_code": done.returncode, "wall_seconds": round(wall, 1),
        "peak_rss_mib": summary["peak_rss_mib"], "emails_sent": emails,
        "wall_ms_per_email": round(1000 * wall / max(1, emails), 2),
        "virtual_seconds": summary["virtual_seconds"],
        "campaigns": {c["campaign_id"]: {k: c[k] for k in ("status", "halted", "emails_sent", "wall_seconds")}
                      for c in summary["campaigns"]},
        # The spike's halt point (target: within HALT_TARGET_EMAILS at every size) and the bad variant's part of it.
        "halts": {c["campaign_id"]: {"emails_sent_before": c["halt"]["emails_sent_before"],
                                     "by_variant": c["halt"]["emails_before_by_variant"],
                                     "within_target": c["halt"]["emails_sent_before"] <= HALT_TARGET_EMAILS}
                  for c in summary["campaigns"] if c.get("halt")},
        "duplicates": summary["duplicates"], "unaccounted": summary["unaccounted"],
        "cost_usd_per_1M_emails": summary["cost"]["total_usd_per_1M_emails"],
    }


@contextlib.contextmanager
def checkout(rev: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as parent:
        tree = Path(parent) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)


def against(rev: str, recipients: int, seed: int, rounds: int) -> None:
    runs: dict[str, list[dict]] = {"this tree": [], rev: []}
    with checkout(rev) as tree:
        for round_ in range(rounds):
            for name, root in (("this tree", ROOT), (rev, tree)):
                print(f"round {round_ + 1}: {name} at {recipients} recipients ...", file=sys.stderr, flush=True)
                runs[name].append(run(recipients, seed, root))
    medians = {name: {"wall_seconds": statistics.median(r["wall_seconds"] for r in rs),
                      "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in rs)} for name, rs in runs.items()}
    print(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "recipients": recipients, "rounds": rounds, "medians": medians,
        "ratio_this_tree_to_rev": {k: round(medians["this tree"][k] / medians[rev][k], 2) for k in medians[rev]},
        "runs": runs,
    }, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,30000,100000", help="audience sizes, comma-separated")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--against", metavar="REV", help="also run the demo from this git revision, alternating")
    parser.add_argument("--rounds", type=int, default=2, help="with --against: runs of each tree")
    args = parser.parse_args()
    if args.against:
        return against(args.against, int(args.sizes.split(",")[0]), args.seed, args.rounds)
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"demo at {size} recipients ...", file=sys.stderr, flush=True)
        results.append(run(size, args.seed))
        print(f"  {results[-1]['wall_seconds']} s, {results[-1]['peak_rss_mib']} MiB", file=sys.stderr, flush=True)
    base = results[0]
    for result in results:
        result["growth_vs_first"] = {"recipients": round(result["recipients"] / base["recipients"], 1),
                                     "wall": round(result["wall_seconds"] / base["wall_seconds"], 2),
                                     "memory": round(result["peak_rss_mib"] / base["peak_rss_mib"], 2)}
    default = next((r for r in results if r["recipients"] == 10_000), None)
    print(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "target": f"under {TARGET_SECONDS:.0f} s wall for 10,000 recipients",
        "meets_target": default["wall_seconds"] < TARGET_SECONDS if default else None,
        "runs": results,
    }, indent=2))


if __name__ == "__main__":
    main()
