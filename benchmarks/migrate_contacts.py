"""The contacts migration: items per second on the engine, history events, DynamoDB units and dollars per contact.

    .venv/bin/python benchmarks/migrate_contacts.py [--contacts 20000] [--segments 4]

Seeds --contacts items of the one-list model into RecipientsTable (a list_id each, two attributes, one in fifty
unsubscribed the old way: SUPPRESSED, status_cause unsubscribe), runs MigrateContactsStateMachine from
template.yaml on the embedded engine, then runs it again. Prints one JSON document: wall seconds and items per
second of each run (the engine's speed, one Python process, not AWS's: moto copies every table a transaction
touches, so it slows as the tables grow), the execution's history events and calls,
and what the meter counted (write and read request units per table, Lambda GB-seconds, transitions), with the
history a million contacts would take: a call reads at most PAGES_PER_CALL pages of PAGE_ITEMS items, the last
call of a segment may read an empty page, and each call costs the events this run measured.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from sesflow.engine.stack import LocalStack

ROOT = Path(__file__).resolve().parents[1]
HISTORY_LIMIT = 25_000  # events in a Standard execution's history
# us-east-1 list prices, as benchmarks/lifecycle.py takes them
WRITE_UNIT, READ_UNIT = 0.625 / 1_000_000, 0.125 / 1_000_000  # DynamoDB on-demand request units
STANDARD_PER_TRANSITION = 0.025 / 1000


def seed(stack: LocalStack, contacts: int) -> None:
    ddb, table = stack.client("dynamodb"), stack.outputs["RecipientsTableName"]
    items = []
    for i in range(contacts):
        item = {"address": {"S": f"c{i:07d}@example.org"}, "list_id": {"S": "newsletter" if i % 3 else "customers"},
                "status": {"S": "ACTIVE"}, "first_name": {"S": f"Name {i}"}, "plan": {"S": "pro" if i % 2 else "free"}}
        if i % 50 == 0:
            item |= {"status": {"S": "SUPPRESSED"}, "status_cause": {"S": "unsubscribe"},
                     "status_reason": {"S": "unsubscribed"}, "status_since": {"S": "2026-03-02T10:00:00.000Z"},
                     "version": {"N": "1"}, "strike_times": {"L": []}}
        items.append({"PutRequest": {"Item": item}})
    for start in range(0, len(items), 25):
        request = {table: items[start : start + 25]}
        while request:
            request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


def measured(stack: LocalStack, segments: int) -> dict:
    stack.meter.reset()
    started = time.perf_counter()
    result = stack.run("MigrateContactsStateMachine", {"segments": segments}, timeout=7200, poll=0.5)
    seconds = time.perf_counter() - started
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    history = stack.history(result.arn)
    calls = sum(e["type"] == "TaskSucceeded" for e in history)
    meter = stack.meter.snapshot()
    names = {stack.outputs[k]: k.removesuffix("TableName") for k in
             ("RecipientsTableName", "MembershipsTableName", "EventsTableName")}
    return {
        "output": result.output,
        "wall_seconds": round(seconds, 1),
        "items_per_second": round(result.output["scanned"] / seconds, 1),
        "history_events": len(history),
        "calls": calls,
        "write_units": {names.get(t, t): round(u, 1) for t, u in meter["dynamodb_write_units"].items()},
        "read_units": {names.get(t, t): round(u, 1) for t, u in meter["dynamodb_read_units"].items()},
        "lambda_gb_seconds": meter["lambda_gb_seconds"],
        "transitions": meter["transitions"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--segments", type=int, default=4)
    args = parser.parse_args()
    with LocalStack(template_path=ROOT / "template.yaml", ses_identities=("example.com",)) as stack:
        seed(stack, args.contacts)
        first = measured(stack, args.segments)
        again = measured(stack, args.segments)
    # Imported once the engine has loaded the handler with its function's environment (its log level).
    from app.handlers.migrate_contacts import PAGE_ITEMS, PAGES_PER_CALL

    fixed = 10 + 4 * args.segments  # the execution's own events, and each segment's Map iteration
    per_call = (first["history_events"] - fixed) / first["calls"]
    calls_1m = args.segments * (math.ceil(1_000_000 / args.segments / (PAGE_ITEMS * PAGES_PER_CALL)) + 1)
    print(json.dumps({
        "contacts": args.contacts, "segments": args.segments, "first_run": first, "second_run": again,
        "events_per_call": round(per_call, 2),
        "million_contacts": {"calls_at_most": calls_1m, "history_events_at_most": round(fixed + per_call * calls_1m),
                             "history_limit": HISTORY_LIMIT},
        "write_units_per_migrated_contact": round(sum(first["write_units"].values()) / first["output"]["migrated"], 2),
        # DynamoDB and Step Functions at a million contacts (the engine's Lambda seconds are not AWS's: left out)
        "usd_per_million_contacts": {
            "dynamodb_writes": round(sum(first["write_units"].values()) / args.contacts * 1e6 * WRITE_UNIT, 2),
            "dynamodb_reads": round(sum(first["read_units"].values()) / args.contacts * 1e6 * READ_UNIT, 4),
            "transitions": round(calls_1m * 2 * STANDARD_PER_TRANSITION, 4)},
    }, indent=2))


if __name__ == "__main__":
    main()
