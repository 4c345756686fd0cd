"""AWS clients built on first use and cached, so importing a handler has no side effects."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config


@cache
def client(service: str) -> Any:
    return boto3.client(service)


@cache
def client_without_retries(service: str) -> Any:
    """For a call that must not be repeated blindly (SendBulkEmail: after a 5xx or a timeout SES may have sent)."""
    return boto3.client(service, config=Config(retries={"total_max_attempts": 1}))


@cache
def table(name: str) -> Any:
    return boto3.resource("dynamodb").Table(name)


def forget() -> None:
    """Drop every cached client: the next call builds them again from the environment as it is then (an operator
    command that has just pointed the environment at another stack)."""
    for cached in (client, client_without_retries, table):
        cached.cache_clear()
