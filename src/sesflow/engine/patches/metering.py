"""Count what a run would be billed for, where moto does the work.

- Every AWS API call a run makes (handlers, the interpreter, the engine), by service and operation: all of
  them pass through moto's BotocoreStubber as botocore `before-send.<service>.<Operation>` events. The call
  being answered is also kept per thread, so work moto does inside it (SNS delivering to SQS) is attributed.
- DynamoDB request units, where moto answers DynamoDB calls (patches/capacity.py, installed here).
- SQS requests as SQS bills them: every action is a request, and SendMessage(Batch) and ReceiveMessage count
  one request per 64 KiB chunk of the messages' bodies and attributes (an empty receive is one). Deliveries
  by SNS and EventBridge are SendMessage requests on the queue too ("SendMessage (from SNS)").
- SNS Publish and PublishBatch requests (per 64 KiB chunk of messages and attributes), and each delivery to
  a subscription whose filter policy lets the message through, by protocol.
- EventBridge events put on a bus, by bus and source, per 64 KiB chunk of the entry as PutEvents sizes it.
- Express execution duration: each EXPRESS child of a Distributed Map (and each top-level EXPRESS execution)
  is timed from start to end in real time, plus the virtual seconds slept on the engine's clock (Retry
  backoffs, Waits, a Lambda pacing itself), which real time misses, by the threads working for it: the
  interpreter's threads are started through a Thread that hands the execution's VirtualSleepSink down.
  The engine's real time is only a proxy for AWS's: moto in-process is slower than AWS per call, and the
  children share one interpreter (and its GIL).
"""

from __future__ import annotations

import inspect
import json
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC
from functools import wraps
from typing import Any

from moto.core.botocore_stubber import BotocoreStubber
from moto.events.models import EventsBackend
from moto.sns.models import SNSBackend, Subscription
from moto.sqs.models import SQSBackend
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (  # noqa: E501
    DistributedItemProcessorWorker,
)
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from sesflow.engine import metering, runtime
from sesflow.engine.clock import VirtualClock
from sesflow.engine.patches import MotoDriftError, capacity, lambda_bridge

_original_call = BotocoreStubber.__dict__.get("__call__")
_WRAPPED = "_sesflow_metering"
_local = threading.local()

# SQS actions metered where moto's SQS backend does them (so that deliveries by SNS and EventBridge count too);
# every other SQS action is counted as one request when its API call arrives.
_SQS_BACKEND_ACTIONS = {
    "send_message": "SendMessage", "send_message_batch": "SendMessageBatch", "receive_message": "ReceiveMessage",
    "delete_message": "DeleteMessage", "delete_message_batch": "DeleteMessageBatch",
    "change_message_visibility": "ChangeMessageVisibility",
    "change_message_visibility_batch": "ChangeMessageVisibilityBatch",
}
_SQS_BACKEND_OPERATIONS = set(_SQS_BACKEND_ACTIONS.values())
_DELIVERED_BY = {"sns": "SNS", "eventbridge": "EventBridge", "events": "EventBridge"}  # botocore service ids


# --------------------------------------------------------------------------- API calls


def _calls() -> list[tuple[str, str]]:
    stack = getattr(_local, "calls", None)
    if stack is None:
        stack = _local.calls = []
    return stack


def _current_call() -> tuple[str, str] | None:
    stack = _calls()
    return stack[-1] if stack else None


def _queue_of(request: Any) -> str:
    try:
        body = json.loads(request.body or b"{}")
    except (TypeError, ValueError, AttributeError):
        return ""
    return str(body.get("QueueUrl") or body.get("QueueName") or "").rstrip("/").rpartition("/")[2]


def _counting_call(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
    if not self.enabled:
        return _original_call(self, event_name, request, **kwargs)
    lambda_bridge.stop_if_timed_out()  # a Lambda past its Timeout makes no more calls
    _, _, rest = event_name.partition(".")
    service, _, operation = rest.partition(".")
    meter = runtime.current().meter
    meter.count_api_call(service, operation)
    if service == "sqs" and operation not in _SQS_BACKEND_OPERATIONS:
        meter.count_sqs_request(_queue_of(request), operation)
    stack = _calls()
    stack.append((service, operation))
    try:
        return _original_call(self, event_name, request, **kwargs)
    finally:
        stack.pop()


# --------------------------------------------------------------------------- payload sizes


def _attributes_size(attributes: Mapping[str, Any] | None) -> int:
    """Message attributes count towards the payload: name, data type and value."""
    size = 0
    for name, value in (attributes or {}).items():
        size += len(str(name).encode())
        if isinstance(value, Mapping):
            for key, part in value.items():
                if key in ("DataType", "data_type", "Type", "StringValue", "string_value", "BinaryValue",
                           "binary_value", "Value"):
                    size += len(part if isinstance(part, bytes | bytearray) else str(part).encode())
        else:
            size += len(str(value).encode())
    return size


def _message_size(body: Any, attributes: Mapping[str, Any] | None = None) -> int:
    text = body if isinstance(body, bytes | bytearray) else str(body or "").encode()
    return len(text) + _attributes_size(attributes)


def _event_entry_size(entry: Mapping[str, Any]) -> int:
    """PutEvents entry size as EventBridge computes it: Time 14 bytes, then Source, DetailType, Detail and
    each Resources entry in UTF-8 (eventbridge userguide: calculating PutEvents event entry size)."""
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(key) or "").encode())
    return size + sum(len(str(r).encode()) for r in entry.get("Resources") or [])


# --------------------------------------------------------------------------- SQS, SNS, EventBridge


def _outermost(key: str, body: Callable[[], Any]) -> tuple[bool, Any]:
    """Run body; True if no other metered call of the same kind encloses it on this thread (batch -> single)."""
    depth = getattr(_local, key, 0)
    setattr(_local, key, depth + 1)
    try:
        return depth == 0, body()
    finally:
        setattr(_local, key, depth)


def _sqs_operation(action: str) -> str:
    operation = _SQS_BACKEND_ACTIONS[action]
    call = _current_call()
    if call is not None and call[0] in _DELIVERED_BY:
        return f"{operation} (from {_DELIVERED_BY[call[0]]})"
    return operation


def _sqs_payload(action: str, args: Mapping[str, Any], result: Any) -> int:
    if action == "send_message":
        return _message_size(args.get("message_body"), args.get("message_attributes"))
    if action == "send_message_batch":
        return sum(_message_size(e.get("MessageBody"), e.get("MessageAttributes"))
                   for e in (args.get("entries") or {}).values())
    if action == "receive_message":
        return sum(_message_size(m.body, m.message_attributes) for m in result or [])
    return 0


def _metered_sqs(action: str, original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @wraps(original)
    def wrapper(self: SQSBackend, *args: Any, **kwargs: Any) -> Any:
        outermost, result = _outermost("sqs_depth", lambda: original(self, *args, **kwargs))
        if outermost:
            try:
                bound = signature.bind(self, *args, **kwargs).arguments
            except TypeError:  # moto called it in a way its own signature does not describe: count it anyway
                bound = {}
            queue = str(bound.get("queue_name") or "")
            runtime.current().meter.count_sqs_request(queue, _sqs_operation(action),
                                                      _sqs_payload(action, bound, result))
        return result

    setattr(wrapper, _WRAPPED, True)
    return wrapper


def _topic_name(arn: Any) -> str:
    return str(arn or "").rpartition(":")[2]


def _metered_publish(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def publish(self: SNSBackend, message: str, arn: str | None, *args: Any, **kwargs: Any) -> Any:
        outermost, result = _outermost("sns_depth", lambda: original(self, message, arn, *args, **kwargs))
        if outermost:
            subject = kwargs.get("subject") or ""
            size = _message_size(message, kwargs.get("message_attributes")) + len(str(subject).encode())
            runtime.current().meter.count_sns_publish(_topic_name(arn or kwargs.get("phone_number")), size)
        return result

    setattr(publish, _WRAPPED, True)
    return publish


def _metered_publish_batch(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def publish_batch(self: SNSBackend, topic_arn: str, publish_batch_request_entries: list, *a: Any, **k: Any):
        _, result = _outermost("sns_depth", lambda: original(self, topic_arn, publish_batch_request_entries, *a, **k))
        size = sum(_message_size(e.get("Message"), e.get("MessageAttributes")) + len(str(e.get("Subject") or ""))
                   for e in publish_batch_request_entries)
        runtime.current().meter.count_sns_publish(_topic_name(topic_arn), size)
        return result

    setattr(publish_batch, _WRAPPED, True)
    return publish_batch


def _metered_delivery(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def publish(self: Subscription, message: str, message_id: str, *args: Any, **kwargs: Any) -> Any:
        matcher = self._filter_policy_matcher
        if matcher is None or matcher.matches(kwargs.get("message_attributes"), message):
            runtime.current().meter.count_sns_delivery(getattr(self.topic, "name", ""), str(self.protocol))
        return original(self, message, message_id, *args, **kwargs)

    setattr(publish, _WRAPPED, True)
    return publish


def _bus_name(value: Any) -> str:
    name = str(value or "default")
    return name.rpartition("event-bus/")[2] if "event-bus/" in name else name


def _metered_put_events(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def put_events(self: EventsBackend, events: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
        entries = original(self, events, *args, **kwargs)
        meter = runtime.current().meter
        for event, entry in zip(events, entries, strict=False):
            if "EventId" in (entry or {}):
                meter.count_eventbridge_event(_bus_name(event.get("EventBusName")), str(event.get("Source")),
                                              _event_entry_size(event))
        return entries

    setattr(put_events, _WRAPPED, True)
    return put_events


# --------------------------------------------------------------------------- Express duration


def _timed(original: Callable[..., Any], history_of: Callable[..., Any]) -> Callable[..., Any]:
    """Time a call that runs one execution; count its duration if sfn.py marked that execution EXPRESS."""

    @wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        sink = metering.VirtualSleepSink()
        previous = metering.set_sink(sink)
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            metering.set_sink(previous)
            history = history_of(self, *args, **kwargs)
            if history is not None and getattr(history, "kind", "") == "EXPRESS":
                ms = (time.perf_counter() - started + sink.seconds) * 1000
                runtime.current().meter.count_express_duration(history.name, ms)

    setattr(wrapper, _WRAPPED, True)
    return wrapper


def _child_history(worker: Any, env: Any = None, job: Any = None, **kwargs: Any) -> Any:
    env = env if env is not None else kwargs.get("env")
    return getattr(getattr(env, "event_manager", None), "_sesflow_history", None)


def _execution_history(worker: ExecutionWorker, *args: Any, **kwargs: Any) -> Any:
    return getattr(getattr(getattr(worker, "env", None), "event_manager", None), "_sesflow_history", None)


class _InheritingThread(threading.Thread):
    """A thread the interpreter starts for an execution (its program, a state with a timeout, a Map or
    Parallel worker) sends its virtual sleeps where the thread that started it sends them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sesflow_sink = metering.current_sink()

    def run(self) -> None:
        metering.set_sink(self._sesflow_sink)
        super().run()


class _Threading:
    """The `threading` module as the interpreter's modules see it, with Thread handing down the sink."""

    Thread = _InheritingThread

    def __getattr__(self, name: str) -> Any:
        return getattr(threading, name)


_THREAD_STARTERS = {  # interpreter module -> the name it starts threads through
    "moto.stepfunctions.parser.asl.component.program.program": "threading",
    "moto.stepfunctions.parser.asl.component.state.exec.execute_state": "Thread",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.inline_iteration_component": "threading",
    "moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branch_worker": "threading",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback": "threading",
}


def _hand_down_sinks() -> None:
    import importlib

    for module_name, name in _THREAD_STARTERS.items():
        module = importlib.import_module(module_name)
        current = getattr(module, name, None)
        if name == "threading" and (current is threading or isinstance(current, _Threading)):
            module.threading = _Threading()
        elif name == "Thread" and current in (threading.Thread, _InheritingThread):
            module.Thread = _InheritingThread
        else:
            raise MotoDriftError(f"{module_name}.{name}: no longer the threading module or Thread")


# --------------------------------------------------------------------------- virtual sleeps


def _noting_sleep(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def sleep(self: VirtualClock, seconds: float, *args: Any, **kwargs: Any) -> None:
        metering.note_virtual_sleep(seconds)
        return original(self, seconds, *args, **kwargs)

    setattr(sleep, _WRAPPED, True)
    return sleep


def _noting_sleep_until(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def sleep_until(self: VirtualClock, when: Any, *args: Any, **kwargs: Any) -> None:
        moment = when if when.tzinfo else when.replace(tzinfo=UTC)
        metering.note_virtual_sleep((moment - self.now()).total_seconds())
        return original(self, when, *args, **kwargs)

    setattr(sleep_until, _WRAPPED, True)
    return sleep_until


# --------------------------------------------------------------------------- install


def _wrap(owner: Any, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    current = getattr(owner, name, None)
    if not callable(current):
        raise MotoDriftError(f"{owner.__module__}.{owner.__name__}.{name}: missing; metering wraps it")
    if not getattr(current, _WRAPPED, False):
        setattr(owner, name, make(current))


def install() -> None:
    if _original_call is None or not hasattr(BotocoreStubber(), "enabled"):
        raise MotoDriftError("moto.core.botocore_stubber.BotocoreStubber.__call__: no longer as expected")
    if getattr(BotocoreStubber.__call__, "__name__", "") != "_counting_call":
        BotocoreStubber.__call__ = _counting_call
    capacity.install()
    for action in _SQS_BACKEND_ACTIONS:
        _wrap(SQSBackend, action, lambda original, action=action: _metered_sqs(action, original))
    _wrap(SNSBackend, "publish", _metered_publish)
    _wrap(SNSBackend, "publish_batch", _metered_publish_batch)
    if "_filter_policy_matcher" not in inspect.getsource(Subscription.__init__):
        raise MotoDriftError("moto.sns.models.Subscription._filter_policy_matcher: missing; metering reads it")
    _wrap(Subscription, "publish", _metered_delivery)
    _wrap(EventsBackend, "put_events", _metered_put_events)
    _wrap(DistributedItemProcessorWorker, "_eval_job", lambda original: _timed(original, _child_history))
    _wrap(ExecutionWorker, "_execution_logic", lambda original: _timed(original, _execution_history))
    _hand_down_sinks()
    _wrap(VirtualClock, "sleep", _noting_sleep)
    _wrap(VirtualClock, "sleep_until", _noting_sleep_until)
