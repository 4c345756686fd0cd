"""ValidateCampaignFunction: refuse a bad definition (CampaignDefinitionError) before anything happens.

Input: the campaign definition; `"resume": true` in it asks to resume a PAUSED or HALTED campaign of that id
(e.g. with raised thresholds): it sends only what was not sent, from the frozen audience.
"""

from typing import Any

from app.contracts import ValidateCampaignInput, ValidateCampaignResult
from app.observability import logger, tracer


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = ValidateCampaignInput.from_dict(event)
    campaign = request.campaign
    logger.info("campaign valid", extra={"campaign_id": campaign.id, "variants": len(campaign.variants),
                                         "resume": request.resume})
    return ValidateCampaignResult(campaign, request.resume).to_dict()
