"""`sesflow suppression import|export FILE` against a stack on the engine, through the Lambda code's own writes."""

import argparse
import csv
import os

import pytest

from sesflow import recipient_cli, suppression_cli
from sesflow.target import Target
from tests.contacts import add_contact


@pytest.fixture
def target(stack, monkeypatch):
    saved = dict(os.environ)
    found = Target(name="test-stack", region=stack.region, outputs=stack.outputs)
    monkeypatch.setattr("sesflow.target.resolve_target", lambda *a, **k: found)
    yield found
    os.environ.clear()
    os.environ.update(saved)


def add(stack, address, status="ACTIVE"):
    add_contact(stack, address, ["newsletter"], status=status)


def run(action, file, **options):
    args = argparse.Namespace(action=action, file=file and str(file), stack="test-stack", region=None,
                              state_file=None, reason=options.get("reason", "imported from the old provider"),
                              actor="ops", ses=options.get("ses", False),
                              ses_reason=options.get("ses_reason", "BOUNCE"), from_ses=options.get("from_ses", False))
    return suppression_cli.suppression(args)


def test_import_suppresses_each_address_audited_and_a_bad_line_does_not_stop_the_rest(
        stack, target, tmp_path, capsys):
    for address in ("ada@example.com", "bob@example.com", "cy@example.com"):
        add(stack, address)
    add(stack, "dee@example.com", status="SUPPRESSED")
    path = tmp_path / "list.csv"
    path.write_text("EmailAddress,Reason\nAda@Example.com,BOUNCE\nnot-an-address,BOUNCE\n"
                    "bob@example.com,COMPLAINT\ndee@example.com,BOUNCE\nzed@example.com,BOUNCE\n,\n")

    assert run("import", path) == 1  # something was not suppressed: say so in the exit code too

    out, err = capsys.readouterr()
    assert f"{path}: 2 suppressed, 1 already suppressed, 1 not contacts yet (kept suppressed ahead of them), " \
           "1 refused" in out
    assert f"{path}: line 3: 'not-an-address' is not an email address" in err
    assert recipient_cli.describe("zed@example.com", target)["status"] == "SUPPRESSED"
    shown = recipient_cli.describe("ada@example.com", target)
    assert shown["status"] == "SUPPRESSED"
    assert [(h["to_status"], h["actor"]) for h in shown["history"]] == [("SUPPRESSED", "operator:ops")]
    assert "imported from the old provider" in shown["history"][0]["reason"]
    assert recipient_cli.describe("cy@example.com", target)["status"] == "ACTIVE"


def test_import_takes_one_address_per_line_and_is_idempotent(stack, target, tmp_path, capsys):
    add(stack, "ada@example.com")
    path = tmp_path / "list.txt"
    path.write_text("ada@example.com\n\n")
    assert run("import", path) == 0
    assert "1 suppressed, 0 already suppressed" in capsys.readouterr().out
    assert run("import", path) == 0
    assert "0 suppressed, 1 already suppressed" in capsys.readouterr().out
    assert len(recipient_cli.describe("ada@example.com", target)["history"]) == 1


def test_export_writes_every_suppressed_recipient_by_address(stack, target, tmp_path, capsys):
    for address in ("cy@example.com", "ada@example.com", "bob@example.com"):
        add(stack, address)
    source = tmp_path / "in.csv"
    source.write_text("address\ncy@example.com\nada@example.com\n")
    run("import", source, reason="legacy list")
    capsys.readouterr()

    assert run("export", tmp_path / "out.csv") == 0

    assert "exported 2 suppressed recipients" in capsys.readouterr().out
    with open(tmp_path / "out.csv", newline="") as exported:
        rows = list(csv.DictReader(exported))
    assert [r["address"] for r in rows] == ["ada@example.com", "cy@example.com"]
    assert all("legacy list" in r["reason"] and r["since"] for r in rows)


def test_a_missing_file_or_a_header_without_an_address_column_is_named(stack, target, tmp_path, capsys):
    assert run("import", tmp_path / "missing.csv") == 2
    assert "missing.csv: cannot read it (No such file or directory)" in capsys.readouterr().err
    path = tmp_path / "bad.csv"
    path.write_text("name,phone\nada,123\n")
    assert run("import", path) == 2
    assert "bad.csv: line 1: a CSV header needs an `address` or `email` column (found: name, phone)" in (
        capsys.readouterr().err)
