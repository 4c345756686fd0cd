"""The time the Lambda code acts at, in one place, so the embedded engine can give its Lambdas the virtual clock
that its Step Functions Waits and task timeouts run on: a deadline a Lambda writes then agrees with the
workflow that waits for it. On AWS (no SESFLOW_VIRTUAL_CLOCK in the environment) it is the real clock."""

import os
from collections.abc import Callable
from datetime import UTC, datetime

virtual: Callable[[], datetime] | None = None  # set by the engine; used only inside its invocations


def now() -> datetime:
    if virtual is not None and os.environ.get("SESFLOW_VIRTUAL_CLOCK"):
        return virtual()
    return datetime.now(UTC)
