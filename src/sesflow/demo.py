"""`sesflow demo`: a real campaign on the embedded engine, from template.yaml and events/campaign/.

Seeds an audience (mostly ACTIVE, some on probation in RECOVERY, some QUARANTINED or SUPPRESSED that must
get nothing), creates the SES templates the campaign's variants name, runs CampaignStateMachine and
checks the outcome against the simulated SES outbox: who got what, nobody twice, nobody unaccounted for.
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sesflow.engine import pricing
from sesflow.engine.ses import simulator
from sesflow.engine.stack import LocalStack

STATUS_MIX = (("ACTIVE", 0.90), ("RECOVERY", 0.04), ("QUARANTINED", 0.03), ("SUPPRESSED", 0.03))


def seed_audience(stack: LocalStack, list_id: str, recipients: int, rng: random.Random) -> dict[str, str]:
    statuses = {}
    table = stack.client("dynamodb")
    names, weights = zip(*STATUS_MIX, strict=True)
    requests = []
    for i in range(recipients):
        address = f"recipient{i:06d}@example.org"
        statuses[address] = rng.choices(names, weights)[0]
        requests.append({"PutRequest": {"Item": {
            "address": {"S": address}, "list_id": {"S": list_id}, "status": {"S": statuses[address]}}}})
    table_name = stack.outputs["RecipientsTableName"]
    for start in range(0, len(requests), 25):  # BatchWriteItem's limit
        table.batch_write_item(RequestItems={table_name: requests[start : start + 25]})
    return statuses


def run_demo(campaign_file: Path, recipients: int = 1_000, seed: int = 1, template: Path = Path("template.yaml"),
             ) -> dict[str, Any]:
    definition = json.loads(campaign_file.read_text())
    rng = random.Random(seed)
    started = time.perf_counter()
    # The handlers' logs and Powertools' metric lines go to stderr: stdout is the summary's alone (--json).
    sender_domain = definition["sender"].split("@")[1]
    with contextlib.redirect_stdout(sys.stderr), LocalStack(template_path=template,
                                                            ses_identities=(sender_domain,)) as stack:
        # A production account's quota (the sandbox's 1/s would make a long demo); the rate governor paces
        # every send under it, and SES's per-second limit is enforced.
        simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)
        statuses = seed_audience(stack, definition["audience"]["list_id"], recipients, rng)
        for variant in definition["variants"]:
            stack.client("sesv2").create_email_template(TemplateName=variant["template"], TemplateContent={
                "Subject": f"{definition.get('name', definition['id'])} ({variant['name']})",
                "Text": "Hello {{name}}", "Html": "<p>Hello {{name}}</p>"})
        virtual_start = stack.clock.now()
        stack.meter.reset()  # the campaign's counts, not the seeding's
        result = stack.run("CampaignStateMachine", definition, name=f"{definition['id']}-demo")
        outbox = list(simulator().outbox)
        per_recipient = Counter(address for message in outbox for address in message.to)
        eligible = {a for a, s in statuses.items() if s in ("ACTIVE", "RECOVERY")}
        summary = {
            "campaign_id": definition["id"],
            "status": result.status,
            "error": result.error,
            "recipients_by_state": dict(sorted(Counter(statuses.values()).items())),
            "emails_sent": len(outbox),
            "emails_by_variant": dict(sorted(Counter(m.tags.get("variant") for m in outbox).items())),
            "holdout": (result.output or {}).get("holdout"),
            "duplicates": sum(n - 1 for n in per_recipient.values() if n > 1),
            "sent_to_ineligible": len(set(per_recipient) - eligible),
            "unaccounted": len(eligible) - len(per_recipient) - ((result.output or {}).get("holdout") or 0),
            "parent_history_events": result.history_events,
            "virtual_seconds": round((stack.clock.now() - virtual_start).total_seconds(), 3),
            "wall_seconds": round(time.perf_counter() - started, 2),
            "counts": stack.meter.snapshot(),
        }
        architectures = pricing.lambda_architectures(stack.template)
    # Per 1M emails, from what the engine counted during the campaign (SES's own price apart).
    summary["cost"] = pricing.cost_summary(pricing.cost_breakdown(
        summary["counts"], emails=max(1, summary["emails_sent"]), lambda_architectures=architectures, label="demo"))
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    print(f"Campaign {summary['campaign_id']}: {summary['status']}"
          + (f" ({summary['error']})" if summary["error"] else ""))
    print(f"  audience by state   {summary['recipients_by_state']}")
    print(f"  emails sent         {summary['emails_sent']}  by variant {summary['emails_by_variant']}")
    print(f"  holdout             {summary['holdout']} (recorded, not sent)")
    print(f"  duplicates          {summary['duplicates']}   sent to ineligible {summary['sent_to_ineligible']}"
          f"   unaccounted {summary['unaccounted']}")
    counts = summary["counts"]
    print(f"  parent history      {summary['parent_history_events']} events")
    print(f"  state transitions   {sum(counts['transitions'].values())}   lambda invocations "
          f"{sum(counts['lambda_invocations'].values())}   api calls {sum(counts['api_calls'].values())}")
    print(f"  time                {summary['wall_seconds']} s wall, {summary['virtual_seconds']} s virtual")
    cost = summary["cost"]
    print(f"  cost per 1M emails  ${cost['total_usd_per_1M_emails']:.2f} orchestration and feedback"
          f" (+ ${cost['ses_usd_per_1M_emails']:.2f} SES)  by part {cost['by_part_usd']}")
