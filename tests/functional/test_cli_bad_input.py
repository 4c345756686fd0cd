"""A new user's mistakes, through the CLI's main() as a shell runs it: each is one line on stderr naming the file,
option or value (`sesflow: WHERE: what is wrong`), no traceback, exit 2 for what was given and 1 for a request
refused (sesflow/errors.py), and nothing written or sent before the refusal."""

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sesflow import cli
from sesflow.engine.ses import simulator
from sesflow.engine.stack import LocalStack
from sesflow.target import Target
from tests.conftest import ROOT, SENDER_DOMAIN
from tests.workflow.test_campaign import campaign

STACK = ["--stack", "test-stack"]


@pytest.fixture(scope="module")
def shared_stack() -> Iterator[LocalStack]:
    """One stack for the module: every test here is refused before it writes, and checks that it wrote nothing."""
    saved = dict(os.environ)
    with LocalStack(template_path=ROOT / "template.yaml", ses_identities=(SENDER_DOMAIN,)) as up:
        yield up
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def target(shared_stack, monkeypatch) -> Target:
    found = Target(name="test-stack", region=shared_stack.region, outputs=shared_stack.outputs)
    monkeypatch.setattr("sesflow.target.resolve_target", lambda *a, **k: found)
    return found


def sesflow(*argv: str) -> int:
    return cli.main([*argv])


def executions(stack: LocalStack, output: str) -> list:
    return stack.client("stepfunctions").list_executions(stateMachineArn=stack.outputs[output])["executions"]


def lists(stack: LocalStack) -> list[str]:
    from app import contacts

    return [entry["list"] for entry in contacts.lists(Target(
        name="test-stack", region=stack.region, outputs=stack.outputs).lambda_settings())]


# The same mistake in a file, and the one wording every command gives it.
FILES = {
    "missing": (None, "cannot read it (No such file or directory)"),
    "folder": ("folder", "cannot read it (Is a directory)"),
    "empty": (b"", "empty"),
    "latin-1": ("email\nj\u00f6rg@example.com\n".encode("latin-1"), "not UTF-8 text (byte 7)"),
    "not JSON": (b"{ not json", "not JSON (Expecting property name enclosed in double quotes at line 1, column 3)"),
    "a list": (b"[1, 2]", "got a list"),
}


def bad_file(tmp_path: Path, kind: str) -> Path:
    content = FILES[kind][0]
    path = tmp_path / "input.json"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize("kind", list(FILES))
@pytest.mark.parametrize("command", [
    ["campaign", "start", "{}"],
    ["campaign", "plan", "{}"],
    ["campaign", "test", "{}", "--to", "me@example.org"],
    ["template", "preview", "flash-calm", "--data", "{}"],
    ["template", "lint", "--campaign", "{}"],
])
def test_a_json_file_that_cannot_be_used_exits_2_naming_it_and_starts_nothing(
        shared_stack, target, tmp_path, capsys, command, kind):
    path = bad_file(tmp_path, kind)

    assert sesflow(*[str(path) if part == "{}" else part for part in command], *(
        [] if command[1] == "lint" else STACK)) == 2

    err = capsys.readouterr().err
    assert err.startswith(f"sesflow: {path}: ") and FILES[kind][1] in err and "Traceback" not in err
    assert executions(shared_stack, "CampaignStateMachineArn") == [] and simulator().outbox == []


@pytest.mark.parametrize("kind", ["missing", "folder", "empty", "latin-1"])
@pytest.mark.parametrize("command", [
    ["events", "replay", "{}"],
    ["events", "parse", "{}"],
    ["suppression", "import", "{}"],
    ["contacts", "import", "{}", "--list", "never-made"],
])
def test_a_text_file_that_cannot_be_used_exits_2_naming_it_and_writes_nothing(
        shared_stack, target, tmp_path, capsys, command, kind):
    path = bad_file(tmp_path, kind)

    assert sesflow(*[str(path) if part == "{}" else part for part in command],
                   *([] if command[1] == "parse" else STACK)) == 2

    err = capsys.readouterr().err
    assert err.startswith(f"sesflow: {path}: ") and "Traceback" not in err
    assert (FILES[kind][1] if kind != "latin-1" else "not UTF-8") in err
    assert "never-made" not in lists(shared_stack)
    queue = shared_stack.client("sqs").get_queue_attributes(
        QueueUrl=shared_stack.outputs["FeedbackQueueUrl"], AttributeNames=["ApproximateNumberOfMessages"])
    assert queue["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_rejects_never_overwrite_or_remove_a_file_of_the_users(shared_stack, target, tmp_path, capsys):
    members = tmp_path / "members.csv"
    members.write_text("email,first_name\nada@example.com,Ada\nnot-an-address,Bob\n")
    clean = tmp_path / "clean.csv"
    clean.write_text("email\nada@example.com\n")
    precious = tmp_path / "customers.csv"
    precious.write_text("email\ncy@example.com\n")

    # a file with no bad rows once removed whatever --rejects named, taking it for an earlier rejects file
    assert sesflow("contacts", "import", str(clean), "--list", "never-made", "--rejects", str(precious), *STACK) == 2
    assert f"--rejects {precious}: exists and is not a rejects file" in capsys.readouterr().err
    # the file being imported, truncated by its own rejects
    assert sesflow("contacts", "import", str(members), "--list", "never-made", "--rejects", str(members),
                   *STACK) == 2
    assert "that is the file being imported" in capsys.readouterr().err
    # a place that cannot be written: refused before the list is made
    assert sesflow("contacts", "import", str(members), "--list", "never-made", "--rejects",
                   str(tmp_path / "no-such-folder" / "r.csv"), *STACK) == 2
    err = capsys.readouterr().err
    assert "r.csv: cannot write it (No such file or directory)" in err and "Traceback" not in err

    assert precious.read_text() == "email\ncy@example.com\n"
    assert members.read_text().startswith("email,first_name\nada@example.com")
    assert "never-made" not in lists(shared_stack)


def test_an_earlier_rejects_file_is_still_replaced_then_removed(shared_stack, target, tmp_path, capsys):
    members = tmp_path / "members.csv"
    members.write_text("email\nbea@example.com\nnot-an-address\n")
    assert sesflow("contacts", "import", str(members), "--list", "trial", "--dry-run", *STACK) == 0
    rejects = tmp_path / "members.csv.rejects.csv"
    assert rejects.read_text().startswith("line,reason,email\n3,")
    assert sesflow("contacts", "import", str(members), "--list", "trial", "--dry-run", *STACK) == 0  # replaced
    members.write_text("email\nbea@example.com\n")
    assert sesflow("contacts", "import", str(members), "--list", "trial", "--dry-run", *STACK) == 0
    assert not rejects.exists()  # this import rejected nothing: the earlier one's file is gone
    capsys.readouterr()


@pytest.mark.parametrize("command", [
    ["contacts", "show", "{bad}"],
    ["contacts", "erase", "{bad}", "--reason", "asked"],
    ["contacts", "remove", "{bad}", "--list", "newsletter"],
    ["recipient", "show", "{bad}"],
    ["recipient", "suppress", "{bad}", "--reason", "asked"],
    ["template", "preview", "flash-calm", "--contact", "{bad}"],
    ["campaign", "test", "{definition}", "--to", "{bad}"],
])
def test_a_bad_address_is_refused_in_one_wording_with_exit_2(shared_stack, target, tmp_path, capsys, command):
    definition = tmp_path / "spring.json"
    definition.write_text(json.dumps(campaign()))

    assert sesflow(*[part.replace("{bad}", "ada.example.com").replace("{definition}", str(definition))
                     for part in command], *STACK) == 2

    err = capsys.readouterr().err
    assert "'ada.example.com' is not an email address SES sends to (no @)" in err and "Traceback" not in err
    assert simulator().outbox == []


@pytest.mark.parametrize("action", ["status", "pause", "cancel", "resume", "report", "watch"])
def test_an_unknown_campaign_is_named_the_same_way_by_every_command_with_exit_1(target, capsys, action):
    assert sesflow("campaign", action, "no-such-campaign", *(["--once"] if action == "watch" else []),
                   *STACK) == 1

    assert capsys.readouterr().err.startswith("sesflow: no campaign no-such-campaign on test-stack")


def test_an_export_of_a_list_that_does_not_exist_is_refused_and_writes_no_file(shared_stack, target, tmp_path,
                                                                               capsys):
    members = tmp_path / "members.csv"
    members.write_text("email\nada@example.com\n")
    assert sesflow("contacts", "import", str(members), "--list", "newsletter", *STACK) == 0
    out = tmp_path / "out.csv"

    assert sesflow("contacts", "export", str(out), "--list", "newsleter", *STACK) == 1
    err = capsys.readouterr().err
    assert "sesflow: no list newsleter on test-stack (lists: " in err and "newsletter" in err
    assert sesflow("contacts", "export", str(out), "--list", "news letter", *STACK) == 2
    assert "--list 'news letter': a list name is" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["suppression", "import", *STACK], "give a FILE or --from-ses"),
    (["suppression", "import", str(ROOT / "README.md"), "--reason", " ", *STACK], "--reason: empty"),
    (["contacts", "import", str(ROOT / "README.md"), "--list", "x", "--reason", "why", *STACK],
     "--reason is for --resubscribe"),
    (["contacts", "remove", "ada@example.com", "--list", "bad list!", *STACK], "--list 'bad list!'"),
    (["local", "up", "--parameter-overrides", "Stage"], "--parameter-overrides takes KEY=VALUE pairs, got 'Stage'"),
    (["demo", "--recipients", "5"], "--recipients 5: at least 100"),
    (["template", "preview", "flash calm", "--data", str(ROOT / "templates/flash-calm/sample.json"), *STACK],
     "'flash calm': a template's name is 1 to 64 letters"),
])
def test_a_usage_mistake_exits_2(target, capsys, argv, message):
    assert sesflow(*argv) == 2

    err = capsys.readouterr().err
    assert err.startswith("sesflow: ") and message in err and "Traceback" not in err


@pytest.mark.parametrize("argv, option", [
    (["campaign", "watch", "x", "--interval", "0"], "--interval"),
    (["campaign", "watch", "x", "--interval", "-1"], "--interval"),
    (["local", "up", "--serve", "--port", "99999"], "--port"),
    (["local", "down", "--timeout", "-5"], "--timeout"),
])
def test_an_option_value_out_of_range_is_refused_before_anything_runs(capsys, argv, option):
    with pytest.raises(SystemExit) as refused:
        cli.main(argv)

    assert refused.value.code == 2
    assert f"argument {option}: " in capsys.readouterr().err


def test_a_closed_pipe_ends_every_command_alike(target, monkeypatch, capsys):
    class Closed:
        def write(self, text):
            raise BrokenPipeError

        def flush(self):
            raise BrokenPipeError

        def fileno(self):
            return os.open(os.devnull, os.O_WRONLY)

        def isatty(self):
            return False

    monkeypatch.setattr("sys.stdout", Closed())
    assert sesflow("lists", "--json", *STACK) == 141
    assert sesflow("campaign", "list", "--json", *STACK) == 141
