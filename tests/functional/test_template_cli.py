"""`sesflow template push|list|diff|preview|lint` against a stack on the engine: the folder, SES's copy, and what
SES renders from it."""

import json
import os
import shutil
from pathlib import Path

import pytest

from sesflow import template_cli
from sesflow.cli import main
from sesflow.engine.ses import simulator
from sesflow.target import Target
from tests.conftest import ROOT
from tests.contacts import add_contact

ADA = "ada@example.org"


@pytest.fixture
def target(stack, monkeypatch):
    saved = dict(os.environ)
    found = Target(name="test-stack", region=stack.region, outputs=stack.outputs)
    monkeypatch.setattr("sesflow.target.resolve_target", lambda *a, **k: found)
    monkeypatch.setattr(template_cli, "PACE_SECONDS", 0.0)  # the engine does not limit these calls
    yield found
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def folder(tmp_path):
    """A copy of the project's templates/."""
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    return tmp_path / "templates"


def sesflow(*args):
    return main(["template", *args])


def stored(stack, name):
    return stack.client("sesv2").get_email_template(TemplateName=name)["TemplateContent"]


def test_push_creates_then_updates_and_is_idempotent(stack, target, folder, capsys):
    assert sesflow("push", "--dir", str(folder)) == 0
    assert capsys.readouterr().out.splitlines() == ["flash-calm: created", "flash-urgent: created"]
    assert stored(stack, "flash-calm")["Subject"] == "{{first_name}}, our flash sale is on until Sunday"

    assert sesflow("push", "--dir", str(folder)) == 0
    assert capsys.readouterr().out.splitlines() == ["flash-calm: unchanged", "flash-urgent: unchanged"]

    (folder / "flash-calm" / "subject.txt").write_text("{{first_name}}, the sale ends tonight\n")
    assert sesflow("push", "flash-calm", "--dir", str(folder)) == 0
    assert capsys.readouterr().out.splitlines() == ["flash-calm: updated"]
    assert stored(stack, "flash-calm")["Subject"] == "{{first_name}}, the sale ends tonight"
    assert sesflow("list") == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["flash-calm", "flash-urgent"]


def test_diff_shows_a_changed_subject_and_what_is_only_on_one_side(stack, target, folder, capsys):
    assert sesflow("push", "--dir", str(folder)) == 0
    assert sesflow("diff", "--dir", str(folder)) == 0
    assert "have the same templates" in capsys.readouterr().out

    (folder / "flash-urgent" / "subject.txt").write_text("Hurry {{first_name}}\n")
    shutil.copytree(folder / "flash-calm", folder / "welcome")
    stack.client("sesv2").create_email_template(TemplateName="legacy", TemplateContent={"Subject": "x", "Text": "y"})

    assert sesflow("diff", "--dir", str(folder)) == 1

    out = capsys.readouterr().out
    assert "flash-urgent: subject differs" in out
    assert "-LAST CHANCE {{first_name}}!!! Everything must go NOW\n+Hurry {{first_name}}" in out
    assert "flash-calm" not in out
    assert "welcome: only here" in out and "sesflow template push welcome" in out
    assert "legacy: only in SES on test-stack" in out


def test_preview_writes_the_html_ses_renders_with_the_contacts_first_name(stack, target, folder, tmp_path, capsys):
    add_contact(stack, ADA, ["newsletter"], attributes={"first_name": "Ada"})
    assert sesflow("push", "--dir", str(folder)) == 0
    capsys.readouterr()

    assert sesflow("preview", "flash-calm", "--contact", ADA, "--out", str(tmp_path / "out")) == 0

    paths = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    html = Path(paths["html"]).read_text(encoding="utf-8")
    assert "<p>Hello Ada,</p>" in html and 'href="' + stack.outputs["UnsubscribeUrl"] in html
    assert Path(paths["subject"]).read_text(encoding="utf-8") == "Ada, our flash sale is on until Sunday\n"
    assert "Hello Ada," in Path(paths["text"]).read_text(encoding="utf-8")


def test_preview_of_a_variable_the_contact_lacks_fails_with_ses_message(stack, target, folder, tmp_path, capsys):
    add_contact(stack, ADA, ["newsletter"], attributes={"last_name": "Lovelace"})
    assert sesflow("push", "--dir", str(folder)) == 0
    capsys.readouterr()

    assert sesflow("preview", "flash-calm", "--contact", ADA, "--out", str(tmp_path / "out")) == 1

    assert "flash-calm: SES cannot render it with this data: Attribute 'first_name' is not present in the " \
           "rendering data." in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    stack.clock.advance(1)  # TestRenderEmailTemplate: once a second
    campaign = tmp_path / "flash.json"
    campaign.write_text((ROOT / "events/campaign/flash_sale.json").read_text())
    assert sesflow("preview", "flash-calm", "--contact", ADA, "--campaign", str(campaign),
                   "--out", str(tmp_path / "out")) == 0  # the campaign's default: "there"
    assert "<p>Hello there,</p>" in (tmp_path / "out" / "flash-calm.html").read_text()


def test_preview_of_a_template_not_pushed_says_how_to_push_it(stack, target, tmp_path, capsys):
    data = tmp_path / "data.json"
    data.write_text('{"first_name": "Ada"}')

    assert sesflow("preview", "flash-calm", "--data", str(data)) == 1

    assert "template flash-calm is not in SES on test-stack: sesflow template push flash-calm" in \
        capsys.readouterr().err


@pytest.mark.parametrize("damage, message, code", [
    (lambda f: shutil.rmtree(f), "templates: no such folder", 2),
    (lambda f: (f / "flash-urgent" / "subject.txt").unlink(),
     "templates/flash-urgent/subject.txt: missing: every template needs a subject", 2),
    (lambda f: (f / "flash-urgent" / "body.txt").write_bytes(b"caf\xe9"),
     "templates/flash-urgent/body.txt: not UTF-8 text (byte 3)", 2),
    (lambda f: (f / "flash-urgent" / "sample.json").write_text('{"first_name": "Ada",}'),
     "templates/flash-urgent/sample.json: not JSON (Expecting property name enclosed in double quotes at line 1, "
     "column 22)", 2),
    (lambda f: (f / "flash-urgent" / "sample.json").write_text('["Ada"]'),
     "templates/flash-urgent/sample.json: sample template data is a JSON object", 2),
    (lambda f: (f / "flash-urgent" / "body.html").write_text("\n"),
     "templates/flash-urgent/body.html: empty: give it content, or delete it to send without it", 2),
    (lambda f: [(f / "flash-urgent" / n).unlink() for n in ("body.html", "body.txt")],
     "templates/flash-urgent: needs body.html, body.txt or both (has neither)", 2),
    (lambda f: (f / "flash-urgent" / "body.html").write_text("<p>{{#if first_name}}Hi</p>"),
     "error: flash-urgent: html: does not parse: Template syntax error", 1),
])
def test_bad_input_names_the_file_and_pushes_nothing(stack, target, folder, capsys, damage, message, code):
    damage(folder)

    assert sesflow("push", "--dir", str(folder)) == code  # 2: a folder it cannot read; 1: a template SES would fail

    assert message in capsys.readouterr().err
    assert stack.client("sesv2").list_email_templates()["TemplatesMetadata"] == []


def test_lint_finds_an_uncovered_variable_and_a_missing_unsubscribe_link(folder, tmp_path, capsys):
    (folder / "flash-calm" / "body.html").write_text("<p>Hello {{first_name}}, {{city}} has a new shop.</p>")
    campaign = tmp_path / "flash.json"
    campaign.write_text((ROOT / "events/campaign/flash_sale.json").read_text())

    assert sesflow("lint", "--dir", str(folder), "--campaign", str(campaign)) == 1

    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[:2] for line in lines] == [["flash-calm", "html"], ["flash-calm", "html"]]
    assert "uses {{city}}, which is not in the campaign's personalization" in lines[0]
    assert "has no unsubscribe link" in lines[1]
    assert sesflow("lint", "flash-urgent", "--dir", str(folder)) == 0


def test_a_campaign_sending_a_pushed_template_renders_it_with_each_recipients_link(stack, target, folder, tmp_path,
                                                                                   monkeypatch):
    from tests.functional.test_campaign_cli import run

    simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)
    add_contact(stack, ADA, ["newsletter"], attributes={"first_name": "Ada"})
    add_contact(stack, "bob@example.org", ["newsletter"])
    assert sesflow("push", "--dir", str(folder)) == 0
    definition = json.loads((ROOT / "events/campaign/flash_sale.json").read_text())
    path = tmp_path / "flash.json"
    path.write_text(json.dumps({**definition, "holdout_percent": 0}))
    monkeypatch.setattr("sesflow.target.resolve_target", lambda *a, **k: target)

    assert run("start", file=str(path)) == 0
    sfn = stack.client("stepfunctions")
    (execution,) = sfn.list_executions(stateMachineArn=stack.outputs["CampaignStateMachineArn"])["executions"]
    assert stack.wait(execution["executionArn"]).status == "SUCCEEDED"

    sent = {m.to[0]: m for m in simulator().outbox}
    assert set(sent) == {ADA, "bob@example.org"}
    assert all(m.rendering_failure is None for m in sent.values())
    assert "Hello Ada," in sent[ADA].html and "Hello there," in sent["bob@example.org"].html
    for message in sent.values():
        link = message.headers["List-Unsubscribe"].strip("<>")
        assert f'<a href="{link}">Unsubscribe</a>' in message.html and link in message.text


def test_ses_template_calls_on_a_stack_are_paced_to_once_a_second(monkeypatch):
    now, slept, calls = [100.0], [], []

    class Clock:
        @staticmethod
        def monotonic():
            return now[0]

        @staticmethod
        def sleep(seconds):
            slept.append(seconds)
            now[0] += seconds

    class Client:
        def get_email_template(self, **kwargs):
            calls.append(("get", now[0]))

        def create_email_template(self, **kwargs):
            calls.append(("create", now[0]))

    monkeypatch.setattr(template_cli, "time", Clock)
    ses = template_cli._Paced(Client(), 1.0)

    ses.get_email_template(TemplateName="a")
    ses.create_email_template(TemplateName="a")
    now[0] += 0.25
    ses.get_email_template(TemplateName="b")

    assert calls == [("get", 100.0), ("create", 100.0), ("get", 101.0)] and slept == [0.75]


def test_list_reads_every_page(stack, target, capsys):
    ses = stack.client("sesv2")
    for i in range(105):  # ListEmailTemplates gives at most 100 a page
        ses.create_email_template(TemplateName=f"t{i:03d}", TemplateContent={"Subject": "s", "Text": "t"})

    assert sesflow("list") == 0

    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == [f"t{i:03d}" for i in range(105)]
