"""Where operator commands act: the running local engine (from its state file) or a deployed stack (--stack),
with errors in the operator's terms; and the Lambda environment built from the stack's outputs."""

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from sesflow import target as target_module
from sesflow.engine.template import load_template
from sesflow.target import (
    DEFAULT_STATE_FILE,
    ENV_FROM_OUTPUTS,
    ENV_FROM_PARAMETERS,
    NO_ENGINE,
    OPTIONAL_ENV,
    STATUS_PATH,
    EngineState,
    Target,
    TargetError,
    find_state_file,
    resolve_target,
)

ROOT = Path(__file__).resolve().parents[2]
OUTPUTS = {
    "RecipientsTableName": "sesflow-local-RecipientsTable-1", "MembershipsTableName": "sesflow-local-Memberships-7",
    "CampaignsTableName": "sesflow-local-CampaignsTable-2",
    "SendsTableName": "sesflow-local-SendsTable-3", "EventsTableName": "sesflow-local-EventsTable-4",
    "ManifestBucketName": "sesflow-local-manifestbucket-5", "AlertTopicArn": "arn:aws:sns:us-east-1:1:alerts",
    "ConfigurationSetName": "sesflow-local-ConfigurationSet-6",
    "CampaignStateMachineArn": "arn:aws:states:us-east-1:1:stateMachine:campaign",
}


def serve_status(answer):
    """A loopback HTTP server answering the status path with `answer` (what a live engine would say)."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(answer).encode()
            self.send_response(200 if self.path == STATUS_PATH else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def engine(tmp_path):
    """A state file for an engine that is alive: this process, with a server answering as the engine does."""
    server = serve_status({"pid": os.getpid()})
    state_file = tmp_path / DEFAULT_STATE_FILE
    write_state(state_file, endpoint_url=f"http://127.0.0.1:{server.server_address[1]}")
    yield state_file
    server.shutdown()
    server.server_close()


def write_state(path, **changes):
    state = EngineState(endpoint_url="http://127.0.0.1:1", region="us-east-1", account="123456789012",
                        stack_name="sesflow-local", pid=os.getpid(), outputs=dict(OUTPUTS),
                        parameters={"LifecyclePolicy": '{"strike_limit": 4}', "Stage": "dev"})
    for key, value in changes.items():
        setattr(state, key, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(state.to_json())
    return state


# ---------------------------------------------------------------- the local engine


def test_resolves_the_running_engine_from_its_state_file(engine):
    target = resolve_target(None, engine)

    state = EngineState.read(engine)
    assert (target.name, target.region, target.endpoint_url, target.is_local) == (
        "local", "us-east-1", state.endpoint_url, True)
    assert target.outputs == OUTPUTS and target.output("SendsTableName") == "sesflow-local-SendsTable-3"
    client = target.client("dynamodb")
    assert (client.meta.endpoint_url, client.meta.region_name) == (state.endpoint_url, "us-east-1")
    assert client._request_signer._credentials.access_key == "sesflow-local"
    assert target.client("s3").meta.config.s3["addressing_style"] == "path"


def test_finds_the_state_file_from_a_subfolder_as_git_finds_dot_git(engine, tmp_path, tmp_path_factory, monkeypatch):
    below = tmp_path / "campaigns" / "spring"
    below.mkdir(parents=True)
    monkeypatch.chdir(below)

    assert find_state_file() == engine
    assert resolve_target(None).endpoint_url == EngineState.read(engine).endpoint_url
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    assert find_state_file(elsewhere) == elsewhere / DEFAULT_STATE_FILE  # none found: where `local up` puts it


def test_the_local_engine_is_reached_whatever_the_users_aws_setup(engine, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "a-profile-this-machine-lacks")  # would be ProfileNotFound
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALKEY")

    client = resolve_target(None, engine).client("sqs")

    assert client._request_signer._credentials.access_key == "sesflow-local"


def test_no_state_file_means_no_engine(tmp_path):
    with pytest.raises(TargetError) as raised:
        resolve_target(None, tmp_path / "local.json")
    assert str(raised.value) == "no local engine is running: start one with `sesflow local up --serve`"

    (tmp_path / "local.json").write_text("{half a fi")
    with pytest.raises(TargetError, match=re.escape(NO_ENGINE)):
        resolve_target(None, tmp_path / "local.json")


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("why", ["pid gone", "port closed", "port taken by another program", "another engine"])
def test_a_stale_state_file_means_no_engine(tmp_path, why):
    other = serve_status({"pid": os.getpid() + 1} if why == "another engine" else ["not", "an", "engine"])
    port = other.server_address[1]
    if why == "port closed":
        other.shutdown()
        other.server_close()
    state_file = tmp_path / "local.json"
    pid = dead_pid() if why == "pid gone" else os.getpid()
    write_state(state_file, endpoint_url=f"http://127.0.0.1:{port}", pid=pid)
    try:
        with pytest.raises(TargetError) as raised:
            resolve_target(None, state_file)
    finally:
        other.shutdown()
        other.server_close()
    assert str(raised.value) == f"{NO_ENGINE} ({state_file} is left from one that stopped)"


# ---------------------------------------------------------------- the Lambda environment


def test_env_gives_the_lambda_code_its_names_and_for_local_the_endpoint(engine, monkeypatch):
    target = resolve_target(None, engine)

    env = target.env()

    assert env["RECIPIENTS_TABLE"] == OUTPUTS["RecipientsTableName"]
    assert env["CONFIGURATION_SET"] == OUTPUTS["ConfigurationSetName"]
    assert env["LIFECYCLE_POLICY"] == '{"strike_limit": 4}'
    assert "FEEDBACK_DLQ_URL" not in env  # optional, and this stack has no such output
    assert (env["AWS_ENDPOINT_URL"], env["AWS_REGION"], env["AWS_ACCESS_KEY_ID"]) == (
        target.endpoint_url, "us-east-1", "sesflow-local")
    from app.settings import settings

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert settings().sends_table == OUTPUTS["SendsTableName"]


def test_apply_env_also_unsets_what_would_send_the_lambda_code_elsewhere(engine):
    environ = {"AWS_PROFILE": "prod", "AWS_SESSION_TOKEN": "t", "AWS_ENDPOINT_URL_DYNAMODB": "https://elsewhere",
               "HOME": "/home/op"}

    resolve_target(None, engine).apply_env(environ)

    assert not {"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_DYNAMODB"} & set(environ)
    assert environ["HOME"] == "/home/op" and environ["RECIPIENTS_TABLE"] == OUTPUTS["RecipientsTableName"]


def test_env_names_a_missing_output():
    outputs = {k: v for k, v in OUTPUTS.items() if k != "SendsTableName"}

    with pytest.raises(TargetError, match="stack prod has no output SendsTableName: was it deployed from an older"):
        Target(name="prod", region="eu-west-1", outputs=outputs).env()


def test_every_variable_the_lambda_code_reads_comes_from_the_output_or_parameter_naming_the_same_thing():
    source = (ROOT / "functions" / "app" / "settings.py").read_text()
    required = set(re.findall(r'env\["([A-Z0-9_]+)"\]', source))
    optional = set(re.findall(r'env\.get\("([A-Z0-9_]+)"', source))
    assert required | optional == set(ENV_FROM_OUTPUTS) | set(ENV_FROM_PARAMETERS)
    assert optional == OPTIONAL_ENV
    template = load_template(ROOT / "template.yaml")
    assert set(ENV_FROM_OUTPUTS.values()) <= set(template.outputs), "template.yaml Outputs lacks one"
    assert set(ENV_FROM_PARAMETERS.values()) <= set(template.parameters), "template.yaml Parameters lacks one"
    seen = set()
    for function in template.of_type("AWS::Serverless::Function"):
        variables = (function.properties.get("Environment") or {}).get("Variables") or {}
        for name, value in variables.items():
            if name in ENV_FROM_OUTPUTS:
                assert value == template.outputs[ENV_FROM_OUTPUTS[name]], f"{function.logical_id}.{name}"
            elif name in ENV_FROM_PARAMETERS:
                parameter = template.parameters[ENV_FROM_PARAMETERS[name]]
                if isinstance(parameter, list):  # a CommaDelimitedList reaches the functions joined
                    parameter = ",".join(parameter)
                assert value == parameter, f"{function.logical_id}.{name}"
            seen.add(name)
    assert set(ENV_FROM_OUTPUTS) | set(ENV_FROM_PARAMETERS) <= seen


# ---------------------------------------------------------------- a deployed stack


@pytest.fixture
def cloudformation(monkeypatch):
    """describe_stacks answered by botocore's Stubber (moto's CloudFormation needs packages we do not install).
    Append (method, kwargs) pairs: ("add_response", {...}) or ("add_client_error", {...})."""
    answers = []

    class StubbedSession(boto3.Session):
        def client(self, service, **kwargs):
            client = super().client(service, **kwargs)
            if service != "cloudformation":
                return client
            stubber = Stubber(client)
            for method, kwargs in answers:
                getattr(stubber, method)("describe_stacks", **kwargs)
            stubber.activate()
            return client

    monkeypatch.setattr(target_module.boto3, "Session", StubbedSession)
    return answers


def described(status="CREATE_COMPLETE", outputs=OUTPUTS):
    return {"Stacks": [{
        "StackName": "sesflow-prod", "CreationTime": "2026-01-01T00:00:00Z", "StackStatus": status,
        "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
        "Parameters": [{"ParameterKey": "Stage", "ParameterValue": "prod"},
                       {"ParameterKey": "LifecyclePolicy", "ParameterValue": ""}],
    }]}


def test_a_deployed_stack_resolves_from_its_cloudformation_outputs(cloudformation):
    cloudformation.append(("add_response", {"service_response": described(),
                                            "expected_params": {"StackName": "sesflow-prod"}}))

    target = resolve_target("sesflow-prod", None, region="eu-west-1")

    assert (target.name, target.region, target.endpoint_url, target.is_local) == (
        "sesflow-prod", "eu-west-1", None, False)
    assert target.outputs == OUTPUTS and target.parameters == {"Stage": "prod", "LifecyclePolicy": ""}
    env = target.env()
    assert env["RECIPIENTS_TABLE"] == OUTPUTS["RecipientsTableName"] and "AWS_ENDPOINT_URL" not in env
    assert target.client("dynamodb").meta.region_name == "eu-west-1"


def test_a_stack_that_is_not_there_is_named_with_its_region(cloudformation):
    cloudformation.append(("add_client_error", {"service_error_code": "ValidationError", "http_status_code": 400,
                                                "service_message": "Stack with id sesflow-prd does not exist"}))

    with pytest.raises(TargetError) as raised:
        resolve_target("sesflow-prd", None, region="eu-west-1")

    assert str(raised.value) == ("no stack named sesflow-prd in region eu-west-1 (is it deployed? check --region / "
                                 "AWS_PROFILE)")


def test_a_stack_that_never_finished_creating_is_refused(cloudformation):
    cloudformation.append(("add_response", {"service_response": described("ROLLBACK_COMPLETE", outputs={})}))

    with pytest.raises(TargetError, match="stack sesflow-prod in region eu-west-1 is ROLLBACK_COMPLETE"):
        resolve_target("sesflow-prod", None, region="eu-west-1")


def test_other_cloudformation_errors_are_passed_on_in_their_words(cloudformation):
    cloudformation.append(("add_client_error", {"service_error_code": "AccessDenied", "http_status_code": 403,
                                                "service_message": "User: op is not authorized to DescribeStacks"}))

    with pytest.raises(TargetError, match="cannot describe stack sesflow-prod in region eu-west-1: User: op is not"):
        resolve_target("sesflow-prod", None, region="eu-west-1")


@pytest.fixture
def bare_aws(monkeypatch, tmp_path):
    """No AWS configuration at all: no region, no credentials, no profile, no instance metadata."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_no_region_says_how_to_give_one(bare_aws):
    with pytest.raises(TargetError, match="no AWS region for stack sesflow-prod: pass --region or set AWS_REGION"):
        resolve_target("sesflow-prod", None)


def test_no_credentials_says_how_to_get_some(bare_aws):
    with pytest.raises(TargetError, match="no AWS credentials to look up stack sesflow-prod: set AWS_PROFILE"):
        resolve_target("sesflow-prod", None, region="eu-west-1")


def test_a_profile_that_does_not_exist_is_named(bare_aws, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "prdo")

    with pytest.raises(TargetError, match=r"The config profile \(prdo\) could not be found \(check AWS_PROFILE\)"):
        resolve_target("sesflow-prod", None, region="eu-west-1")
