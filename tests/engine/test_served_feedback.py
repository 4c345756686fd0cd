"""`sesflow local up --serve --feedback none|default|FILE`: what the served engine's SES reports back for addresses
other than the mailbox simulator's. default is the demo's population; a FILE of rates is checked field by field."""

import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from sesflow import cli, demo
from sesflow.engine.feedback_model import FeedbackFileError, model_from_file
from tests.conftest import ROOT

SENT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def outcomes(model, n=4000, variant="a"):
    """What SES reports for n messages, by event type (the Send aside)."""
    seen = Counter()
    for i in range(n):
        records = model.records(f"m{i}", f"user{i}@example.org", SENT, tags={"campaign": "c", "variant": variant})
        seen.update(r["eventType"] for r in records[1:])
    return seen


def test_default_answers_as_the_demos_population_with_bounces_opens_clicks_and_complaints():
    model = cli.served_feedback("default")

    seen = outcomes(model)

    assert model.deferred  # published by the server's pump after the send, not inside the sending Lambda
    assert seen["Bounce"] > 0 and seen["Open"] > 0 and seen["Click"] > 0
    assert outcomes(model, variant="urgent")["Complaint"] > seen["Complaint"]  # the demo's offending subject line
    assert model.rates == demo.POPULATION


def test_none_delivers_everyone_but_the_mailbox_simulator_answers_as_aws_documents():
    model = cli.served_feedback("none")

    assert outcomes(model) == Counter({"Delivery": 4000})
    bounced = model.records("m", "bounce@simulator.amazonses.com", SENT)
    assert [r["eventType"] for r in bounced] == ["Send", "Bounce"]


def test_the_documented_example_file_is_the_default_population(tmp_path):
    """docs/feedback-population.json is what a team copies and edits: it must be what `default` runs."""
    from_file = model_from_file(ROOT / "docs" / "feedback-population.json", deferred=True)
    default = cli.served_feedback("default")

    assert (from_file.seed, from_file.rates, from_file.recovering) == (default.seed, default.rates, default.recovering)
    assert {k: dict(v) for k, v in from_file.variants.items()} == {k: dict(v) for k, v in default.variants.items()}
    assert outcomes(from_file) == outcomes(default)


@pytest.mark.parametrize(("content", "message"), [
    ({"complaint": 1.5}, "complaint: 1.5 is not a probability (0 to 1)"),
    ({"bounce": 0.1}, "bounce: not a field of a feedback model (rates: click, complaint, hard_bounce, open, "
                      "proxy, scanner, soft_bounce; others: seed, variants"),
    ({"variants": {"b": {"click": "lots"}}}, 'variants.b.click: "lots" is not a probability (0 to 1)'),
    ({"variants": {"b": {"clicks": 0.1}}}, "variants.b.clicks: not a rate (rates: click, complaint, hard_bounce"),
    ({"open": 0.1, "variants": {"b": {"click": 0.2}}}, "variants.b: Rates: click 0.2 > open 0.1 (a click implies"),
    ({"classes": [{"match": "*@old.example.org"}]}, 'classes[0]: {"match": GLOB, "rates": {...}}'),
    ({"classes": [{"match": "*@old", "rates": {"hard_bounce": -1}}]},
     "classes[0].rates.hard_bounce: -1 is not a probability"),
    ({"seed": "one"}, 'seed: "one" is not an integer'),
    ({"recover_after": 0}, "recover_after: 0 is not a whole number of at least 1"),
    ({"hard_bounce": 0.7, "soft_bounce": 0.6}, "rates.json: Rates: hard_bounce + soft_bounce = 1.3 > 1"),
    ([0.1], "a feedback model is a JSON object of rates"),
])
def test_a_bad_file_is_refused_naming_the_file_and_the_field(tmp_path, content, message):
    path = tmp_path / "rates.json"
    path.write_text(json.dumps(content))

    with pytest.raises(FeedbackFileError) as raised:
        model_from_file(path)

    assert str(raised.value).startswith(f"{path}: ") and message in str(raised.value)


def test_local_up_refuses_a_bad_feedback_file_before_deploying_and_feedback_without_serve(tmp_path, capsys):
    path = tmp_path / "rates.json"
    path.write_text("{\"open\": 0.2,\n \"click\": }")
    args = cli.build_parser().parse_args(["local", "up", "--serve", "--port", "0", "--state-file",
                                          str(tmp_path / "local.json"), "--feedback", str(path)])

    assert cli.local_up(args) == 2
    assert f"sesflow: {path}: not JSON (Expecting value at line 2, column 11)" in capsys.readouterr().err
    assert not (tmp_path / "local.json").exists()
    args = cli.build_parser().parse_args(["local", "up", "--feedback", "none", "--pace", "real"])
    assert cli.local_up(args) == 2
    assert "sesflow: --feedback, --pace go with --serve" in capsys.readouterr().err
    args = cli.build_parser().parse_args(["local", "up", "--serve", "--state-file", str(tmp_path / "local.json"),
                                          "--pace", "fast"])
    assert cli.local_up(args) == 2
    assert "--pace 'fast': virtual, real, or a number more than 0" in capsys.readouterr().err


def test_local_up_serves_with_the_pace_rate_and_feedback_asked_for(tmp_path, monkeypatch, capsys):
    import os
    import urllib.request

    from sesflow.engine.server import EngineServer
    from sesflow.engine.ses import simulator
    from sesflow.target import STATUS_PATH, resolve_target

    state_file = tmp_path / "local.json"
    seen = {}

    def serving(server):
        saved = dict(os.environ)
        try:
            target = resolve_target(None, state_file)
            seen["quota"] = target.client("sesv2").get_account()["SendQuota"]
            with urllib.request.urlopen(server.endpoint_url + STATUS_PATH, timeout=5) as response:
                seen["status"] = json.loads(response.read())
            seen["feedback"] = simulator().config.feedback
        finally:
            os.environ.clear()
            os.environ.update(saved)

    monkeypatch.setattr(EngineServer, "serve_until_signalled", serving)
    rates = tmp_path / "rates.json"
    rates.write_text(json.dumps({"complaint": 0.02, "open": 0.5}))
    args = cli.build_parser().parse_args(
        ["local", "up", "--template", str(ROOT / "template.yaml"), "--serve", "--port", "0", "--state-file",
         str(state_file), "--pace", "20", "--max-send-rate", "3", "--feedback", str(rates)])

    assert cli.local_up(args) == 0

    assert seen["quota"]["MaxSendRate"] == 3 and seen["status"]["pace"] == 20
    assert (seen["feedback"].rates.complaint, seen["feedback"].rates.open) == (0.02, 0.5)
    out = capsys.readouterr().out
    assert f"every other address answers as the rates of {rates}: " in out and "complaint 2.000%" in out
    assert "Time: 20 times real time (--pace 20)" in out and "SES sends at most 3 a second" in out
    args = cli.build_parser().parse_args(["local", "up", "--serve", "--state-file", str(state_file),
                                          "--max-send-rate", "0"])
    assert cli.local_up(args) == 2
    assert "--max-send-rate 0: SES's rate is more than 0 a second" in capsys.readouterr().err
