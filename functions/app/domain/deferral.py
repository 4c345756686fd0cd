"""Where a batch waits for the account's send rate or its 24-hour quota: inside its Distributed Map child, or in
the campaign's Standard execution.

A SendPhase child is an EXPRESS execution, and AWS ends an EXPRESS execution after five minutes
(https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html): a wait that would not fit in what is
left of those five minutes cannot happen there. So SendBatch never waits long itself. It stops its batch where it
is (the claim keeps the position) and says how long to wait:

- `wait_seconds`: the child Waits that long and runs SendBatch again. Only when that wait, the next invocation
  and its crash retries all fit in the child's five minutes.
- `deferred`: the child fails with BatchDeferred, which ends the phase's Map Run; the campaign's Standard
  execution Waits until the deferral's time (hours, for the daily quota: a few transitions per wait, none per
  recipient) and runs the phase again. Batches already SENT are skipped by their claims; the stopped ones resume
  from their first unsent recipient.

Pure: the handler passes in the clock readings and the function's own time limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EXPRESS_MAX_SECONDS = 300
# The SendBatch Task's Retries in the child (statemachines/campaign.asl.json): attempts after the first (2 for
# Lambda's transient errors, 2 for anything else), and their longest back-offs added up (FULL jitter waits at
# most the interval).
CRASH_RETRIES = 4
CRASH_BACKOFF_SECONDS = (1 + 2) + (2 + 4)
# Margin for what the child does besides SendBatch (its Choice and Wait transitions, Lambda's start).
SAFETY_SECONDS = 10
# The 24-hour quota frees up as the sends of a day ago age out; asking again every few minutes costs a Map Run
# over the phase each time, so the campaign waits at least this long between tries.
DAILY_QUOTA_WAIT_SECONDS = 900

RATE, DAILY_QUOTA, TIME = "rate", "daily_quota", "time"
# The batch's zone is outside its send window (app.domain.send_window): always the campaign's execution's wait,
# which moves on to the phase's other zones meanwhile.
WINDOW = "window"
_PARENT_ONLY = (DAILY_QUOTA, WINDOW)


@dataclass(frozen=True)
class Wait:
    """What the batch waits for (RATE, DAILY_QUOTA, or TIME: the invocation ran out of its own time) and how
    long, with the message an operator reads."""

    seconds: float
    reason: str
    message: str


def for_daily_quota(retry_after: float, message: str) -> Wait:
    return Wait(max(retry_after, DAILY_QUOTA_WAIT_SECONDS), DAILY_QUOTA, message)


def fits_in_child(wait: Wait, child_started_at: datetime, now: datetime, invocation_seconds: float) -> bool:
    """True if the child can wait `wait` and run SendBatch again (with its crash retries) within its five minutes.
    `invocation_seconds`: the most one SendBatch invocation may take (the function's Timeout)."""
    if wait.reason in _PARENT_ONLY:
        return False
    elapsed = (now - child_started_at).total_seconds()
    rerun = (1 + CRASH_RETRIES) * invocation_seconds + CRASH_BACKOFF_SECONDS
    return elapsed + wait.seconds + rerun + SAFETY_SECONDS <= EXPRESS_MAX_SECONDS


def until(wait: Wait, now: datetime) -> str:
    """When the parent's Wait ends: rounded up to a whole second, as a Wait's Timestamp counts whole seconds (Step
    Functions truncates the milliseconds), so the wait never ends before the time waited for."""
    moment = now + timedelta(seconds=max(1.0, wait.seconds))
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return rfc3339(moment)


def child_seconds(wait: Wait) -> int:
    """The child's Wait: whole seconds, at least one."""
    return max(1, math.ceil(wait.seconds))


def rfc3339(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z and milliseconds, as a Wait state's Timestamp must be written (and as
    $states.context.Execution.StartTime is): strings of this form sort as the times they name."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_rfc3339(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
