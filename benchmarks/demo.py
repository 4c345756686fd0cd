"""Demo benchmark (issue 6): wall time and peak memory of `sesflow demo` at 10,000 recipients (the default), and
how they grow at 30,000 and 100,000, on this machine.

    .venv/bin/python benchmarks/demo.py [--sizes 10000,30000,100000] [--seed 1]

Each size runs `sesflow demo --recipients N --json` in its own process (both scenarios: test-then-winner, then
the complaint spike that halts and is resumed), timed from outside, interpreter start included; peak memory
is that process's own maximum resident set. Prints one JSON document; progress goes to stderr. Target: under
30 s for 10,000.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 30.0


def run(recipients: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as reports:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "sesflow.cli", "demo", "--recipients", str(recipients), "--seed", str(seed),
             "--json", "--report-dir", reports],
            cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
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
        "duplicates": summary["duplicates"], "unaccounted": summary["unaccounted"],
        "cost_usd_per_1M_emails": summary["cost"]["total_usd_per_1M_emails"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,30000,100000", help="audience sizes, comma-separated")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
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
