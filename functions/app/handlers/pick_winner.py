"""PickWinnerFunction: after the test cohort's evaluation window, decide what the remainder gets.

The decision (app.domain.winner: a two-proportion test on unique opens or clicks over deliveries, a minimum
sample, a complaint guard, the no-winner policy) is recorded on the campaign's control item once: a resumed
execution reads it back instead of deciding again on later numbers.
"""

import json
from typing import Any

from botocore.exceptions import ClientError

from app import campaign_control
from app.clients import client
from app.contracts import PickWinnerInput, PickWinnerResult
from app.domain.winner import decide_winner, stats_from_counters
from app.observability import logger, tracer
from app.settings import settings


def recorded(item: dict[str, Any]) -> dict[str, Any]:
    """The decision recorded on the campaign's control item."""
    return PickWinnerResult.from_dict(json.loads(item["decision"])).to_dict()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    campaign = PickWinnerInput.from_dict(event).campaign
    config = settings()
    item, stats = campaign_control.read(campaign.id, config)
    if "decision" in item:
        return recorded(item)
    decision = PickWinnerResult.from_dict(decide_winner(campaign, stats_from_counters(stats)).to_dict()).to_dict()
    try:
        client("dynamodb").update_item(
            TableName=config.campaigns_table, Key={"campaign_id": {"S": campaign.id}},
            UpdateExpression="SET decision = :d", ConditionExpression="attribute_not_exists(decision)",
            ExpressionAttributeValues={":d": {"S": json.dumps(decision)}})
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        return recorded(campaign_control.read(campaign.id, config)[0])
    logger.info("test-then-winner decision", extra={"campaign_id": campaign.id, "winner": decision["winner"],
                                                    "policy": decision["applied_policy"]})
    return decision
