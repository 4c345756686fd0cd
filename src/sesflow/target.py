"""Where an operator command acts: the local engine that `sesflow local up --serve` keeps running, or a
deployed stack (`--stack NAME`). Either way a command gets the stack's outputs, AWS clients pointed at it,
and the environment the Lambda code reads, so it can reuse app.* as the functions do.

    target = resolve_target(args.stack, args.state_file)
    target.client("dynamodb").get_item(TableName=target.output("RecipientsTableName"), ...)

The local engine is found through its state file (default .sesflow/local.json), which engine/server.py
writes when it starts serving and removes when it stops. This module must stay light (no moto): a
command against AWS never loads the engine.
"""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import botocore.session
from botocore.configprovider import ConstantProvider

LOCAL = "local"
DEFAULT_STATE_FILE = Path(".sesflow") / "local.json"
STATUS_PATH = "/_sesflow/status"  # answered by the engine's server itself, not by moto
# Any key works: moto maps keys it never issued to its default account, the one the engine deploys into.
LOCAL_CREDENTIALS = {"aws_access_key_id": "sesflow-local", "aws_secret_access_key": "sesflow-local"}

# The environment functions/app/settings.py reads, from the stack output naming the same resource
# (tests/unit/test_target.py holds both sides against template.yaml).
ENV_FROM_OUTPUTS = {
    "RECIPIENTS_TABLE": "RecipientsTableName",
    "MEMBERSHIPS_TABLE": "MembershipsTableName",
    "CAMPAIGNS_TABLE": "CampaignsTableName",
    "SENDS_TABLE": "SendsTableName",
    "EVENTS_TABLE": "EventsTableName",
    "MANIFEST_BUCKET": "ManifestBucketName",
    "ALERT_TOPIC_ARN": "AlertTopicArn",
    "CONFIGURATION_SET": "ConfigurationSetName",
    "PROBATION_CONFIGURATION_SET": "ProbationConfigurationSetName",
    "FEEDBACK_DLQ_URL": "FeedbackDeadLetterQueueUrl",
    "LIFECYCLE_STATE_MACHINE_ARN": "RecipientLifecycleStateMachineArn",
}
# ...and those the template sets from a stack parameter rather than a resource.
ENV_FROM_PARAMETERS = {
    "LIFECYCLE_POLICY": "LifecyclePolicy",
    "ALLOWED_CONFIGURATION_SETS": "AllowedConfigurationSets",
    "FREQUENCY_CAP_EMAILS": "FrequencyCapEmails",
    "FREQUENCY_CAP_DAYS": "FrequencyCapDays",
}
OPTIONAL_ENV = {  # settings.py uses .get
    "FEEDBACK_DLQ_URL", "PROBATION_CONFIGURATION_SET", "LIFECYCLE_STATE_MACHINE_ARN", "LIFECYCLE_POLICY",
    "ALLOWED_CONFIGURATION_SETS", "FREQUENCY_CAP_EMAILS", "FREQUENCY_CAP_DAYS"}

# A stack in these states never finished creating (or is going away): its outputs point at nothing.
_NOT_DEPLOYED = {"CREATE_IN_PROGRESS", "CREATE_FAILED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_FAILED", "ROLLBACK_COMPLETE",
                 "DELETE_IN_PROGRESS", "DELETE_FAILED", "REVIEW_IN_PROGRESS"}
_LOCAL_UNSET = {"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"}
NO_ENGINE = "no local engine is running: start one with `sesflow local up --serve`"


class TargetError(Exception):
    """The target cannot be reached or lacks something; the message is for the operator, as is."""


@dataclass
class EngineState:
    """The state file of a serving local engine: how to reach it and what it deployed."""

    endpoint_url: str
    region: str
    account: str
    stack_name: str
    pid: int
    outputs: dict[str, str]
    parameters: dict[str, str] = field(default_factory=dict)
    template: str = ""
    started_at: str = ""

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2) + "\n"

    @classmethod
    def read(cls, path: Path) -> EngineState | None:
        """The state in `path`, or None if there is none or it is not one (a half-written or foreign file)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})
        except (OSError, ValueError, TypeError):
            return None

    def status(self, timeout: float = 3.0) -> dict[str, Any] | None:
        """What the server at endpoint_url says about itself, if it is this engine; None if it is gone.

        A dead pid or a closed port both mean a stale file; asking the server also catches a port that
        another process took over after the engine died without removing its file. pid 0: any engine. The
        timeout is generous: an engine busy with a large campaign answers slowly, a dead port at once."""
        if self.pid and not pid_alive(self.pid):
            return None
        try:
            with urllib.request.urlopen(self.endpoint_url + STATUS_PATH, timeout=timeout) as response:
                status = json.loads(response.read())
        except (OSError, ValueError):  # refused, timed out, not HTTP, not JSON: not our engine
            return None
        if not isinstance(status, dict) or "pid" not in status:
            return None
        return status if status["pid"] == self.pid or not self.pid else None

    def alive(self) -> bool:
        return self.status() is not None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie counts: its parent has not reaped it yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except (OSError, OverflowError):
        return False
    return True


@dataclass
class Target:
    """A stack to act on: `name` is "local" or the CloudFormation stack name; endpoint_url is None on AWS."""

    name: str
    region: str
    outputs: dict[str, str]
    parameters: dict[str, str] = field(default_factory=dict)
    endpoint_url: str | None = None
    _session: Any = field(default=None, repr=False, compare=False)

    @property
    def is_local(self) -> bool:
        return self.endpoint_url is not None

    def output(self, key: str) -> str:
        try:
            return self.outputs[key]
        except KeyError:
            where = "the local engine's stack" if self.is_local else f"stack {self.name}"
            raise TargetError(f"{where} has no output {key}: was it deployed from an older template.yaml? "
                              f"(outputs: {', '.join(sorted(self.outputs)) or 'none'})") from None

    def session(self) -> Any:
        if self._session is None:
            if self.is_local:
                self._session = _hermetic_session(self.region)
            else:
                self._session = boto3.Session(region_name=self.region)
        return self._session

    def client(self, service: str, **kwargs: Any) -> Any:
        if self.is_local:
            kwargs.setdefault("endpoint_url", self.endpoint_url)
            # S3 buckets as paths: a bucket cannot be a subdomain of 127.0.0.1.
            kwargs.setdefault("config", botocore.config.Config(s3={"addressing_style": "path"}))
        return self.session().client(service, **kwargs)

    def env(self) -> dict[str, str]:
        """The variables the Lambda code (app.settings, app.clients) reads, for running app.* against this target.

        Local: also the endpoint and dummy credentials, so app.clients' plain boto3.client() reaches the engine.
        """
        env = {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}
        for variable, key in ENV_FROM_OUTPUTS.items():
            if key in self.outputs:
                env[variable] = str(self.outputs[key])
            elif variable not in OPTIONAL_ENV:
                self.output(key)  # raises, naming the missing output
        for variable, key in ENV_FROM_PARAMETERS.items():
            if key in self.parameters:
                value = self.parameters[key]  # a CommaDelimitedList is a list locally, "a,b" from CloudFormation
                env[variable] = ",".join(value) if isinstance(value, list) else str(value)
        if self.is_local:
            env |= {"AWS_ENDPOINT_URL": str(self.endpoint_url),
                    "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
                    "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
                    "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
        return env

    def apply_env(self, environ: Any = None) -> None:
        """Set env() in `environ` (default os.environ) and, for the local engine, unset what would override it
        (a profile, a session token, per-service endpoints). Do it before app.clients builds its first client:
        it caches them."""
        environ = os.environ if environ is None else environ
        if self.is_local:
            for name in [n for n in environ if n in _LOCAL_UNSET or n.startswith("AWS_ENDPOINT_URL_")]:
                del environ[name]
        environ.update(self.env())


    def lambda_settings(self) -> Any:
        """The Settings the functions would have on this target, with the Lambda code's clients pointed at it.

        The one way the CLI reaches the Lambda code: functions/app (the Lambda CodeUri) is a package of this
        install, so app.* is the very code the functions run; this sets the target's environment and drops the
        clients app.clients cached for another one."""
        self.apply_env()
        from app import clients
        from app.settings import settings

        clients.forget()
        return settings()


def add_target_options(parser: Any) -> None:
    """--stack, --region and --state-file: where an operator command acts (resolve_target reads them)."""
    parser.add_argument("--stack", default=None, help="a deployed stack's name (default: the local engine)")
    parser.add_argument("--region", default=None, help="with --stack: its region")
    parser.add_argument("--state-file", default=None,
                        help=f"the local engine's state file (default: the nearest {DEFAULT_STATE_FILE})")


def target_of(args: Any) -> Target:
    """The target the command's --stack, --region and --state-file name."""
    return resolve_target(args.stack, Path(args.state_file) if args.state_file else None, region=args.region)


def _hermetic_session(region: str) -> Any:
    """A session that reads nothing of the user's AWS setup: an AWS_PROFILE naming a profile this machine lacks,
    or a [default] endpoint_url or credential, must neither break nor redirect calls to the local engine."""
    core = botocore.session.Session()
    core.get_component("config_store").set_config_provider("profile", ConstantProvider(None))
    core.set_config_variable("config_file", os.devnull)
    core.set_config_variable("credentials_file", os.devnull)
    return boto3.Session(botocore_session=core, region_name=region, **LOCAL_CREDENTIALS)


def resolve_target(stack: str | None, state_file: Path | None = None, *, region: str | None = None) -> Target:
    """The deployed stack `stack` (outputs from CloudFormation), or with no stack the running local engine
    (from `state_file`, by default the nearest .sesflow/local.json from here up, as git finds .git)."""
    if stack:
        return _deployed(stack, region)
    return _local(state_file or find_state_file())


def find_state_file(start: Path | None = None) -> Path:
    """The nearest DEFAULT_STATE_FILE in `start` (default: the current folder) or above; if none, the one in start."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / DEFAULT_STATE_FILE).is_file():
            return folder / DEFAULT_STATE_FILE
    return here / DEFAULT_STATE_FILE


def _local(state_file: Path) -> Target:
    state = EngineState.read(state_file)
    if state is None:
        raise TargetError(NO_ENGINE)
    if not state.alive():
        raise TargetError(f"{NO_ENGINE} ({state_file} is left from one that stopped)")
    return Target(name=LOCAL, region=state.region, outputs=dict(state.outputs), parameters=dict(state.parameters),
                  endpoint_url=state.endpoint_url)


def _deployed(stack: str, region: str | None) -> Target:
    try:
        session = boto3.Session(region_name=region) if region else boto3.Session()
    except botocore.exceptions.ProfileNotFound as error:
        raise TargetError(f"{error} (check AWS_PROFILE)") from None
    region = session.region_name
    if not region:
        raise TargetError(f"no AWS region for stack {stack}: pass --region or set AWS_REGION (or a region in "
                          f"your AWS profile)")
    try:
        described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    except botocore.exceptions.NoCredentialsError:
        raise TargetError(f"no AWS credentials to look up stack {stack}: set AWS_PROFILE or run `aws configure`, "
                          f"or leave out --stack to use the local engine") from None
    except botocore.exceptions.ClientError as error:
        message = error.response.get("Error", {}).get("Message", "")
        if error.response.get("Error", {}).get("Code") == "ValidationError" and "does not exist" in message:
            raise TargetError(f"no stack named {stack} in region {region} (is it deployed? check --region / "
                              f"AWS_PROFILE)") from None
        raise TargetError(f"cannot describe stack {stack} in region {region}: {message or error}") from None
    except botocore.exceptions.BotoCoreError as error:  # no network, bad endpoint, expired SSO token...
        raise TargetError(f"cannot reach CloudFormation in region {region} for stack {stack}: {error}") from None
    if not described:
        raise TargetError(f"no stack named {stack} in region {region} (is it deployed? check --region / AWS_PROFILE)")
    status = described[0].get("StackStatus", "")
    if status in _NOT_DEPLOYED:
        raise TargetError(f"stack {stack} in region {region} is {status}: it has no working resources to act on "
                          f"(see its events in the CloudFormation console, then deploy it again)")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described[0].get("Outputs") or []}
    parameters = {p["ParameterKey"]: p.get("ResolvedValue", p.get("ParameterValue", ""))
                  for p in described[0].get("Parameters") or []}
    return Target(name=stack, region=region, outputs=outputs, parameters=parameters, _session=session)
