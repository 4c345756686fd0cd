"""`sesflow recipient show|reinstate|suppress` against a stack on the engine, through the Lambda code's own writes."""

import argparse
import json
import os
import time

import pytest

from sesflow import recipient_cli
from sesflow.engine.ses import feedback_record
from sesflow.target import Target
from tests.contacts import add_contact

ADDRESS = "ada@example.com"


@pytest.fixture
def target(stack):
    """The engine's stack as a deployed one: moto intercepts the calls in this process."""
    saved = dict(os.environ)
    yield Target(name="test-stack", region=stack.region, outputs=stack.outputs)
    os.environ.clear()
    os.environ.update(saved)


def run(target, monkeypatch, action, address=ADDRESS, **options):
    monkeypatch.setattr("sesflow.target.resolve_target", lambda *a, **k: target)
    args = argparse.Namespace(action=action, address=address, stack="test-stack", region=None, state_file=None,
                              json=options.pop("json", False), reason=options.pop("reason", None),
                              actor=options.pop("actor", "ops"))
    return recipient_cli.recipient(args)


def feed(stack, *records):
    for record in records:
        stack.client("sqs").send_message(QueueUrl=stack.outputs["FeedbackQueueUrl"], MessageBody=json.dumps(record))
    stack.deliver_queues()


def waiting_for_token(stack, timeout=20):
    """The episode runs on its own thread: wait until it has parked its token on the recipient."""
    deadline = time.monotonic() + timeout
    while "episode_token" not in stack.client("dynamodb").get_item(
            TableName=stack.outputs["RecipientsTableName"], Key={"address": {"S": ADDRESS}})["Item"]:
        assert time.monotonic() < deadline, "the episode never parked its token"
        time.sleep(0.02)


def add(stack, status="ACTIVE"):
    add_contact(stack, ADDRESS, ["newsletter"], status=status)


def test_show_prints_status_strikes_deadline_and_history(stack, target, monkeypatch, capsys):
    add(stack)
    feed(stack, feedback_record("soft_bounce", ADDRESS, stack.clock.now(), "0100-m1"))

    assert run(target, monkeypatch, "show", address="Ada@Example.com", json=True) == 0

    shown = json.loads(capsys.readouterr().out)
    assert (shown["status"], shown["strikes"]) == ("QUARANTINED", 1)
    assert shown["quarantined_until"] is not None and shown["episode"]
    assert [(h["from_status"], h["to_status"], h["actor"]) for h in shown["history"]] == [
        ("ACTIVE", "QUARANTINED", "ses-feedback")]
    assert run(target, monkeypatch, "show") == 0
    text = capsys.readouterr().out
    assert "ada@example.com: QUARANTINED since" in text and "strikes:  1" in text and "quarantined until" in text


def test_reinstate_leaves_suppressed_with_an_audit_record_and_old_feedback_cannot_undo_it(
        stack, target, monkeypatch, capsys):
    add(stack)
    bounced = feedback_record("hard_bounce", ADDRESS, stack.clock.now(), "0100-m1")
    feed(stack, bounced)
    stack.clock.advance(60)

    assert run(target, monkeypatch, "reinstate", reason="confirmed by phone, ticket 42") == 0
    assert "SUPPRESSED -> ACTIVE (operator reinstated: confirmed by phone, ticket 42)" in capsys.readouterr().out
    feed(stack, {**bounced, "mail": {**bounced["mail"], "messageId": "0100-m1-replayed"}})  # an old bounce, replayed

    assert run(target, monkeypatch, "show", json=True) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "ACTIVE" and shown["strikes"] == 0
    operator = [h for h in shown["history"] if h["actor"] == "operator:ops"]
    assert [(h["from_status"], h["to_status"], h["cause"]) for h in operator] == [
        ("SUPPRESSED", "ACTIVE", "operator_reinstate")]


def test_suppress_ends_a_waiting_episode(stack, target, monkeypatch, capsys):
    add(stack)
    feed(stack, feedback_record("soft_bounce", ADDRESS, stack.clock.now(), "0100-m1"))
    sfn = stack.client("stepfunctions")
    (episode,) = sfn.list_executions(stateMachineArn=stack.outputs["RecipientLifecycleStateMachineArn"])["executions"]
    waiting_for_token(stack)

    assert run(target, monkeypatch, "suppress", reason="asked by phone to stop") == 0

    result = stack.wait(episode["executionArn"], timeout=20)
    assert result.output["ended_by"] == "operator_suppress"
    assert run(target, monkeypatch, "suppress", reason="again") == 0
    assert "already SUPPRESSED; nothing changed" in capsys.readouterr().out


def test_errors_speak_the_operators_language(stack, target, monkeypatch, capsys):
    assert run(target, monkeypatch, "show", address="nobody@example.com") == 1
    assert "no recipient nobody@example.com in" in capsys.readouterr().err
    add(stack)
    assert run(target, monkeypatch, "suppress", reason="  ") == 1
    assert "reason: an operator's change needs a reason" in capsys.readouterr().err
    for action, reason in (("show", None), ("suppress", "asked to leave")):
        assert run(target, monkeypatch, action, address="élodie@example.fr", reason=reason) == 2
        assert "sesflow: 'élodie@example.fr' is not an email address SES sends to (the part before the @ is not " \
               "7-bit ASCII" in capsys.readouterr().err
