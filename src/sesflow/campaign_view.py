"""One reader of a campaign for the commands that show one (`campaign status`, `campaign watch`, the report):
its control item and counters as app.campaign_control reads them, with the JSON fields parsed once.

    view = read_campaign(target, "spring-sale")   # None: no such campaign on the target (yet)
    view.definition["variants"], view.audience.get("recipients"), view.halt, view.failure, view.history

A field that is absent, or that does not parse as JSON, reads as None (an object field) or [] (history): a
campaign written by an older deployment still shows what it has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sesflow.target import Target


def _json(value: Any) -> Any:
    if not isinstance(value, str):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def _strings(value: Any) -> list[str]:
    """A DynamoDB list of strings as read() gives it ([{"S": ...}, ...]), as plain strings."""
    return [e.get("S") if isinstance(e, dict) else e for e in value] if isinstance(value, list) else []


@dataclass(frozen=True)
class CampaignView:
    campaign_id: str
    item: dict[str, Any]  # the control item's plain values, as app.campaign_control.read gives them
    stats: dict[str, int]  # the counters item: sent, hard_bounces, complaints, ..., name#variant
    settings: Any  # the Lambda code's Settings on the target (for the readers that go further: sends, observed)
    definition: dict[str, Any] = field(default_factory=dict)
    audience: dict[str, Any] = field(default_factory=dict)  # the frozen snapshot (SnapshotAudienceResult)
    halt: dict[str, Any] | None = None  # the current halt (a resume removes it; history keeps every one)
    failure: dict[str, Any] | None = None  # the SES error that stopped the send: code, message, batch, ...
    decision: dict[str, Any] | None = None  # test-then-winner's decision
    bandit_rounds: list[dict[str, Any]] = field(default_factory=list)  # a bandit's reweightings, round 2 first
    deferral: dict[str, Any] | None = None  # the wait for the send rate or the daily quota, while it lasts
    history: list[dict[str, Any]] = field(default_factory=list)  # every start, halt, pause, ..., oldest first
    warnings: dict[str, Any] = field(default_factory=dict)  # warned_<metric>: the breaker's warn verdicts

    @property
    def status(self) -> str:
        return str(self.item.get("status") or "?")

    @property
    def variants(self) -> list[str]:
        return [str(v.get("name")) for v in self.definition.get("variants", []) if isinstance(v, dict)]


def read_campaign(target: Target, campaign_id: str) -> CampaignView | None:
    """The campaign `campaign_id` on `target`, or None when it has no control item."""
    settings = target.lambda_settings()
    from app import campaign_control

    item, stats = campaign_control.read(campaign_id, settings)
    if not item:
        return None
    return CampaignView(
        campaign_id=campaign_id, item=item, stats=stats, settings=settings,
        definition=_json(item.get("definition")) or {},
        audience=_json(item.get("audience")) or {},
        halt=_json(item.get("halt")),
        failure=_json(item.get("failure")),
        decision=_json(item.get("decision")),
        bandit_rounds=[entry for entry in (_json(e) for e in _strings(item.get(campaign_control.BANDIT_ROUNDS)))
                       if isinstance(entry, dict)],
        deferral=_json(item.get("deferral")),
        history=campaign_control.history(item),
        warnings={k: _json(v) for k, v in item.items() if k.startswith("warned_")},
    )
