"""The end-to-end tier's target: a deployed stack, or the embedded engine served on loopback, reached the same way.

    make test-aws STACK=sesflow-dev      # a deployed stack, with your usual AWS credentials and region
    pytest tests/e2e                     # no STACK: `sesflow local up --serve` in a subprocess (CI runs this)

Either way the tests get plain boto3 clients built from the environment and find the stack's resources from
CloudFormation's DescribeStacks, as sesflow.target does for `--stack NAME`. Locally the environment is
AWS_ENDPOINT_URL (which boto3 honours for every service: one URL serves them all), dummy credentials and the
engine's region, set for this package's tests only and restored after. With STACK set and no credentials and
no AWS_ENDPOINT_URL, the tests are skipped, saying so.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest

from tests.e2e.deployed import Deployed

ROOT = Path(__file__).resolve().parents[2]
STACK_ENV = "SESFLOW_E2E_STACK"  # set by `make test-aws STACK=NAME`
# Variables that would send the local run elsewhere, or fail it: a profile this machine lacks, a session token
# for other keys, one that makes botocore ignore AWS_ENDPOINT_URL, per-service endpoints that beat it.
_NOT_LOCAL = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
              "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
START_TIMEOUT = 60.0  # seconds for `sesflow local up --serve` to deploy and serve


def _credentials() -> Any:
    try:
        return boto3.Session().get_credentials()
    except botocore.exceptions.BotoCoreError:  # e.g. AWS_PROFILE names a profile this machine lacks
        return None


def _serve(folder: Path) -> tuple[subprocess.Popen, dict[str, Any]]:
    """`sesflow local up --serve` on a free loopback port; returns the process and its state file's contents."""
    state_file = folder / "local.json"
    env = {k: v for k, v in os.environ.items() if k not in _NOT_LOCAL and not k.startswith("AWS_ENDPOINT_URL")}
    if env.get("PYTHONPATH"):  # the same sesflow as this process (PYTHONPATH=src), from the server's folder too
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) for p in env["PYTHONPATH"].split(os.pathsep) if p)
    out, err = (folder / "server.out").open("w"), (folder / "server.err").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "sesflow.cli", "local", "up", "--template", str(ROOT / "template.yaml"), "--serve",
         "--port", "0", "--state-file", str(state_file)],
        stdout=out, stderr=err, text=True, cwd=folder, env=env)
    deadline = time.monotonic() + START_TIMEOUT
    while not state_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            raise RuntimeError(f"sesflow local up --serve did not start (exit {process.returncode}):\n"
                               f"{(folder / 'server.err').read_text()[-3000:]}")
        time.sleep(0.1)
    return process, json.loads(state_file.read_text())


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # what Ctrl-C does: the server stops and removes its state file
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    name = os.environ.get(STACK_ENV, "").strip()
    process = None
    with pytest.MonkeyPatch.context() as env:
        try:
            if name:
                if not os.environ.get("AWS_ENDPOINT_URL") and _credentials() is None:
                    pytest.skip(f"{STACK_ENV}={name}: no AWS credentials (set AWS_PROFILE or run `aws configure`) "
                                f"and no AWS_ENDPOINT_URL, so no stack to test")
                if _credentials() is None:  # an endpoint such as a running `sesflow local up --serve`: any keys
                    env.setenv("AWS_ACCESS_KEY_ID", "sesflow-e2e")
                    env.setenv("AWS_SECRET_ACCESS_KEY", "sesflow-e2e")
            else:
                process, state = _serve(tmp_path_factory.mktemp("e2e-engine"))
                name = state["stack_name"]
                for variable in [v for v in os.environ if v in _NOT_LOCAL or v.startswith("AWS_ENDPOINT_URL_")]:
                    env.delenv(variable)
                env.setenv("AWS_ENDPOINT_URL", state["endpoint_url"])
                env.setenv("AWS_ACCESS_KEY_ID", "sesflow-e2e")
                env.setenv("AWS_SECRET_ACCESS_KEY", "sesflow-e2e")
                env.setenv("AWS_DEFAULT_REGION", state["region"])
                env.setenv("AWS_REGION", state["region"])
                env.setenv("AWS_CONFIG_FILE", os.devnull)
                env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
            session = boto3.Session()
            if not session.region_name:
                pytest.skip(f"{STACK_ENV}={name}: no AWS region (set AWS_DEFAULT_REGION or a region in your profile)")
            described = session.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
            yield Deployed(
                name=name, region=session.region_name, session=session, local=process is not None,
                outputs={o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs") or []},
                parameters={p["ParameterKey"]: p.get("ResolvedValue", p.get("ParameterValue", ""))
                            for p in described.get("Parameters") or []})
        finally:
            if process is not None:
                _stop(process)
