"""`sesflow invoke FUNCTION -e EVENT`: sam local invoke's flags, on the embedded engine, no Docker. The result on
stdout, the function's logs on stderr, exit 1 with Lambda's errorType and errorMessage when it raised."""

import io
import json
import os
import subprocess
import sys

import pytest

from sesflow import cli
from sesflow.engine import data_dir
from sesflow.engine.stack import LocalStack
from tests.conftest import ROOT
from tests.contacts import add_contacts

EVENTS = ROOT / "events"


@pytest.fixture(autouse=True)
def environ():
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def invoke(capsys, *argv):
    code = cli.main(["invoke", "--template", str(ROOT / "template.yaml"), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_good_event_prints_the_functions_result_and_its_logs_apart(tmp_path):
    """As a user runs it, in a process of its own (the function's logger is made there, on its stderr)."""
    env = dict(os.environ)
    if env.get("PYTHONPATH"):  # the same sesflow as this process (PYTHONPATH=src)
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep) if p)
    done = subprocess.run(
        [sys.executable, "-m", "sesflow.cli", "invoke", "ValidateCampaignFunction", "-e",
         str(EVENTS / "validate_campaign/valid.json"), "--template", str(ROOT / "template.yaml")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # stdout is the result alone
    assert [v["name"] for v in result["campaign"]["variants"]] == ["a", "b", "c"] and result["resume"] is False
    logged = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert any(entry["message"] == "campaign valid" and entry["campaign_id"] == "spring-sale" for entry in logged)


def test_a_bad_event_from_stdin_exits_1_with_the_error_as_lambda_reports_it(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO((EVENTS / "validate_campaign/invalid.json").read_text()))

    code, out, err = invoke(capsys, "ValidateCampaignFunction", "-e", "-")

    assert code == 1
    payload = json.loads(out)
    assert payload["errorType"] == "CampaignDefinitionError" and "variants[0].weight:" in payload["errorMessage"]
    assert "sesflow invoke: ValidateCampaignFunction failed: CampaignDefinitionError: id: 'spring sale' is not " \
           "valid" in err


def test_an_unknown_function_lists_the_known_ones_and_bad_files_name_themselves(capsys, tmp_path):
    code, out, err = invoke(capsys, "NoSuchFunction")
    assert (code, out) == (2, "")
    assert "no function NoSuchFunction in" in err and "its functions: FinalizeCampaignFunction, " in err
    assert "ValidateCampaignFunction" in err

    bad = tmp_path / "event.json"
    bad.write_text("{ nope")
    code, _, err = invoke(capsys, "ValidateCampaignFunction", "-e", str(bad))
    assert code == 2 and f"--event {bad}: not JSON (Expecting property name" in err
    env = tmp_path / "env.json"
    env.write_text(json.dumps({"Parameters": {"STAGE": {"nested": 1}}}))
    code, _, err = invoke(capsys, "ValidateCampaignFunction", "-n", str(env))
    assert code == 2 and f"--env-vars {env}: Parameters.STAGE: {{\"nested\": 1}} is not a string" in err


def test_a_function_that_reads_a_table_sees_the_local_stacks_tables_and_env_vars_override_them(capsys, tmp_path):
    """--data loads what a served engine saved (its contacts); --env-vars in sam's format, declared variables only."""
    with LocalStack(template_path=ROOT / "template.yaml") as stack:
        add_contacts(stack, {f"r{i}@example.org": "ACTIVE" for i in range(60)}, ["newsletter"])
        data_dir.save(stack, tmp_path / "data")
    event = ["SnapshotAudienceFunction", "-e", str(EVENTS / "snapshot_audience/spring_sale.json")]

    code, out, err = invoke(capsys, *event, "--data", str(tmp_path / "data"))

    assert code == 0, err
    result = json.loads(out)
    assert result["recipients"] + result["holdout"] == 60  # the saved list, read from the local stack's table

    env = tmp_path / "env.json"
    env.write_text(json.dumps({"Parameters": {"UNDECLARED_THING": "x"},
                               "SnapshotAudienceFunction": {"MEMBERSHIPS_TABLE": "no-such-table"}}))
    code, out, err = invoke(capsys, *event, "--data", str(tmp_path / "data"), "--env-vars", str(env))

    assert code == 1
    error = json.loads(out)
    # It read the table the file named, which its role does not grant (IAM is checked as on AWS)
    assert "no-such-table" in error["errorMessage"] and "not authorized" in error["errorMessage"], error
    assert "--env-vars: UNDECLARED_THING not in SnapshotAudienceFunction's Environment in the template" in err
