"""Frequency cap benchmark: what the per-contact record of marketing sends costs in DynamoDB writes.

    .venv/bin/python benchmarks/frequency_cap.py [--recipients 2000] [--attribute-bytes 100]

Every figure comes from CampaignStateMachine in template.yaml on the embedded engine, its DynamoDB write request
units metered as on-demand capacity bills them (src/sesflow/engine/patches/capacity.py: 1 unit per 1 KB of the
larger of the item before and after; a write whose condition fails still consumes). Prints one JSON document:
RecipientsTable write units per 1,000 recipients, and their price, for each case:

- off: FrequencyCapEmails 0 (the default): nothing is recorded.
- first: the cap on (2 per 7 days), contacts with no record yet: the quick write's condition fails (the map does
  not exist), and the versioned write creates it: two writes per recipient, once per contact.
- steady: a second campaign over the same contacts: one conditional write per recipient.
- at_cap: a third campaign: every contact is at its cap, left out at the snapshot: no write.
- concurrent: two campaigns at once over fresh contacts under a cap of 1, both snapshots before either sends: each
  contact's second reservation fails its condition (a write unit) and is not sent.

--attribute-bytes sets the size of each contact's own attributes (a `profile` string): a contact item of over
1 KB costs two units a write, as DynamoDB bills the whole item, not the attribute written.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from sesflow.engine import pricing
from sesflow.engine.ses import simulator
from sesflow.engine.stack import LocalStack

ROOT = Path(__file__).resolve().parents[1]


def stack_for(emails: int, days: int = 7) -> LocalStack:
    return LocalStack(template_path=ROOT / "template.yaml", ses_identities=("example.com",),
                      parameters={"FrequencyCapEmails": str(emails), "FrequencyCapDays": str(days)},
                      ses_account={"max_send_rate": 1000.0, "max_24h_send": 50_000_000.0, "production_access": True})


def seed(stack: LocalStack, list_name: str, count: int, attribute_bytes: int) -> None:
    """ACTIVE contacts SUBSCRIBED on `list_name`, straight into moto's tables (setup, not metered)."""
    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][stack.region]
    contacts, memberships = stack.outputs["RecipientsTableName"], stack.outputs["MembershipsTableName"]
    for i in range(count):
        address = f"{list_name}{i:07d}@example.org"
        backend.put_item(contacts, {"address": {"S": address}, "status": {"S": "ACTIVE"},
                                    "first_name": {"S": "Ada"}, "profile": {"S": "x" * max(1, attribute_bytes)}})
        backend.put_item(memberships, {"list_id": {"S": list_name}, "address": {"S": address},
                                       "state": {"S": "SUBSCRIBED"}})


def definition(campaign_id: str, list_name: str) -> dict[str, Any]:
    return {"id": campaign_id, "sender": "news@example.com", "audience": {"lists": [list_name]},
            "variants": [{"name": "a", "subject": "News", "text": "Hello {{unsubscribe_url}}"}]}


def measured(stack: LocalStack, campaigns: list[str], list_name: str, recipients: int) -> dict[str, Any]:
    """Run the campaigns at once; RecipientsTable's write units per 1,000 recipients of the audience."""
    stack.meter.reset()
    sent_before = len(simulator().outbox)
    started = time.perf_counter()
    arns = [stack.start("CampaignStateMachine", definition(name, list_name)) for name in campaigns]
    results = [stack.wait(arn, timeout=1800, poll=0.2) for arn in arns]
    assert all(r.status == "SUCCEEDED" for r in results), [(r.error, r.cause) for r in results]
    units = stack.meter.snapshot()["dynamodb_write_units"].get(stack.outputs["RecipientsTableName"], 0)
    price = pricing.PRICES["dynamodb_write"].usd
    return {"campaigns": len(campaigns), "audience": recipients, "emails": len(simulator().outbox) - sent_before,
            "capped_at_send": sum(r.output["accounted"].get("capped", 0) for r in results),
            "recipients_table_write_units": units,
            "write_units_per_1000_recipients": round(1000 * units / (recipients * len(campaigns)), 1),
            "usd_per_million_recipients": round(1e6 * units / (recipients * len(campaigns)) * price, 4),
            "wall_seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=2000)
    parser.add_argument("--attribute-bytes", type=int, default=100)
    args = parser.parse_args()
    n, size = args.recipients, args.attribute_bytes
    out: dict[str, Any] = {"recipients": n, "attribute_bytes": size,
                           "price_per_write_unit": pricing.PRICES["dynamodb_write"].quoted}
    with stack_for(0) as stack:
        seed(stack, "plain", n, size)
        out["off"] = measured(stack, ["off"], "plain", n)
    with stack_for(2) as stack:
        seed(stack, "capped", n, size)
        out["first"] = measured(stack, ["first"], "capped", n)
        out["steady"] = measured(stack, ["steady"], "capped", n)
        out["at_cap"] = measured(stack, ["at-cap"], "capped", n)
    with stack_for(1) as stack:
        seed(stack, "race", n, size)
        import app.handlers.snapshot_audience as snapshot_audience

        barrier, original = threading.Barrier(2, timeout=600), snapshot_audience.lambda_handler

        def both_snapshots_first(event: dict[str, Any], context: Any) -> Any:
            result = original(event, context)
            barrier.wait()
            return result

        snapshot_audience.lambda_handler = both_snapshots_first  # type: ignore[assignment]
        try:
            out["concurrent"] = measured(stack, ["race-a", "race-b"], "race", n)
        finally:
            snapshot_audience.lambda_handler = original  # type: ignore[assignment]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
