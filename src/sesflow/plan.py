"""`sesflow campaign plan FILE`: what a campaign would do, checked before anything starts. `campaign start` runs the
same plan and starts nothing when it has a problem.

Each check prints one or more lines, ok / warning / problem:

- definition   parse_campaign, as ValidateCampaignFunction runs it (with the stack's allowed configuration sets)
- start_at     a start time already past is refused unless --now (app.domain.plan.start_problem: the one rule)
- sender       SES v2 GetEmailIdentity of the address, else of its domain and parent domains (a verified domain
               covers its subdomains' addresses): VerifiedForSendingStatus must be true; DkimAttributes.Status other
               than SUCCESS warns
- configuration_set  GetConfigurationSet of each set the campaign sends through (its own, else the stack's, and the
               probation set when recipients are in RECOVERY): it must exist and SendingOptions.SendingEnabled be on
- account      GetAccount: SendingEnabled off or EnforcementStatus SHUTDOWN is a problem; PROBATION and the sandbox
               (ProductionAccessEnabled false: only verified addresses receive) warn
- audience     the contacts eligible per variant, the holdout and those left out by reason, read and split by the
               code SnapshotAudienceFunction runs (app.audience, app.domain.campaign.split_audience); nobody to send
               to is a problem; a filter whose values are of another kind than every stored value warns
- frequency_cap  the cap that holds (the stack's FrequencyCapEmails / FrequencyCapDays, the campaign's own with its
               reason, exempt, or transactional) and the contacts at it, left out (counted in the audience's left out)
- send_window  under a send window: each zone's recipients and its first opening from the start, in UTC and in
               the zone's local time, in the order the zones are sent; the recipients without a zone of their own
               (or with one that is not an IANA name), sent in the campaign's zone (app.domain.send_window)
- templates    each variant's template (stored: GetEmailTemplate; inline: the definition's) rendered as SES renders
               it (app.domain.rendering) with the template data of up to 20 contacts per variant: what
               SendBatchFunction sends them (personalization.template_data of their attributes); a variable missing
               for a contact is a problem naming the variant, the part and the contact
- quota        GetAccount SendQuota: the time at the campaign's share of the send rate (the governor's limits), whether
               the 24-hour quota left suffices (a warning with the days it takes when not), SES's price

The plan only reads: Query and BatchGetItem on the contact tables, ListSuppressedDestinations and the SES Get* calls
above. It writes no item, no object and sends nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from typing import Any

from botocore.exceptions import ClientError

from sesflow.target import Target

OK, WARNING, PROBLEM = "ok", "warning", "problem"
PARTS = (("Subject", "subject"), ("Html", "html"), ("Text", "text"))


@dataclass(frozen=True)
class Line:
    check: str
    level: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "level": self.level, "message": self.message,
                **({"detail": self.detail} if self.detail else {})}


@dataclass
class Plan:
    target: str
    campaign_id: str | None
    lines: list[Line] = field(default_factory=list)
    audience: dict[str, Any] | None = None
    estimate: dict[str, Any] | None = None

    @property
    def problems(self) -> list[Line]:
        return [line for line in self.lines if line.level == PROBLEM]

    def to_dict(self) -> dict[str, Any]:
        return {"campaign_id": self.campaign_id, "target": self.target, "ok": not self.problems,
                "problems": len(self.problems), "warnings": sum(line.level == WARNING for line in self.lines),
                "checks": [line.to_dict() for line in self.lines], "audience": self.audience,
                "estimate": self.estimate}

    def text(self) -> str:
        width = max((len(line.check) for line in self.lines), default=0)
        out = [f"Plan of campaign {self.campaign_id or '?'} on {self.target}:"]
        out += [f"  {line.level:<7}  {line.check:<{width}}  {line.message}" for line in self.lines]
        if self.problems:
            out.append(f"{len(self.problems)} problem(s): nothing started")
        return "\n".join(out)


class Context:
    """What the checks share: the target, the parsed campaign, and the SES and audience reads, each made once."""

    def __init__(self, target: Target, campaign: Any, now: datetime, now_given: bool, plan: Plan) -> None:
        from app import audience, clients
        from app.settings import settings

        self.target, self.campaign, self.now, self.now_given, self.plan = target, campaign, now, now_given, plan
        self.config = settings()
        self.ses = clients.client("sesv2")
        self._audience_module = audience
        self._account: dict[str, Any] | None = None
        self._read: Any = None
        self._split: Any = None

    def account(self) -> dict[str, Any]:
        if self._account is None:
            self._account = self.ses.get_account()
        return self._account

    def read(self) -> Any:
        if self._read is None:
            self._read = self._audience_module.read(self.campaign, self.config)
        return self._read

    def split(self) -> Any:
        if self._split is None:
            from app.domain.campaign import split_audience

            self._split = split_audience(self.campaign, self.read().selection.chosen,
                                         self._audience_module.account_suppressed())
        return self._split


def _error(error: ClientError) -> tuple[str, str]:
    return error.response.get("Error", {}).get("Code", ""), error.response.get("Error", {}).get("Message", "")


# --- the checks --------------------------------------------------------------------------------------------------


def check_start(ctx: Context) -> list[Line]:
    from app.domain.plan import start_problem

    problem = start_problem(ctx.campaign.start_at, ctx.now, now_given=ctx.now_given)
    if problem:
        return [Line("start_at", PROBLEM, problem)]
    if ctx.campaign.start_at is None:
        return [Line("start_at", OK, "starts at once")]
    at = datetime.fromisoformat(ctx.campaign.start_at.replace("Z", "+00:00"))
    if at < ctx.now:
        return [Line("start_at", OK, f"start_at {ctx.campaign.start_at} is past: starts at once (--now)")]
    return [Line("start_at", OK, f"waits until {ctx.campaign.start_at}")]


def identity_candidates(sender: str) -> list[str]:
    """The identities that can verify a sender, most specific first: the address, its domain, its parent domains
    (SES: a verified domain covers every address and subdomain of it)."""
    address = parseaddr(sender)[1] or sender
    labels = address.rsplit("@", 1)[-1].lower().split(".")
    return [address] + [".".join(labels[i:]) for i in range(len(labels) - 1)]


def check_sender(ctx: Context) -> list[Line]:
    sender, found = ctx.campaign.sender, []
    for name in identity_candidates(sender):
        try:
            found.append((name, ctx.ses.get_email_identity(EmailIdentity=name)))
        except ClientError as error:
            code, message = _error(error)
            if code != "NotFoundException":
                return [Line("sender", PROBLEM, f"{sender}: GetEmailIdentity {name} failed: {code} {message}")]
    if not found:
        return [Line("sender", PROBLEM, f"{sender} is not verified in SES ({ctx.target.region}): no identity for the "
                                        f"address or its domain; create and verify one (SES would refuse every "
                                        f"message: MessageRejected)")]
    verified = [(n, i) for n, i in found if i.get("VerifiedForSendingStatus")]
    if not verified:
        name, identity = found[0]
        return [Line("sender", PROBLEM, f"{sender}: identity {name} is not verified for sending (VerificationStatus "
                                        f"{identity.get('VerificationStatus', '?')}): SES would refuse every message")]
    name, identity = verified[0]
    lines = [Line("sender", OK, f"{sender}: verified by identity {name}")]
    # An address identity and its domain's may both answer: the message is signed when either's DKIM works.
    statuses = [i.get("DkimAttributes") or {} for _, i in verified if (i.get("DkimAttributes") or {}).get("Status")]
    dkim = next((d for d in statuses if d.get("Status") == "SUCCESS"), statuses[0] if statuses else {})
    if dkim.get("Status") != "SUCCESS" or not dkim.get("SigningEnabled", True):
        lines.append(Line("sender", WARNING, f"{sender}: DKIM is {dkim.get('Status', 'not set up')} for {name}: "
                                             f"messages go out without your domain's DKIM signature"))
    return lines


def configuration_sets(ctx: Context) -> list[str]:
    """The sets the campaign's batches send through (app.handlers.send_batch.configuration_set)."""
    if ctx.campaign.configuration_set:
        return [ctx.campaign.configuration_set]
    sets = [ctx.config.configuration_set]
    probation = ctx.config.probation_configuration_set
    if probation and probation not in sets and "RECOVERY" in ctx.read().selection.chosen.values():
        sets.append(probation)
    return sets


def check_configuration_sets(ctx: Context) -> list[Line]:
    lines = []
    for name in configuration_sets(ctx):
        try:
            found = ctx.ses.get_configuration_set(ConfigurationSetName=name)
        except ClientError as error:
            code, message = _error(error)
            what = "does not exist" if code == "NotFoundException" else f"cannot be read ({code} {message})"
            lines.append(Line("configuration_set", PROBLEM, f"{name} {what} in {ctx.target.region}: SES would refuse "
                                                            f"every message sent through it"))
            continue
        if (found.get("SendingOptions") or {}).get("SendingEnabled") is False:
            lines.append(Line("configuration_set", PROBLEM, f"{name}: sending is paused on it (SendingOptions."
                                                            f"SendingEnabled false): SES would refuse its messages"))
        else:
            lines.append(Line("configuration_set", OK, f"{name} exists and sends"))
    return lines


def check_account(ctx: Context) -> list[Line]:
    account, region = ctx.account(), ctx.target.region
    enforcement = account.get("EnforcementStatus")
    if account.get("SendingEnabled") is False or enforcement == "SHUTDOWN":
        return [Line("account", PROBLEM, f"SES sending is disabled for the account in {region} (SendingEnabled "
                                         f"{account.get('SendingEnabled')}, EnforcementStatus {enforcement})")]
    lines = [Line("account", OK, f"SES sending is enabled in {region}")]
    if enforcement == "PROBATION":
        lines.append(Line("account", WARNING, f"the account is under review in {region} (EnforcementStatus "
                                              f"PROBATION): bounces and complaints weigh more now"))
    if not account.get("ProductionAccessEnabled"):
        lines.append(Line("account", WARNING, f"the account is in the SES sandbox in {region}: only verified "
                                              f"addresses (and the mailbox simulator) receive; the others fail"))
    return lines


def check_audience(ctx: Context) -> list[Line]:
    from app.domain.campaign import HOLDOUT

    read, split = ctx.read(), ctx.split()
    left_out = dict(sorted({**read.selection.left_out, "ses_suppressed": split.ses_suppressed}.items()))
    left_out = {k: v for k, v in left_out.items() if v}
    cohorts = {name: len(members) for name, members in split.cohorts.items()}
    sent_by_variant = {v.name: 0 for v in ctx.campaign.variants}
    for _, variant in split.assigned:
        if variant != HOLDOUT:
            sent_by_variant[variant] += 1
    shown = {"recipients": split.recipients, "by_variant": split.by_variant, "holdout": len(split.holdout),
                    "phases": cohorts, "left_out": left_out, "states": dict(sorted(read.selection.states.items()))}
    ctx.plan.audience = shown
    variants = ", ".join(f"{name} {n:,}" for name, n in sent_by_variant.items())
    left = ", ".join(f"{k} {v:,}" for k, v in left_out.items()) or "none"
    lines = []
    if split.recipients == 0:
        lines.append(Line("audience", PROBLEM, f"nobody to send to on {', '.join(ctx.campaign.audience.lists)} "
                                               f"(holdout {len(split.holdout):,}; left out: {left})", shown))
    else:
        if set(cohorts) == {"all"}:
            phases = ""
        elif "test" in cohorts:
            phases = f"; test cohort {cohorts['test']:,} now, remainder {cohorts['remainder']:,} gets the winner"
        else:  # bandit: the weights above are round 1's; the later rounds' come from their reweighting
            phases = (f"; {len(cohorts)} rounds of " + ", ".join(f"{n:,}" for n in cohorts.values()) +
                      ", the first by these weights, each later one reweighted toward the better variant")
        lines.append(Line("audience", OK, f"{split.recipients:,} recipients: {variants}; holdout "
                                          f"{len(split.holdout):,}{phases}; left out: {left}", shown))
    return lines


def check_frequency_cap(ctx: Context) -> list[Line]:
    """The frequency cap that holds for the campaign (the stack's FrequencyCapEmails / FrequencyCapDays, or the
    campaign's own with its reason), and how many contacts it leaves out now."""
    from app.domain.audience import LEFT_FREQUENCY_CAPPED

    policy = ctx.config.frequency_cap
    cap = ctx.campaign.cap(policy)
    capped = ctx.read().selection.left_out.get(LEFT_FREQUENCY_CAPPED, 0)
    detail = {"account": {"emails": policy.emails, "days": policy.days}, "source": cap.source,
              "emails": cap.emails, "days": cap.days or None, "reason": cap.reason, "left_out": capped}
    account = f"; the account's: {policy.text()}" if cap.source in ("campaign", "exempt") else ""
    left = f": {capped:,} contacts at it are left out" if cap.emails is not None else ""
    return [Line("frequency_cap", OK, f"{cap.text()}{account}{left}", detail)]
def check_send_window(ctx: Context) -> list[Line]:
    from collections import Counter

    from app.domain import send_window
    from app.domain.plan import zone_starts

    window = ctx.campaign.send_window
    if window is None:
        return []
    contacts = ctx.read().contacts
    zones: Counter[str] = Counter()
    defaulted: Counter[str] = Counter()
    for members in ctx.split().cohorts.values():
        for address, _ in members:
            found = contacts.get(address)
            zone, why = send_window.recipient_zone(window, found.attributes.get(window.zone_attribute)
                                                   if found else None)
            zones[zone] += 1
            if why:
                defaulted[why] += 1
    start = ctx.now
    if ctx.campaign.start_at:
        start = max(start, datetime.fromisoformat(ctx.campaign.start_at.replace("Z", "+00:00")))
    starts = zone_starts(window, zones, start)
    shown = ", ".join(f"{z.zone} {z.recipients:,} from {z.to_dict()['opens_at']} ({z.to_dict()['local']})"
                      for z in starts) or "nobody"
    note = ""
    if defaulted:
        note = "; in the campaign's zone " + window.time_zone + ": " + ", ".join(
            f"{n:,} {'without a zone' if why == send_window.MISSING else 'with an invalid zone'}"
            for why, n in sorted(defaulted.items()))
    if ctx.campaign.ab.mode == "test_then_winner":
        note += "; the test cohort then, the remainder in its windows after the evaluation window"
    detail = {"window": window.to_dict(), "zones": [z.to_dict() for z in starts], "zone_defaulted": dict(defaulted)}
    return [Line("send_window", OK, f"{send_window.describe(window)} local time: {shown}{note}", detail)]


def check_filters(ctx: Context) -> list[Line]:
    from app.domain.plan import filter_type_warnings

    if not ctx.campaign.audience.attributes:
        return []
    stored = [c.attributes for c in ctx.read().contacts.values() if not c.erased]
    return [Line("filters", WARNING, text) for text in filter_type_warnings(ctx.campaign.audience, stored)]


def variant_content(ses: Any, variant: Any) -> dict[str, str]:
    """A variant's parts (Subject, Html, Text) as SES renders them: the stored template's, or the inline ones.
    Raises LookupError naming the template when SES has no such template."""
    if not variant.inline:
        try:
            content = ses.get_email_template(TemplateName=variant.template)["TemplateContent"]
        except ClientError as error:
            code, message = _error(error)
            if code == "NotFoundException":
                raise LookupError(f"variant {variant.name}: SES template {variant.template!r} does not exist") \
                    from None
            raise LookupError(f"variant {variant.name}: GetEmailTemplate {variant.template!r} failed: {code} "
                              f"{message}") from None
        return {k: content[k] for k, _ in PARTS if content.get(k)}
    parts = {"Subject": variant.subject, "Html": variant.html, "Text": variant.text}
    return {k: v for k, v in parts.items() if v}


def template_data(campaign: Any, attributes: dict[str, Any]) -> dict[str, Any]:
    """What SendBatchFunction sends a contact as template data: the personalization over its attributes (binary
    values left out, as SendBatch leaves them), and what sesflow adds to every message ({{unsubscribe_url}})."""
    from app.domain.templates import sesflow_data
    from boto3.dynamodb.types import Binary

    own = {k: v for k, v in attributes.items() if k in campaign.personalization.fields and not isinstance(v, Binary)}
    return {**campaign.personalization.template_data(own), **sesflow_data()}


def render_failure(content: dict[str, str], data: dict[str, Any]) -> tuple[str, str] | None:
    """(part, SES's message) of the first part that does not render with `data`; None when all do."""
    from app.domain.rendering import RenderingError, render

    for key, part in PARTS:
        if key in content:
            try:
                render(content[key], data)
            except RenderingError as error:
                return part, error.message
    return None


def check_templates(ctx: Context) -> list[Line]:
    from app.domain.plan import sample

    split, contacts = ctx.split(), ctx.read().contacts
    chosen = sample(ctx.campaign, split.assigned)
    lines = []
    for variant in ctx.campaign.variants:
        try:
            content = variant_content(ctx.ses, variant)
        except LookupError as error:
            lines.append(Line("templates", PROBLEM, str(error)))
            continue
        what = f"template {variant.template}" if not variant.inline else "inline content"
        addresses = chosen.get(variant.name) or []
        cases = [(a, template_data(ctx.campaign, contacts[a].attributes)) for a in addresses] or \
            [(None, dict(ctx.campaign.personalization.defaults))]
        failures = [(a, failed) for a, data in cases if (failed := render_failure(content, data))]
        if failures:
            address, (part, message) = failures[0]
            if not address:
                who, counted = "the personalization defaults", ""
            elif len(failures) == len(cases) > 1:
                who, counted = f"any of the {len(cases)} sampled contacts (e.g. contact {address})", ""
            else:
                who, counted = f"contact {address}", f" ({len(failures)} of {len(cases)} sampled contacts)"
            lines.append(Line("templates", PROBLEM, f"variant {variant.name}: {what}, {part} does not render for "
                                                    f"{who}{counted}: {message}",
                              {"variant": variant.name, "part": part, "contact": address, "message": message,
                               "failed": len(failures), "sampled": len(cases)}))
        else:
            tried = f"{len(addresses)} sampled contacts" if addresses else "the personalization defaults"
            lines.append(Line("templates", OK, f"variant {variant.name}: {what} renders for {tried} "
                                               f"({', '.join(p for k, p in PARTS if k in content)})"))
        lines += lint_lines(ctx.campaign, variant, content)
    return lines


def lint_lines(campaign: Any, variant: Any, content: dict[str, str]) -> list[Line]:
    """`sesflow template lint` of the variant's content against the campaign: a part that does not parse is a
    problem; a variable its data never has, a marketing body without a visible unsubscribe link, a size over
    SES's limits are warnings (SES would still send; the rendering check above tells whether it renders)."""
    from app.domain.campaign import MARKETING
    from app.domain.templates import CONTENT, PARSE, EmailTemplate, campaign_names, lint

    template = EmailTemplate.from_ses(variant.template or f"variant {variant.name} (inline)", content)
    found = lint(template, names=campaign_names(campaign.personalization), marketing=campaign.stream == MARKETING)
    return [Line("templates", PROBLEM if problem.kind in (PARSE, CONTENT) else WARNING,
                 f"variant {variant.name}: {problem}",
                 {"variant": variant.name, "part": problem.part, "variable": problem.variable, "kind": problem.kind})
            for problem in found]


def check_quota(ctx: Context) -> list[Line]:
    from app.domain.plan import duration_text, estimate

    from sesflow.engine.pricing import PRICES

    quota = ctx.account().get("SendQuota") or {}
    price = PRICES["ses_email"]
    reserve = float(ctx.target.parameters.get("TransactionalReserve") or 0)
    found = estimate(ctx.campaign, ctx.split().recipients, max_send_rate=float(quota.get("MaxSendRate", 0)),
                     max_24h_send=float(quota.get("Max24HourSend", 0)),
                     sent_last_24h=float(quota.get("SentLast24Hours", 0)), price_per_email=price.usd,
                     transactional_reserve=reserve)
    ctx.plan.estimate = {**found.to_dict(), "ses_price": price.quoted, "ses_price_region": "us-east-1 list price"}
    from app.domain.campaign import BANDIT

    window = "rounds' windows" if ctx.campaign.ab.mode == BANDIT else "evaluation window"
    waiting = f" plus the {duration_text(found.waiting_seconds)} {window}" if found.waiting_seconds else ""
    left = ("no 24-hour limit" if found.daily_left is None else
            f"24-hour quota left {found.daily_left:,} of {found.daily_cap:,}")
    took = duration_text(found.sending_seconds)
    took = took if took.startswith("under") else f"about {took}"
    lines = [Line("quota", OK, f"{found.recipients:,} emails at {found.rate:,.1f}/s (rate_share "
                               f"{ctx.campaign.rate_share:g} of MaxSendRate {quota.get('MaxSendRate', 0):g}): "
                               f"{took} of sending{waiting}; {left}", found.to_dict())]
    if found.days == 0 and found.recipients:
        lines.append(Line("quota", PROBLEM, "the account's 24-hour quota is 0: nothing can be sent"))
    elif not found.quota_suffices:
        lines.append(Line("quota", WARNING, f"the 24-hour quota left ({found.daily_left:,} of {found.daily_cap:,}, "
                                            f"{quota.get('SentLast24Hours', 0):g} sent in the last 24 hours) is short "
                                            f"of {found.recipients:,}: the governor spreads the send over about "
                                            f"{found.days} days"))
    usd = f"${found.ses_usd:,.2f}" if found.ses_usd >= 0.01 or not found.ses_usd else f"${found.ses_usd:.4f}"
    lines.append(Line("cost", OK, f"about {usd} at SES's {price.quoted} (us-east-1 list price, "
                                  f"checked {_checked()})"))
    return lines


def _checked() -> str:
    from sesflow.engine.pricing import PRICES_CHECKED

    return PRICES_CHECKED


# The checks after the definition parses, in the order they print; each returns its lines. A check that raises
# ClientError becomes a problem line naming it. `sesflow template lint` (app.domain.templates) belongs here too:
# wire it in as one more entry after check_templates.
CHECKS: list[Callable[[Context], list[Line]]] = [
    check_start,
    check_sender,
    check_configuration_sets,
    check_account,
    check_audience,
    check_frequency_cap,
    check_send_window,
    check_filters,
    check_templates,
    check_quota,
]


def make_plan(target: Target, definition: dict[str, Any], *, now_given: bool = False,
              now: datetime | None = None) -> Plan:
    """Every check of the campaign `definition` on `target`. Reads only."""
    target.lambda_settings()  # the target's environment, before app.clients makes a client
    from app import clock
    from app.domain.campaign import parse_campaign
    from app.errors import CampaignDefinitionError
    from app.settings import settings

    plan = Plan(target.name, str(definition.get("id")) if definition.get("id") is not None else None)
    try:
        campaign = parse_campaign(definition, allowed_configuration_sets=settings().campaign_configuration_sets)
    except CampaignDefinitionError as error:
        plan.lines.append(Line("definition", PROBLEM, f"the campaign definition is not valid: {error}"))
        return plan
    plan.lines.append(Line("definition", OK, f"valid: {len(campaign.variants)} variant(s), {campaign.ab.mode}, "
                                             f"lists {', '.join(campaign.audience.lists)}"))
    ctx = Context(target, campaign, now or clock.now(), now_given, plan)
    for check in CHECKS:
        try:
            plan.lines.extend(check(ctx))
        except ClientError as error:
            code, message = _error(error)
            plan.lines.append(Line(check.__name__.removeprefix("check_"), PROBLEM, f"{code}: {message}"))
    return plan


def print_plan(plan: Plan, as_json: bool) -> None:
    print(json.dumps(plan.to_dict(), indent=2) if as_json else plan.text())
