"""`sesflow contacts migrate` against a stack on the engine: it starts MigrateContactsStateMachine, follows it, and
prints what it did; its errors are one line and exit 2."""

import argparse
import io
import json
import os

import pytest

from sesflow import migrate_cli
from sesflow.target import Target


def parse(*argv):
    parser = argparse.ArgumentParser(prog="sesflow contacts")
    migrate_cli.add_parser(parser.add_subparsers(dest="action", required=True))
    return parser.parse_args(["migrate", *argv])


@pytest.fixture
def target(stack, monkeypatch):
    saved = dict(os.environ)
    found = Target(name="test-stack", region=stack.region, outputs=stack.outputs)
    monkeypatch.setattr("sesflow.target.resolve_target", lambda *a, **k: found)
    monkeypatch.setattr(migrate_cli, "POLL_SECONDS", 0.01)
    ddb = stack.client("dynamodb")
    items = {f"user{i}@example.org": "ACTIVE" for i in range(5)} | {"gone@example.org": "SUPPRESSED"}
    for address, status in items.items():
        ddb.put_item(TableName=stack.outputs["RecipientsTableName"], Item={
            "address": {"S": address}, "list_id": {"S": "newsletter"}, "status": {"S": status}})
    ddb.put_item(TableName=stack.outputs["RecipientsTableName"], Item={
        "address": {"S": "left@example.org"}, "list_id": {"S": "newsletter"}, "status": {"S": "SUPPRESSED"},
        "status_cause": {"S": "unsubscribe"}, "status_reason": {"S": "unsubscribed"},
        "status_since": {"S": "2026-03-02T10:00:00.000Z"}})
    yield found
    os.environ.clear()
    os.environ.update(saved)


def test_migrate_prints_one_json_object_with_what_it_did(stack, target, capsys):
    args = parse("--json", "--segments", "2")

    assert args.func(args) == 0

    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert {k: summary[k] for k in ("target", "dry_run", "segments", "scanned", "migrated", "unsubscribed",
                                    "already", "skipped")} == {
        "target": "test-stack", "dry_run": False, "segments": 2, "scanned": 7, "migrated": 7, "unsubscribed": 1,
        "already": 0, "skipped": 0}
    assert summary["execution_arn"] in captured.err and "started" in captured.err
    members = stack.client("dynamodb").scan(TableName=stack.outputs["MembershipsTableName"])["Items"]
    assert sorted((m["address"]["S"], m["state"]["S"]) for m in members) == sorted(
        [(f"user{i}@example.org", "SUBSCRIBED") for i in range(5)]
        + [("gone@example.org", "SUBSCRIBED"), ("left@example.org", "UNSUBSCRIBED")])


def test_migrate_says_what_it_did_and_again_that_there_is_nothing_left(stack, target, capsys):
    args = parse()
    assert args.func(args) == 0
    first = capsys.readouterr().out
    assert args.func(args) == 0
    second = capsys.readouterr().out

    assert "7 items of RecipientsTable scanned in 4 segments on test-stack" in first
    assert [line.split()[:2] for line in first.splitlines()[1:4]] == [
        ["migrated", "7"], ["unsubscribed", "kept"], ["memberships", "kept"]]
    assert "unsubscribed kept        1" in first
    assert [line.split()[:2] for line in second.splitlines() if line.split()[0] in ("migrated", "already")] == [
        ["migrated", "0"], ["already", "7"]]


def test_a_dry_run_says_so_and_writes_nothing(stack, target, capsys):
    args = parse("--dry-run")

    assert args.func(args) == 0

    out = capsys.readouterr().out
    assert out.startswith("Dry run, nothing written: 7 items") and "would migrate              7" in out
    assert stack.client("dynamodb").scan(TableName=stack.outputs["MembershipsTableName"])["Count"] == 0


def test_errors_are_one_line_exit_2_for_a_bad_value_and_1_for_a_stack_that_cannot(stack, target, monkeypatch,
                                                                                   capsys):
    args = parse("--segments", "41")
    assert args.func(args) == 2
    assert capsys.readouterr().err == "sesflow: --segments: must be 1 to 40, got 41\n"

    monkeypatch.setattr("sesflow.target.resolve_target", lambda *a, **k: Target(
        name="old-stack", region=stack.region, outputs={k: v for k, v in stack.outputs.items()
                                                        if k != "MigrateContactsStateMachineArn"}))
    args = parse()
    assert args.func(args) == 1
    assert "stack old-stack has no output MigrateContactsStateMachineArn" in capsys.readouterr().err


def test_a_failed_migration_is_named_with_its_error_and_exits_1(stack, target, monkeypatch, capsys):
    import app.migration
    from app.errors import ContractError

    def broken(*args, **kwargs):
        raise ContractError("MigrateContactsInput.cursor: not a key of this table")

    monkeypatch.setattr(app.migration, "migrate_segment", broken)
    args = parse("--segments", "1")

    assert args.func(args) == 1

    err = capsys.readouterr().err
    assert "ended FAILED" in err and "ContractError" in err and "running it again goes on" in err
    assert "Traceback" not in err


def test_without_an_engine_or_a_stack_it_says_how_to_start_one(tmp_path, monkeypatch, capsys):
    args = parse("--state-file", str(tmp_path / "local.json"))

    assert args.func(args) == 1
    assert "no local engine is running: start one with `sesflow local up --serve`" in capsys.readouterr().err


class History:
    """A Step Functions client whose execution runs for three looks, its two segments' calls appearing."""

    def __init__(self):
        self.looks = 0
        self.events = [{"type": "MapStateStarted", "mapStateStartedEventDetails": {"length": 2}}]

    def call(self, segment, scanned, done):
        payload = {"segment": segment, "counts": {"scanned": scanned}, "done": done}
        self.events.append({"type": "TaskSucceeded",
                            "taskSucceededEventDetails": {"output": json.dumps({"Payload": payload})}})

    def describe_execution(self, executionArn):  # noqa: N803
        self.looks += 1
        if self.looks == 2:
            self.call(0, 10_000, False)
            self.call(1, 2_500, True)
        if self.looks == 3:
            self.call(0, 14_000, True)
        if self.looks < 4:
            return {"status": "RUNNING"}
        return {"status": "SUCCEEDED", "output": json.dumps({"dry_run": False, "segments": 2, "scanned": 16_500,
                                                             "migrated": 16_000, "already": 500})}

    def get_execution_history(self, executionArn, maxResults, nextToken=None):  # noqa: N803
        return {"events": self.events}


def test_progress_shows_the_items_scanned_so_far_and_the_segments_done(monkeypatch):
    sfn = History()
    monkeypatch.setattr(migrate_cli, "POLL_SECONDS", 0)
    out = io.StringIO()

    summary = migrate_cli.follow(type("T", (), {"client": lambda self, name: sfn})(), "arn:x", out)

    assert out.getvalue().splitlines() == [
        "migrating: 0 items scanned, 0 of 2 segments done",
        "migrating: 12,500 items scanned, 1 of 2 segments done",
        "migrating: 16,500 items scanned, 2 of 2 segments done",
    ]
    assert (summary["migrated"], summary["skipped"]) == (16_000, 0)

