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
    monkeypatch.setattr(campaign_cli, "resolve_target", lambda *a, **k: found)
    yield found
    os.environ.clear()
    os.environ.update(saved)


def run(action, **options):
    args = argparse.Namespace(action=action, stack="test-stack", region=None, state_file=None,
                              definition=None, file=None, id=None, **{})
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
    assert run("start", file=str(tmp_path / "missing.json")) == 1
    assert "missing.json: cannot read it" in capsys.readouterr().err
    bad.write_text("{ not json")
    assert run("start", file=str(bad)) == 1
    assert "not JSON" in capsys.readouterr().err
    assert stack.client("stepfunctions").list_executions(
        stateMachineArn=stack.outputs["CampaignStateMachineArn"])["executions"] == []


def test_pause_and_cancel_name_what_cannot_be_done(stack, target, tmp_path, capsys):
    assert run("pause", id="nothing-here") == 1
    assert "campaign nothing-here is unknown here: it cannot be paused" in capsys.readouterr().err
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


def test_a_campaign_failed_on_a_missing_template_shows_why_and_resumes_once_the_template_exists(
        stack, target, tmp_path, capsys):
    path = tmp_path / "spring.json"
    path.write_text(json.dumps(campaign(variants=[{"name": "a", "template": "spring-new"}])))
    assert run("start", file=str(path)) == 0
    failed = stack.wait(capsys.readouterr().out.split()[-1])
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
