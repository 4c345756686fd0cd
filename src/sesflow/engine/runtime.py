"""The one engine run that moto's patched code reports to: its virtual clock and its meter.

moto's backends are process-global, so the patches are too; they look up the active Runtime at call
time. With no engine up, a default Runtime is used, so patched moto still works in plain moto tests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sesflow.engine.clock import VirtualClock
from sesflow.engine.iam import Roles
from sesflow.engine.metering import Meter


@dataclass
class Runtime:
    clock: VirtualClock = field(default_factory=VirtualClock)
    meter: Meter = field(default_factory=Meter)
    # Called before a Wait state moves virtual time: the stack runs its queue triggers, as Lambda's pollers
    # would have during that time on AWS (feedback arrives while a campaign waits out its evaluation window).
    before_wait: Callable[[], None] | None = None
    # EXPRESS executions are at-least-once: this share of Distributed Map EXPRESS children (chosen by a hash of the
    # Map Run and the item, so a run repeats) runs a second time after the first, its output discarded.
    express_redelivery: float = 0.0
    # The deployed stack's roles: whose calls are checked, against what (none when no stack is up).
    iam: Roles = field(default_factory=Roles)


_lock = threading.Lock()
_active: Runtime | None = None


def activate(runtime: Runtime) -> Runtime:
    global _active
    with _lock:
        _active = runtime
    return runtime


def deactivate() -> None:
    global _active
    with _lock:
        _active = None


def current() -> Runtime:
    global _active
    with _lock:
        if _active is None:
            _active = Runtime()
        return _active
