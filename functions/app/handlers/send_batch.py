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
from app.errors import ManifestError, SesThrottledError
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


THROTTLED = {"TooManyRequestsException", "LimitExceededException", "Throttling", "ThrottlingException"}


def release(sends: Any, campaign_id: str, addresses: list[str]) -> None:
    """SES refused the call, so nothing was sent: free the claims for the retry (only those still SENDING)."""
    for address in addresses:
        try:
            sends.delete_item(Key={"campaign_id": campaign_id, "recipient": address},
                              ConditionExpression="#s = :sending", ExpressionAttributeNames={"#s": "status"},
                              ExpressionAttributeValues={":sending": "SENDING"})
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
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
    config = settings()
    sends = table(config.sends_table)

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
    done: set[str] = set()
    ses = client("sesv2")
    for variant, addresses in claimed.items():
        try:
            response = ses.send_bulk_email(
                FromEmailAddress=campaign.sender,
                ConfigurationSetName=config.configuration_set,
                DefaultEmailTags=[
                    {"Name": "campaign", "Value": campaign.id},
                    {"Name": "variant", "Value": variant},
                ],
                DefaultContent={"Template": {"TemplateName": templates[variant], "TemplateData": "{}"}},
                BulkEmailEntries=[{"Destination": {"ToAddresses": [a]}} for a in addresses],
            )
        except ClientError as error:
            # A 4xx answer refused the call as a whole, so nothing of it was sent: release the claims not yet
            # sent and let the Map's Retry send them. After a 5xx or a timeout the outcome is unknown: the
            # claims stay, to be reconciled from SES Send events, never resent blindly.
            if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500) < 500:
                release(sends, campaign.id, [a for v, group in claimed.items() if v not in done for a in group])
            if error.response["Error"]["Code"] in THROTTLED:
                raise SesThrottledError(f"batch {batch.get('index')}: {error.response['Error']['Message']}") from error
            raise
        done.add(variant)
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
