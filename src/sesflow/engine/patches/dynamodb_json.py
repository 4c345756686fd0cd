"""DynamoDB item responses written straight to JSON.

moto 5.2's responses go through its shape-driven serializer (moto.core.serialize), which walks botocore's output
shape member by member for every response: 56% of a 50-key BatchGetItem on the engine, and about a seventh of
the demo's CPU. Once moto's DynamoResult has turned its DynamoType values into dicts ({"S": ...}), an item
operation's result is already the wire JSON, so it is dumped as is. Whatever the wire form would convert
(binary values go base64, timestamps, anything json cannot dump) takes moto's own path, as do errors and every
other operation. tests/engine/test_dynamodb_json.py holds both paths to the same answers.
"""

from __future__ import annotations

import json
from typing import Any

from moto.core.responses import ActionResult
from moto.dynamodb.responses import DynamoResult

from sesflow.engine.patches import MotoDriftError

ITEM_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "PutItem", "UpdateItem", "DeleteItem",
                             "TransactGetItems"})
_BINARY = ('"B":', '"BS":')  # binary attribute values: base64 on the wire, left to moto
_WRAPPED = "_sesflow_plain_json"


def _execute_result(self: DynamoResult, context: Any) -> tuple[int, dict[str, str], str]:
    operation = context.operation_model
    if operation.name in ITEM_OPERATIONS and isinstance(self.result, dict):
        try:
            body = json.dumps(self.result, separators=(",", ":"))
        except (TypeError, ValueError):
            body = None
        if body is not None and not any(marker in body for marker in _BINARY):
            version = operation.service_model.metadata.get("jsonVersion", "1.0")
            return 200, {"Content-Type": f"application/x-amz-json-{version}"}, body
    return ActionResult.execute_result(self, context)


def install() -> None:
    if getattr(DynamoResult.execute_result, _WRAPPED, False):
        return
    if "execute_result" in vars(DynamoResult) or not hasattr(ActionResult, "execute_result"):
        raise MotoDriftError("moto.dynamodb.responses.DynamoResult: expected to inherit ActionResult.execute_result")
    setattr(_execute_result, _WRAPPED, True)
    DynamoResult.execute_result = _execute_result  # type: ignore[method-assign]


def uninstall() -> None:
    """moto's own path again (the equivalence test runs both)."""
    if getattr(DynamoResult.execute_result, _WRAPPED, False):
        del DynamoResult.execute_result
