"""The campaign breaker's I/O side: evaluate app.domain.breaker on a campaign's counters, and act on the verdict
(HALTED with one alert, or one warning alert per metric). SendBatch checks before each SES call; ingestion checks
each campaign that just got a bounce or a complaint."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from app import clock
from app.campaign_control import HALTED, RUNNING, change_status, read
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
    return breaker.worst(verdicts)


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
