"""`sesflow contacts import|show|export|remove|erase` and `sesflow lists` against a stack on the engine."""

import argparse
import csv
import json
import os

import pytest

from sesflow import contacts_cli, recipient_cli
from sesflow.target import Target

LIST = "newsletter"


@pytest.fixture
def target(stack, monkeypatch):
    saved = dict(os.environ)
    found = Target(name="test-stack", region=stack.region, outputs=stack.outputs)
    monkeypatch.setattr("sesflow.target.resolve_target", lambda *a, **k: found)
    yield found
    os.environ.clear()
    os.environ.update(saved)


def run(action, **given):
    defaults = {"stack": "test-stack", "region": None, "state_file": None, "json": True, "actor": "ops",
                "list": LIST, "dry_run": False, "resubscribe": False, "reason": None, "rejects": None,
                "workflow": False, "no_wait": False, "here": False}
    return contacts_cli.contacts(argparse.Namespace(action=action, **{**defaults, **given}))


def imported(capsys, path, **given):
    code = run("import", file=str(path), **given)
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def scan(stack, table):
    return stack.client("dynamodb").scan(TableName=stack.outputs[table])["Items"]


def membership(stack, address, list_id=LIST):
    return stack.client("dynamodb").get_item(TableName=stack.outputs["MembershipsTableName"], Key={
        "list_id": {"S": list_id}, "address": {"S": address}}).get("Item")


def test_a_mailchimp_export_imports_with_its_attributes_and_a_second_import_writes_nothing(
        stack, target, tmp_path, capsys):
    path = tmp_path / "members.csv"
    path.write_bytes("\ufeffEmail Address;First Name;Plan\n"
                     "Ada@Example.com;Ada;pro\n"
                     "\"Bob B\" <bob@example.com>;Bob;free\n"
                     "cy@bücher.de;Cy;\n".encode())

    first = imported(capsys, path)
    again = imported(capsys, path)

    assert (first["rows"], first["created"], first["added_to_list"]) == (3, 3, 3)
    assert first["skipped"] == {"suppressed": 0, "unsubscribed": 0, "invalid": 0}
    assert (again["created"], again["updated"], again["unchanged"], again["added_to_list"]) == (0, 0, 3, 0)
    assert again["dynamodb_writes"] == 0 and again["write_units"] == 0
    run("show", address="ada@example.com")
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "ACTIVE" and shown["lists"] == {LIST: "SUBSCRIBED"}
    assert shown["attributes"] == {"first_name": "Ada", "plan": "pro"}
    assert membership(stack, "cy@xn--bcher-kva.de")["state"]["S"] == "SUBSCRIBED"


def test_an_import_never_changes_a_status_nor_resubscribes_and_says_what_it_skipped(stack, target, tmp_path, capsys):
    ddb = stack.client("dynamodb")
    ddb.put_item(TableName=stack.outputs["RecipientsTableName"], Item={
        "address": {"S": "gone@example.com"}, "status": {"S": "SUPPRESSED"}, "version": {"N": "3"}})
    ddb.put_item(TableName=stack.outputs["RecipientsTableName"], Item={
        "address": {"S": "resting@example.com"}, "status": {"S": "QUARANTINED"}, "version": {"N": "2"}})
    ddb.put_item(TableName=stack.outputs["RecipientsTableName"], Item={
        "address": {"S": "left@example.com"}, "status": {"S": "ACTIVE"}})
    ddb.put_item(TableName=stack.outputs["MembershipsTableName"], Item={
        "list_id": {"S": LIST}, "address": {"S": "left@example.com"}, "state": {"S": "UNSUBSCRIBED"}})
    path = tmp_path / "list.csv"
    path.write_text("email,city\ngone@example.com,Oslo\nresting@example.com,Rome\nleft@example.com,Lima\n")

    summary = imported(capsys, path)

    assert summary["skipped"] == {"suppressed": 1, "unsubscribed": 1, "invalid": 0}
    assert (summary["updated"], summary["added_to_list"]) == (1, 1)
    statuses = {i["address"]["S"]: i["status"]["S"] for i in scan(stack, "RecipientsTableName")}
    assert statuses == {"gone@example.com": "SUPPRESSED", "resting@example.com": "QUARANTINED",
                        "left@example.com": "ACTIVE"}
    assert membership(stack, "gone@example.com") is None
    assert membership(stack, "left@example.com")["state"]["S"] == "UNSUBSCRIBED"

    assert run("import", file=str(path), resubscribe=True) == 2
    assert "--resubscribe needs --reason" in capsys.readouterr().err
    again = imported(capsys, path, resubscribe=True, reason="asked us by phone, ticket 4411")
    assert again["resubscribed"] == 1 and again["skipped"]["suppressed"] == 1
    assert membership(stack, "left@example.com")["state"]["S"] == "SUBSCRIBED"
    history = recipient_cli.describe("left@example.com", target)["history"]
    assert [(h.get("kind"), h.get("to_state"), h.get("reason")) for h in history] == [
        ("subscription", "SUBSCRIBED", "asked us by phone, ticket 4411")]


def test_bad_rows_are_reported_with_their_lines_and_the_rest_imported(stack, target, tmp_path, capsys):
    path = tmp_path / "list.csv"
    path.write_text("email,name\nada@example.com,Ada\nnot-an-address,X\n\nbob@example.com,Bob,extra\n"
                    "ADA@example.com,Ada Lovelace\n")

    summary = imported(capsys, path)

    assert (summary["rows"], summary["created"], summary["repeated"]) == (4, 1, 1)
    assert summary["skipped"]["invalid"] == 2
    with open(summary["rejects_file"], newline="") as rejects:
        rows = list(csv.DictReader(rejects))
    assert [r["line"] for r in rows] == ["3", "5"]
    assert "not an email address" in rows[0]["reason"]
    run("show", address="ada@example.com")
    assert json.loads(capsys.readouterr().out)["attributes"] == {"name": "Ada Lovelace"}


@pytest.mark.parametrize("content, message", [
    (b"name,city\nAda,Oslo\n", "line 1"),
    (b"", "empty"),
    (b"email\nada@example.com\n\x00\x01\x02binary\n", "line 3"),
    (b"email\nada@example.com\n" + "caf\u00e9@example.com\n".encode("latin-1"), "line 3"),
])
def test_a_file_that_cannot_be_imported_is_refused_naming_the_file_and_line_and_nothing_is_written(
        stack, target, tmp_path, capsys, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)

    assert run("import", file=str(path)) == 2

    err = capsys.readouterr().err
    assert str(path) in err and message in err and "Traceback" not in err
    assert scan(stack, "RecipientsTableName") == [] and scan(stack, "MembershipsTableName") == []


def test_the_workflow_imports_the_same_as_the_cli_and_brings_back_the_rejects(stack, target, tmp_path, capsys):
    path = tmp_path / "big.jsonl"
    lines = [json.dumps({"email": f"user{i}@example.org", "score": i}) for i in range(1200)]
    lines.insert(700, json.dumps({"email": "nope", "score": 1}))
    path.write_text("\n".join(lines) + "\n")

    summary = imported(capsys, path, workflow=True)

    assert (summary["rows"], summary["created"], summary["added_to_list"]) == (1201, 1200, 1200)
    assert summary["skipped"]["invalid"] == 1
    with open(summary["rejects_file"], newline="") as rejects:
        assert [r["line"] for r in csv.DictReader(rejects)] == ["701"]
    again = imported(capsys, path)  # the CLI's own path finds everything there
    assert (again["unchanged"], again["dynamodb_writes"]) == (1200, 0)
    run("show", address="user7@example.org")
    assert json.loads(capsys.readouterr().out)["attributes"] == {"score": 7}


def test_show_export_remove_lists_and_erase(stack, target, tmp_path, capsys):
    path = tmp_path / "list.csv"
    path.write_text("email,first_name\nada@example.com,Ada\nbob@example.com,Bob\n")
    imported(capsys, path)
    imported(capsys, path, list="vip")

    assert run("lists") == 0
    shown = {entry["list"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert shown[LIST]["members"] == 2 and shown["vip"]["subscription"] == {"SUBSCRIBED": 2}

    assert run("export", file=str(tmp_path / "out.csv"), list=None) == 0
    with open(tmp_path / "out.csv", newline="") as out:
        rows = list(csv.DictReader(out))
    assert [(r["address"], r["lists"], r["first_name"]) for r in rows] == [
        ("ada@example.com", "newsletter:SUBSCRIBED;vip:SUBSCRIBED", "Ada"),
        ("bob@example.com", "newsletter:SUBSCRIBED;vip:SUBSCRIBED", "Bob")]

    assert run("remove", address="bob@example.com", list="vip") == 0
    capsys.readouterr()
    run("show", address="bob@example.com")
    assert json.loads(capsys.readouterr().out)["lists"] == {LIST: "SUBSCRIBED"}

    assert run("erase", address="Ada@Example.com", reason="GDPR request 2026-118") == 0
    capsys.readouterr()
    items = scan(stack, "RecipientsTableName")
    assert sorted(i["address"]["S"][:7] for i in items) == ["bob@exa", "erased:"]
    everything = json.dumps(items + scan(stack, "MembershipsTableName") + scan(stack, "EventsTableName"))
    assert "ada@example.com" not in everything
    summary = imported(capsys, path)  # a later import cannot add her back unknowingly
    assert summary["skipped"]["suppressed"] == 1 and summary["created"] == 0
    assert run("show", address="ada@example.com") == 1
    assert "erased" in capsys.readouterr().err


def test_a_large_file_for_a_deployed_stack_goes_to_the_workflow_unless_here(stack, target, tmp_path, capsys,
                                                                             monkeypatch):
    monkeypatch.setattr(contacts_cli, "WORKFLOW_ROWS", 10)  # a deployed stack's threshold, made small
    path = tmp_path / "list.csv"
    path.write_text("email\n" + "".join(f"u{i}@example.org\n" for i in range(20)))

    summary = imported(capsys, path)
    here = imported(capsys, path, here=True)

    assert summary["created"] == 20 and summary["execution_arn"].startswith("arn:aws:states:")
    assert here["unchanged"] == 20 and "execution_arn" not in here


def test_resubscribe_never_overrides_a_contacts_own_unsubscribe_from_everything(stack, target, tmp_path, capsys):
    ddb = stack.client("dynamodb")
    ddb.put_item(TableName=stack.outputs["RecipientsTableName"], Item={
        "address": {"S": "ada@example.com"}, "status": {"S": "ACTIVE"}, "unsubscribed_all_at": {"S": "2026-01-01"}})
    ddb.put_item(TableName=stack.outputs["MembershipsTableName"], Item={
        "list_id": {"S": LIST}, "address": {"S": "ada@example.com"}, "state": {"S": "UNSUBSCRIBED"}})
    path = tmp_path / "list.csv"
    path.write_text("email\nada@example.com\n")

    again = imported(capsys, path, resubscribe=True, reason="re-confirmed via double opt-in")

    assert (again["skipped"]["unsubscribed"], again["resubscribed"], again["added_to_list"]) == (1, 0, 0)
    run("show", address="ada@example.com")
    shown = json.loads(capsys.readouterr().out)
    assert shown["lists"] == {LIST: "UNSUBSCRIBED"} and shown["unsubscribed_from_everything"] is True


def test_an_export_imports_again_and_a_fixed_file_leaves_no_stale_rejects(stack, target, tmp_path, capsys):
    path = tmp_path / "list.csv"
    path.write_text("email,first_name\nada@example.com,Ada\nnope,X\n")
    assert imported(capsys, path)["rejects_file"] == f"{path}.rejects.csv"
    path.write_text("email,first_name\nada@example.com,Ada\n")
    assert imported(capsys, path)["rejects_file"] is None
    assert not (tmp_path / "list.csv.rejects.csv").exists()

    assert run("export", file=str(tmp_path / "out.csv"), list=LIST) == 0
    capsys.readouterr()
    again = imported(capsys, tmp_path / "out.csv", list="copy")

    assert (again["created"], again["unchanged"], again["added_to_list"]) == (0, 1, 1)
    assert again["ignored_columns"] == ["status", "lists"]
