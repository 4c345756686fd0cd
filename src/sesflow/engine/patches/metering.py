"""Count every AWS API call a run makes (handlers, the interpreter, the engine) by service and operation.

All of them pass through moto's BotocoreStubber as botocore `before-send.<service>.<Operation>` events.
DynamoDB request units are measured where moto answers DynamoDB calls (patches/capacity.py), installed here.
"""

from __future__ import annotations

from typing import Any

from moto.core.botocore_stubber import BotocoreStubber

from sesflow.engine import runtime
from sesflow.engine.patches import MotoDriftError, capacity

_original_call = BotocoreStubber.__dict__.get("__call__")


def _counting_call(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
    if self.enabled:
        _, _, rest = event_name.partition(".")
        service, _, operation = rest.partition(".")
        runtime.current().meter.count_api_call(service, operation)
    return _original_call(self, event_name, request, **kwargs)


def install() -> None:
    if _original_call is None or not hasattr(BotocoreStubber(), "enabled"):
        raise MotoDriftError("moto.core.botocore_stubber.BotocoreStubber.__call__: no longer as expected")
    if getattr(BotocoreStubber.__call__, "__name__", "") != "_counting_call":
        BotocoreStubber.__call__ = _counting_call
    capacity.install()
