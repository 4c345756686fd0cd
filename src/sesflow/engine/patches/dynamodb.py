"""TransactWriteItems without a copy of every table it names.

moto 5.2.5's `DynamoDBBackend.transact_write_items` deep-copies each table a transaction names before applying
it, to roll back if it is cancelled: a cost in the size of the table, on every call. A campaign's feedback
ingestion writes a transaction per batch of events, touching RecipientsTable, so with 10,000 recipients most
of the engine's time went into copying it. Here the backup is of the items the transaction names (at most
100), and a cancelled transaction puts exactly those back: the same outcome, at the cost of the transaction.
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

from sesflow.engine.patches import MotoDriftError

_TARGET = "moto.dynamodb.models.DynamoDBBackend.transact_write_items"
_MARKERS = ("original_table_state[table_name] = copy.deepcopy(",
            "self.tables[table_name] = original_table_state[table_name]")
_WRAPPED = "_sesflow_item_backup"
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


def install() -> None:
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
