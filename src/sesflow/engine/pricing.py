"""What a run would cost at AWS list prices, from the engine's counts (Meter.snapshot()), per N emails.

    counts = stack.meter.snapshot()
    breakdown = cost_breakdown(counts, emails=sent, lambda_architectures=lambda_architectures(stack.template))
    print(format_table(breakdown))          # for the terminal
    json.dumps(breakdown.to_dict())         # for a JSON summary

Every line is a metered quantity times a us-east-1 list price (PRICES, each with the page it comes from and
the day it was checked), scaled from the emails the run sent to `per` emails (1,000,000 by default).

- Free tiers are NOT applied: the figure is what the usage costs once an account is past them.
- The first (most expensive) volume tier is used where a price is tiered (Express duration, Lambda duration,
  SQS), so the figure is an upper bound for very large accounts.
- SES's own price (per email sent) is reported separately and is not in the total.
- Only what the engine meters is priced. NOT_METERED lists what a deployment also pays for (logs, traces,
  storage, the idle polling of an SQS trigger) with its price; those are not in the total.
- The engine measures durations (Lambda, Express) in its own real time, plus virtual time slept: in-process
  moto is slower than AWS, so duration lines are estimates, not measurements of AWS.
- Several runs (the campaign, then the feedback its emails cause) are priced one by one and added with
  `combine`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

REGION = "us-east-1"
PRICES_CHECKED = "2026-11-22"
DEFAULT_PER = 1_000_000

_SFN = "https://aws.amazon.com/step-functions/pricing/"
_LAMBDA = "https://aws.amazon.com/lambda/pricing/"
_DDB = "https://aws.amazon.com/dynamodb/pricing/on-demand/"
_S3 = "https://aws.amazon.com/s3/pricing/"
_SQS = "https://aws.amazon.com/sqs/pricing/"
_SNS = "https://aws.amazon.com/sns/pricing/"
_EVENTS = "https://aws.amazon.com/eventbridge/pricing/"
_SES = "https://aws.amazon.com/ses/pricing/"
_CLOUDWATCH = "https://aws.amazon.com/cloudwatch/pricing/"
_XRAY = "https://aws.amazon.com/xray/pricing/"


@dataclass(frozen=True)
class Price:
    """A us-east-1 list price: `usd` per one `unit`, `quoted` as the pricing page states it."""

    service: str
    item: str
    unit: str
    usd: float
    quoted: str
    source: str
    note: str = ""


# us-east-1 list prices, checked 2026-11-22. AWS renders most figures on its pricing pages client-side, so
# each was confirmed against the page's own worked examples or a dated secondary source named in the note.
PRICES: dict[str, Price] = {
    # Standard: "$0.025 per 1,000 state transitions", US East (N. Virginia) $0.0250 in the page's table.
    "sfn_standard_transition": Price(
        "Step Functions", "Standard state transitions", "transition", 0.025 / 1000, "$0.025 per 1,000", _SFN,
        "each retry is a transition too"),
    # Express transitions are not billed: Express bills requests and duration.
    "sfn_express_transition": Price(
        "Step Functions", "Express state transitions", "transition", 0.0, "included", _SFN,
        "Express bills requests and duration, not transitions"),
    # Express: "$1.00 per million requests"; duration $0.06000 per GB-hour for the first 1,000 GB-hours a
    # month, $0.03000 the next 4,000, $0.01642 beyond (the page's Express example); rounded up to 100 ms,
    # memory billed in 64 MB chunks. First tier used: $0.06 / 3,600 = $0.0000166667 per GB-second.
    "sfn_express_request": Price(
        "Step Functions", "Express requests", "request", 1.00 / 1_000_000, "$1.00 per 1M", _SFN,
        "each Distributed Map child execution is one"),
    "sfn_express_duration": Price(
        "Step Functions", "Express duration", "GB-second", 0.06 / 3600, "$0.06 per GB-hour", _SFN,
        "first 1,000 GB-hours a month ($0.03 next 4,000, $0.01642 beyond); 100 ms steps, 64 MB chunks"),
    # Lambda: $0.20 per 1M requests; duration first tier (6B GB-s x86, 7.5B GB-s Arm a month): x86
    # $0.0000166667, Arm $0.0000133334 per GB-second (docs.aws.amazon.com/whitepapers/latest/
    # how-aws-pricing-works/lambda.html; cloudchipr.com/blog/aws-lambda-pricing for the Arm rate).
    "lambda_request": Price("Lambda", "Requests", "request", 0.20 / 1_000_000, "$0.20 per 1M", _LAMBDA),
    "lambda_duration_x86_64": Price(
        "Lambda", "Duration (x86_64)", "GB-second", 0.0000166667, "$0.0000166667 per GB-second", _LAMBDA,
        "first 6B GB-seconds a month"),
    "lambda_duration_arm64": Price(
        "Lambda", "Duration (arm64)", "GB-second", 0.0000133334, "$0.0000133334 per GB-second", _LAMBDA,
        "first 7.5B GB-seconds a month"),
    # DynamoDB on-demand, Standard table class, after the 1 Nov 2024 cut of 50%: $0.625 per million write
    # request units, $0.125 per million read request units (airbyte.com/data-engineering-resources/
    # dynamodb-pricing, "Current Pricing Structure (US East)").
    "dynamodb_write": Price(
        "DynamoDB", "Write request units (on-demand)", "WRU", 0.625 / 1_000_000, "$0.625 per 1M", _DDB),
    "dynamodb_read": Price(
        "DynamoDB", "Read request units (on-demand)", "RRU", 0.125 / 1_000_000, "$0.125 per 1M", _DDB),
    # S3 Standard: PUT, COPY, POST, LIST $0.005 per 1,000; GET, SELECT and all other $0.0004 per 1,000;
    # DELETE and CANCEL free (c3x.dev/blog/s3-request-fees-explained).
    "s3_tier1": Price("S3", "PUT, COPY, POST, LIST requests", "request", 0.005 / 1000, "$0.005 per 1,000", _S3),
    "s3_tier2": Price("S3", "GET and other requests", "request", 0.0004 / 1000, "$0.0004 per 1,000", _S3),
    # SQS: every action is a request, each 64 KB chunk of a payload one request; standard $0.40 per 1M
    # (first 100B a month), FIFO $0.50 per 1M (cloudburn.io/blog/amazon-sqs-pricing, March 2026).
    "sqs_request": Price(
        "SQS", "Requests (standard queues)", "request", 0.40 / 1_000_000, "$0.40 per 1M", _SQS,
        "64 KiB chunks; deliveries by SNS and EventBridge are SendMessage requests on the queue"),
    "sqs_fifo_request": Price("SQS", "Requests (FIFO queues)", "request", 0.50 / 1_000_000, "$0.50 per 1M", _SQS),
    # SNS standard topics: $0.50 per 1M requests (64 KB chunks); deliveries to SQS and Lambda free, HTTP/S
    # $0.60 per 1M, email $2.00 per 100,000 (factualminds.com/blog/amazon-sns-pricing-publishes-fanout-protocols).
    "sns_publish": Price("SNS", "Publish requests", "request", 0.50 / 1_000_000, "$0.50 per 1M", _SNS, "64 KiB chunks"),
    "sns_delivery_sqs": Price("SNS", "Deliveries to SQS", "delivery", 0.0, "free", _SNS),
    "sns_delivery_lambda": Price("SNS", "Deliveries to Lambda", "delivery", 0.0, "free", _SNS),
    "sns_delivery_http": Price("SNS", "Deliveries to HTTP/S", "delivery", 0.60 / 1_000_000, "$0.60 per 1M", _SNS),
    "sns_delivery_email": Price("SNS", "Deliveries to email", "delivery", 2.00 / 100_000, "$2.00 per 100,000", _SNS),
    # EventBridge: AWS management events free; custom events $1.00 per 1M, each 64 KB chunk one event
    # (cloudburn.io/blog/amazon-eventbridge-pricing). SES's email events are not management events: priced as
    # "AWS opt-in data events" at the custom-event price, an assumption (the page lists them apart).
    "eventbridge_custom": Price(
        "EventBridge", "Custom events", "event", 1.00 / 1_000_000, "$1.00 per 1M", _EVENTS, "64 KiB chunks"),
    "eventbridge_aws_data": Price(
        "EventBridge", "SES events (AWS opt-in data events)", "event", 1.00 / 1_000_000, "$1.00 per 1M", _EVENTS,
        "assumed at the custom-event price; 64 KiB chunks"),
    "eventbridge_aws_management": Price(
        "EventBridge", "AWS management events", "event", 0.0, "free", _EVENTS),
    # SES pay-as-you-go outbound email: $0.10 per 1,000 emails. Reported apart, never in the total.
    "ses_email": Price("SES", "Outbound emails", "email", 0.10 / 1000, "$0.10 per 1,000", _SES),
}

# What a deployment pays for that the engine does not meter: shown with every breakdown, never in the total.
NOT_METERED: tuple[tuple[str, str, str], ...] = (
    ("CloudWatch Logs ingestion", "$0.50 per GB (" + _CLOUDWATCH + ")",
     "the engine keeps no logs; Lambda alone writes START/END/REPORT lines (about 0.5 KB) per invocation"),
    ("X-Ray traces recorded", "$5.00 per 1M (" + _XRAY + ")",
     "template.yaml turns tracing on; the default sampling records 1 request a second plus 5%"),
    ("Storage", "DynamoDB, S3, SQS retention, log archive", "per GB-month, not per email"),
    ("SQS trigger polling when idle", "$0.40 per 1M requests",
     "Lambda's pollers long-poll an empty queue all month: a fixed cost, not per email"),
    ("Data transfer", "free within the region", "the stack sends nothing out of the region itself"),
)

# Every counter of Meter.snapshot() and how it is priced. tests/unit/test_pricing.py fails if the Meter
# grows a counter that is not here.
COUNTERS: dict[str, str] = {
    "transitions": "STANDARD priced per transition; EXPRESS included in Express requests and duration",
    "executions": "EXPRESS priced per request; STANDARD executions are billed through their transitions",
    "express_billed_ms": "informational: priced through express_gb_seconds",
    "express_gb_seconds": "priced per GB-second",
    "lambda_invocations": "priced per request",
    "lambda_billed_ms": "informational: priced through lambda_gb_seconds",
    "lambda_gb_seconds": "priced per GB-second by architecture",
    "api_calls": "by service (API_CALLS): priced per request, counted by another counter, free, or unpriced",
    "dynamodb_write_units": "priced per write request unit",
    "dynamodb_read_units": "priced per read request unit",
    "sqs_requests": "priced per request (64 KiB chunks), FIFO queues at the FIFO price",
    "sns_publishes": "priced per request (64 KiB chunks)",
    "sns_deliveries": "priced per delivery by protocol (SQS and Lambda free)",
    "eventbridge_events": "priced per event (64 KiB chunks) by source",
}

# api_calls, by botocore service id: how each is paid for. Services not here are reported as unpriced.
API_CALLS: dict[str, str] = {
    "dynamodb": "counted in dynamodb_write_units and dynamodb_read_units",
    "lambda": "Invoke counted in lambda_invocations; control plane free",
    "sfn": "counted in transitions and executions; API calls free",
    "sqs": "counted in sqs_requests",
    "sns": "Publish counted in sns_publishes; control plane free",
    "eventbridge": "PutEvents counted in eventbridge_events; control plane free",
    "s3": "priced per request: PUT, COPY, POST, LIST; GET and others; DELETE free",
    "sesv2": "sends priced as SES emails (separately); other actions free",
    "ses": "sends priced as SES emails (separately); other actions free",
    "sts": "free",
    "iam": "free",
    "cloudformation": "free",
}
_S3_TIER1 = ("Put", "Copy", "Post", "List", "Create", "Upload", "Complete", "Restore")
_S3_FREE = ("Delete", "Abort")


@dataclass(frozen=True)
class LineItem:
    service: str
    item: str
    unit: str
    quantity: float  # as counted in the run(s)
    per_emails: float  # scaled to `per` emails
    unit_price: float  # USD per unit
    quoted: str  # the price as its page quotes it
    dollars: float  # per_emails x unit_price
    source: str
    note: str = ""
    detail: dict[str, float] = field(default_factory=dict)  # per resource, scaled to `per` emails

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service, "item": self.item, "unit": self.unit,
            "quantity": round(self.quantity, 6), "per_emails": round(self.per_emails, 3),
            "unit_price_usd": self.unit_price, "price": self.quoted, "usd": round(self.dollars, 6),
            "source": self.source, **({"note": self.note} if self.note else {}),
            **({"detail": {k: round(v, 3) for k, v in self.detail.items()}} if self.detail else {}),
        }


@dataclass(frozen=True)
class Breakdown:
    per: int
    runs: tuple[tuple[str, int], ...]  # (label, emails the run sent)
    lines: tuple[LineItem, ...]
    ses: LineItem
    unpriced: tuple[str, ...] = ()  # counters, API services, SNS protocols nothing here prices (not in total)
    region: str = REGION
    prices_checked: str = PRICES_CHECKED

    @property
    def total(self) -> float:
        """USD per `per` emails, SES's own price not included."""
        return sum(line.dollars for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "per_emails": self.per,
            "runs": [{"label": label, "emails": emails} for label, emails in self.runs],
            "region": self.region,
            "prices_checked": self.prices_checked,
            "free_tiers": "not applied",
            "total_usd": round(self.total, 6),
            "ses_usd": round(self.ses.dollars, 6),
            "total_with_ses_usd": round(self.total + self.ses.dollars, 6),
            "lines": [line.to_dict() for line in self.lines],
            "ses": self.ses.to_dict(),
            "unpriced": list(self.unpriced),
            "not_metered": [{"item": item, "price": price, "note": note} for item, price, note in NOT_METERED],
        }


class _Lines:
    """Quantities gathered per price key, with the resource each came from."""

    def __init__(self) -> None:
        self.quantity: dict[str, float] = {}
        self.detail: dict[str, dict[str, float]] = {}

    def add(self, key: str, resource: str, quantity: float) -> None:
        if key not in PRICES:
            raise KeyError(f"no price {key!r} in PRICES")
        self.quantity[key] = self.quantity.get(key, 0.0) + quantity
        detail = self.detail.setdefault(key, {})
        detail[resource] = detail.get(resource, 0.0) + quantity


def _split(key: str, separator: str) -> tuple[str, str]:
    head, _, tail = key.rpartition(separator)
    return (head, tail) if head else (key, "")


def _s3_price_key(operation: str) -> str | None:
    if operation.startswith(_S3_FREE):
        return None
    return "s3_tier1" if operation.startswith(_S3_TIER1) else "s3_tier2"


def _eventbridge_price_key(source: str) -> str:
    if source == "aws.ses":
        return "eventbridge_aws_data"
    return "eventbridge_aws_management" if source.startswith("aws.") else "eventbridge_custom"


def _gather(snapshot: Mapping[str, Any], architectures: Mapping[str, str], default_architecture: str,
            ) -> tuple[_Lines, list[str]]:
    lines = _Lines()
    unpriced = [f"{name} (a counter pricing.COUNTERS does not know)" for name in unaccounted_counters(snapshot)]
    for key, n in (snapshot.get("transitions") or {}).items():
        machine, kind = _split(key, "/")
        lines.add("sfn_express_transition" if kind == "EXPRESS" else "sfn_standard_transition", machine, n)
    for key, n in (snapshot.get("executions") or {}).items():
        machine, kind = _split(key, "/")
        if kind == "EXPRESS":
            lines.add("sfn_express_request", machine, n)
    for machine, gb_s in (snapshot.get("express_gb_seconds") or {}).items():
        lines.add("sfn_express_duration", machine, gb_s)
    for function, n in (snapshot.get("lambda_invocations") or {}).items():
        lines.add("lambda_request", function, n)
    for function, gb_s in (snapshot.get("lambda_gb_seconds") or {}).items():
        architecture = architectures.get(function, default_architecture)
        if f"lambda_duration_{architecture}" not in PRICES:
            raise ValueError(f"{function}: no Lambda duration price for architecture {architecture!r}")
        lines.add(f"lambda_duration_{architecture}", function, gb_s)
    for table, units in (snapshot.get("dynamodb_write_units") or {}).items():
        lines.add("dynamodb_write", table, units)
    for table, units in (snapshot.get("dynamodb_read_units") or {}).items():
        lines.add("dynamodb_read", table, units)
    for key, n in (snapshot.get("sqs_requests") or {}).items():
        queue = key.split(":", 1)[0]
        lines.add("sqs_fifo_request" if queue.endswith(".fifo") else "sqs_request", key, n)
    for topic, n in (snapshot.get("sns_publishes") or {}).items():
        lines.add("sns_publish", topic, n)
    for key, n in (snapshot.get("sns_deliveries") or {}).items():
        _, protocol = _split(key, ":")
        price_key = "sns_delivery_http" if protocol in ("http", "https") else f"sns_delivery_{protocol}"
        if price_key in PRICES:
            lines.add(price_key, key, n)
        else:
            unpriced.append(f"sns_deliveries {key}")
    for key, n in (snapshot.get("eventbridge_events") or {}).items():
        _, source = key.split(":", 1) if ":" in key else ("", key)
        lines.add(_eventbridge_price_key(source), key, n)
    for key, n in (snapshot.get("api_calls") or {}).items():
        service, _, operation = key.partition(":")
        if service == "s3":
            price_key = _s3_price_key(operation)
            if price_key:
                lines.add(price_key, operation, n)
        elif service not in API_CALLS:
            unpriced.append(f"api_calls {key} ({n})")
    return lines, unpriced


def lambda_architectures(template: Any) -> dict[str, str]:
    """Function name -> instruction set architecture, from an engine Template (Globals applied)."""
    found = {}
    for resource in template.of_type("AWS::Serverless::Function", "AWS::Lambda::Function"):
        architectures = resource.properties.get("Architectures") or ["x86_64"]
        found[resource.physical_id] = str(architectures[0])
    return found


def cost_breakdown(snapshot: Mapping[str, Any], emails: int, per: int = DEFAULT_PER, *,
                   lambda_architectures: Mapping[str, str] | None = None,
                   default_architecture: str = "x86_64", label: str = "run") -> Breakdown:
    """Price a Meter.snapshot() of a run that sent `emails` emails, scaled to `per` emails.

    lambda_architectures: function name -> "x86_64" | "arm64" (see lambda_architectures(template)); a function
    not in it is priced as `default_architecture` (x86_64, Lambda's default and the dearer of the two).
    """
    if isinstance(emails, bool) or not isinstance(emails, int) or emails <= 0:
        raise ValueError(f"a cost per email needs the number of emails the run sent, at least 1; got {emails!r}")
    if isinstance(per, bool) or not isinstance(per, int) or per <= 0:
        raise ValueError(f"per must be a positive number of emails; got {per!r}")
    gathered, unpriced = _gather(snapshot, lambda_architectures or {}, default_architecture)
    scale = per / emails
    lines = []
    for key, price in PRICES.items():  # in PRICES order: the table reads by service
        if key == "ses_email" or not gathered.quantity.get(key):
            continue
        quantity = gathered.quantity[key]
        lines.append(LineItem(
            price.service, price.item, price.unit, quantity, quantity * scale, price.usd, price.quoted,
            quantity * scale * price.usd, price.source, price.note,
            {resource: q * scale for resource, q in sorted(gathered.detail[key].items())}))
    return Breakdown(per, ((label, emails),), tuple(lines), _ses_line(emails, per), tuple(sorted(unpriced)))


def _ses_line(emails: int, per: int) -> LineItem:
    price = PRICES["ses_email"]
    return LineItem(price.service, price.item, price.unit, emails, per, price.usd, price.quoted, per * price.usd,
                    price.source, "SES's own price, reported apart from the total")


def combine(*breakdowns: Breakdown) -> Breakdown:
    """Add breakdowns of runs that together make up sending `per` emails (a campaign, then its feedback).
    Each part was already scaled by the emails of its own run; SES's price is counted once."""
    if not breakdowns:
        raise ValueError("combine needs at least one breakdown")
    per = breakdowns[0].per
    if any(b.per != per for b in breakdowns):
        raise ValueError(f"breakdowns per different numbers of emails: {sorted({b.per for b in breakdowns})}")
    merged: dict[tuple[str, str], LineItem] = {}
    order = {(p.service, p.item): i for i, p in enumerate(PRICES.values())}
    for line in (line for b in breakdowns for line in b.lines):
        key = (line.service, line.item)
        if key not in merged:
            merged[key] = line
            continue
        old = merged[key]
        detail = dict(old.detail)
        for resource, q in line.detail.items():
            detail[resource] = detail.get(resource, 0.0) + q
        merged[key] = LineItem(old.service, old.item, old.unit, old.quantity + line.quantity,
                               old.per_emails + line.per_emails, old.unit_price, old.quoted,
                               old.dollars + line.dollars, old.source, old.note, dict(sorted(detail.items())))
    lines = sorted(merged.values(), key=lambda line: order.get((line.service, line.item), len(order)))
    runs = tuple(run for b in breakdowns for run in b.runs)
    unpriced = tuple(sorted({item for b in breakdowns for item in b.unpriced}))
    return Breakdown(per, runs, tuple(lines), breakdowns[0].ses, unpriced)


def _quantity(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:,.2f}"


def _usd(value: float) -> str:
    return f"${value:,.4f}" if value < 10 else f"${value:,.2f}"


def format_table(breakdown: Breakdown) -> str:
    """The breakdown as a fixed-width table for a terminal."""
    runs = ", ".join(f"{label} {emails:,} emails" for label, emails in breakdown.runs)
    out = [f"Cost per {breakdown.per:,} emails at AWS list prices ({breakdown.region}, checked "
           f"{breakdown.prices_checked}; free tiers not applied), from the engine's counts ({runs})", ""]
    header = ("service", "item", "quantity", "price", "USD")
    body = [(line.service, line.item, f"{_quantity(line.per_emails)} {line.unit}", line.quoted, _usd(line.dollars))
            for line in breakdown.lines]
    total = ("total", "on top of SES", "", "", _usd(breakdown.total))
    ses = breakdown.ses
    ses_row = (ses.service, f"{ses.item} (not in the total)", f"{_quantity(ses.per_emails)} {ses.unit}", ses.quoted,
               _usd(ses.dollars))
    widths = [max(len(row[i]) for row in (header, *body, total, ses_row)) for i in range(5)]

    def render(row: tuple[str, ...]) -> str:
        return (f"  {row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]:<{widths[3]}}  "
                f"{row[4]:>{widths[4]}}").rstrip()

    out += [render(header), *(render(row) for row in body), "  " + "-" * (sum(widths) + 8), render(total),
            render(ses_row)]
    if breakdown.unpriced:
        out += ["", "  Unpriced (no price here; not in the total): " + ", ".join(breakdown.unpriced)]
    out += ["", "  Not metered (not in the total):"]
    out += [f"    {item}: {price}; {note}" for item, price, note in NOT_METERED]
    return "\n".join(out)


def unaccounted_counters(snapshot_keys: Iterable[str]) -> list[str]:
    """The snapshot counters COUNTERS does not account for (empty when every one is priced or listed)."""
    return sorted(set(snapshot_keys) - set(COUNTERS))


def short_name(resource: str) -> str:
    """A resource's name without the local stack's prefix and the physical suffix: FeedbackQueue:SendMessage."""
    return re.sub(r"-[0-9A-F]{12}\b", "", resource.removeprefix("sesflow-local-"))


PARTS_OF_COST = (  # (part, names of the resources it is made of), first match wins
    ("quarantine episodes", ("RecipientLifecycle",)),
    ("feedback ingestion", ("FeedbackTopic", "FeedbackQueue", "IngestFeedback", "EventsTable", "RecipientsTable")),
    ("send path", ("/SendPhase", "SendBatch", "SendsTable")),
    ("CampaignsTable (governor, breaker, send and feedback counters)", ("CampaignsTable",)),
    ("per campaign, not per email (parent execution, validate, snapshot, finalize, manifests)",
     ("CampaignStateMachine", "ValidateCampaign", "SnapshotAudience", "FinalizeCampaign", "Object")),
)


def by_part(breakdown: Breakdown) -> dict[str, float]:
    """The total split by what it pays for (PARTS_OF_COST), USD per `per` emails."""
    parts: dict[str, float] = {}
    for line in breakdown.lines:
        for what, quantity in line.detail.items():
            name = short_name(what)
            part = next((p for p, names in PARTS_OF_COST if any(n in name for n in names)), "other")
            parts[part] = parts.get(part, 0.0) + quantity * line.unit_price
    return {k: round(v, 4) for k, v in sorted(parts.items(), key=lambda kv: -kv[1])}


def cost_summary(breakdown: Breakdown) -> dict[str, Any]:
    """The cost per 1M emails as a benchmark or the demo prints it: the total, SES's own price, the priced lines
    dearest first (with the resources they are for) and the split by part. `breakdown` is per 1M emails."""
    if breakdown.per != 1_000_000:
        raise ValueError(f"cost_summary: the breakdown is per {breakdown.per} emails, not per 1,000,000")
    return {
        "total_usd_per_1M_emails": round(breakdown.total, 4),
        "ses_usd_per_1M_emails": round(breakdown.ses.dollars, 2),
        "lines": [{"item": f"{line.service}: {line.item}", "per_1M_emails": round(line.per_emails, 1),
                   "unit": line.unit, "usd": round(line.dollars, 4),
                   "by_resource": {short_name(k): round(v, 1) for k, v in sorted(line.detail.items(),
                                                                                 key=lambda kv: -kv[1])}}
                  for line in sorted(breakdown.lines, key=lambda line: -line.dollars) if line.dollars > 0],
        "by_part_usd": by_part(breakdown),
        "unpriced": list(breakdown.unpriced),
    }
