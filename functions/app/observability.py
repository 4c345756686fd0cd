"""The one place that builds Powertools' logger, tracer and metrics for every handler, and keeps addresses out of
the logs."""

import hashlib

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def redact(address: str) -> str:
    """Addresses never appear in logs: a short stable hash lets an operator correlate lines."""
    return "rcpt-" + hashlib.sha256(address.encode()).hexdigest()[:12]
