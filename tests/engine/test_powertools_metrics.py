"""patches/powertools_metrics.py: with metrics disabled (as the engine runs every function), nothing piles up
across invocations and nothing reaches the console."""

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from sesflow.engine.patches import powertools_metrics


def invoke_150_times() -> Metrics:
    metrics = Metrics(namespace="test", service="test")

    @metrics.log_metrics
    def handler(event, context):
        metrics.add_metric(name="EmailsSent", unit="Count", value=50)

    for _ in range(150):
        handler({}, None)
    return metrics


@pytest.fixture
def disabled(monkeypatch):
    powertools_metrics.install()
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    yield monkeypatch
    Metrics(namespace="test", service="test").clear_metrics()  # the metric set is shared by every instance


def test_disabled_metrics_print_nothing_and_keep_nothing_after_150_invocations(disabled, capsys):
    metrics = invoke_150_times()

    assert capsys.readouterr().out == ""
    assert metrics.metric_set == {}


@pytest.mark.filterwarnings("ignore:No application metrics")
def test_without_the_patch_powertools_prints_the_piled_up_set_at_the_100th_value(disabled, capsys):
    unpatched = AmazonCloudWatchEMFProvider.flush_metrics.__wrapped__
    disabled.setattr(AmazonCloudWatchEMFProvider, "flush_metrics", unpatched)

    metrics = invoke_150_times()

    assert capsys.readouterr().out.count('"_aws"') == 1  # one EMF document: what the demo showed
    assert len(metrics.metric_set["EmailsSent"]["Value"]) == 50


def test_enabled_metrics_are_flushed_once_per_invocation_as_on_lambda(capsys, monkeypatch):
    powertools_metrics.install()
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)

    invoke_150_times()

    assert capsys.readouterr().out.count('"_aws"') == 150
