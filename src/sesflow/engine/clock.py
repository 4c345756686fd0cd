"""Virtual time for the embedded engine: Wait and Retry finish at once and move this clock instead."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta


class VirtualClock:
    """A UTC clock that starts at the real time (to the millisecond) and only moves when the engine sleeps.

    Concurrent sleepers starting at the same virtual instant wake at the same instant: a sleep moves
    the clock to max(now, start + seconds), measured from when that sleeper started, not cumulatively.

    A thread can keep its own time for a while (`timeline()`, a Lambda invocation): it starts at the clock's time,
    moves only when that thread sleeps, and moves the clock with it. Without it, an invocation between two steps
    (granted a send at 10.0 s, then calling SES) would find the clock moved a second on by another invocation's
    sleep, and act a second late: on AWS each runs on its own machine, in time that passes for all alike.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        start = (start or datetime.now(UTC)).astimezone(UTC)
        self._now = start.replace(microsecond=start.microsecond // 1000 * 1000)  # AWS times are in ms
        self.sleeps: list[tuple[str, float]] = []
        self._wakers: list[tuple[datetime, threading.Event]] = []
        self._ledgers = threading.local()
        self._timelines = threading.local()

    @contextlib.contextmanager
    def timeline(self) -> Iterator[None]:
        """This thread's own time until the block ends (see the class): now() reads it, sleeps move it. A timeline
        within a timeline (a function invoking another, synchronously) ends at the later of the two."""
        outer = getattr(self._timelines, "now", None)
        with self._lock:
            self._timelines.now = self._now
        try:
            yield
        finally:
            inner = self._timelines.now
            self._timelines.now = None if outer is None else max(outer, inner)

    @contextlib.contextmanager
    def ledger(self, account: list[float]) -> Iterator[list[float]]:
        """Add to account[0] the seconds this thread sleeps meanwhile: the time a piece of work waited itself, which
        the clock alone cannot tell apart from the sleeps of work running beside it."""
        stack = self._ledgers.__dict__.setdefault("stack", [])
        stack.append(account)
        try:
            yield account
        finally:
            stack.pop()

    def _charge(self, seconds: float) -> None:
        for account in getattr(self._ledgers, "stack", ()):
            account[0] += seconds

    def now(self) -> datetime:
        own = getattr(self._timelines, "now", None)
        if own is not None:
            return own
        with self._lock:
            return self._now

    def timestamp(self) -> float:
        return self.now().timestamp()

    def sleep(self, seconds: float, reason: str = "sleep", since: datetime | None = None) -> None:
        """Pretend to sleep `seconds` from `since` (default: now)."""
        seconds = max(0.0, float(seconds))
        self._charge(seconds)
        own = getattr(self._timelines, "now", None)
        with self._lock:
            start = since or (own if own is not None else self._now)
            end = start + timedelta(seconds=seconds)
            self._now = max(self._now, end)
            if own is not None:
                self._timelines.now = max(own, end)
            self.sleeps.append((reason, seconds))
            self._wake()

    def sleep_until(self, when: datetime, reason: str = "sleep_until") -> None:
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        own = getattr(self._timelines, "now", None)
        with self._lock:
            seconds = (when - (own if own is not None else self._now)).total_seconds()
            self._charge(max(0.0, seconds))
            self._now = max(self._now, when.astimezone(UTC))
            if own is not None:
                self._timelines.now = max(own, when.astimezone(UTC))
            self.sleeps.append((reason, max(0.0, seconds)))
            self._wake()

    def advance(self, seconds: float) -> None:
        self.sleep(seconds, reason="advance")

    def wake_at(self, when: datetime, event: threading.Event) -> None:
        """Set `event` once this clock reaches `when`: how a timed wait (a callback Task's TimeoutSeconds) that
        nobody answers ends when something else moves virtual time, instead of blocking for real."""
        with self._lock:
            self._wakers.append((when, event))
            self._wake()

    def _wake(self) -> None:
        due = [(when, event) for when, event in self._wakers if when <= self._now]
        for when, event in due:
            self._wakers.remove((when, event))
            event.set()
