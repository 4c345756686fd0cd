"""botocore's retry back-off sleeps on the virtual clock, like Wait and Retry in the interpreter.

A handler throttled by the simulated SES retries as on AWS; its back-off must move virtual time (the
quota refills on that clock), not stall the run in real time.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

import botocore.endpoint

from sesflow.engine.patches import MotoDriftError, lambda_bridge


class _VirtualTime:
    """The `time` module as botocore.endpoint sees it, but `sleep` advances the engine's clock."""

    def sleep(self, seconds: float) -> None:
        lambda_bridge.virtual_sleep(seconds, reason="SDK retry")  # in a Lambda, part of its duration

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def install() -> None:
    if isinstance(botocore.endpoint.time, _VirtualTime):
        return
    if "time.sleep(handler_response)" not in inspect.getsource(botocore.endpoint.Endpoint):
        raise MotoDriftError("botocore.endpoint.Endpoint: retries no longer sleep with time.sleep(handler_response)")
    botocore.endpoint.time = _VirtualTime()
