"""`sesflow demo`: real campaigns on the embedded engine, from template.yaml, events/campaign/ and templates/.

One audience (list "newsletter", default 10,000 recipients) and two scenarios, run in this order:

- winner: events/campaign/newsletter_test_then_winner.json. A test cohort gets both subject lines, the 4-hour
  evaluation window passes on the virtual clock while the feedback comes in, the workflow picks the better
  click rate (a two-proportion test) and sends it to everyone else.
- spike: two days later, events/campaign/flash_sale.json. Its "urgent" subject line offends: complaints arrive
  while it sends, the breaker halts it mid-send; the operator raises the complaint threshold and resumes it,
  and the rest are sent, nobody twice.

The audience is mostly ACTIVE, with some on probation (RECOVERY) and some QUARANTINED or SUPPRESSED who must
get nothing, plus the SES mailbox simulator's addresses (engine/feedback_model.py gives each the behaviour AWS
documents). Everyone else answers as a population (POPULATION: per-variant open, click, bounce and complaint
rates); some of them soft bounce once and recover, so the two days between the campaigns take them through
quarantine to probation, and the flash sale's delivery makes them ACTIVE again. SES's feedback goes through
the real path: configuration set -> SNS -> FeedbackQueue -> IngestFeedbackFunction -> breaker and lifecycle.

Each campaign is checked against the simulated SES outbox (nobody twice, nobody unaccounted for) and
reported (sesflow/report.py: an HTML page and a table). --seed makes a run reproducible.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from sesflow import template_cli
from sesflow.engine import pricing
from sesflow.engine.feedback_model import SIMULATOR_ADDRESSES, SIMULATOR_DOMAIN, FeedbackModel, Rates
from sesflow.engine.patches import lambda_bridge
from sesflow.engine.ses import SentEmail, simulator
from sesflow.engine.stack import LocalStack
from sesflow.target import Target

SCENARIOS = {
    "winner": Path("events/campaign/newsletter_test_then_winner.json"),
    "spike": Path("events/campaign/flash_sale.json"),
}
TEMPLATES = Path("templates")  # the campaigns' stored templates (sesflow template push)
LIST_ID = "newsletter"
# Who is on the list, by lifecycle state, before the first campaign.
# The list as a team brings it: its contacts, and the suppression list of the provider it leaves (2.5%).
STATUS_MIX = (("ACTIVE", 0.975), ("SUPPRESSED", 0.025))
# The population's answer to each email (engine/feedback_model.Rates), and per variant where it differs: the
# teaser draws more clicks; the urgent flash-sale subject draws complaints (1%, over ten times the halt level).
# Machines too: Apple Mail Privacy Protection's proxy opens 10% of the delivered messages, and a mail security
# gateway opens and clicks the links of 2% seconds after delivery; the report counts them as machine opens and
# clicks, and the A/B decision compares people only.
POPULATION = Rates(hard_bounce=0.004, soft_bounce=0.002, open=0.22, click=0.02, complaint=0.0001, proxy=0.1,
                   scanner=0.02)
VARIANTS = {"teaser": {"open": 0.28, "click": 0.04}, "urgent": {"complaint": 0.01}}
RECOVERING = 0.005  # soft bounce their first email (mailbox full), then deliver
# What the operator does after the halt: raises the complaint levels for this campaign, then resumes it.
RAISED_COMPLAINT = {"warn": 0.01, "halt": 0.02}
# First names on file for most of the population; the others get the campaign's default ("there").
FIRST_NAMES = ("Ada", "Grace", "Alan", "Katherine", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances")
NAMED = 0.8
DAYS_BETWEEN = 2  # quarantine's first rest is a day: the recovering addresses are on probation by the flash sale


def population(seed: int, deferred: bool = False) -> FeedbackModel:
    """The demo's population; also what `sesflow local up --serve` answers with by default (`--feedback default`,
    deferred: published by the server's queue pump after the send).

    The demo's is not deferred: each message's events are in the feedback queue when SES accepts it, and the
    poller thread only ingests. (Deferred, the one poller both publishes and ingests, and on the engine's one
    interpreter ingestion trails the send: the breaker would learn of the complaints after the campaign ended.)"""
    return FeedbackModel(seed=seed, rates=POPULATION, variants=VARIANTS, recovering=RECOVERING, deferred=deferred)


def audience(recipients: int, seed: int) -> dict[str, str]:
    """address -> lifecycle status: one of each mailbox simulator address (ACTIVE; more would be a real list's
    share of complaints many times over), then a population drawn by the seed."""
    rng = random.Random(seed)
    statuses = {f"{kind}@{SIMULATOR_DOMAIN}": "ACTIVE" for kind in SIMULATOR_ADDRESSES}
    names, weights = zip(*STATUS_MIX, strict=True)
    for i in range(recipients - len(statuses)):
        statuses[f"recipient{i:06d}@example.org"] = rng.choices(names, weights)[0]
    return statuses


def first_names(statuses: dict[str, str], seed: int) -> dict[str, str]:
    """address -> first name, for the population's named share (not the simulator addresses)."""
    rng = random.Random(f"names\x00{seed}")
    return {a: rng.choice(FIRST_NAMES) for a in statuses
            if not a.endswith("@" + SIMULATOR_DOMAIN) and rng.random() < NAMED}


def seed_audience(stack: LocalStack, statuses: dict[str, str], names: dict[str, str],
                  folder: Path) -> dict[str, Any]:
    """The audience as a team loads its own: a CSV of its contacts (email, first_name) imported into the list by
    `sesflow contacts import`'s code, and the old provider's suppression list (a CSV of addresses) by `sesflow
    suppression import`'s, both through the stack's own tables. Returns the import's summary."""
    from sesflow import contacts_cli, suppression_cli

    folder.mkdir(parents=True, exist_ok=True)
    people, suppressed = folder / "contacts.csv", folder / "suppressed-by-the-old-provider.csv"
    with open(people, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "first_name"])
        writer.writerows([address, names.get(address, "")] for address in statuses)
    with open(suppressed, "w", encoding="utf-8", newline="") as out:
        out.write("email\n" + "".join(f"{a}\n" for a, status in statuses.items() if status == "SUPPRESSED"))
    target = Target(name="demo", region=stack.region, outputs=stack.outputs)
    saved = dict(os.environ)
    try:
        tally = suppression_cli.import_file(target, str(suppressed), "suppressed by the previous provider",
                                            actor="operator:demo")
        summary = contacts_cli.import_file(str(people), LIST_ID, contacts_cli._code(target), actor="operator:demo")
    finally:  # the stack's own environment back (a Target sets the Lambda code's)
        os.environ.clear()
        os.environ.update(saved)
    summary["suppressions_loaded"] = len(tally.created)
    return summary


def states(stack: LocalStack) -> dict[str, int]:
    """The list's recipients by lifecycle status, now."""
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][stack.region].get_table(stack.outputs["RecipientsTableName"])
    return dict(sorted(Counter(item.attrs["status"].value for item in table.all_items()).items()))


def simulator_outcomes(stack: LocalStack) -> dict[str, dict[str, int]]:
    """Where each kind of mailbox simulator address ended up: e.g. bounce -> SUPPRESSED, success -> ACTIVE."""
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][stack.region].get_table(stack.outputs["RecipientsTableName"])
    found: dict[str, Counter[str]] = {kind: Counter() for kind in SIMULATOR_ADDRESSES}
    for item in table.all_items():
        address = item.attrs["address"].value
        if address.endswith("@" + SIMULATOR_DOMAIN):
            found[address.partition("@")[0].partition("+")[0]][item.attrs["status"].value] += 1
    return {kind: dict(counter) for kind, counter in found.items()}


def condition_held(raw: dict[str, Any], outbox: list[SentEmail], model: FeedbackModel) -> int | None:
    """After how many of these emails the breaker's halt condition held, had every complaint been known the moment
    its email was sent (the model says who complains): the ideal a halt is measured against."""
    from app.campaign_breaker import verdict
    from app.domain.campaign import parse_campaign

    campaign, stats = parse_campaign(raw), Counter()
    for count, message in enumerate(outbox, start=1):
        variant = message.tags["variant"]
        stats["sent"] += 1
        stats[f"sent#{variant}"] += 1
        if any(r["eventType"] == "Complaint" for r in model.records_for(message)):
            stats["complaints"] += 1
            stats[f"complaints#{variant}"] += 1
        if verdict(campaign, stats).halted:
            return count
    return None


def rest_quarantined(stack: LocalStack, days: float) -> int:
    """Move the virtual clock `days` on, once every quarantine episode the feedback started is waiting out its
    rest (the Wait must have begun for the clock to end it), then wait for each episode whose rest is over to
    put its recipient on probation, as two days would on AWS: the next campaign's snapshot must not race them.
    Returns how many episodes there are."""
    stack.deliver_queues()  # the last campaign's feedback: its soft bounces start the episodes
    sfn, machine = stack.client("stepfunctions"), stack.outputs["RecipientLifecycleStateMachineArn"]
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][stack.region].get_table(stack.outputs["RecipientsTableName"])
    running = [e for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine,
                                                                           statusFilter="RUNNING")
               for e in page["executions"]]
    # on time or not, the clock moves on
    _wait_for(lambda: len(running) - sum(1 for item in table.all_items() if _resting(item.attrs)))
    stack.clock.advance(timedelta(days=days).total_seconds())
    now = stack.clock.now()
    if over := _wait_for(lambda: sum(1 for item in table.all_items() if _rest_over(item.attrs, now))):
        raise RuntimeError(f"{over} quarantine episodes did not put their recipients on probation within 120 s "
                           f"of their rest ending; see RecipientLifecycleStateMachine's executions")
    return len(running)


def _wait_for(remaining: Callable[[], int], seconds: float = 120) -> int:
    """Poll `remaining` until it is 0 or `seconds` have passed; returns what was left."""
    deadline = time.monotonic() + seconds
    while (left := remaining()) > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    return max(left, 0)


def _resting(attrs: dict[str, Any]) -> bool:
    """QUARANTINED with its episode waiting on a task token."""
    return attrs["status"].value == "QUARANTINED" and "episode_token" in attrs


def _rest_over(attrs: dict[str, Any], now: datetime) -> bool:
    """Resting, though the rest ended (the episode's timeout is in whole seconds)."""
    if not _resting(attrs) or "quarantined_until" not in attrs:
        return False
    return datetime.fromisoformat(attrs["quarantined_until"].value) + timedelta(seconds=1) <= now


def check(stack: LocalStack, campaign_id: str) -> dict[str, Any]:
    """The campaign against the SES outbox: emails sent (rendered) per variant, duplicates, everyone accounted
    for, and the Rendering Failures SES published that the campaign's counters took in."""
    from sesflow.campaign_cli import _modules

    accepted = [m for m in simulator().outbox if m.tags.get("campaign") == campaign_id]
    emails = [m for m in accepted if m.rendering_failure is None]  # what SES sent: the rest it dropped
    per_recipient = Counter(address for m in accepted for address in m.to)
    audience = json.loads(_control_item(stack, campaign_id)["audience"]["S"])  # the snapshot's own counts
    app = _modules(_target(stack))
    accounted = app["sends"].summary(campaign_id, app["settings"], audience=audience["recipients"])
    stack.deliver_queues()  # the campaign's last events, into its counters
    _, counters = app["control"].read(campaign_id, app["settings"])
    return {
        "emails_sent": len(emails),
        "emails_by_variant": dict(sorted(Counter(m.tags.get("variant") for m in emails).items())),
        "holdout": audience["holdout"],
        "eligible_at_snapshot": audience["recipients"] + audience["holdout"],
        "duplicates": sum(n - 1 for n in per_recipient.values() if n > 1),
        # Accepted, then dropped by SES, which published a Rendering Failure through the configuration set (the
        # template named a variable its data lacked), as ingestion counted them. Must be 0.
        "rendering_failures": int(counters.get("rendering_failures", 0)),
        # Not accepted by SES, and neither refused by SES nor stopped before sending: must be 0.
        "unaccounted": audience["recipients"] - len(per_recipient) - accounted["failed"] - accounted["not_sent"],
        "accounted": accounted,
    }


@contextlib.contextmanager
def _emails_at_trip(stack: LocalStack, campaign_id: str) -> Any:
    """Yields a list that gets the campaign's email count in SES's outbox when its breaker trips (the HALTED write
    that wins): what goes out after it is the halt's overshoot, at most one SES call per in-flight batch."""
    lambda_bridge.function(stack.physical_id("SendBatchFunction")).load()  # the Lambda code, imported as Lambda does
    from app import campaign_breaker

    at_trip: list[int] = []
    original = campaign_breaker.halt

    def halt(halted_id: str, found: Any, settings: Any) -> bool:
        tripped = original(halted_id, found, settings)
        if tripped and halted_id == campaign_id:
            at_trip.append(sum(1 for m in simulator().outbox if m.tags.get("campaign") == campaign_id))
        return tripped

    campaign_breaker.halt = halt
    try:
        yield at_trip
    finally:
        campaign_breaker.halt = original


def run_scenario(stack: LocalStack, scenario: str, definition: dict[str, Any], model: FeedbackModel,
                 ) -> dict[str, Any]:
    """One campaign to its end. A halt is reported with the emails sent after its condition held; in the spike
    scenario the operator then raises the complaint levels and resumes it."""
    started, virtual = time.perf_counter(), stack.clock.now()
    with _emails_at_trip(stack, definition["id"]) as at_trip:
        runs = [stack.run("CampaignStateMachine", definition, name=f"{definition['id']}-demo", timeout=1800,
                          poll=0.2)]
    halt = None
    if (runs[0].status, runs[0].error) == ("FAILED", "CampaignHalted"):
        stack.deliver_queues()
        tripped = json.loads(_control_item(stack, definition["id"])["halt"]["S"])  # the breaker's numbers, when
        sent = [m for m in simulator().outbox if m.tags.get("campaign") == definition["id"]
                and m.rendering_failure is None]
        held = condition_held(definition, sent, model)
        halt = {"reason": tripped.get("reason"), "metric": tripped.get("metric"), "at": tripped.get("at"),
                "emails_sent_before": len(sent),
                "emails_before_by_variant": dict(sorted(Counter(m.tags.get("variant") for m in sent).items())),
                "condition_held_after_emails": held,
                "emails_after_condition_held": len(sent) - held if held else None,
                "emails_after_trip": len(sent) - at_trip[0] if at_trip else None}
        if scenario == "spike":
            raised = {**definition, "thresholds": {**definition.get("thresholds", {}), "complaint": RAISED_COMPLAINT},
                      "resume": True}
            halt["resumed_with"] = {"complaint": RAISED_COMPLAINT}
            runs.append(stack.run("CampaignStateMachine", raised, name=f"{definition['id']}-resume", timeout=1800,
                                  poll=0.2))
    last = runs[-1]
    if last.status != "SUCCEEDED" and last.error != "CampaignHalted":
        raise RuntimeError(f"{definition['id']}: {last.status} {last.error}: {last.cause}")
    decision = (last.output or {}).get("decision")
    return {
        "scenario": scenario, "campaign_id": definition["id"],
        "status": last.output["status"] if last.output else "HALTED",
        **check(stack, definition["id"]),
        "halted": halt is not None, "halt": halt,
        "winner": decision and {k: decision.get(k) for k in ("winner", "reason", "p_value", "metric",
                                                             "applied_policy", "numbers")},
        "parent_history_events": [r.history_events for r in runs],
        "virtual_seconds": round((stack.clock.now() - virtual).total_seconds(), 1),
        "wall_seconds": round(time.perf_counter() - started, 2),
    }


def _control_item(stack: LocalStack, campaign_id: str) -> dict[str, Any]:
    return stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"],
                                             Key={"campaign_id": {"S": campaign_id}})["Item"]


def _target(stack: LocalStack) -> Target:
    """The in-process stack as the operator commands see a stack (sesflow/target.py)."""
    return Target(name="the demo's engine", region=stack.region, outputs=stack.outputs)


def report(stack: LocalStack, campaign_id: str, out_dir: Path) -> tuple[str, str]:
    """The campaign's report, as `sesflow report ID` writes it: (the HTML file, the terminal table)."""
    from sesflow.report import collect, render_html, render_table

    data = collect(_target(stack), campaign_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"sesflow-report-{campaign_id}.html"
    path.write_text(render_html(data), encoding="utf-8")
    return str(path), render_table(data)


def run_demo(recipients: int = 10_000, seed: int = 1, scenarios: tuple[str, ...] = tuple(SCENARIOS),
             template: Path = Path("template.yaml"), report_dir: Path = Path(".sesflow/reports")) -> dict[str, Any]:
    started = time.perf_counter()
    definitions = {name: json.loads(SCENARIOS[name].read_text()) for name in scenarios}
    statuses = audience(recipients, seed)
    model = population(seed)
    domains = tuple(sorted({d["sender"].split("@")[1] for d in definitions.values()}))
    # The handlers' logs and Powertools' metric lines go to stderr: stdout is the summary's alone (--json).
    with contextlib.redirect_stdout(sys.stderr), LocalStack(template_path=template, ses_identities=domains) as stack:
        # A production account's quota (the sandbox's 1/s would make a long demo); the rate governor paces
        # every send under it, and SES's per-second limit is enforced.
        simulator().configure(max_send_rate=1000, max_24h_send=1_000_000, feedback=model)
        imported = seed_audience(stack, statuses, first_names(statuses, seed), report_dir.parent / "demo")
        # The stored templates the campaigns name, from the project's templates/ folder, as `sesflow template
        # push` creates them.
        names = sorted({v["template"] for d in definitions.values() for v in d["variants"] if "template" in v})
        template_cli.push(Target(name="demo", region=stack.region, outputs=stack.outputs),
                          [template_cli.load_folder(TEMPLATES / name) for name in names])
        before = states(stack)
        virtual_start = stack.clock.now()
        stack.meter.reset()  # the campaigns' counts, not the seeding's
        campaigns, episodes, reports = [], 0, {}
        with stack.poller(interval=0.05):  # Lambda's poller: feedback is ingested while campaigns send
            for name, definition in definitions.items():
                if campaigns:
                    episodes += rest_quarantined(stack, DAYS_BETWEEN)
                campaigns.append(run_scenario(stack, name, definition, model))
        counts = stack.meter.snapshot()
        after = states(stack)
        for run in campaigns:
            reports[run["campaign_id"]] = report(stack, run["campaign_id"], report_dir)
        summary = {
            "recipients": recipients, "seed": seed,
            "audience_import": {k: imported[k] for k in ("rows", "created", "added_to_list", "skipped",
                                                         "suppressions_loaded", "write_units")},
            "recipients_by_state_before": before, "recipients_by_state_after": after,
            "simulator_addresses_after": simulator_outcomes(stack),
            "campaigns": campaigns,
            "emails_sent": sum(c["emails_sent"] for c in campaigns),
            "duplicates": sum(c["duplicates"] for c in campaigns),
            "rendering_failures": sum(c["rendering_failures"] for c in campaigns),
            "unaccounted": sum(c["unaccounted"] for c in campaigns),
            # Every event SES generated; the configuration sets publish all but Send, and Delivery on probation only.
            "feedback_events_generated": dict(model.published.most_common()),
            "feedback_dead_lettered": _dead_lettered(stack),
            "quarantine_episodes_rested": episodes,
            "virtual_seconds": round((stack.clock.now() - virtual_start).total_seconds(), 1),
            "reports": {campaign_id: path for campaign_id, (path, _) in reports.items()},
        }
        architectures = pricing.lambda_architectures(stack.template)
    # Per 1M emails, from what the engine counted while the campaigns ran (SES's own price apart).
    summary["cost"] = pricing.cost_summary(pricing.cost_breakdown(
        counts, emails=max(1, summary["emails_sent"]), lambda_architectures=architectures, label="demo"))
    summary["wall_seconds"] = round(time.perf_counter() - started, 2)
    summary["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    summary["tables"] = {campaign_id: table for campaign_id, (_, table) in reports.items()}
    return summary


def _dead_lettered(stack: LocalStack) -> int:
    attributes = stack.client("sqs").get_queue_attributes(QueueUrl=stack.outputs["FeedbackDeadLetterQueueUrl"],
                                                          AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def clean(summary: dict[str, Any]) -> bool:
    """What the demo promises: every campaign finished (the spike after its halt), nobody twice, everybody
    accounted for, every message rendered, no event lost."""
    return (all(c["status"] == "COMPLETED" and c["halted"] == (c["scenario"] == "spike") for c in summary["campaigns"])
            and summary["duplicates"] == summary["unaccounted"] == summary["rendering_failures"]
            == summary["feedback_dead_lettered"] == 0)


def print_summary(summary: dict[str, Any]) -> None:
    print(f"sesflow demo: {summary['recipients']} recipients (seed {summary['seed']}) on the embedded engine")
    loaded = summary["audience_import"]
    print(f"  audience import     {loaded['rows']} rows of contacts.csv: {loaded['created']} contacts on the list,"
          f" {loaded['skipped']['suppressed']} skipped as suppressed ({loaded['suppressions_loaded']} addresses of"
          f" the old provider's suppression list, loaded first)")
    print(f"  list before         {summary['recipients_by_state_before']}")
    for run in summary["campaigns"]:
        print(f"\nCampaign {run['campaign_id']} ({run['scenario']}): {run['status']}")
        print(f"  emails sent         {run['emails_sent']}  by variant {run['emails_by_variant']}")
        print(f"  holdout             {run['holdout']} (recorded, not sent)")
        print(f"  duplicates          {run['duplicates']}   unaccounted {run['unaccounted']}"
              f"   rendering failures {run['rendering_failures']}")
        if run["winner"]:
            winner = run["winner"]
            p_value = "untested" if winner["p_value"] is None else f"{winner['p_value']:.3g}"
            print(f"  A/B decision        {winner['winner'] or 'no winner'} on {winner['metric']}"
                  f" (p={p_value}), {winner['applied_policy']}: {winner['reason']}")
        if run["halted"]:
            halt = run["halt"]
            print(f"  halted              after {halt['emails_sent_before']} emails "
                  f"{halt['emails_before_by_variant']}: {halt['reason']}")
            print(f"  after the condition {halt['emails_after_condition_held']} emails (it held after "
                  f"{halt['condition_held_after_emails']}), after the trip {halt['emails_after_trip']}"
                  + (f"; resumed with complaint levels {RAISED_COMPLAINT}" if "resumed_with" in halt else ""))
        print(f"  parent history      {run['parent_history_events']} events per execution")
        print(f"  time                {run['wall_seconds']} s wall, {run['virtual_seconds']} s virtual")
    print(f"\n  list after          {summary['recipients_by_state_after']}")
    print(f"  simulator addresses {summary['simulator_addresses_after']}")
    print(f"  SES events          {summary['feedback_events_generated']} (published: all but Send, and"
          f" Delivery only on probation); dead-lettered {summary['feedback_dead_lettered']}")
    cost = summary["cost"]
    print(f"  cost per 1M emails  ${cost['total_usd_per_1M_emails']:.2f} orchestration and feedback"
          f" (+ ${cost['ses_usd_per_1M_emails']:.2f} SES)")
    print(f"  time                {summary['wall_seconds']} s wall, {summary['virtual_seconds']} s virtual,"
          f" peak RSS {summary['peak_rss_mib']} MiB")
    for campaign_id, path in summary["reports"].items():
        print(f"\n{summary['tables'][campaign_id]}\nreport: {path}")
