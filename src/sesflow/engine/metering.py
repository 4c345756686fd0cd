"""Counts what a run would be billed for: state transitions, Express execution requests and duration, Lambda
requests and duration, API calls, DynamoDB read and write request units as on-demand capacity bills them
(patches/capacity.py measures them), SQS requests, SNS publishes and deliveries, and EventBridge events, in the
units their prices are quoted in (patches/metering.py measures the messaging and Express counts).
src/sesflow/engine/pricing.py turns a snapshot into dollars."""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass, field, fields

# SQS, SNS and EventBridge bill every 64 KiB chunk of a request's payload as one request (or event).
PAYLOAD_CHUNK_BYTES = 64 * 1024
# Express workflows: duration rounded up to the next 100 ms, memory billed in 64 MB chunks. AWS estimates
# an execution's memory as 50 MB + definition size + execution data size x Map/Parallel steps, so a small
# workflow such as a Distributed Map's SendBatch child is billed 64 MB (aws.amazon.com/step-functions/pricing/).
EXPRESS_DURATION_STEP_MS = 100
EXPRESS_MEMORY_CHUNK_MB = 64
EXPRESS_MEMORY_MB = 64

_thread = threading.local()


class VirtualSleepSink:
    """Adds up the virtual seconds slept by every thread working for one execution (patches/metering.py hands
    it down to the threads the interpreter starts). Branches sleeping at the same time add up: an overcount
    for Parallel states, which sesflow's Express workflows do not use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds = 0.0

    def add(self, seconds: float) -> None:
        with self._lock:
            self.seconds += seconds


def note_virtual_sleep(seconds: float) -> None:
    """Record virtual seconds slept on this thread (Wait states, Retry backoffs, a Lambda pacing itself on the
    engine's clock): a duration measured in real time misses them. patches/metering.py calls this."""
    seconds = max(0.0, float(seconds))
    _thread.virtual_slept = getattr(_thread, "virtual_slept", 0.0) + seconds
    sink = getattr(_thread, "sink", None)
    if sink is not None:
        sink.add(seconds)


def virtual_seconds_slept() -> float:
    """This thread's running total of virtual seconds slept; subtract two readings for an interval's share
    (a Lambda invocation runs on one thread: its duration is real time plus this difference)."""
    return getattr(_thread, "virtual_slept", 0.0)


def current_sink() -> VirtualSleepSink | None:
    return getattr(_thread, "sink", None)


def set_sink(sink: VirtualSleepSink | None) -> VirtualSleepSink | None:
    """Send this thread's virtual sleeps to `sink` (None: nowhere); returns the sink it replaces."""
    previous = getattr(_thread, "sink", None)
    _thread.sink = sink
    return previous


def payload_chunks(size_bytes: int) -> int:
    """Requests (or events) billed for a payload: one per 64 KiB chunk, at least one."""
    return max(1, math.ceil(max(0, size_bytes) / PAYLOAD_CHUNK_BYTES))


@dataclass
class Meter:
    """Thread-safe counters for one engine run; `snapshot()` is what a cost model reads."""

    transitions: Counter = field(default_factory=Counter)  # (state machine name, STANDARD|EXPRESS)
    executions: Counter = field(default_factory=Counter)  # (state machine name, STANDARD|EXPRESS)
    express_billed_ms: Counter = field(default_factory=Counter)  # EXPRESS state machine name -> billed ms
    express_gb_seconds: Counter = field(default_factory=Counter)  # EXPRESS state machine name -> billed GB-s
    lambda_invocations: Counter = field(default_factory=Counter)  # function name
    lambda_billed_ms: Counter = field(default_factory=Counter)  # function name -> billed ms
    lambda_gb_seconds: Counter = field(default_factory=Counter)  # function name -> GB-s
    api_calls: Counter = field(default_factory=Counter)  # (service, operation)
    dynamodb_write_units: Counter = field(default_factory=Counter)  # table name -> write request units
    dynamodb_read_units: Counter = field(default_factory=Counter)  # table name -> read request units
    sqs_requests: Counter = field(default_factory=Counter)  # (queue name, operation) -> billed requests
    sns_publishes: Counter = field(default_factory=Counter)  # topic name -> billed publish requests
    sns_deliveries: Counter = field(default_factory=Counter)  # (topic name, protocol) -> deliveries
    eventbridge_events: Counter = field(default_factory=Counter)  # (bus name, source) -> billed events
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_transition(self, state_machine: str, execution_type: str = "STANDARD") -> None:
        with self._lock:
            self.transitions[(state_machine, execution_type)] += 1

    def count_execution(self, state_machine: str, execution_type: str = "STANDARD") -> None:
        with self._lock:
            self.executions[(state_machine, execution_type)] += 1

    def count_express_duration(self, state_machine: str, duration_ms: float,
                               memory_mb: int = EXPRESS_MEMORY_MB) -> None:
        """One Express execution's duration as billed: rounded up to 100 ms, memory up to 64 MB chunks."""
        billed = max(1, math.ceil(duration_ms / EXPRESS_DURATION_STEP_MS)) * EXPRESS_DURATION_STEP_MS
        billed_mb = max(1, math.ceil(memory_mb / EXPRESS_MEMORY_CHUNK_MB)) * EXPRESS_MEMORY_CHUNK_MB
        with self._lock:
            self.express_billed_ms[state_machine] += billed
            self.express_gb_seconds[state_machine] += billed / 1000 * billed_mb / 1024

    def count_lambda(self, function: str, duration_ms: float, memory_mb: int) -> None:
        billed = max(1, math.ceil(duration_ms))  # Lambda bills per 1 ms, at least 1 ms
        with self._lock:
            self.lambda_invocations[function] += 1
            self.lambda_billed_ms[function] += billed
            self.lambda_gb_seconds[function] += billed / 1000 * memory_mb / 1024

    def count_api_call(self, service: str, operation: str) -> None:
        with self._lock:
            self.api_calls[(service, operation)] += 1

    def count_dynamodb_write(self, table: str, units: float) -> None:
        with self._lock:
            self.dynamodb_write_units[table] += units

    def count_dynamodb_read(self, table: str, units: float) -> None:
        with self._lock:
            self.dynamodb_read_units[table] += units

    def count_sqs_request(self, queue: str, operation: str, payload_bytes: int = 0) -> None:
        """One SQS request (any action, a delivery from SNS or EventBridge too), billed per 64 KiB chunk."""
        with self._lock:
            self.sqs_requests[(queue, operation)] += payload_chunks(payload_bytes)

    def count_sns_publish(self, topic: str, payload_bytes: int) -> None:
        """One Publish (or PublishBatch) request, billed per 64 KiB chunk of the message(s) and attributes."""
        with self._lock:
            self.sns_publishes[topic] += payload_chunks(payload_bytes)

    def count_sns_delivery(self, topic: str, protocol: str) -> None:
        with self._lock:
            self.sns_deliveries[(topic, protocol)] += 1

    def count_eventbridge_event(self, bus: str, source: str, size_bytes: int) -> None:
        """One event put on a bus, billed per 64 KiB chunk of the entry."""
        with self._lock:
            self.eventbridge_events[(bus, source)] += payload_chunks(size_bytes)

    def _counters(self) -> list[Counter]:
        return [getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")]

    def reset(self) -> None:
        with self._lock:
            for counter in self._counters():
                counter.clear()

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "transitions": {f"{sm}/{kind}": n for (sm, kind), n in sorted(self.transitions.items())},
                "executions": {f"{sm}/{kind}": n for (sm, kind), n in sorted(self.executions.items())},
                "express_billed_ms": dict(sorted(self.express_billed_ms.items())),
                "express_gb_seconds": {k: round(v, 6) for k, v in sorted(self.express_gb_seconds.items())},
                "lambda_invocations": dict(sorted(self.lambda_invocations.items())),
                "lambda_billed_ms": dict(sorted(self.lambda_billed_ms.items())),
                "lambda_gb_seconds": {k: round(v, 6) for k, v in sorted(self.lambda_gb_seconds.items())},
                "api_calls": {f"{svc}:{op}": n for (svc, op), n in sorted(self.api_calls.items())},
                "dynamodb_write_units": dict(sorted(self.dynamodb_write_units.items())),
                "dynamodb_read_units": dict(sorted(self.dynamodb_read_units.items())),
                "sqs_requests": {f"{q}:{op}": n for (q, op), n in sorted(self.sqs_requests.items())},
                "sns_publishes": dict(sorted(self.sns_publishes.items())),
                "sns_deliveries": {f"{t}:{p}": n for (t, p), n in sorted(self.sns_deliveries.items())},
                "eventbridge_events": {f"{b}:{s}": n for (b, s), n in sorted(self.eventbridge_events.items())},
            }
