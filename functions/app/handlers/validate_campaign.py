"""ValidateCampaignFunction: refuse a bad definition (CampaignDefinitionError) before anything happens.

Input: the campaign definition; `"resume": true` in it asks to resume a PAUSED, HALTED or FAILED campaign of that
id (e.g. with raised thresholds): it sends only what was not sent, from the frozen audience. A resume's definition may
change only what app.domain.campaign.RESUME_MAY_CHANGE lists against the stored one: any other change is refused
here (CampaignDefinitionError naming each changed field), before ResumeCampaign replaces the stored definition.
"""

from typing import Any

from app import campaign_control
from app.contracts import ValidateCampaignInput, ValidateCampaignResult
from app.domain.campaign import check_resume
from app.observability import logger, tracer
from app.settings import settings


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # A campaign's own configuration_set must be one SendBatchFunction may send through (its IAM policy names
    # the stack's two sets and AllowedConfigurationSets): refused here, not at the first batch's SES call.
    request = ValidateCampaignInput.from_dict(event, allowed_configuration_sets=settings().campaign_configuration_sets)
    campaign = request.campaign
    if request.resume:
        stored = campaign_control.stored_definition(campaign.id, settings())
        if stored is not None:  # no campaign: ResumeCampaign's condition refuses it (CampaignNotResumable)
            check_resume(stored, campaign)
    logger.info("campaign valid", extra={"campaign_id": campaign.id, "variants": len(campaign.variants),
                                         "resume": request.resume})
    return ValidateCampaignResult(campaign, request.resume).to_dict()
