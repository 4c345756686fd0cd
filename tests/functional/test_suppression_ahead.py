"""A suppression list loaded before its contacts exist, and the SES account suppression list, both ways."""

import argparse
import os

import pytest

from sesflow import recipient_cli, suppression_cli
from sesflow.target import Target


@pytest.fixture
def target(stack, monkeypatch):
    saved = dict(os.environ)
    found = Target(name="test-stack", region=stack.region, outputs=stack.outputs)
    monkeypatch.setattr("sesflow.target.resolve_target", lambda *a, **k: found)
    yield found
    os.environ.clear()
    os.environ.update(saved)


def run(action, file=None, **options):
    args = argparse.Namespace(action=action, file=file and str(file), stack="test-stack", region=None,
                              state_file=None, reason="from the old provider", actor="ops",
                              ses=options.get("ses", False), ses_reason=options.get("ses_reason", "BOUNCE"),
                              from_ses=options.get("from_ses", False))
    return suppression_cli.suppression(args)


def test_an_address_suppressed_before_it_is_a_contact_is_kept_suppressed_with_its_history(
        stack, target, tmp_path, capsys):
    path = tmp_path / "old-provider.csv"
    path.write_text("email\nNew.Person@Example.com\n")

    assert run("import", path) == 0
    assert run("import", path) == 0  # again: nothing more

    out = capsys.readouterr().out
    assert "1 not contacts yet" in out and "0 suppressed, 1 already suppressed, 0 not contacts yet" in out
    shown = recipient_cli.describe("new.person@example.com", target)
    assert shown["status"] == "SUPPRESSED"
    assert [(h["to_status"], h["actor"]) for h in shown["history"]] == [("SUPPRESSED", "operator:ops")]


def test_ses_pushes_to_and_reads_from_the_account_suppression_list(stack, target, tmp_path, capsys):
    path = tmp_path / "complaints.csv"
    path.write_text("address\nada@example.com\n")
    assert run("import", path, ses=True, ses_reason="COMPLAINT") == 0
    assert "1 put on the SES suppression list" in capsys.readouterr().out
    ses = stack.client("sesv2")
    assert ses.get_suppressed_destination(EmailAddress="ada@example.com")["SuppressedDestination"]["Reason"] \
        == "COMPLAINT"

    ses.put_suppressed_destination(EmailAddress="bounced@example.org", Reason="BOUNCE")
    assert run("import", from_ses=True) == 0
    assert recipient_cli.describe("bounced@example.org", target)["status"] == "SUPPRESSED"


def test_import_needs_a_file_or_from_ses(stack, target, capsys):
    assert run("import") == 2
    assert "give a FILE or --from-ses" in capsys.readouterr().err
