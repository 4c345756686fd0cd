"""SendBatchFunction: one manifest batch through SES v2, each recipient claimed in SendsTable first.

The claim is a conditional put on (campaign, recipient): a retry, a crash or a rerun finds the claim
and skips that recipient instead of sending again. A claim left SENDING after a crash has an unknown
outcome; it is reconciled from SES feedback, never resent.
"""

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from app.clients import client, table
from app.domain.campaign import parse_campaign
from app.errors import ManifestError
from app.observability import logger, metrics, tracer
from app.settings import settings


def claim(sends: Any, campaign_id: str, address: str, variant: str) -> bool:
    try:
        sends.put_item(
            Item={
                "campaign_id": campaign_id,
                "recipient": address,
                "variant": variant,
                "status": "SENDING",
                "claimed_at": datetime.now(UTC).isoformat(),
            },
            ConditionExpression="attribute_not_exists(recipient)",
        )
        return True
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    campaign = parse_campaign(event["campaign"])
    batch = event.get("batch")
    if not isinstance(batch, dict) or not isinstance(batch.get("recipients"), list):
        raise ManifestError(f"batch: expected an object with a recipients list, got {type(batch).__name__}")
    templates = {v.name: v.template for v in campaign.variants}
    sends = table(settings().sends_table)

    claimed: dict[str, list[str]] = defaultdict(list)
    skipped = 0
    for recipient in batch["recipients"]:
        address, variant = recipient["address"], recipient["variant"]
        if variant not in templates:
            raise ManifestError(f"batch {batch.get('index')}: variant {variant!r} is not in the campaign")
        if claim(sends, campaign.id, address, variant):
            claimed[variant].append(address)
        else:
            skipped += 1

    sent = failed = 0
    ses = client("sesv2")
    for variant, addresses in claimed.items():
        response = ses.send_bulk_email(
            FromEmailAddress=campaign.sender,
            ConfigurationSetName=settings().configuration_set,
            DefaultEmailTags=[
                {"Name": "campaign", "Value": campaign.id},
                {"Name": "variant", "Value": variant},
            ],
            DefaultContent={"Template": {"TemplateName": templates[variant], "TemplateData": "{}"}},
            BulkEmailEntries=[{"Destination": {"ToAddresses": [a]}} for a in addresses],
        )
        for address, result in zip(addresses, response["BulkEmailEntryResults"], strict=True):
            ok = result.get("Status") == "SUCCESS"
            sent += ok
            failed += not ok
            sends.update_item(
                Key={"campaign_id": campaign.id, "recipient": address},
                UpdateExpression="SET #s = :s, message_id = :m, sent_at = :t",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":s": "SENT" if ok else "FAILED",
                    ":m": result.get("MessageId", "none"),
                    ":t": datetime.now(UTC).isoformat(),
                },
            )
    metrics.add_metric(name="EmailsSent", unit="Count", value=sent)
    return {"index": batch.get("index"), "sent": sent, "skipped": skipped, "failed": failed}
