"""Time for the embedded engine. VirtualClock (the default: tests, the demo): Wait and Retry finish at once and
move the clock instead. PacedClock (`sesflow local up --serve --pace real|N`): time passes, N times faster than
real time, and every sleep takes its share of wall time, so a served campaign can be watched, paused and
cancelled while it sends, as on AWS."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator
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

    # Not paced: sleeps end at once (PacedClock says how many real seconds an engine second takes).
    pace: float | None = None

    def sleep(self, seconds: float, reason: str = "sleep", since: datetime | None = None,
              stop: Callable[[], bool] | None = None) -> None:
        """Pretend to sleep `seconds` from `since` (default: now). `stop` (a Wait state's "the execution was
        stopped") matters only to a clock whose sleeps take time."""
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

    def sleep_until(self, when: datetime, reason: str = "sleep_until", stop: Callable[[], bool] | None = None) -> None:
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


class ClockClosedError(SystemExit):
    """Raised in a thread still sleeping on a PacedClock when its stack goes down: the thread unwinds instead of
    waking later to act on a stack that is gone (or on the next one). A SystemExit, so that handlers' `except
    Exception` let it through and a thread it ends is ended quietly."""


class PacedClock(VirtualClock):
    """Time that passes: it starts at `start` (default: the real time) and runs `pace` times faster than wall time
    (1.0: real time). Every sleep takes (its seconds / pace) of wall time, in the thread that sleeps, and moves
    nobody else's time; so a start_at's Wait no longer moves the other campaigns' clock, and SES's rate, the
    governor's waits and a Wait state's seconds take their time. Everyone reads the same time, as on AWS, so there
    are no per-thread timelines. `advance()` still moves time on at once for everyone (an operator's jump).

    The sleeps are metered as the VirtualClock's are (patches/metering.py wraps both classes' sleep and
    sleep_until): a Lambda's duration is its CPU time plus the seconds it slept. A ledger (an EXPRESS child's
    five minutes, counted as its real time plus what it slept) is charged only the part of a sleep that real time
    did not already count: nothing at pace 1.
    """

    _SLICE_S = 0.1  # how often (wall seconds) a sleeper looks at its `stop`

    def __init__(self, pace: float = 1.0, start: datetime | None = None) -> None:
        if not pace > 0:
            raise ValueError(f"pace {pace!r}: must be more than 0 (1: real time)")
        super().__init__(start)
        self.pace = float(pace)
        self._origin = self._now  # engine time at _wall_origin
        self._wall_origin = time.monotonic()
        self._advanced = 0.0  # seconds added by advance()
        self._tick = threading.Condition(self._lock)
        self._closed = False
        self._heap: list[tuple[datetime, int, threading.Event]] = []
        self._order = itertools.count()
        self._waker: threading.Thread | None = None

    @contextlib.contextmanager
    def timeline(self) -> Iterator[None]:
        """Everyone reads one time that passes by itself: nothing for a thread to keep of its own."""
        yield

    def now(self) -> datetime:
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> datetime:
        elapsed = (time.monotonic() - self._wall_origin) * self.pace + self._advanced
        now = self._origin + timedelta(seconds=elapsed)
        return now.replace(microsecond=now.microsecond // 1000 * 1000)  # AWS times are in ms

    def _charge(self, seconds: float) -> None:
        super()._charge(seconds * (1.0 - 1.0 / self.pace))

    def sleep(self, seconds: float, reason: str = "sleep", since: datetime | None = None,
              stop: Callable[[], bool] | None = None) -> None:
        seconds = max(0.0, float(seconds))
        self._charge(seconds)
        with self._lock:
            self.sleeps.append((reason, seconds))
            end = (since or self._now_locked()) + timedelta(seconds=seconds)
        self._sleep_to(end, stop)

    def sleep_until(self, when: datetime, reason: str = "sleep_until", stop: Callable[[], bool] | None = None) -> None:
        when = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
        with self._lock:
            seconds = max(0.0, (when - self._now_locked()).total_seconds())
            self.sleeps.append((reason, seconds))
        self._charge(seconds)
        self._sleep_to(when, stop)

    def _sleep_to(self, end: datetime, stop: Callable[[], bool] | None) -> None:
        with self._tick:
            while True:
                if self._closed:
                    raise ClockClosedError("the engine's clock was closed (its stack is down)")
                left = (end - self._now_locked()).total_seconds() / self.pace
                if left <= 0:
                    return
                if stop is not None:
                    self._tick.release()  # a stop() may take locks of its own
                    try:
                        if stop():
                            return
                    finally:
                        self._tick.acquire()
                    left = min(left, self._SLICE_S)
                self._tick.wait(left)

    def advance(self, seconds: float) -> None:
        with self._tick:
            self.sleeps.append(("advance", max(0.0, float(seconds))))
            self._advanced += max(0.0, float(seconds))
            self._tick.notify_all()

    def wake_at(self, when: datetime, event: threading.Event) -> None:
        with self._tick:
            heapq.heappush(self._heap, (when, next(self._order), event))
            if self._waker is None:
                self._waker = threading.Thread(target=self._wake_loop, name="paced-clock-waker", daemon=True)
                self._waker.start()
            self._tick.notify_all()

    def _wake_loop(self) -> None:
        """Set each wake_at event when its time comes (one thread for all of them: a lifecycle episode each)."""
        with self._tick:
            while not self._closed:
                now = self._now_locked()
                while self._heap and self._heap[0][0] <= now:
                    heapq.heappop(self._heap)[2].set()
                left = (self._heap[0][0] - now).total_seconds() / self.pace if self._heap else None
                self._tick.wait(left)

    def close(self) -> None:
        """End every sleep (ClockClosedError in the sleeping threads) and the waker: the stack is going down."""
        with self._tick:
            self._closed = True
            self._tick.notify_all()


def parse_pace(text: str) -> float | None:
    """`--pace`: "virtual" (None: waits end at once), "real" (1.0) or N, N times faster than real time."""
    if text == "virtual":
        return None
    if text == "real":
        return 1.0
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(f"--pace {text!r}: virtual, real, or a number more than 0 (N times faster than real time)")
    return value
