"""The time the Lambda code acts at, in one place, so the embedded engine can give its Lambdas the virtual clock
that its Step Functions Waits and task timeouts run on: a deadline a Lambda writes then agrees with the
workflow that waits for it. On AWS (no SESFLOW_VIRTUAL_CLOCK in the environment) it is the real clock."""

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

# Set by the engine; used only inside its invocations.
virtual: Callable[[], datetime] | None = None
virtual_sleep: Callable[[float], None] | None = None


def now() -> datetime:
    if virtual is not None and os.environ.get("SESFLOW_VIRTUAL_CLOCK"):
        return virtual()
    return datetime.now(UTC)


def sleep(seconds: float) -> None:
    """Wait; on the engine, move its virtual clock instead (the SES rate it simulates runs on that clock)."""
    if virtual_sleep is not None and os.environ.get("SESFLOW_VIRTUAL_CLOCK"):
        virtual_sleep(seconds)
    else:
        time.sleep(seconds)
