"""DynamoDB read and write request units, as on-demand capacity bills them, into the active Meter.

Installed by patches/metering.py. Every DynamoDB call a run makes (handlers, the engine, Step Functions'
optimized dynamodb integrations) reaches moto's DynamoHandler, whose actions are wrapped here; Query and
Scan are measured in moto's Table, where the items read are known before FilterExpression and projection.

Rules (developerguide: read-write-operations, CapacityUnitCalculations, transaction-apis):
- Item size: attribute name bytes + value size; strings UTF-8 bytes, numbers (significant digits / 2) + 1,
  binary raw bytes, booleans and nulls 1, lists and maps 3 + 1 per element + the elements, sets the sum.
- Writes, per item, 1 unit per 1 KB of the larger of the item before and after, at least 1:
  PutItem, UpdateItem, DeleteItem, each BatchWriteItem request; TransactWriteItems twice that (Put,
  Update, Delete and ConditionCheck). A write that fails its condition still consumes (before == after);
  other errors (validation, unknown table) consume nothing.
- Secondary indexes: a write that adds, removes or changes an item's entry in a GSI or LSI consumes units
  for that entry too (a changed index key: the old entry's delete plus the new one's put), never doubled
  for transactions.
- Reads: 1 unit per 4 KB for a strongly consistent read, half for an eventually consistent one, twice
  for a transactional one, at least one 4 KB step even when nothing is found. GetItem, each BatchGetItem
  key and each TransactGetItems Get are sized per item; Query and Scan sum the sizes of the items read
  (before any filter; index entries for an index) and round up once per request.
Atomicity: every wrapped call runs under one lock. moto applies a call step by step, so two threads could
interleave a transaction or a condition check with its write; on AWS each call is atomic.
Not metered: PartiQL (ExecuteStatement, BatchExecuteStatement, ExecuteTransaction), streams, TTL deletes.
"""

from __future__ import annotations

import base64
import binascii
import copy
import inspect
import math
import threading
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from functools import wraps
from typing import Any

from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler

from sesflow.engine import runtime
from sesflow.engine.patches import MotoDriftError

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
# A condition that fails is evaluated against the stored item: the write still consumes (before == after).
_CONSUMING_ERRORS = {"ConditionalCheckFailedException", "TransactionCanceledException"}
_WRAPPED = "_sesflow_capacity"
_ATOMIC = threading.RLock()


# --- item size -------------------------------------------------------------------------------------------


def _number_size(text: str) -> int:
    try:
        digits = Decimal(text).normalize().as_tuple().digits
    except InvalidOperation:
        digits = tuple(c for c in text if c.isdigit())
    significant = max(1, len(digits)) if any(digits) else 1
    return math.ceil(significant / 2) + 1


def _binary_size(value: Any) -> int:
    if isinstance(value, bytes | bytearray):
        return len(value)
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError, TypeError):
        return len(str(value).encode())


def value_size(value: DynamoType | Mapping[str, Any]) -> int:
    """The size DynamoDB counts for one attribute value, given as a DynamoType or as {"S": ...} JSON."""
    if isinstance(value, DynamoType):
        kind, data = value.type, value.value
    else:
        (kind, data), = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return _number_size(str(data))
    if kind == "B":
        return _binary_size(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(v.encode()) for v in data)
    if kind == "NS":
        return sum(_number_size(str(v)) for v in data)
    if kind == "BS":
        return sum(_binary_size(v) for v in data)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in data.items())
    raise ValueError(f"unknown DynamoDB attribute type {kind}")


def item_size(attributes: Mapping[str, Any]) -> int:
    """An item's size: attribute name bytes plus value sizes (moto's Item.attrs or the API's Item JSON)."""
    return sum(len(name.encode()) + value_size(value) for name, value in attributes.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units(size: int, consistent: bool) -> float:
    steps = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(steps) if consistent else steps / 2


# --- what a write touches ---------------------------------------------------------------------------------


class _Image:
    """An item as stored at one moment: its size and its entry in each secondary index (a copy)."""

    def __init__(self, table: Table, item: Item | None) -> None:
        self.size = item_size(item.attrs) if item is not None else 0
        self.indexes: dict[str, tuple[tuple, dict, int]] = {}
        if item is None:
            return
        for index in table.all_indexes():
            if all(name in item.attrs for name in index.schema_key_attrs):
                entry = copy.deepcopy(index.project(item).attrs)
                keys = tuple(repr(item.attrs[name]) for name in index.schema_key_attrs)
                self.indexes[index.name] = (keys, dict(entry), item_size(entry))


def _index_units(before: _Image, after: _Image) -> int:
    units = 0
    for name in before.indexes.keys() | after.indexes.keys():
        old, new = before.indexes.get(name), after.indexes.get(name)
        if old is None or new is None:
            units += write_units((old or new)[2])  # type: ignore[index]
        elif old[0] != new[0]:
            units += write_units(old[2]) + write_units(new[2])
        elif old[1] != new[1]:
            units += write_units(max(old[2], new[2]))
    return units


def _locate(handler: DynamoHandler, table_name: str, attributes: Mapping[str, Any]) -> tuple[Table, tuple] | None:
    """(table, (hash, range)) for the item these attributes (a Key or a whole Item) name, if they do."""
    try:
        table = handler.dynamodb_backend.get_table(table_name)
        hash_key = DynamoType(attributes[table.hash_key_attr])
        range_key = DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None
    except Exception:  # unknown table or malformed key: the action itself reports it, and nothing is consumed
        return None
    return table, (hash_key, range_key)


def _stored(table: Table, key: tuple) -> Item | None:
    try:
        return table.get_item(*key)
    except Exception:
        return None


def _write_targets(handler: DynamoHandler, action: str) -> list[tuple[str, Mapping[str, Any], int]]:
    """(table name, Key or Item, multiplier) for each item the write action touches."""
    body = handler.body
    if action == "put_item":
        return [(body.get("TableName", ""), body.get("Item") or {}, 1)]
    if action in ("update_item", "delete_item"):
        return [(body.get("TableName", ""), body.get("Key") or {}, 1)]
    if action == "batch_write_item":
        return [
            (table_name, (request.get("PutRequest") or {}).get("Item") or (request.get("DeleteRequest") or {})
             .get("Key") or {}, 1)
            for table_name, requests in (body.get("RequestItems") or {}).items()
            for request in requests
        ]
    targets = []
    for entry in body.get("TransactItems") or []:  # transact_write_items
        for kind, spec in entry.items():
            targets.append((spec.get("TableName", ""), spec.get("Item") if kind == "Put" else spec.get("Key") or {}, 2))
    return targets


def _metered_write(action: str, original: Callable[[DynamoHandler], Any]) -> Callable[[DynamoHandler], Any]:
    @wraps(original)
    def wrapper(self: DynamoHandler) -> Any:
        with _ATOMIC:
            return _write(self)

    def _write(self: DynamoHandler) -> Any:
        try:
            touched = [
                (located, multiplier)
                for table_name, attributes, multiplier in _write_targets(self, action)
                if (located := _locate(self, table_name, attributes or {})) is not None
            ]
        except Exception:
            touched = []
        before = [_Image(table, _stored(table, key)) for (table, key), _ in touched]
        consumed = True
        try:
            return original(self)
        except Exception as error:
            consumed = str(getattr(error, "error_type", "")).rpartition("#")[2] in _CONSUMING_ERRORS
            raise
        finally:
            if consumed and touched:
                meter = runtime.current().meter
                for ((table, key), multiplier), old in zip(touched, before, strict=True):
                    new = _Image(table, _stored(table, key))
                    units = multiplier * write_units(max(old.size, new.size)) + _index_units(old, new)
                    meter.count_dynamodb_write(table.name, units)

    setattr(wrapper, _WRAPPED, True)
    return wrapper


# --- reads ------------------------------------------------------------------------------------------------


def _read_targets(handler: DynamoHandler, action: str) -> list[tuple[str, Mapping[str, Any], float, bool]]:
    """(table name, Key, multiplier, consistent) for each item the item-read action reads."""
    body = handler.body
    if action == "get_item":
        return [(body.get("TableName", ""), body.get("Key") or {}, 1, bool(body.get("ConsistentRead")))]
    if action == "batch_get_item":
        return [
            (table_name, key, 1, bool(spec.get("ConsistentRead")))
            for table_name, spec in (body.get("RequestItems") or {}).items()
            for key in spec.get("Keys") or []
        ]
    return [  # transact_get_items
        ((entry.get("Get") or {}).get("TableName", ""), (entry.get("Get") or {}).get("Key") or {}, 2, True)
        for entry in body.get("TransactItems") or []
    ]


def _metered_read(action: str, original: Callable[[DynamoHandler], Any]) -> Callable[[DynamoHandler], Any]:
    @wraps(original)
    def wrapper(self: DynamoHandler) -> Any:
        with _ATOMIC:
            result = original(self)  # an error consumes nothing
        meter = runtime.current().meter
        for table_name, key, multiplier, consistent in _read_targets(self, action):
            located = _locate(self, table_name, key)
            if located is not None:
                table, stored_key = located
                item = _stored(table, stored_key)
                size = item_size(item.attrs) if item is not None else 0
                meter.count_dynamodb_read(table.name, multiplier * read_units(size, consistent))
        return result

    setattr(wrapper, _WRAPPED, True)
    return wrapper


def _metered_search(original: Callable[..., Any], filter_arg: str, projection_arg: str) -> Callable[..., Any]:
    """Table.query / Table.scan: read without filter and projection to see every item read, count them,
    then filter and project as moto does after its read loop."""
    signature = inspect.signature(original)

    @wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        table: Table = bound.arguments["self"]
        filter_expression = bound.arguments.get(filter_arg)
        projection = bound.arguments.get(projection_arg)
        bound.arguments[filter_arg] = None
        bound.arguments[projection_arg] = None
        results, scanned_count, last_evaluated_key = original(*bound.args, **bound.kwargs)
        size = sum(item_size(item.attrs) for item in results)
        consistent = bool(bound.arguments.get("consistent_read"))
        runtime.current().meter.count_dynamodb_read(table.name, read_units(size, consistent))
        if filter_expression is not None:
            results = [item for item in results if filter_expression.expr(item)]
        if projection:
            results = [item.project(projection) for item in results]
        return results, scanned_count, last_evaluated_key

    setattr(wrapper, _WRAPPED, True)
    return wrapper


_WRITES = ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items")
_READS = ("get_item", "batch_get_item", "transact_get_items")
_SEARCHES = {"query": ("filter_expression", "projection_expressions"),
             "scan": ("filter_expression", "projection_expression")}


def install() -> None:
    """Check moto still looks as expected, then wrap (once). Safe to call again."""
    for action in _WRITES + _READS:
        if not callable(getattr(DynamoHandler, action, None)):
            raise MotoDriftError(f"moto.dynamodb.responses.DynamoHandler.{action}: missing; capacity metering wraps it")
    for name, params in _SEARCHES.items():
        method = getattr(Table, name, None)
        wanted = set(params) | {"consistent_read"}
        if method is None or not wanted <= set(inspect.signature(method).parameters):
            raise MotoDriftError(f"moto.dynamodb.models.table.Table.{name}: no longer takes {sorted(wanted)}")
    for name in ("get_item", "all_indexes"):
        if not callable(getattr(Table, name, None)):
            raise MotoDriftError(f"moto.dynamodb.models.table.Table.{name}: missing; capacity metering reads it")
    for action in _WRITES:
        if not getattr(getattr(DynamoHandler, action), _WRAPPED, False):
            setattr(DynamoHandler, action, _metered_write(action, getattr(DynamoHandler, action)))
    for action in _READS:
        if not getattr(getattr(DynamoHandler, action), _WRAPPED, False):
            setattr(DynamoHandler, action, _metered_read(action, getattr(DynamoHandler, action)))
    for name, (filter_arg, projection_arg) in _SEARCHES.items():
        if not getattr(getattr(Table, name), _WRAPPED, False):
            setattr(Table, name, _metered_search(getattr(Table, name), filter_arg, projection_arg))
