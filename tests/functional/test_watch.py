"""`sesflow campaign watch`: the renderer as a pure function, and --once against a campaign run on the engine."""

import io
import json
from datetime import UTC, datetime, timedelta

from sesflow import watch
from tests.functional.test_campaign_cli import run, target  # noqa: F401  (the same engine fixture)
from tests.workflow.test_campaign import campaign

LEVELS = {"bounce": {"warn": 0.02, "halt": 0.04}, "complaint": {"warn": 0.0005, "halt": 0.0008}}


def shown(**overrides):
    return {"campaign_id": "spring-sale", "status": "RUNNING", "sent": 150, "planned": 300, "hard_bounces": 0,
            "complaints": 0, "thresholds": LEVELS,
            "variants": [{"name": "a", "sent": 100, "planned": 200}, {"name": "b", "sent": 50, "planned": 100}],
            **overrides}


def test_render_draws_sent_of_planned_per_variant_and_overall():
    lines = watch.render(shown())
    assert lines[0] == "campaign spring-sale: RUNNING"
    assert "[" + "#" * 15 + "." * 15 + "]" in lines[1] and "100 / 200" in lines[1] and "50.0%" in lines[1]
    assert lines[3].split()[0] == "overall" and "150 / 300" in lines[3]
    assert lines[4].endswith("ok") and lines[5].endswith("ok")


def test_render_says_warn_and_halt_when_a_rate_crosses_its_level():
    assert watch.render(shown(hard_bounces=4))[4].endswith("WARN")  # 2.7%: over warn 2%, under halt 4%
    assert watch.render(shown(hard_bounces=6))[4].endswith("HALT")  # 4%
    assert watch.render(shown(complaints=1))[5].endswith("HALT")  # 0.67% of 150
    bar = watch.render(shown())[4]
    assert bar.index("|") < bar.index("!")  # warn marked before halt on the scale


def test_render_before_the_snapshot_says_so():
    lines = watch.render(shown(planned=None, sent=0, variants=[{"name": "a", "sent": 0, "planned": None}]))
    assert "audience not snapshot yet" in lines[1]


def test_watch_once_draws_a_finished_campaign_and_stops_by_itself(stack, target, tmp_path, capsys):  # noqa: F811
    path = tmp_path / "spring.json"
    path.write_text(json.dumps(campaign()))
    run("start", file=str(path))
    assert stack.wait(capsys.readouterr().out.split()[-1]).status == "SUCCEEDED"
    read = watch.snapshot(target, "spring-sale")

    out = io.StringIO()
    assert watch.watch(target, "spring-sale", once=True, out=out) == "COMPLETED"
    text = out.getvalue()
    assert text.startswith("campaign spring-sale: COMPLETED")
    assert sum(v["sent"] for v in read["variants"]) == read["sent"] == read["planned"] > 0
    assert text.count("100.0%") == len(read["variants"]) + 1  # every variant and overall: all sent
    out = io.StringIO()
    assert watch.watch(target, "spring-sale", interval=0, out=out, sleep=None) == "COMPLETED"  # no sleep needed
    assert "campaign spring-sale is COMPLETED: done watching" in out.getvalue()


def test_watch_once_names_an_unknown_campaign(stack, target, capsys):  # noqa: F811
    assert run("watch", id="nothing-here", interval=1, once=True) == 1
    assert ("no campaign nothing-here on test-stack yet (`sesflow campaign watch nothing-here` without --once waits "
            "for it to start)") in capsys.readouterr().err


def test_watch_redraws_in_place_on_a_terminal_and_stops_when_the_campaign_ends(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    seen = iter([shown(), shown(status="HALTED", hard_bounces=6)])
    monkeypatch.setattr(watch, "snapshot", lambda where, campaign_id, now=None: next(seen))
    out = Terminal()
    assert watch.watch(None, "spring-sale", interval=0, out=out, sleep=lambda s: None) == "HALTED"
    first, _, second = out.getvalue().partition("\x1b[6F\x1b[J")  # up over the 6 lines drawn, clear below
    assert first.startswith("campaign spring-sale: RUNNING") and second.startswith("campaign spring-sale: HALTED")
    assert "done watching" in second


def test_start_twice_is_refused_with_the_campaign_status(stack, target, tmp_path, capsys):  # noqa: F811
    path = tmp_path / "spring.json"
    path.write_text(json.dumps(campaign()))
    run("start", file=str(path))
    stack.wait(capsys.readouterr().out.split()[-1])

    assert run("start", file=str(path)) == 1

    assert ("campaign spring-sale is already COMPLETED on test-stack: a campaign id runs once: give the new run a "
            "new id") in capsys.readouterr().err
    assert len(stack.client("stepfunctions").list_executions(
        stateMachineArn=stack.outputs["CampaignStateMachineArn"])["executions"]) == 1


NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
TEST_THEN_WINNER = {"mode": "test_then_winner", "evaluation_seconds": 14_400}


def live(**overrides):
    """A snapshot as snapshot() reads it from the control item and the execution's history."""
    return shown(**{"now": NOW, "where": "test-stack", "phases": {"test": 300, "remainder": 1200}, "holdout": 75,
                    "planned": 1500, "ab": TEST_THEN_WINNER, "rate_share": 0.5, "account_rate": 14.0,
                    "decision": None, "started_at": "2026-05-04T11:55:00Z", "ended_at": None,
                    "state": {"name": "SendPhase"}, "deferral": None, "halt": None, "failure": None,
                    "start_at": None, **overrides})


def line(lines, label):
    (found,) = [text for text in lines if text.split()[0:1] == [label] or text.strip().startswith(label + " ")]
    return found.split(None, len(label.split()))[-1]


def test_render_shows_the_test_cohort_then_the_evaluation_window_with_its_time_left_then_the_remainder():
    assert line(watch.render(live()), "phase") == ("test cohort: 300 recipients, then the evaluation window, then "
                                                   "the remainder (1,200)")
    entered = (NOW - timedelta(hours=1)).isoformat()
    window = watch.render(live(state={"name": "WaitEvaluationWindow", "entered": entered}, sent=300))
    assert line(window, "phase") == ("evaluation window: 3 h 00 min left (until 2026-05-04T15:00:00Z), then the "
                                     "remainder (1,200)")
    assert line(window, "decision") == "not yet: after the evaluation window"
    decided = {"winner": "b", "metric": "click", "p_value": 0.0123, "applied_policy": "winner", "remainder": ["b"],
               "reason": "b wins: b click rate 3.1% vs a 1.2%"}
    remainder = watch.render(live(decision=decided, sent=500))
    assert line(remainder, "phase") == "remainder: 1,200 recipients get b"
    assert line(remainder, "decision") == "b wins on click (p=0.0123): b wins: b click rate 3.1% vs a 1.2%"
    assert line(remainder, "holdout") == "75 (recorded, not sent)"


BANDIT = {"mode": "bandit", "metric": "click", "rounds": 3, "round_seconds": 3600, "min_share": 0.05}
ROUND_2 = {"round": 2, "weights": {"a": 0.2, "b": 0.8}, "reason": "round 2: a 20% (...), b 80% (...)"}


def test_render_shows_a_bandit_s_round_its_window_and_the_weights_it_sends_with():
    phases = {"round-1": 500, "round-2": 500, "round-3": 500}
    first = watch.render(live(ab=BANDIT, phases=phases, bandit_rounds=[]))
    assert line(first, "phase") == "round 1 of 3: 500 recipients, the campaign's weights"
    assert line(first, "weights") == "round 1 by the campaign weights"
    entered = (NOW - timedelta(minutes=15)).isoformat()
    window = watch.render(live(ab=BANDIT, phases=phases, bandit_rounds=[],
                               state={"name": "WaitRoundWindow", "entered": entered}))
    assert line(window, "phase") == "round 1 of 3 sent: its window, 45 min 00 s left, then round 2 (500)"
    second = watch.render(live(ab=BANDIT, phases=phases, bandit_rounds=[ROUND_2]))
    assert line(second, "phase") == "round 2 of 3: 500 recipients, a 20%, b 80%"
    assert line(second, "weights") == ROUND_2["reason"]


def test_a_bandit_s_planned_emails_follow_each_round_s_weights():
    audience = {"phases": [{"name": "round-1", "recipients": 100, "by_variant": {"a": 50, "b": 50}, "round": 1},
                           {"name": "round-2", "recipients": 100, "by_variant": {}, "round": 2},
                           {"name": "round-3", "recipients": 100, "by_variant": {}, "round": 3}]}
    assert watch.planned_by_variant(audience, None, {"a": 1.0, "b": 1.0}, []) == {"a": 150, "b": 150}
    assert watch.planned_by_variant(audience, None, {"a": 1.0, "b": 1.0}, [ROUND_2]) == {"a": 90, "b": 210}


def test_render_shows_the_send_rate_against_the_share_elapsed_time_and_the_eta():
    lines = watch.render(live(sent=150), observed_rate=5.0)
    assert line(lines, "send rate") == "5/s (its share: 50% of the account's 14/s = 7/s)"
    # 150 of the test's 300 left at 5/s (30 s), the 4-hour window, then 1,200 at 5/s (240 s)
    assert line(lines, "elapsed") == "5 min 00 s   ETA 4 h 04 min"
    first = watch.render(live(sent=150, account_rate=None))  # no rate seen between draws: the average so far
    assert line(first, "send rate") == "0.5/s (its share: 50% of the account's rate (not read from SES yet))"


def test_render_says_why_the_campaign_stopped():
    halt = {"reason": "complaint rate 1.10% (lower bound 0.92%) is above the halt level 0.08%", "metric": "complaint"}
    failure = {"at": "2026-05-04T11:58:00Z", "code": "MessageRejected", "message": "Email address is not verified.",
               "batch": "test#3", "position": 50, "recipient": None}
    lines = watch.render(live(status="HALTED", halt=halt, ended_at="2026-05-04T11:59:00Z"))
    assert line(lines, "halted") == halt["reason"] and line(lines, "phase") == "halted"
    assert line(lines, "elapsed") == "4 min 00 s"  # no ETA once it stopped
    lines = watch.render(live(status="PAUSED", failure=failure))
    assert line(lines, "failed") == "MessageRejected: Email address is not verified. (batch test#3, position 50)"


def test_render_waits_for_a_campaign_about_to_start():
    assert watch.render({"campaign_id": "spring-sale", "status": watch.WAITING, "now": NOW, "where": "test-stack"}) \
        == ["waiting for campaign spring-sale to start (no campaign of that id on test-stack yet)"]
    ahead = live(phases={}, planned=None, start_at="2026-05-04T14:30:00Z", state={"name": "WaitForStartTime"})
    assert watch.render(ahead) == ["waiting for campaign spring-sale to start: starts at 2026-05-04T14:30:00Z "
                                   "(in 2 h 30 min)"]
    deferred = live(deferral={"reason": "daily_quota", "until": "2026-05-04T12:15:00Z"})
    assert line(watch.render(deferred), "phase") == ("waiting for SES's daily quota (15 min 00 s left, until "
                                                     "2026-05-04T12:15:00Z)")


def test_watch_waits_for_a_campaign_not_started_yet_then_follows_it_to_the_end(stack, target, tmp_path,  # noqa: F811
                                                                              capsys):
    path = tmp_path / "spring.json"
    path.write_text(json.dumps(campaign()))
    started = []

    def start_it(seconds):  # the operator starts the campaign while watch waits for it
        if not started:
            run("start", file=str(path))
            started.append(capsys.readouterr().out.split()[-1])
            assert stack.wait(started[0]).status == "SUCCEEDED"

    out = io.StringIO()
    assert watch.watch(target, "spring-sale", interval=0, out=out, sleep=start_it) == "COMPLETED"

    first, *rest = out.getvalue().splitlines()
    assert first == "waiting for campaign spring-sale to start (no campaign of that id on test-stack yet)"
    assert rest[0] == "campaign spring-sale: COMPLETED"
    assert rest[-1] == "campaign spring-sale is COMPLETED: done watching"
    assert any(text.split()[:2] == ["holdout", f"{watch.snapshot(target, 'spring-sale')['holdout']:,}"]
               for text in (r.strip() for r in rest))


def test_watch_once_shows_a_finished_test_then_winner_campaigns_decision_holdout_rate_and_time(
        stack, target, tmp_path, capsys):  # noqa: F811
    path = tmp_path / "ab.json"
    path.write_text(json.dumps(campaign(variants=campaign()["variants"][:2],
                                        ab={"mode": "test_then_winner", "test_percent": 30,
                                            "evaluation_seconds": 3600, "min_sample_per_variant": 1000},
                                        rate_share=0.5)))
    run("start", file=str(path))
    arn = capsys.readouterr().out.split()[-1]
    assert stack.wait(arn).status == "SUCCEEDED"

    out = io.StringIO()
    assert watch.watch(target, "spring-sale", once=True, out=out, clock=stack.clock.now) == "COMPLETED"

    lines = out.getvalue().splitlines()
    read = watch.snapshot(target, "spring-sale", now=stack.clock.now())
    assert line(lines, "phase") == "completed"
    assert line(lines, "holdout") == f"{read['holdout']:,} (recorded, not sent)"
    assert line(lines, "decision").startswith("no winner on click; the remainder: send_control: ")
    assert line(lines, "send rate").endswith(f"(its share: 50% of the account's {read['account_rate']:g}/s = "
                                             f"{read['account_rate'] * 0.5:.4g}/s)")
    assert line(lines, "elapsed").startswith("1 h 00 min")  # the evaluation window on the engine's clock
    # Each variant's bar counts its test emails and, for the control the remainder went to, the remainder: all sent.
    assert [(v["sent"], v["planned"]) for v in read["variants"]] == [(v["sent"], v["sent"]) for v in read["variants"]]
    assert out.getvalue().count("100.0%") == len(read["variants"]) + 1
    state = watch._current_state(target, arn)  # the execution's history, newest first, as on AWS
    assert state["name"] == "FinalizeCampaign"


def test_watch_shows_the_failure_and_the_halt_the_control_item_holds(stack, target, tmp_path, capsys):  # noqa: F811
    path = tmp_path / "spring.json"
    path.write_text(json.dumps(campaign()))
    run("start", file=str(path))
    assert stack.wait(capsys.readouterr().out.split()[-1]).status == "SUCCEEDED"
    failure = {"at": "2026-05-04T11:58:00Z", "code": "MessageRejected", "message": "Sending paused for this account.",
               "batch": "all#0", "position": None, "recipient": "user001@example.org"}
    halt = {"reason": "bounce rate 5% is above the halt level 4%", "metric": "bounce"}
    stack.client("dynamodb").update_item(
        TableName=stack.outputs["CampaignsTableName"], Key={"campaign_id": {"S": "spring-sale"}},
        UpdateExpression="SET failure = :f, halt = :h",
        ExpressionAttributeValues={":f": {"S": json.dumps(failure)}, ":h": {"S": json.dumps(halt)}})

    out = io.StringIO()
    watch.watch(target, "spring-sale", once=True, out=out, clock=stack.clock.now)

    lines = out.getvalue().splitlines()
    assert line(lines, "failed") == ("MessageRejected: Sending paused for this account. (batch all#0, recipient "
                                     "user001@example.org)")
    assert line(lines, "halted") == halt["reason"]

