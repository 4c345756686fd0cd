"""Fixes to moto 5.2.5's Step Functions interpreter (moto.stepfunctions.parser, a LocalStack port).

Letters A-J refer to the shared notes (notes/local-engine-findings.md) section 1; K and L were found while
writing these. Every fix replaces a moto attribute and records what it wrapped on the replacement in
`__sesflow_original__` (and its module in `__sesflow_module__`): a later install() by the same module wraps
that again, so installing twice never stacks wrappers, and another patch module's wrapper (patches/iam.py wraps
some of the same methods) is kept. Before patching, `_original` checks that moto's code underneath still looks
as the fix expects and raises MotoDriftError naming it otherwise.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import json
import logging
import random
import re
import sys
import threading
import time
import types
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.session
import jsonata
import moto.stepfunctions.parser.models  # noqa: F401  (imports the whole interpreter, incl. every task service)
from botocore.exceptions import ClientError, ParamValidationError
from jsonata.functions import Functions as JsonataFunctions
from jsonata.utils import Utils as JsonataUtils
from moto.core.models import botocore_stubber
from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType, InvalidDefinition
from moto.stepfunctions.parser.asl.component.common.assign.assign_template_value_terminal import (
    AssignTemplateValueTerminalLit,
)
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.component.common.query_language import QueryLanguage, QueryLanguageMode
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.common.string.string_expression import (
    StringJSONata,
    StringVariableSample,
)
from moto.stepfunctions.parser.asl.component.state import state as state_module
from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.item_reader_decl import ItemReader
from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_selector import ItemSelector
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (  # noqa: E501
    DistributedIterationComponent,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (  # noqa: E501
    DistributedItemProcessorWorker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iteration_worker import (
    IterationWorker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iterator.distributed_iterator_worker import (  # noqa: E501
    DistributedIteratorWorker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.job import Job, JobClosed, JobPool
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (
    resource_eval_s3,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap
from moto.stepfunctions.parser.asl.component.state.exec.state_map.tolerated_failure import (
    ToleratedFailureCountDecl,
    ToleratedFailureCountStringJSONata,
    ToleratedFailurePercentageDecl,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.credentials import StateCredentials
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_callback,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
from moto.stepfunctions.parser.asl.component.state.state import CommonStateField
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.asl.eval.program_state import ProgramTimedOut
from moto.stepfunctions.parser.asl.eval.states import States
from moto.stepfunctions.parser.asl.eval.variable_store import VariableStore
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
from moto.stepfunctions.parser.asl.utils import boto_client, json_path
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.parser.utils import camel_to_snake_case

from sesflow.engine import item_files, runtime
from sesflow.engine.limits import (
    DISTRIBUTED_MAP_MAX_CONCURRENCY,
    EXPRESS_MAX_SECONDS,
    HISTORY_EVENT_LIMIT,
    PAYLOAD_LIMIT_BYTES,
)
from sesflow.engine.patches import MotoDriftError

_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Apply every fix; later calls do nothing. Raises MotoDriftError if moto changed under a fix."""
    global _installed
    with _install_lock:
        if _installed:
            return
        for fix in _FIXES:
            fix()
        _installed = True


# --------------------------------------------------------------------------- patching helpers


def _dotted(owner: Any, name: str) -> str:
    if isinstance(owner, types.ModuleType):
        return f"{owner.__name__}.{name}"
    return f"{owner.__module__}.{owner.__qualname__}.{name}"


def _original(owner: Any, name: str, *markers: str, params: tuple[str, ...] = ()) -> Any:
    """What `owner.name` is now, to wrap: moto's code, or another patch module's wrapper of it (the sfn and iam
    patches both wrap some methods, and each must keep the other's). Only the calling module's own earlier
    install is unwrapped, so installing twice never stacks its wrappers. Moto's code underneath is checked for
    source markers and parameters."""
    caller = sys._getframe(1).f_globals.get("__name__")
    value = getattr(owner, name, None)
    if value is not None and getattr(value, "__sesflow_module__", None) == caller:
        value = value.__sesflow_original__
    if value is None:
        raise MotoDriftError(f"{_dotted(owner, name)}: missing")
    moto = value
    while hasattr(moto, "__sesflow_original__"):
        moto = moto.__sesflow_original__
    if markers:
        source = inspect.getsource(moto)
        for marker in markers:
            if marker not in source:
                raise MotoDriftError(f"{_dotted(owner, name)}: source no longer contains {marker!r}")
    if params and tuple(inspect.signature(moto).parameters)[: len(params)] != params:
        raise MotoDriftError(f"{_dotted(owner, name)}: parameters are no longer {params}")
    return value


def _patch(owner: Any, name: str, original: Any, replacement: Any) -> None:
    replacement.__sesflow_original__ = original
    replacement.__sesflow_module__ = sys._getframe(1).f_globals.get("__name__")
    if isinstance(inspect.getattr_static(owner, name, None), staticmethod):
        replacement = staticmethod(replacement)
    setattr(owner, name, replacement)


def _clock():
    return runtime.current().clock


def _before_wait() -> None:
    """What happens during the waited time besides the wait: the stack's queue triggers run (see Runtime)."""
    hook = runtime.current().before_wait
    if hook is not None:
        hook()


def _iso(moment: datetime) -> str:
    """The context object's time format on AWS: 2024-05-01T12:00:00.123Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _kind(execution_type: Any) -> str:
    return str(getattr(execution_type, "value", execution_type)).upper()


def _failure(env: Environment, error: StatesErrorNameType, cause: str,
             event_type: HistoryEventType) -> FailureEventException:
    details_key = f"{event_type.value[0].lower()}{event_type.value[1:]}EventDetails"  # taskFailedEventDetails
    details = EventDetails(**{details_key: {"error": error.to_name(), "cause": cause}})
    return FailureEventException(FailureEvent(env=env, error_name=StatesErrorName(typ=error),
                                              event_type=event_type, event_details=details))


# --------------------------------------------------------------------------- J, K: noise and speed


def _fix_logging() -> None:
    """J: moto logs every handled ASL error at WARNING/ERROR with a multi-KB repr of the state."""
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)


def _fix_jsonpath_cache() -> None:
    """K: jsonpath-ng 1.8 rebuilds its LALR tables on every parse (~50 ms), i.e. per path per state."""
    for module in (json_path, result_path):
        original = _original(module, "parse")
        _patch(module, "parse", original, functools.lru_cache(maxsize=4096)(original))


def _fix_sync_poll_delay() -> None:
    """L: .sync tasks poll the child execution every 0.5 s of real time; 20 ms keeps nested runs fast."""
    _original(state_task_service_callback.StateTaskServiceCallback, "_eval_sync",
              "time.sleep(_DELAY_SECONDS_SYNC_CONDITION_CHECK)")
    _original(state_task_service_callback, "_DELAY_SECONDS_SYNC_CONDITION_CHECK")
    state_task_service_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK = 0.02


# --------------------------------------------------------------------------- A/H: JSONata


def _jsonata_hash(value: str, algorithm: str = "SHA-256") -> str:
    return hashlib.new(algorithm.replace("-", "").lower(), str(value).encode()).hexdigest()


def _jsonata_partition(array: list, size: int) -> list:
    return [array[i:i + int(size)] for i in range(0, len(array), int(size))]


def _jsonata_range(first: float, last: float, step: float) -> list:
    count = int((last - first) // step) + 1 if step else 0
    return [first + i * step for i in range(max(count, 0))]


def _jsonata_random(seed: Any = None) -> float:
    return random.random() if seed is None else random.Random(seed).random()


def _jsonata_now(picture: str | None = None, timezone: str | None = None) -> str:
    return JsonataFunctions.datetime_from_millis(_jsonata_millis(), picture, timezone)


def _jsonata_millis() -> int:
    return int(_clock().timestamp() * 1000)


# Step Functions' JSONata additions, and $now/$millis on the virtual clock.
_JSONATA_FUNCTIONS = {
    name: jsonata.Jsonata.JLambda(impl) for name, impl in {
        "hash": _jsonata_hash,
        "partition": _jsonata_partition,
        "range": _jsonata_range,
        "random": _jsonata_random,
        "uuid": lambda: str(uuid.uuid4()),
        "parse": json.loads,
        "now": _jsonata_now,
        "millis": _jsonata_millis,
    }.items()
}
_compiled_jsonata = threading.local()  # expression -> jsonata.Jsonata, per thread (evaluation keeps state)


UNDEFINED = object()  # what a JSONata expression that selects nothing evaluates to (JSON null is None)


def _eval_jsonata(env: Environment, expression: str, with_states: bool) -> Any:
    """Evaluate with native bindings: UNDEFINED when the expression selects nothing, its JSON value otherwise (a
    field holding JSON null gives None, as on AWS, not undefined)."""
    cache = vars(_compiled_jsonata).setdefault("cache", {})
    compiled = cache.get(expression)
    if compiled is None:
        compiled = cache[expression] = jsonata.Jsonata(expression)
        compiled.set_output_convert_nulls(False)  # keep JSON null apart from undefined (None)
    bindings = dict(_JSONATA_FUNCTIONS)
    if with_states:
        bindings["states"] = env.states._states_data
    bindings.update(env.variable_store._outer_scope)
    bindings.update(env.variable_store._inner_scope)
    try:
        result = compiled.evaluate(None, bindings)
    except Exception as ex:
        raise _failure(env, StatesErrorNameType.StatesQueryEvaluationError,
                       f"The JSONata expression '{expression}' failed: {ex}",
                       HistoryEventType.EvaluationFailed) from ex
    if result is None:
        return UNDEFINED
    return json.loads(json.dumps(JsonataUtils.convert_nulls(result), default=str))


def _fix_jsonata() -> None:
    """A/H: moto stubs JSONata (`_eval_jsonata = None`) and splices values in as text; bind them natively."""
    _original(States, "__init__", "self._states_data")
    _original(VariableStore, "__init__", "self._outer_scope", "self._inner_scope")
    original = _original(StringJSONata, "_eval_body", "eval_jsonata_expression(")

    def string_jsonata_eval_body(self, env: Environment) -> None:
        result = _eval_jsonata(env, self.expression, with_states=True)
        if result is UNDEFINED:
            raise _failure(env, StatesErrorNameType.StatesQueryEvaluationError,
                           f"The JSONata expression '{self.expression}' returned nothing (undefined).",
                           HistoryEventType.EvaluationFailed)
        env.stack.append(result)

    _patch(StringJSONata, "_eval_body", original, string_jsonata_eval_body)

    sample = _original(StringVariableSample, "_eval_body", "eval_jsonata_expression(")

    def variable_sample_eval_body(self, env: Environment) -> None:
        with_states = self.query_language_mode == QueryLanguageMode.JSONata
        result = _eval_jsonata(env, self.expression, with_states=with_states)
        env.stack.append(None if result is UNDEFINED else result)

    _patch(StringVariableSample, "_eval_body", sample, variable_sample_eval_body)
    # The static analysers still scan expressions for references: `$` alone is valid JSONata.
    _original(moto_jsonata, "extract_jsonata_variable_references", "_ILLEGAL_VARIABLE_REFERENCES")
    moto_jsonata._ILLEGAL_VARIABLE_REFERENCES = {"$$"}


def _fix_assign_string_literal() -> None:
    """H: a JSONPath-mode Assign string literal keeps its JSON escapes (a quote arrives as \\")."""
    original = _original(Preprocessor, "visitAssign_template_value_terminal_string_literal",
                         "_inner_string_of(")

    def visit(self, ctx) -> AssignTemplateValueTerminalLit:
        return AssignTemplateValueTerminalLit(value=json.loads(ctx.string_literal().getText()))

    _patch(Preprocessor, "visitAssign_template_value_terminal_string_literal", original, visit)


# --------------------------------------------------------------------------- B: virtual time


def _fix_wait() -> None:
    """B: Wait really sleeps; advance the virtual clock from the time the state was entered."""
    original = _original(WaitFunction, "_wait_interval", "program_state_event.wait(", params=("self", "env"))

    def _wait_interval(self, env: Environment, wait_seconds: float) -> None:
        entered = env.states.context_object.context_object_data["State"]["EnteredTime"]
        _before_wait()
        seconds, cut = _express_wait(env, wait_seconds)
        # A StopExecution ends the Wait (moto's own Wait waits on program_state_event for that): only a paced
        # clock's sleep takes long enough to need it.
        _clock().sleep(seconds, "Wait", since=datetime.fromisoformat(entered), stop=lambda: not env.is_running())
        if cut:
            _express_time_left(env)

    _patch(WaitFunction, "_wait_interval", original, _wait_interval)


def _fix_wait_timestamp() -> None:
    """B: Timestamp waits compare with the real, naive local clock; sleep until it on the virtual one."""
    _original(Timestamp, "_get_wait_seconds", "datetime.datetime.now()")
    _original(Timestamp, "_from_timestamp_string")
    _original(Timestamp, "_create_failure_event")
    original = _original(Timestamp, "_eval_body")

    def _eval_body(self, env: Environment) -> None:
        self.string.eval(env=env)
        text = env.stack.pop()
        moment = self._from_timestamp_string(timestamp=text)
        if moment is None:
            raise FailureEventException(self._create_failure_event(env, text))
        _before_wait()
        until = moment.replace(tzinfo=UTC)
        seconds, cut = _express_wait(env, (until - _clock().now()).total_seconds())
        if cut:  # an EXPRESS child ends at its five minutes, long before the Timestamp
            _clock().sleep(seconds, "Wait", stop=lambda: not env.is_running())
            _express_time_left(env)
            return
        _clock().sleep_until(until, "Wait", stop=lambda: not env.is_running())

    _patch(Timestamp, "_eval_body", original, _eval_body)


def _express_wait(env: Environment, seconds: float) -> tuple[float, bool]:
    """How long a Wait may sleep: in an EXPRESS child, no further than its five minutes (AWS: an Express
    workflow's Wait is at most five minutes, and the execution ends at them), and whether it is cut there. The
    clock then moves to the child's deadline only, as the rest of the account's time would on AWS."""
    budget = getattr(env, "_sesflow_express", None)
    if budget is None:
        return seconds, False
    left = EXPRESS_MAX_SECONDS - budget.seconds()
    if seconds <= left:
        return seconds, False
    return max(0.0, left) + 0.001, True


def _fix_callback_timeout() -> None:
    """B: a waitForTaskToken Task's TimeoutSeconds runs on the real clock; end it on the virtual one.

    The wait ends when the token is answered, or when virtual time (moved by a Wait, a Retry or the test's
    clock.advance) reaches the deadline: then the Task fails with States.Timeout, as on AWS.
    """
    owner = state_task_service_callback.StateTaskServiceCallback
    original = _original(owner, "_wait_for_task_token_timeout", "callback_endpoint.wait(",
                         params=("self", "timeout_seconds", "callback_endpoint"))
    original_eval = _original(owner, "_eval_wait_for_task_token", "_wait_for_task_token_timeout(",
                              params=("self", "env", "timeout_seconds", "callback_endpoint"))
    _original(state_task_service_callback.CallbackEndpoint, "wait", "_notify_event.wait(")

    def _eval_wait_for_task_token(self, env: Environment, timeout_seconds: int, callback_endpoint: Any,
                                  heartbeat_endpoint: Any) -> Any:
        # The timeout counts from when the state was entered, as on AWS, not from when this thread got to
        # waiting: a clock moved in between (the token is visible before the wait starts) still ends it.
        entered = env.states.context_object.context_object_data["State"]["EnteredTime"]
        callback_endpoint.sesflow_entered = datetime.fromisoformat(entered)
        return original_eval(self, env, timeout_seconds, callback_endpoint, heartbeat_endpoint)

    def _wait_for_task_token_timeout(self, timeout_seconds: int, callback_endpoint: Any) -> Any:
        clock = _clock()
        since = getattr(callback_endpoint, "sesflow_entered", None) or clock.now()
        deadline = since + timedelta(seconds=timeout_seconds)
        clock.wake_at(deadline, callback_endpoint._notify_event)
        outcome = callback_endpoint.wait()
        if outcome is None and clock.now() >= deadline:
            return state_task_service_callback.CallbackOutcomeTimedOut(callback_id=callback_endpoint.callback_id)
        return outcome

    _patch(owner, "_wait_for_task_token_timeout", original, _wait_for_task_token_timeout)
    _patch(owner, "_eval_wait_for_task_token", original_eval, _eval_wait_for_task_token)


def _fix_retry() -> None:
    """B: Retry back-off calls time.sleep; move the virtual clock (jitter stays moto's random.uniform). An EXPRESS
    child whose back-off took it past its five minutes ends there (see _fix_express_duration)."""
    eval_body = _original(retrier_decl.RetrierDecl, "_eval_body", "time.sleep(interval_seconds)",
                          params=("self", "env"))
    original = _original(retrier_decl, "time")
    shim = types.SimpleNamespace(sleep=lambda seconds: _clock().sleep(seconds, "Retry"))
    _patch(retrier_decl, "time", original, shim)

    def _eval_body(self, env: Environment) -> None:
        eval_body(self, env)
        _express_time_left(env)

    _patch(retrier_decl.RetrierDecl, "_eval_body", eval_body, _eval_body)


def _fix_event_timestamps() -> None:
    """B: history events are stamped with the real clock; use the virtual one."""
    original = _original(EventManager, "_get_current_timestamp")

    def _get_current_timestamp() -> datetime:
        return _clock().now()

    _patch(EventManager, "_get_current_timestamp", original, _get_current_timestamp)


def _fix_entered_time() -> None:
    """B: $$.State.EnteredTime comes from the real clock (and not in AWS's format); use the virtual one."""
    _original(CommonStateField, "_eval_body", "StateData(", "EnteredTime=")
    original = _original(state_module, "StateData")

    def state_data(**fields: Any) -> dict:
        return original(**{**fields, "EnteredTime": _iso(_clock().now())})

    _patch(state_module, "StateData", original, state_data)


def _fix_execution_start() -> None:
    """B + metering: start dates use the real clock and every execution is typed STANDARD; count each one."""
    original = _original(Execution, "start", "self.exec_worker.start()")

    def start(self) -> None:
        self.start_date = _clock().now()
        self.sm_type = self.state_machine.sm_type = _kind(self.state_machine.type)
        runtime.current().meter.count_execution(self.state_machine.name, self.sm_type)
        original(self)

    _patch(Execution, "start", original, start)


def _fix_stop_date() -> None:
    """B: stop dates come from the real clock; use the virtual one."""
    original = _original(BaseExecutionWorkerCommunication, "_reflect_execution_status", "stop_date")

    def _reflect_execution_status(self) -> None:
        original(self)
        self.execution.stop_date = _clock().now()

    _patch(BaseExecutionWorkerCommunication, "_reflect_execution_status", original, _reflect_execution_status)


# --------------------------------------------------------------------------- C, D: executions


def _fix_execution_name() -> None:
    """C: without a name moto uses None, so the ARN ends in ':None' and a 2nd start fails."""
    original = _original(StepFunctionsParserBackend, "start_execution",
                         params=("self", "state_machine_arn", "name"))

    def start_execution(self, state_machine_arn: str, name: str | None = None, *args: Any, **kwargs: Any):
        return original(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

    _patch(StepFunctionsParserBackend, "start_execution", original, start_execution)


@dataclass
class _History:
    """Whose transitions an event history bills, and for an execution's own history, its quota."""

    name: str
    kind: str
    env: Environment | None = None  # the execution's root environment; None for Distributed Map children
    events: int = 0
    state: str = ""
    overflowed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def _fix_root_environment() -> None:
    """D: $$.Execution.StartTime is a datetime that breaks JSON; also registers the history for the limits."""
    original = _original(ExecutionWorker, "_get_evaluation_environment", "StartTime=")

    def _get_evaluation_environment(self) -> Environment:
        env = original(self)
        context = env.states.context_object.context_object_data
        context["Execution"]["StartTime"] = _iso(context["Execution"]["StartTime"])
        name, kind = context["StateMachine"]["Name"], _kind(env.execution_type)
        env.event_manager._sesflow_history = _History(name, kind, env)
        return env

    _patch(ExecutionWorker, "_get_evaluation_environment", original, _get_evaluation_environment)


# --------------------------------------------------------------------------- limits and metering

_EXECUTION_END_EVENTS = frozenset({
    HistoryEventType.ExecutionSucceeded, HistoryEventType.ExecutionFailed,
    HistoryEventType.ExecutionAborted, HistoryEventType.ExecutionTimedOut,
})


def _fail_execution(env: Environment, error: str, cause: str) -> None:
    """Fail the whole execution; the error sticks even if a state's own failure is reported later."""
    env._sesflow_fatal = ExecutionFailedEventDetails(error=error, cause=cause)
    env.set_error(env._sesflow_fatal)


def _fix_sticky_error() -> None:
    """Limits: a quota failure must not be overwritten by the failures it causes in running states."""
    original = _original(Environment, "set_error", params=("self", "error"))

    def set_error(self, error: ExecutionFailedEventDetails) -> None:
        original(self, getattr(self, "_sesflow_fatal", None) or error)

    _patch(Environment, "set_error", original, set_error)


def _fix_history_events() -> None:
    """Limits + metering: moto runs past AWS's 25,000-event history quota; StateEntered = one transition."""
    original = _original(EventManager, "add_event",
                         params=("self", "context", "event_type", "event_details", "timestamp"))

    def add_event(self, context, event_type, event_details=None, timestamp=None, update_source_event_id=True):
        history: _History | None = getattr(self, "_sesflow_history", None)
        if history is None:
            return original(self, context, event_type, event_details, timestamp, update_source_event_id)
        entered = (event_details or {}).get("stateEnteredEventDetails")
        with history.lock:
            if entered:
                history.state = entered["name"]
            over = history.env is not None and event_type not in _EXECUTION_END_EVENTS and (
                history.overflowed or history.events >= HISTORY_EVENT_LIMIT - 1)  # keep room for the failure
            first_overflow = over and not history.overflowed
            history.overflowed |= over
            if not over:
                history.events += 1
                if entered:
                    runtime.current().meter.count_transition(history.name, history.kind)
                return original(self, context, event_type, event_details, timestamp, update_source_event_id)
        if first_overflow:
            _fail_execution(history.env, "States.Runtime",
                            f"The execution history would exceed the AWS limit of {HISTORY_EVENT_LIMIT:,} "
                            f"events in state '{history.state}'.")
        return context.last_published_event_id

    _patch(EventManager, "add_event", original, add_event)


def _check_payload(state: CommonStateField, env: Environment, value: Any, what: str) -> None:
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode())
    if size > PAYLOAD_LIMIT_BYTES:
        raise _failure(env, StatesErrorNameType.StatesStatesDataLimitExceeded,
                       f"The {what} of state '{state.name}' is {size:,} bytes, over the AWS payload limit "
                       f"of {PAYLOAD_LIMIT_BYTES:,} bytes.", HistoryEventType.TaskFailed)


def _fix_payload_limit() -> None:
    """Limits: moto checks outputs only, with an exclusive bound, and names neither state nor size."""
    eval_state_input = _original(CommonStateField, "_eval_state_input", params=("self", "env"))

    def _eval_state_input(self, env: Environment) -> None:
        eval_state_input(self, env)
        _check_payload(self, env, env.stack[-1], "input")

    def output_check():  # one function per patched class: each records its own moto original
        def _verify_size_quota(self, env: Environment, value: Any) -> None:
            _check_payload(self, env, value, "output")

        return _verify_size_quota

    _patch(CommonStateField, "_eval_state_input", eval_state_input, _eval_state_input)
    for owner in (CommonStateField, StateTaskService, StateTaskLambda):
        verify = _original(owner, "_verify_size_quota", "is_within_size_quota(",
                           params=("self", "env", "value"))
        _patch(owner, "_verify_size_quota", verify, output_check())


# --------------------------------------------------------------------------- E, I: service integrations


@functools.cache
def _service_model(service: str):
    return botocore.session.get_session().get_service_model(service)  # a new session reads the JSON model again


@functools.cache
def _operation_model(service: str, action: str):
    model = _service_model(service)
    names = {camel_to_snake_case(name): name for name in model.operation_names}
    if action not in names:
        raise RuntimeError(f"No api action named '{action}' available for service '{service}'.")
    return model.operation_model(names[action])


def _dates_to_epoch_millis(value: Any) -> None:
    """Integration results carry timestamps as epoch milliseconds; boto's datetimes break JSON output."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in list(items):
        if isinstance(item, datetime):
            value[key] = int(item.timestamp() * 1000)
        else:
            _dates_to_epoch_millis(item)


def _fix_service_normalisation() -> None:
    """E: moto made normalisation a no-op: startExecution KeyErrors, S3 Body stays a stream, boto casing."""
    for helper in ("_to_boto_request", "_from_boto_response", "_get_boto_service_name",
                   "_get_boto_service_action"):
        _original(StateTaskService, helper)
    names = ("self", "parameters", "boto_service_name", "service_action_name")
    original = _original(StateTaskService, "_normalise_parameters", params=names)

    def _normalise_parameters(self, parameters, boto_service_name=None, service_action_name=None) -> None:
        shape = _operation_model(self._get_boto_service_name(boto_service_name),
                                 self._get_boto_service_action(service_action_name)).input_shape
        if shape is not None:
            self._to_boto_request(parameters, shape)

    _patch(StateTaskService, "_normalise_parameters", original, _normalise_parameters)
    original = _original(StateTaskService, "_normalise_response", params=("self", "response") + names[2:])

    def _normalise_response(self, response, boto_service_name=None, service_action_name=None) -> None:
        shape = _operation_model(self._get_boto_service_name(boto_service_name),
                                 self._get_boto_service_action(service_action_name)).output_shape
        if shape is not None:
            self._from_boto_response(response, shape)
        _dates_to_epoch_millis(response)

    _patch(StateTaskService, "_normalise_response", original, _normalise_response)


class _ClientCache:
    """One boto3 client per (region, service) for the current boto3 default session: mock_aws replaces
    that session on entry, so a new mock starts an empty cache."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.session = None
        self.clients: dict = {}

    def get(self, original, region: str, service: str, state_credentials: Any = None):
        with self.lock:
            if boto3.DEFAULT_SESSION is None:
                boto3.setup_default_session()
            if self.session is not boto3.DEFAULT_SESSION:
                self.session, self.clients = boto3.DEFAULT_SESSION, {}
            key = (region, service, botocore_stubber.enabled)
            if key not in self.clients:
                self.clients[key] = original(region, service, state_credentials)
            return self.clients[key]


_client_cache = _ClientCache()


def _fix_client_cache() -> None:
    """I: moto builds a new boto3 client for every Task (about 2/3 of a lambda:invoke Task's time)."""
    original = _original(boto_client, "boto_client_for", "boto3.client(", params=("region", "service"))

    def boto_client_for(region: str, service: str, state_credentials: Any = None):
        return _client_cache.get(original, region, service, state_credentials)

    for module_name, module in list(sys.modules.items()):  # every module that imported it by name
        if not module_name.startswith("moto.stepfunctions"):
            continue
        current = getattr(module, "boto_client_for", None)
        if current is not None and getattr(current, "__sesflow_original__", current) is original:
            _patch(module, "boto_client_for", original, boto_client_for)


# --------------------------------------------------------------------------- F, G: Map states


def _fix_tolerated_failure_jsonata() -> None:
    """F: a JSONata ToleratedFailureCount is parsed as a ToleratedFailurePercentage."""
    original = _original(Preprocessor, "visitTolerated_failure_count_string_jsonata",
                         "ToleratedFailurePercentageStringJSONata(")

    def visit(self, ctx) -> ToleratedFailureCountStringJSONata:
        return ToleratedFailureCountStringJSONata(self.visitString_jsonata(ctx=ctx.string_jsonata()))

    _patch(Preprocessor, "visitTolerated_failure_count_string_jsonata", original, visit)


def _fix_tolerance_declared() -> None:
    """F: moto fills in both tolerances (0), hiding which ones the definition declared."""
    original = _original(StateMap, "from_state_props", "iteration_component")

    def from_state_props(self, state_props) -> None:
        original(self, state_props)
        self.iteration_component._sesflow_tolerance_declared = (
            state_props.get(ToleratedFailureCountDecl) is not None,
            state_props.get(ToleratedFailurePercentageDecl) is not None,
        )

    _patch(StateMap, "from_state_props", original, from_state_props)


def _fix_distributed_map_run() -> None:
    """F + metering: moto never compares failed items with the tolerances; each item is a child execution."""
    original = _original(DistributedIterationComponent, "_map_run", params=("self", "env", "eval_input"))

    def _map_run(self, env: Environment, eval_input: Any) -> None:
        state_machine = env.states.context_object.context_object_data["StateMachine"]["Name"]
        config = getattr(self, "_processor_config", None)
        kind = _kind(config.execution_type.name) if config is not None else "STANDARD"
        if eval_input.state_name in _express_maps.get(state_machine, ()):
            kind = "EXPRESS"
        children = _History(f"{state_machine}/{eval_input.state_name}", kind)
        eval_input.map_run_record._sesflow_tolerance_declared = getattr(
            self, "_sesflow_tolerance_declared", (False, False))
        env.event_manager._sesflow_history = children  # moto gives the map run its own EventManager
        try:
            _run_map(self, env, eval_input, original)
        finally:
            meter = runtime.current().meter
            for _ in range(eval_input.map_run_record.item_counter.total.get()):
                meter.count_execution(children.name, kind)
        if _run_failed(eval_input.map_run_record):
            raise _failure(env, StatesErrorNameType.StatesExceedToleratedFailureThreshold,
                           "The specified tolerated failure threshold was exceeded.",
                           HistoryEventType.MapRunFailed)

    _patch(DistributedIterationComponent, "_map_run", original, _map_run)


def _run_failed(record: Any) -> bool:
    """A Distributed Map Run whose failed and timed-out children already exceed its tolerance: AWS fails the Map
    Run then and starts no more children (the engine lets those running finish)."""
    declared = getattr(record, "_sesflow_tolerance_declared", None)
    if declared is None:
        return False
    items = record.item_counter
    failed, total = items.failed.get() + items.timed_out.get(), items.total.get()
    by_count, by_percentage = declared
    if not (by_count or by_percentage):
        return failed > 0
    return ((by_count and failed > record.tolerated_failure_count)
            or (by_percentage and total and 100.0 * failed / total > record.tolerated_failure_percentage))


def _fail_map_run(worker: Any) -> None:
    """End the job pool as moto ends it on a worker's exception: the Map fails with the tolerance's error, and
    the workers take no more jobs."""
    pool = worker._job_pool
    with pool._mutex:
        if pool._worker_exception is None:
            pool._worker_exception = _failure(
                worker._env, StatesErrorNameType.StatesExceedToleratedFailureThreshold,
                "The specified tolerated failure threshold was exceeded.", HistoryEventType.MapRunFailed)
        pool._notify_on_termination()


def _looping_eval_pool(open_job_frame: str, close_frame: str, link_events: bool):
    def _eval_pool(self, job, worker_frame: Environment) -> None:
        while job is not None:
            job_frame = getattr(worker_frame, open_job_frame)()
            self._eval_job(env=job_frame, job=job)
            getattr(worker_frame, close_frame)(job_frame)
            record = getattr(self, "_map_run_record", None)
            if record is not None and _run_failed(record):
                _fail_map_run(self)
            stopped = isinstance(job.job_output, Exception) or self.stopped()
            next_job = None if stopped else self._job_pool.next_job()
            if next_job is not None:
                self._job_pool.close_job(job)
                job = next_job
                continue
            if link_events and not stopped:  # the last iteration's events are the source of what follows
                worker_frame.event_history_context.source_event_id = (
                    job_frame.event_history_context.last_published_event_id)
            getattr(self._env, close_frame)(worker_frame)  # before close_job: the Map waits on jobs
            self._job_pool.close_job(job)
            return
        getattr(self._env, close_frame)(worker_frame)

    return _eval_pool


def _fix_map_recursion() -> None:
    """G: Map workers recurse once per item (RecursionError, execution stuck RUNNING); loop instead."""
    for owner, open_job_frame, close_frame, link_events in (
        (IterationWorker, "open_inner_frame", "close_frame", True),
        (DistributedIteratorWorker, "open_frame", "delete_frame", False),
        (DistributedItemProcessorWorker, "open_inner_frame", "delete_frame", False),
    ):
        original = _original(owner, "_eval_pool", "self._eval_pool(job=next_job", f".{open_job_frame}()",
                             f".{close_frame}(")
        _patch(owner, "_eval_pool", original, _looping_eval_pool(open_job_frame, close_frame, link_events))


# Distributed Maps declared EXPRESS, by state machine name: moto's grammar only takes STANDARD children.
_express_maps: dict[str, set[str]] = {}


def _express_map_names(node: Any) -> set[str]:
    """Names of the DISTRIBUTED Map states anywhere in a definition whose children are EXPRESS."""
    found: set[str] = set()
    if isinstance(node, dict):
        for name, state in (node.get("States") or {}).items():
            config = (state.get("ItemProcessor") or {}).get("ProcessorConfig") or {}
            if state.get("Type") == "Map" and config.get("ExecutionType") == "EXPRESS":
                found.add(name)
        for value in node.values():
            found |= _express_map_names(value)
    elif isinstance(node, list):
        for value in node:
            found |= _express_map_names(value)
    return found


def _fix_express_map_children() -> None:
    """moto's ASL grammar rejects ProcessorConfig.ExecutionType EXPRESS (valid on AWS): run such a Map with
    STANDARD children, remembered by name so the meter bills its children as EXPRESS. It also rejects an
    ItemBatcher, InputType JSONL and CSVDelimiter, and parses CSV otherwise than AWS: those are taken out of the
    definition here and run by the engine (_map_extensions)."""
    backend = moto.stepfunctions.parser.models.StepFunctionsParserBackend
    original = _original(backend, "create_state_machine", params=("self", "name", "definition"))

    def create_state_machine(self, name: str, definition: str, *args: Any, **kwargs: Any):
        try:
            parsed = json.loads(definition)
        except ValueError:
            parsed = None  # moto reports the syntax error
        express = _express_map_names(parsed) if parsed is not None else set()
        rewritten = _result_writer_arguments(parsed) if parsed is not None else None
        specs: dict[str, _MapSpec] = {}
        if rewritten is not None:
            rewritten = _map_extensions(rewritten, specs)
        if rewritten != parsed:
            definition = json.dumps(rewritten)
        if express:
            _express_maps[name] = express
            definition = re.sub(r'"ExecutionType"\s*:\s*"EXPRESS"', '"ExecutionType": "STANDARD"', definition)
        created = original(self, name, definition, *args, **kwargs)
        if specs:
            _map_specs[name] = specs
        else:
            _map_specs.pop(name, None)
        return created

    _patch(backend, "create_state_machine", original, create_state_machine)


# --------------------------------------------------------------------------- EXPRESS children, Map results

def _express_time_left(env: Environment) -> bool:
    """False, and the child ended as TIMED_OUT, if `env` is an EXPRESS Map child past its five minutes."""
    budget = getattr(env, "_sesflow_express", None)
    if budget is None or budget.seconds() <= EXPRESS_MAX_SECONDS:
        return True
    if env.is_running():
        budget.timed_out = True
        env.set_timed_out()
    return False


@dataclass
class _ExpressBudget:
    """An EXPRESS child's own duration: what it waited itself (Wait states, Retry back-offs, the sleeps of the
    Lambdas its Tasks ran) on the virtual clock, plus the real time it ran. Not the virtual clock's reading: a long
    Wait in another child moves that clock for everyone, and on AWS would have run beside this child, not in it."""

    waited: list[float] = field(default_factory=lambda: [0.0])
    started: float = field(default_factory=time.monotonic)
    timed_out: bool = False

    def seconds(self) -> float:
        return self.waited[0] + time.monotonic() - self.started


def _fix_express_duration() -> None:
    """AWS ends an EXPRESS execution after 5 minutes (Step Functions quotas); moto runs Distributed Map children
    for ever, inside the parent's context. Each EXPRESS child gets its own Execution context (Id, Name, and
    StartTime on the virtual clock) and a budget (_ExpressBudget): a state that would start past five minutes does
    not run, a Retry back-off that ends past them ends the child, and the child is TIMED_OUT, counted against the
    Map's tolerated failures as AWS counts it."""
    eval_job = _original(DistributedItemProcessorWorker, "_eval_job", "job.job_program.eval(env)",
                         params=("self", "env", "job"))
    state_eval = _original(CommonStateField, "_eval_body", params=("self", "env"))
    task_evals = [(owner, _original(owner, "_eval_execution", params=("self", "env")))
                  for owner in (StateTaskService, StateTaskLambda)]
    open_frame = _original(Environment, "open_frame", "as_frame_of", params=("self",))
    open_inner_frame = _original(Environment, "open_inner_frame", "as_inner_frame_of", params=("self",))

    def _eval_job(self, env: Environment, job: Any) -> None:
        history = getattr(env.event_manager, "_sesflow_history", None)
        if history is None or history.kind != "EXPRESS":
            return eval_job(self, env, job)
        context = env.states.context_object.context_object_data
        name = str(uuid.uuid4())
        context["Execution"] = {**context["Execution"], "Id": f"{self._map_run_record.map_run_arn}:{name}",
                                "Name": name, "StartTime": _iso(_clock().now())}
        budget = env._sesflow_express = _ExpressBudget()
        eval_job(self, env, job)
        if _redelivered(self._map_run_record.map_run_arn, job.job_index):
            _run_again(self, job, history.name)
        if (budget.timed_out or not _express_time_left(env)) and isinstance(env.program_state(), ProgramTimedOut):
            items, executions = self._map_run_record.item_counter, self._map_run_record.execution_counter
            # moto counted a TIMED_OUT program as succeeded; AWS counts it as timed out, with no result
            for counter in (items.succeeded, items.results_written, executions.succeeded, executions.results_written):
                counter.offset(-1)
            items.timed_out.count()
            executions.timed_out.count()
            job.job_output = None

    def charged(original):
        def run(self, env: Environment) -> None:
            budget = getattr(env, "_sesflow_express", None)
            if budget is None:
                return original(self, env)
            if not _express_time_left(env):
                return None
            with _clock().ledger(budget.waited):
                return original(self, env)

        return run

    def inherit(original):  # a Task runs in a frame of its own, in a thread of its own
        def opened(self, *args: Any, **kwargs: Any) -> Environment:
            frame = original(self, *args, **kwargs)
            budget = getattr(self, "_sesflow_express", None)
            if budget is not None:
                frame._sesflow_express = budget
            return frame

        return opened

    _patch(DistributedItemProcessorWorker, "_eval_job", eval_job, _eval_job)
    _patch(CommonStateField, "_eval_body", state_eval, charged(state_eval))
    for owner, task_eval in task_evals:
        _patch(owner, "_eval_execution", task_eval, charged(task_eval))
    _patch(Environment, "open_frame", open_frame, inherit(open_frame))
    _patch(Environment, "open_inner_frame", open_inner_frame, inherit(open_inner_frame))


def _redelivered(map_run_arn: str, index: int) -> bool:
    share = runtime.current().express_redelivery
    if share <= 0:
        return False
    digest = hashlib.sha256(f"{map_run_arn}#{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def _run_again(worker: Any, job: Any, children: str) -> None:
    """The item's EXPRESS child once more, in a frame of its own (its own context, budget and five minutes), as a
    second delivery of its start; what it outputs is not the Map's."""
    frame = worker._env.open_inner_frame()
    try:
        context = frame.states.context_object.context_object_data
        name = str(uuid.uuid4())
        context["Map"] = {"Item": {"Index": job.job_index, "Value": job.job_input}}
        context["Execution"] = {**context["Execution"], "Id": f"{worker._map_run_record.map_run_arn}:{name}",
                                "Name": name, "StartTime": _iso(_clock().now())}
        frame._sesflow_express = _ExpressBudget()
        frame.states.reset(job.job_input)
        frame.stack.append(frame.states.get_input())
        worker._eval_input(env_frame=frame)
        job.job_program.eval(frame)
        runtime.current().meter.count_execution(children, "EXPRESS")
    finally:
        worker._env.delete_frame(frame)


def _fix_gathered_result_limit() -> None:
    """Without a ResultWriter, a Map gathers its children's outputs into its own result, and AWS fails the state
    with States.DataLimitExceeded when that is over 256 KiB, whatever its Output keeps of it afterwards. moto checks
    only the state's final output."""
    original = _original(StateMap, "_eval_execution", "self.result_writer", params=("self", "env"))

    def _eval_execution(self, env: Environment) -> None:
        original(self, env)
        if self.result_writer is None and env.stack:
            _check_payload(self, env, env.stack[-1], "gathered result of its iterations")

    _patch(StateMap, "_eval_execution", original, _eval_execution)


def _fix_result_writer() -> None:
    """A ResultWriter writes the children's results to S3 as AWS does (Prefix/<map run id>/SUCCEEDED_0.json and
    FAILED_0.json, listed in manifest.json); moto writes an empty manifest only."""
    owner = resource_eval_s3.ResourceEvalS3
    original = _original(owner, "_handle_put_object", "TODO: results", params=("env", "resource_runtime_part"))

    def _handle_put_object(env: Environment, resource_runtime_part: Any, state_credentials: Any) -> None:
        parameters, results = env.stack.pop(), env.stack.pop()
        s3 = boto_client.boto_client_for(region=resource_runtime_part.region, service="s3",
                                         state_credentials=state_credentials)
        record = env.map_run_record_pool_manager.get_all()[-1]
        prefix = parameters.get("Prefix", "")
        prefix = prefix if prefix == "" or prefix.endswith("/") else prefix + "/"
        base = f"{prefix}{record.map_run_arn.split(':')[-1]}/"
        files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
        succeeded = [{"Status": "SUCCEEDED", "Output": json.dumps(result, separators=(",", ":"))}
                     for result in results or [] if result is not None]
        for status, entries in (("SUCCEEDED", succeeded),):
            key = f"{base}{status}_0.json"
            s3.put_object(Bucket=parameters["Bucket"], Key=key, Body=json.dumps(entries).encode())
            files[status].append({"Key": key, "Size": len(json.dumps(entries))})
        manifest = {"DestinationBucket": parameters["Bucket"], "MapRunArn": record.map_run_arn,
                    "ResultFiles": files}
        key = f"{base}manifest.json"
        s3.put_object(Bucket=parameters["Bucket"], Key=key, Body=json.dumps(manifest, indent=2).encode())
        env.stack.append({"MapRunArn": record.map_run_arn,
                          "ResultWriterDetails": {"Bucket": parameters["Bucket"], "Key": key}})

    _patch(owner, "_handle_put_object", original, _handle_put_object)

    # Its Parameters (the definition's Arguments, see _result_writer_arguments) are constants: parse them as the
    # JSONPath block moto's grammar expects, even inside a JSONata state.
    visit = _original(Preprocessor, "visitResult_writer_decl", "Parameters/Arguments", params=("self", "ctx"))

    def visitResult_writer_decl(self, ctx):  # noqa: N802 -- moto's visitor name
        self._query_language_per_scope.append(QueryLanguage(QueryLanguageMode.JSONPath))
        try:
            return visit(self, ctx)
        finally:
            self._query_language_per_scope.pop()

    _patch(Preprocessor, "visitResult_writer_decl", visit, visitResult_writer_decl)


def _result_writer_arguments(node: Any) -> Any:
    """moto's grammar takes a ResultWriter's Parameters only; a JSONata state writes them as Arguments (constant
    strings here: the engine cannot evaluate a JSONata expression in them, and says so)."""
    if isinstance(node, dict):
        writer = node.get("ResultWriter")
        if isinstance(writer, dict) and "Arguments" in writer:
            arguments = writer["Arguments"]
            dynamic = [k for k, v in arguments.items() if not isinstance(v, str) or v.lstrip().startswith("{%")]
            if dynamic:
                raise ValueError(f"ResultWriter.Arguments {dynamic}: the engine takes constant strings only")
            node = {**node, "ResultWriter": {**{k: v for k, v in writer.items() if k != "Arguments"},
                                             "Parameters": arguments}}
        return {k: _result_writer_arguments(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_result_writer_arguments(v) for v in node]
    return node


# --------------------------------------------------------------------------- Distributed Map: files and batches

# Per state machine name, per Map state name (unique in a definition): what the engine runs itself, having taken it
# out of the definition before moto parsed it.
_map_specs: dict[str, dict[str, _MapSpec]] = {}

_GET_OBJECT = "arn:aws:states:::s3:getObject"
_BATCH_LIMITS = ("MaxItemsPerBatch", "MaxInputBytesPerBatch")
_BATCHER_FIELDS = frozenset({"BatchInput", *_BATCH_LIMITS, *(f"{limit}Path" for limit in _BATCH_LIMITS)})
_CSV_FIELDS = frozenset({"CSVHeaderLocation", "CSVHeaders", "CSVDelimiter"})
_FILE_READER_FIELDS = frozenset({"InputType", "MaxItems", "MaxItemsPath", *_CSV_FIELDS})


@dataclass
class _MapSpec:
    """A Map state's ItemReader of a CSV or JSON Lines file, and its ItemBatcher: `batcher` is a moto ItemSelector
    that evaluates, against the Map's input, to {"BatchInput", "MaxItemsPerBatch", "MaxInputBytesPerBatch"} (those
    the definition has)."""

    reader: item_files.ReaderSpec | None = None
    batcher: ItemSelector | None = None


@dataclass
class _ItemFile:
    """An open file of items (the Map's ItemReader result): read as the Map Run takes its items."""

    where: str
    items: Iterator[Any]
    body: Any


def _invalid(state: str, message: str) -> InvalidDefinition:
    return InvalidDefinition(message=f"Map state '{state}': {message}")


def _is_jsonata(value: Any) -> bool:
    return isinstance(value, str) and value.strip().startswith("{%") and value.strip().endswith("%}")


def _map_extensions(node: Any, specs: dict[str, _MapSpec], query_language: str = "JSONPath") -> Any:
    """`node` (a definition) with every Map state's CSV or JSONL ReaderConfig made a JSON one (MaxItems kept for moto
    to evaluate) and its ItemBatcher taken out; what was taken out is recorded in `specs` by state name."""
    if isinstance(node, list):
        return [_map_extensions(value, specs, query_language) for value in node]
    if not isinstance(node, dict):
        return node
    if not isinstance(node.get("States"), dict):
        return {key: _map_extensions(value, specs, query_language) for key, value in node.items()}
    query_language = node.get("QueryLanguage", query_language)  # a state machine, a branch, an ItemProcessor
    states = {}
    for name, state in node["States"].items():
        if isinstance(state, dict):
            language = state.get("QueryLanguage", query_language)
            if state.get("Type") == "Map":
                state = _map_state(name, state, language, specs)
            state = {key: _map_extensions(value, specs, language) for key, value in state.items()}
        states[name] = state
    return {**node, "States": states}


def _map_state(name: str, state: dict, language: str, specs: dict[str, _MapSpec]) -> dict:
    processor = state.get("ItemProcessor") or state.get("Iterator") or {}
    distributed = isinstance(processor, dict) and (processor.get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED"
    spec = _MapSpec()
    reader = state.get("ItemReader")
    config = reader.get("ReaderConfig") if isinstance(reader, dict) else None
    if isinstance(config, dict) and config.get("InputType") in ("CSV", "JSONL"):
        spec.reader = _reader_spec(name, reader, config)
        kept = {key: value for key, value in config.items() if key in ("MaxItems", "MaxItemsPath")}
        state = {**state, "ItemReader": {**reader, "ReaderConfig": {"InputType": "JSON", **kept}}}
    elif isinstance(config, dict) and _CSV_FIELDS & set(config):
        raise _invalid(name, f"ReaderConfig {sorted(_CSV_FIELDS & set(config))} are for InputType CSV")
    if "ItemBatcher" in state:
        if not distributed:
            raise _invalid(name, "an ItemBatcher is for a Map state in DISTRIBUTED mode")
        spec.batcher = _batcher(name, state["ItemBatcher"], language)
        state = {key: value for key, value in state.items() if key != "ItemBatcher"}
    if spec.reader is not None or spec.batcher is not None:
        specs[name] = spec
    return state


def _reader_spec(name: str, reader: dict, config: dict) -> item_files.ReaderSpec:
    input_type = config["InputType"]
    if reader.get("Resource") != _GET_OBJECT:
        raise _invalid(name, f"an ItemReader of InputType {input_type} reads one file: its Resource is {_GET_OBJECT}")
    unknown = set(config) - _FILE_READER_FIELDS
    if unknown:
        raise _invalid(name, f"{sorted(unknown)} are not ReaderConfig fields")
    if input_type == "JSONL":
        if _CSV_FIELDS & set(config):
            raise _invalid(name, f"ReaderConfig {sorted(_CSV_FIELDS & set(config))} are for InputType CSV, not JSONL")
        return item_files.ReaderSpec("JSONL")
    delimiter = config.get("CSVDelimiter", "COMMA")
    if delimiter not in item_files.DELIMITERS:
        raise _invalid(name, f"CSVDelimiter {delimiter!r} is not one of {', '.join(item_files.DELIMITERS)}")
    location = config.get("CSVHeaderLocation")
    headers = config.get("CSVHeaders")
    if location == "FIRST_ROW" and headers is None:
        return item_files.ReaderSpec("CSV", item_files.DELIMITERS[delimiter], "FIRST_ROW")
    if location == "GIVEN" and isinstance(headers, list) and headers and all(isinstance(h, str) for h in headers):
        return item_files.ReaderSpec("CSV", item_files.DELIMITERS[delimiter], "GIVEN", tuple(headers))
    if location == "FIRST_ROW":
        raise _invalid(name, "CSVHeaders are given with CSVHeaderLocation GIVEN, not FIRST_ROW")
    if location == "GIVEN":
        raise _invalid(name, "CSVHeaderLocation GIVEN takes CSVHeaders, a non-empty list of strings")
    raise _invalid(name, f"InputType CSV takes CSVHeaderLocation FIRST_ROW or GIVEN, not {location!r}")


def _batcher(name: str, batcher: Any, language: str) -> ItemSelector:
    """The ItemBatcher's fields as one moto ItemSelector (a payload template in the state's query language), parsed
    by moto as the only field of a Map state of its own."""
    if not isinstance(batcher, dict):
        raise _invalid(name, "ItemBatcher is an object")
    unknown = set(batcher) - _BATCHER_FIELDS
    if unknown:
        raise _invalid(name, f"{sorted(unknown)} are not ItemBatcher fields")
    selector = {"BatchInput": batcher["BatchInput"]} if "BatchInput" in batcher else {}
    for limit in _BATCH_LIMITS:
        path = f"{limit}Path"
        if limit in batcher and path in batcher:
            raise _invalid(name, f"ItemBatcher takes {limit} or {path}, not both")
        if path in batcher:
            if language == "JSONata":
                raise _invalid(name, f"ItemBatcher.{path} is JSONPath; in JSONata, {limit} takes an expression")
            selector[f"{limit}.$"] = batcher[path]
        elif limit in batcher:
            value = batcher[limit]
            if not (language == "JSONata" and _is_jsonata(value)):
                _batch_limit(limit, value, lambda message: _invalid(name, message))
            selector[limit] = value
    if len(selector) == ("BatchInput" in selector):
        raise _invalid(name, "an ItemBatcher has MaxItemsPerBatch, MaxInputBytesPerBatch or one of their Paths")
    definition = {"QueryLanguage": language, "StartAt": name, "States": {name: {
        "Type": "Map", "ItemSelector": selector, "End": True,
        "ItemProcessor": {"StartAt": "Batch", "States": {"Batch": {"Type": "Pass", "End": True}}}}}}
    try:
        program, _ = AmazonStateLanguageParser.parse(json.dumps(definition))
    except Exception as error:  # noqa: BLE001 -- moto's parser raises several kinds; the definition is invalid
        raise _invalid(name, f"ItemBatcher: {error}") from error
    return program.states.states[name].item_selector


def _batch_limit(field_name: str, value: Any, error: Any) -> int:
    """`value` as a batch limit: a positive integer, and at most 256 KiB for MaxInputBytesPerBatch."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise error(f"ItemBatcher.{field_name} is {value!r}; it is a positive integer")
    if field_name == "MaxInputBytesPerBatch" and value > PAYLOAD_LIMIT_BYTES:
        raise error(f"ItemBatcher.MaxInputBytesPerBatch is {value:,}; a batch is at most {PAYLOAD_LIMIT_BYTES:,} "
                    "bytes (256 KiB)")
    return value


def _spec_for(env: Environment, state_name: str) -> _MapSpec | None:
    machine = str(env.states.context_object.context_object_data["StateMachine"]["Name"]).split("/", 1)[0]
    return _map_specs.get(machine, {}).get(state_name)


def _reader_failed(env: Environment, cause: str) -> FailureEventException:
    return _failure(env, StatesErrorNameType.StatesItemReaderFailed, cause, HistoryEventType.MapRunFailed)


def _fix_file_item_readers() -> None:
    """An ItemReader of a CSV or JSON Lines file in S3 (InputType CSV or JSONL): GetObject as the state machine's role
    (patches/iam.py checks it), then the file's items parsed as AWS parses them (sesflow.engine.item_files), read as
    the Map Run takes them. A file that cannot be read, or read as its ReaderConfig says, fails the Map Run with
    States.ItemReaderFailed, the cause naming the file and the problem."""
    original = _original(ItemReader, "_eval_body", "self.resource_eval.eval_resource(", params=("self", "env"))
    # _StreamingJobPool and _run_map stand in for moto's JobPool and DistributedIterationComponent._map_run
    _original(JobPool, "close_job", "self._closed_jobs.add(", "self._worker_exception = ",
              "self._notify_on_termination()")
    _original(DistributedIterationComponent, "_map_run", "JobPool(", "self._launch_worker(",
              "env.stack.append(outputs)")

    def _eval_body(self, env: Environment) -> None:
        state = env.states.context_object.context_object_data.get("State", {}).get("Name")
        spec = _spec_for(env, state)
        if spec is None or spec.reader is None:
            return original(self, env)
        self.reader_config.eval(env=env)
        max_items = env.stack.pop()["MaxItemsValue"]
        parameters: dict[str, Any] = {}
        if self.parargs:
            self.parargs.eval(env=env)
            parameters = env.stack.pop()
        self.resource_eval.resource.eval(env=env)
        region = env.stack.pop().region
        where = f"s3://{parameters.get('Bucket')}/{parameters.get('Key')}"
        s3 = boto_client.boto_client_for(region=region, service="s3",
                                         state_credentials=StateCredentials(role_arn=env.aws_execution_details.role_arn))
        try:
            body = s3.get_object(**parameters)["Body"]
        except (ClientError, ParamValidationError) as error:
            raise _reader_failed(env, f"The ItemReader could not get {where}: {error}") from error
        try:
            items = item_files.read_items(body, spec.reader, max_items)
        except item_files.ItemFileError as error:
            body.close()
            raise _reader_failed(env, f"{where}: {error}") from error
        env.stack.append(_ItemFile(where, items, body))

    _patch(ItemReader, "_eval_body", original, _eval_body)


class _StreamingJobPool(JobPool):
    """moto's JobPool over an iterator of inputs: a job is made when a worker asks for one, so a file's items are
    read as the Map Run goes (memory does not grow with the file), and a worker is started with each job taken until
    there are `workers` of them. An error making a job (a malformed line) ends the pool as a failed child would."""

    def __init__(self, program: Any, inputs: Iterator[Any], workers: int, failure: Any) -> None:
        super().__init__(job_program=program, job_inputs=[])
        self._program, self._inputs, self._workers, self._failure = program, inputs, workers, failure
        self._made = self._started = 0
        self._exhausted = False
        self.start_worker: Any = None

    def start(self) -> None:
        with self._mutex:
            self._started = 1
        self.start_worker()

    def next_job(self) -> Job | None:
        with self._mutex:
            if self._worker_exception is not None or self._exhausted:
                return None
            try:
                job_input = next(self._inputs)
            except StopIteration:
                self._exhausted = True
                self._notify_on_termination()
                return None
            except Exception as error:  # noqa: BLE001 -- any error reading the items fails the Map Run
                self._worker_exception = self._failure(error)
                self._notify_on_termination()
                return None
            job = Job(job_index=self._made, job_program=self._program, job_input=job_input)
            self._made += 1
            if self._started < self._workers:
                self._started += 1
                self.start_worker()
            return job

    def _is_terminated(self) -> bool:
        return self._worker_exception is not None or (self._exhausted and len(self._closed_jobs) == self._made)

    def get_closed_jobs(self) -> list[JobClosed]:
        with self._mutex:
            closed = list(self._closed_jobs)
        return sorted(closed, key=lambda job: job.job_index)


def _run_map(component: DistributedIterationComponent, env: Environment, eval_input: Any, moto_map_run: Any) -> None:
    """The Map Run over a file of items or with an ItemBatcher (moto's `_map_run` otherwise): children get their
    items (or batches of them) in file order, started as the items are read."""
    spec = _spec_for(env, eval_input.state_name)
    if spec is None or (spec.batcher is None and not isinstance(env.stack[-1], _ItemFile)):
        return moto_map_run(component, env, eval_input)
    source = env.stack.pop()
    map_input = env.stack[-1] if env.stack else env.states.get_input()
    file = source if isinstance(source, _ItemFile) else None
    inputs: Iterator[Any] = file.items if file is not None else iter(source)
    run_input = eval_input
    frame = env.open_frame()
    try:
        if spec.batcher is not None:
            inputs = _batches(env, frame, spec.batcher, eval_input, map_input, inputs)
            run_input = copy.copy(eval_input)  # the batch is the child's input: items were selected before batching
            run_input.item_selector = run_input.parameters = None

        def failure(error: Exception) -> Exception:
            if isinstance(error, item_files.ItemFileError) and file is not None:
                return _reader_failed(env, f"{file.where}: {error}")
            return error

        workers = eval_input.map_run_record.max_concurrency or DISTRIBUTED_MAP_MAX_CONCURRENCY
        pool = _StreamingJobPool(component._get_iteration_program(), inputs, workers, failure)
        pool.start_worker = lambda: component._launch_worker(env=env, eval_input=run_input, job_pool=pool)
        pool.start()
        pool.await_jobs()
        error = pool.get_worker_exception()
        if error is not None:
            raise error
        env.stack.append([job.job_output for job in pool.get_closed_jobs()])
    finally:
        env.delete_frame(frame)
        if file is not None:
            file.body.close()


def _batches(env: Environment, frame: Environment, batcher: ItemSelector, eval_input: Any, map_input: Any,
             items: Iterator[Any]) -> Iterator[dict[str, Any]]:
    """The children's inputs, {"BatchInput": ..., "Items": [...]}: the items in order, each through the Map's
    ItemSelector first (with $$.Map.Item of the item), at most MaxItemsPerBatch of them and at most
    MaxInputBytesPerBatch bytes of input (BatchInput included) to a batch."""
    frame.states.reset(input_value=map_input)
    frame.stack.append(map_input)
    batcher.eval(frame)
    fields = frame.stack.pop()

    def runtime_error(message: str) -> FailureEventException:
        return _failure(env, StatesErrorNameType.StatesRuntime, message, HistoryEventType.MapRunFailed)

    max_items, max_bytes = (_batch_limit(limit, fields[limit], runtime_error) if limit in fields else None
                            for limit in _BATCH_LIMITS)
    empty = {"BatchInput": fields["BatchInput"], "Items": []} if "BatchInput" in fields else {"Items": []}
    empty_size = _json_size(empty)
    selector = eval_input.item_selector or eval_input.parameters
    batch: list[Any] = []
    size = empty_size
    for index, item in enumerate(items):
        if selector is not None:
            frame.states.context_object.context_object_data["Map"] = {"Item": {"Index": index, "Value": item}}
            frame.states.reset(input_value=map_input)
            frame.stack.append(map_input)
            selector.eval(frame)
            item = frame.stack.pop()
        item_size = _json_size(item) if max_bytes else 0
        if batch and ((max_items and len(batch) >= max_items) or (max_bytes and size + 1 + item_size > max_bytes)):
            yield {**empty, "Items": batch}
            batch, size = [], empty_size
        added = item_size + (1 if batch else 0)  # a comma before every item but the first
        if max_bytes and size + added > max_bytes:
            raise runtime_error(f"Item {index} is {item_size:,} bytes: with the batch's other fields it is over "
                                f"ItemBatcher.MaxInputBytesPerBatch ({max_bytes:,} bytes) in a batch of its own.")
        batch.append(item)
        size += added
    if batch:
        yield {**empty, "Items": batch}


def _json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


_FIXES = (
    _fix_express_map_children, _fix_logging, _fix_jsonpath_cache, _fix_sync_poll_delay, _fix_jsonata,
    _fix_assign_string_literal,
    _fix_wait, _fix_wait_timestamp, _fix_callback_timeout, _fix_retry, _fix_event_timestamps, _fix_entered_time,
    _fix_execution_start, _fix_stop_date, _fix_execution_name, _fix_root_environment,
    _fix_sticky_error, _fix_history_events, _fix_payload_limit,
    _fix_service_normalisation, _fix_client_cache,
    _fix_tolerated_failure_jsonata, _fix_tolerance_declared, _fix_distributed_map_run, _fix_map_recursion,
    _fix_express_duration, _fix_gathered_result_limit, _fix_result_writer, _fix_file_item_readers,
)
