"""The embedded engine: template.yaml deployed into moto in-process, state machines run on a virtual clock.

    with LocalStack().up() as stack:
        result = stack.run("CampaignStateMachine", {...})

What is created and what is skipped is listed in SKIPPED_TYPES and `_deploy_*`; anything else in the
template is refused with UnsupportedResourceError, so the local stack cannot silently drift from AWS.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import random
import re
import string
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from sesflow.engine import function_url, iam, runtime, ses
from sesflow.engine.clock import PacedClock, VirtualClock
from sesflow.engine.metering import Meter
from sesflow.engine.patches import install_all, lambda_bridge
from sesflow.engine.template import ACCOUNT_ID, Resource, Template, TemplateError, load_template

DEFAULT_TEMPLATE = Path("template.yaml")
# Resources AWS needs that change nothing the engine can observe. Skipped on purpose, listed in the README.
SKIPPED_TYPES = {
    "AWS::Logs::LogGroup": "logs are not kept; handlers log to the console",
    "AWS::CloudWatch::Alarm": "metrics are not evaluated locally",
    "AWS::CloudWatch::Dashboard": "metrics are not evaluated locally",
    # IAM: each function's and state machine's calls are checked at run time against the role SAM builds from
    # its Policies (engine/iam.py, patches/iam.py). Roles written as resources and resource-based policies are not.
    "AWS::IAM::Role": "not evaluated: the engine checks the roles SAM builds from Policies (engine/iam.py)",
    "AWS::IAM::Policy": "not evaluated: the engine checks the roles SAM builds from Policies (engine/iam.py)",
    "AWS::IAM::ManagedPolicy": "not evaluated: the engine checks the roles SAM builds from Policies (engine/iam.py)",
    "AWS::Lambda::Permission": "resource-based policies are not evaluated locally (identity-based ones are)",
    "AWS::SQS::QueuePolicy": "resource-based policies are not evaluated locally (identity-based ones are)",
    "AWS::SNS::TopicPolicy": "resource-based policies are not evaluated locally (identity-based ones are)",
}
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
_LAMBDA_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/sesflow-local-lambda"
_STATES_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/sesflow-local-states"


# Lambda's SQS poller: https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
SQS_START_CONCURRENT_BATCHES = 5
SQS_SCALE_PER_MINUTE = 300
SQS_MAX_CONCURRENT_BATCHES = 1000


class UnsupportedResourceError(TemplateError):
    """The template uses a resource type or property the engine cannot create faithfully."""


class ExecutionTimeoutError(TimeoutError):
    """An execution was still RUNNING when the caller stopped waiting."""


@dataclass
class QueueTrigger:
    """An SQS event source mapping, run by the engine with Lambda's batch and partial-failure rules."""

    function: str
    queue_url: str
    queue_arn: str
    batch_size: int
    report_item_failures: bool
    batching_window_s: int = 0  # Lambda waits up to this long to fill a batch; the engine takes what is queued
    visibility_timeout_s: int = 30  # the queue's: how long a failed message stays hidden before its retry
    maximum_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency: at most this many batches at once
    backlog_since: datetime | None = None  # virtual time the queue last went from empty to having messages
    max_concurrent_batches: int = 0  # the most batches it ran at once (for tests and reports)

    def concurrent_batches(self, now: datetime) -> int:
        """How many batches Lambda's poller runs at once now: it starts with five and, while messages remain, adds
        up to 300 a minute, up to 1,000 batches or the mapping's MaximumConcurrency
        (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html). The function's own concurrency
        caps it too (lambda_bridge throttles past it)."""
        minutes = (now - self.backlog_since).total_seconds() / 60 if self.backlog_since else 0.0
        scaled = min(SQS_MAX_CONCURRENT_BATCHES, SQS_START_CONCURRENT_BATCHES + int(SQS_SCALE_PER_MINUTE * minutes))
        return min(scaled, self.maximum_concurrency or scaled)


@dataclass
class ExecutionResult:
    arn: str
    status: str
    output: Any
    error: str | None
    cause: str | None
    history_events: int


@dataclass
class Deployed:
    logical_id: str
    type: str
    physical_id: str
    skipped: str | None = None


@dataclass
class LocalStack:
    """One stack from one template on moto, for as long as it is up (a context manager)."""

    template_path: Path = DEFAULT_TEMPLATE
    parameters: dict[str, Any] = field(default_factory=dict)
    stack_name: str = "sesflow-local"
    region: str = "us-east-1"
    ses_identities: tuple[str, ...] = ()
    start_time: datetime | None = None
    # None: virtual time (Waits and sleeps end at once and move the clock). A number: time passes, that many
    # times faster than real time (1.0: real time), and sleeps take their share of it (clock.PacedClock).
    pace: float | None = None
    # The share of EXPRESS Map children run twice, as AWS's at-least-once EXPRESS executions may (runtime.Runtime).
    express_redelivery: float = 0.0
    # The simulated SES account: a production account by default (a sandbox sends 200 a day).
    ses_account: dict[str, Any] = field(
        default_factory=lambda: {"max_send_rate": 14.0, "max_24h_send": 50_000, "production_access": True}
    )
    # Powertools reads these; locally we keep the console quiet unless asked (like `sam local --env-vars`).
    lambda_env_overrides: dict[str, str] = field(
        default_factory=lambda: {
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    )

    # The account's Lambda concurrency quota (1,000 by default): functions without ReservedConcurrentExecutions
    # share what reservations leave of it, and are throttled past it.
    lambda_account_concurrency: int = lambda_bridge.ACCOUNT_CONCURRENCY

    template: Template | None = field(default=None, init=False)
    deployed: list[Deployed] = field(default_factory=list, init=False)
    triggers: list[QueueTrigger] = field(default_factory=list, init=False)
    function_urls: dict[str, str] = field(default_factory=dict, init=False)  # scheme://host -> function name
    runtime: runtime.Runtime | None = field(default=None, init=False)
    _mock: Any = field(default=None, init=False, repr=False)
    # Failed SQS messages waiting out their visibility timeout: (virtual time due, queue URL, receipt handle).
    _retries: list[tuple[datetime, str, str]] = field(default_factory=list, init=False, repr=False)
    _retry_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _deliver_lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    # ---------------------------------------------------------------- lifecycle
    def up(self) -> LocalStack:
        started = time.perf_counter()
        self.template = load_template(
            self.template_path, stack_name=self.stack_name, region=self.region,
            parameter_overrides=self.parameters,
        )
        install_all()
        clock = VirtualClock(self.start_time) if self.pace is None else PacedClock(self.pace, self.start_time)
        self.runtime = runtime.activate(runtime.Runtime(clock=clock, meter=Meter(),
                                                        before_wait=self._deliver_before_wait,
                                                        express_redelivery=self.express_redelivery,
                                                        iam=iam.Roles.of(self.template)))
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._mock.start()
        lambda_bridge.unregister_all()
        lambda_bridge.set_account_concurrency(self.lambda_account_concurrency)
        ses.simulator().reset()
        ses.simulator().configure(**self.ses_account)
        try:
            self._deploy()
        except Exception:
            self.down()
            raise
        self.up_seconds = time.perf_counter() - started
        self.meter.reset()  # a run's figures start after deployment
        return self

    def down(self) -> None:
        if self.runtime is not None and isinstance(self.runtime.clock, PacedClock):
            self.runtime.clock.close()  # threads still sleeping end now, not later on a stack that is gone
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        self._clients.clear()
        lambda_bridge.unregister_all()
        runtime.deactivate()

    def __enter__(self) -> LocalStack:
        return self if self._mock is not None else self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    # ---------------------------------------------------------------- accessors
    @property
    def clock(self) -> VirtualClock:
        assert self.runtime is not None, "the stack is not up"
        return self.runtime.clock

    @property
    def meter(self) -> Meter:
        assert self.runtime is not None, "the stack is not up"
        return self.runtime.meter

    @property
    def outputs(self) -> dict[str, Any]:
        assert self.template is not None, "the stack is not up"
        return self.template.outputs

    def resource(self, logical_id: str) -> Resource:
        assert self.template is not None, "the stack is not up"
        try:
            return self.template.resources[logical_id]
        except KeyError:
            raise KeyError(f"{logical_id}: no such resource in {self.template_path}") from None

    def physical_id(self, logical_id: str) -> str:
        return self.resource(logical_id).physical_id

    def client(self, service: str) -> Any:
        """One client per service while the stack is up: building one costs milliseconds (the poller asked for
        one per delivery round, 4% of the demo's CPU), and boto3 clients are safe to share between threads.
        Its calls are the operator's: IAM does not check them, whichever thread makes them."""
        client = self._clients.get(service)
        if client is None:
            client = self._clients.setdefault(service, iam.operators(boto3.client(service, region_name=self.region)))
        return client

    # ---------------------------------------------------------------- executions
    def start(self, state_machine: str, payload: Any = None, name: str | None = None) -> str:
        """Start an execution of the state machine with this logical id; returns its ARN."""
        args = {"stateMachineArn": self.physical_id(state_machine), "input": json.dumps(payload or {})}
        if name:
            args["name"] = name
        return self.client("stepfunctions").start_execution(**args)["executionArn"]

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """Every event of an execution's history, oldest first, page by page."""
        sfn, events, token = self.client("stepfunctions"), [], None
        while True:
            page = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000,
                                             **({"nextToken": token} if token else {}))
            events += page["events"]
            token = page.get("nextToken")
            if not token:
                return events

    def wait(self, execution_arn: str, timeout: float = 300, poll: float = 0.01) -> ExecutionResult:
        """Block until the execution ends. A long run polls less often (poll=0.2): each poll takes the CPU
        the execution's threads need."""
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                break
            if time.monotonic() > deadline:
                raise ExecutionTimeoutError(f"{execution_arn}: still RUNNING after {timeout:.0f} s (real time)")
            time.sleep(poll)
        history = sfn.get_execution_history(executionArn=execution_arn)["events"]
        output = described.get("output")
        return ExecutionResult(
            arn=execution_arn,
            status=described["status"],
            output=json.loads(output) if output else None,
            error=described.get("error"),
            cause=described.get("cause"),
            history_events=len(history),
        )

    def run(self, state_machine: str, payload: Any = None, name: str | None = None,
            timeout: float = 300, poll: float = 0.01) -> ExecutionResult:
        return self.wait(self.start(state_machine, payload, name), timeout, poll)

    # ---------------------------------------------------------------- queue triggers
    def deliver_queues(self, max_rounds: int = 1000) -> int:
        """Run every SQS trigger until its queue is empty, as Lambda's poller would; returns batches run.

        A batch is up to BatchSize messages, gathered 10 per ReceiveMessage call until the batch is full or
        the queue has nothing more to give (the batching window, spent waiting on AWS, costs nothing here).
        A failed batch (or the failed items of a partial-batch response) stays hidden for the queue's
        VisibilityTimeout on the virtual clock, as on AWS: when nothing else is due, the clock moves to the
        next retry. moto moves a message to the dead-letter queue when its receive count passes
        maxReceiveCount.
        """
        with self._deliver_lock:  # one poller at a time (a test's pump and a Wait's catch-up may overlap)
            # SES publishes a message's events after accepting it: a deferred feedback model's queue goes out
            # first, so the poller sees them without the sending Lambda having paid for the publishing.
            model = ses.simulator().config.feedback
            if model is not None and getattr(model, "deferred", False):
                model.flush()
            return self._deliver_queues(max_rounds)

    @contextlib.contextmanager
    def poller(self, interval: float = 0.05) -> Iterator[None]:
        """Lambda's SQS poller beside a run: deliver_queues every `interval` wall seconds in a thread (so feedback
        is ingested while a campaign sends, as on AWS), and once more on the way out."""
        done = threading.Event()

        def poll() -> None:
            while not done.wait(interval):
                self.deliver_queues()

        thread = threading.Thread(target=poll, name="sqs-poller", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            self.deliver_queues()

    def _deliver_queues(self, max_rounds: int) -> int:
        """Each round takes, per trigger, as many batches as its poller runs at once (trigger.concurrent_batches),
        and runs them at the same time, one thread each; the next round starts when they are all done."""
        sqs = self.client("sqs")
        batches = 0
        for _ in range(max_rounds):
            progressed = False
            for trigger in self.triggers:
                received = []
                for _ in range(trigger.concurrent_batches(self.clock.now())):
                    batch = self._receive_batch(sqs, trigger)
                    if not batch:
                        break
                    received.append(batch)
                if not received:
                    trigger.backlog_since = None
                    continue
                if trigger.backlog_since is None:
                    trigger.backlog_since = self.clock.now()
                progressed, batches = True, batches + len(received)
                trigger.max_concurrent_batches = max(trigger.max_concurrent_batches, len(received))
                self._run_batches(sqs, trigger, received)
            if not progressed and not self._release_next_retries(sqs):
                break
        return batches

    def _run_batches(self, sqs: Any, trigger: QueueTrigger, batches: list[list[dict[str, Any]]]) -> None:
        if len(batches) == 1:
            self._run_trigger(sqs, trigger, batches[0])
            return
        errors: list[BaseException] = []

        def run(batch: list[dict[str, Any]]) -> None:
            try:
                self._run_trigger(sqs, trigger, batch)
            except BaseException as error:  # re-raised in the poller's thread below
                errors.append(error)

        threads = [threading.Thread(target=run, args=(batch,), name=f"sqs-batch-{i}", daemon=True)
                   for i, batch in enumerate(batches)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def _deliver_before_wait(self) -> None:
        if self._mock is not None and self.triggers:
            self.deliver_queues()

    def _release_next_retries(self, sqs: Any) -> bool:
        """Move the virtual clock to the earliest hidden failure and make everything due visible again. On a
        paced clock time passes by itself: only the failures already due come back (the poller looks again)."""
        with self._retry_lock:
            if not self._retries:
                return False
            due = min(at for at, _, _ in self._retries)
            if self.clock.pace is not None:
                if due > self.clock.now():
                    return False
            else:
                self.clock.sleep_until(due, reason="SQS visibility timeout")
            ready = [r for r in self._retries if r[0] <= due]
            self._retries = [r for r in self._retries if r[0] > due]
        for _, queue_url, receipt in ready:
            sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=0)
        return True

    @staticmethod
    def _receive_batch(sqs: Any, trigger: QueueTrigger) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        while len(batch) < trigger.batch_size:
            received = sqs.receive_message(
                QueueUrl=trigger.queue_url, MaxNumberOfMessages=min(trigger.batch_size - len(batch), 10),
                # Hidden in real time until delivered or released: the engine times retries on the virtual clock.
                AttributeNames=["All"], MessageAttributeNames=["All"], VisibilityTimeout=43_200,
            ).get("Messages", [])
            if not received:
                break
            batch.extend(received)
        return batch

    def _run_trigger(self, sqs: Any, trigger: QueueTrigger, messages: list[dict[str, Any]]) -> None:
        spec = lambda_bridge.function(trigger.function)
        event = {"Records": [_sqs_record(m, trigger.queue_arn, self.region) for m in messages]}
        try:
            payload, errored, _ = lambda_bridge.invoke_in_process(spec, event, self._function_arn(trigger.function))
        except lambda_bridge.FunctionThrottledError:  # the batch goes back to the queue, as for a failed one
            payload, errored = "", True
        failed_ids: set[str] = {m["MessageId"] for m in messages}
        if not errored:
            failed_ids = set()
            if trigger.report_item_failures:
                response = json.loads(payload) if payload else None
                failures = (response or {}).get("batchItemFailures") or [] if isinstance(response, dict) else []
                failed_ids = {f.get("itemIdentifier") for f in failures if isinstance(f, dict)}
                if not failed_ids <= {m["MessageId"] for m in messages}:  # AWS: a bad id fails the batch
                    failed_ids = {m["MessageId"] for m in messages}
        retry_at = self.clock.now() + timedelta(seconds=trigger.visibility_timeout_s)
        done = []
        for message in messages:
            if message["MessageId"] in failed_ids:
                with self._retry_lock:
                    self._retries.append((retry_at, trigger.queue_url, message["ReceiptHandle"]))
            else:
                done.append(message)
        for start in range(0, len(done), 10):  # Lambda's poller deletes in batches of 10, as billed
            sqs.delete_message_batch(QueueUrl=trigger.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])])

    def retries_due(self) -> bool:
        """Failed messages waiting to come back that may come back now: any, on the virtual clock (the poller moves
        it to them); those whose visibility timeout is over, on a paced one."""
        with self._retry_lock:
            if self.clock.pace is None:
                return bool(self._retries)
            now = self.clock.now()
            return any(at <= now for at, _, _ in self._retries)

    def _queue_visibility(self, queue_name: str) -> int:
        assert self.template is not None
        for queue in self.template.of_type("AWS::SQS::Queue"):
            if queue.attributes["QueueName"] == queue_name:
                return int(queue.properties.get("VisibilityTimeout", 30))
        return 30

    # ---------------------------------------------------------------- function URLs
    def request(self, url: str, method: str = "GET", body: str | bytes | None = None,
                headers: dict[str, str] | None = None) -> dict[str, Any]:
        """An HTTP request to one of the stack's function URLs, answered as Lambda answers it: the function gets
        the payload format 2.0 event; returns {"statusCode", "headers", "body"}."""
        name = self.function_urls.get(function_url.base(url))
        if name is None:
            raise KeyError(f"{url}: not a function URL of this stack (it has {sorted(self.function_urls)})")
        event = function_url.request_event(url, method, body, headers)
        try:
            payload, errored, _ = lambda_bridge.invoke_in_process(lambda_bridge.function(name), event,
                                                                  self._function_arn(name))
        except lambda_bridge.FunctionThrottledError as error:  # reserved concurrency caps a URL's callers too
            return {"statusCode": 429, "headers": {"content-type": "application/json"},
                    "body": json.dumps({"Message": str(error)})}
        return function_url.http_response(payload, errored)

    def _function_arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{name}"

    # ---------------------------------------------------------------- deployment
    def _deploy(self) -> None:
        assert self.template is not None
        order = [
            ("AWS::KMS::Key", self._deploy_key),
            ("AWS::DynamoDB::Table", self._deploy_table),
            ("AWS::SecretsManager::Secret", self._deploy_secret),
            ("AWS::Serverless::SimpleTable", self._deploy_simple_table),
            ("AWS::S3::Bucket", self._deploy_bucket),
            ("AWS::SQS::Queue", self._deploy_queue),
            ("AWS::SNS::Topic", self._deploy_topic),
            ("AWS::SES::ConfigurationSet", self._deploy_configuration_set),
            ("AWS::SES::ConfigurationSetEventDestination", self._deploy_event_destination),
            ("AWS::Events::Rule", self._deploy_rule),
            ("AWS::Serverless::Function", self._deploy_function),
            ("AWS::Lambda::Url", self._deploy_function_url),
            ("AWS::SNS::Subscription", self._deploy_subscription),
            ("AWS::Serverless::StateMachine", self._deploy_state_machine),
            ("AWS::StepFunctions::StateMachine", self._deploy_state_machine),
        ]
        handled = {rtype for rtype, _ in order}
        unsupported = sorted(
            f"{r.logical_id} ({r.type})" for r in self.template.resources.values()
            if r.type not in handled and r.type not in SKIPPED_TYPES
        )
        if unsupported:
            raise UnsupportedResourceError(
                f"{self.template_path}: the local engine cannot create {', '.join(unsupported)}"
            )
        iam_client = self.client("iam")  # moto checks that a function's role exists (engine/iam.py checks calls)
        for arn, service in ((_LAMBDA_ROLE, "lambda"), (_STATES_ROLE, "states")):
            trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                             "Principal": {"Service": f"{service}.amazonaws.com"}}]}
            iam_client.create_role(RoleName=arn.rsplit("/", 1)[1], AssumeRolePolicyDocument=json.dumps(trust))
        sesv2 = self.client("sesv2")
        for identity in self.ses_identities:
            sesv2.create_email_identity(EmailIdentity=identity)
        for rtype, deploy in order:
            for resource in self.template.of_type(rtype):
                deploy(resource)
                self.deployed.append(Deployed(resource.logical_id, resource.type, resource.physical_id))
        self._set_redrive_policies()
        for rtype, why in SKIPPED_TYPES.items():
            for resource in self.template.of_type(rtype):
                self.deployed.append(Deployed(resource.logical_id, rtype, resource.physical_id, skipped=why))

    def _deploy_table(self, r: Resource) -> None:
        p = r.properties
        args: dict[str, Any] = {
            "TableName": r.physical_id,
            "AttributeDefinitions": p["AttributeDefinitions"],
            "KeySchema": p["KeySchema"],
            "BillingMode": p.get("BillingMode", "PROVISIONED"),
        }
        if args["BillingMode"] == "PROVISIONED":
            args["ProvisionedThroughput"] = p.get("ProvisionedThroughput")
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if p.get(key):
                args[key] = p[key]
        if p.get("StreamSpecification"):
            args["StreamSpecification"] = {"StreamEnabled": True, **p["StreamSpecification"]}
        ddb = self.client("dynamodb")
        ddb.create_table(**args)
        ttl = p.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            ddb.update_time_to_live(
                TableName=r.physical_id,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )

    def _deploy_simple_table(self, r: Resource) -> None:
        key = r.properties.get("PrimaryKey", {"Name": "id", "Type": "String"})
        kind = {"String": "S", "Number": "N", "Binary": "B"}[key["Type"]]
        r.properties = {
            "AttributeDefinitions": [{"AttributeName": key["Name"], "AttributeType": kind}],
            "KeySchema": [{"AttributeName": key["Name"], "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        }
        self._deploy_table(r)

    def _deploy_bucket(self, r: Resource) -> None:
        s3 = self.client("s3")
        s3.create_bucket(Bucket=r.physical_id)
        if r.properties.get("LifecycleConfiguration"):
            rules = [
                {"ID": rule.get("Id", f"rule{i}"), "Status": rule["Status"],
                 "Filter": {"Prefix": rule.get("Prefix", "")},
                 **({"Expiration": {"Days": int(rule["ExpirationInDays"])}} if "ExpirationInDays" in rule else {})}
                for i, rule in enumerate(r.properties["LifecycleConfiguration"]["Rules"])
            ]
            s3.put_bucket_lifecycle_configuration(Bucket=r.physical_id, LifecycleConfiguration={"Rules": rules})

    def _deploy_queue(self, r: Resource) -> None:
        attributes = {
            key: str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in r.properties.items()
            if key in {"VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "MaximumMessageSize",
                       "ReceiveMessageWaitTimeSeconds", "FifoQueue", "ContentBasedDeduplication",
                       "SqsManagedSseEnabled"}
        }
        url = self.client("sqs").create_queue(QueueName=r.attributes["QueueName"], Attributes=attributes)["QueueUrl"]
        if url != r.physical_id:
            raise TemplateError(f"{r.logical_id}: moto gave queue URL {url}, the template resolved {r.physical_id}")

    def _set_redrive_policies(self) -> None:
        assert self.template is not None
        for r in self.template.of_type("AWS::SQS::Queue"):
            policy = r.properties.get("RedrivePolicy")
            if policy:
                self.client("sqs").set_queue_attributes(
                    QueueUrl=r.physical_id, Attributes={"RedrivePolicy": json.dumps(policy)}
                )

    def _deploy_key(self, r: Resource) -> None:
        """A symmetric key in moto's KMS with its key policy, at the key id the template resolved (moto draws one at
        random). The key policy is stored, not enforced: who may use the key is checked by tests/checks/test_kms.py."""
        from moto.kms.models import kms_backends

        p = r.properties
        if p.get("MultiRegion") or p.get("Origin", "AWS_KMS") != "AWS_KMS":
            raise UnsupportedResourceError(f"{r.logical_id}: only single-Region keys with AWS_KMS key material are "
                                           f"created locally")
        policy = p.get("KeyPolicy")
        args: dict[str, Any] = {
            "KeyUsage": p.get("KeyUsage", "ENCRYPT_DECRYPT"),
            "KeySpec": p.get("KeySpec", "SYMMETRIC_DEFAULT"),
            "Tags": [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in p.get("Tags") or []],
        }
        if policy is not None:
            args["Policy"] = policy if isinstance(policy, str) else json.dumps(policy)
        if "Description" in p:
            args["Description"] = p["Description"]
        kms = self.client("kms")
        drawn = kms.create_key(**args)["KeyMetadata"]["KeyId"]
        backend = kms_backends[ACCOUNT_ID][self.region]
        key = backend.keys.pop(drawn)
        key.id, key.arn = r.physical_id, r.attributes["Arn"]
        backend.keys[key.id] = key
        if backend.tagger.list_tags_for_resource(drawn).get("Tags"):
            backend.tagger.tag_resource(key.id, backend.tagger.list_tags_for_resource(drawn)["Tags"])
            backend.tagger.delete_all_tags_for_resource(drawn)
        given = kms.describe_key(KeyId=r.physical_id)["KeyMetadata"]["Arn"]
        if given != r.attributes["Arn"]:
            raise TemplateError(f"{r.logical_id}: moto gave key ARN {given}, the template resolved "
                                f"{r.attributes['Arn']}")
        if str(p.get("EnableKeyRotation", False)).lower() == "true":
            kms.enable_key_rotation(KeyId=r.physical_id)
        if str(p.get("Enabled", True)).lower() == "false":
            kms.disable_key(KeyId=r.physical_id)

    def _deploy_topic(self, r: Resource) -> None:
        sns = self.client("sns")
        attributes = {"FifoTopic": "true"} if r.properties.get("FifoTopic") else {}
        if r.properties.get("KmsMasterKeyId"):
            attributes["KmsMasterKeyId"] = str(r.properties["KmsMasterKeyId"])
        sns.create_topic(Name=r.attributes["TopicName"], Attributes=attributes)
        for sub in r.properties.get("Subscription", []):
            sns.subscribe(TopicArn=r.physical_id, Protocol=sub["Protocol"], Endpoint=sub["Endpoint"])

    def _deploy_subscription(self, r: Resource) -> None:
        p = r.properties
        attributes = {
            key: json.dumps(p[key]) if isinstance(p[key], dict) else str(p[key]).lower()
            if isinstance(p[key], bool) else str(p[key])
            for key in ("RawMessageDelivery", "FilterPolicy", "FilterPolicyScope", "RedrivePolicy")
            if key in p
        }
        self.client("sns").subscribe(
            TopicArn=p["TopicArn"], Protocol=p["Protocol"], Endpoint=p["Endpoint"], Attributes=attributes
        )

    def _deploy_configuration_set(self, r: Resource) -> None:
        p = r.properties
        args: dict[str, Any] = {"ConfigurationSetName": r.physical_id}
        if "ReputationOptions" in p:
            args["ReputationOptions"] = {"ReputationMetricsEnabled": bool(p["ReputationOptions"].get(
                "ReputationMetricsEnabled", False))}
        if "SendingOptions" in p:
            args["SendingOptions"] = {"SendingEnabled": bool(p["SendingOptions"].get("SendingEnabled", True))}
        self.client("sesv2").create_configuration_set(**args)

    def _deploy_event_destination(self, r: Resource) -> None:
        """Recorded in the SES simulator; `ses.publish_event` delivers to it as SES would."""
        p = r.properties
        spec = p["EventDestination"]
        unknown = sorted(set(spec.get("MatchingEventTypes") or []) - set(ses.CFN_EVENT_TYPES))
        if unknown or not spec.get("MatchingEventTypes"):
            raise TemplateError(f"{r.logical_id}: MatchingEventTypes {unknown or '[]'} are not among "
                                f"{sorted(ses.CFN_EVENT_TYPES)}")
        definition: dict[str, Any] = {
            "Enabled": bool(spec.get("Enabled", False)),  # CloudFormation's default, as SES v1's
            "MatchingEventTypes": [ses.CFN_EVENT_TYPES[t] for t in spec["MatchingEventTypes"]],
        }
        if "SnsDestination" in spec:
            definition["SnsDestination"] = {"TopicArn": spec["SnsDestination"]["TopicARN"]}
        if "EventBridgeDestination" in spec:
            definition["EventBridgeDestination"] = {"EventBusArn": spec["EventBridgeDestination"]["EventBusArn"]}
        if "CloudWatchDestination" in spec:  # metrics are not evaluated locally: recorded, nothing delivered
            definition["CloudWatchDestination"] = {
                "DimensionConfigurations": spec["CloudWatchDestination"].get("DimensionConfigurations") or []
            }
        if "KinesisFirehoseDestination" in spec:
            raise UnsupportedResourceError(f"{r.logical_id}: Kinesis Firehose destinations are not run locally")
        self.client("sesv2").create_configuration_set_event_destination(
            ConfigurationSetName=p["ConfigurationSetName"],
            EventDestinationName=spec.get("Name") or r.physical_id,
            EventDestination=definition,
        )

    def _deploy_rule(self, r: Resource) -> None:
        """An event-pattern rule with SQS targets; moto matches and delivers (patches/events.py fixes it)."""
        p = r.properties
        if "ScheduleExpression" in p or "EventPattern" not in p:
            raise UnsupportedResourceError(f"{r.logical_id}: only event-pattern rules are run by the local engine")
        pattern = p["EventPattern"]
        args: dict[str, Any] = {
            "Name": r.physical_id,
            "EventPattern": pattern if isinstance(pattern, str) else json.dumps(pattern),
            "State": p.get("State", "ENABLED"),
        }
        for key in ("Description", "EventBusName", "RoleArn"):
            if key in p:
                args[key] = p[key]
        events = self.client("events")
        arn = events.put_rule(**args)["RuleArn"]
        if arn != r.attributes["Arn"]:
            raise TemplateError(
                f"{r.logical_id}: moto gave rule ARN {arn}, the template resolved {r.attributes['Arn']}"
            )
        targets = []
        for target in p.get("Targets") or []:
            if not str(target.get("Arn", "")).startswith("arn:aws:sqs:"):
                raise UnsupportedResourceError(
                    f"{r.logical_id}: target {target.get('Id')} ({target.get('Arn')}): the local engine delivers "
                    f"rule targets to SQS queues only"
                )
            targets.append({key: target[key] for key in ("Id", "Arn", "Input", "InputPath", "InputTransformer",
                                                          "SqsParameters", "RetryPolicy", "DeadLetterConfig")
                            if key in target})
        if targets:
            events.put_targets(Rule=r.physical_id, EventBusName=p.get("EventBusName", "default"), Targets=targets)

    def _deploy_function(self, r: Resource) -> None:
        assert self.template is not None
        p = r.properties
        for key in ("CodeUri", "Handler", "Runtime"):
            if key not in p:
                raise TemplateError(f"{r.logical_id}: {key} is required (in the function or in Globals)")
        if not isinstance(p["CodeUri"], str):
            raise UnsupportedResourceError(f"{r.logical_id}: CodeUri must be a local folder for the engine")
        code_dir = (self.template.root / p["CodeUri"]).resolve()
        if not code_dir.is_dir():
            raise TemplateError(f"{r.logical_id}: CodeUri {p['CodeUri']} is not a folder under {self.template.root}")
        environment = {k: str(v) for k, v in (p.get("Environment", {}).get("Variables") or {}).items()}
        environment |= {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}
        environment |= self.lambda_env_overrides
        memory, timeout = int(p.get("MemorySize", 128)), int(p.get("Timeout", 3))
        reserved = p.get("ReservedConcurrentExecutions")
        reserved = None if reserved is None else int(reserved)
        self.client("lambda").create_function(
            FunctionName=r.physical_id, Runtime=p["Runtime"], Role=_LAMBDA_ROLE, Handler=p["Handler"],
            Code={"ZipFile": _placeholder_zip()}, MemorySize=memory, Timeout=timeout,
            Environment={"Variables": environment},
        )
        if reserved is not None:
            # Lambda keeps at least 100 of the account's concurrency unreserved:
            # https://docs.aws.amazon.com/lambda/latest/api/API_PutFunctionConcurrency.html
            left = lambda_bridge.unreserved_concurrency() - reserved
            if left < lambda_bridge.UNRESERVED_MINIMUM:
                raise TemplateError(
                    f"{r.logical_id}: ReservedConcurrentExecutions {reserved} leaves {left} of the account's "
                    f"{self.lambda_account_concurrency} unreserved, below Lambda's minimum of "
                    f"{lambda_bridge.UNRESERVED_MINIMUM}")
            self.client("lambda").put_function_concurrency(FunctionName=r.physical_id,
                                                           ReservedConcurrentExecutions=reserved)
        lambda_bridge.register(lambda_bridge.FunctionSpec(
            name=r.physical_id, code_dir=code_dir, handler=p["Handler"], environment=environment,
            memory_mb=memory, timeout_s=timeout, reserved_concurrency=reserved,
        ))
        for event_name, event in (p.get("Events") or {}).items():
            self._deploy_function_event(r, event_name, event)

    def _deploy_function_event(self, r: Resource, event_name: str, event: dict[str, Any]) -> None:
        props = event.get("Properties", {})
        if event.get("Type") == "SQS":
            queue_arn = props["Queue"]
            queue_name = queue_arn.rsplit(":", 1)[-1]
            self.triggers.append(QueueTrigger(
                function=r.physical_id,
                queue_url=f"https://sqs.{self.region}.amazonaws.com/{ACCOUNT_ID}/{queue_name}",
                queue_arn=queue_arn,
                batch_size=int(props.get("BatchSize", 10)),
                batching_window_s=int(props.get("MaximumBatchingWindowInSeconds", 0)),
                visibility_timeout_s=self._queue_visibility(queue_name),
                maximum_concurrency=_maximum_concurrency(r.logical_id, event_name, props),
                report_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
            ))
        elif event.get("Type") == "SNS":
            self.client("sns").subscribe(
                TopicArn=props["Topic"], Protocol="lambda", Endpoint=self._function_arn(r.physical_id)
            )
        else:
            raise UnsupportedResourceError(
                f"{r.logical_id}.Events.{event_name}: event type {event.get('Type')} is not run by the local engine"
            )

    def _deploy_secret(self, r: Resource) -> None:
        p = r.properties
        if "SecretString" in p:
            value = str(p["SecretString"])
        elif "GenerateSecretString" in p:
            value = generated_secret_string(p["GenerateSecretString"], f"{self.stack_name}/{r.logical_id}")
        else:
            raise TemplateError(f"{r.logical_id}: needs SecretString or GenerateSecretString")
        extra = {"Description": p["Description"]} if "Description" in p else {}
        self.client("secretsmanager").create_secret(Name=r.physical_id.rsplit(":", 1)[1], SecretString=value, **extra)

    def _deploy_function_url(self, r: Resource) -> None:
        """moto's URL config for the function, at the URL the template resolved (moto would pick another)."""
        from moto.awslambda.models import lambda_backends

        p = r.properties
        if p.get("Qualifier"):
            raise UnsupportedResourceError(f"{r.logical_id}: function URLs of an alias are not run locally")
        name = str(p["TargetFunctionArn"]).rsplit(":", 1)[-1]
        config = {"AuthType": p["AuthType"], **({"Cors": p["Cors"]} if "Cors" in p else {})}
        self.client("lambda").create_function_url_config(FunctionName=name, **config)
        lambda_backends[ACCOUNT_ID][self.region].get_function(name).url_config.url = r.physical_id
        given = self.client("lambda").get_function_url_config(FunctionName=name)["FunctionUrl"]
        if given != r.physical_id:
            raise TemplateError(f"{r.logical_id}: moto gave URL {given}, the template resolved {r.physical_id}")
        self.function_urls[function_url.base(r.physical_id)] = name

    def _deploy_state_machine(self, r: Resource) -> None:
        assert self.template is not None
        p = r.properties
        if "DefinitionUri" in p:
            if not isinstance(p["DefinitionUri"], str):
                raise UnsupportedResourceError(f"{r.logical_id}: DefinitionUri must be a local file for the engine")
            text = (self.template.root / p["DefinitionUri"]).read_text()
        elif "Definition" in p:
            text = json.dumps(p["Definition"])
        elif "DefinitionString" in p:
            text = p["DefinitionString"]
        else:
            raise TemplateError(f"{r.logical_id}: needs DefinitionUri, Definition or DefinitionString")
        definition = substitute_definition(text, p.get("DefinitionSubstitutions") or {}, r.logical_id)
        self.client("stepfunctions").create_state_machine(
            name=r.attributes["Name"], definition=definition, roleArn=_STATES_ROLE,
            type=p.get("Type", p.get("StateMachineType", "STANDARD")),
        )


def substitute_definition(text: str, substitutions: dict[str, Any], where: str) -> str:
    """Replace every ${Key} as DefinitionSubstitutions does; an unknown key is an error, as on AWS."""
    missing = sorted(set(_PLACEHOLDER.findall(text)) - set(substitutions))
    if missing:
        raise TemplateError(f"{where}: the definition uses ${{{'}, ${'.join(missing)}}} but DefinitionSubstitutions "
                            f"has no such key")
    result = _PLACEHOLDER.sub(lambda m: json.dumps(str(substitutions[m.group(1)]))[1:-1], text)
    try:
        json.loads(result)
    except json.JSONDecodeError as error:
        raise TemplateError(f"{where}: the definition is not JSON after substitution: {error}") from error
    return result


def generated_secret_string(spec: dict[str, Any], seed: str) -> str:
    """GenerateSecretString's value as Secrets Manager draws it (length, excluded classes and characters, at least
    one of each included class, SecretStringTemplate + GenerateStringKey), from a generator seeded by the stack and
    logical id: stable across local stacks like physical names, so a warm function's cached copy stays right."""
    def flag(name: str, default: bool = False) -> bool:
        return str(spec.get(name, default)).lower() == "true"

    excluded = set(str(spec.get("ExcludeCharacters", "")))
    switches = ((string.ascii_lowercase, "ExcludeLowercase"), (string.ascii_uppercase, "ExcludeUppercase"),
                (string.digits, "ExcludeNumbers"), (string.punctuation, "ExcludePunctuation"))
    classes = [chars for chars, switch in switches if not flag(switch)] + ([" "] if flag("IncludeSpace") else [])
    classes = [kept for kept in ("".join(c for c in chars if c not in excluded) for chars in classes) if kept]
    length = int(spec.get("PasswordLength", 32))
    each = flag("RequireEachIncludedType", True)
    if not classes or length < (len(classes) if each else 1):
        raise TemplateError(f"GenerateSecretString {spec}: no string of length {length} can satisfy it")
    draw = random.Random(hashlib.sha256(seed.encode()).digest())
    chars = [draw.choice(c) for c in classes] if each else []
    chars += [draw.choice("".join(classes)) for _ in range(length - len(chars))]
    draw.shuffle(chars)
    value = "".join(chars)
    if "GenerateStringKey" in spec:
        return json.dumps({**json.loads(spec.get("SecretStringTemplate") or "{}"), spec["GenerateStringKey"]: value})
    return value


def _sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS message as Lambda's event source mapping hands it to a function."""
    attributes = message.get("MessageAttributes") or {}
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in attributes.items()
        },
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _maximum_concurrency(logical_id: str, event_name: str, props: dict[str, Any]) -> int | None:
    value = (props.get("ScalingConfig") or {}).get("MaximumConcurrency")
    if value is None:
        return None
    if not 2 <= int(value) <= SQS_MAX_CONCURRENT_BATCHES:  # ScalingConfig's valid range (Lambda API reference)
        raise TemplateError(f"{logical_id}.Events.{event_name}: ScalingConfig.MaximumConcurrency {value} is not "
                            f"between 2 and {SQS_MAX_CONCURRENT_BATCHES}")
    return int(value)


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "sesflow local engine: the handler runs in-process from CodeUri\n")
    return buffer.getvalue()
