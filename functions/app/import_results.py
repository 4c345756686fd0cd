"""An import's results in S3: the ImportRows Map's ResultWriter files (each batch's counts) and the batches'
rejected rows (app.imports.store_rejects), read back for the import's summary."""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterator
from typing import Any

from app.clients import client
from app.imports import Tally, rejects_key


def sum_results(bucket: str, manifest_key: str) -> Tally:
    """The sum of every succeeded batch's counts, from the ResultWriter's manifest and the files it lists."""
    s3 = client("s3")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    total = Tally()
    for entry in manifest.get("ResultFiles", {}).get("SUCCEEDED", []):
        for result in json.loads(s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()):
            total.add(Tally.from_dict(json.loads(result["Output"])))
    return total


def gather_rejects(import_id: str, bucket: str) -> str | None:
    """One CSV of every rejected row (line, reason, then the row's own fields), in line order; its key, or None
    when no row was rejected."""
    s3, prefix = client("s3"), rejects_key(import_id, 0).rsplit("/", 1)[0] + "/"
    keys, token = [], None
    while True:
        page = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, **({"ContinuationToken": token} if token else {}))
        keys += [o["Key"] for o in page.get("Contents", [])]
        token = page.get("NextContinuationToken")
        if not token:
            break
    if not keys:
        return None
    columns = sorted({name for row in _rejected(s3, bucket, keys) for name in row["fields"]})
    with tempfile.TemporaryDirectory() as folder:  # Lambda's /tmp: the CSV never has to fit in memory
        path = f"{folder}/rejects.csv"
        with open(path, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "reason", *columns])
            for row in _rejected(s3, bucket, keys):  # keys sort by their batch's first line, batches by line
                writer.writerow([row["line"], row["reason"], *(_cell(row["fields"].get(c)) for c in columns)])
        key = rejects_key(import_id)
        s3.upload_file(path, bucket, key)
    return key


def _rejected(s3: Any, bucket: str, keys: list[str]) -> Iterator[dict[str, Any]]:
    for key in sorted(keys):
        for line in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_lines():
            if line:
                yield json.loads(line)


def _cell(value: object) -> str:
    return "" if value is None else value if isinstance(value, str) else json.dumps(value)
