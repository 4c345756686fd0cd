"""Two deep copies moto 5.2.5 makes on DynamoDB writes, made in the size of the call.

TransactWriteItems: `DynamoDBBackend.transact_write_items` deep-copies each table a transaction names before
applying it, to roll back if it is cancelled: a cost in the size of the table, on every call. A campaign's
feedback ingestion writes a transaction per batch of events, touching RecipientsTable, so with 10,000
recipients most of the engine's time went into copying it. Here the backup is of the items the transaction
names (at most 100), and a cancelled transaction puts exactly those back: the same outcome, at the cost of the
transaction.

UpdateItem: each `Validator` deep-copies the parsed update expression before resolving it (the tree is reused
when the item is new). copy.deepcopy walks the tree's parent links through its memo: 8% of the demo's CPU.
Here a parsed tree is copied node by node, 3x faster, to the same tree; anything else keeps copy.deepcopy.
"""

from __future__ import annotations

import copy
import inspect
import threading
from functools import wraps
from typing import Any

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.dynamodb.parsing import validators
from moto.dynamodb.parsing.ast_nodes import Node

from sesflow.engine.patches import MotoDriftError

_TARGET = "moto.dynamodb.models.DynamoDBBackend.transact_write_items"
_MARKERS = ("original_table_state[table_name] = copy.deepcopy(",
            "self.tables[table_name] = original_table_state[table_name]")
_WRAPPED = "_sesflow_item_backup"
_VALIDATOR_COPY = "self.node_to_validate = deepcopy(expression)"
_PARSED_NODE_FIELDS = frozenset({"type", "children", "parent"})  # all a parser's Node holds
_IMMUTABLE = (str, int, float, bool, type(None))
_skip_table_copies = threading.local()


class _Copy:
    """moto.dynamodb.models' `copy`: deepcopy passes a Table through while a wrapped transaction runs."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        if isinstance(value, Table) and getattr(_skip_table_copies, "on", False):
            return value
        return copy.deepcopy(value, memo)


def _key(table: Table, op_type: str, op: dict[str, Any]) -> tuple[DynamoType, DynamoType | None]:
    attributes = op["Item"] if op_type == "Put" else op["Key"]
    hash_key = DynamoType(attributes[table.hash_key_attr])
    return hash_key, DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None


def _backup(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[tuple]:
    """(table, hash, range, a copy of the stored item or None) for each item the transaction names."""
    saved = []
    for entry in transact_items:
        try:
            op_type, op = next(iter(entry.items()))
            table = backend.tables[op["TableName"]]
            hash_key, range_key = _key(table, op_type, op)
        except Exception:  # malformed: moto refuses it before writing anything
            continue
        saved.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
    return saved


def _restore(saved: list[tuple]) -> None:
    for table, hash_key, range_key, item in reversed(saved):  # the first backup of an item is the original
        if range_key is not None:
            if item is None:
                table.items.get(hash_key, {}).pop(range_key, None)
            else:
                table.items[hash_key][range_key] = item
        elif item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item


class _NotParsed(Exception):
    """A node holds more than a parser gives it: copy.deepcopy decides how to copy it."""


def _clone(node: Node, parent: Node | None) -> Node:
    if not _PARSED_NODE_FIELDS.issuperset(vars(node)):
        raise _NotParsed
    new = object.__new__(type(node))
    new.__dict__.update(vars(node))
    new.parent = parent
    if isinstance(node.children, list):
        new.children = [_clone(child, new) if isinstance(child, Node)
                        else child if isinstance(child, _IMMUTABLE) else copy.deepcopy(child)
                        for child in node.children]
    return new


def _validator_deepcopy(value: Any, memo: Any = None) -> Any:
    """moto.dynamodb.parsing.validators' `deepcopy`: a parsed tree, root first, is copied node by node."""
    if isinstance(value, Node) and value.parent is None and memo is None:
        try:
            return _clone(value, None)
        except _NotParsed:
            pass
    return copy.deepcopy(value, memo)


def _install_validator_copy() -> None:
    if validators.deepcopy is _validator_deepcopy:
        return
    if validators.deepcopy is not copy.deepcopy or _VALIDATOR_COPY not in inspect.getsource(validators.Validator):
        raise MotoDriftError("moto.dynamodb.parsing.validators.Validator no longer copies its expression with "
                             "copy.deepcopy; re-check this patch")
    validators.deepcopy = _validator_deepcopy  # type: ignore[attr-defined]


def install() -> None:
    _install_validator_copy()
    original = DynamoDBBackend.transact_write_items
    if getattr(original, _WRAPPED, False):
        return
    source = inspect.getsource(original)
    if missing := [m for m in _MARKERS if m not in source] or not hasattr(dynamodb_models, "copy"):
        raise MotoDriftError(f"{_TARGET} changed: {missing or 'no module-level copy'}; re-check this patch")
    dynamodb_models.copy = _Copy()  # type: ignore[attr-defined]

    @wraps(original)
    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        saved = _backup(self, transact_items)
        _skip_table_copies.on = True
        try:
            return original(self, transact_items)
        except Exception:
            _restore(saved)
            raise
        finally:
            _skip_table_copies.on = False

    setattr(transact_write_items, _WRAPPED, True)
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
