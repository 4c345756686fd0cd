"""Powertools metrics switched off locally, and kept off.

The engine sets POWERTOOLS_METRICS_DISABLED (the console stays quiet, as with `sam local --env-vars`). With it,
Powertools 3.37's `flush_metrics` neither prints nor clears, so the metric set, shared by every function in the
engine's one process, grows with each invocation until `add_metric` reaches 100 values and prints it anyway:
the default demo put four EMF documents of a few kilobytes each in the middle of its output. Here a flush with
metrics disabled clears the set, as a flush that printed would.
"""

from __future__ import annotations

import inspect
from functools import wraps
from typing import Any

from aws_lambda_powertools.metrics.provider.cloudwatch_emf import cloudwatch
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from sesflow.engine.patches import MotoDriftError

_MARKER = "elif not is_metrics_disabled():"
_WRAPPED = "_sesflow_clears_when_disabled"


def install() -> None:
    original = AmazonCloudWatchEMFProvider.flush_metrics
    if getattr(original, _WRAPPED, False):
        return
    if _MARKER not in inspect.getsource(original) or not hasattr(cloudwatch, "is_metrics_disabled"):
        raise MotoDriftError("aws_lambda_powertools AmazonCloudWatchEMFProvider.flush_metrics changed how it "
                             "skips disabled metrics; re-check patches/powertools_metrics.py")

    @wraps(original)
    def flush_metrics(self: AmazonCloudWatchEMFProvider, raise_on_empty_metrics: bool = False) -> Any:
        if cloudwatch.is_metrics_disabled():
            self.clear_metrics()
            return None
        return original(self, raise_on_empty_metrics=raise_on_empty_metrics)

    setattr(flush_metrics, _WRAPPED, True)
    AmazonCloudWatchEMFProvider.flush_metrics = flush_metrics  # type: ignore[method-assign]
