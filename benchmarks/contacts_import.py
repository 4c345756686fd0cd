"""Contacts import benchmark: rows per second, DynamoDB write units per row, and the reader's memory on a large file.

    .venv/bin/python benchmarks/contacts_import.py [--rows 100000] [--big-mib 1024] [--workflow-rows 20000]

- import: a CSV of --rows new contacts (address and two attributes) imported into a list on the embedded engine
  by the code `sesflow contacts import` runs (sesflow.contacts_cli.import_file), then the same file again. Rows per
  second for each, and the write units each costs per row as DynamoDB bills them (an unchanged row should cost 0).
- workflow: --workflow-rows rows through ImportContactsStateMachine on the engine (upload, Distributed Map with
  the JSONL reader, batches of 500): rows per second and the parent's history events.
- memory: the first reading of a --big-mib file (every import reads the file through once before writing) in
  a child process: its peak RSS and MiB per second. Generated in a temporary directory and deleted.

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sesflow import contacts_cli
from sesflow.engine.stack import LocalStack
from sesflow.target import Target

ROOT = Path(__file__).resolve().parents[1]


def write_csv(path: Path, rows: int, start: int = 0) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write("email,first_name,plan\n")
        for i in range(start, start + rows):
            out.write(f"user{i:08d}@example.org,Name{i % 977},{('free', 'pro', 'team')[i % 3]}\n")


def import_figures(rows: int, workflow_rows: int) -> dict[str, object]:
    figures: dict[str, object] = {}
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory() as folder, LocalStack(template_path=ROOT / "template.yaml",
                                                             ses_identities=("example.com",)) as stack:
        inside = dict(os.environ)
        target = Target(name="benchmark", region=stack.region, outputs=stack.outputs)
        code = contacts_cli._code(target)
        path = Path(folder) / "contacts.csv"
        write_csv(path, rows)
        for run in ("new", "unchanged"):
            started = time.perf_counter()
            summary = contacts_cli.import_file(str(path), "benchmark", code, actor="benchmark")
            seconds = time.perf_counter() - started
            figures[f"{run}_rows"] = summary["rows"]
            figures[f"{run}_rows_per_second"] = round(summary["rows"] / seconds)
            figures[f"{run}_write_units_per_row"] = round(summary["write_units"] / summary["rows"], 3)
            figures[f"{run}_created"] = summary["created"]
            figures[f"{run}_unchanged"] = summary["unchanged"]
        if workflow_rows:
            path = Path(folder) / "workflow.csv"
            write_csv(path, workflow_rows, start=rows)
            started = time.perf_counter()
            summary = contacts_cli.import_with_workflow(str(path), "benchmark-workflow", code, target,
                                                        actor="benchmark")
            seconds = time.perf_counter() - started
            history = stack.client("stepfunctions").get_execution_history(
                executionArn=summary["execution_arn"], maxResults=1000)["events"]
            figures.update(workflow_rows=summary["rows"], workflow_created=summary["created"],
                           workflow_rows_per_second=round(summary["rows"] / seconds),
                           workflow_parent_history_events=len(history),
                           workflow_write_units_per_row=round(summary["write_units"] / summary["rows"], 3))
        os.environ.clear()
        os.environ.update(inside)
    os.environ.clear()
    os.environ.update(saved)
    figures["import_peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return figures


# The child's own high-water mark (VmHWM: getrusage's ru_maxrss carries the parent's across exec on Linux).
_READ_ONLY = """
import json, sys, time
from app.domain import contact_file
started = time.perf_counter()
summary = contact_file.check_file(sys.argv[1])
seconds = time.perf_counter() - started
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
print(json.dumps({"rows": summary.rows, "seconds": seconds, "peak_rss_mib": peak}))
"""


def memory_figures(mib: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.csv"
        with open(path, "w", encoding="utf-8") as out:
            out.write("email,first_name,plan,notes\n")
            i, size, limit = 0, 0, mib * 1024 * 1024
            while size < limit:
                line = f"user{i:09d}@example.org,Name{i % 977},pro,\"a note, with a comma\"\n"
                out.write(line)
                size += len(line)
                i += 1
        measured = json.loads(subprocess.run([sys.executable, "-c", _READ_ONLY, str(path)], check=True,
                                             capture_output=True, text=True).stdout)
    return {"big_file_mib": mib, "big_file_rows": measured["rows"],
            "big_file_read_mib_per_second": round(mib / measured["seconds"], 1),
            "big_file_read_peak_rss_mib": round(measured["peak_rss_mib"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workflow-rows", type=int, default=20_000)
    parser.add_argument("--big-mib", type=int, default=1024)
    args = parser.parse_args()
    figures = {**memory_figures(args.big_mib), **import_figures(args.rows, args.workflow_rows)}
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
