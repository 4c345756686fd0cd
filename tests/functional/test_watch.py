"""`sesflow campaign watch`: the renderer as a pure function, and --once against a campaign run on the engine."""

import io
import json

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


def test_watch_names_an_unknown_campaign(stack, target, capsys):  # noqa: F811
    assert run("watch", id="nothing-here", interval=1, once=True) == 1
    assert "no campaign nothing-here on test-stack" in capsys.readouterr().err


def test_watch_redraws_in_place_on_a_terminal_and_stops_when_the_campaign_ends(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    seen = iter([shown(), shown(status="HALTED", hard_bounces=6)])
    monkeypatch.setattr(watch, "snapshot", lambda where, campaign_id: next(seen))
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


def test_render_says_why_a_campaign_stopped():
    why = "failed: NotFoundException: Template spring-x does not exist."
    assert watch.render(shown(status="FAILED", why=why))[-1] == f"  {why}"
    assert watch.render(shown())[-1].split()[0] == "complaints"  # nothing to say while it runs
