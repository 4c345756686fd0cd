"""ValidateCampaignFunction: refuse a bad definition (CampaignDefinitionError) before anything happens."""

from typing import Any

from app.domain.campaign import parse_campaign
from app.observability import logger, tracer


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    campaign = parse_campaign(event)
    logger.info("campaign valid", extra={"campaign_id": campaign.id, "variants": len(campaign.variants)})
    return campaign.to_dict()
