"""Run Lambda handlers in-process where moto would `docker run` them.

Every invoke path in moto (boto3 Invoke, Step Functions lambda:invoke, SNS and SQS triggers) ends in
`LambdaFunction._invoke_lambda`; replacing it keeps moto's function registry, ARN and qualifier
resolution and error semantics. Handlers see the environment the template gives them through a
per-thread overlay of os.environ, so concurrent invocations never race on the process environment.
"""

from __future__ import annotations

import importlib
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

from sesflow.engine import iam, runtime
from sesflow.engine.patches import MotoDriftError

_original_invoke = LambdaFunction.__dict__.get("_invoke_lambda")
_lock = threading.Lock()
_functions: dict[str, FunctionSpec] = {}


@dataclass
class FunctionSpec:
    """What Lambda would run: the handler `module.attr` under code_dir, its environment and size."""

    name: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    memory_mb: int = 128
    timeout_s: int = 3
    _callable: Callable[..., Any] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def load(self) -> Callable[..., Any]:
        """Import the handler as Lambda does, with code_dir as the import root (like /var/task)."""
        if self._callable is None:
            module_name, _, attr = self.handler.rpartition(".")
            root = str(self.code_dir.resolve())
            if root not in sys.path:
                sys.path.append(root)
            module = importlib.import_module(module_name)
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


class LambdaContext:
    """The parts of Lambda's context object that handlers and Powertools read."""

    def __init__(self, spec: FunctionSpec, arn: str):
        self.function_name = spec.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = spec.memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{spec.name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._deadline = time.monotonic() + spec.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def register(spec: FunctionSpec) -> None:
    with _lock:
        _functions[spec.name] = spec


def function(name: str) -> FunctionSpec:
    try:
        return _functions[name]
    except KeyError:
        raise KeyError(f"function {name}: not registered with the engine") from None


def unregister_all() -> None:
    with _lock:
        _functions.clear()


def invoke_in_process(spec: FunctionSpec, event: Any, arn: str) -> tuple[str, bool, str]:
    """Run one invocation; an exception becomes Lambda's error payload, its class name the errorType."""
    context = LambdaContext(spec, arn)
    env = {
        **spec.environment,
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": context.log_group_name,
        "AWS_LAMBDA_LOG_STREAM_NAME": context.log_stream_name,
        "_HANDLER": spec.handler,
        "SESFLOW_VIRTUAL_CLOCK": "1",  # app.clock.now() reads the engine's clock in this invocation only
    }
    environ = os.environ
    assert isinstance(environ, ThreadEnviron), "lambda_bridge.install() was not called"
    previous = environ.overlay
    # One invocation of a function at a time, like one warm container: module globals are shared.
    with spec._lock:
        started = time.perf_counter()  # billed from here: waiting for the container is not the function's time
        environ.set_overlay(env)
        try:
            handler = spec.load()
            _use_virtual_clock()
            with iam.acting_as(runtime.current().iam.functions.get(spec.name), spec.name):  # its calls are its role's
                result = handler(event, context)
            payload, errored = json.dumps(result), False
        except Exception as error:  # any exception is the function's error, as on Lambda
            payload = json.dumps({
                "errorMessage": str(error),
                "errorType": type(error).__name__,
                "requestId": context.aws_request_id,
                "stackTrace": traceback.format_exception(error)[-5:],
            })
            errored = True
        finally:
            environ.set_overlay(previous)
        duration_ms = (time.perf_counter() - started) * 1000
    runtime.current().meter.count_lambda(spec.name, duration_ms, spec.memory_mb)
    return payload, errored, ""


def _use_virtual_clock() -> None:
    """functions/app/clock.py's now() reads the engine's virtual clock, as Step Functions here does."""
    module = sys.modules.get("app.clock")
    if module is not None:
        clock = runtime.current().clock
        module.virtual = clock.now
        module.virtual_sleep = lambda seconds: clock.sleep(seconds, "Lambda sleep")


def _invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    spec = _functions.get(self.function_name)
    if spec is None:
        return json.dumps({
            "errorMessage": f"function {self.function_name} has no in-process handler registered with the engine",
            "errorType": "Runtime.HandlerNotFound",
        }), True, ""
    if isinstance(event, str | bytes):
        event = json.loads(event or "{}")
    return invoke_in_process(spec, event if event is not None else {}, self.function_arn)


def install() -> None:
    """Idempotent: replace `_invoke_lambda` and give os.environ its per-thread overlay."""
    if _original_invoke is None or not callable(_original_invoke):
        raise MotoDriftError("moto.awslambda.models.LambdaFunction._invoke_lambda: no longer exists")
    LambdaFunction._invoke_lambda = _invoke_lambda
    if not isinstance(os.environ, ThreadEnviron):
        os.environ = ThreadEnviron(os.environ)  # noqa: B003 -- keeps the real environment as its base
