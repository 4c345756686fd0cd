"""The recipients' own attributes (whatever a team stores on a RecipientsTable item): what audience filters
match and what personalization puts in a message."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from app.clients import client
from app.settings import Settings


def read(addresses: list[str], names: list[str], settings: Settings) -> dict[str, dict[str, Any]]:
    """The named attributes of each address that has an item, as Python values (numbers as Decimal, sets as sets),
    only those (audience filters and template data never need the rest). Eventually consistent."""
    ddb, table_name, plain = client("dynamodb"), settings.recipients_table, TypeDeserializer()
    aliases = {f"#f{i}": n for i, n in enumerate(names)}
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(addresses), 100):  # BatchGetItem's limit
        request = {table_name: {"Keys": [{"address": {"S": a}} for a in addresses[start : start + 100]],
                                "ProjectionExpression": ", ".join(["#a", *aliases]),
                                "ExpressionAttributeNames": {"#a": "address", **aliases}}}
        while request:
            response = ddb.batch_get_item(RequestItems=request)
            for item in response["Responses"].get(table_name, []):
                found[item["address"]["S"]] = {k: plain.deserialize(v) for k, v in item.items()}
            request = response.get("UnprocessedKeys") or {}
    return found
