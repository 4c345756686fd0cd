"""The served engine at `--pace real`: a campaign takes the time SES's rate gives it, so another client can pause it
mid-send, and a start_at waits in wall time while another campaign sends and completes (on the virtual clock the
first would be over before the pause, and the start_at's Wait would move the other campaign's time)."""

import argparse
import json
import os
import time
from datetime import timedelta

import pytest

from sesflow import campaign_cli
from sesflow.engine.feedback_model import FeedbackModel, Rates
from sesflow.engine.server import EngineServer
from sesflow.engine.ses import simulator
from sesflow.engine.stack import LocalStack
from tests.conftest import ROOT, SENDER_DOMAIN
from tests.contacts import add_contacts

PACE = 20  # --pace 20: 20 times faster than real time, so the tests take seconds (--pace real behaves alike)
RATE = 5  # SES MaxSendRate: 400 recipients take 80 s of engine time (4 s of wall time) unless paused

pytestmark = pytest.mark.slow  # a few seconds of wall time each, on purpose


def eventually(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"still not true after {timeout} s"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    state_file = tmp_path_factory.mktemp("engine") / "local.json"
    quiet = FeedbackModel(rates=Rates(hard_bounce=0, soft_bounce=0, open=0, click=0, complaint=0), deferred=True)
    with LocalStack(template_path=ROOT / "template.yaml", ses_identities=(SENDER_DOMAIN,), pace=PACE,
                    ses_account={"max_send_rate": RATE, "max_24h_send": 50_000, "production_access": True,
                                 "feedback": quiet}) as stack, \
            EngineServer(stack, port=0, state_file=state_file) as server:
        ses = stack.client("sesv2")
        for name in ("paced-a", "paced-b"):
            ses.create_email_template(TemplateName=name, TemplateContent={"Subject": name, "Text": "Hello"})
        saved = dict(os.environ)
        try:
            yield server
        finally:
            os.environ.clear()
            os.environ.update(saved)


def cli(served, action, **options):
    """`sesflow campaign ACTION` as another process runs it: through the state file, over HTTP."""
    args = argparse.Namespace(action=action, stack=None, region=None, state_file=str(served.state_file),
                              definition=None, file=None, id=None, now=False, json=False)
    for key, value in options.items():
        setattr(args, key, value)
    assert campaign_cli.campaign(args) == 0


def definition(campaign_id, lists, **changes):
    return {"id": campaign_id, "sender": f"news@{SENDER_DOMAIN}", "audience": {"lists": lists},
            "variants": [{"name": "a", "weight": 1, "template": "paced-a"}], "holdout_percent": 0, **changes}


def start(served, tmp_path, capsys, campaign):
    path = tmp_path / f"{campaign['id']}.json"
    path.write_text(json.dumps(campaign))
    capsys.readouterr()
    cli(served, "start", file=str(path))
    return capsys.readouterr().out.split()[-1]


def sent(campaign_id):
    return [m for m in simulator().outbox if m.tags.get("campaign") == campaign_id]


def test_a_campaign_paused_from_another_client_mid_send_stops_at_its_next_call(served, tmp_path, capsys):
    stack = served.stack
    add_contacts(stack, {f"paced{i:03d}@example.org": "ACTIVE" for i in range(400)}, ["paced"])
    arn = start(served, tmp_path, capsys, definition("paced-pause", ["paced"]))
    eventually(lambda: len(sent("paced-pause")) >= RATE)  # about a second of sending

    cli(served, "pause", id="paced-pause")
    paused_at = stack.clock.now()

    assert stack.wait(arn, timeout=30).status == "SUCCEEDED"
    after = [m for m in sent("paced-pause") if m.sent_at > paused_at]
    calls = {(m.tags["batch"], m.tags["call"]) for m in after}
    batches = [b for b, _ in calls]
    assert len(batches) == len(set(batches)), f"a batch made more than one SES call after the pause: {sorted(calls)}"
    total = len(sent("paced-pause"))
    assert RATE <= total < 400  # stopped mid-send (on the virtual clock all 400 are sent before the pause lands)
    capsys.readouterr()
    cli(served, "status", id="paced-pause")
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "PAUSED" and shown["sent"] == total


def test_a_start_at_waits_in_wall_time_while_another_campaign_sends_and_completes(served, tmp_path, capsys):
    stack = served.stack
    add_contacts(stack, {f"later{i:02d}@example.org": "ACTIVE" for i in range(10)}, ["later"])
    add_contacts(stack, {f"now{i:02d}@example.org": "ACTIVE" for i in range(10)}, ["now"])
    start_at = (stack.clock.now() + timedelta(seconds=4 * PACE)).replace(microsecond=0)  # 4 s of wall time

    later = start(served, tmp_path, capsys, definition("paced-later", ["later"],
                                                       start_at=start_at.isoformat().replace("+00:00", "Z")))
    now = start(served, tmp_path, capsys, definition("paced-now", ["now"]))

    assert stack.wait(now, timeout=30).status == "SUCCEEDED"
    assert stack.wait(later, timeout=30).status == "SUCCEEDED"
    sfn = stack.client("stepfunctions")
    first_done = sfn.describe_execution(executionArn=now)["stopDate"]
    assert len(sent("paced-now")) == len(sent("paced-later")) == 10
    # The other campaign sent and completed while this one waited: its time was not moved to the start_at
    # (on the virtual clock the Wait jumps the clock there for every campaign).
    assert all(m.sent_at < start_at for m in sent("paced-now")) and first_done < start_at
    assert all(m.sent_at >= start_at for m in sent("paced-later"))
