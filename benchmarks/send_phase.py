"""Send-phase size check: the campaign's real SendPhase Distributed Map over one phase of N batches of 50 (20,000 =
1,000,000 recipients), its children answering as SendBatch answers without sending (sesflow.engine.phase_check),
against AWS's limits: the parent's 25,000 history events, 256 KiB payloads, the Map's result.

    .venv/bin/python benchmarks/send_phase.py [--batches 20000]

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import resource

from sesflow.engine.phase_check import run_send_phase


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20_000)
    args = parser.parse_args()
    figures = run_send_phase(args.batches)
    figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(figures, indent=2))
    within = (figures["status"] == "SUCCEEDED" and figures["parent_history_events"] < figures["history_limit"]
              and max(figures["largest_parent_payload_bytes"], figures["largest_child_input_bytes"])
              < figures["payload_limit_bytes"])
    raise SystemExit(0 if within else 1)


if __name__ == "__main__":
    main()
