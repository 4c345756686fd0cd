"""The engine's pieces together: a Lambda task, an optimized DynamoDB write, a 3-day Wait, a Distributed
Map over an S3 manifest and a nested execution, from a template, on the virtual clock."""

import time
from datetime import timedelta

import pytest

from sesflow.engine.stack import LocalStack
from tests.conftest import ROOT


@pytest.fixture
def probe():
    with LocalStack(template_path=ROOT / "tests" / "workflow" / "probe" / "template.yaml") as up:
        yield up


def test_probe_workflow_succeeds_with_every_capability_together(probe):
    started_virtual = probe.clock.now()
    started_wall = time.perf_counter()

    result = probe.run("ProbeStateMachine", {"count": 20}, name="probe-run-1")

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.output == {"total": sum(i * i for i in range(1, 21)), "items": 20}
    item = probe.client("dynamodb").get_item(TableName=probe.physical_id("Table"), Key={"pk": {"S": "probe-run-1"}})
    assert item["Item"]["items"] == {"N": "20"}
    assert probe.clock.now() - started_virtual >= timedelta(days=3)
    assert time.perf_counter() - started_wall < 60  # the Wait did not really sleep 3 days
    assert result.history_events < 100  # Distributed Map items run as child executions, not in this history
    counts = probe.meter.snapshot()
    assert counts["lambda_invocations"][probe.physical_id("SquareFunction")] == 20
    children = f"{probe.physical_id('ProbeStateMachine').rsplit(':', 1)[1]}/SquareEach/EXPRESS"
    assert counts["executions"][children] == 20  # each item a child execution, billed as EXPRESS
    assert counts["transitions"][children] == 20


def test_distributed_map_keeps_parent_history_constant_when_items_grow(probe):
    small = probe.run("ProbeStateMachine", {"count": 5})
    large = probe.run("ProbeStateMachine", {"count": 200})
    assert small.status == large.status == "SUCCEEDED"
    assert large.history_events == small.history_events
