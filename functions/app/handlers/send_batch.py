"""SendBatchFunction: one manifest batch through SES v2, exactly once (see app.sends), under the breaker and the
account's rate governor.

Before each SES call: the campaign must still be RUNNING after its breaker is evaluated (app.campaign_control);
the governor grants how many sends may go now. A pause, a halt or a cancel stops the batch before its next call
(the batch is STOPPED at that recipient, and a resume sends from there). After a 5xx or a timeout the call's
outcome is unknown: the claim stays SENDING and is never resent (feedback reconciles it).

SES's answers, by what a retry can do about them:
- throttling (TooManyRequestsException, LimitExceededException) and 5xx: a retry or a wait fixes them (below, and
  the Map's Retry);
- a refusal of the call as a whole that every retry would meet again (REFUSED: NotFoundException, a template or
  configuration set that does not exist; MessageRejected, e.g. a sender identity not verified;
  SendingPausedException, AccountSuspendedException, MailFromDomainNotVerifiedException, BadRequestException,
  AccessDeniedException): none is made. The campaign becomes FAILED with SES's code and message, the batch and
  the recipient the call began with (app.campaign_breaker.fail: one alert), and SendRefusedError ends the Map Run
  at once. Another 4xx stops the batch for the Map's Retry, as a crash does (a phase that still fails ends the
  campaign FAILED);
- an entry refused in an accepted call (a BulkEmailEntryResult other than SUCCESS, e.g. INVALID_PARAMETER for a
  malformed address): that recipient is failed with SES's status and Error (app.sends), the others of the call are
  sent. A status that names the call's own setup (TEMPLATE_NOT_FOUND, ACCOUNT_SENDING_PAUSED, ...: ENTRY_FATAL)
  would refuse every later call too: it fails the campaign as a refused call does, after recording the entries.

Waiting for the send rate or the daily quota never happens here beyond a few seconds: the batch stops where it is
and the result says where the wait belongs (app.domain.deferral): `wait_seconds` for the Distributed Map child to
Wait and call again, or `deferred` for the campaign's Standard execution to wait and run the phase again. Under a
send window the batch's zone is checked before each call (app.domain.send_window): outside its window the batch
stops there and is always `deferred` to the next opening (the execution sends the phase's other zones meanwhile).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

from boto3.dynamodb.types import Binary
from botocore.exceptions import ClientError

from app import attributes, campaign_breaker, campaign_control, clock, frequency, sends, unsubscribe
from app.clients import client, client_without_retries
from app.contracts import SendBatchInput
from app.domain import deferral, send_window
from app.domain import frequency as frequency_rules
from app.domain.addresses import InvalidAddress
from app.domain.bandit import round_variant
from app.domain.campaign import Campaign
from app.domain.feedback import CAMPAIGN_HEADER, VARIANT_HEADER
from app.domain.templates import UNSUBSCRIBE_URL
from app.domain.token_bucket import Policy
from app.domain.winner import remainder_variant
from app.errors import DailyQuotaExhaustedError, GovernorBusyError, ManifestError, SendRefusedError
from app.governor import Governor
from app.observability import logger, metrics, redact, tracer
from app.settings import Settings, settings

THROTTLED = {"TooManyRequestsException", "LimitExceededException", "Throttling", "ThrottlingException"}
# SendBulkEmail's errors (SES v2 API reference, SendBulkEmail) that every retry would meet again, and IAM's denial.
REFUSED = {"NotFoundException", "MessageRejected", "SendingPausedException", "AccountSuspendedException",
           "MailFromDomainNotVerifiedException", "BadRequestException", "AccessDeniedException"}
# BulkEmailEntryResult statuses (SES v2 API reference, BulkEmailEntryResult) that say the call's sender, template,
# configuration set or account is at fault, not the entry's recipient: every later call would be refused alike.
ENTRY_FATAL = {"MAIL_FROM_DOMAIN_NOT_VERIFIED", "CONFIGURATION_SET_NOT_FOUND", "TEMPLATE_NOT_FOUND",
               "ACCOUNT_SUSPENDED", "INVALID_SENDING_POOL_NAME", "ACCOUNT_SENDING_PAUSED",
               "CONFIGURATION_SET_SENDING_PAUSED"}
# Why a recipient is not sent when its template data cannot go (the status sesflow records in place of SES's).
DATA_REFUSED = "TEMPLATE_DATA_REFUSED"
# ... and when its address is not one (a row no import checked): SES would refuse its entry (INVALID_PARAMETER).
NOT_AN_ADDRESS = "INVALID_ADDRESS"
# Left of the invocation's time for the SES call and the writes after a governor's grant; also the longest a grant
# may be waited for in one invocation.
CALL_RESERVE_SECONDS = 5.0
MAX_GOVERNOR_WAIT_SECONDS = 10.0
# A grant that took this long to come is checked against the campaign's status again before its call.
RECHECK_AFTER_SECONDS = 1.0
# A batch held by another invocation's SES call is asked for again after this long.
BUSY_BATCH_WAIT_SECONDS = 10.0
# A recipient's template data, as JSON. 50 of them make one SES request: names and codes, not content (that
# belongs in the template). SES's own limit is 262,144 characters.
MAX_TEMPLATE_DATA_BYTES = 10_000
_governor: Governor | None = None


def governor(config: Settings) -> Governor:
    global _governor
    if _governor is None or _governor.table_name != config.campaigns_table:
        reserve = float(os.environ.get("TRANSACTIONAL_RESERVE") or 0)  # the template's TransactionalReserve
        _governor = Governor(client("dynamodb"), config.campaigns_table, client("sesv2"),
                             policy=Policy(transactional_reserve=reserve))
    return _governor


def recipients_of(campaign: Campaign, batch: dict[str, Any], decision: dict[str, Any] | None,
                  weights: dict[str, float] | None = None) -> list[tuple[str, str, bool]]:
    """(address, variant, on probation) of each recipient the batch sends to, in manifest order. In a remainder
    batch the variant comes from the winner decision (none: the policy stopped the campaign, or the address is
    held out). In a bandit's later round it comes from the round's weights, and the batch is put in the order of
    the variants (on probation last within each, as in the manifest), so it takes one SES call per variant and
    configuration set, not one per change of variant: the order is a pure function of the batch and the weights,
    so a retry or a resume finds each recipient at the same position."""
    names = {v.name for v in campaign.variants}
    out: list[tuple[str, str, bool]] = []
    for position, recipient in enumerate(batch["recipients"]):
        if not isinstance(recipient, dict) or not isinstance(recipient.get("address"), str):
            raise ManifestError(f"batch {batch.get('index')}: recipient {position} has no address")
        variant = recipient.get("variant")
        if decision:  # a remainder batch: the winner decision's variants
            variant = remainder_variant(campaign, decision.get("remainder") or (), recipient["address"])
            if variant is None:
                continue
        elif weights:  # a bandit's later round: the round's weights
            variant = round_variant(campaign, weights, recipient["address"])
            if variant is None:
                continue
        if variant not in names:
            raise ManifestError(f"batch {batch.get('index')}: variant {variant!r} is not in the campaign")
        out.append((recipient["address"], variant, recipient.get("probation") is True))
    if weights:
        order = {v.name: i for i, v in enumerate(campaign.variants)}
        out.sort(key=lambda r: (order[r[1]], r[2]))  # stable: manifest order within a variant
    return out


def configuration_set(campaign: Campaign, probation: bool, config: Settings) -> str:
    """The campaign's own configuration set, if it names one; else the stack's, the probation one for
    recipients in RECOVERY (it alone publishes Delivery events, which end a probation)."""
    if campaign.configuration_set:
        return campaign.configuration_set
    return (probation and config.probation_configuration_set) or config.configuration_set


def template_data(campaign: Campaign, addresses: list[str], config: Settings,
                  problems: dict[str, str] | None = None) -> dict[str, str | None] | None:
    """Each recipient's ReplacementTemplateData (JSON), read from the recipients table now, so a change made since
    the snapshot counts; for a recipient whose data cannot go, None (it is not sent, and counts as failed, with
    the reason put in `problems`). None when the campaign personalizes nothing per recipient: the defaults travel
    once, in DefaultContent."""
    personalization = campaign.personalization
    if not personalization.fields:
        return None
    found = attributes.read(addresses, list(personalization.fields), config)
    data: dict[str, str | None] = {}
    for address in addresses:
        own = {k: v for k, v in found.get(address, {}).items() if not isinstance(v, Binary)}
        data[address], problem = _as_json(personalization.template_data(own))
        if problem:
            if problems is not None:
                problems[address] = problem
            logger.warning("recipient not sent", extra={"campaign_id": campaign.id, "recipient": redact(address),
                                                        "reason": problem})
    return data



def reserve_sends(campaign: Campaign, cap: frequency_rules.Cap, addresses: list[str],
                  config: Settings) -> dict[str, tuple[str, str]]:
    """Each recipient's marketing send reserved on its contact under the campaign's frequency cap, before the SES
    call (app.frequency: one conditional write each); those that may not be sent, with their status and why."""
    held: dict[str, tuple[str, str]] = {}
    if not cap.record:
        return held
    now = clock.now()
    for address in addresses:
        why = frequency.reserve(address, campaign.id, cap, now, config)
        if why == frequency_rules.CAPPED:
            held[address] = (why, f"reached {cap.text()} since the snapshot")
        elif why is not None:
            held[address] = (why, "the contact's item no longer exists (erased since the snapshot)")
    return held


def _as_json(values: dict[str, Any]) -> tuple[str | None, str | None]:
    """(the JSON, None), or (None, why it cannot be sent)."""
    try:
        text = json.dumps(values, separators=(",", ":"), ensure_ascii=False)
    except TypeError:  # a binary value inside a map or list: nothing a template can print
        return None, "template data holds a binary value"
    size = len(text.encode())
    if size > MAX_TEMPLATE_DATA_BYTES:
        return None, f"template data is {size} bytes, at most {MAX_TEMPLATE_DATA_BYTES}"
    return text, None


Refused = tuple[str, str] | None  # (SES's status for the entry, its Error text); None: accepted


def send_call(campaign: Campaign, variant: str, probation: bool, addresses: list[str], batch: str, call: int,
              config: Settings, data: dict[str, str | None] | None = None,
              problems: dict[str, str] | None = None,
              held: dict[str, tuple[str, str]] | None = None) -> list[Refused]:
    """One SendBulkEmail of one variant, each message with its own one-click unsubscribe link (RFC 8058), in its
    headers and as {{unsubscribe_url}} in its template data (with, when the campaign personalizes, its own values);
    per recipient, None if SES accepted it, else why not (a
    recipient whose data is None is not sent: `problems` says why; nor is one in `held`, with its status and why:
    its frequency cap). Tagged with its batch and call (its first position in the batch), so feedback can reconcile
    a call whose answer was lost."""
    base, key = os.environ[unsubscribe.URL_ENV], unsubscribe.secret()
    answers: dict[str, Refused] = {}
    headers: dict[str, list[dict[str, str]]] = {}
    for address in addresses:
        if held and address in held:
            answers[address] = held[address]
            continue
        if data is not None and data[address] is None:
            answers[address] = (DATA_REFUSED, (problems or {}).get(address, ""))
            continue
        try:  # the link needs the address in its one spelling: one that has none is not one SES accepts either
            headers[address] = unsubscribe.headers(base, key, campaign.id, address)
        except InvalidAddress as error:
            answers[address] = (NOT_AN_ADDRESS, f"not an address SES accepts: {error}")
        except ValueError as error:  # its List-Unsubscribe header would be longer than SES takes
            answers[address] = (NOT_AN_ADDRESS, str(error))
    sendable = [a for a in addresses if a in headers]
    if not sendable:
        return [answers[a] for a in addresses]
    defaults = campaign.personalization.defaults
    content = {v.name: v for v in campaign.variants}[variant].ses_content(defaults)
    # Identity notifications (no tags) find their campaign from these, when the identity includes headers.
    content["Template"]["Headers"] = [{"Name": CAMPAIGN_HEADER, "Value": campaign.id},
                                      {"Name": VARIANT_HEADER, "Value": variant}]
    response = client_without_retries("sesv2").send_bulk_email(
        FromEmailAddress=campaign.from_header,
        **({"ReplyToAddresses": campaign.reply_to_addresses} if campaign.reply_to else {}),
        ConfigurationSetName=configuration_set(campaign, probation, config),
        DefaultEmailTags=[
            {"Name": "campaign", "Value": campaign.id},
            {"Name": "variant", "Value": variant},
            {"Name": "batch", "Value": batch.replace("#", "-")},
            {"Name": "call", "Value": str(call)},
        ],
        DefaultContent=content,
        BulkEmailEntries=[_entry(a, headers[a], data, defaults) for a in sendable],
    )
    for address, r in zip(sendable, response["BulkEmailEntryResults"], strict=True):
        answers[address] = None if r.get("Status") == "SUCCESS" else (str(r.get("Status") or "FAILED"),
                                                                       str(r.get("Error") or ""))
    return [answers[a] for a in addresses]


def _entry(address: str, headers: list[dict[str, str]], data: dict[str, str | None] | None,
           defaults: dict[str, Any]) -> dict[str, Any]:
    """One BulkEmailEntry: its unsubscribe headers, and its own template data (the recipient's, or the campaign's
    defaults) with {{unsubscribe_url}}, the List-Unsubscribe link, for the template's visible unsubscribe link."""
    values = json.loads(data[address] or "{}") if data is not None else defaults
    link = headers[0]["Value"][1:-1]  # List-Unsubscribe: <link>
    own = json.dumps({**values, UNSUBSCRIBE_URL: link}, separators=(",", ":"), ensure_ascii=False)
    return {"Destination": {"ToAddresses": [address]}, "ReplacementHeaders": headers,
            "ReplacementEmailContent": {"ReplacementTemplate": {"ReplacementTemplateData": own}}}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = SendBatchInput.from_dict(event)  # a payload not of the contract fails here, naming its field
    invocation_seconds = context.get_remaining_time_in_millis() / 1000  # the function's Timeout, near enough
    campaign = request.campaign
    key = sends.batch_key(request.phase, request.batch.index)
    config = settings()
    todo = recipients_of(campaign, event["batch"], event.get("decision"), request.weights)
    result: dict[str, Any] = {"batch": key, "recipients": len(todo), "sent": 0, "failed": 0}  # capped, if any
    if not todo:
        return result

    control = campaign_breaker.check(campaign, config)
    if control.status != campaign_control.RUNNING:
        return {**result, "stopped": control.status}
    if control.deferred_until and control.deferred_until > deferral.rfc3339(clock.now()):
        # The phase is already waiting in the campaign's execution: this child ends at once, claiming nothing.
        return {**result, "deferred": {"until": control.deferred_until, "reason": "phase already deferred"}}
    closed = window_wait(request)
    if closed is not None:  # the batch's zone is outside its send window: nothing is claimed
        return {**result, **_where_to_wait(campaign, closed, request.child_started_at, invocation_seconds, config)}
    # Read before the claim: a failed read then leaves nothing to settle, and the Map's Retry runs it again.
    problems: dict[str, str] = {}  # why a recipient's template data cannot go
    data = template_data(campaign, [address for address, _, _ in todo], config, problems)
    owner = context.aws_request_id  # this invocation holds the claim: see sends.claim
    start, status = sends.claim(campaign.id, key, len(todo), config, owner=owner)
    if start is None:
        if status != sends.SENDING:
            return {**result, "skipped": status}
        # Another invocation is in a call of this batch (a rerun of the phase, or a retry, while it still runs):
        # come back once its call is over, to send what it may leave (it may be an invocation nothing will retry).
        busy = deferral.Wait(BUSY_BATCH_WAIT_SECONDS, deferral.RATE, f"batch {key} is in another invocation's call")
        return {**result, **_where_to_wait(campaign, busy, request.child_started_at, invocation_seconds, config)}

    counts: Counter[str] = Counter()  # for the campaign's stats item
    cap = campaign.cap(config.frequency_cap)
    position, unrecorded_failures = start, []
    wait: deferral.Wait | None = None
    refused: dict[str, Any] | None = None  # an SES refusal no retry fixes (campaign_breaker.failure)

    def finish(status: str) -> None:  # with the counters the breaker last saw: the report's rates over the send
        sends.finish(campaign.id, key, status, position, config, failed=unrecorded_failures, observed=control.stats,
                     owner=owner)

    try:
        while position < len(todo):
            if position > start:  # stop before the next call if the campaign stopped meanwhile
                control = campaign_breaker.check(campaign, config)
            if control.status != campaign_control.RUNNING:
                finish(sends.STOPPED)
                result["stopped"] = control.status
                break
            left = context.get_remaining_time_in_millis() / 1000 - CALL_RESERVE_SECONDS
            asked_at = clock.now()
            grant = _acquire_or_wait(campaign, todo, position, left, config)
            if isinstance(grant, deferral.Wait):
                wait = grant
                finish(sends.STOPPED)
                break
            allowed = grant
            if (clock.now() - asked_at).total_seconds() >= RECHECK_AFTER_SECONDS:
                # The grant was a wait (up to MAX_GOVERNOR_WAIT_SECONDS): a pause, cancel or halt that came meanwhile
                # stops the batch before this call. The tokens it leaves unspent come back within a second.
                control = campaign_breaker.check(campaign, config)
                if control.status != campaign_control.RUNNING:
                    finish(sends.STOPPED)
                    result["stopped"] = control.status
                    break
            wait = window_wait(request)
            if wait is not None:  # the zone's window closed during the batch: it waits for the next opening
                finish(sends.STOPPED)
                break
            variant, probation = todo[position][1:]
            group = [address for address, _, _ in todo[position : position + allowed]]
            # Before the in-flight mark: a crash between the two leaves the reservations, which this campaign's
            # retry finds (the same recipients are sent, counted once) and nothing in flight.
            held = reserve_sends(campaign, cap, group, config)
            if not sends.in_flight(campaign.id, key, position, len(group), config, failed=unrecorded_failures,
                                   owner=owner):
                result["skipped"] = sends.SENDING  # a retry or a rerun took the batch over: it sends the rest
                break
            unrecorded_failures = []
            try:
                answers = send_call(campaign, variant, probation, group, key, position, config, data, problems,
                                    held)
            except ClientError as error:
                code, message = error.response["Error"]["Code"], error.response["Error"].get("Message", "")
                if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500) >= 500 \
                        or code not in THROTTLED | REFUSED:
                    raise  # below: the outcome of a 5xx is unknown; another 4xx is the Map's Retry's
                finish(sends.STOPPED)  # SES refused the call as a whole, so nothing of it was sent
                if code in REFUSED:
                    refused = campaign_breaker.failure(code, message, key, position, group[0])
                    break
                # SES refused the call for its rate or quota: stop the batch there, and wait.
                wait = (deferral.for_daily_quota(0, f"SES: {message}") if "daily" in message.lower()
                        else deferral.Wait(2.0, deferral.RATE, f"SES: {message}"))
                break
            # SES's per-recipient refusals (e.g. a malformed address), on the batch's item with its next write
            unrecorded_failures = [(a, *why) for a, why in zip(group, answers, strict=True) if why is not None]
            accepted = len(group) - len(unrecorded_failures)
            capped = sum(why[0] == frequency_rules.CAPPED for why in answers if why is not None)
            counts["sent"] += accepted
            counts[f"sent#{variant}"] += accepted
            counts["failed"] += len(unrecorded_failures) - capped
            if capped:
                counts["capped"] += capped
                counts[f"capped#{variant}"] += capped
            fatal = next(((i, why) for i, why in enumerate(answers) if why and why[0] in ENTRY_FATAL), None)
            position += len(group)
            if fatal:
                finish(sends.STOPPED)
                refused = campaign_breaker.failure(fatal[1][0], fatal[1][1], key, position - len(group) + fatal[0],
                                                   group[fatal[0]])
                break
        else:
            finish(sends.SENT)
    except ClientError as error:
        # A 4xx refused the call as a whole, so nothing of it was sent: stop the batch there for the Map's Retry.
        # After a 5xx or a timeout the outcome is unknown: it stays in flight, settled as unknown, never resent.
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500) < 500:
            finish(sends.STOPPED)
        campaign_control.add_counts(campaign.id, dict(counts), config)
        raise
    campaign_control.add_counts(campaign.id, dict(counts), config)
    if refused is not None:
        metrics.add_metric(name="EmailsSent", unit="Count", value=counts["sent"])
        logger.error("SES refused the send: the campaign fails", extra={
            "campaign_id": campaign.id, "code": refused["code"], "ses_message": refused["message"], "batch": key,
            "position": refused["position"]})
        if not campaign_breaker.fail(campaign.id, refused, config):
            result["stopped"] = campaign_control.read(campaign.id, config)[0].get("status")
            return {**result, "sent": counts["sent"], "failed": counts["failed"], **_capped(counts)}
        raise SendRefusedError(f"campaign {campaign.id} FAILED: SES refused batch {key} at position "
                               f"{refused['position']}: {refused['code']}: {refused['message']}")
    if counts["sent"]:
        # Feedback about this batch's calls may have been ingested before these sends were counted, and the breaker
        # never counts more events than sends, so ingestion's check let it pass. Counters first, check second, on
        # both sides: whichever checks last sees both, so the breaker trips now rather than never (the last batch
        # of a phase has no next call to check before).
        campaign_breaker.check(campaign, config)
    metrics.add_metric(name="EmailsSent", unit="Count", value=counts["sent"])
    result = {**result, "sent": counts["sent"], "failed": counts["failed"], **_capped(counts)}
    if wait is None:
        return result
    return {**result, **_where_to_wait(campaign, wait, request.child_started_at, invocation_seconds, config)}


def _capped(counts: Counter[str]) -> dict[str, int]:
    return {"capped": counts["capped"]} if counts["capped"] else {}


def window_wait(request: SendBatchInput) -> deferral.Wait | None:
    """The wait for the batch's zone's send window (app.domain.send_window), if it may not be sent now. Checked
    just before each SES call, so no call starts outside the window."""
    window, zone = request.campaign.send_window, request.batch.zone
    if window is None or zone is None or send_window.zone(zone) is None:
        return None
    now = clock.now()
    ready = deferral.parse_rfc3339(request.ready_at) if request.ready_at else None
    if window.is_time_of_day and ready is None:
        return None
    opening = send_window.wait_until(window, zone, now, ready)
    if opening is None:
        return None
    return deferral.Wait((opening - now).total_seconds(), deferral.WINDOW,
                         f"{zone}: the send window opens {send_window.local_text(opening, zone)}")


def _acquire_or_wait(campaign: Campaign, todo: list[tuple[str, str, bool]], position: int, left: float,
                     config: Settings) -> int | deferral.Wait:
    """How many of the next call's recipients may be sent now (having slept for them), or what to wait for."""
    if left <= 0:
        return deferral.Wait(0, deferral.TIME, "the invocation's time is used up")
    variant, probation = todo[position][1:]  # one variant and configuration set per call
    run = next((i for i in range(position, len(todo)) if todo[i][1:] != (variant, probation)), len(todo)) - position
    try:  # ask only for the call's own recipients (one variant per call): tokens granted are spent
        return governor(config).acquire(
            run, stream=campaign.stream, lane=campaign.id, rate_share=campaign.rate_share,
            now=lambda: clock.now().timestamp(), sleep=clock.sleep, max_wait=min(MAX_GOVERNOR_WAIT_SECONDS, left))
    except GovernorBusyError as error:
        # Ask again once the booking is within what the next invocation may wait for itself: waiting the whole
        # booking out would leave the rate idle while the grants ahead of it are spent.
        return deferral.Wait(max(1.0, error.retry_after - MAX_GOVERNOR_WAIT_SECONDS), deferral.RATE, str(error))
    except DailyQuotaExhaustedError as error:
        return deferral.for_daily_quota(error.retry_after, str(error))


def _where_to_wait(campaign: Campaign, wait: deferral.Wait, child_started_at: str | None, invocation_seconds: float,
                   config: Settings) -> dict[str, Any]:
    """`wait_seconds` when the child can wait itself, else `deferred` (recorded on the campaign for its execution)."""
    now = clock.now()
    started = deferral.parse_rfc3339(child_started_at) if child_started_at else now
    if deferral.fits_in_child(wait, started, now, invocation_seconds):
        return {"wait_seconds": deferral.child_seconds(wait)}
    until = deferral.until(wait, now)
    campaign_control.defer(campaign.id, until, wait.reason, wait.message, config)
    logger.info("batch deferred to the campaign's execution",
                extra={"campaign_id": campaign.id, "until": until, "reason": wait.reason})
    return {"deferred": {"until": until, "reason": wait.reason, "message": wait.message}}
