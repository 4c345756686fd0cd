"""FinalizeCampaignFunction: the campaign's outcome, with every recipient accounted for.

A campaign still RUNNING becomes COMPLETED; PAUSED, HALTED, FAILED and CANCELLED stay as they are. The summary: emails
sent per variant (exact, SendBatch's counters), the claims' accounting (sent, failed, not sent, unknown and
confirmed by feedback), feedback so far, the A/B decision, and the halt or the failure, if any.
"""

import json
from typing import Any

from app import campaign_control, sends
from app.contracts import Accounting, Failure, FinalizeCampaignInput, FinalizeCampaignResult, Halt, PickWinnerResult
from app.observability import logger, tracer
from app.settings import settings

# opens and clicks are people's; machine_opens and machine_clicks a scanner's or a proxy's (app.domain.engagement)
FEEDBACK = ("delivered", "hard_bounces", "soft_bounces", "complaints", "rejects", "opens", "clicks",
            "machine_opens", "machine_clicks", "unique_opens", "unique_clicks", "unsubscribes", "failed",
            "rendering_failures")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = FinalizeCampaignInput.from_dict(event)
    campaign = request.campaign
    config = settings()
    campaign_control.change_status(campaign.id, campaign_control.COMPLETED, config)
    item, stats = campaign_control.read(campaign.id, config)
    per_variant = {v.name: {name: stats.get(f"{name}#{v.name}", 0) for name in ("sent", *FEEDBACK)}
                   for v in campaign.variants}
    summary = FinalizeCampaignResult(
        campaign_id=campaign.id,
        status=item.get("status"),
        sent=stats.get("sent", 0),
        per_variant=per_variant,
        feedback={name: stats[name] for name in FEEDBACK if name in stats},
        accounted=Accounting.from_dict(sends.summary(campaign.id, config, audience=request.recipients)),
        holdout=request.holdout,
        decision=PickWinnerResult.from_dict(json.loads(item["decision"])) if "decision" in item else None,
        halt=Halt.from_dict(json.loads(item["halt"])) if "halt" in item else None,
        failure=Failure.from_dict(json.loads(item["failure"])) if "failure" in item else None,
    )
    logger.info("campaign finalized", extra={"campaign_id": campaign.id, "status": summary.status,
                                             "sent": summary.sent})
    return summary.to_dict()
