"""Faults on demand: chosen AWS calls fail the way AWS can make them fail, for tests of what survives them.

Every AWS call a run makes (a handler's client, the Step Functions interpreter's, the engine's own) passes through
moto's BotocoreStubber as botocore's `before-send.<service>.<Operation>` event. While an `inject` context is open,
that entry is wrapped: each call of the fault's service and operation that `where` accepts is counted, and the
calls numbered in `calls` (1-based, in the order they arrive) fail:

- before the service sees them (the default): AWS refused the request, so nothing of it was done, e.g. DynamoDB
  throttling (ProvisionedThroughputExceededException, 400) or Lambda's ServiceException (500) on an Invoke;
- or, with after=True, once the service has done them: the work is done (the email sent, the item written) and
  only the answer is lost, e.g. SES's InternalFailure (500) or a read timeout on a call that went through.

An error is answered as the JSON protocols (DynamoDB, SES v2, Lambda, SQS, Step Functions) answer one: the HTTP
status, `x-amzn-ErrorType` and a `__type`/`message` body, so botocore raises the ClientError it would on AWS (and
retries it first if its retry mode says so, as on AWS). timeout=True raises botocore's ReadTimeoutError instead,
as a socket that never answered does. A failed call is still counted in the meter's api_calls only when the
service saw it (after=True).

    with faults.inject("dynamodb", "UpdateItem", error="ProvisionedThroughputExceededException",
                       where=faults.table(sends_table), calls=range(1, 4)) as throttled:
        ...
    assert throttled.fired == [1, 2, 3]  # and throttled.hits: those calls (service, operation, URL, params)

The wrap is in place while at least one fault is open and removed with the last; faults may be nested, the first
open fault that takes a call fails it. A fault counts only calls made while the engine's mock is on.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions
import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse

_JSON_PROTOCOLS = {"json", "rest-json", "smithy-rpc-v2-cbor"}


@dataclass(frozen=True)
class Call:
    """One AWS call as the fault sees it: service (botocore's service id, as in event names), operation, URL and
    the request's JSON body (empty if it has none or is not JSON)."""

    service: str
    operation: str
    url: str
    params: dict[str, Any]


@dataclass
class Fault:
    service: str
    operation: str
    error: str | None = None
    status: int = 400
    message: str = ""
    timeout: bool = False
    after: bool = False
    where: Callable[[Call], bool] | None = None
    calls: frozenset[int] | None = frozenset({1})  # None: every matching call
    seen: int = 0  # matching calls so far
    fired: list[int] = field(default_factory=list)  # the numbers of those that failed
    hits: list[Call] = field(default_factory=list)  # and the calls themselves
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def takes(self, call: Call) -> bool:
        """Count the call if it matches; True if it is one to fail."""
        if call.service != self.service or call.operation != self.operation:
            return False
        if self.where is not None and not self.where(call):
            return False
        with self._lock:
            self.seen += 1
            if self.calls is not None and self.seen not in self.calls:
                return False
            self.fired.append(self.seen)
            self.hits.append(call)
            return True

    def answer(self, request: Any) -> AWSResponse:
        if self.timeout:
            raise ReadTimeoutError(endpoint_url=request.url)
        body = json.dumps({"__type": self.error, "message": self.message or f"{self.error} (injected fault)"})
        headers = {"x-amzn-ErrorType": str(self.error), "Content-Type": "application/x-amz-json-1.0",
                   "x-amzn-RequestId": "injected-fault"}
        return AWSResponse(request.url, self.status, headers, MockRawResponse(body))


_lock = threading.Lock()
_active: list[Fault] = []
_wrapped: Callable[..., Any] | None = None  # BotocoreStubber.__call__ as it was before the first fault opened


def _params(request: Any) -> dict[str, Any]:
    body = getattr(request, "body", None)
    if isinstance(body, bytes | bytearray):
        body = body.decode(errors="replace")
    if not isinstance(body, str) or not body.strip().startswith("{"):
        return {}
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _faulting_call(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
    original = _wrapped
    assert original is not None
    with _lock:
        faults = list(_active)
    if not self.enabled or not faults:
        return original(self, event_name, request, **kwargs)
    _, _, rest = event_name.partition(".")
    service, _, operation = rest.partition(".")
    call = Call(service, operation, str(getattr(request, "url", "")), _params(request))
    fault = next((f for f in faults if f.takes(call)), None)
    if fault is None:
        return original(self, event_name, request, **kwargs)
    if fault.after:
        original(self, event_name, request, **kwargs)  # the service does the work; its answer is lost
    return fault.answer(request)


_SERVICE_NAMES = {"sfn": "stepfunctions", "cloudwatch-events": "events", "eventbridge": "events"}


@functools.cache
def _protocol(service: str) -> str | None:
    """The protocol of the service whose id botocore spells `service` in event names (None: no such service)."""
    session = botocore.session.get_session()
    try:
        model = session.get_service_model(_SERVICE_NAMES.get(service, service))
    except botocore.exceptions.UnknownServiceError:
        return None
    return model.protocol if model.service_id.hyphenize() == service else None


@contextlib.contextmanager
def inject(service: str, operation: str, *, error: str | None = None, status: int = 400, message: str = "",
           timeout: bool = False, after: bool = False, where: Callable[[Call], bool] | None = None,
           calls: int | Iterable[int] | None = 1) -> Iterator[Fault]:
    """Fail the `calls`-th matching calls (an int, several, or None for all) of `service` (botocore's service id:
    "dynamodb", "sesv2", "lambda", "sqs", "sfn") `operation` ("UpdateItem") with `error` and `status`, or with
    a read timeout (timeout=True); after=True lets the service do the call first. Yields the Fault: `seen`, `fired`
    and `hits` tell what happened."""
    if (error is None) == (not timeout):
        raise ValueError("inject: give an error code or timeout=True (one of them)")
    protocol = _protocol(service)
    if protocol is None:
        raise ValueError(f"inject: {service!r} is not a botocore service id (e.g. 'dynamodb', 'sesv2', 'lambda')")
    if error is not None and protocol not in _JSON_PROTOCOLS:
        raise ValueError(f"inject: {service} speaks {protocol}; only JSON protocols' errors are made here")
    chosen = None if calls is None else frozenset([calls] if isinstance(calls, int) else calls)
    fault = Fault(service, operation, error, status, message, timeout, after, where, chosen)
    _open(fault)
    try:
        yield fault
    finally:
        _close(fault)


def _open(fault: Fault) -> None:
    global _wrapped
    with _lock:
        if BotocoreStubber.__call__ is not _faulting_call:
            _wrapped = BotocoreStubber.__call__
            BotocoreStubber.__call__ = _faulting_call
        _active.append(fault)


def _close(fault: Fault) -> None:
    global _wrapped
    with _lock:
        _active.remove(fault)
        if not _active and BotocoreStubber.__call__ is _faulting_call:
            BotocoreStubber.__call__ = _wrapped
            _wrapped = None


# --------------------------------------------------------------------------- the usual faults


def table(name: str) -> Callable[[Call], bool]:
    """`where` for DynamoDB calls on one table (TableName, or any table of a batch or transaction)."""

    def on_table(call: Call) -> bool:
        params = call.params
        if params.get("TableName") == name or name in (params.get("RequestItems") or {}):
            return True
        return any(name == spec.get("TableName") for entry in params.get("TransactItems") or []
                   for spec in entry.values() if isinstance(spec, dict))

    return on_table


def function(name: str) -> Callable[[Call], bool]:
    """`where` for Lambda Invoke calls of one function, named by its name or its ARN (with or without qualifier)."""

    def of_function(call: Call) -> bool:
        path = urllib.parse.unquote(urllib.parse.urlsplit(call.url).path)
        _, _, rest = path.partition("/functions/")
        named = rest.split("/", 1)[0]
        return named.rpartition(":function:")[2].split(":", 1)[0] == name

    return of_function


def dynamodb_throttled(table_name: str, operation: str = "UpdateItem", calls: int | Iterable[int] | None = 1):
    """DynamoDB refusing the table's requests for throughput: nothing written (botocore retries it)."""
    return inject("dynamodb", operation, error="ProvisionedThroughputExceededException", status=400,
                  message="The level of configured provisioned throughput for the table was exceeded.",
                  where=table(table_name), calls=calls)


def ses_internal_failure(calls: int | Iterable[int] | None = 1, *, after: bool = True):
    """SES answering SendBulkEmail with InternalFailure (500); after=True: the emails went out all the same."""
    return inject("sesv2", "SendBulkEmail", error="InternalFailure", status=500,
                  message="The request processing has failed because of an unknown error.", after=after,
                  calls=calls)


def ses_timeout(calls: int | Iterable[int] | None = 1, *, after: bool = True):
    """SendBulkEmail's answer never arriving (a read timeout); after=True: SES did send."""
    return inject("sesv2", "SendBulkEmail", timeout=True, after=after, calls=calls)


def lambda_service_exception(function_name: str, calls: int | Iterable[int] | None = 1, *, after: bool = False):
    """Lambda's Invoke answering ServiceException (500): Step Functions sees Lambda.ServiceException. after=True:
    the function ran to its end first and only its answer was lost."""
    return inject("lambda", "Invoke", error="ServiceException", status=500,
                  message="Lambda encountered an internal error.", where=function(function_name), after=after,
                  calls=calls)
