"""`sesflow local up --serve --data DIR`: the engine's state (tables, S3 objects, SES templates and suppression list)
written to DIR when it stops and loaded when it starts again; a DIR of another template's tables is refused."""

import argparse
import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from sesflow import cli, contacts_cli
from sesflow.engine import data_dir
from sesflow.engine.server import EngineServer
from sesflow.engine.ses import simulator
from sesflow.engine.stack import LocalStack
from sesflow.engine.template import ACCOUNT_ID
from sesflow.target import resolve_target
from tests.conftest import ROOT


@pytest.fixture
def environ():
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def serve(tmp_path, data, during, monkeypatch, *extra):
    """`sesflow local up --serve --data DATA`: `during(target)` runs while it serves (another client, over HTTP),
    then it stops as at Ctrl-C."""
    state_file = tmp_path / "local.json"
    seen = {}

    def serving(server):
        saved = dict(os.environ)
        try:
            seen["result"] = during(resolve_target(None, state_file), server)
        finally:  # the client's environment (its endpoint) is another process's, not this engine's
            os.environ.clear()
            os.environ.update(saved)

    monkeypatch.setattr(EngineServer, "serve_until_signalled", serving)
    args = cli.build_parser().parse_args(
        ["local", "up", "--template", str(ROOT / "template.yaml"), "--serve", "--port", "0", "--state-file",
         str(state_file), "--feedback", "none", "--data", str(data), *extra])
    assert cli.local_up(args) == 0
    return seen.get("result")


def test_contacts_and_a_pushed_template_are_there_after_a_restart_with_the_same_data(tmp_path, monkeypatch,
                                                                                        capsys, environ):
    data = tmp_path / "data"
    people = tmp_path / "people.csv"
    people.write_text("email,first_name\nada@example.org,Ada\ngrace@example.org,Grace\n", encoding="utf-8")

    def first(target, server):
        summary = contacts_cli.import_file(str(people), "newsletter", contacts_cli._code(target), actor="test")
        target.client("sesv2").create_email_template(TemplateName="welcome", TemplateContent={
            "Subject": "Hello {{first_name}}", "Text": "Welcome", "Html": "<p>Welcome</p>"})
        target.client("sesv2").put_suppressed_destination(EmailAddress="gone@example.org", Reason="BOUNCE")
        target.client("s3").put_object(Bucket=target.output("ManifestBucketName"), Key="imports/x/a b.json",
                                       Body=b'{"n": 1}', ContentType="application/json")
        # Virtual time runs ahead of wall time (a 4-hour evaluation window passes in seconds): what was written
        # then must not be in the future of the restarted engine (the governor plans from its last writer's clock).
        server.stack.clock.advance(3 * 86400)
        return summary, server.stack.clock.now()

    summary, engine_time = serve(tmp_path, data, first, monkeypatch)
    assert summary["created"] == 2
    out = capsys.readouterr().out
    assert f"{data} is new: the engine's state is written there when it stops" in out
    assert f"Saved to {data}: " in out and "1 SES templates, 1 on the SES suppression list" in out

    def second(target, server):
        ddb, sesv2 = target.client("dynamodb"), target.client("sesv2")
        contacts = {i["address"]["S"]: i for i in ddb.scan(TableName=target.output("RecipientsTableName"))["Items"]}
        memberships = ddb.scan(TableName=target.output("MembershipsTableName"))["Items"]
        template = sesv2.get_email_template(TemplateName="welcome")["TemplateContent"]
        suppressed = sesv2.get_suppressed_destination(EmailAddress="gone@example.org")["SuppressedDestination"]
        body = target.client("s3").get_object(Bucket=target.output("ManifestBucketName"), Key="imports/x/a b.json")
        return contacts, memberships, template, suppressed, body, server.stack.clock.now()

    contacts, memberships, template, suppressed, body, restarted = serve(tmp_path, data, second, monkeypatch)
    assert set(contacts) == {"ada@example.org", "grace@example.org"}
    assert contacts["ada@example.org"]["first_name"]["S"] == "Ada"
    assert {(m["list_id"]["S"], m["address"]["S"]) for m in memberships} == {
        ("newsletter", "ada@example.org"), ("newsletter", "grace@example.org")}
    assert template["Subject"] == "Hello {{first_name}}"
    assert suppressed["Reason"] == "BOUNCE"
    assert (body["Body"].read(), body["ContentType"]) == (b'{"n": 1}', "application/json")
    assert restarted >= engine_time > datetime.now(UTC) + timedelta(days=2)  # time never goes back on a restart
    out = capsys.readouterr().out
    assert f"Data: loaded from {data}: " in out and "1 SES templates" in out


def test_a_data_folder_of_another_templates_tables_is_refused_naming_the_table(tmp_path, monkeypatch, capsys,
                                                                               environ):
    data = tmp_path / "data"
    with LocalStack(template_path=ROOT / "template.yaml") as stack:
        stack.client("dynamodb").put_item(TableName=stack.outputs["RecipientsTableName"],
                                          Item={"address": {"S": "kept@example.org"}, "blob": {"B": b"\x00\xff"},
                                                "nested": {"M": {"B": {"S": "a field named B"}}}})
        data_dir.save(stack, data)
        simulator().account(ACCOUNT_ID, stack.region).suppressed.clear()
    manifest = json.loads((data / "sesflow-data.json").read_text())
    manifest["tables"]["RecipientsTable"]["key"] = ["email (S, HASH)"]
    manifest["tables"]["LegacyTable"] = {"key": ["id (S, HASH)"]}
    (data / "sesflow-data.json").write_text(json.dumps(manifest))
    before = sorted(p.name for p in data.rglob("*"))

    args = cli.build_parser().parse_args(["local", "up", "--template", str(ROOT / "template.yaml"), "--serve",
                                          "--port", "0", "--state-file", str(tmp_path / "local.json"),
                                          "--data", str(data)])
    assert cli.local_up(args) == 2

    error = capsys.readouterr().err
    assert f"{data} was written from another template's tables" in error
    assert "LegacyTable: saved there, not in" in error
    assert "RecipientsTable: key email (S, HASH) there, address (S, HASH) in" in error
    assert sorted(p.name for p in data.rglob("*")) == before  # nothing written
    assert not (tmp_path / "local.json").exists()


def test_binary_values_and_odd_attribute_names_come_back_as_they_were(tmp_path):
    item = {"address": {"S": "kept@example.org"}, "blob": {"B": b"\x00\xff"}, "blobs": {"BS": [b"\x01"]},
            "nested": {"M": {"B": {"S": "a field named B"}, "L": {"L": [{"B": b"\x02"}, {"N": "3"}]}}}}
    with LocalStack(template_path=ROOT / "template.yaml") as stack:
        stack.client("dynamodb").put_item(TableName=stack.outputs["RecipientsTableName"], Item=item)
        data_dir.save(stack, tmp_path / "data")
    with LocalStack(template_path=ROOT / "template.yaml") as stack:
        data_dir.load(stack, tmp_path / "data", data_dir.manifest(tmp_path / "data"))
        back = stack.client("dynamodb").get_item(TableName=stack.outputs["RecipientsTableName"],
                                                 Key={"address": {"S": "kept@example.org"}})["Item"]
    assert back == item


def test_a_folder_that_is_not_a_data_folder_is_refused_before_deploying(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    args = argparse.Namespace(**{**vars(cli.build_parser().parse_args(
        ["local", "up", "--serve", "--port", "0", "--state-file", str(tmp_path / "s.json"),
         "--data", str(tmp_path)]))})

    assert cli.local_up(args) == 2

    assert f"{tmp_path}: not a sesflow data folder (no sesflow-data.json)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
