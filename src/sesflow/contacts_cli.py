"""`sesflow contacts import|show|export|remove|erase` and `sesflow lists`: a team's own audience (docs/contacts.md).

They act on the local engine (`sesflow local up --serve`) or on a deployed stack (`--stack NAME`) through the Lambda
code's own app.contacts and app.imports, so a row imported from here is decided and written exactly as one the
ImportContactsStateMachine imports on AWS.

import FILE --list NAME   CSV (comma, semicolon or tab; UTF-8, BOM or not) or JSON Lines with an `email` or
                          `address` column; the file is read once to refuse it whole (no address column, not
                          UTF-8, binary, a line too long) before anything is written, then imported in chunks of 50
                          addresses: read, decide, write only what differs. A bad row is reported with its line and
                          written to FILE.rejects.csv; the rest go on. --dry-run decides and counts, writes nothing.
show ADDRESS              attributes, lists with their subscription states, lifecycle status and history
export FILE [--list NAME] CSV: address, status, lists (name:state;...), then every attribute
remove ADDRESS --list N   takes the contact off one list (it stays a contact, with its history)
erase ADDRESS --reason T  the right to erasure: attributes, memberships and history go; a hashed marker stays
migrate                   a stack of the one-list model (list_id on the contact) to memberships (migrate_cli)
lists                     every list with its members by subscription state and lifecycle status
"""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sesflow import migrate_cli
from sesflow.errors import InputError, address_problem, report
from sesflow.files import cannot_write
from sesflow.target import Target, TargetError, add_target_options, target_of


def _code(target: Target) -> dict[str, Any]:
    """The Lambda code's modules an import uses, with the Settings they have on `target`."""
    config = target.lambda_settings()
    from app import contacts, imports, recipients
    from app.domain import audience, contact_file

    return {"contacts": contacts, "imports": imports, "recipients": recipients, "audience": audience,
            "file": contact_file, "settings": config}


def _actor(args: argparse.Namespace) -> str:
    return f"operator:{getattr(args, 'actor', None) or getpass.getuser()}"


# ------------------------------------------------------------------------------------------------ import


class Progress:
    """A progress bar with rate and ETA on a terminal (rich); nothing when output is not a terminal."""

    def __init__(self, total: int, label: str, enabled: bool, console: Any = None) -> None:
        self._bar = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, TaskProgressColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                            TextColumn("{task.fields[rate]} rows/s"), TextColumn("ETA"), TimeRemainingColumn(),
                            transient=True, redirect_stdout=False, redirect_stderr=False, console=console)
            self._task = self._bar.add_task(label, total=total, rate="-")
            self._started = time.monotonic()
            self._bar.start()

    def advance(self, rows: int, done: int) -> None:
        if self._bar is not None:
            elapsed = max(time.monotonic() - self._started, 1e-6)
            self._bar.update(self._task, advance=rows, rate=f"{done / elapsed:,.0f}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def import_file(path: str, list_id: str, code: dict[str, Any], *, actor: str, dry_run: bool = False,
                resubscribe_reason: str | None = None, rejects: str | None = None,
                progress: bool = False, checked: Any = None) -> dict[str, Any]:
    """Import one file into one list here, through app.imports; returns the summary (the --json object).

    Raises the reader's ContactFileError (naming the file and line) before anything is written when the file
    cannot be imported as a whole: it is read through once first (`checked`: that reading, made already)."""
    reader, imports, store = code["file"], code["imports"], code["contacts"]
    config, now = code["settings"], code["recipients"].clock.now()
    checked = checked or reader.check_file(path)
    with reader.open_contacts(path) as opened:  # its columns, for the rejects file
        columns = None if opened.format == reader.JSON_LINES else opened.columns
        ignored = list(opened.ignored_columns)
    options = imports.Options(list_id=list_id, source=f"import:{Path(path).name}", actor=actor, dry_run=dry_run,
                              resubscribe_reason=resubscribe_reason)
    target = rejects_target(path, rejects)
    # Opened before anything is written: a rejects file that cannot be written refuses the import whole.
    out = _open_rejects(target, "--rejects " + target if rejects else target) if checked.problems else None
    if not checked.problems and Path(target).is_file():  # an earlier import's: this one rejects nothing
        Path(target).unlink()
    bar = Progress(checked.rows + checked.problems, f"importing into {list_id}", progress)
    writes = imports.Tally().writes
    done = [0]

    def advance(chunk: Any) -> None:
        done[0] += chunk.rows
        bar.advance(chunk.rows, done[0])

    try:
        if not dry_run:
            store.register_list(list_id, now, config, writes)
        writer = reader.RejectsWriter(out, columns) if out else None
        tally = imports.import_rows(reader.read_rows(path), options, config, now,
                                    reject=writer.write if writer else _unexpected, progress=advance)
    finally:
        bar.close()
        if out:
            out.close()
    tally.writes.calls += writes.calls
    tally.writes.write_units += writes.write_units
    summary = {"file": path, "list": list_id, "dry_run": dry_run, **tally.to_dict(),
               "rejects_file": target if checked.problems else None, "ignored_columns": ignored}
    if not dry_run:
        store.record_import(list_id, uuid.uuid4().hex[:12], summary, actor, now, config)
    return summary


def rejects_target(path: str, rejects: str | None) -> str:
    """Where the import of `path` writes its rejected rows (--rejects, else FILE.rejects.csv), refused with an
    InputError when writing there would lose a file of the user's: the file being imported, or an existing file
    that is not an earlier import's rejects file (those alone are replaced, or removed when nothing is rejected)."""
    from app.domain.contact_file import REJECTS_COLUMNS, rejects_path

    header = ",".join(REJECTS_COLUMNS) + ","  # how every rejects file starts
    target = rejects or str(rejects_path(path))
    where = "--rejects " + target if rejects else target
    chosen = Path(target)
    if chosen.exists() and Path(path).exists() and chosen.resolve() == Path(path).resolve():
        raise InputError(f"{where}: that is the file being imported: give the rejected rows another file")
    if chosen.is_file():
        try:
            with chosen.open(encoding="utf-8", errors="replace", newline="") as existing:
                first = existing.readline(len(header) + 1)
        except OSError as error:
            raise cannot_write(where, error) from None
        if first and not first.startswith(header):
            raise InputError(f"{where}: exists and is not a rejects file (its first line is not {header}...): "
                             f"give --rejects another file, or move that one away")
    elif chosen.exists():
        raise InputError(f"{where}: cannot write it (is a folder, not a file)")
    return target


def _open_rejects(target: str, where: str) -> Any:
    try:
        return open(target, "w", encoding="utf-8", newline="")  # noqa: SIM115 (closed by the caller)
    except OSError as error:
        raise cannot_write(where, error) from None


def import_with_workflow(path: str, list_id: str, code: dict[str, Any], target: Target, *, actor: str,
                         dry_run: bool = False, resubscribe_reason: str | None = None, rejects: str | None = None,
                         progress: bool = False, wait: bool = True, checked: Any = None) -> dict[str, Any]:
    """Upload the file's rows and run ImportContactsStateMachine over them (on AWS, or on the local engine), so the
    import goes on without this process. The file is read through here first, as for a local import: a file that
    cannot be imported is refused before anything is uploaded. The upload is JSON Lines, one row a line with its
    line number in the user's file (contracts.UploadedRow), which the Map reads with Step Functions' JSONL reader.

    With `wait`, shows the progress and returns the summary (the execution's output), the rejects CSV downloaded
    beside the file; without, returns the execution's ARN at once."""
    reader, config = code["file"], code["settings"]
    checked = checked or reader.check_file(path)
    rejects = rejects_target(path, rejects)  # the downloaded rejects would overwrite nothing of the user's
    import_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    key = f"imports/{import_id}/rows.jsonl"
    s3 = target.client("s3")
    with tempfile.TemporaryFile("w+b") as spool:
        with reader.open_contacts(path) as opened:
            for record in opened:
                if isinstance(record, reader.RowProblem):
                    row = {"line": record.line, "fields": dict(record.fields), "problem": record.reason}
                else:
                    row = {"line": record.line, "fields": record.fields}
                spool.write(json.dumps(row, ensure_ascii=False, default=_jsonable).encode() + b"\n")
        spool.seek(0)
        s3.upload_fileobj(spool, config.manifest_bucket, key)
    request = {"import_id": import_id, "list_id": list_id, "source": f"import:{Path(path).name}", "actor": actor,
               "dry_run": dry_run, "resubscribe_reason": resubscribe_reason, "key": key, "file": path}
    sfn = target.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=target.output("ImportContactsStateMachineArn"),
                              name=f"import-{import_id}"[:80], input=json.dumps(request))["executionArn"]
    if not wait:
        return {"execution_arn": arn, "import_id": import_id, "rows": checked.rows + checked.problems}
    bar = Progress(checked.rows + checked.problems, f"importing into {list_id} (workflow)", progress)
    ddb, shown = target.client("dynamodb"), 0
    try:
        while True:
            described = sfn.describe_execution(executionArn=arn)
            item = ddb.get_item(TableName=config.events_table,
                                Key={"pk": {"S": f"IMPORT#{import_id}"}, "sk": {"S": "progress"}}).get("Item", {})
            now_done = min(int(item.get("done_rows", {}).get("N", "0")), checked.rows + checked.problems)
            if now_done > shown:
                bar.advance(now_done - shown, now_done)
                shown = now_done
            if described["status"] != "RUNNING":
                break
            time.sleep(1.0)
    finally:
        bar.close()
    if described["status"] != "SUCCEEDED":
        raise ValueError(f"the import's execution {arn} ended {described['status']}: "
                         f"{described.get('error', '')} {described.get('cause', '')}".strip()
                         + "; a failed batch's error is in its Map Run (aws stepfunctions list-map-runs "
                           "--execution-arn ...) and in ImportBatchFunction's log group. What was written stays: "
                           "run the same import again once the cause is fixed")
    summary = json.loads(described["output"])
    if summary.get("rejects_key"):
        local = rejects or str(reader.rejects_path(path))
        s3.download_file(config.manifest_bucket, summary["rejects_key"], local)
        summary["rejects_file"] = local
    else:
        summary["rejects_file"] = None
    summary["execution_arn"] = arn
    return summary


def _unexpected(problem: Any) -> None:
    raise RuntimeError(f"line {problem.line}: a row problem the first reading did not find ({problem.reason})")


def print_summary(summary: dict[str, Any]) -> None:
    dry = " (dry run: nothing written to the stack)" if summary["dry_run"] else ""
    skipped = summary["skipped"]
    print(f"{summary['file']} -> list {summary['list']}{dry}: {summary['rows']:,} rows")
    print(f"  created {summary['created']:,}, updated {summary['updated']:,}, unchanged {summary['unchanged']:,}, "
          f"added to the list {summary['added_to_list']:,}"
          + (f", resubscribed {summary['resubscribed']:,}" if summary["resubscribed"] else ""))
    print(f"  skipped: suppressed {skipped['suppressed']:,}, unsubscribed {skipped['unsubscribed']:,}, "
          f"invalid {skipped['invalid']:,}"
          + (f"; {summary['repeated']:,} repeated rows merged" if summary["repeated"] else ""))
    if not summary["dry_run"]:
        print(f"  DynamoDB: {summary['dynamodb_writes']:,} writes, {summary['write_units']:,} write units")
    if summary.get("ignored_columns"):
        print(f"  columns read as nothing: {', '.join(summary['ignored_columns'])} (an import never sets a status "
              "or a subscription)")
    if summary.get("execution_arn"):
        print(f"  imported by {summary['execution_arn']}")
    if summary.get("rejects_file"):
        print(f"  rejected rows (line and reason) written to {summary['rejects_file']}")


# A deployed stack's import of more rows than this runs as ImportContactsStateMachine: from a laptop, two calls a
# new row at AWS's round trips would take most of an hour for 100,000 rows.
WORKFLOW_ROWS = 50_000


def contacts_import(args: argparse.Namespace, target: Target) -> int:
    if args.resubscribe and not (args.reason and args.reason.strip()):
        raise InputError("--resubscribe needs --reason TEXT: setting unsubscribed contacts back to subscribed is "
                         "recorded in each one's history, with why")
    if args.reason and not args.resubscribe:
        raise InputError("--reason is for --resubscribe (an import needs no reason otherwise)")
    code = _code(target)
    _check_list_name(args.list)
    given = {"actor": _actor(args), "dry_run": args.dry_run, "rejects": args.rejects,
             "resubscribe_reason": args.reason.strip() if args.resubscribe else None,
             "progress": not args.json and sys.stderr.isatty()}
    workflow = args.workflow or args.no_wait
    checked = None
    if not workflow and not target.is_local and not args.here:
        checked = rows = code["file"].check_file(args.file)  # read once: the import below takes this reading
        workflow = rows.rows + rows.problems > WORKFLOW_ROWS
        if workflow:
            print(f"{args.file}: {rows.rows + rows.problems:,} rows: importing with ImportContactsStateMachine on "
                  f"{target.name} (--here imports from this machine instead)", file=sys.stderr)
    if workflow:
        summary = import_with_workflow(args.file, args.list, code, target, wait=not args.no_wait, checked=checked,
                                       **given)
        if args.no_wait:
            print(json.dumps(summary, indent=2) if args.json else
                  f"started {summary['execution_arn']} over {summary['rows']:,} rows; the summary is its output "
                  f"and the list's history records it (aws stepfunctions describe-execution --execution-arn ...)")
            return 0
    else:
        summary = import_file(args.file, args.list, code, checked=checked, **given)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_summary(summary)
    return 0


def _check_list_name(name: str) -> None:
    from app.domain.campaign import LIST_NAME_RULE, valid_list_name

    if not valid_list_name(name):
        raise InputError(f"--list {name!r}: a list name is {LIST_NAME_RULE}")


# ------------------------------------------------------------------------------------------------ the rest


def _address(given: str, code: dict[str, Any]) -> str:
    """The address as contacts are keyed (the Lambda code's normalize), or an InputError naming what was given."""
    try:
        return str(code["recipients"].normalize(given))
    except ValueError as error:
        raise InputError(address_problem(given, error)) from None


def describe(address: str, target: Target) -> dict[str, Any]:
    code = _code(target)
    config, contacts, recipients = code["settings"], code["contacts"], code["recipients"]
    address = _address(address, code)
    found = contacts.read_contacts([address], config).get(address)
    if found is None:
        raise LookupError(f"no contact {address} in {config.recipients_table} ({target.name})")
    if found.erased:
        raise LookupError(f"{address} was erased: only its hashed suppression marker is left")
    stored = recipients.read({address}, config)[address]
    return {
        "address": address,
        "status": found.status,
        "status_reason": stored.reason,
        "strikes": len(stored.state.strike_times),
        "quarantined_until": stored.state.quarantined_until and recipients.iso(stored.state.quarantined_until),
        "unsubscribed_from_everything": found.unsubscribed_all,
        "lists": {m.list_id: m.state for m in contacts.lists_of(address, config)},
        "attributes": {k: _jsonable(v) for k, v in sorted(found.attributes.items())},
        "history": recipients.history(address, config),
    }


def _jsonable(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset):
        return sorted(_jsonable(v) for v in value)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def print_contact(shown: dict[str, Any]) -> None:
    print(f"{shown['address']}: {shown['status']}" + (f" ({shown['status_reason']})" if shown["status_reason"]
                                                      else ""))
    if shown["strikes"]:
        print(f"  strikes:  {shown['strikes']}")
    if shown["quarantined_until"]:
        print(f"  until:    {shown['quarantined_until']}")
    if shown["unsubscribed_from_everything"]:
        print("  unsubscribed from everything: no import puts it on a list again")
    print("  lists:    " + (", ".join(f"{k} ({v.lower()})" for k, v in shown["lists"].items()) or "none"))
    for name, value in shown["attributes"].items():
        print(f"  {name}: {value}")
    history = shown["history"]
    print(f"\nHistory ({len(history)}, newest first):" if history else "\nHistory: none")
    for entry in history:
        if "to_status" in entry:
            what = f"{entry['from_status']} -> {entry['to_status']}"
        elif entry.get("kind") == "subscription":
            what = f"{entry['list_id']}: {entry['to_state'].lower()}"
        else:
            what = f"({entry.get('kind', 'event')})"
        when = entry.get("recorded_at") or entry["sk"].split("#", 1)[0]
        print(f"  {when}  {what:<32}  {entry.get('actor', '?'):<22}  {entry.get('reason', '')}")


def export(path: str, list_id: str | None, target: Target) -> int:
    """Write contacts as CSV (one list's members, or every contact), in address order; returns how many. Streams
    through a temporary JSON Lines file to learn every attribute name, so memory stays flat."""
    code = _code(target)
    config, contacts = code["settings"], code["contacts"]
    if list_id is not None:
        _check_list_name(list_id)
        known = [entry["list"] for entry in contacts.lists(config)]
        if list_id not in known:
            raise LookupError(f"no list {list_id} on {target.name} (lists: {', '.join(known) or 'none yet'})")
    ddb = target.client("dynamodb")
    names: set[str] = set()
    count = 0
    with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
        for chunk in _export_chunks(list_id, contacts, config, ddb):
            for row in chunk:
                names |= set(row["attributes"])
                spool.write(json.dumps(row, default=str) + "\n")
                count += 1
        spool.seek(0)
        try:
            out = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 (closed below)
        except OSError as error:
            raise cannot_write(path, error) from None
        with out:
            columns = ["address", "status", "lists", *sorted(names)]
            writer = csv.writer(out)
            writer.writerow(columns)
            for line in spool:
                row = json.loads(line)
                writer.writerow([row["address"], row["status"], row["lists"],
                                 *(_cell(row["attributes"].get(n)) for n in columns[3:])])
    return count


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _export_chunks(list_id: str | None, contacts: Any, config: Any, ddb: Any) -> Iterator[list[dict[str, Any]]]:
    if list_id is not None:
        batch: list[Any] = []
        for membership in contacts.members(list_id, config):
            batch.append(membership)
            if len(batch) == 50:
                yield _rows(batch, contacts, config, {m.address: f"{list_id}:{m.state}" for m in batch})
                batch = []
        if batch:
            yield _rows(batch, contacts, config, {m.address: f"{list_id}:{m.state}" for m in batch})
        return
    states: dict[str, list[str]] = {}
    scan: dict[str, Any] = {"TableName": config.memberships_table}
    while True:
        page = ddb.scan(**scan)
        for item in page["Items"]:
            states.setdefault(item["address"]["S"], []).append(f"{item['list_id']['S']}:{item['state']['S']}")
        if "LastEvaluatedKey" not in page:
            break
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    scan = {"TableName": config.recipients_table, "ProjectionExpression": "address"}
    while True:
        page = ddb.scan(**scan)
        keys = sorted(i["address"]["S"] for i in page["Items"] if "@" in i["address"]["S"])
        for start in range(0, len(keys), 50):
            part = keys[start : start + 50]
            yield _rows(part, contacts, config, {a: ";".join(sorted(states.get(a, []))) for a in part})
        if "LastEvaluatedKey" not in page:
            return
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _rows(batch: list[Any], contacts: Any, config: Any, lists: dict[str, str]) -> list[dict[str, Any]]:
    addresses = [getattr(m, "address", m) for m in batch]
    found = contacts.read_contacts(addresses, config, with_markers=False)
    return [{"address": a, "status": found[a].status, "lists": lists.get(a, ""),
             "attributes": {k: _jsonable(v) for k, v in found[a].attributes.items()}}
            for a in sorted(addresses) if a in found and not found[a].erased]


def list_summary(target: Target) -> list[dict[str, Any]]:
    """Every list: its members by subscription state and by lifecycle status (one Query and a read per 100)."""
    code = _code(target)
    config, contacts = code["settings"], code["contacts"]
    shown = []
    for entry in contacts.lists(config):
        members = list(contacts.members(entry["list"], config))
        stored = contacts.read_contacts([m.address for m in members], config, with_markers=False)
        shown.append({"list": entry["list"], "created_at": entry["created_at"], "members": len(members),
                      "subscription": dict(sorted(Counter(m.state for m in members).items())),
                      "status": dict(sorted(Counter(stored[m.address].status for m in members
                                                    if m.address in stored).items()))})
    return shown


def print_lists(shown: list[dict[str, Any]]) -> None:
    if not shown:
        print("no lists yet: `sesflow contacts import FILE --list NAME` makes one")
        return
    print(f"{'list':<24} {'members':>9} {'subscribed':>11} {'unsubscr.':>10}  by status")
    for entry in shown:
        sub = entry["subscription"]
        statuses = ", ".join(f"{k.lower()} {v:,}" for k, v in entry["status"].items())
        print(f"{entry['list']:<24} {entry['members']:>9,} {sub.get('SUBSCRIBED', 0):>11,} "
              f"{sub.get('UNSUBSCRIBED', 0):>10,}  {statuses}")


# ------------------------------------------------------------------------------------------------ commands


def contacts(args: argparse.Namespace) -> int:
    try:
        target = target_of(args)
        return _run(args, target)
    except (TargetError, LookupError, ValueError) as error:
        return report(error)


def _run(args: argparse.Namespace, target: Target) -> int:
    action = getattr(args, "action", "lists")
    if action == "import":
        try:
            return contacts_import(args, target)
        except Exception as error:  # the reader's ContactFileError: names the file and line
            if type(error).__name__ == "ContactFileError":
                raise InputError(str(error)) from None
            raise
    if action == "show":
        shown = describe(args.address, target)
        print(json.dumps(shown, indent=2, default=str)) if args.json else print_contact(shown)
        return 0
    if action == "export":
        count = export(args.file, args.list, target)
        print(f"exported {count:,} contacts" + (f" of list {args.list}" if args.list else "") + f" to {args.file}")
        return 0
    code = _code(target)
    config, contacts_store, recipients = code["settings"], code["contacts"], code["recipients"]
    now = recipients.clock.now()
    if action == "remove":
        _check_list_name(args.list)
        address = _address(args.address, code)
        if not contacts_store.remove_membership(args.list, address, actor=_actor(args), now=now, settings=config):
            raise LookupError(f"{address} is not on list {args.list}")
        print(f"{address}: removed from {args.list} (still a contact, with its history)")
        return 0
    if action == "erase":
        address = _address(args.address, code)
        deleted = contacts_store.erase(address, args.reason, _actor(args), now, config)
        print(f"{address}: erased ({deleted['memberships']} memberships, {deleted['history']} history records, "
              f"{deleted['engagement_markers']} engagement markers); a hashed suppression marker stays, so no "
              "import adds this address again")
        print("  not reached here (docs/contacts.md, Erasure): past campaigns' manifests in S3 (expire after 90 days),"
              " uploaded imports (7 days), the SES account suppression list, SendsTable's refused addresses")
        return 0
    shown = list_summary(target)
    print(json.dumps(shown, indent=2)) if args.json else print_lists(shown)
    return 0


def _target_options(parser: argparse.ArgumentParser) -> None:
    add_target_options(parser)


def register(commands: Any) -> None:
    """Add `contacts import|show|export|remove|erase` and `lists` to the CLI's subcommands."""
    group = commands.add_parser("contacts", help="your audience: import a list, show, export, remove, erase")
    actions = group.add_subparsers(dest="action", required=True)
    imp = actions.add_parser("import", help="import a CSV or JSON Lines file into a list")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--list", required=True, help="the list to add the contacts to (made on first import)")
    imp.add_argument("--dry-run", action="store_true", help="decide and count every row, write nothing")
    imp.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    imp.add_argument("--resubscribe", action="store_true",
                     help="set contacts that unsubscribed from this list back to subscribed (needs --reason)")
    imp.add_argument("--reason", default=None, help="with --resubscribe: why, for each contact's history")
    imp.add_argument("--rejects", default=None, help="where rejected rows go (default: FILE.rejects.csv)")
    imp.add_argument("--workflow", action="store_true",
                     help="upload the rows and import them with ImportContactsStateMachine (the import goes on "
                          "without this process; the default on a deployed stack for a file of over "
                          f"{WORKFLOW_ROWS:,} rows); shows its progress and prints the summary")
    imp.add_argument("--here", action="store_true",
                     help=f"import from this machine even when a deployed stack's file has over {WORKFLOW_ROWS:,} rows "
                          "(which would otherwise use the workflow)")
    imp.add_argument("--no-wait", action="store_true",
                     help="with --workflow (implied): start the import and exit, printing its execution ARN")
    imp.add_argument("--actor", default=None, help="who, for the records (default: your login)")
    show = actions.add_parser("show", help="a contact's attributes, lists, status and history")
    show.add_argument("address")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    exp = actions.add_parser("export", help="write contacts as CSV (address, status, lists, attributes)")
    exp.add_argument("file", metavar="FILE")
    exp.add_argument("--list", default=None, help="only this list's members (default: every contact)")
    rem = actions.add_parser("remove", help="take a contact off a list")
    rem.add_argument("address")
    rem.add_argument("--list", required=True)
    rem.add_argument("--actor", default=None, help="who, for the record (default: your login)")
    era = actions.add_parser("erase", help="erase a contact (right to erasure); a hashed marker stays")
    era.add_argument("address")
    era.add_argument("--reason", required=True, help="why, for the erasure's record (which holds no address)")
    era.add_argument("--actor", default=None, help="who, for the record (default: your login)")
    for parser in (imp, show, exp, rem, era):
        _target_options(parser)
        parser.set_defaults(func=contacts)
    migrate_cli.add_parser(actions)  # `contacts migrate`: a stack of the one-list model to memberships
    lists = commands.add_parser("lists", help="every list, its members by subscription and lifecycle state")
    lists.add_argument("--json", action="store_true", help="print one JSON document")
    _target_options(lists)
    lists.set_defaults(func=contacts, action="lists")
