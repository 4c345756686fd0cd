"""`sesflow campaign start|status|pause|resume|cancel` against a stack on the engine."""

import argparse
import json
import os

import pytest

from sesflow import campaign_cli
from sesflow.engine.ses import simulator
from sesflow.target import Target
from tests.workflow.test_campaign import campaign, seed


@pytest.fixture
def target(stack, monkeypatch):
    saved = dict(os.environ)
    simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)  # a production account: not about pacing
    seed(stack, {f"user{i:03d}@example.org": "ACTIVE" for i in range(120)})
    found = Target(name="test-stack", region=stack.region, outputs=stack.outputs)
    monkeypatch.setattr("sesflow.target.resolve_target", lambda *a, **k: found)
    yield found
    os.environ.clear()
    os.environ.update(saved)


def run(action, **options):
    args = argparse.Namespace(action=action, stack="test-stack", region=None, state_file=None,
                              definition=None, file=None, id=None, now=False, json=False)
    for key, value in options.items():
        setattr(args, key, value)
    return campaign_cli.campaign(args)


def test_start_runs_the_campaign_and_status_reports_it(stack, target, tmp_path, capsys):
    path = tmp_path / "spring.json"
    path.write_text(json.dumps(campaign()))

    assert run("start", file=str(path)) == 0

    arn = capsys.readouterr().out.split()[-1]
    assert stack.wait(arn).status == "SUCCEEDED"
    assert run("status", id="spring-sale") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "COMPLETED" and shown["sent"] == len(simulator().outbox) > 0
    assert sum(v.get("sent", 0) for v in shown["per_variant"].values()) == shown["sent"]
    assert shown["accounted"]["sent"] == shown["sent"] and shown["accounted"]["unknown"] == 0


def test_a_bad_file_or_definition_is_refused_before_anything_starts(stack, target, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(campaign(sender="nobody")))
    assert run("start", file=str(bad)) == 1
    assert "the campaign definition is not valid: sender: 'nobody' is not valid" in capsys.readouterr().err
    assert run("start", file=str(tmp_path / "missing.json")) == 2  # bad input: exit 2
    assert "missing.json: cannot read it" in capsys.readouterr().err
    bad.write_text("{ not json")
    assert run("start", file=str(bad)) == 2
    assert "not JSON" in capsys.readouterr().err
    assert stack.client("stepfunctions").list_executions(
        stateMachineArn=stack.outputs["CampaignStateMachineArn"])["executions"] == []


def test_pause_and_cancel_name_what_cannot_be_done(stack, target, tmp_path, capsys):
    assert run("pause", id="nothing-here") == 1
    assert "no campaign nothing-here on test-stack" in capsys.readouterr().err
    path = tmp_path / "spring.json"
    path.write_text(json.dumps(campaign()))
    run("start", file=str(path))
    stack.wait(capsys.readouterr().out.split()[-1])
    assert run("pause", id="spring-sale") == 1
    assert "campaign spring-sale is COMPLETED: it cannot be paused" in capsys.readouterr().err
    assert run("resume", id="spring-sale") == 1  # what the workflow would refuse, refused before it starts
    assert "campaign spring-sale is COMPLETED on test-stack: only a PAUSED, HALTED or FAILED campaign resumes " \
           "(every recipient was sent to" in capsys.readouterr().err
    assert len(stack.client("stepfunctions").list_executions(
        stateMachineArn=stack.outputs["CampaignStateMachineArn"])["executions"]) == 1
    assert run("cancel", id="spring-sale") == 1
    capsys.readouterr()


def test_starting_a_campaign_id_already_used_is_refused_and_starts_nothing(stack, target, tmp_path, capsys):
    path = tmp_path / "spring.json"
    path.write_text(json.dumps(campaign()))
    run("start", file=str(path))
    stack.wait(capsys.readouterr().out.split()[-1])
    sent = len(simulator().outbox)

    assert run("start", file=str(path)) == 1

    assert "campaign spring-sale is already COMPLETED on test-stack: a campaign id runs once" in \
        capsys.readouterr().err
    executions = stack.client("stepfunctions").list_executions(
        stateMachineArn=stack.outputs["CampaignStateMachineArn"])["executions"]
    assert len(executions) == 1 and len(simulator().outbox) == sent
    assert run("status", id="nothing-here") == 1
    assert "no campaign nothing-here on test-stack" in capsys.readouterr().err


def test_campaign_list_shows_every_campaign_with_its_status_and_emails_sent(stack, target, tmp_path, capsys):
    assert run("list", json=False) == 0
    assert "no campaigns on test-stack yet" in capsys.readouterr().out
    path = tmp_path / "spring.json"
    path.write_text(json.dumps(campaign()))
    run("start", file=str(path))
    stack.wait(capsys.readouterr().out.split()[-1])

    assert run("list", json=True) == 0

    (shown,) = json.loads(capsys.readouterr().out)
    assert (shown["campaign_id"], shown["status"]) == ("spring-sale", "COMPLETED") and shown["sent"] > 0


def finished_then_paused(stack, tmp_path, capsys, **changes):
    """A campaign run to the end, then marked PAUSED (as a pause mid-send leaves it): a resume may start."""
    path = tmp_path / "spring.json"
    path.write_text(json.dumps(campaign(**changes)))
    run("start", file=str(path))
    assert stack.wait(capsys.readouterr().out.split()[-1]).status == "SUCCEEDED"
    stack.client("dynamodb").update_item(
        TableName=stack.outputs["CampaignsTableName"], Key={"campaign_id": {"S": "spring-sale"}},
        UpdateExpression="SET #s = :paused", ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":paused": {"S": "PAUSED"}})


def executions(stack):
    return stack.client("stepfunctions").list_executions(
        stateMachineArn=stack.outputs["CampaignStateMachineArn"])["executions"]


def test_resume_refuses_a_definition_that_changes_more_than_thresholds_and_rate_share(stack, target, tmp_path,
                                                                                    capsys):
    finished_then_paused(stack, tmp_path, capsys)
    changed = campaign(audience={"lists": ["customers"]}, holdout_percent=5,
                       variants=[{"name": "a", "weight": 50, "template": "spring-a"},
                                 {"name": "b", "weight": 10, "template": "spring-b"},
                                 {"name": "c", "weight": 20, "template": "spring-c"}])
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(changed))

    assert run("resume", id="spring-sale", definition=str(path)) == 2  # the definition given cannot be used

    error = capsys.readouterr().err
    assert "a resume may change only thresholds and rate_share, and this definition also changes" in error
    for field in ("audience.lists: was ['newsletter'], now ['customers']", "variants[1].weight: was 30.0, now 10.0",
                  "holdout_percent: was 10.0, now 5.0"):
        assert field in error
    assert len(executions(stack)) == 1  # nothing started
    status = stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"],
                                               Key={"campaign_id": {"S": "spring-sale"}})["Item"]["status"]["S"]
    assert status == "PAUSED"


def test_resume_takes_a_definition_that_changes_only_thresholds_and_rate_share(stack, target, tmp_path, capsys):
    finished_then_paused(stack, tmp_path, capsys)
    path = tmp_path / "raised.json"
    path.write_text(json.dumps(campaign(thresholds={"complaint": {"warn": 0.01, "halt": 0.02}}, rate_share=0.5)))

    assert run("resume", id="spring-sale", definition=str(path)) == 0

    assert stack.wait(capsys.readouterr().out.split()[-1]).status == "SUCCEEDED"
    stored = json.loads(stack.client("dynamodb").get_item(
        TableName=stack.outputs["CampaignsTableName"],
        Key={"campaign_id": {"S": "spring-sale"}})["Item"]["definition"]["S"])
    assert stored["thresholds"]["complaint"] == {"warn": 0.01, "halt": 0.02} and stored["rate_share"] == 0.5


def test_the_workflow_refuses_a_resume_that_changes_the_audience_too(stack, target, tmp_path, capsys):
    finished_then_paused(stack, tmp_path, capsys)
    sent = len(simulator().outbox)

    result = stack.run("CampaignStateMachine", {**campaign(audience={"lists": ["customers"]}), "resume": True})

    assert (result.status, result.error) == ("FAILED", "CampaignDefinitionError")
    assert "audience.lists: was ['newsletter'], now ['customers']" in result.cause
    item = stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"],
                                             Key={"campaign_id": {"S": "spring-sale"}})["Item"]
    assert item["status"]["S"] == "PAUSED" and json.loads(item["definition"]["S"])["audience"]["lists"] == [
        "newsletter"]
    assert len(simulator().outbox) == sent


def test_the_from_header_ses_gets_carries_the_display_name_and_the_reply_to(stack, target, tmp_path, capsys):
    from email.header import decode_header, make_header

    path = tmp_path / "named.json"
    path.write_text(json.dumps(campaign(sender="Zoë's Café <news@example.com>",
                                        reply_to=["Help Desk <help@example.org>", "owner@example.org"])))

    assert run("start", file=str(path)) == 0

    assert stack.wait(capsys.readouterr().out.split()[-1]).status == "SUCCEEDED"
    outbox = simulator().outbox
    assert outbox and {m.from_address for m in outbox} == {"=?utf-8?b?Wm/DqydzIENhZsOp?= <news@example.com>"}
    assert str(make_header(decode_header(outbox[0].from_address))) == "Zoë's Café <news@example.com>"
    assert {m.reply_to for m in outbox} == {("Help Desk <help@example.org>", "owner@example.org")}


def test_start_refuses_a_start_at_in_the_past_unless_now_is_given(stack, target, tmp_path, capsys):
    path = tmp_path / "late.json"
    path.write_text(json.dumps(campaign(start_at="2020-01-01T09:00:00Z")))

    assert run("start", file=str(path)) == 1
    assert "start_at 2020-01-01T09:00:00Z is in the past (it is now " in capsys.readouterr().err
    assert executions(stack) == []

    assert run("start", file=str(path), now=True) == 0

    out = capsys.readouterr().out
    assert "start_at 2020-01-01T09:00:00Z is past: starts at once (--now)" in out
    assert stack.wait(out.split()[-1]).status == "SUCCEEDED" and simulator().outbox


def test_start_now_with_a_start_at_still_ahead_is_refused(stack, target, tmp_path, capsys):
    path = tmp_path / "ahead.json"
    path.write_text(json.dumps(campaign(start_at="2999-01-01T09:00:00Z")))

    assert run("start", file=str(path), now=True) == 1

    assert "start_at 2999-01-01T09:00:00Z is in the future: the campaign waits for it" in capsys.readouterr().err
    assert executions(stack) == []

def test_a_campaign_failed_on_a_missing_template_shows_why_and_resumes_once_the_template_exists(
        stack, target, tmp_path, capsys):
    # `campaign start` would refuse it (its plan finds the template missing); a template deleted after the plan,
    # or an execution started by other means, meets SES's refusal instead.
    from sesflow.campaign_cli import _start

    failed = stack.wait(_start(target, campaign(variants=[{"name": "a", "template": "spring-new"}]), resume=False))
    assert (failed.status, failed.error) == ("FAILED", "CampaignFailed")
    capsys.readouterr()  # what the run's functions logged

    assert run("status", id="spring-sale") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "FAILED" and shown["sent"] == 0
    assert shown["failure"]["code"] == "NotFoundException"
    assert shown["failure"]["message"] == "Template spring-new does not exist."
    assert [e["event"] for e in shown["history"]] == ["started", "failed"]

    stack.client("sesv2").create_email_template(TemplateName="spring-new", TemplateContent={
        "Subject": "Spring", "Text": "Hello"})  # the operator fixes the cause
    assert run("resume", id="spring-sale") == 0
    resumed = stack.wait(capsys.readouterr().out.split()[-1])
    assert resumed.status == "SUCCEEDED", (resumed.error, resumed.cause)
    capsys.readouterr()
    assert run("status", id="spring-sale") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "COMPLETED" and shown["failure"] is None
    assert shown["sent"] == len(simulator().outbox) > 0
    assert [e["event"] for e in shown["history"]] == ["started", "failed", "resumed", "completed"]
