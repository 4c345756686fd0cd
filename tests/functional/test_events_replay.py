"""`sesflow events replay` sends feedback files into the stack's feedback queue, through IngestFeedback."""

import argparse
import json
import os

import pytest

from sesflow import events_cli, recipient_cli
from sesflow.engine.ses import feedback_record
from sesflow.target import Target
from tests.contacts import add_contact

ADDRESS = "ada@example.com"
MALFORMED = "events/ingest_feedback/bodies/malformed_unknown_event_type.json"


@pytest.fixture
def target(stack, monkeypatch):
    saved = dict(os.environ)
    found = Target(name="test-stack", region=stack.region, outputs=stack.outputs)
    monkeypatch.setattr("sesflow.target.resolve_target", lambda *a, **k: found)
    add_contact(stack, ADDRESS, ["newsletter"])
    yield found
    os.environ.clear()
    os.environ.update(saved)


def run(stack, *files, dry_run=False):
    args = argparse.Namespace(files=[str(f) for f in files], dry_run=dry_run, stack="test-stack", region=None,
                              state_file=None)
    return events_cli.replay(args, settle=lambda target: stack.deliver_queues() >= 0)  # the engine's pump, here


def test_replay_applies_once_absorbs_the_duplicate_and_dead_letters_the_unusable(stack, target, tmp_path, capsys):
    bounce = json.dumps(feedback_record("hard_bounce", ADDRESS, stack.clock.now(), "0100-m1"))
    lines = tmp_path / "feedback.jsonl"
    lines.write_text(f"{bounce}\n{bounce}\n")  # the same event twice, as SNS may deliver it

    assert run(stack, lines, MALFORMED) == 1

    out, err = capsys.readouterr()
    assert "sent 3 messages" in out
    assert "ingested 2 (applied, or absorbed as duplicates), 1 to the DLQ" in out
    assert f"{MALFORMED}: dead-lettered:" in err
    shown = recipient_cli.describe(ADDRESS, target)
    assert shown["status"] == "SUPPRESSED"
    assert len([h for h in shown["history"] if h.get("to_status") == "SUPPRESSED"]) == 1


def test_dry_run_parses_with_the_ingest_parser_and_sends_nothing(stack, target, tmp_path, capsys):
    body = tmp_path / "bounce.json"
    body.write_text(json.dumps(feedback_record("hard_bounce", ADDRESS, stack.clock.now(), "0100-m1")))

    assert run(stack, body, MALFORMED, dry_run=True) == 1

    out, err = capsys.readouterr()
    assert "dry run: 2 messages, 1 usable, 1 would go to the DLQ; nothing sent" in out
    assert f"{MALFORMED}: would go to the DLQ:" in err
    assert recipient_cli.describe(ADDRESS, target)["status"] == "ACTIVE"


def test_a_missing_file_or_a_bad_line_is_named_and_nothing_is_sent(stack, target, tmp_path, capsys):
    assert run(stack, tmp_path / "missing.json") == 2
    assert "missing.json: cannot read it (No such file or directory)" in capsys.readouterr().err
    lines = tmp_path / "feedback.jsonl"
    lines.write_text('{"eventType": "Bounce"}\n{"eventType": \n')
    assert run(stack, lines) == 2
    assert "feedback.jsonl: line 2: not JSON" in capsys.readouterr().err
    queue = stack.client("sqs").get_queue_attributes(QueueUrl=stack.outputs["FeedbackQueueUrl"],
                                                      AttributeNames=["ApproximateNumberOfMessages"])
    assert queue["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_replay_of_a_lambda_sns_event_sends_each_notification_as_sns_puts_it_on_the_queue(stack, target, capsys):
    """An SNS topic's event to a function (events/ingest_feedback/sns_event.json), replayed through the queue."""
    sample = "events/ingest_feedback/sns_event.json"
    found = events_cli.messages(sample)
    assert [where for where, _ in found] == [f"{sample}: Records[0]", f"{sample}: Records[1]"]
    assert all(json.loads(body)["Type"] == "Notification" for _, body in found)
    for address in ("bounce@simulator.amazonses.com", "nomail.hard@example.com"):
        add_contact(stack, address, ["newsletter"])

    assert run(stack, sample) == 0

    assert "ingested 2 (applied, or absorbed as duplicates), 0 to the DLQ" in capsys.readouterr().out
    assert recipient_cli.describe("nomail.hard@example.com", target)["status"] == "SUPPRESSED"
    assert recipient_cli.describe("bounce@simulator.amazonses.com", target)["status"] == "SUPPRESSED"
