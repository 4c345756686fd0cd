"""The frequency cap on the engine: at most FrequencyCapEmails marketing emails per contact per FrequencyCapDays,
held at the snapshot and again before each send, across campaigns running at once (app.frequency)."""

import json
import threading
from collections import Counter
from datetime import timedelta

import pytest

from sesflow.engine.ses import simulator
from sesflow.engine.stack import LocalStack
from tests.conftest import ROOT, SENDER_DOMAIN
from tests.contacts import add_contacts

LIST = "newsletter"
AUDIENCE = [f"reader{i:03d}@example.org" for i in range(120)]


@pytest.fixture
def capped_stack():
    """The stack deployed with an account cap of 1 marketing email per contact per 7 days."""
    with LocalStack(template_path=ROOT / "template.yaml", ses_identities=(SENDER_DOMAIN,),
                    parameters={"FrequencyCapEmails": "1", "FrequencyCapDays": "7"}) as up:
        simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)
        add_contacts(up, dict.fromkeys(AUDIENCE, "ACTIVE"), [LIST])
        yield up


def campaign(campaign_id: str, **changes):
    return {"id": campaign_id, "sender": "news@example.com", "audience": {"lists": [LIST]},
            "variants": [{"name": "a", "subject": f"{campaign_id}", "text": "Hi {{unsubscribe_url}}"}], **changes}


def sends_of(stack, address: str) -> dict[str, str]:
    item = stack.client("dynamodb").get_item(TableName=stack.outputs["RecipientsTableName"],
                                             Key={"address": {"S": address}})["Item"]
    return {k: v["S"] for k, v in item.get("marketing_sends", {}).get("M", {}).items()}


def set_sends(stack, address: str, sends: dict[str, str]) -> None:
    stack.client("dynamodb").update_item(
        TableName=stack.outputs["RecipientsTableName"], Key={"address": {"S": address}},
        UpdateExpression="SET marketing_sends = :m, marketing_sends_version = :v",
        ExpressionAttributeValues={":m": {"M": {k: {"S": v} for k, v in sends.items()}}, ":v": {"N": "1"}})


def left_out(stack, campaign_id: str) -> dict:
    item = stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"],
                                             Key={"campaign_id": {"S": campaign_id}})["Item"]
    return json.loads(item["audience"]["S"])["left_out"]


def received() -> Counter:
    return Counter(address for message in simulator().outbox for address in message.to)


def test_two_campaigns_at_once_under_a_cap_of_one_send_each_contact_exactly_one_email(capped_stack, monkeypatch):
    """Both snapshots are taken before either sends (a barrier), so both see every contact under its cap: only the
    reservation before each SES call can keep the second email from going."""
    import app.handlers.snapshot_audience as snapshot_audience
    from app import sends

    from tests.workflow.test_campaign_faults import config

    barrier, original = threading.Barrier(2, timeout=60), snapshot_audience.lambda_handler

    def both_snapshots_first(event, context):
        result = original(event, context)
        barrier.wait()
        return result

    monkeypatch.setattr(snapshot_audience, "lambda_handler", both_snapshots_first)
    arns = [capped_stack.start("CampaignStateMachine", campaign(name)) for name in ("spring", "summer")]
    results = [capped_stack.wait(arn, timeout=240) for arn in arns]

    assert [r.status for r in results] == ["SUCCEEDED", "SUCCEEDED"], [(r.error, r.cause) for r in results]
    got = received()
    assert set(got) == set(AUDIENCE) and set(got.values()) == {1}, "a contact got two emails, or none"
    by_campaign = Counter(message.tags["campaign"] for message in simulator().outbox)
    accounted = {name: r.output["accounted"] for name, r in zip(("spring", "summer"), results, strict=True)}
    for name, counts in accounted.items():
        assert counts["sent"] == by_campaign[name]
        assert counts.get("capped", 0) == len(AUDIENCE) - by_campaign[name]
        assert left_out(capped_stack, name).get("frequency_capped", 0) == 0  # nobody was capped at the snapshot
    assert sum(c["sent"] for c in accounted.values()) == len(AUDIENCE)
    # The other campaign records each capped recipient with its reason (campaign status lists them).
    for name in ("spring", "summer"):
        refused = sends.refusals(name, config(capped_stack), limit=1000)
        assert len(refused) == len(AUDIENCE) - by_campaign[name]
        assert {r["status"] for r in refused} <= {"FREQUENCY_CAPPED"}
        assert all("1 marketing email per contact per 7 days" in r["error"] for r in refused)
    # Each contact's record holds the one campaign that reached it.
    for address in AUDIENCE[:10]:
        [sent_by] = [m.tags["campaign"] for m in simulator().outbox if address in m.to]
        assert list(sends_of(capped_stack, address)) == [sent_by]


def test_a_contact_at_its_cap_is_left_out_at_the_snapshot_and_an_old_send_no_longer_counts(capped_stack):
    now = capped_stack.clock.now()
    recent, old = AUDIENCE[:30], AUDIENCE[30:40]
    for address in recent:
        set_sends(capped_stack, address, {"last-week": (now - timedelta(days=6, hours=23)).isoformat()})
    for address in old:
        set_sends(capped_stack, address, {"long-ago": (now - timedelta(days=7, minutes=1)).isoformat()})

    result = capped_stack.run("CampaignStateMachine", campaign("autumn"))

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert set(received()) == set(AUDIENCE) - set(recent)
    assert left_out(capped_stack, "autumn")["frequency_capped"] == len(recent)
    assert result.output["accounted"]["sent"] == len(AUDIENCE) - len(recent)
    assert "capped" not in result.output["accounted"]  # none reached the cap between the snapshot and the send
    # the send past the window was pruned when the new one was recorded; a capped contact's record is unchanged
    assert list(sends_of(capped_stack, old[0])) == ["autumn"]
    assert list(sends_of(capped_stack, recent[0])) == ["last-week"]


def test_transactional_mail_is_exempt_and_not_counted(capped_stack):
    now = capped_stack.clock.now().isoformat()
    for address in AUDIENCE:
        set_sends(capped_stack, address, {"yesterday": now})

    result = capped_stack.run("CampaignStateMachine", campaign("receipts", stream="transactional"))

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert set(received()) == set(AUDIENCE) and set(received().values()) == {1}
    assert "frequency_capped" not in left_out(capped_stack, "receipts")
    assert sends_of(capped_stack, AUDIENCE[0]) == {"yesterday": now}


def test_a_campaign_override_with_a_reason_raises_the_cap_for_that_campaign_only(capped_stack):
    now = capped_stack.clock.now().isoformat()
    for address in AUDIENCE:
        set_sends(capped_stack, address, {"monday": now})
    raised = {"max": 2, "days": 7, "reason": "Black Friday week"}

    first = capped_stack.run("CampaignStateMachine", campaign("black-friday", frequency_cap=raised))
    second = capped_stack.run("CampaignStateMachine", campaign("cyber-monday"))

    assert first.status == second.status == "SUCCEEDED", (first.cause, second.cause)
    assert set(received()) == set(AUDIENCE) and set(received().values()) == {1}
    assert {m.tags["campaign"] for m in simulator().outbox} == {"black-friday"}
    assert sorted(sends_of(capped_stack, AUDIENCE[0])) == ["black-friday", "monday"]
    assert left_out(capped_stack, "cyber-monday")["frequency_capped"] == len(AUDIENCE)


def test_an_exempt_campaign_sends_past_the_cap_and_its_sends_count_for_the_others(capped_stack):
    exempt = {"exempt": True, "reason": "service change notice every customer must get"}

    first = capped_stack.run("CampaignStateMachine", campaign("terms-update", frequency_cap=exempt))
    second = capped_stack.run("CampaignStateMachine", campaign("newsletter"))

    assert first.status == second.status == "SUCCEEDED", (first.cause, second.cause)
    assert {m.tags["campaign"] for m in simulator().outbox} == {"terms-update"}
    assert left_out(capped_stack, "newsletter")["frequency_capped"] == len(AUDIENCE)


@pytest.mark.parametrize(("frequency_cap", "message"), [
    ({"max": 5, "days": 7}, "frequency_cap.reason: required, a non-blank string"),
    ({"max": 5, "days": 7, "reason": "   "}, "frequency_cap.reason: required, a non-blank string"),
    ({"max": 0, "days": 7, "reason": "r"}, "frequency_cap.max: must be a whole number from 1 to 1000, got 0"),
    ({"max": 2, "days": 1.5, "reason": "r"}, "frequency_cap.days: must be a whole number from 1 to 365, got 1.5"),
    ({"exempt": False, "reason": "r"}, "frequency_cap.exempt: must be true"),
])
def test_a_bad_override_is_refused_before_anything_is_written_or_sent(capped_stack, frequency_cap, message):
    result = capped_stack.run("CampaignStateMachine", campaign("bad", frequency_cap=frequency_cap))

    assert (result.status, result.error) == ("FAILED", "CampaignDefinitionError")
    assert message in result.cause
    assert simulator().outbox == []
    assert sends_of(capped_stack, AUDIENCE[0]) == {}


def test_the_plan_shows_the_cap_and_who_it_leaves_out_and_the_report_who_was_capped(capped_stack, monkeypatch):
    import app.handlers.snapshot_audience as snapshot_audience

    from sesflow import report
    from sesflow.plan import make_plan
    from sesflow.target import Target

    target = Target(name="test-stack", region=capped_stack.region, outputs=capped_stack.outputs,
                    parameters={"FrequencyCapEmails": "1", "FrequencyCapDays": "7"})
    now = capped_stack.clock.now().isoformat()
    for address in AUDIENCE[:12]:
        set_sends(capped_stack, address, {"monday": now})

    plan = make_plan(target, campaign("tuesday")).to_dict()
    raised = make_plan(target, campaign("promo", frequency_cap={"max": 3, "days": 7, "reason": "launch"})).to_dict()

    [line] = [c for c in plan["checks"] if c["check"] == "frequency_cap"]
    assert line["message"] == ("the account's cap: 1 marketing email per contact per 7 days: 12 contacts at it are "
                               "left out")
    assert plan["audience"]["left_out"] == {"frequency_capped": 12}
    assert plan["audience"]["recipients"] == len(AUDIENCE) - 12
    [line] = [c for c in raised["checks"] if c["check"] == "frequency_cap"]
    assert line["message"].startswith("this campaign's own cap: 3 marketing emails per contact per 7 days "
                                      "(reason: launch); the account's: 1 marketing email per contact per 7 days")
    assert raised["audience"]["left_out"] == {}

    # Two campaigns at once: the one that loses a contact's race shows it capped at the send in its report.
    barrier, original = threading.Barrier(2, timeout=60), snapshot_audience.lambda_handler

    def both_snapshots_first(event, context):
        result = original(event, context)
        barrier.wait()
        return result

    monkeypatch.setattr(snapshot_audience, "lambda_handler", both_snapshots_first)
    arns = [capped_stack.start("CampaignStateMachine", campaign(name)) for name in ("tuesday", "wednesday")]
    results = [capped_stack.wait(arn, timeout=240) for arn in arns]
    assert [r.status for r in results] == ["SUCCEEDED", "SUCCEEDED"]
    for name, result in zip(("tuesday", "wednesday"), results, strict=True):
        data = report.collect(target, name)
        assert data["left_out"]["frequency_capped"] == 12
        assert data["capped_at_send"] == result.output["accounted"].get("capped", 0)
        text = report.render_table(data)
        assert "frequency_capped" in text
        if data["capped_at_send"]:
            assert f"and at the send: {data['capped_at_send']:,} reached the frequency cap" in text
    assert sum(report.collect(target, n)["capped_at_send"] for n in ("tuesday", "wednesday")) == len(AUDIENCE) - 12


def test_a_batch_retried_after_its_reservations_sends_to_the_recipients_it_reserved_once(capped_stack, monkeypatch):
    """The first SendBatch invocation dies after reserving its call's recipients, before its in-flight mark: the
    Map's retry finds the reservations (the campaign's own), sends to those recipients, and counts them once."""
    from app import sends

    original, died = sends.in_flight, []

    def dies_once(*args, **kwargs):
        if not died:
            died.append(args[1])
            raise RuntimeError("the invocation died after reserving, before its in-flight mark")
        return original(*args, **kwargs)

    monkeypatch.setattr(sends, "in_flight", dies_once)
    result = capped_stack.run("CampaignStateMachine", campaign("retried"))

    assert died and result.status == "SUCCEEDED", (result.error, result.cause)
    assert set(received()) == set(AUDIENCE) and set(received().values()) == {1}
    assert "capped" not in result.output["accounted"]
    assert all(list(sends_of(capped_stack, a)) == ["retried"] for a in AUDIENCE)
