"""Shared fixtures: the project stack on the embedded engine, up for one test and down after."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sesflow.engine.stack import LocalStack

ROOT = Path(__file__).resolve().parents[1]
SENDER_DOMAIN = "example.com"


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    """template.yaml deployed into moto, with the sender's domain verified in the simulated SES."""
    with LocalStack(template_path=ROOT / "template.yaml", ses_identities=(SENDER_DOMAIN,)) as up:
        yield up


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """Every test starts with no cached Lambda-code clients and leaves os.environ as it found it: an operator
    command run in-process (Target.apply_env) points AWS_ENDPOINT_URL at its engine, and the clients app.clients
    caches meanwhile (a served engine's Lambdas run in this process too) would call a server that has stopped."""
    from app import clients
    from app.handlers import send_batch

    def forget() -> None:  # what a warm Lambda keeps: its clients, and SendBatch's governor (which holds two)
        clients.forget()
        send_batch._governor = None

    saved = dict(os.environ)
    forget()
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)
    forget()
