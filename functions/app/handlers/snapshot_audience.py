"""SnapshotAudienceFunction: the campaign's eligible recipients, variants assigned, as an S3 manifest."""

import json
from collections import Counter
from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from app.clients import client, table
from app.domain.campaign import HOLDOUT, assign_variant, batches, parse_campaign
from app.observability import logger, metrics, tracer
from app.settings import settings

BATCH_SIZE = 50  # SES SendBulkEmail takes at most 50 entries
SENDABLE = ("ACTIVE", "RECOVERY")


def eligible_addresses(list_id: str) -> list[str]:
    recipients = table(settings().recipients_table)
    query = {
        "IndexName": "AudienceIndex",
        "KeyConditionExpression": Key("list_id").eq(list_id),
        "FilterExpression": Attr("status").is_in(list(SENDABLE)),
        "ProjectionExpression": "address",
    }
    addresses: list[str] = []
    while True:
        page = recipients.query(**query)
        addresses.extend(item["address"] for item in page["Items"])
        if "LastEvaluatedKey" not in page:
            return addresses
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    campaign = parse_campaign(event["campaign"])
    run = event["execution_name"]
    assigned = [(address, assign_variant(campaign, address)) for address in eligible_addresses(campaign.list_id)]
    sendable = [{"address": a, "variant": v} for a, v in assigned if v != HOLDOUT]
    holdout = [a for a, v in assigned if v == HOLDOUT]
    manifest = [{"index": i, "recipients": chunk} for i, chunk in enumerate(batches(sendable, BATCH_SIZE))]

    prefix = f"campaigns/{campaign.id}/{run}"
    s3 = client("s3")
    bucket = settings().manifest_bucket
    s3.put_object(Bucket=bucket, Key=f"{prefix}/manifest.json", Body=json.dumps(manifest).encode())
    s3.put_object(Bucket=bucket, Key=f"{prefix}/holdout.json", Body=json.dumps(holdout).encode())

    by_variant = Counter(v for _, v in assigned)
    metrics.add_metric(name="AudienceRecipients", unit="Count", value=len(assigned))
    logger.info("audience snapshot", extra={"campaign_id": campaign.id, "by_variant": dict(by_variant)})
    return {
        "manifest_key": f"{prefix}/manifest.json",
        "holdout_key": f"{prefix}/holdout.json",
        "batches": len(manifest),
        "recipients": len(sendable),
        "holdout": len(holdout),
        "by_variant": dict(sorted(by_variant.items())),
    }
