"""`sesflow suppression import|export FILE`: the recipients table's suppression list, in and out, as CSV.

import FILE     suppresses each address through app.recipients.operator_change, the path `sesflow recipient
                suppress` takes, so every change is the same conditional, versioned write with its audit record.
                FILE is CSV with a header naming an `address` or `email` column (as SES's suppression-list
                export and import use), or one address per line. A bad line is reported (line and why) and the
                rest go on; the tally says how many were suppressed, already suppressed, not recipients, refused.
export FILE     every SUPPRESSED recipient as CSV (address, reason, since), ordered by address so two exports
                diff line by line.

The SES account-level suppression list is not written: it is account-wide (every stack and sender in the
account and region), and the snapshot already skips addresses on it. Recipients not in the recipients table are
reported, not created: app.recipients has no path that creates a recipient (an operator change needs one).
"""

from __future__ import annotations

import argparse
import csv
import getpass
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sesflow.recipient_cli import FUNCTIONS_DIR, lambda_code
from sesflow.target import Target, TargetError, resolve_target

COLUMNS = ("address", "email", "emailaddress", "email_address")


@dataclass
class Tally:
    suppressed: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    refused: list[tuple[int, str, str]] = field(default_factory=list)  # (line, text, why)


def read_addresses(path: str) -> tuple[list[tuple[int, str]], list[tuple[int, str, str]]]:
    """(line, address) pairs from a CSV with an address/email column or from one address per line, and the lines
    refused (line, text, why). Raises ValueError naming the file when it cannot be read at all."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as error:
        raise ValueError(f"{path}: cannot read it ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text (byte {error.start})") from None
    rows = list(csv.reader(io.StringIO(text)))
    header = [c.strip().lower().replace(" ", "") for c in rows[0]] if rows else []
    column = next((header.index(c) for c in COLUMNS if c in header), None)
    if column is None and rows and len(rows[0]) > 1:
        raise ValueError(f"{path}: line 1: a CSV header needs an `address` or `email` column "
                         f"(found: {', '.join(rows[0])})")
    found, refused = [], []
    start = 1 if column is not None else 0
    for number, row in enumerate(rows[start:], start=start + 1):
        if not row or not "".join(row).strip():
            continue
        value = (row[column] if column is not None and column < len(row) else "" if column is not None
                 else row[0]).strip()
        why = _invalid(value)
        if why:
            refused.append((number, ",".join(row), why))
        else:
            found.append((number, value))
    return found, refused


def _invalid(address: str) -> str | None:
    """Why `address` is not one SES sends to (app.domain.addresses.normalize, the Lambda code's own), or None."""
    if not address:
        return "no address on this line"
    if str(FUNCTIONS_DIR) not in sys.path:  # the Lambda CodeUri, as recipient_cli.lambda_code does
        sys.path.insert(0, str(FUNCTIONS_DIR))
    from app.domain.addresses import InvalidAddress, normalize

    try:
        normalize(address)
    except InvalidAddress as error:
        return f"{address!r} is not an email address ({error})"
    return None


def import_file(target: Target, path: str, reason: str, actor: str) -> Tally:
    found, refused = read_addresses(path)
    recipients, config = lambda_code(target)
    tally = Tally(refused=refused)
    for number, address in found:
        try:
            decision = recipients.operator_change(address, "suppress", reason, config, actor=actor)
        except LookupError:
            tally.unknown.append(recipients.normalize(address))
            continue
        except (ValueError, RuntimeError) as error:  # a refused reason, or changing too fast to write: go on
            tally.refused.append((number, address, str(error)))
            continue
        (tally.suppressed if decision else tally.already).append(recipients.normalize(address))
    return tally


def suppressed(target: Target) -> list[dict[str, str]]:
    """Every SUPPRESSED recipient: address, reason, since; by address."""
    _, config = lambda_code(target)
    ddb = target.client("dynamodb")
    rows, request = [], {
        "TableName": config.recipients_table, "FilterExpression": "#s = :s",
        "ExpressionAttributeNames": {"#s": "status"}, "ExpressionAttributeValues": {":s": {"S": "SUPPRESSED"}}}
    while True:
        page = ddb.scan(**request)
        rows += [{"address": i["address"]["S"], "reason": i.get("status_reason", {}).get("S", ""),
                  "since": i.get("status_since", {}).get("S", "")} for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return sorted(rows, key=lambda r: r["address"])
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def suppression(args: argparse.Namespace) -> int:
    try:
        target = resolve_target(args.stack, Path(args.state_file) if args.state_file else None, region=args.region)
        if args.action == "export":
            rows = suppressed(target)
            try:
                with open(args.file, "w", encoding="utf-8", newline="") as out:
                    writer = csv.DictWriter(out, fieldnames=["address", "reason", "since"])
                    writer.writeheader()
                    writer.writerows(rows)
            except OSError as error:
                raise ValueError(f"{args.file}: cannot write it ({error.strerror or error})") from None
            print(f"exported {len(rows)} suppressed recipients to {args.file}")
            return 0
        tally = import_file(target, args.file, args.reason, actor=f"operator:{args.actor or getpass.getuser()}")
    except (TargetError, LookupError, ValueError) as error:
        print(f"sesflow: {error}", file=sys.stderr)
        return 1
    for number, text, why in tally.refused:
        print(f"{args.file}: line {number}: {why} ({text!r}); skipped", file=sys.stderr)
    if tally.unknown:
        print(f"not recipients here (nothing written): {', '.join(tally.unknown)}", file=sys.stderr)
    print(f"{args.file}: {len(tally.suppressed)} suppressed, {len(tally.already)} already suppressed, "
          f"{len(tally.unknown)} not recipients, {len(tally.refused)} refused")
    return 1 if tally.refused or tally.unknown else 0


def register(commands: Any) -> None:
    """Add `suppression import|export` to the CLI's subcommands."""
    group = commands.add_parser("suppression", help="the suppression list as CSV: import or export it")
    actions = group.add_subparsers(dest="action", required=True)
    for name, text in (("import", "suppress every address in a CSV (address/email column) or a list, audited"),
                       ("export", "write every SUPPRESSED recipient (address, reason, since) as CSV")):
        action = actions.add_parser(name, help=text)
        action.add_argument("file", metavar="FILE")
        if name == "import":
            action.add_argument("--reason", default="imported suppression list", help="why, for the audit record")
            action.add_argument("--actor", default=None, help="who, for the audit record (default: your login)")
        action.add_argument("--stack", default=None, help="a deployed stack's name (default: the local engine)")
        action.add_argument("--region", default=None, help="with --stack: its region (default: your AWS config)")
        action.add_argument("--state-file", default=None, help="the local engine's state file")
        action.set_defaults(func=suppression)
