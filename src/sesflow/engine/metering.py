"""Counts what a run would be billed for: state transitions, Lambda requests and duration, API calls, and
DynamoDB read and write request units as on-demand capacity bills them (patches/capacity.py measures them)."""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Meter:
    """Thread-safe counters for one engine run; `snapshot()` is what a cost model reads."""

    transitions: Counter = field(default_factory=Counter)  # (state machine name, STANDARD|EXPRESS)
    executions: Counter = field(default_factory=Counter)  # (state machine name, STANDARD|EXPRESS)
    lambda_invocations: Counter = field(default_factory=Counter)  # function name
    lambda_billed_ms: Counter = field(default_factory=Counter)  # function name -> billed ms
    lambda_gb_seconds: Counter = field(default_factory=Counter)  # function name -> GB-s
    api_calls: Counter = field(default_factory=Counter)  # (service, operation)
    dynamodb_write_units: Counter = field(default_factory=Counter)  # table name -> write request units
    dynamodb_read_units: Counter = field(default_factory=Counter)  # table name -> read request units
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_transition(self, state_machine: str, execution_type: str = "STANDARD") -> None:
        with self._lock:
            self.transitions[(state_machine, execution_type)] += 1

    def count_execution(self, state_machine: str, execution_type: str = "STANDARD") -> None:
        with self._lock:
            self.executions[(state_machine, execution_type)] += 1

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

    def reset(self) -> None:
        with self._lock:
            for counter in (self.transitions, self.executions, self.lambda_invocations,
                            self.lambda_billed_ms, self.lambda_gb_seconds, self.api_calls,
                            self.dynamodb_write_units, self.dynamodb_read_units):
                counter.clear()

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "transitions": {f"{sm}/{kind}": n for (sm, kind), n in sorted(self.transitions.items())},
                "executions": {f"{sm}/{kind}": n for (sm, kind), n in sorted(self.executions.items())},
                "lambda_invocations": dict(sorted(self.lambda_invocations.items())),
                "lambda_billed_ms": dict(sorted(self.lambda_billed_ms.items())),
                "lambda_gb_seconds": {k: round(v, 6) for k, v in sorted(self.lambda_gb_seconds.items())},
                "api_calls": {f"{svc}:{op}": n for (svc, op), n in sorted(self.api_calls.items())},
                "dynamodb_write_units": dict(sorted(self.dynamodb_write_units.items())),
                "dynamodb_read_units": dict(sorted(self.dynamodb_read_units.items())),
            }
