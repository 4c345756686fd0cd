"""Shared fixtures: the project stack on the embedded engine, up for one test and down after."""

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
