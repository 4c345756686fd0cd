"""`sesflow contacts migrate`: move the contacts of the one-list model (a `list_id` on each RecipientsTable item) to
memberships, on the local engine (`sesflow local up --serve`) or a deployed stack (`--stack NAME`).

It starts one execution of MigrateContactsStateMachine (a parallel Scan in --segments segments, each migrated by
MigrateContactsFunction; docs/contacts.md), shows the items scanned so far while it runs, and prints what it did:
migrated (of which unsubscribed, kept so), already migrated, skipped. Statuses, strikes, attributes and history
stay as they are; running it again writes nothing. --dry-run counts and writes nothing. Ctrl-C stops watching,
not the migration. Exit 0 when the migration succeeded, 2 when it could not start or failed.

    from sesflow import migrate_cli
    migrate_cli.add_parser(contacts_subcommands)   # `contacts migrate ...`; its func is run(args)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any, TextIO

import botocore.exceptions
from app.contracts import MAX_MIGRATION_SEGMENTS as MAX_SEGMENTS

from sesflow.errors import InputError, report
from sesflow.target import Target, TargetError, add_target_options, target_of

DEFAULT_SEGMENTS = 4
POLL_SECONDS = 2.0  # between two looks at the execution; each reads its history, a page per 1,000 events
OUTPUT = "MigrateContactsStateMachineArn"
SKIPPED = ("erased", "suppression_only", "invalid_list_id")


class MigrationError(Exception):
    """The migration could not start, or its execution did not succeed; the message is for the operator."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `migrate` to a subcommand group (the CLI's `contacts`); the parser's func is run."""
    parser = subparsers.add_parser(
        "migrate", help="move contacts of the one-list model (list_id on the contact) to memberships",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    add_target_options(parser)
    parser.add_argument("--dry-run", action="store_true", help="count what it would do; write nothing")
    parser.add_argument("--segments", type=int, default=DEFAULT_SEGMENTS,
                        help=f"scan RecipientsTable in this many parallel segments, 1 to {MAX_SEGMENTS} "
                             f"(default {DEFAULT_SEGMENTS}; more: faster, more DynamoDB capacity at once)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (progress still goes to stderr)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    arn = None
    try:
        if not 1 <= args.segments <= MAX_SEGMENTS:
            raise InputError(f"--segments: must be 1 to {MAX_SEGMENTS}, got {args.segments}")
        target = target_of(args)
        arn = start(target, args.segments, args.dry_run)
        print(f"started {arn}", file=sys.stderr, flush=True)
        summary = {"target": target.name, "execution_arn": arn, **follow(target, arn, sys.stderr)}
    except (InputError, TargetError, MigrationError) as error:
        return report(error)
    except botocore.exceptions.ClientError as error:
        problem = error.response.get("Error", {})
        return report(RuntimeError(f"{problem.get('Code', 'error')}: {problem.get('Message') or error}"))
    except botocore.exceptions.BotoCoreError as error:  # no network, expired credentials...
        return report(error)
    except KeyboardInterrupt:
        print(f"\nsesflow: stopped watching; the migration goes on{f' ({arn})' if arn else ''}: once it has ended, "
              f"running this again finishes anything it left (it writes nothing twice)", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(render(summary))
    return 0


def start(target: Target, segments: int, dry_run: bool) -> str:
    """Start the migration's execution; returns its ARN."""
    machine = target.output(OUTPUT)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"migrate-contacts-{'dry-run-' if dry_run else ''}{stamp}-{uuid.uuid4().hex[:8]}"
    return str(target.client("stepfunctions").start_execution(
        stateMachineArn=machine, name=name, input=json.dumps({"segments": segments, "dry_run": dry_run}),
    )["executionArn"])


def follow(target: Target, arn: str, out: TextIO) -> dict[str, Any]:
    """Wait for the execution to end, showing the items scanned so far on `out`; returns its summary (the counts,
    with skipped summed and by reason). Raises MigrationError when it did not succeed."""
    sfn = target.client("stepfunctions")
    live = out.isatty()
    shown = None
    while True:
        described = sfn.describe_execution(executionArn=arn)
        status = described["status"]
        if status != "RUNNING":
            break
        progress = scanned(sfn, arn)
        if progress != shown:
            line = f"migrating: {progress[0]:,} items scanned, {progress[1]} of {progress[2]} segments done"
            print(f"\r{line:<79}" if live else line, end="" if live else "\n", file=out, flush=True)
            shown = progress
        time.sleep(POLL_SECONDS)
    if live and shown is not None:
        print(file=out)
    if status != "SUCCEEDED":
        cause = described.get("cause") or ""
        raise MigrationError(
            f"the migration {arn} ended {status}" + (f": {described.get('error')}" if described.get("error") else "")
            + (f": {cause}" if cause else "") + ". What it migrated stays migrated; running it again goes on from "
            "there (it writes nothing twice)")
    output = json.loads(described.get("output") or "{}")
    return {**output, "skipped": sum(int(output.get(k, 0)) for k in SKIPPED),
            "skipped_by": {k: int(output.get(k, 0)) for k in SKIPPED}}


def scanned(sfn: Any, arn: str) -> tuple[int, int, int]:
    """(items scanned so far, segments done, segments) from the execution's history: each call's result carries
    its segment's running totals, so the last one of each segment counts."""
    latest: dict[int, tuple[int, bool]] = {}
    segments, token = 0, None
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {}))
        for event in page["events"]:
            if event["type"] == "MapStateStarted":
                segments = int((event.get("mapStateStartedEventDetails") or {}).get("length") or 0)
            elif event["type"] == "TaskSucceeded":
                try:
                    result = json.loads(event["taskSucceededEventDetails"]["output"])["Payload"]
                    latest[int(result["segment"])] = (int(result["counts"]["scanned"]), bool(result["done"]))
                except (KeyError, TypeError, ValueError):
                    continue  # not a MigrateContactsFunction result (history without execution data)
        token = page.get("nextToken")
        if not token:
            break
    return (sum(n for n, _ in latest.values()), sum(done for _, done in latest.values()), segments)


def render(summary: dict[str, Any]) -> str:
    dry = summary.get("dry_run")
    by = summary["skipped_by"]
    lines = [
        f"{'Dry run, nothing written: ' if dry else ''}{summary.get('scanned', 0):,} items of RecipientsTable "
        f"scanned in {summary.get('segments')} segments on {summary['target']}",
        f"  {'would migrate' if dry else 'migrated':<18} {summary.get('migrated', 0):>9,}  "
        "(a membership of the list in their list_id, which goes from the contact)",
        f"    unsubscribed kept {summary.get('unsubscribed', 0):>8,}  "
        "(unsubscribed by the old one-click link: UNSUBSCRIBED on that list, still SUPPRESSED)",
    ]
    if not dry:
        lines.append(f"    memberships kept  {summary.get('memberships_kept', 0):>8,}  "
                     "(on that list already: the membership was left as it was)")
    lines += [
        f"  {'already':<18} {summary.get('already', 0):>9,}  (no list_id: migrated before, or made by an import)",
        f"  {'skipped':<18} {summary['skipped']:>9,}  (erased {by['erased']:,}, suppressions with no contact "
        f"{by['suppression_only']:,}, list_id not a list name {by['invalid_list_id']:,})",
    ]
    if summary.get("changed_meanwhile"):
        lines.append(f"  {'changed meanwhile':<18} {summary['changed_meanwhile']:>9,}  "
                     "(their list_id changed while this ran: run the migration again)")
    if by["invalid_list_id"]:
        lines.append("  The contacts whose list_id is not a list name keep it: find them with a scan for "
                     "attribute_exists(list_id), correct it, and run the migration again.")
    return "\n".join(lines)
