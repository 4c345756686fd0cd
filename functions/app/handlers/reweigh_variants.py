"""ReweighVariantsFunction: between a bandit's rounds, the next round's weights from the counters so far.

The reweighting (app.domain.bandit: Thompson sampling on unique opens or clicks over deliveries, a seeded Monte
Carlo estimate of each variant's probability of being best, a minimum share, the breaker's complaint bound as a
guard) is recorded on the campaign's control item once per round: a retry or a resumed execution reads it back
instead of computing it again on later numbers.
"""

from typing import Any

from app import campaign_control
from app.contracts import ReweighVariantsInput, ReweighVariantsResult
from app.domain.bandit import reweigh
from app.domain.campaign import BANDIT
from app.domain.winner import stats_from_counters
from app.errors import ContractError
from app.observability import logger, tracer
from app.settings import settings


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = ReweighVariantsInput.from_dict(event)
    campaign, number = request.campaign, request.round
    if campaign.ab.mode != BANDIT or not 2 <= number <= campaign.ab.rounds:
        raise ContractError(f"ReweighVariantsInput.round: {number} is not a reweighted round of campaign "
                            f"{campaign.id} (mode {campaign.ab.mode!r}, {campaign.ab.rounds} rounds)")
    config = settings()
    item, stats = campaign_control.read(campaign.id, config)
    if not item:
        raise LookupError(f"campaign {campaign.id}: no control item (the workflow claims it before any round)")
    recorded = campaign_control.reweightings(item)
    if len(recorded) >= number - 1:
        return ReweighVariantsResult.from_dict(recorded[number - 2]).to_dict()
    if len(recorded) < number - 2:
        raise ValueError(f"campaign {campaign.id}: bandit_rounds holds {len(recorded)} reweightings, so round "
                         f"{number} cannot follow (round {len(recorded) + 2} comes first)")
    previous = recorded[-1]["weights"] if recorded else None
    result = ReweighVariantsResult.from_dict(
        reweigh(campaign, stats_from_counters(stats), number, previous).to_dict()).to_dict()
    result = campaign_control.record_reweighting(campaign.id, number - 2, result, config)
    logger.info("bandit reweighting", extra={"campaign_id": campaign.id, "round": number,
                                             "weights": result["weights"]})
    return ReweighVariantsResult.from_dict(result).to_dict()
