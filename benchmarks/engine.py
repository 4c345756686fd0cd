"""Engine benchmark: time to bring template.yaml up, and a Distributed Map of N Lambda items.

    .venv/bin/python benchmarks/engine.py [--items 1000] [--ups 5]

Prints one JSON document. The map runs tests/workflow/probe (Lambda -> DynamoDB -> 3-day Wait ->
Distributed Map over an S3 manifest, one lambda:invoke per item -> nested execution).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from pathlib import Path

from sesflow.engine.stack import LocalStack

ROOT = Path(__file__).resolve().parents[1]


def stack_up_seconds(ups: int) -> list[float]:
    times = []
    for _ in range(ups):
        started = time.perf_counter()
        with LocalStack(template_path=ROOT / "template.yaml", ses_identities=("example.com",)):
            times.append(time.perf_counter() - started)
    return times


def distributed_map(items: int) -> dict:
    with LocalStack(template_path=ROOT / "tests" / "workflow" / "probe" / "template.yaml") as stack:
        started = time.perf_counter()
        result = stack.run("ProbeStateMachine", {"count": items}, timeout=3600)
        wall = time.perf_counter() - started
        counts = stack.meter.snapshot()
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    return {
        "items": items,
        "status": result.status,
        "wall_seconds": round(wall, 2),
        "items_per_second": round(items / wall, 1),
        "parent_history_events": result.history_events,
        "state_transitions": sum(counts["transitions"].values()),
        "transitions_by_machine": counts["transitions"],
        "lambda_invocations": sum(counts["lambda_invocations"].values()),
        "api_calls": sum(counts["api_calls"].values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--ups", type=int, default=5)
    args = parser.parse_args()
    ups = stack_up_seconds(args.ups)
    report = {
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "stack_up_seconds": {
            "first": round(ups[0], 3),
            "median_after_first": round(statistics.median(ups[1:]), 3) if len(ups) > 1 else None,
        },
        "distributed_map": distributed_map(args.items),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
