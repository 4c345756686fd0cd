"""`sesflow report ID`: a real campaign on the engine, its report opened in headless Chromium (Debian's, which
`make test` installs), and the charts checked in the DOM the browser built, against the counters themselves."""

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sesflow import cli, report
from sesflow.engine.ses import simulator
from sesflow.target import Target
from tests.workflow.feedback import Feedback
from tests.workflow.test_audience_lists import campaign as two_lists_campaign
from tests.workflow.test_audience_lists import seed_two_lists
from tests.workflow.test_campaign import LIST, seed
from tests.workflow.test_campaign_control import definition, every_tenth_b_complains

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
RECIPIENTS = 800
NAME = '<img src=x onerror="document.title=1">Autumn & "sale"'  # user input: must show as text, never run


def chromium() -> Path:
    """Debian's chromium; installed here through the Makefile's own step if missing (as on a fresh machine)."""
    if not CHROMIUM.exists() and shutil.which("make"):
        subprocess.run(["make", "-s", "chromium"], cwd=ROOT, check=False, timeout=900)
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing and `make chromium` could not install it (needs apt-get and root/sudo)")
    return CHROMIUM


def dump_dom(page: Path, tmp_path: Path) -> str:
    """The page's DOM after its scripts ran, as headless Chromium built it from the file alone."""
    result = subprocess.run(
        [str(chromium()), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0 and "<body" in result.stdout, result.stderr[-2000:]
    return result.stdout


class Dom(HTMLParser):
    """Every element's tag and attributes, and the document's text."""

    def __init__(self, text: str):
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag, **attrs):
        return [a for t, a in self.elements if t == tag and all(a.get(k.replace("_", "-")) == v
                                                                 for k, v in attrs.items())]

    def inside(self, chart: str) -> list[tuple[str, dict[str, str]]]:
        """The elements of one chart's <svg data-chart=...>, up to the next svg."""
        start = next(i for i, (t, a) in enumerate(self.elements) if t == "svg" and a.get("data-chart") == chart)
        end = next((i for i, (t, _) in enumerate(self.elements) if i > start and t == "svg"), len(self.elements))
        return self.elements[start + 1:end]


@pytest.fixture
def target(stack, monkeypatch):
    saved = dict(os.environ)
    simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)  # a production account: not about pacing
    seed(stack, {f"user{i:04d}@example.org": "ACTIVE" for i in range(RECIPIENTS)})
    found = Target(name="test-stack", region=stack.region, outputs=stack.outputs)
    monkeypatch.setattr("sesflow.target.resolve_target", lambda *a, **k: found)
    yield found
    os.environ.clear()
    os.environ.update(saved)


def counters(stack, campaign_id):
    item = stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"],
                                             Key={"campaign_id": {"S": campaign_id + "#stats"}})["Item"]
    return {k: int(v["N"]) for k, v in item.items() if "N" in v}


def test_report_of_a_halted_campaign_renders_its_charts_in_chromium_with_the_counters_numbers(
        stack, target, tmp_path, monkeypatch, capsys):
    with Feedback(stack, every_tenth_b_complains):
        result = stack.run("CampaignStateMachine", definition(name=NAME))
    assert (result.status, result.error) == ("FAILED", "CampaignHalted"), result.cause
    stats = counters(stack, "autumn-sale")
    monkeypatch.chdir(tmp_path)

    assert cli.main(["report", "autumn-sale"]) == 0  # the top-level alias, default file name

    out = capsys.readouterr().out
    page = tmp_path / "sesflow-report-autumn-sale.html"
    assert f"report written to {page}" in out
    assert "autumn-sale" in out and ": HALTED" in out and f"list {LIST}" in out and "HALTED on complaint at" in out
    source = page.read_text()
    assert "<img" not in source and "http://" not in source.replace("http://www.w3.org/2000/svg", "")
    dom = Dom(dump_dom(page, tmp_path))

    (body,) = dom.find("body")
    assert body["data-rendered"] == "charts:3"
    assert not dom.find("img"), "the campaign's name was run as HTML"
    assert NAME in "".join(dom.text)
    bars = {(a["data-variant"], a["data-stage"]): int(a["data-value"]) for t, a in dom.inside("funnel")
            if t == "rect" and "data-stage" in a}
    for variant in ("a", "b"):
        assert bars[variant, "sent"] == stats[f"sent#{variant}"] > 0
        assert bars[variant, "complained"] == stats.get(f"complaints#{variant}", 0)
        assert bars[variant, "delivered"] == stats[f"sent#{variant}"] - sum(
            stats.get(f"{name}#{variant}", 0) for name in ("hard_bounces", "soft_bounces", "rejects"))
    assert bars["b", "complained"] > 0 == bars["a", "complained"]

    complaint = dom.inside("complaint")
    levels = sorted(float(a["data-level"]) for t, a in complaint if t == "line" and "data-level" in a)
    assert levels == [0.0005, 0.0008]
    points = [int(a["data-sent"]) for t, a in complaint if t == "circle"]
    assert len(points) >= 2 and points == sorted(points) and points[-1] == stats["sent"]
    (marker,) = [a for t, a in complaint if t == "line" and a.get("class") == "halt-marker"]
    halt = json.loads(stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"], Key={
        "campaign_id": {"S": "autumn-sale"}})["Item"]["halt"]["S"])
    # at the campaign's sent when it halted (the verdict's own sent is variant b's); batches in flight go on
    assert 200 <= halt["sent"] <= int(marker["data-sent"]) == halt["campaign_sent"] <= stats["sent"]
    bounce = dom.inside("bounce")
    assert sorted(float(a["data-level"]) for t, a in bounce if "data-level" in a) == [0.02, 0.04]  # the defaults
    assert [a for t, a in bounce if a.get("class") == "halt-marker"]
    assert not [a for t, a in bounce + complaint if a.get("class") == "no-data"]


def test_report_of_a_completed_campaign_has_no_halt_marker_and_counts_the_list_after(
        stack, target, tmp_path, capsys):
    result = stack.run("CampaignStateMachine", definition(id="winter-sale"))
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    out_file = tmp_path / "winter.html"

    assert cli.main(["campaign", "report", "winter-sale", "--out", str(out_file)]) == 0

    table = capsys.readouterr().out
    assert "winter-sale" in table and ": COMPLETED" in table and "HALTED" not in table
    assert "ACTIVE" in table and f"{RECIPIENTS:,}" in table
    dom = Dom(dump_dom(out_file, tmp_path))
    assert dom.find("body")[0]["data-rendered"] == "charts:3"
    assert not dom.find("line", **{"class": "halt-marker"})
    assert "The breaker did not halt this campaign." in "".join(dom.text)
    sent = counters(stack, "winter-sale")["sent"]
    assert sent == RECIPIENTS
    assert max(int(a["data-sent"]) for a in dom.find("circle")) == sent


def test_report_names_an_unknown_campaign(stack, target, tmp_path, capsys):
    assert cli.main(["report", "nothing-here", "--out", str(tmp_path / "x.html")]) == 1
    assert "no campaign nothing-here on test-stack" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def test_report_lists_recipients_before_and_after_by_state(stack, target, tmp_path, capsys):
    """After a halt: the complainers are SUPPRESSED now; before is the snapshot's count, or says it is missing."""
    with Feedback(stack, every_tenth_b_complains):
        stack.run("CampaignStateMachine", definition())
    complaints = counters(stack, "autumn-sale")["complaints"]

    assert cli.main(["report", "autumn-sale", "--out", str(tmp_path / "r.html")]) == 0

    table = capsys.readouterr().out
    section = table[table.index("recipients by state"):].splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in section[1:] if line.startswith("  ")}
    assert rows["SUPPRESSED"][-1] == f"{complaints:,}" and complaints > 0
    assert rows["ACTIVE"][-1] == f"{RECIPIENTS - complaints:,}"
    assert rows["ACTIVE"][0] in (f"{RECIPIENTS:,}", "-")


def test_a_report_with_nothing_sent_yet_says_so_in_both_rate_charts(tmp_path):
    empty = report.funnel({})
    data = {"campaign_id": "new-one", "name": "New", "status": "RUNNING", "target": "local", "lists": [LIST],
            "exclude_lists": [], "left_out": None,
            "generated_at": "2026-01-01T00:00:00+00:00", "times": {}, "variants": ["a"],
            "funnel": {"a": empty, "all": empty}, "holdout": None, "planned": None, "counters": {},
            "thresholds": {"bounce": {"warn": 0.02, "halt": 0.04}, "complaint": {"warn": 0.0005, "halt": 0.0008}},
            "series": [], "halt": None, "halt_sent": None, "warnings": {}, "decision": None,
            "audience_before": None, "audience_after": {}}
    page = tmp_path / "new.html"
    page.write_text(report.render_html(data))

    dom = Dom(dump_dom(page, tmp_path))

    assert dom.find("body")[0]["data-rendered"] == "charts:3"
    assert len(dom.find("text", **{"class": "no-data"})) == 2 and not dom.find("circle")


def test_report_of_a_campaign_on_two_lists_counts_each_contact_once_and_whom_the_snapshot_left_out(
        stack, tmp_path, monkeypatch, capsys):
    saved = dict(os.environ)
    monkeypatch.setattr("sesflow.target.resolve_target",
                        lambda *a, **k: Target(name="test-stack", region=stack.region, outputs=stack.outputs))
    seed_two_lists(stack)
    result = stack.run("CampaignStateMachine", two_lists_campaign())
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    # after the campaign, a contact on both lists is suppressed
    stack.client("dynamodb").update_item(TableName=stack.outputs["RecipientsTableName"],
                                         Key={"address": {"S": "both00@example.org"}},
                                         UpdateExpression="SET #s = :s", ExpressionAttributeNames={"#s": "status"},
                                         ExpressionAttributeValues={":s": {"S": "SUPPRESSED"}})
    try:
        assert cli.main(["report", "two-lists", "--out", str(tmp_path / "two.html")]) == 0
    finally:
        os.environ.clear()
        os.environ.update(saved)

    table = capsys.readouterr().out
    assert "on test-stack, lists news, offers less staff\n" in table
    section = table[table.index("left out of the audience"):].split("\n\n")[0].splitlines()[2:]
    left = {line.split()[0]: line.split()[1] for line in section}
    assert left == {"excluded": "6", "no_contact": "1", "suppressed": "2", "quarantined": "3", "unsubscribed": "4",
                    "filtered_out": "7", "frequency_capped": "0", "ses_suppressed": "1"}
    section = table[table.index("recipients by state"):].splitlines()[1:]
    states = {line.split()[0]: line.split()[1:] for line in section if line.startswith("  ")}
    # each contact once, however many of the lists it is on; the excluded and the contact-less not counted
    assert states["ACTIVE"] == ["66", "65"] and states["SUPPRESSED"] == ["2", "3"]
    assert states["QUARANTINED"] == ["3", "3"] and states["RECOVERY"] == ["1", "1"]
    page = (tmp_path / "two.html").read_text()
    assert "lists news, offers less staff" in page
    left_table = page.split('<table id="left-out">')[1].split("</table>")[0]
    assert "<tr><td>excluded</td><td>6</td>" in left_table and "<tr><td>filtered_out</td><td>7</td>" in left_table


def test_report_of_a_campaign_halted_resumed_and_halted_again_marks_both_halts_and_lists_its_history(
        stack, target, tmp_path, monkeypatch, capsys):
    from tests.contacts import add_contacts

    # enough left after the first halt (batches in flight go on) for the resumed run to halt again mid-send
    add_contacts(stack, {f"user{i:04d}@example.org": "ACTIVE" for i in range(RECIPIENTS, 4 * RECIPIENTS)}, [LIST])
    with Feedback(stack, every_tenth_b_complains):
        first = stack.run("CampaignStateMachine", definition())
    assert (first.status, first.error) == ("FAILED", "CampaignHalted"), first.cause

    import threading

    import app.handlers.send_batch as send_batch
    from app import campaign_control

    from tests.workflow.test_campaign_faults import feed

    real_call, real_add, mine = send_batch.send_call, campaign_control.add_counts, threading.local()

    def send_call(campaign, variant, probation, addresses, *rest):  # half of the resumed run bounces...
        answers = real_call(campaign, variant, probation, addresses, *rest)
        bouncing = {a for a, why in zip(addresses, answers, strict=True) if why is None and int(a[4:8]) % 2 == 0}
        mine.pending = getattr(mine, "pending", []) + [m for m in simulator().outbox if m.to[0] in bouncing]
        return answers

    def add_counts(campaign_id, counts, settings):  # ...fed back once SendBatch has counted its sends
        real_add(campaign_id, counts, settings)
        pending, mine.pending = getattr(mine, "pending", []), []
        if pending:
            feed(stack, "hard_bounce", pending)

    monkeypatch.setattr(send_batch, "send_call", send_call)
    monkeypatch.setattr(campaign_control, "add_counts", add_counts)
    sent_before = counters(stack, "autumn-sale")["sent"]
    raised = {"complaint": {"warn": 0.2, "halt": 0.5}, "min_sends": 200}
    second = stack.run("CampaignStateMachine", definition(thresholds=raised, resume=True))
    assert (second.status, second.error) == ("FAILED", "CampaignHalted"), second.cause
    assert json.loads(second.cause)["reason"].startswith("bounce rate")
    stats = counters(stack, "autumn-sale")
    assert stats["sent"] > sent_before

    assert cli.main(["campaign", "status", "autumn-sale"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [e["event"] for e in shown["history"]] == ["started", "halted", "resumed", "halted"]
    first_halt, second_halt = (e for e in shown["history"] if e["event"] == "halted")
    assert "complaint" in first_halt["reason"] and "bounce" in second_halt["reason"]
    assert shown["halt"]["metric"] == "bounce"  # the current halt; the history keeps the first

    monkeypatch.chdir(tmp_path)
    assert cli.main(["report", "autumn-sale"]) == 0
    table = capsys.readouterr().out
    history = table[table.index("\nhistory\n") + 1:].split("\n\n")[0]
    assert [line.split()[1] for line in history.splitlines()[1:]] == ["started", "halted", "resumed", "halted"]
    dom = Dom(dump_dom(tmp_path / "sesflow-report-autumn-sale.html", tmp_path))

    assert dom.find("body")[0]["data-rendered"] == "charts:3"
    for chart in ("bounce", "complaint"):
        markers = [a for t, a in dom.inside(chart) if t == "line" and a.get("class") == "halt-marker"]
        assert [m["data-halt"] for m in markers] == ["1", "2"]
        at = [int(m["data-sent"]) for m in markers]
        assert 200 <= at[0] <= sent_before < at[1] <= stats["sent"]  # min_sends; the second after the resume
    text = "".join(dom.text)
    assert "halt 1: halted at" in text and "halt 2: halted at" in text
    rows = [a for t, a in dom.elements if t == "table" and a.get("id") == "history"]
    assert rows and first_halt["reason"] in text and second_halt["reason"] in text
