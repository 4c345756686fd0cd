"""`sesflow demo`, the README's first command: both scenarios on one audience, as a new user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sesflow import demo
from sesflow.cli import main
from tests.conftest import ROOT

RECIPIENTS = 2000  # enough for the urgent variant's complaints to trip the breaker past its minimum sample


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    reports = tmp_path_factory.mktemp("reports")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        out = tmp_path_factory.mktemp("out") / "summary.json"
        import contextlib

        with out.open("w") as stdout, contextlib.redirect_stdout(stdout):
            code = main(["demo", "--recipients", str(RECIPIENTS), "--seed", "3", "--json",
                         "--report-dir", str(reports)])
    return code, json.loads(out.read_text())


@pytest.mark.slow
def test_every_campaign_reaches_each_eligible_recipient_once_and_accounts_for_everyone(run):
    code, summary = run

    assert code == 0
    assert [(c["scenario"], c["status"]) for c in summary["campaigns"]] == [("winner", "COMPLETED"),
                                                                           ("spike", "COMPLETED")]
    for campaign in summary["campaigns"]:
        assert campaign["duplicates"] == 0 and campaign["unaccounted"] == 0
        assert campaign["rendering_failures"] == 0  # the flash sale greets each recipient by name
        assert campaign["emails_sent"] + campaign["holdout"] + campaign["accounted"]["failed"] == \
            campaign["eligible_at_snapshot"]
        assert campaign["accounted"]["unknown"] == 0 and campaign["accounted"]["not_sent"] == 0
        assert campaign["holdout"] > 0
    assert summary["feedback_dead_lettered"] == 0


@pytest.mark.slow
def test_test_then_winner_sends_the_remainder_what_the_decision_says(run):
    _, summary = run
    winner = summary["campaigns"][0]

    decision = winner["winner"]
    assert not winner["halted"] and decision["metric"] == "click" and decision["reason"]
    assert {n["name"] for n in decision["numbers"]} == {"plain", "teaser"}
    sent = winner["emails_by_variant"]
    if decision["winner"]:  # the remainder all went to the winner: it has the test cohort's share and the rest
        loser = ({"plain", "teaser"} - {decision["winner"]}).pop()
        assert sent[decision["winner"]] > 4 * sent[loser]


@pytest.mark.slow
def test_the_complaint_spike_halts_mid_send_and_the_resume_sends_the_rest_once(run):
    _, summary = run
    spike = summary["campaigns"][1]

    halt = spike["halt"]
    assert spike["halted"] and halt["metric"] == "complaint" and "complaint rate" in halt["reason"]
    assert 0 < halt["emails_sent_before"] < spike["emails_sent"]
    # after the breaker tripped, at most one SES call per in-flight batch (MaxConcurrency 10). From when the
    # condition held (had each complaint been known at once) it is more: the complaint still had to reach the
    # breaker through SQS and IngestFeedback while ten batches kept sending, a lag nothing bounds (on AWS
    # neither: it is SES's feedback latency times the send rate)
    assert 0 <= halt["emails_after_trip"] <= 10 * 50
    assert spike["parent_history_events"][0] < 100 and len(spike["parent_history_events"]) == 2


@pytest.mark.slow
def test_feedback_moves_recipients_through_the_lifecycle_and_simulator_addresses_behave_as_aws_documents(run):
    _, summary = run
    before, after = summary["recipients_by_state_before"], summary["recipients_by_state_after"]

    assert sum(before.values()) == sum(after.values()) == RECIPIENTS
    assert after["SUPPRESSED"] > before["SUPPRESSED"]  # hard bounces and complaints
    assert summary["quarantine_episodes_rested"] > 0  # soft bounces, rested two days before the flash sale
    outcomes = summary["simulator_addresses_after"]
    assert set(outcomes["bounce"]) == set(outcomes["complaint"]) == set(outcomes["suppressionlist"]) == {"SUPPRESSED"}
    assert set(outcomes["success"]) == set(outcomes["ooto"]) == {"ACTIVE"}


@pytest.mark.slow
def test_the_summary_prices_the_run_and_each_campaign_has_its_report(run):
    _, summary = run

    cost = summary["cost"]
    assert 0 < cost["total_usd_per_1M_emails"] < 5 and cost["ses_usd_per_1M_emails"] == 100.0
    assert cost["by_part_usd"]
    for campaign in summary["campaigns"]:
        page = Path(summary["reports"][campaign["campaign_id"]]).read_text()
        assert campaign["campaign_id"] in page and page.rstrip().endswith("</html>")  # charts: test_report.py
    assert summary["wall_seconds"] > 0 and summary["virtual_seconds"] > 2 * 86400  # the two days between campaigns


def test_one_seed_gives_one_audience_and_one_set_of_answers():
    assert demo.audience(500, 7) == demo.audience(500, 7) != demo.audience(500, 8)
    first, second = demo.population(7), demo.population(7)
    assert [first.is_recovering(f"r{i}@example.org") for i in range(2000)] == \
        [second.is_recovering(f"r{i}@example.org") for i in range(2000)]
    assert demo.audience(500, 7)["bounce@simulator.amazonses.com"] == "ACTIVE"


def test_too_small_an_audience_is_refused_with_the_reason(capsys):
    assert main(["demo", "--recipients", "10"]) == 2
    assert "sesflow: demo: --recipients 10: at least 100" in capsys.readouterr().err


@pytest.mark.slow
def test_the_demo_command_runs_as_make_demo_runs_it_with_nothing_but_its_output(tmp_path):
    """`sesflow demo` in its own process, as `make demo` runs it: no test runner putting functions/ on the path, and
    no log lines of the functions in its output (the engine imports them with their own environment)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "POWERTOOLS_LOG_LEVEL")}
    done = subprocess.run([sys.executable, "-m", "sesflow.cli", "demo", "--recipients", "500", "--scenario", "winner",
                           "--json", "--report-dir", str(tmp_path)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == ""
    assert json.loads(done.stdout)["duplicates"] == 0
