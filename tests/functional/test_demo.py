"""`sesflow demo`, the README's first command, on a small audience."""

import json

from sesflow.cli import main
from tests.conftest import ROOT


def test_demo_sends_each_eligible_recipient_one_email_and_reports_it(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)

    code = main(["demo", "--recipients", "200", "--json"])

    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert summary["status"] == "SUCCEEDED"
    eligible = summary["recipients_by_state"].get("ACTIVE", 0) + summary["recipients_by_state"].get("RECOVERY", 0)
    assert summary["emails_sent"] + summary["holdout"] == eligible
    assert summary["duplicates"] == summary["unaccounted"] == summary["sent_to_ineligible"] == 0
    assert set(summary["emails_by_variant"]) == {"a", "b", "c"}
    cost = summary["cost"]  # per 1M emails, from the engine's counts during the campaign
    assert cost["total_usd_per_1M_emails"] > 0 and cost["ses_usd_per_1M_emails"] == 100.0
    assert cost["lines"] and {"send path", "feedback ingestion"} & set(cost["by_part_usd"])
