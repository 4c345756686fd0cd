"""The one place that builds Powertools' logger, tracer and metrics for every handler, and keeps addresses out of
the logs: handlers log redact(address), never the address; and every line the logger writes goes through scrub, so
an address inside text no handler chose (an exception's message or stack trace, a parse error) is redacted too."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from app.domain.addresses import redact, scrub

__all__ = ["logger", "metrics", "redact", "tracer"]


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON lines, with any address in them redacted (app.domain.addresses.scrub)."""

    def serialize(self, log: dict[str, Any]) -> str:
        return scrub(super().serialize(log))


# Named here, not only in the environment: a module imported before the environment is set (a test, a tool)
# must still log and publish metrics under the right names.
logger = Logger(service="sesflow", logger_formatter=RedactingFormatter())
tracer = Tracer(service="sesflow")
metrics = Metrics(namespace="sesflow", service="sesflow")
