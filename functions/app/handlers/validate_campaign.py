"""ValidateCampaignFunction: refuse a bad definition (CampaignDefinitionError) before anything happens.

Input: the campaign definition; `"resume": true` in it asks to resume a PAUSED or HALTED campaign of that id
(e.g. with raised thresholds): it sends only what was not sent, from the frozen audience.
"""

from typing import Any

from app.domain.campaign import parse_campaign
from app.errors import CampaignDefinitionError
from app.observability import logger, tracer
from app.settings import settings


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    definition = dict(event) if isinstance(event, dict) else event
    resume = definition.pop("resume", False) if isinstance(definition, dict) else False
    # A campaign's own configuration_set must be one SendBatchFunction may send through (its IAM policy names
    # the stack's two sets and AllowedConfigurationSets): refused here, not at the first batch's SES call.
    campaign = parse_campaign(definition, allowed_configuration_sets=settings().campaign_configuration_sets)
    if not isinstance(resume, bool):
        raise CampaignDefinitionError(f"resume: must be true or false, got {resume!r}")
    logger.info("campaign valid", extra={"campaign_id": campaign.id, "variants": len(campaign.variants),
                                         "resume": resume})
    return {"campaign": campaign.to_dict(), "resume": resume}
