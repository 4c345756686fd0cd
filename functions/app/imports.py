"""A contacts import, one chunk of rows at a time: read what is stored, decide each row (app.domain.audience.plan_row),
write only what differs (app.contacts). The CLI calls it on a file it streams; ImportContactsStateMachine's batch
function calls it on each batch the Distributed Map reads from the uploaded file. The same code decides both.

A chunk is at most 100 addresses (one BatchGetItem of contacts and erased markers, one of memberships). Rows of
one address within a chunk are merged (app.domain.contact_file.merge) before this sees them; across chunks the
writes are idempotent, so an address repeated further down the file is read as the contact the first row made.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app import contacts
from app.clients import client
from app.domain import audience, contact_file

CHUNK = 50  # rows per chunk: 50 contacts + 50 erased markers = one BatchGetItem of 100 keys


@dataclass
class Tally:
    """What an import did (or, dry, would do). Counts are of rows after merging repeats."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    added_to_list: int = 0
    resubscribed: int = 0
    repeated: int = 0  # rows merged into an earlier row of the same address
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> rows
    writes: contacts.WriteCount = field(default_factory=contacts.WriteCount)

    def add(self, other: Tally) -> None:
        for name in ("rows", "created", "updated", "unchanged", "added_to_list", "resubscribed", "repeated"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.skipped.update(other.skipped)
        self.writes.calls += other.writes.calls
        self.writes.write_units += other.writes.write_units
        for table, units in other.writes.by_table.items():
            self.writes.by_table[table] = self.writes.by_table.get(table, 0) + units

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "added_to_list": self.added_to_list, "resubscribed": self.resubscribed, "repeated": self.repeated,
                "skipped": {reason: self.skipped.get(reason, 0) for reason in
                            (audience.SKIP_SUPPRESSED, audience.SKIP_UNSUBSCRIBED, audience.SKIP_INVALID)},
                "dynamodb_writes": self.writes.calls, "write_units": self.writes.write_units}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Tally:
        tally = cls(**{k: int(raw.get(k, 0)) for k in ("rows", "created", "updated", "unchanged", "added_to_list",
                                                       "resubscribed", "repeated")})
        tally.skipped.update({k: int(v) for k, v in (raw.get("skipped") or {}).items()})
        tally.writes.calls = int(raw.get("dynamodb_writes", 0))
        tally.writes.write_units = int(raw.get("write_units", 0))
        return tally


@dataclass(frozen=True)
class Options:
    list_id: str
    source: str  # recorded on each membership it adds: import:<file>
    actor: str
    dry_run: bool = False
    resubscribe_reason: str | None = None  # --resubscribe --reason TEXT: UNSUBSCRIBED members back to SUBSCRIBED


def import_chunk(rows: Sequence[Any], options: Options, settings: Any, now: datetime) -> Tally:
    """Import rows (each with .address, normalized, and .attributes) of distinct addresses into the list."""
    tally = Tally(rows=len(rows))
    if not rows:
        return tally
    addresses = [row.address for row in rows]
    stored = contacts.read_contacts(addresses, settings)
    memberships = contacts.read_memberships(options.list_id, addresses, settings)
    resubscribe = options.resubscribe_reason is not None
    created: dict[str, dict[str, Any]] = {}
    joined: list[str] = []
    updates: list[tuple[Any, dict[str, Any]]] = []
    again: list[Any] = []
    for row in rows:
        plan = audience.plan_row(row.attributes, stored.get(row.address), memberships.get(row.address),
                                 resubscribe=resubscribe)
        if plan.outcome in (audience.SKIP_SUPPRESSED, audience.SKIP_UNSUBSCRIBED):
            tally.skipped[plan.outcome] += 1
            continue
        setattr(tally, plan.outcome, getattr(tally, plan.outcome) + 1)
        tally.added_to_list += plan.add_to_list
        tally.resubscribed += plan.resubscribe
        if plan.create:
            created[row.address] = plan.set_attributes or {}
            continue
        if plan.set_attributes is not None:
            updates.append((row, plan.set_attributes))
        if plan.add_to_list:
            joined.append(row.address)
        if plan.resubscribe:
            again.append(row)
    if options.dry_run:
        return tally
    source, created_by = options.source, f"import:{options.list_id}"
    cancelled = contacts.add_new(created, joined, options.list_id, source, created_by, now, settings, tally.writes)
    for address in sorted(cancelled):  # made meanwhile by someone else: write it the way safe against any state
        if address in created:
            contacts.upsert_contact(address, created[address], created_by, now, settings, tally.writes)
        contacts.add_membership(options.list_id, address, source, now, settings, tally.writes)
    for row, changed in updates:
        contacts.upsert_contact(row.address, changed, created_by, now, settings, tally.writes)
    for row in again:
        contacts.set_subscription(options.list_id, row.address, audience.SUBSCRIBED,
                                  reason=options.resubscribe_reason or "", source=source, actor=options.actor,
                                  event_id=f"resubscribe-{options.list_id}", now=now, settings=settings)
        tally.writes.add(settings.memberships_table, 4)  # a transaction of two items: twice the units each
    return tally


def chunked(items: Iterable[Any], size: int = CHUNK) -> Iterator[tuple[list[Any], int, list[Any]]]:
    """Rows (contact_file.ContactRow) and row problems (contact_file.RowProblem) in file order, as chunks of at most
    `size` distinct addresses: (the rows, merged per address; how many rows were merged into another; the problems
    met since the last chunk)."""
    pending: dict[str, list[Any]] = {}
    bad: list[Any] = []
    for item in items:
        if isinstance(item, contact_file.RowProblem):
            bad.append(item)
            continue
        if item.address not in pending and len(pending) == size:
            yield _merged(pending), sum(len(v) - 1 for v in pending.values()), bad
            pending, bad = {}, []
        pending.setdefault(item.address, []).append(item)
    if pending or bad:
        yield _merged(pending), sum(len(v) - 1 for v in pending.values()), bad


def _merged(pending: dict[str, list[Any]]) -> list[Any]:
    return [contact_file.merge(rows)[0] if len(rows) > 1 else rows[0] for rows in pending.values()]


def import_rows(items: Iterable[Any], options: Options, settings: Any, now: datetime, *,
                reject: Callable[[Any], None], progress: Callable[[Tally], None] | None = None) -> Tally:
    """Import rows and row problems (in file order), handing each problem (an invalid row) to `reject`."""
    tally = Tally()
    for rows, repeated, bad in chunked(items):
        done = import_chunk(rows, options, settings, now)
        done.repeated = repeated
        done.rows += repeated + len(bad)
        done.skipped[audience.SKIP_INVALID] += len(bad)
        for problem in bad:
            reject(problem)
        tally.add(done)
        if progress is not None:
            progress(done)
    return tally


def rejects_key(import_id: str, first_line: int | None = None) -> str:
    """Where an import's rejected rows go in the manifest bucket: one file per batch, then one CSV for the import."""
    if first_line is None:
        return f"imports/{import_id}/rejects.csv"
    return f"imports/{import_id}/rejects/{first_line:012d}.jsonl"


def store_rejects(problems: Sequence[Any], import_id: str, bucket: str) -> None:
    """A batch's rejected rows, as JSON Lines, under the import's prefix (the same key on a retry)."""
    if not problems:
        return
    body = "".join(json.dumps({"line": p.line, "reason": p.reason, "fields": dict(p.fields)}, default=str) + "\n"
                   for p in problems)
    client("s3").put_object(Bucket=bucket, Key=rejects_key(import_id, problems[0].line), Body=body.encode())


def add_progress(import_id: str, rows: int, settings: Any) -> None:
    """Count rows done on the import's progress item (EventsTable pk IMPORT#<id>), which the CLI shows. A retried
    batch counts twice here; the summary counts from the batches' results, once."""
    client("dynamodb").update_item(
        TableName=settings.events_table, Key={"pk": {"S": f"IMPORT#{import_id}"}, "sk": {"S": "progress"}},
        UpdateExpression="ADD done_rows :n", ExpressionAttributeValues={":n": {"N": str(rows)}})
