"""The served engine's state kept across restarts (`sesflow local up --serve --data DIR`): written to DIR when the
engine stops, loaded into the freshly deployed stack when it starts again.

    DIR/sesflow-data.json            what wrote it: format, template, stack, region, the tables' keys, the time
    DIR/dynamodb/<LogicalId>.jsonl   every item of each table, one DynamoDB-JSON object a line (binary as base64)
    DIR/s3/<LogicalId>.jsonl         each object of each bucket: its key, file, content type and metadata
    DIR/s3/<LogicalId>/<file>        the object's bytes (the file is the key, percent-encoded)
    DIR/ses/templates.json           the account's SES email templates (name, subject, HTML, text)
    DIR/ses/suppression.json         the account-level suppression list (address, reason, when) and its reasons

Kept: what the tables, buckets and SES account hold. Not kept: executions (a workflow running at the stop is
gone; its campaign's item stays as it was), queued messages, the SES outbox and its 24-hour usage. The engine's
clock starts again no earlier than the time saved, so what was written then is never in the future.

Written whole or not at all: into a sibling folder first, which then replaces DIR. A DIR written from a template
whose tables differ (another table, another key) is refused before anything is loaded.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sesflow.engine import ses
from sesflow.engine.template import ACCOUNT_ID

MANIFEST = "sesflow-data.json"
FORMAT = 1
_TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable")


class DataDirError(RuntimeError):
    """DIR cannot be loaded or written; the message names the file, the line or the table, for the operator."""


# ------------------------------------------------------------------------------------------------ reading DIR


def manifest(directory: Path) -> dict[str, Any] | None:
    """DIR's manifest; None for a folder that does not exist or is empty (a first start). Refuses a folder that
    holds something else, so a typo never loads, or later overwrites, an unrelated folder."""
    directory = Path(directory)
    if not directory.exists() or (directory.is_dir() and not any(directory.iterdir())):
        return None
    path = directory / MANIFEST
    if not directory.is_dir() or not path.is_file():
        raise DataDirError(f"{directory}: not a sesflow data folder (no {MANIFEST}); give --data a new or empty "
                           f"folder, or one an earlier `sesflow local up --serve --data` wrote")
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataDirError(f"{path}: cannot read it ({error})") from None
    if not isinstance(found, dict) or found.get("format") != FORMAT:
        raise DataDirError(f"{path}: format {found.get('format') if isinstance(found, dict) else None!r}, this "
                           f"sesflow reads format {FORMAT}")
    return found


def saved_time(found: dict[str, Any] | None) -> datetime | None:
    """The engine's time when DIR was written: the restarted clock starts no earlier."""
    if not found or not found.get("engine_time"):
        return None
    return datetime.fromisoformat(found["engine_time"])


def _schemas(stack: Any) -> dict[str, dict[str, Any]]:
    """Each table's key, as the template declares it: what items of a saved table need to fit."""
    tables = {}
    for rtype in _TABLE_TYPES:
        for r in stack.template.of_type(rtype):
            p = r.properties
            kinds = {a["AttributeName"]: a["AttributeType"] for a in p.get("AttributeDefinitions") or []}
            tables[r.logical_id] = {"key": [f"{k['AttributeName']} ({kinds.get(k['AttributeName'], '?')}, "
                                            f"{k['KeyType']})" for k in p.get("KeySchema") or []]}
    return tables


def _buckets(stack: Any) -> dict[str, str]:
    return {r.logical_id: r.physical_id for r in stack.template.of_type("AWS::S3::Bucket")}


def check(stack: Any, found: dict[str, Any], directory: Path) -> None:
    """Refuse DIR if its tables or buckets are not this template's (another table, another key)."""
    here, there = _schemas(stack), found.get("tables") or {}
    problems = []
    for logical_id in sorted(set(here) | set(there)):
        if logical_id not in here:
            problems.append(f"{logical_id}: saved there, not in {stack.template_path}")
        elif logical_id not in there:
            problems.append(f"{logical_id}: in {stack.template_path}, not saved there")
        elif here[logical_id]["key"] != there[logical_id].get("key"):
            problems.append(f"{logical_id}: key {', '.join(there[logical_id].get('key') or [])} there, "
                            f"{', '.join(here[logical_id]['key'])} in {stack.template_path}")
    for logical_id in sorted(set(found.get("buckets") or []) - set(_buckets(stack))):
        problems.append(f"{logical_id}: a bucket saved there, not in {stack.template_path}")
    if problems:
        raise DataDirError(f"{directory} was written from another template's tables ({found.get('template')}): "
                           f"{'; '.join(problems)}. Give --data another folder, or start the template that wrote it")


# ------------------------------------------------------------------------------------------------ save


def save(stack: Any, directory: Path) -> dict[str, Any]:
    """Write the stack's tables, buckets, SES templates and suppression list to DIR (replacing what it held);
    returns what was written, counted."""
    directory = Path(directory)
    manifest(directory)  # never replace a folder that is not ours
    partial = directory.with_name(f"{directory.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "dynamodb").mkdir(parents=True)
    (partial / "s3").mkdir()
    (partial / "ses").mkdir()
    counts: dict[str, Any] = {"items": {}, "objects": {}}
    ddb = stack.client("dynamodb")
    for logical_id in _schemas(stack):
        table, written = stack.physical_id(logical_id), 0
        with open(partial / "dynamodb" / f"{logical_id}.jsonl", "w", encoding="utf-8") as out:
            for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
                for item in page["Items"]:
                    out.write(json.dumps(_encode(item), separators=(",", ":"), sort_keys=True) + "\n")
                    written += 1
        counts["items"][logical_id] = written
    s3 = stack.client("s3")
    for logical_id, bucket in _buckets(stack).items():
        folder, written = partial / "s3" / logical_id, 0
        folder.mkdir()
        with open(partial / "s3" / f"{logical_id}.jsonl", "w", encoding="utf-8") as index:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for entry in page.get("Contents", []):
                    got = s3.get_object(Bucket=bucket, Key=entry["Key"])
                    file = urllib.parse.quote(entry["Key"], safe="")
                    (folder / file).write_bytes(got["Body"].read())
                    index.write(json.dumps({"key": entry["Key"], "file": file,
                                            "content_type": got.get("ContentType"),
                                            "metadata": got.get("Metadata") or {}}) + "\n")
                    written += 1
        counts["objects"][logical_id] = written
    sesv2, templates, token = stack.client("sesv2"), [], None
    while True:
        page = sesv2.list_email_templates(PageSize=100, **({"NextToken": token} if token else {}))
        for entry in page.get("TemplatesMetadata", []):
            got = sesv2.get_email_template(TemplateName=entry["TemplateName"])
            templates.append({"TemplateName": got["TemplateName"], "TemplateContent": got["TemplateContent"]})
        token = page.get("NextToken")
        if not token:
            break
    (partial / "ses" / "templates.json").write_text(json.dumps(templates, indent=1), encoding="utf-8")
    sim = ses.simulator()
    with sim.lock:
        account = sim.account(ACCOUNT_ID, stack.region)
        suppression = {
            "reasons": list(account.suppressed_reasons),
            "addresses": [{"address": d.email_address, "reason": d.reason,
                           "at": d.last_update_time.isoformat()} for d in account.suppressed.values()],
        }
    (partial / "ses" / "suppression.json").write_text(json.dumps(suppression, indent=1), encoding="utf-8")
    counts |= {"templates": len(templates), "suppressed": len(suppression["addresses"])}
    (partial / MANIFEST).write_text(json.dumps({
        "format": FORMAT,
        "template": str(Path(stack.template_path).resolve()),
        "stack_name": stack.stack_name,
        "region": stack.region,
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "engine_time": stack.clock.now().isoformat(timespec="milliseconds"),
        "tables": _schemas(stack),
        "buckets": sorted(_buckets(stack)),
        "counts": counts,
    }, indent=1), encoding="utf-8")
    _replace(partial, directory)
    return counts


def _replace(partial: Path, directory: Path) -> None:
    """partial becomes DIR; the old DIR is removed only once the new one is in place."""
    old = directory.with_name(f"{directory.name}.old-{os.getpid()}")
    if directory.exists():
        os.replace(directory, old)
    os.replace(partial, directory)
    shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ load


def load(stack: Any, directory: Path, found: dict[str, Any]) -> dict[str, Any]:
    """Put DIR's items, objects, templates and suppressions into the stack (just deployed, so empty); returns what
    was loaded, counted. Checks DIR against the template first (check)."""
    directory = Path(directory)
    check(stack, found, directory)
    counts: dict[str, Any] = {"items": {}, "objects": {}}
    ddb = stack.client("dynamodb")
    for logical_id in _schemas(stack):
        path = directory / "dynamodb" / f"{logical_id}.jsonl"
        items = []
        for line, item in enumerate(_lines(path) if path.exists() else [], start=1):
            try:
                items.append(_decode(item))
            except (AttributeError, TypeError, ValueError):
                raise DataDirError(f"{path}: item {line}: not a DynamoDB-JSON item") from None
        table = stack.physical_id(logical_id)
        for start in range(0, len(items), 25):  # BatchWriteItem takes up to 25 requests
            requests = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
            while requests:
                requests = ddb.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
        counts["items"][logical_id] = len(items)
    s3 = stack.client("s3")
    for logical_id, bucket in _buckets(stack).items():
        path = directory / "s3" / f"{logical_id}.jsonl"
        entries = _lines(path) if path.exists() else []
        for line, entry in enumerate(entries, start=1):
            if not isinstance(entry, dict) or not {"key", "file"} <= set(entry) or "/" in str(entry["file"]) \
                    or str(entry["file"]).startswith("."):
                raise DataDirError(f"{path}:{line}: not an object entry ({{\"key\", \"file\", ...}})")
            body = directory / "s3" / logical_id / entry["file"]
            try:
                data = body.read_bytes()
            except OSError as error:
                raise DataDirError(f"{path}:{line}: {body}: cannot read it ({error.strerror or error})") from None
            s3.put_object(Bucket=bucket, Key=entry["key"], Body=data, Metadata=entry.get("metadata") or {},
                          **({"ContentType": entry["content_type"]} if entry.get("content_type") else {}))
        counts["objects"][logical_id] = len(entries)
    templates = _json(directory / "ses" / "templates.json", [])
    sesv2 = stack.client("sesv2")
    for template in templates:
        sesv2.create_email_template(TemplateName=template["TemplateName"], TemplateContent=template["TemplateContent"])
    suppression = _json(directory / "ses" / "suppression.json", {"reasons": None, "addresses": []})
    sim = ses.simulator()
    with sim.lock:
        account = sim.account(ACCOUNT_ID, stack.region)
        if suppression.get("reasons") is not None:
            account.suppressed_reasons = list(suppression["reasons"])
        for entry in suppression.get("addresses") or []:
            account.suppressed[entry["address"].lower()] = ses.SuppressedDestination(
                entry["address"], entry["reason"], datetime.fromisoformat(entry["at"]))
    counts |= {"templates": len(templates), "suppressed": len(suppression.get("addresses") or [])}
    stack.meter.reset()  # the run's figures start after the state is back, as after deployment
    return counts


def _lines(path: Path) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataDirError(f"{path}: cannot read it ({error})") from None
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            found.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise DataDirError(f"{path}:{number}: not JSON ({error.msg})") from None
    return found


def _json(path: Path, default: Any) -> Any:
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataDirError(f"{path}: cannot read it ({error})") from None


def _encode(item: dict[str, Any]) -> dict[str, Any]:
    """An item in DynamoDB JSON as boto3 gives it, with binary values (bytes) as base64 text."""
    return {name: _attribute(value, lambda b: base64.b64encode(b).decode()) for name, value in item.items()}


def _decode(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _attribute(value, base64.b64decode) for name, value in item.items()}


def _attribute(value: dict[str, Any], binary: Any) -> dict[str, Any]:
    (kind, payload), = value.items()
    if kind == "B":
        return {"B": binary(payload)}
    if kind == "BS":
        return {"BS": [binary(b) for b in payload]}
    if kind == "M":
        return {"M": {name: _attribute(v, binary) for name, v in payload.items()}}
    if kind == "L":
        return {"L": [_attribute(v, binary) for v in payload]}
    return value
