"""Fixtures of the engine's Step Functions tests: moto with the engine's patches, executing state machines on a
fresh Runtime (virtual clock and meter) for each test."""

import boto3
import pytest
from moto import mock_aws

from sesflow.engine import runtime
from sesflow.engine.patches import sfn

REGION = "us-east-1"
BUCKET = "sesflow-test"
EXECUTING = {"stepfunctions": {"execute_state_machine": True}}


@pytest.fixture
def engine():
    sfn.install()
    active = runtime.activate(runtime.Runtime())
    try:
        with mock_aws(config=EXECUTING):
            yield active
    finally:
        runtime.deactivate()


@pytest.fixture
def client(engine):
    return boto3.client("stepfunctions", region_name=REGION)


@pytest.fixture
def bucket(engine):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    return s3
