"""`sesflow events parse FILE...`: JSON Lines for every sample body, errors on stderr, exit 1 after the rest."""

import json
from pathlib import Path

import pytest

from sesflow.cli import main

ROOT = Path(__file__).resolve().parents[2]
BODIES = ROOT / "events" / "ingest_feedback" / "bodies"
UNUSABLE = ("malformed_", "refused_")  # broken, or well-formed but not feedback about mail we sent
GOOD = sorted(str(p) for p in BODIES.iterdir() if not p.name.startswith(UNUSABLE))
MALFORMED = sorted(str(p) for p in BODIES.iterdir() if p.name.startswith(UNUSABLE))
FIELDS = ("event_id", "kind", "recipient", "bounce_type", "bounce_subtype", "hard", "complaint_type", "message_id",
          "campaign_id", "variant", "timestamp")


def parse(capsys, *files: str) -> tuple[int, list[dict], str]:
    code = main(["events", "parse", *files])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_every_sample_body_parses_to_json_lines(capsys):
    code, lines, err = parse(capsys, *GOOD)

    assert (code, err) == (0, "")
    assert {line["file"] for line in lines} == set(GOOD)  # every file printed at least one line
    events = [line for line in lines if line["kind"] != "sns_control"]
    assert all(set(FIELDS) <= set(line) for line in events)
    assert {line["kind"] for line in events} == {"send", "delivery", "bounce", "complaint", "reject", "open", "click",
                                                 "rendering_failure", "delivery_delay", "subscription"}
    assert {(line["bounce_type"], line["hard"]) for line in events if line["kind"] == "bounce"} == {
        ("Permanent", True), ("Transient", False)}


def test_control_message_prints_an_sns_control_line(capsys):
    code, lines, _ = parse(capsys, str(BODIES / "sns_subscription_confirmation.json"),
                           str(BODIES / "sns_topic_validation.json"))
    assert code == 0
    assert [(line["kind"], line["control"]) for line in lines] == [
        ("sns_control", "SubscriptionConfirmation"), ("sns_control", "SesTopicValidation")]


def test_malformed_file_is_reported_and_the_others_still_printed(capsys):
    first, last = str(BODIES / "sns_bounce_permanent.json"), str(BODIES / "eventbridge_complaint.json")
    malformed = str(BODIES / "malformed_not_json.txt")

    code, lines, err = parse(capsys, first, malformed, last)

    assert code == 1
    assert err == f"{malformed}: error: body: not JSON (line 1 col 1)\n"
    assert [(line["file"], line["kind"]) for line in lines] == [(first, "bounce"), (last, "complaint")]


@pytest.mark.parametrize("malformed", MALFORMED, ids=lambda p: Path(p).name)
def test_each_malformed_sample_errors_with_its_reason(capsys, malformed):
    code, lines, err = parse(capsys, malformed)
    assert (code, lines) == (1, [])
    assert err.startswith(f"{malformed}: error: ") and len(err.splitlines()) == 1


def test_lambda_sqs_event_is_parsed_record_by_record(capsys):
    batch = str(ROOT / "events" / "ingest_feedback" / "sqs_batch.json")

    code, lines, err = parse(capsys, batch)

    assert code == 1
    assert [(line["kind"], line["recipient"], line["campaign_id"]) for line in lines] == [
        ("delivery", "ada@example.org", "spring-sale")]
    assert err == f"{batch}: error: Records[1]: body: not JSON (line 1 col 1)\n"


def test_lambda_sns_event_is_parsed_record_by_record(capsys):
    """What a function subscribed to the topic directly receives (SNS's Lambda spelling SigningCertUrl)."""
    event = str(ROOT / "events" / "ingest_feedback" / "sns_event.json")

    code, lines, err = parse(capsys, event)

    assert (code, err) == (0, "")
    assert [(line["kind"], line["recipient"], line["campaign_id"], line["envelope"]) for line in lines] == [
        ("bounce", "bounce@simulator.amazonses.com", "spring-sale", "sns"),
        ("bounce", "nomail.hard@example.com", None, "sns")]


def test_refused_sample_says_what_it_is(capsys):
    received = str(BODIES / "refused_received_notification.json")
    code, lines, err = parse(capsys, received)
    assert (code, lines) == (1, [])
    assert "an SES receiving event (an inbound email), not feedback about one sent" in err


def test_ses_records_stored_in_s3_are_parsed_one_by_one_with_or_without_newlines(capsys, tmp_path):
    """SES -> Firehose -> S3 writes the records one after another; an object may have a newline after each or none."""
    records = [json.dumps(json.loads(json.loads((BODIES / name).read_text())["Message"]))
               for name in ("sns_bounce_permanent.json", "sns_open.json", "sns_complaint.json")]
    lines, back_to_back, pretty = tmp_path / "lines.json", tmp_path / "joined.json", tmp_path / "pretty.json"
    lines.write_text("\n".join(records) + "\n")
    back_to_back.write_text("".join(records))
    pretty.write_text("\n".join(json.dumps(json.loads(r), indent=2) for r in records))

    for stored in (lines, back_to_back, pretty):
        code, out, err = parse(capsys, str(stored))
        assert (code, err) == (0, ""), stored.name
        assert [line["kind"] for line in out] == ["bounce", "open", "complaint"], stored.name


def test_broken_line_of_json_lines_is_named(capsys, tmp_path):
    stored = tmp_path / "lines.json"
    stored.write_text((BODIES / "sns_raw_delivery.json").read_text().replace("\n", "") + '\n{"eventType": \n')
    code, lines, err = parse(capsys, str(stored))
    assert (code, lines) == (1, [])
    assert err.startswith(f"{stored}: error: line 2: not JSON")


def test_unreadable_file_is_an_error_not_a_crash(capsys, tmp_path):
    missing = str(tmp_path / "nope.json")
    code, lines, err = parse(capsys, missing, str(BODIES / "sns_send.json"))
    assert code == 2 and len(lines) == 1  # the other file is still parsed
    assert err.startswith(f"sesflow: {missing}: cannot read it")




def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    # `sesflow events parse big.jsonl | head -1`: the reader goes away after one line; no traceback follows.
    import subprocess
    import sys

    line = (BODIES / "eventbridge_delivery.json").read_text(encoding="utf-8").replace("\n", " ")
    big = tmp_path / "many.jsonl"
    big.write_text((line + "\n") * 20_000, encoding="utf-8")
    run = subprocess.run(f"{sys.executable} -m sesflow.cli events parse {big} | head -1", shell=True,
                         capture_output=True, text=True, timeout=120)
    assert json.loads(run.stdout)["kind"] == "delivery"
    assert run.stderr == ""
