"""A campaign's own configuration_set: ValidateCampaignFunction accepts the sets SendBatchFunction may send through
(the stack's two and the AllowedConfigurationSets parameter's) and refuses any other, before anything is sent."""

import json

import pytest

from sesflow.engine.stack import LocalStack
from tests.conftest import ROOT, SENDER_DOMAIN

CAMPAIGN = {
    "id": "own-set",
    "sender": f"news@{SENDER_DOMAIN}",
    "audience": {"lists": ["newsletter"]},
    "variants": [{"name": "a", "subject": "Hi", "text": "Hello"}],
}


@pytest.fixture(scope="module")
def stack():
    with LocalStack(template_path=ROOT / "template.yaml", ses_identities=(SENDER_DOMAIN,),
                    parameters={"AllowedConfigurationSets": "marketing-events, partner-events"}) as up:
        yield up


def validate(stack, configuration_set):
    response = stack.client("lambda").invoke(
        FunctionName=stack.physical_id("ValidateCampaignFunction"),
        Payload=json.dumps({**CAMPAIGN, "configuration_set": configuration_set}).encode(),
    )
    return response.get("FunctionError"), json.loads(response["Payload"].read())


@pytest.mark.parametrize("name", ["marketing-events", "partner-events"])
def test_campaign_is_accepted_when_its_configuration_set_is_an_allowed_one(stack, name):
    error, body = validate(stack, name)
    assert error is None, body
    assert body["campaign"]["configuration_set"] == name


def test_campaign_is_accepted_when_it_names_one_of_the_stacks_own_sets(stack):
    error, body = validate(stack, stack.outputs["ProbationConfigurationSetName"])
    assert error is None, body


def test_campaign_is_refused_naming_the_allowed_sets_when_its_configuration_set_is_not_allowed(stack):
    error, body = validate(stack, "someone-elses")
    assert error is not None and body["errorType"] == "CampaignDefinitionError"
    message = body["errorMessage"]
    assert "configuration_set: 'someone-elses' is not a configuration set this stack may send through" in message
    for name in ("marketing-events", "partner-events", stack.outputs["ConfigurationSetName"]):
        assert repr(name) in message
