"""The campaign breaker's I/O side: evaluate app.domain.breaker on a campaign's counters, and act on the verdict
(HALTED with one alert, or one warning alert per metric). SendBatch checks before each SES call; ingestion checks
each campaign that just got a bounce or a complaint, and each that got Rendering Failures (too many of them fail
the campaign: app.domain.breaker.rendering_failed). fail() records an SES error no retry can fix: FAILED, with
the error as the campaign's `failure`, and one alert."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from app import clock
from app.campaign_control import FAILED, HALTED, RUNNING, change_status, read
from app.clients import client
from app.domain import breaker
from app.domain.campaign import Campaign, parse_campaign
from app.observability import metrics
from app.settings import Settings


@dataclass(frozen=True)
class Control:
    status: str
    stats: dict[str, int]
    verdict: breaker.Verdict | None = None
    deferred_until: str | None = None  # RFC 3339: the campaign's execution waits until then (app.campaign_control)


def verdict(campaign: Campaign, stats: dict[str, int]) -> breaker.Verdict:
    """The campaign's verdict: the worse of the whole campaign's and each variant's (a variant whose content
    draws complaints harms the sender's reputation as much as a whole campaign would)."""
    overall, by_variant = breaker.counts_from_stats(stats)
    verdicts = [breaker.evaluate(overall.sent, overall.bounces, overall.complaints, campaign.thresholds)]
    verdicts += breaker.evaluate_variants(by_variant, campaign.thresholds).values()
    # with the campaign's own sent: where the report marks a halt decided on one variant's numbers
    return dataclasses.replace(breaker.worst(verdicts), campaign_sent=overall.sent)


def check(campaign: Campaign, settings: Settings) -> Control:
    """The campaign's status after evaluating its breaker now: trips it (HALTED) or warns, once, as needed."""
    item, stats = read(campaign.id, settings)
    status = item.get("status", RUNNING)
    if status != RUNNING:
        return Control(status, stats)
    found = verdict(campaign, stats)
    if found.level == breaker.HALT:
        status = HALTED if halt(campaign.id, found, settings) else read(campaign.id, settings)[0].get("status", status)
    elif found.level == breaker.WARN:
        warn(campaign.id, found, settings)
    return Control(status, stats, found, item.get("deferred_until"))


def check_by_id(campaign_id: str, settings: Settings) -> Control | None:
    """check() for a campaign known by id (feedback): None when it has no control item (not ours, or gone)."""
    item = client("dynamodb").get_item(TableName=settings.campaigns_table,
                                       Key={"campaign_id": {"S": campaign_id}}).get("Item")
    if not item or item.get("status", {}).get("S") != RUNNING or "definition" not in item:
        return None
    return check(parse_campaign(json.loads(item["definition"]["S"])), settings)


def halt(campaign_id: str, found: breaker.Verdict, settings: Settings) -> bool:
    """Trip the breaker: RUNNING -> HALTED with the numbers, and one alert (from whoever wins the write)."""
    details = {"halt": {**found.to_dict(), "at": clock.now().isoformat()}}
    if not change_status(campaign_id, HALTED, settings, details):
        return False
    # Once per campaign: only the write that moved it to HALTED counts. Both callers (SendBatch, IngestFeedback)
    # run under @metrics.log_metrics, which flushes it at the end of the invocation.
    metrics.add_metric(name="CampaignsHalted", unit="Count", value=1)
    alert(settings, f"sesflow: campaign {campaign_id} HALTED ({found.metric})",
          {"campaign_id": campaign_id, "status": HALTED, **found.to_dict()})
    return True


def failure(code: str, message: str, batch: str | None = None, position: int | None = None,
            recipient: str | None = None, **extra: Any) -> dict[str, Any]:
    """The control item's `failure`: the SES error that stopped the send, and the batch and recipient it concerns."""
    return {"at": clock.now().isoformat(), "code": code, "message": message, "batch": batch, "position": position,
            "recipient": recipient, **extra}


def fail(campaign_id: str, found: dict[str, Any], settings: Settings) -> bool:
    """RUNNING -> FAILED with `found` (failure()) recorded and appended to the history, and one alert (from whoever
    wins the write). False when the campaign was not RUNNING (already stopped: nothing recorded)."""
    if not change_status(campaign_id, FAILED, settings, {"failure": found}):
        return False
    metrics.add_metric(name="CampaignsFailed", unit="Count", value=1)
    where = f" in batch {found['batch']}" if found.get("batch") else ""
    alert(settings, f"sesflow: campaign {campaign_id} FAILED ({found['code']})",
          {"campaign_id": campaign_id, "status": FAILED, **found,
           "what_now": f"SES refused the send{where}: fix the cause, then `sesflow campaign resume {campaign_id}` "
                       "sends the recipients not yet sent"})
    return True


def check_rendering(campaign_id: str, example: dict[str, Any], settings: Settings) -> bool:
    """After Rendering Failures were counted: fail the campaign (if RUNNING) when they are too many of its sends
    (app.domain.breaker.rendering_failed). `example`: one of the failures, as failure() takes it (SES's
    errorMessage, the batch and recipient). True if this call failed it."""
    item, stats = read(campaign_id, settings)
    if item.get("status") != RUNNING:
        return False
    failures, sent = stats.get("rendering_failures", 0), stats.get("sent", 0)
    if not breaker.rendering_failed(failures, sent):
        return False
    return fail(campaign_id, failure(**example, rendering_failures=failures, sent=sent), settings)


def warn(campaign_id: str, found: breaker.Verdict, settings: Settings) -> bool:
    """The warn level: one alert per metric per campaign, and the campaign keeps sending."""
    try:
        client("dynamodb").update_item(
            TableName=settings.campaigns_table, Key={"campaign_id": {"S": campaign_id}},
            UpdateExpression="SET #w = :verdict",
            ConditionExpression="attribute_exists(campaign_id) AND attribute_not_exists(#w)",
            ExpressionAttributeNames={"#w": f"warned_{found.metric}"},
            ExpressionAttributeValues={":verdict": {"S": json.dumps({**found.to_dict(),
                                                                        "at": clock.now().isoformat()})}})
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    alert(settings, f"sesflow: campaign {campaign_id} warning ({found.metric})",
          {"campaign_id": campaign_id, "status": "WARNING", **found.to_dict()})
    return True


def alert(settings: Settings, subject: str, message: dict[str, Any]) -> None:
    client("sns").publish(TopicArn=settings.alert_topic_arn, Subject=subject[:100],
                          Message=json.dumps(message, indent=2))
