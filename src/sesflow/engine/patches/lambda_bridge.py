"""Run Lambda handlers in-process where moto would `docker run` them, with Lambda's limits.

Every invoke path in moto (boto3 Invoke, Step Functions lambda:invoke, SNS and SQS triggers) ends in
`LambdaFunction._invoke_lambda`; replacing it keeps moto's function registry, ARN and qualifier
resolution and error semantics. Handlers see the environment the template gives them through a
per-thread overlay of os.environ, so concurrent invocations never race on the process environment.

What Lambda enforces, enforced here:
- Timeout. An invocation's duration is the CPU time of its thread plus the virtual seconds it slept on the
  engine's clock (app.clock.sleep, the governor, botocore's retry back-off). CPU time, not wall time: the
  invocations share one interpreter, and the wall time of one includes the time the others hold the GIL,
  which on AWS run on their own machines. A virtual sleep that would end past the deadline ends at it and
  the invocation stops there, as Lambda stops it; so does its next AWS API call once past the deadline. A
  handler that computes past its deadline without either cannot be stopped in-process: its result is
  discarded and the timeout returned, its writes kept (on AWS the writes made before the kill stay too).
  Lambda answers errorType Sandbox.Timedout, errorMessage "RequestId: <id> Error: Task timed out after
  N.NN seconds", and bills the whole timeout
  (https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html,
  https://docs.aws.amazon.com/lambda/latest/dg/troubleshooting-invocation.html#troubleshooting-timeouts).
  Step Functions names a function's error after the payload's errorType, so a Task sees Sandbox.Timedout
  (its guide, bp-lambda-serviceexception.html, calls timeouts Lambda.Unknown: the name of an error payload
  without errorType; States.ALL and States.TaskFailed match either).
- Concurrency. Invocations of a function run at the same time (each in its caller's thread), up to the
  function's ReservedConcurrentExecutions, else up to what the account's limit (1,000 by default) leaves
  unreserved; one more is throttled with TooManyRequestsException (HTTP 429), which Step Functions reports
  as Lambda.TooManyRequestsException
  (https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html,
  https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html).
  Unlike AWS, concurrent invocations share one interpreter, so one set of module globals: a handler that
  keeps per-invocation state in a module global would race here (and not on AWS, where each concurrent
  invocation has its own execution environment).
- MemorySize: the context's memory_limit_in_mb, AWS_LAMBDA_FUNCTION_MEMORY_SIZE and the GB-seconds billed.
  Memory use is not measured nor enforced (no out-of-memory error).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moto.awslambda.models import LambdaFunction
from moto.core.exceptions import JsonRESTError

from sesflow.engine import iam, metering, runtime
from sesflow.engine.patches import MotoDriftError

_original_invoke = LambdaFunction.__dict__.get("_invoke_lambda")
_lock = threading.Lock()
_functions: dict[str, FunctionSpec] = {}

# Lambda's default concurrency quota per account and Region, and the least it keeps unreserved:
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html,
# https://docs.aws.amazon.com/lambda/latest/api/API_PutFunctionConcurrency.html
ACCOUNT_CONCURRENCY = 1000
UNRESERVED_MINIMUM = 100
TIMEOUT_ERROR_TYPE = "Sandbox.Timedout"


@dataclass
class FunctionSpec:
    """What Lambda would run: the handler `module.attr` under code_dir, its environment, size and limits."""

    name: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    memory_mb: int = 128
    timeout_s: int = 3
    reserved_concurrency: int | None = None  # ReservedConcurrentExecutions; None: the account's unreserved pool
    in_flight: int = field(default=0, init=False)
    max_in_flight: int = field(default=0, init=False)  # the most invocations that ran at once
    throttled: int = field(default=0, init=False)
    timed_out: int = field(default=0, init=False)
    _callable: Callable[..., Any] | None = field(default=None, repr=False)
    _load_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def load(self) -> Callable[..., Any]:
        """Import the handler as Lambda does, with code_dir as the import root (like /var/task) and the
        function's environment (its init code reads it, e.g. Powertools' log level), also when the engine or a
        tool imports it before any invocation."""
        with self._load_lock:  # concurrent first invocations import it once
            if self._callable is None:
                module_name, _, attr = self.handler.rpartition(".")
                root = str(self.code_dir.resolve())
                if root not in sys.path:
                    sys.path.append(root)
                environ = os.environ
                outside = isinstance(environ, ThreadEnviron) and environ.overlay is None
                if outside:
                    environ.set_overlay(dict(self.environment))
                try:
                    module = importlib.import_module(module_name)
                finally:
                    if outside:
                        environ.set_overlay(None)
                module_file = Path(getattr(module, "__file__", "") or "").resolve()
                if not module_file.is_relative_to(root):
                    raise ImportError(
                        f"{self.name}: handler module {module_name} resolved to {module_file}, outside its "
                        f"CodeUri {root}; two CodeUris define the same module name"
                    )
                self._callable = getattr(module, attr)
            return self._callable


class ThreadEnviron(MutableMapping):
    """os.environ with a per-thread overlay: a handler's variables are visible only to its thread."""

    def __init__(self, base: MutableMapping[str, str]):
        self.base = base
        self._local = threading.local()

    @property
    def overlay(self) -> dict[str, str] | None:
        return getattr(self._local, "overlay", None)

    def set_overlay(self, values: dict[str, str] | None) -> None:
        self._local.overlay = values

    def __getitem__(self, key: str) -> str:
        overlay = self.overlay
        if overlay is not None and key in overlay:
            return overlay[key]
        return self.base[key]

    def __setitem__(self, key: str, value: str) -> None:
        overlay = self.overlay
        if overlay is not None:
            overlay[key] = value
        else:
            self.base[key] = value

    def __delitem__(self, key: str) -> None:
        overlay = self.overlay
        if overlay is not None and key in overlay:
            del overlay[key]
        else:
            del self.base[key]

    def __iter__(self) -> Iterator[str]:
        overlay = self.overlay or {}
        yield from overlay
        yield from (k for k in list(self.base) if k not in overlay)

    def __len__(self) -> int:
        return len(set(self.base) | set(self.overlay or {}))

    def copy(self) -> dict[str, str]:
        return dict(self)


class FunctionThrottledError(Exception):
    """The function has no concurrency left for one more invocation: Lambda answers TooManyRequestsException."""

    def __init__(self, spec: FunctionSpec, reason: str):
        super().__init__(f"Rate Exceeded. ({reason}: {spec.name})")
        self.reason = reason


class _TimedOut(BaseException):  # noqa: N818 -- not an Exception: a handler's `except Exception` must not catch it
    """Raised inside a handler at a virtual sleep that would end past its deadline: Lambda stops it there."""


class Timer:
    """How long an invocation has run, as Lambda counts it: its thread's CPU time plus the virtual seconds that
    thread slept on the engine's clock (see the module's docstring)."""

    def __init__(self, timeout_s: float):
        self.timeout_s = float(timeout_s)
        self._cpu = time.thread_time()
        self._slept = metering.virtual_seconds_slept()

    def elapsed_s(self) -> float:
        return (time.thread_time() - self._cpu) + (metering.virtual_seconds_slept() - self._slept)

    def remaining_s(self) -> float:
        return self.timeout_s - self.elapsed_s()


class LambdaContext:
    """The parts of Lambda's context object that handlers and Powertools read."""

    def __init__(self, spec: FunctionSpec, arn: str, timer: Timer):
        self.function_name = spec.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = spec.memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{spec.name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._timer = timer

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._timer.remaining_s() * 1000))


def register(spec: FunctionSpec) -> None:
    with _lock:
        _functions[spec.name] = spec


def function(name: str) -> FunctionSpec:
    try:
        return _functions[name]
    except KeyError:
        raise KeyError(f"function {name}: not registered with the engine") from None


def unregister_all() -> None:
    global _account_concurrency
    with _lock:
        _functions.clear()
        _account_concurrency = ACCOUNT_CONCURRENCY


# ------------------------------------------------------------------------------------------------ concurrency

_account_concurrency = ACCOUNT_CONCURRENCY


def set_account_concurrency(limit: int) -> None:
    """The account's concurrency quota (LocalStack.lambda_account_concurrency)."""
    global _account_concurrency
    with _lock:
        _account_concurrency = int(limit)


def unreserved_concurrency() -> int:
    """What the account's quota leaves to the functions without reserved concurrency."""
    with _lock:
        return _account_concurrency - sum(s.reserved_concurrency or 0 for s in _functions.values())


@contextlib.contextmanager
def _concurrency_slot(spec: FunctionSpec) -> Iterator[None]:
    """Hold one of the function's concurrent executions for the invocation, or throttle it."""
    with _lock:
        if spec.reserved_concurrency is not None:
            if spec.in_flight >= spec.reserved_concurrency:
                spec.throttled += 1
                raise FunctionThrottledError(spec, "ReservedFunctionConcurrentInvocationLimitExceeded")
        else:
            pool = _account_concurrency - sum(s.reserved_concurrency or 0 for s in _functions.values())
            used = sum(s.in_flight for s in _functions.values() if s.reserved_concurrency is None)
            if used >= pool:
                spec.throttled += 1
                raise FunctionThrottledError(spec, "ConcurrentInvocationLimitExceeded")
        spec.in_flight += 1
        spec.max_in_flight = max(spec.max_in_flight, spec.in_flight)
    try:
        yield
    finally:
        with _lock:
            spec.in_flight -= 1


# ------------------------------------------------------------------------------------------------ invocations

_current = threading.local()  # the invocation's Timer while a handler runs on this thread


def current_timer() -> Timer | None:
    """The Timer of the invocation running on this thread, if any."""
    return getattr(_current, "timer", None)


def virtual_sleep(seconds: float, reason: str) -> None:
    """Sleep on the engine's clock; inside an invocation, never past its deadline: a sleep that would end after it
    ends at it, and the invocation stops there, as Lambda stops a function at its timeout."""
    clock = runtime.current().clock
    timer = current_timer()
    if timer is not None and seconds > timer.remaining_s():
        clock.sleep(max(0.0, timer.remaining_s()), reason)
        raise _TimedOut
    clock.sleep(seconds, reason)


def stop_if_timed_out() -> None:
    """Called before every AWS API call (patches/metering.py): an invocation past its deadline makes no more calls,
    as Lambda has stopped it by then."""
    timer = current_timer()
    if timer is not None and timer.remaining_s() < 0:
        raise _TimedOut


def _environment(spec: FunctionSpec, context: LambdaContext) -> dict[str, str]:
    return {
        **spec.environment,
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": context.log_group_name,
        "AWS_LAMBDA_LOG_STREAM_NAME": context.log_stream_name,
        "_HANDLER": spec.handler,
        "SESFLOW_VIRTUAL_CLOCK": "1",  # app.clock.now() reads the engine's clock in this invocation only
    }


@contextlib.contextmanager
def _running(spec: FunctionSpec, context: LambdaContext, timer: Timer) -> Iterator[None]:
    """The handler's thread, for the invocation: its environment overlay, its Timer and its own virtual time."""
    environ = os.environ
    assert isinstance(environ, ThreadEnviron), "lambda_bridge.install() was not called"
    previous_env, previous_timer = environ.overlay, current_timer()
    environ.set_overlay(_environment(spec, context))
    _current.timer = timer
    try:
        with runtime.current().clock.timeline():  # its own time, as on its own machine (VirtualClock)
            yield
    finally:
        _current.timer = previous_timer
        environ.set_overlay(previous_env)


def _error_payload(error_type: str, message: str, context: LambdaContext, trace: list[str] | None = None) -> str:
    body: dict[str, Any] = {"errorMessage": message, "errorType": error_type, "requestId": context.aws_request_id}
    if trace is not None:
        body["stackTrace"] = trace
    return json.dumps(body)


def _timeout_payload(spec: FunctionSpec, context: LambdaContext) -> str:
    return json.dumps({
        "errorType": TIMEOUT_ERROR_TYPE,
        "errorMessage": f"RequestId: {context.aws_request_id} Error: Task timed out after {spec.timeout_s:.2f} seconds",
    })


def invoke_in_process(spec: FunctionSpec, event: Any, arn: str) -> tuple[str, bool, str]:
    """Run one invocation; an exception becomes Lambda's error payload, its class name the errorType.

    Raises FunctionThrottledError when the function has no concurrency left (nothing ran)."""
    with _concurrency_slot(spec):
        timer = Timer(spec.timeout_s)  # billed from here: waiting for a slot is not the function's time
        context = LambdaContext(spec, arn, timer)
        payload, errored, timed_out = "", True, False
        with _running(spec, context, timer):
            try:
                handler = spec.load()
                _use_virtual_clock()
                with iam.acting_as(runtime.current().iam.functions.get(spec.name), spec.name):  # its role's calls
                    result = handler(event, context)
                payload, errored = json.dumps(result), False
            except _TimedOut:
                timed_out = True
            except Exception as error:  # any exception is the function's error, as on Lambda
                payload = _error_payload(type(error).__name__, str(error), context,
                                         traceback.format_exception(error)[-5:])
                errored = True
            duration_s = timer.elapsed_s()
        if timed_out or duration_s > spec.timeout_s:  # past the deadline: whatever it returned is lost
            payload, errored, duration_s = _timeout_payload(spec, context), True, float(spec.timeout_s)
            with _lock:
                spec.timed_out += 1
    runtime.current().meter.count_lambda(spec.name, duration_s * 1000, spec.memory_mb)
    return payload, errored, ""


def _use_virtual_clock() -> None:
    """functions/app/clock.py's now() reads the engine's virtual clock, as Step Functions here does."""
    module = sys.modules.get("app.clock")
    if module is not None:
        module.virtual = runtime.current().clock.now
        module.virtual_sleep = lambda seconds: virtual_sleep(seconds, "Lambda sleep")


def _invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    spec = _functions.get(self.function_name)
    if spec is None:
        return json.dumps({
            "errorMessage": f"function {self.function_name} has no in-process handler registered with the engine",
            "errorType": "Runtime.HandlerNotFound",
        }), True, ""
    if isinstance(event, str | bytes):
        event = json.loads(event or "{}")
    try:
        return invoke_in_process(spec, event if event is not None else {}, self.function_arn)
    except FunctionThrottledError as error:  # Invoke answers 429; Step Functions: Lambda.TooManyRequestsException
        raise TooManyRequestsException(str(error), error.reason) from None


class TooManyRequestsException(JsonRESTError):
    code = 429

    def __init__(self, message: str, reason: str):
        super().__init__("TooManyRequestsException", message)
        self.description = json.dumps({"__type": self.error_type, "message": message, "Type": "User", "Reason": reason})


def _invoke(self: LambdaFunction, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
    """moto's Invoke, with Lambda's FunctionError for a timeout: "Unhandled" (the runtime did not handle it), where
    moto says "Handled" for every error (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html)."""
    result = _original_public_invoke(self, body, request_headers, response_headers)
    if response_headers.get("x-amz-function-error") and TIMEOUT_ERROR_TYPE.encode() in (
            result if isinstance(result, bytes) else result.encode()):
        response_headers["x-amz-function-error"] = "Unhandled"
    return result


_original_public_invoke = LambdaFunction.__dict__.get("invoke")


def install() -> None:
    """Idempotent: replace `_invoke_lambda` and give os.environ its per-thread overlay."""
    if _original_invoke is None or not callable(_original_invoke):
        raise MotoDriftError("moto.awslambda.models.LambdaFunction._invoke_lambda: no longer exists")
    if _original_public_invoke is None or "x-amz-function-error" not in inspect.getsource(_original_public_invoke):
        raise MotoDriftError("moto.awslambda.models.LambdaFunction.invoke: no longer sets x-amz-function-error")
    LambdaFunction._invoke_lambda = _invoke_lambda
    LambdaFunction.invoke = _invoke
    if not isinstance(os.environ, ThreadEnviron):
        os.environ = ThreadEnviron(os.environ)  # noqa: B003 -- keeps the real environment as its base
