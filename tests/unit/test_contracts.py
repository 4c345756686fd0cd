"""app.contracts: what a payload must hold, and the error that names the field when it does not."""

import json

import pytest
from app.contracts import (
    Batch,
    FinalizeCampaignInput,
    Phase,
    PickWinnerResult,
    Recipient,
    SendBatchInput,
    SendBatchResult,
    SnapshotAudienceResult,
    ValidateCampaignInput,
)
from app.errors import CampaignDefinitionError, ContractError, ManifestError

from tests.conftest import ROOT

CAMPAIGN = json.loads((ROOT / "events" / "send_batch" / "two_recipients.json").read_text())["campaign"]
DECISION = {"winner": "a", "reason": "a wins", "p_value": 0.01, "applied_policy": "winner", "remainder": ["a"],
            "metric": "click", "alpha": 0.05,
            "numbers": [{"name": "a", "sent": 10, "delivered": 10, "successes": 3, "rate": 0.3, "complaints": 0,
                         "complaint_rate": 0, "eligible": True, "note": ""}]}


def batch_event(**changes):
    return {"campaign": CAMPAIGN, "phase": "test", "decision": {},
            "batch": {"index": 0, "recipients": [{"address": "a@example.org", "variant": "a"}]}, **changes}


def test_send_batch_input_reads_an_empty_decision_as_none_when_the_batch_is_not_a_remainder():
    parsed = SendBatchInput.from_dict(batch_event())
    assert parsed.decision is None and parsed.batch == Batch(0, (Recipient("a@example.org", "a"),))
    assert SendBatchInput.from_dict(batch_event(decision=DECISION)).decision.remainder == ("a",)


@pytest.mark.parametrize(("changes", "error", "message"), [
    ({"batch": {"index": 0, "recipients": [{"variant": "a"}]}}, ManifestError,
     "SendBatchInput.batch.recipients[0].address: required, a string"),
    ({"batch": {"index": "0", "recipients": []}}, ManifestError,
     "SendBatchInput.batch.index: must be a whole number, got '0'"),
    ({"batch": {"index": 0, "recipients": [{"address": "a@example.org", "varient": "a"}]}}, ManifestError,
     "SendBatchInput.batch.recipients[0].varient: unknown field (known: address, variant, probation)"),
    ({"decision": {"winner": "a"}}, ContractError, "SendBatchInput.decision.reason: required, a string"),
    ({"phases": "test"}, ContractError, "SendBatchInput.phases: unknown field"),
    ({"campaign": {**CAMPAIGN, "id": "not an id"}}, CampaignDefinitionError,
     "SendBatchInput.campaign: id: 'not an id' is not valid"),
])
def test_send_batch_input_fails_naming_the_field_when_the_payload_is_wrong(changes, error, message):
    with pytest.raises(error) as raised:
        SendBatchInput.from_dict(batch_event(**changes))
    assert message in str(raised.value)


def test_finalize_input_fails_naming_the_field_when_a_required_one_is_missing():
    with pytest.raises(ContractError, match=r"FinalizeCampaignInput\.recipients: required, a whole number"):
        FinalizeCampaignInput.from_dict({"campaign": CAMPAIGN, "holdout": 3})


def test_validate_input_fails_with_a_definition_error_when_resume_is_not_a_boolean():
    assert ValidateCampaignInput.from_dict({**CAMPAIGN, "resume": True}).resume is True
    with pytest.raises(CampaignDefinitionError, match="resume: must be true or false, got 'yes'"):
        ValidateCampaignInput.from_dict({**CAMPAIGN, "resume": "yes"})


def test_to_dict_leaves_out_fields_at_their_default_when_they_are_marked_so():
    assert Recipient("a@example.org").to_dict() == {"address": "a@example.org"}
    assert Recipient("a@example.org", "b", True).to_dict() == {"address": "a@example.org", "variant": "b",
                                                               "probation": True}
    assert SendBatchResult("all#000000", 2, 2, 0).to_dict() == {"batch": "all#000000", "recipients": 2, "sent": 2,
                                                                "failed": 0}
    assert SendBatchResult("all#000000", 2, 0, 0, stopped="PAUSED").to_dict()["stopped"] == "PAUSED"


def test_from_dict_reads_back_what_to_dict_wrote():
    audience = SnapshotAudienceResult(phases=(Phase("test", "k/test.json", 2, 60), Phase("remainder", "k/r.json", 5,
                                                                                         240)),
                                      holdout_key="k/holdout.json", recipients=300, holdout=30,
                                      excluded_by_ses_suppression=1, by_variant={"a": 150, "holdout": 30},
                                      states={"ACTIVE": 331})
    assert SnapshotAudienceResult.from_dict(json.loads(json.dumps(audience.to_dict()))) == audience
    decision = PickWinnerResult.from_dict(DECISION)
    assert decision.numbers[0].complaint_rate == 0.0 and PickWinnerResult.from_dict(decision.to_dict()) == decision


def test_whole_numbers_pass_when_written_with_a_fraction_of_zero():
    parsed = FinalizeCampaignInput.from_dict({"campaign": CAMPAIGN, "holdout": 3.0, "recipients": 120})
    assert (parsed.holdout, type(parsed.holdout)) == (3, int)
    with pytest.raises(ContractError, match=r"FinalizeCampaignInput\.holdout: must be a whole number, got 3\.5"):
        FinalizeCampaignInput.from_dict({"campaign": CAMPAIGN, "holdout": 3.5, "recipients": 120})


def test_a_nullable_field_is_still_required_when_it_has_no_default():
    decision = {key: value for key, value in DECISION.items() if key != "winner"}
    with pytest.raises(ContractError, match=r"PickWinnerResult\.winner: required, a string or null"):
        PickWinnerResult.from_dict(decision)
    assert PickWinnerResult.from_dict({**DECISION, "winner": None}).winner is None


def test_send_batch_result_carries_a_deferral_only_when_the_batch_must_wait():
    deferred = SendBatchResult.from_dict({"batch": "all#000001", "recipients": 50, "sent": 20, "failed": 0,
                                          "deferred": {"until": "2026-05-01T10:15:00Z", "reason": "daily_quota",
                                                       "message": "quota used"}})
    assert deferred.deferred.until == "2026-05-01T10:15:00Z" and "wait_seconds" not in deferred.to_dict()
    with pytest.raises(ContractError, match=r"SendBatchResult\.deferred\.until: required, a string"):
        SendBatchResult.from_dict({"batch": "all#000001", "recipients": 1, "sent": 0, "failed": 0,
                                   "deferred": {"reason": "rate"}})
