"""Two places where moto's SQS costs O(n) per call in a queue of n messages, O(n^2) to fill or drain it.

- Queue.attributes counts the messages (a clock read per message) on every call, and SendMessage calls
  it once per message only to read ContentBasedDeduplication (1,000 feedback events took over a minute).
  The counts are now computed only when a caller asks for one of them, as GetQueueAttributes does.
- Queue.delete_message rebuilds the whole message list, asking every message for its receipt handles.
  It now stops at the message it deletes (usually near the front: the oldest are received first).
- Queue.messages (every receive) reads the clock twice per message; it now reads it once per call.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from moto.core.utils import unix_time_millis
from moto.sqs.exceptions import ReceiptHandleIsInvalid
from moto.sqs.models import Message, Queue

from sesflow.engine.patches import MotoDriftError

_COUNTS = {
    "ApproximateNumberOfMessages": "approximate_number_of_messages",
    "ApproximateNumberOfMessagesDelayed": "approximate_number_of_messages_delayed",
    "ApproximateNumberOfMessagesNotVisible": "approximate_number_of_messages_not_visible",
}
_original = Queue.__dict__.get("attributes")
_original_delete = Queue.__dict__.get("delete_message")
_original_messages = Queue.__dict__.get("messages")


class _LazyAttributes(dict):
    """The attribute dict, with the message counts filled in on first use of any of them or of the whole."""

    def __init__(self, queue: Queue, cheap: dict[str, Any]):
        super().__init__(cheap)
        self._queue: Queue | None = queue

    def _full(self) -> _LazyAttributes:
        if self._queue is not None:
            queue, self._queue = self._queue, None
            dict.update(self, {key: getattr(queue, prop) for key, prop in _COUNTS.items()})
        return self

    def get(self, key: Any, default: Any = None) -> Any:
        return dict.get(self._full() if key in _COUNTS else self, key, default)

    def __getitem__(self, key: Any) -> Any:
        return dict.__getitem__(self._full() if key in _COUNTS else self, key)

    def __contains__(self, key: Any) -> bool:
        return dict.__contains__(self._full() if key in _COUNTS else self, key)

    def __iter__(self):
        return dict.__iter__(self._full())

    def __len__(self) -> int:
        return dict.__len__(self._full())

    def keys(self):
        return dict.keys(self._full())

    def items(self):
        return dict.items(self._full())

    def values(self):
        return dict.values(self._full())

    def copy(self) -> dict[str, Any]:
        return dict(self.items())


def _attributes(self: Queue) -> dict[str, Any]:
    """moto's property, less the three counts until they are asked for."""
    from moto.core.utils import camelcase_to_underscores

    names = [a for a in self.BASE_ATTRIBUTES if a not in _COUNTS]
    names += self.FIFO_ATTRIBUTES if self.fifo_queue else []
    names += self.KMS_ATTRIBUTES if self.kms_master_key_id else []
    result = {name: getattr(self, camelcase_to_underscores(name)) for name in names}
    if self.policy:
        result["Policy"] = self.policy
    if self.redrive_policy:
        result["RedrivePolicy"] = json.dumps(self.redrive_policy)
    return _LazyAttributes(self, {k: str(v).lower() if isinstance(v, bool) else v for k, v in result.items()})


def _delete_message(self: Queue, receipt_handle: str) -> None:
    """moto's semantics: deleting twice is fine, an unknown handle is refused, pending or not it goes."""
    if receipt_handle in self.deleted_messages:
        return
    for index, message in enumerate(self._messages):
        if message.had_receipt_handle(receipt_handle):
            self.pending_messages.discard(message)
            self.deleted_messages.update(message.all_receipt_handles)
            del self._messages[index]
            return
    raise ReceiptHandleIsInvalid()


def _visible_messages(self: Queue) -> list[Any]:
    """moto's rule (visible and not delayed), with one clock read for the whole queue."""
    now = unix_time_millis()
    return [m for m in self._messages if now > m.visible_at and now >= m.delayed_until]


def install() -> None:
    if isinstance(Queue.__dict__.get("attributes"), property) and Queue.attributes.fget is _attributes:
        return
    delete_source = inspect.getsource(_original_delete) if callable(_original_delete) else ""
    for marker in ("self.deleted_messages", "had_receipt_handle", "ReceiptHandleIsInvalid", "new_messages"):
        if marker not in delete_source:
            raise MotoDriftError(f"moto.sqs.models.Queue.delete_message: no longer uses {marker}")
    source = inspect.getsource(_original.fget) if isinstance(_original, property) else ""
    for marker in ("BASE_ATTRIBUTES", "FIFO_ATTRIBUTES", "KMS_ATTRIBUTES", "self.policy", "self.redrive_policy"):
        if marker not in source:
            raise MotoDriftError(f"moto.sqs.models.Queue.attributes: no longer built from {marker}")
    for prop in _COUNTS.values():
        if not isinstance(Queue.__dict__.get(prop), property):
            raise MotoDriftError(f"moto.sqs.models.Queue.{prop}: no longer a property")
    messages_source = inspect.getsource(_original_messages.fget) if isinstance(_original_messages, property) else ""
    if "message.visible and not message.delayed" not in messages_source:
        raise MotoDriftError("moto.sqs.models.Queue.messages: no longer 'visible and not delayed'")
    for prop, marker in (("visible", "self.visible_at"), ("delayed", "self.delayed_until")):
        if marker not in inspect.getsource(getattr(Message, prop).fget):
            raise MotoDriftError(f"moto.sqs.models.Message.{prop}: no longer compares {marker}")
    Queue.attributes = property(_attributes)
    Queue.messages = property(_visible_messages)
    Queue.delete_message = _delete_message
