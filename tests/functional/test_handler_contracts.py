"""Each workflow function refuses a payload that is not its contract (app.contracts), before it touches
anything, with an error that names the field; and answers in its result model's shape."""

import json

import pytest

from tests.conftest import ROOT

CAMPAIGN = json.loads((ROOT / "events" / "send_batch" / "two_recipients.json").read_text())["campaign"]


def invoke(stack, logical_id, event):
    response = stack.client("lambda").invoke(FunctionName=stack.physical_id(logical_id),
                                             Payload=json.dumps(event).encode())
    return response.get("FunctionError"), json.loads(response["Payload"].read())


@pytest.mark.parametrize(("function", "event", "error", "message"), [
    ("SnapshotAudienceFunction", {"campaign": CAMPAIGN, "execution": "run-1"}, "ContractError",
     "SnapshotAudienceInput.execution: unknown field"),
    ("PickWinnerFunction", {"campaign": CAMPAIGN, "execution_name": "run-1"}, "ContractError",
     "PickWinnerInput.execution_name: unknown field"),
    ("FinalizeCampaignFunction", {"campaign": CAMPAIGN, "recipients": 10}, "ContractError",
     "FinalizeCampaignInput.holdout: required, a whole number"),
    ("SendBatchFunction", {"campaign": CAMPAIGN, "phase": "all", "decision": {},
                           "batch": {"index": 0, "recipients": [{"address": 7}]}}, "ManifestError",
     "SendBatchInput.batch.recipients[0].address: must be a string, got 7"),
    ("ValidateCampaignFunction", {**CAMPAIGN, "resume": "yes"}, "CampaignDefinitionError",
     "resume: must be true or false"),
])
def test_function_fails_naming_the_field_when_its_payload_breaks_the_contract(stack, function, event, error,
                                                                               message):
    failed, body = invoke(stack, function, event)
    assert failed is not None and body["errorType"] == error, body
    assert message in body["errorMessage"]


def test_finalize_answers_in_its_result_shape_when_the_campaign_never_sent(stack):
    failed, body = invoke(stack, "FinalizeCampaignFunction", {"campaign": CAMPAIGN, "holdout": 0, "recipients": 0})
    assert failed is None, body
    assert set(body) == {"campaign_id", "status", "sent", "per_variant", "feedback", "accounted", "holdout",
                         "decision", "halt", "failure"}
    assert body["accounted"] == {"sent": 0, "failed": 0, "not_sent": 0, "unknown_confirmed": 0, "unknown": 0}
