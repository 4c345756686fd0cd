"""The embedded engine served on loopback, so other processes (the operator CLI, the AWS CLI, any SDK) act on
one running local stack with AWS_ENDPOINT_URL=http://127.0.0.1:PORT.

    with LocalStack().up() as stack, EngineServer(stack, port=0) as server:
        print(server.endpoint_url)   # and .sesflow/local.json says so to `sesflow` commands

Requests are answered by the very dispatcher the engine's in-process boto3 calls go through (moto's
botocore_stubber), not by moto's Flask server: same backends, same patches (simulated SES, Lambda bridge,
Step Functions fixes), and no Flask dependency. An execution started over HTTP runs in this process like
any other. A pump thread does what Lambda's SQS poller does on AWS: it runs the queue triggers
(LocalStack.deliver_queues) for as long as the server runs, after SES's deferred event publishing.

CloudFormation's DescribeStacks is answered by the server itself for the stack it serves (the engine deploys
template.yaml without moto's CloudFormation): its outputs and parameters, so a client finds the stack's
resources exactly as it does on AWS (`aws cloudformation describe-stacks --stack-name sesflow-local`,
sesflow.target). Other CloudFormation actions are refused (InvalidAction): moto's CloudFormation knows no stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import threading
import traceback
import urllib.parse
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from botocore.awsrequest import AWSPreparedRequest, HTTPHeaders
from moto.core.models import botocore_stubber
from moto.sqs.models import sqs_backends

from sesflow.engine import ses
from sesflow.engine.patches import MotoDriftError
from sesflow.engine.stack import LocalStack
from sesflow.engine.template import ACCOUNT_ID
from sesflow.target import DEFAULT_STATE_FILE, STATUS_PATH, EngineState

DEFAULT_PORT = 4599
HOST = "127.0.0.1"  # loopback only: the engine has no authentication
# SigV4 signing name -> endpoint prefix, where they differ (SES v1 and v2 both sign as "ses").
_ENDPOINT_PREFIX = {"ses": "email"}
_CREDENTIAL = re.compile(r"Credential=[^/,\s]*/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html (Query API, XML)
_CFN_NAMESPACE = "http://cloudformation.amazonaws.com/doc/2010-05-15/"


class ServerError(RuntimeError):
    """The engine cannot serve (already running, port taken); the message is for the operator."""


def running_engine(state_file: Path) -> EngineState | None:
    """The engine the state file points at, if it is still alive."""
    state = EngineState.read(state_file)
    return state if state is not None and state.alive() else None


def refuse_if_running(state_file: Path) -> None:
    state = running_engine(state_file)
    if state is not None:
        raise ServerError(f"a local engine is already running at {state.endpoint_url} (pid {state.pid}, "
                          f"state file {state_file}): use it, or stop it with `sesflow local down` (or Ctrl-C in "
                          f"its terminal)")


class EngineServer:
    """Serves an up LocalStack over HTTP and pumps its queue triggers until stop(); it does not own the stack."""

    def __init__(self, stack: LocalStack, port: int = DEFAULT_PORT, state_file: Path | None = DEFAULT_STATE_FILE,
                 pump_interval: float = 0.1):
        self.stack = stack
        self.port = port
        self.state_file = state_file
        self.pump_interval = pump_interval
        self.pump_errors = 0
        self.requests_served = 0  # AWS API requests answered over HTTP
        self._count_lock = threading.Lock()
        self._httpd: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._pump_idle = threading.Event()
        self.state: EngineState | None = None
        self.stack_id = ""  # what DescribeStacks calls the served stack, set by start()

    @property
    def endpoint_url(self) -> str:
        assert self._httpd is not None, "the server is not started"
        return f"http://{HOST}:{self._httpd.server_address[1]}"

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> EngineServer:
        if not hasattr(botocore_stubber, "process_request"):
            raise MotoDriftError("moto.core.models.botocore_stubber.process_request: no longer exists")
        if self.state_file is not None:
            refuse_if_running(self.state_file)
        try:
            self._httpd = _Server((HOST, self.port), _Handler)
        except OSError as error:
            other = EngineState(endpoint_url=f"http://{HOST}:{self.port}", region="", account="", stack_name="",
                                pid=0, outputs={}).status(timeout=0.5)
            if other is not None:  # started from another folder, so with another state file
                raise ServerError(f"a local engine is already running at {other['endpoint_url']} (pid {other['pid']}, "
                                  f"state file {other.get('state_file')}): use it, or stop it with Ctrl-C in its "
                                  f"terminal or `kill {other['pid']}`") from None
            raise ServerError(f"cannot listen on {HOST}:{self.port}: {error.strerror or error} (another program "
                              f"has the port? pass --port with another number, or --port 0 for any free one)") from None
        self._httpd.engine = self
        self.state = EngineState(
            endpoint_url=self.endpoint_url, region=self.stack.region, account=ACCOUNT_ID,
            stack_name=self.stack.stack_name, pid=os.getpid(),
            outputs={k: str(v) for k, v in self.stack.outputs.items()},
            parameters={k: ",".join(map(str, v)) if isinstance(v, list) else str(v)  # as describe_stacks shows them
                        for k, v in (self.stack.template.parameters if self.stack.template else {}).items()},
            template=str(Path(self.stack.template_path).resolve()),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self.stack_id = (f"arn:aws:cloudformation:{self.stack.region}:{ACCOUNT_ID}:stack/{self.stack.stack_name}/"
                         f"{uuid.uuid4()}")
        self._stopping.clear()
        self._threads = [
            threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                             name="sesflow-server", daemon=True),
            threading.Thread(target=self._pump, name="sesflow-queue-pump", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        if self.state_file is not None:
            self._write_state()
        return self

    def stop(self) -> None:
        """Stop answering, let the pump finish its round, and remove the state file. Idempotent."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        for thread in self._threads:
            thread.join()
        self._threads = []
        self._httpd = None
        if self.state_file is not None and self.state is not None:
            current = EngineState.read(self.state_file)
            if current is not None and current.pid == self.state.pid:  # never remove a newer engine's file
                with contextlib.suppress(FileNotFoundError):
                    self.state_file.unlink()

    def __enter__(self) -> EngineServer:
        return self if self._httpd is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_until_signalled(self) -> None:
        """Block until SIGINT (Ctrl-C) or SIGTERM; then the caller stops the server and brings the stack down."""
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not stop.wait(0.5):
                pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def wait_idle(self, timeout: float = 10) -> bool:
        """Wait until the pump has made a full round that delivered nothing (for tests and scripts)."""
        self._pump_idle.clear()
        return self._pump_idle.wait(timeout)

    def status(self) -> dict[str, Any]:
        assert self.state is not None
        return {**self.state.__dict__, "virtual_time": self.stack.clock.now().isoformat(timespec="milliseconds"),
                "pace": "virtual" if self.stack.clock.pace is None else self.stack.clock.pace,
                "queue_triggers": len(self.stack.triggers), "pump_errors": self.pump_errors,
                "requests_served": self.requests_served,
                "state_file": str(self.state_file.resolve()) if self.state_file is not None else None}

    # ---------------------------------------------------------------- internals
    def _write_state(self) -> None:
        assert self.state_file is not None and self.state is not None
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        partial = self.state_file.with_name(self.state_file.name + f".{os.getpid()}.tmp")
        partial.write_text(self.state.to_json(), encoding="utf-8")
        os.replace(partial, self.state_file)  # a reader never sees half a file

    def _pump(self) -> None:
        """Lambda's SQS poller: run every queue trigger until its queue is empty, again every pump_interval."""
        last_error = ""
        while not self._stopping.is_set():
            try:
                delivered = self.stack.deliver_queues() if self._queued() else 0
            except Exception as error:  # keep serving; a broken trigger must not take the engine down
                self.pump_errors += 1
                text = "".join(traceback.format_exception(error)[-3:])
                if text != last_error:  # once per distinct failure, not every 0.1 s
                    print(f"sesflow: queue pump: {text}", file=sys.stderr, flush=True)
                    last_error = text
                delivered = 0
                self._stopping.wait(1.0)
            if delivered == 0:
                self._pump_idle.set()
                self._stopping.wait(self.pump_interval)

    def _queued(self) -> bool:
        """A look at moto's trigger queues (microseconds, where a delivery round costs milliseconds), so an idle
        engine idles; when in doubt, say yes."""
        if self.stack.retries_due():  # failures whose visibility timeout is over (or is next, on virtual time)
            return True
        if getattr(ses.simulator().config.feedback, "pending", 0):  # SES events not yet published (deferred)
            return True
        try:
            queues = sqs_backends[ACCOUNT_ID][self.stack.region].queues
            return any(queues[t.queue_arn.rsplit(":", 1)[-1]].messages for t in self.stack.triggers)
        except Exception:  # moto changed its internals: fall back to a delivery round each time
            return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # an idle keep-alive connection never holds up shutdown
    allow_reuse_address = True
    engine: EngineServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up is not news
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """One AWS API request: rewritten to the AWS URL it stands for and answered by moto in this process."""

    protocol_version = "HTTP/1.1"  # keep-alive, as SDKs expect
    # Headers and body go out in two writes: with Nagle's algorithm the body waits for the client's delayed ACK
    # of the headers, 40 ms on Linux, which made every request over HTTP take 45 ms where moto answers in 1.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        if self.path == STATUS_PATH:
            self._reply(200, {"Content-Type": "application/json"}, json.dumps(self.server.engine.status()))
        else:
            self.do_POST()

    def do_POST(self) -> None:
        engine = self.server.engine
        with engine._count_lock:
            engine.requests_served += 1
        body = self._body()
        service, region = self._scope()
        if service == "cloudformation":
            if not self._describe_stacks(body):
                self._error(400, "InvalidAction", "the local engine answers CloudFormation's DescribeStacks for its "
                                                  "own stack only (it deploys template.yaml without CloudFormation)")
            return
        host = f"{_ENDPOINT_PREFIX.get(service, service)}.{region}.amazonaws.com"
        headers = HTTPHeaders()
        for key, value in self.headers.items():
            if key.lower() != "host":
                headers[key] = value
        headers["Host"] = host  # what moto's S3 reads the addressing style from
        request = AWSPreparedRequest(method=self.command, url=f"https://{host}{self.path}", headers=headers,
                                     body=body, stream_output=False)
        try:
            answer = botocore_stubber.process_request(request)
        except Exception as error:  # a moto or engine bug: the caller gets a 500, the console the traceback
            traceback.print_exc()
            self._error(500, "InternalFailure", f"the local engine failed on this request: {error}")
            return
        if answer is None:
            self._error(404, "UnknownService", f"the local engine does not run {service} (at {self.path})")
            return
        status, response_headers, response_body = answer
        self._reply(status, response_headers, response_body)

    do_PUT = do_DELETE = do_HEAD = do_PATCH = do_POST

    def _scope(self) -> tuple[str, str]:
        """Service and region from the SigV4 credential scope (header, or query string when presigned).

        Without one it is S3: the only API called unsigned or with SigV2 (presigned URLs, `AWS key:sig`)."""
        authorization = self.headers.get("Authorization", "")
        match = _CREDENTIAL.search(authorization) or _CREDENTIAL.search(
            "Credential=" + self._query_param("X-Amz-Credential"))
        if not match:
            return "s3", self.server.engine.stack.region
        region, service = match.groups()
        return service, region

    def _describe_stacks(self, body: bytes) -> bool:
        """Answer DescribeStacks for the served stack (by name or StackId; no name lists it) as CloudFormation
        does, a ValidationError for any other stack; False for every other action."""
        params = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        params.update(urllib.parse.parse_qs(body.decode("utf-8", "replace")))
        if (params.get("Action") or [""])[0] != "DescribeStacks":
            return False
        engine = self.server.engine
        state = engine.state
        assert state is not None
        asked = (params.get("StackName") or [""])[0]
        request_id = str(uuid.uuid4())
        if asked and asked not in (state.stack_name, engine.stack_id):
            # What CloudFormation answers (and sesflow.target recognises) for a stack that is not there.
            self._reply(400, {"Content-Type": "text/xml"}, (
                f'<ErrorResponse xmlns="{_CFN_NAMESPACE}"><Error><Type>Sender</Type><Code>ValidationError</Code>'
                f"<Message>Stack with id {escape(asked)} does not exist</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>"))
            return True

        def members(pairs: dict[str, str], key: str, value: str) -> str:
            return "".join(f"<member><{key}>{escape(k)}</{key}><{value}>{escape(str(v))}</{value}></member>"
                           for k, v in pairs.items())

        self._reply(200, {"Content-Type": "text/xml"}, (
            f'<DescribeStacksResponse xmlns="{_CFN_NAMESPACE}"><DescribeStacksResult><Stacks><member>'
            f"<StackName>{escape(state.stack_name)}</StackName><StackId>{escape(engine.stack_id)}</StackId>"
            f"<CreationTime>{escape(state.started_at)}</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus>"
            f"<DisableRollback>false</DisableRollback>"
            f"<Parameters>{members(state.parameters, 'ParameterKey', 'ParameterValue')}</Parameters>"
            f"<Outputs>{members(state.outputs, 'OutputKey', 'OutputValue')}</Outputs>"
            f"</member></Stacks></DescribeStacksResult>"
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></DescribeStacksResponse>"))
        return True

    def _query_param(self, name: str) -> str:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        return (query.get(name) or [""])[0]

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, headers: dict[str, Any], body: str | bytes | None) -> None:
        payload = body.encode() if isinstance(body, str) else (body or b"")
        self.send_response(int(status))
        for key, value in (headers or {}).items():
            if key.lower() not in _HOP_BY_HOP:
                self.send_header(key, str(value))
        if self.command == "HEAD":  # no body, but the length of the one a GET would get
            length = next((str(v) for k, v in (headers or {}).items() if k.lower() == "content-length"), "0")
            self.send_header("Content-Length", length)
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _error(self, status: int, code: str, message: str) -> None:
        """An error the engine itself gives, in the form the caller's SDK parses: XML for the Query protocol
        (form-encoded requests: SNS, STS, CloudFormation, SES v1) and S3, JSON for the others."""
        form = self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
        if form or self._scope()[0] == "s3":
            self._reply(status, {"Content-Type": "text/xml"}, (
                f"<ErrorResponse><Error><Type>{'Sender' if status < 500 else 'Receiver'}</Type>"
                f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
                f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"))
            return
        self._reply(status, {"Content-Type": "application/json", "x-amzn-ErrorType": code},
                    json.dumps({"__type": code, "message": message}))

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the console is for the engine's handlers and errors, not one line per API call."""

