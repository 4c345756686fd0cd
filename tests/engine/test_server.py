"""The engine served on loopback: another client reaches every AWS API over HTTP, the engine's own machinery
(Lambda bridge, queue triggers, Step Functions) keeps working, and the state file lives as long as the server."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError

from sesflow.cli import served_feedback
from sesflow.engine.server import EngineServer, ServerError
from sesflow.engine.ses import simulator
from sesflow.engine.stack import LocalStack
from sesflow.target import STATUS_PATH, EngineState, TargetError, resolve_target
from tests.conftest import ROOT, SENDER_DOMAIN
from tests.contacts import add_contact

BOUNCE = ROOT / "events" / "ingest_feedback" / "bodies" / "sns_bounce_permanent.json"


def eventually(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"still not true after {timeout} s"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One stack and its server for the module (deploying takes seconds); tests touch disjoint items."""
    state_file = tmp_path_factory.mktemp("engine") / ".sesflow" / "local.json"
    with LocalStack(template_path=ROOT / "template.yaml", ses_identities=(SENDER_DOMAIN,)) as stack, \
            EngineServer(stack, port=0, state_file=state_file) as server:
        yield server


@pytest.fixture
def remote(served):
    """A client as another process would make it: through the state file, over HTTP, any credentials."""
    return resolve_target(None, served.state_file)


def test_another_client_sees_the_stack_over_http_and_shares_the_engines_state(served, remote):
    before = served.requests_served
    ddb = remote.client("dynamodb")

    tables = ddb.list_tables()["TableNames"]
    ddb.put_item(TableName=remote.output("RecipientsTableName"),
                 Item={"address": {"S": "over-http@example.org"}, "status": {"S": "ACTIVE"}})

    assert sorted(tables) == sorted(remote.output(k) for k in ("RecipientsTableName", "MembershipsTableName",
                                                               "CampaignsTableName", "SendsTableName",
                                                               "EventsTableName"))
    item = served.stack.client("dynamodb").get_item(  # in-process: the same moto backend
        TableName=remote.output("RecipientsTableName"), Key={"address": {"S": "over-http@example.org"}})["Item"]
    assert item["status"]["S"] == "ACTIVE"
    assert served.requests_served - before == 2  # they really went over HTTP
    s3 = remote.client("s3")
    s3.put_object(Bucket=remote.output("ManifestBucketName"), Key="probe.json", Body=b"{}")
    assert s3.get_object(Bucket=remote.output("ManifestBucketName"), Key="probe.json")["Body"].read() == b"{}"
    assert remote.client("sesv2").get_account()["ProductionAccessEnabled"] is True  # the simulated SES


def test_an_execution_started_over_http_runs_its_lambdas_in_the_engine(remote):
    sfn = remote.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=remote.output("CampaignStateMachineArn"),
                              input=json.dumps({"id": "no-sender"}))["executionArn"]

    eventually(lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING")

    described = sfn.describe_execution(executionArn=arn)
    # ValidateCampaign ran in-process (moto alone would need Docker) and refused the definition.
    assert (described["status"], described["error"]) == ("FAILED", "CampaignDefinitionError")


def test_the_pump_delivers_what_another_client_puts_on_the_feedback_queue(remote):
    ddb = remote.client("dynamodb")
    table = remote.output("RecipientsTableName")
    add_contact(remote, "bounce@simulator.amazonses.com", ["newsletter"], attributes={"version": 1})

    remote.client("sqs").send_message(QueueUrl=remote.output("FeedbackQueueUrl"), MessageBody=BOUNCE.read_text())

    def status():
        return ddb.get_item(TableName=table, Key={"address": {"S": "bounce@simulator.amazonses.com"}})["Item"]["status"]
    eventually(lambda: status()["S"] == "SUPPRESSED")
    attributes = remote.client("sqs").get_queue_attributes(
        QueueUrl=remote.output("FeedbackQueueUrl"), AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"


def test_describe_stacks_over_http_gives_the_served_stacks_outputs_as_cloudformation_does(served, monkeypatch):
    cloudformation = boto3.client("cloudformation", endpoint_url=served.endpoint_url, region_name="us-east-1",
                                  aws_access_key_id="x", aws_secret_access_key="x")

    described = cloudformation.describe_stacks(StackName="sesflow-local")["Stacks"]

    assert [(s["StackName"], s["StackStatus"]) for s in described] == [("sesflow-local", "CREATE_COMPLETE")]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described[0]["Outputs"]}
    assert outputs == {k: str(v) for k, v in served.stack.outputs.items()}
    assert {p["ParameterKey"]: p["ParameterValue"] for p in described[0]["Parameters"]}["FeedbackRoute"] == "sns"
    assert cloudformation.describe_stacks(StackName=described[0]["StackId"])["Stacks"][0]["Outputs"] == \
        described[0]["Outputs"]
    assert [s["StackName"] for s in cloudformation.describe_stacks()["Stacks"]] == ["sesflow-local"]
    with pytest.raises(ClientError, match="ValidationError.*Stack with id other does not exist"):
        cloudformation.describe_stacks(StackName="other")
    with pytest.raises(ClientError, match=r"InvalidAction.*DescribeStacks for its own stack only"):
        cloudformation.list_stacks()  # an error the SDK can read (XML for this Query API), not a parse failure
    # So `--stack sesflow-local` with AWS_ENDPOINT_URL finds it as it finds a deployed stack.
    monkeypatch.setenv("AWS_ENDPOINT_URL", served.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    assert resolve_target("sesflow-local", region="us-east-1").outputs == outputs


def test_the_pump_publishes_ses_feedback_deferred_to_it_when_the_queues_are_empty(served, remote):
    """What `local up --serve` configures: SES's events go out from the pump after the send, as on AWS."""
    address = "bounce+deferred@simulator.amazonses.com"
    ddb, table = remote.client("dynamodb"), remote.output("RecipientsTableName")
    add_contact(remote, address, ["newsletter"], attributes={"version": 1})
    simulator().configure(feedback=served_feedback())
    try:
        remote.client("sesv2").send_email(
            FromEmailAddress=f"news@{SENDER_DOMAIN}", Destination={"ToAddresses": [address]},
            ConfigurationSetName=remote.output("ConfigurationSetName"),
            Content={"Simple": {"Subject": {"Data": "hi"}, "Body": {"Text": {"Data": "hi"}}}})

        def status():
            return ddb.get_item(TableName=table, Key={"address": {"S": address}})["Item"]["status"]["S"]
        eventually(lambda: status() == "SUPPRESSED")
        assert simulator().config.feedback.pending == 0
    finally:
        simulator().configure(feedback=None)


def test_requests_over_http_take_milliseconds_not_a_delayed_ack_each(remote):
    ddb = remote.client("dynamodb")
    ddb.list_tables()  # the connection is open
    started = time.perf_counter()

    for _ in range(10):
        ddb.list_tables()

    # Headers and body in two writes wait for the client's delayed ACK with Nagle on: >= 40 ms a request.
    assert time.perf_counter() - started < 0.3


def test_the_state_file_says_how_to_reach_the_engine(served):
    state = EngineState.read(served.state_file)

    assert state.endpoint_url == served.endpoint_url and state.pid == os.getpid()
    assert (state.region, state.account, state.stack_name) == ("us-east-1", "123456789012", "sesflow-local")
    assert state.outputs == {k: str(v) for k, v in served.stack.outputs.items()}
    assert state.parameters["FeedbackRoute"] == "sns"
    with urllib.request.urlopen(served.endpoint_url + STATUS_PATH, timeout=2) as response:
        status = json.loads(response.read())
    assert status["pid"] == os.getpid() and "virtual_time" in status


def test_a_second_server_is_refused_while_the_first_is_alive(served):
    with pytest.raises(ServerError, match=r"a local engine is already running at http://127\.0\.0\.1:\d+ \(pid"):
        EngineServer(served.stack, port=0, state_file=served.state_file).start()
    port = int(served.endpoint_url.rsplit(":", 1)[1])
    with pytest.raises(ServerError, match="already running"):  # same port, other folder: found by asking it
        EngineServer(served.stack, port=port, state_file=served.state_file.parent / "other.json").start()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ServerError, match=r"cannot listen on 127\.0\.0\.1:\d+: .*--port"):
            EngineServer(served.stack, port=taken.getsockname()[1], state_file=None).start()


def test_stopping_closes_the_port_and_removes_the_state_file(served, tmp_path):
    state_file = tmp_path / "local.json"
    server = EngineServer(served.stack, port=0, state_file=state_file).start()
    endpoint = server.endpoint_url
    assert resolve_target(None, state_file).endpoint_url == endpoint

    server.stop()

    assert not state_file.exists()
    with pytest.raises(TargetError, match="no local engine is running"):
        resolve_target(None, state_file)
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x", config=boto3.session.Config(retries={"max_attempts": 1},
                                                                                   connect_timeout=1))
    with pytest.raises(Exception, match="Could not connect"):
        client.list_tables()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serving_ends_on_ctrl_c_or_sigterm_and_restores_the_handlers(served, sig):
    before = signal.getsignal(sig)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), sig))
    timer.start()

    served.serve_until_signalled()  # returns instead of dying (SIGTERM) or raising KeyboardInterrupt (SIGINT)

    timer.join()
    assert signal.getsignal(sig) is before


@pytest.mark.slow
def test_local_up_serve_runs_until_ctrl_c_then_cleans_up(tmp_path):
    state_file = tmp_path / "local.json"
    env = dict(os.environ)
    if env.get("PYTHONPATH"):  # the same sesflow as this process (PYTHONPATH=src), from tmp_path too
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep) if p)
    process = subprocess.Popen(
        [sys.executable, "-m", "sesflow.cli", "local", "up", "--template", str(ROOT / "template.yaml"), "--serve",
         "--port", "0", "--state-file", str(state_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    try:
        eventually(lambda: state_file.exists() or process.poll() is not None, timeout=60)
        assert process.poll() is None, process.communicate()
        target = resolve_target(None, state_file)
        assert target.output("RecipientsTableName") in target.client("dynamodb").list_tables()["TableNames"]

        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert f"Serving on {target.endpoint_url}" in out and str(state_file) in out
    # What SES reports back and how time passes, said at startup (the defaults: the demo's population, virtual)
    assert "every other address answers as the demo's population (--feedback default" in out
    assert "Time: virtual (--pace virtual)" in out
    assert "Stopped" in out
    assert not state_file.exists()


def test_local_down_without_an_engine_says_none_is_running(tmp_path, capsys):
    from sesflow.cli import main

    assert main(["local", "down", "--state-file", str(tmp_path / "local.json")]) == 1
    assert f"no local engine is running (no state file at {tmp_path / 'local.json'})" in capsys.readouterr().err


def test_local_down_removes_the_state_file_an_engine_that_stopped_left_and_signals_nobody(tmp_path, capsys):
    from sesflow.cli import main

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    state_file = tmp_path / "local.json"
    state_file.write_text(EngineState(endpoint_url="http://127.0.0.1:9", region="us-east-1", account="1",
                                      stack_name="s", pid=int(ended.stdout), outputs={}).to_json())

    assert main(["local", "down", "--state-file", str(state_file)]) == 1

    assert "no local engine is running (removed" in capsys.readouterr().err and not state_file.exists()


@pytest.mark.slow
def test_local_down_stops_a_served_engine_and_its_state_file_goes(tmp_path, capsys):
    from sesflow.cli import main

    state_file = tmp_path / "local.json"
    env = dict(os.environ)
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep) if p)
    process = subprocess.Popen(
        [sys.executable, "-m", "sesflow.cli", "local", "up", "--template", str(ROOT / "template.yaml"), "--serve",
         "--port", "0", "--state-file", str(state_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    try:
        eventually(lambda: state_file.exists() or process.poll() is not None, timeout=60)
        assert process.poll() is None, process.communicate()
        endpoint = EngineState.read(state_file).endpoint_url

        assert main(["local", "down", "--state-file", str(state_file)]) == 0

        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert f"stopped the local engine at {endpoint} (pid {process.pid})" in capsys.readouterr().out
    assert process.returncode == 0, err
    assert "Stopped; the local stack and everything in it are gone." in out
    assert not state_file.exists()
    assert main(["local", "down", "--state-file", str(state_file)]) == 1  # a second time: nothing to stop
