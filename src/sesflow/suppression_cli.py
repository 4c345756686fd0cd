"""`sesflow suppression import|export`: the suppression list, in and out, as CSV, before or after the contacts exist.

import FILE     suppresses each address through app.recipients.suppress_address, the path `sesflow recipient
                suppress` takes, so every change is the same conditional, versioned write with its audit record.
                An address that is not a contact yet (a suppression list brought from another provider, loaded
                before the lists) is kept as a SUPPRESSED item with no lists: every import then skips it and no
                snapshot sends to it. FILE is CSV with a header naming an `address` or `email` column (as SES's
                suppression-list export and import use), or one address per line. A bad line is reported (line
                and why) and the rest go on; the tally says how many were suppressed, already suppressed, kept
                ahead of their contact, refused.
import --from-ses
                the same, for every address on the account's SES suppression list (ListSuppressedDestinations).
--ses           also puts each address on the account's SES suppression list (PutSuppressedDestination, with
                --ses-reason BOUNCE or COMPLAINT, the two reasons SES keeps). That list is account-wide: every stack
                and sender in the account and region stops sending to it.
export FILE     every SUPPRESSED address as CSV (address, reason, since), ordered by address so two exports
                diff line by line; with --ses, the addresses on the SES list too (reason `ses:<REASON>`).
"""

from __future__ import annotations

import argparse
import csv
import getpass
import io
import sys
from dataclasses import dataclass, field
from typing import Any

from app import recipients

from sesflow.errors import InputError, address_problem, report
from sesflow.files import cannot_write, read_text
from sesflow.target import Target, TargetError, add_target_options, target_of

COLUMNS = ("address", "email", "emailaddress", "email_address")


@dataclass
class Tally:
    suppressed: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # not contacts yet: kept as SUPPRESSED items with no lists
    pushed: int = 0  # put on the SES account suppression list
    refused: list[tuple[int, str, str]] = field(default_factory=list)  # (line, text, why)


def read_addresses(path: str) -> tuple[list[tuple[int, str]], list[tuple[int, str, str]]]:
    """(line, address) pairs from a CSV with an address/email column or from one address per line, and the lines
    refused (line, text, why). Raises InputError naming the file when it cannot be read at all, or is empty."""
    text = read_text(path, encoding="utf-8-sig")
    if not text.strip():
        raise InputError(f"{path}: empty: it needs a CSV header with an `address` or `email` column, or one "
                         f"address per line")
    rows = list(csv.reader(io.StringIO(text)))
    header = [c.strip().lower().replace(" ", "") for c in rows[0]] if rows else []
    column = next((header.index(c) for c in COLUMNS if c in header), None)
    if column is None and rows and len(rows[0]) > 1:
        raise InputError(f"{path}: line 1: a CSV header needs an `address` or `email` column "
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
    from app.domain.addresses import InvalidAddress, normalize

    try:
        normalize(address)
    except InvalidAddress as error:
        return address_problem(address, error)
    return None


def ses_suppressed(target: Target) -> list[dict[str, str]]:
    """The account's SES suppression list: address, reason (BOUNCE or COMPLAINT), since."""
    ses, rows, token = target.client("sesv2"), [], None
    while True:
        page = ses.list_suppressed_destinations(**({"NextToken": token} if token else {}), PageSize=1000)
        rows += [{"address": s["EmailAddress"], "reason": s["Reason"],
                  "since": str(s.get("LastUpdateTime", ""))} for s in page.get("SuppressedDestinationSummaries", [])]
        token = page.get("NextToken")
        if not token:
            return rows


def import_file(target: Target, path: str | None, reason: str, actor: str, *, push_to_ses: str | None = None,
                from_ses: bool = False) -> Tally:
    """Suppress every address of `path` (or of the SES list, `from_ses`); `push_to_ses`: the SES reason to put each
    on the SES account suppression list with as well."""
    if from_ses:
        found, refused = [(i + 1, row["address"]) for i, row in enumerate(ses_suppressed(target))], []
    else:
        found, refused = read_addresses(path or "")
    config = target.lambda_settings()
    tally = Tally(refused=refused)
    ses = target.client("sesv2") if push_to_ses else None
    for number, address in found:
        try:
            outcome = recipients.suppress_address(address, reason, config, actor=actor)
            if ses is not None:
                ses.put_suppressed_destination(EmailAddress=recipients.normalize(address), Reason=push_to_ses)
                tally.pushed += 1
        except (ValueError, RuntimeError) as error:  # a refused reason, or changing too fast to write: go on
            tally.refused.append((number, address, str(error)))
            continue
        {"suppressed": tally.suppressed, "already": tally.already, "created": tally.created}[outcome].append(
            recipients.normalize(address))
    return tally


def suppressed(target: Target) -> list[dict[str, str]]:
    """Every SUPPRESSED recipient: address, reason, since; by address."""
    config = target.lambda_settings()
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
        if args.action == "import" and (args.file is None) != args.from_ses:
            raise InputError("suppression import: give a FILE or --from-ses (one of the two)")
        if args.action == "import" and not args.reason.strip():  # else every address is refused for it, one by one
            raise InputError("--reason: empty: every suppression's audit record says why")
        target = target_of(args)
        if args.action == "export":
            rows = suppressed(target)
            if args.ses:
                rows = sorted(rows + [{**r, "reason": f"ses:{r['reason']}"} for r in ses_suppressed(target)],
                              key=lambda r: r["address"])
            try:
                with open(args.file, "w", encoding="utf-8", newline="") as out:
                    writer = csv.DictWriter(out, fieldnames=["address", "reason", "since"])
                    writer.writeheader()
                    writer.writerows(rows)
            except OSError as error:
                raise cannot_write(args.file, error) from None
            print(f"exported {len(rows)} suppressed recipients to {args.file}")
            return 0
        tally = import_file(target, args.file, args.reason, actor=f"operator:{args.actor or getpass.getuser()}",
                            push_to_ses=args.ses_reason if args.ses else None, from_ses=args.from_ses)
    except (TargetError, LookupError, ValueError) as error:
        return report(error)
    for number, text, why in tally.refused:
        print(f"{args.file}: line {number}: {why} ({text!r}); skipped", file=sys.stderr)
    source = args.file or "the SES suppression list"
    pushed = f", {tally.pushed} put on the SES suppression list" if args.ses else ""
    print(f"{source}: {len(tally.suppressed)} suppressed, {len(tally.already)} already suppressed, "
          f"{len(tally.created)} not contacts yet (kept suppressed ahead of them), {len(tally.refused)} refused"
          + pushed)
    return 1 if tally.refused else 0


def register(commands: Any) -> None:
    """Add `suppression import|export` to the CLI's subcommands."""
    group = commands.add_parser("suppression", help="the suppression list as CSV: import or export it")
    actions = group.add_subparsers(dest="action", required=True)
    for name, text in (("import", "suppress every address in a CSV (address/email column) or a list, audited, "
                                  "contacts or not yet"),
                       ("export", "write every SUPPRESSED address (address, reason, since) as CSV")):
        action = actions.add_parser(name, help=text)
        if name == "import":
            action.add_argument("file", metavar="FILE", nargs="?", default=None)
            action.add_argument("--from-ses", action="store_true",
                                help="instead of a FILE: the account's SES suppression list")
            action.add_argument("--ses", action="store_true",
                                help="also put each address on the account's SES suppression list (account-wide)")
            action.add_argument("--ses-reason", choices=("BOUNCE", "COMPLAINT"), default="BOUNCE",
                                help="with --ses: the reason SES records (default BOUNCE)")
            action.add_argument("--reason", default="imported suppression list", help="why, for the audit record")
            action.add_argument("--actor", default=None, help="who, for the audit record (default: your login)")
        else:
            action.add_argument("file", metavar="FILE")
            action.add_argument("--ses", action="store_true",
                                help="also the addresses on the account's SES suppression list")
        add_target_options(action)
        action.set_defaults(func=suppression)
