"""Send windows' cost in state transitions: the same campaign over three time zones (New York, Paris, Tokyo, and
contacts without a zone, sent in Paris's), started on a Monday at 05:00 UTC with a Monday-to-Friday 09:00-18:00
window (Tokyo open, Paris and New York not yet), and without a window, at each audience size; run on the engine.

    .venv/bin/python benchmarks/send_windows.py [--recipients 500 2000]

Prints one JSON document: per run the parent's history events, the Standard and EXPRESS state transitions and
executions, and the window's extra Standard transitions per zone (window minus no window, over the three zones).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from sesflow.engine.ses import simulator
from sesflow.engine.stack import LocalStack

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
ZONES = ("America/New_York", "Europe/Paris", "Asia/Tokyo", None)
WINDOW = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00", "time_zone": "Europe/Paris"}


def run(recipients: int, window: dict[str, Any] | None) -> dict[str, Any]:
    with LocalStack(template_path=ROOT / "template.yaml", ses_identities=("example.com",), start_time=START) as stack:
        simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)
        for name in ("bench-a", "bench-b"):
            stack.client("sesv2").create_email_template(TemplateName=name, TemplateContent={
                "Subject": name, "Text": "Hello {{unsubscribe_url}}"})
        backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][stack.region]
        for i in range(recipients):
            address, zone = f"r{i:06d}@example.org", ZONES[i % len(ZONES)]
            backend.put_item(stack.outputs["RecipientsTableName"], {
                "address": {"S": address}, "status": {"S": "ACTIVE"}, **({"time_zone": {"S": zone}} if zone else {})})
            backend.put_item(stack.outputs["MembershipsTableName"], {
                "list_id": {"S": "world"}, "address": {"S": address}, "state": {"S": "SUBSCRIBED"}})
        definition = {"id": "bench", "sender": "news@example.com", "audience": {"lists": ["world"]},
                      "variants": [{"name": "a", "template": "bench-a"}, {"name": "b", "template": "bench-b"}],
                      **({"send_window": window} if window else {})}
        result = stack.run("CampaignStateMachine", definition, timeout=1200, poll=0.2)
        meter = stack.runtime.meter.snapshot()
        kinds: dict[str, dict[str, int]] = {"transitions": {}, "executions": {}}
        for key in kinds:
            for name, count in meter[key].items():
                kind = name.rsplit("/", 1)[1]
                kinds[key][kind] = kinds[key].get(kind, 0) + count
        return {"recipients": recipients, "window": window is not None, "status": result.status,
                "emails": len(simulator().outbox), "parent_history_events": result.history_events,
                "transitions": kinds["transitions"], "executions": kinds["executions"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, nargs="+", default=[500, 2_000])
    args = parser.parse_args()
    runs, per_zone = [], {}
    for count in args.recipients:
        plain, windowed = run(count, None), run(count, WINDOW)
        runs += [plain, windowed]
        extra = windowed["transitions"].get("STANDARD", 0) - plain["transitions"].get("STANDARD", 0)
        per_zone[count] = round(extra / 3, 1)
    print(json.dumps({"runs": runs, "window_standard_transitions_per_zone": per_zone}, indent=2))
    raise SystemExit(0 if all(r["status"] == "SUCCEEDED" for r in runs) else 1)


if __name__ == "__main__":
    main()
