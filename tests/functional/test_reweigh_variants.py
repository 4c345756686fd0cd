"""ReweighVariantsFunction on the engine: a round's weights are decided once and recorded on the campaign's control
item; asking again (a retry, a resumed execution) reads them back, whatever the counters say by then."""

import json

from tests.conftest import ROOT

SAMPLE = json.loads((ROOT / "events/reweigh_variants/round_2.json").read_text())
CAMPAIGN_ID = SAMPLE["campaign"]["id"]


def invoke(stack, payload):
    response = stack.client("lambda").invoke(FunctionName=stack.physical_id("ReweighVariantsFunction"),
                                             Payload=json.dumps(payload).encode())
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def claim(stack):
    stack.client("dynamodb").put_item(TableName=stack.outputs["CampaignsTableName"], Item={
        "campaign_id": {"S": CAMPAIGN_ID}, "status": {"S": "RUNNING"}})


def count(stack, **counters):
    values = {f":{i}": {"N": str(n)} for i, n in enumerate(counters.values())}
    names = {f"#{i}": name.replace("__", "#") for i, name in enumerate(counters)}
    stack.client("dynamodb").update_item(
        TableName=stack.outputs["CampaignsTableName"], Key={"campaign_id": {"S": CAMPAIGN_ID + "#stats"}},
        UpdateExpression="ADD " + ", ".join(f"#{i} :{i}" for i in range(len(counters))),
        ExpressionAttributeNames=names, ExpressionAttributeValues=values)


def recorded(stack):
    item = stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"],
                                             Key={"campaign_id": {"S": CAMPAIGN_ID}})["Item"]
    return [json.loads(e["S"]) for e in item.get("bandit_rounds", {}).get("L", [])]


def test_a_round_is_decided_once_and_read_back_after_the_counters_moved(stack):
    claim(stack)
    count(stack, sent__plain=1000, sent__teaser=1000, unique_clicks__plain=15, unique_clicks__teaser=40)

    error, first = invoke(stack, SAMPLE)

    assert error is None, first
    assert first["round"] == 2 and first["weights"]["teaser"] > 0.9 and first["weights"]["plain"] == 0.05
    assert recorded(stack) == [first]
    count(stack, unique_clicks__plain=500)  # the plain variant's clicks pour in after the decision
    error, again = invoke(stack, SAMPLE)
    assert (error, again) == (None, first)  # read back, not decided again on the later numbers
    error, third = invoke(stack, {**SAMPLE, "round": 3})
    assert error is None and third["weights"]["plain"] > 0.9  # the next round sees them
    assert [r["round"] for r in recorded(stack)] == [2, 3]


def test_a_round_whose_round_before_is_not_recorded_is_refused(stack):
    claim(stack)
    error, body = invoke(stack, {**SAMPLE, "round": 4})
    assert error is not None and body["errorType"] == "ValueError"
    assert "holds 0 reweightings, so round 4 cannot follow (round 2 comes first)" in body["errorMessage"]
    assert recorded(stack) == []


def test_a_round_of_no_campaign_or_out_of_range_is_refused_and_nothing_is_written(stack):
    error, body = invoke(stack, SAMPLE)
    assert body["errorType"] == "LookupError" and f"campaign {CAMPAIGN_ID}: no control item" in body["errorMessage"]
    error, body = invoke(stack, {**SAMPLE, "round": 6})
    assert body["errorType"] == "ContractError" and "ReweighVariantsInput.round: 6" in body["errorMessage"]
    assert stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"],
                                             Key={"campaign_id": {"S": CAMPAIGN_ID}}).get("Item") is None
