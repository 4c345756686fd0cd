"""The stack the end-to-end tests act on (conftest.py's `deployed` fixture finds it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Deployed:
    """The stack under test: its name, outputs and parameters (from DescribeStacks) and a session to reach it."""

    name: str
    region: str
    outputs: dict[str, str]
    parameters: dict[str, str]
    session: Any = field(repr=False)
    local: bool  # the engine served by this test run, whose Wait states run on a virtual clock
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def client(self, service: str) -> Any:
        """One client per service (building one takes tens of milliseconds; they are safe to share)."""
        if service not in self._clients:
            self._clients[service] = self.session.client(service)
        return self._clients[service]

    @property
    def sender(self) -> str:
        """An address of the stack's verified SES identity (SenderIdentity: a domain or an address)."""
        identity = self.parameters.get("SenderIdentity") or "example.com"
        return identity if "@" in identity else f"sesflow-e2e@{identity}"
