"""Campaign benchmark: cost per 1M emails, halt overshoot, rate fidelity, parent history size.

    .venv/bin/python benchmarks/campaign.py [--recipients 10000] [--skip-100k] [--only cost,overshoot,...]

Every figure comes from CampaignStateMachine in template.yaml on the embedded engine, in virtual time; prints
one JSON document on stdout (the cost table goes to stderr as well).

- cost: one campaign of --recipients recipients at a production account's rate (--rate), with SES's feedback
  (engine.feedback_model: deliveries, ~20% opens, ~3% clicks, --hard-bounce and --soft-bounce, ~0.05%
  complaints) published through the configuration set's destination and ingested by IngestFeedbackFunction
  while the campaign sends; the quarantine episodes the soft bounces start are run to their end (a day's
  rest, then 14 days of probation with no outcome, in virtual time). The meter is reset before the campaign;
  pricing.cost_breakdown scales its counts to 1M emails. Target: at most $1.00 on top of SES's $100.
  --drop-event-types DELIVERY prices a what-if: the configuration set's destinations stop publishing those
  types (changed in the running stack only).
- overshoot: a complaint spike (one recipient of variant b in ten complains) trips the breaker mid-send;
  the SES calls and emails accepted after app.campaign_breaker.halt tripped it, against the Map's
  MaxConcurrency, and the emails sent after the halt condition held (had each complaint been known at once).
  Target: at most one call per in-flight worker. SendBatch invocations run at once here as on AWS (up to the
  Map's MaxConcurrency), so each in-flight batch may make the one call it had checked the breaker for.
- fidelity: three campaigns started at once under one account quota (--rates, e.g. 14/s and 100/s), SES
  enforcing it; achieved over allowed send rate over the busy period (recipients sent / (rate x (last send -
  first send + the last one's 1-second window)), in virtual time), with the throttling errors SES returned
  (TooManyRequestsException) and the governor's busy refusals. Target: >= 0.97 with zero throttles. Each
  campaign has two variants (--fidelity-variants 1 for one).
- history: the parent execution's history events and its largest state input, output or variable at each
  audience size (--history-sizes; 100k takes several minutes, --skip-100k leaves it out). A constant count
  means a 1M audience fits the 25,000-event history; payloads are checked against 256 KiB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from sesflow.demo import condition_held
from sesflow.engine import pricing
from sesflow.engine.feedback_model import FeedbackModel, Rates
from sesflow.engine.limits import HISTORY_EVENT_LIMIT, PAYLOAD_LIMIT_BYTES
from sesflow.engine.ses import SesAccount, simulator
from sesflow.engine.stack import LocalStack

ROOT = Path(__file__).resolve().parents[1]
SENDER = "news@example.com"
TEMPLATES = ("bench-a", "bench-b")
PARTS = ("cost", "overshoot", "fidelity", "history")


# ------------------------------------------------------------------------------------------------ the stack

_T0 = time.perf_counter()


def log(text: str) -> None:
    """Progress on stderr: wall seconds since start, peak RSS."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"[{time.perf_counter() - _T0:7.1f} s, {rss:6.0f} MiB] {text}", file=sys.__stderr__, flush=True)


def stack_for(max_send_rate: float, *, enforce_rate: bool = True) -> LocalStack:
    return LocalStack(template_path=ROOT / "template.yaml", ses_identities=("example.com",), ses_account={
        "max_send_rate": float(max_send_rate), "max_24h_send": 50_000_000.0, "production_access": True,
        "enforce_rate": enforce_rate})


def seed(stack: LocalStack, list_name: str, count: int, prefix: str | None = None) -> list[str]:
    """`count` ACTIVE contacts SUBSCRIBED on list `list_name`, written straight into moto's tables (setup, not
    metered); and the campaigns' SES templates."""
    prefix = prefix or list_name
    addresses = [f"{prefix}{i:07d}@example.org" for i in range(count)]
    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][stack.region]
    contacts, memberships = stack.outputs["RecipientsTableName"], stack.outputs["MembershipsTableName"]
    for address in addresses:
        backend.put_item(contacts, {"address": {"S": address}, "status": {"S": "ACTIVE"}})
        backend.put_item(memberships, {"list_id": {"S": list_name}, "address": {"S": address},
                                       "state": {"S": "SUBSCRIBED"}})
    ses = stack.client("sesv2")
    existing = {t["TemplateName"] for t in ses.list_email_templates().get("TemplatesMetadata", [])}
    for name in TEMPLATES:
        if name not in existing:
            ses.create_email_template(TemplateName=name, TemplateContent={
                "Subject": f"Autumn {name}", "Text": "Hello", "Html": "<p>Hello</p>"})
    return addresses


def definition(campaign_id: str, list_name: str, variants: int = 2, **changes: Any) -> dict:
    return {"id": campaign_id, "sender": SENDER, "audience": {"lists": [list_name]},
            "variants": [{"name": "ab"[i], "weight": 50, "template": TEMPLATES[i]} for i in range(variants)],
            **changes}


def max_concurrency() -> int:
    asl = json.loads((ROOT / "statemachines" / "campaign.asl.json").read_text())
    return int(asl["States"]["SendPhase"]["MaxConcurrency"])


def wait_all(stack: LocalStack, arns: list[str], timeout: float) -> list:
    """stack.wait for each, polling every 0.2 s (stack.wait's 10 ms polls take CPU from the run)."""
    sfn, deadline = stack.client("stepfunctions"), time.monotonic() + timeout
    for arn in arns:
        while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.2)
    return [stack.wait(arn, timeout=max(1.0, deadline - time.monotonic())) for arn in arns]


class SesWatch:
    """Every SES call the simulated account admits or refuses (SesAccount.admit), on the virtual clock."""

    def __init__(self) -> None:
        self.accepted: list[tuple[float, int]] = []  # (virtual time, recipients) of each accepted call
        self.refused: Counter[str] = Counter()  # error code -> calls
        self._original = SesAccount.admit

    def __enter__(self) -> SesWatch:
        watch, original = self, self._original

        def admit(account: SesAccount, recipients: int, now: Any, config: Any) -> None:
            try:
                original(account, recipients, now, config)
            except Exception as error:
                watch.refused[getattr(error, "error_type", type(error).__name__)] += 1
                raise
            watch.accepted.append((now.timestamp(), recipients))

        SesAccount.admit = admit
        return self

    def __exit__(self, *exc: object) -> None:
        SesAccount.admit = self._original

    @property
    def throttled(self) -> int:
        return self.refused["TooManyRequestsException"]


@contextlib.contextmanager
def patched(module: Any, name: str, wrapper: Callable[[Callable], Callable]) -> Iterator[None]:
    original = getattr(module, name)
    setattr(module, name, wrapper(original))
    try:
        yield
    finally:
        setattr(module, name, original)


@contextlib.contextmanager
def governor_refusals(counter: Counter) -> Iterator[None]:
    """Count the governor's GovernorBusyError and DailyQuotaExhaustedError (each is a Map Retry of a batch)."""
    from app import governor

    def wrap(original: Callable) -> Callable:
        def acquire(self: Any, *args: Any, **kwargs: Any) -> int:
            try:
                return original(self, *args, **kwargs)
            except Exception as error:
                counter[type(error).__name__] += 1
                raise
        return acquire

    with patched(governor.Governor, "acquire", wrap):
        yield


# ------------------------------------------------------------------------------------------------ figures


def largest_payload(events: list[dict]) -> tuple[int, str]:
    """Bytes and place of the largest state input, output, or assigned variable in a history."""
    best = (0, "")
    for event in events:
        for key, details in event.items():
            if not (key.endswith("EventDetails") and isinstance(details, dict)):
                continue
            texts = [(details.get(f), f) for f in ("input", "output", "result", "parameters")]
            texts += [(value, f"variable ${name}") for name, value in (details.get("assignedVariables") or {}).items()]
            for text, what in texts:
                if isinstance(text, str) and len(text.encode()) > best[0]:
                    best = (len(text.encode()), f"{event['type']} {what}")
    return best


def rate_figures(accepted: list[tuple[float, int]], rate: float) -> dict:
    """Achieved over allowed rate over the busy period (first accepted call to last, plus the one-second window
    the last occupies), and the most recipients in any one-second window (SES's rule: (t - 1 s, t])."""
    accepted = sorted(accepted)
    if not accepted:
        return {"sent": 0}
    times = [t for t, _ in accepted]
    sent = sum(n for _, n in accepted)
    busy = times[-1] - times[0]
    window_max, start, running = 0, 0, 0
    for t, n in accepted:
        running += n
        while times[start] <= t - 1.0:
            running -= accepted[start][1]
            start += 1
        window_max = max(window_max, running)
    steady = math.floor(busy)  # whole one-second windows from the first send: the steady state, no tail
    steady_sent = sum(n for t, n in accepted if t < times[0] + steady)
    return {
        "sent": sent, "ses_calls": len(accepted), "busy_seconds_virtual": round(busy, 3),
        "achieved_per_second": round(sent / (busy + 1.0), 3),
        "fidelity": round(sent / (rate * (busy + 1.0)), 4),
        "fidelity_whole_seconds": round(steady_sent / (rate * steady), 4) if steady else None,
        "max_in_any_one_second": window_max,
    }


def cost(args: argparse.Namespace) -> dict:
    model = FeedbackModel(seed=args.seed, deferred=True, rates=Rates(
        hard_bounce=args.hard_bounce, soft_bounce=args.soft_bounce, open=0.20, click=0.03, complaint=0.0005))
    started = time.perf_counter()
    with stack_for(args.rate) as stack:
        simulator().configure(feedback=model)
        dropped = drop_event_types(stack, args.drop_event_types)
        seed(stack, "cost", args.recipients)
        log(f"cost: {args.recipients} recipients seeded")
        stack.meter.reset()
        with SesWatch() as watch, stack.poller():
            (result,) = wait_all(stack, [stack.start("CampaignStateMachine", definition("cost", "cost"))], 7200)
        campaign_wall = time.perf_counter() - started
        log(f"cost: campaign {result.status}, feedback ingested")
        assert result.status == "SUCCEEDED", (result.error, result.cause)
        sent = result.output["sent"]
        episodes = finish_episodes(stack)
        counts = stack.meter.snapshot()
        architectures = pricing.lambda_architectures(stack.template)
        send_batch = stack.template.resources["SendBatchFunction"].properties
    breakdown = pricing.cost_breakdown(counts, emails=sent, lambda_architectures=architectures, label="campaign")
    print(pricing.format_table(breakdown), file=sys.stderr)
    lifecycle = sum(n for k, n in counts["transitions"].items() if "RecipientLifecycle" in k)
    return {
        "recipients": args.recipients, "sent": sent, "ses_rate_per_second": args.rate,
        **({"what_if": f"the configuration set does not publish {', '.join(dropped)} (not template.yaml as it is)"}
           if dropped else {}),
        "feedback_published": dict(model.published.most_common()),
        "quarantine_episodes": episodes, "lifecycle_transitions": lifecycle,
        **pricing.cost_summary(breakdown),
        "target_usd": 1.00, "meets_target": breakdown.total <= 1.00,
        "pacing_wait_usd_per_1M_emails_estimate": pacing_wait(args.rate, int(send_batch.get("MemorySize", 128)),
                                                              (send_batch.get("Architectures") or ["x86_64"])[0]),
        "ses_calls": len(watch.accepted), "throttled": watch.throttled,
        "wall_seconds": round(time.perf_counter() - started, 1), "campaign_wall_seconds": round(campaign_wall, 1),
    }


def pacing_wait(rate: float, memory_mb: int, architecture: str) -> dict:
    """Not metered: what MaxConcurrency SendBatch workers cost while they wait for the governor's grants, if the
    account's rate is what limits the send. Each sends 1M / rate seconds, sleeping in its Lambda (and its Express
    child); the engine bills no Lambda time for virtual sleeps and runs one SendBatch at a time, so it cannot
    show this. An upper bound: every worker waiting the whole send."""
    workers, seconds = max_concurrency(), 1_000_000 / rate
    lambda_usd = workers * seconds * memory_mb / 1024 * pricing.PRICES[f"lambda_duration_{architecture}"].usd
    express_usd = workers * seconds * 64 / 1024 * pricing.PRICES["sfn_express_duration"].usd
    return {"rate_per_second": rate, "workers": workers, "send_seconds": round(seconds),
            "lambda_usd": round(lambda_usd, 4), "express_usd": round(express_usd, 4),
            "total_usd": round(lambda_usd + express_usd, 4)}


def drop_event_types(stack: LocalStack, names: str) -> list[str]:
    """What if the stack's configuration set did not publish these event types (e.g. DELIVERY)? Changes its
    destinations in the running stack only; returns the types dropped."""
    dropped = [n.strip().upper() for n in names.split(",") if n.strip()]
    if not dropped:
        return []
    ses, name = stack.client("sesv2"), stack.outputs["ConfigurationSetName"]
    for destination in ses.get_configuration_set_event_destinations(ConfigurationSetName=name)["EventDestinations"]:
        changed = {k: v for k, v in destination.items() if k != "Name"}
        changed["MatchingEventTypes"] = [t for t in destination["MatchingEventTypes"] if t not in dropped]
        ses.update_configuration_set_event_destination(
            ConfigurationSetName=name, EventDestinationName=destination["Name"], EventDestination=changed)
    return dropped


def finish_episodes(stack: LocalStack) -> int:
    """Run the quarantine episodes the soft bounces started to their end: a day's rest, then 14 days of
    probation with no outcome (their dearest ending, 4 transitions). Returns how many there were."""
    sfn = stack.client("stepfunctions")
    machine = stack.outputs["RecipientLifecycleStateMachineArn"]
    ddb, table = stack.client("dynamodb"), stack.outputs["RecipientsTableName"]

    def parked(status: str) -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            items = ddb.scan(TableName=table, FilterExpression="#s IN (:q, :r)",
                             ExpressionAttributeNames={"#s": "status"},
                             ExpressionAttributeValues={":q": {"S": "QUARANTINED"}, ":r": {"S": "RECOVERY"}})["Items"]
            if all(i["status"]["S"] == status and "episode_token" in i for i in items):
                return
            time.sleep(0.1)
        raise TimeoutError(f"quarantine episodes did not all reach {status}")

    executions = [e for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine)
                  for e in page["executions"]]
    if not executions:
        return 0
    log(f"cost: {len(executions)} quarantine episodes")
    parked("QUARANTINED")
    stack.clock.advance(timedelta(days=2).total_seconds())  # the rest ends a day after the bounce (up to 1 h late)
    parked("RECOVERY")
    stack.clock.advance(timedelta(days=15).total_seconds())
    wait_all(stack, [e["executionArn"] for e in executions], 600)
    return len(executions)


def overshoot(args: argparse.Namespace) -> dict:
    # Not deferred: each message's events are in the feedback queue when its SES call returns (a deferred model's
    # flush publishes everything queued before the poller runs again, so ingestion would trail the whole send).
    model = FeedbackModel(seed=args.seed, deferred=False, variants={"b": {"complaint": 0.1}},
                          rates=Rates(hard_bounce=0.0, soft_bounce=0.0, open=0.2, click=0.03, complaint=0.0))
    halted_at: list[tuple[int, int]] = []
    started = time.perf_counter()
    with stack_for(1000) as stack:
        simulator().configure(feedback=model)
        seed(stack, "spike", args.overshoot_recipients)
        from app import campaign_breaker

        with SesWatch() as watch:
            def wrap(original: Callable) -> Callable:
                def halt(campaign_id: str, verdict: Any, settings: Any) -> bool:
                    tripped = original(campaign_id, verdict, settings)
                    if tripped:
                        halted_at.append((len(watch.accepted), len(simulator().outbox)))
                    return tripped
                return halt

            spike = definition("spike", "spike", thresholds={"complaint": {"warn": 0.0005, "halt": 0.0008},
                                                             "min_sends": 200})
            with patched(campaign_breaker, "halt", wrap), stack.poller(interval=0.02):
                (result,) = wait_all(stack, [stack.start("CampaignStateMachine", spike)], 1800)
        outbox = list(simulator().outbox)
    held = condition_held(spike, outbox, model)
    workers = max_concurrency()
    figures = {"recipients": args.overshoot_recipients, "status": result.status, "error": result.error,
               "max_concurrency": workers, "wall_seconds": round(time.perf_counter() - started, 1)}
    if not halted_at:
        return {**figures, "halted": False}
    calls_before, emails_before = halted_at[0]
    calls_after, emails_after = len(watch.accepted) - calls_before, len(outbox) - emails_before
    return {**figures, "halted": True, "condition_held_after_emails": held,
            "emails_after_condition_held": emails_before + emails_after - held if held else None,
            "emails_before_halt": emails_before, "emails_after_halt": emails_after,
            "ses_calls_after_halt": calls_after,
            "batches_after_halt": len({m.tags.get("batch") for m in outbox[emails_before:]}),
            "target": f"at most one SES call (<= 50 emails) per in-flight worker: {workers} calls",
            "meets_target": calls_after <= workers}


def fidelity(args: argparse.Namespace, rate: float) -> dict:
    per_campaign = max(1, round(rate * args.fidelity_seconds / 3))
    refusals: Counter[str] = Counter()
    started = time.perf_counter()
    with stack_for(rate) as stack:
        for name in ("east", "west", "north"):
            seed(stack, name, per_campaign)
        with SesWatch() as watch, governor_refusals(refusals), stack.poller(interval=0.2):
            arns = [stack.start("CampaignStateMachine", definition(name, name, args.fidelity_variants))
                    for name in ("east", "west", "north")]
            results = wait_all(stack, arns, 3600)
        outbox = list(simulator().outbox)
    per_recipient = Counter(r for m in outbox for r in m.to)
    by_campaign: dict[str, list[float]] = {}
    for message in outbox:
        by_campaign.setdefault(message.tags["campaign"], []).append(message.sent_at.timestamp())
    spans = {c: (min(t), max(t)) for c, t in by_campaign.items()}
    overlap = min(end for _, end in spans.values()) - max(start for start, _ in spans.values())
    figures = rate_figures(watch.accepted, rate)
    return {
        "rate_per_second": rate, "campaigns": 3, "recipients_per_campaign": per_campaign,
        "variants_per_campaign": args.fidelity_variants,
        "statuses": [r.status for r in results], **figures,
        "throttled": watch.throttled, "ses_refusals": dict(watch.refused),
        "governor_refusals": dict(refusals),
        "everyone_once": set(per_recipient.values()) == {1} and len(per_recipient) == 3 * per_campaign,
        "campaigns_overlap_seconds_virtual": round(overlap, 3),
        "target": ">= 0.97, zero throttles",
        "meets_target": figures.get("fidelity", 0) >= 0.97 and watch.throttled == 0,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def parent_history(size: int) -> dict:
    started = time.perf_counter()
    with stack_for(100_000, enforce_rate=False) as stack:  # the design check is not about pacing
        seed(stack, f"h{size}", size)
        log(f"history: {size} recipients seeded")
        seeded = time.perf_counter()
        (result,) = wait_all(stack, [stack.start("CampaignStateMachine", definition(f"h{size}", f"h{size}"))],
                             7200)
        run_wall = time.perf_counter() - seeded
        log(f"history: {size} recipients, {result.status}")
        events = stack.history(result.arn)
        manifest = stack.client("s3").list_objects_v2(Bucket=stack.outputs["ManifestBucketName"])["Contents"]
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    size_bytes, where = largest_payload(events)
    return {"recipients": size, "sent": result.output["sent"], "parent_history_events": len(events),
            "largest_payload_bytes": size_bytes, "largest_payload_at": where,
            "manifest_bytes": max(o["Size"] for o in manifest),
            "run_wall_seconds": round(run_wall, 1), "wall_seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000, help="the cost campaign's audience")
    parser.add_argument("--rate", type=float, default=1000, help="the cost campaign's SES send rate (per second)")
    parser.add_argument("--hard-bounce", type=float, default=0.005)
    parser.add_argument("--soft-bounce", type=float, default=0.005)
    parser.add_argument("--drop-event-types", default="", metavar="DELIVERY,...",
                        help="cost what-if: the configuration set stops publishing these SES event types")
    parser.add_argument("--overshoot-recipients", type=int, default=2000)
    parser.add_argument("--rates", default="14,100", help="fidelity: account send rates, comma-separated")
    parser.add_argument("--fidelity-seconds", type=float, default=30, help="fidelity: ideal busy period")
    parser.add_argument("--fidelity-variants", type=int, choices=(1, 2), default=2)
    parser.add_argument("--history-sizes", default="1000,10000,100000")
    parser.add_argument("--skip-100k", action="store_true", help="history: leave out sizes of 100,000 and over")
    parser.add_argument("--only", default=",".join(PARTS), help=f"parts to run, of {','.join(PARTS)}")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    if unknown := set(parts) - set(PARTS):
        parser.error(f"--only: unknown part(s) {sorted(unknown)}")
    report: dict[str, Any] = {"command": " ".join(["benchmarks/campaign.py", *sys.argv[1:]])}
    started = time.perf_counter()
    # Powertools' metrics flush to stdout when 100 values pile up: keep stdout for the one JSON document.
    with contextlib.redirect_stdout(sys.stderr):
        if "cost" in parts:
            report["cost_per_1M_emails"] = cost(args)
        if "overshoot" in parts:
            report["halt_overshoot"] = overshoot(args)
        if "fidelity" in parts:
            report["rate_fidelity"] = [fidelity(args, float(r)) for r in args.rates.split(",")]
        if "history" in parts:
            sizes = [int(s) for s in args.history_sizes.split(",") if s]
            sizes = [s for s in sizes if not (args.skip_100k and s >= 100_000)]
            runs = [parent_history(s) for s in sizes]
            report["parent_history"] = {
                "runs": runs, "constant": len({r["parent_history_events"] for r in runs}) == 1,
                "history_limit": HISTORY_EVENT_LIMIT, "payload_limit_bytes": PAYLOAD_LIMIT_BYTES,
                "largest_payload_share_of_limit": round(max(r["largest_payload_bytes"] for r in runs)
                                                        / PAYLOAD_LIMIT_BYTES, 4) if runs else None}
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
