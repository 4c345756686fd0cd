"""The report's pure parts: the funnel from the counters, the rates series, the halt point, the terminal table and
the HTML page's escaping (tests/functional/test_report.py opens a real one in Chromium)."""

import json
import re

from sesflow import report

LEVELS = {"bounce": {"warn": 0.02, "halt": 0.04}, "complaint": {"warn": 0.0005, "halt": 0.0008}}
STATS = {"sent": 1000, "sent#a": 600, "sent#b": 400, "hard_bounces": 12, "hard_bounces#a": 12, "soft_bounces": 3,
         "soft_bounces#b": 3, "rejects": 1, "rejects#a": 1, "complaints": 2, "complaints#b": 2, "unique_opens": 300,
         "unique_opens#a": 200, "unique_opens#b": 100, "opens": 450, "opens#a": 260, "opens#b": 190,
         "unique_clicks#a": 20, "unique_clicks": 20, "clicks#a": 25, "clicks": 25,
         "unsubscribes#b": 4, "unsubscribes": 4, "delivered": 7, "machine_opens": 70, "machine_opens#a": 40,
         "machine_opens#b": 30, "machine_clicks": 9, "machine_clicks#a": 9}


def data(**overrides):
    points = report.series([{"at": "2026-01-01T10:00:00", "sent": 500, "bounces": 5, "complaints": 0}], STATS,
                           "2026-01-01T10:05:00")
    return {"campaign_id": "spring-sale", "name": "Spring sale", "status": "COMPLETED", "target": "local",
            "lists": ["newsletter"], "exclude_lists": [], "generated_at": "2026-01-01T11:00:00+00:00", "times": {},
            "variants": ["a", "b"],
            "funnel": {"a": report.funnel(STATS, "#a"), "b": report.funnel(STATS, "#b"), "all": report.funnel(STATS)},
            "holdout": 50, "planned": 1000, "counters": STATS, "thresholds": LEVELS, "series": points, "halt": None,
            "halt_sent": None, "warnings": {}, "decision": None, "audience_before": {"ACTIVE": 1040, "SUPPRESSED": 10},
            "audience_after": {"ACTIVE": 1030, "SUPPRESSED": 20},
            "left_out": {"suppressed": 10, "unsubscribed": 3, "ses_suppressed": 1}, **overrides}


def rows(table, title):
    """The rows of one section of the table, by their first cell."""
    section = table[table.index(title):].split("\n\n")[0].splitlines()[1:]
    return {line.split()[0]: line.split()[1:] for line in section if line.startswith("  ")}


def test_funnel_estimates_delivered_as_sent_less_bounces_and_rejects_not_from_delivery_events():
    # opens and clicks are SES's events, which every campaign has (unique ones exist only during an A/B test)
    assert report.funnel(STATS, "#a") == {"sent": 600, "delivered": 587, "opened": 260, "clicked": 25,
                                          "machine_opened": 40, "machine_clicked": 9, "bounced": 12,
                                          "complained": 0, "unsubscribed": 0, "not_rendered": 0}
    assert report.funnel(STATS)["delivered"] == 1000 - 12 - 3 - 1  # not the 7 Delivery events
    assert report.funnel({}, "#c")["delivered"] == 0


def test_the_table_shows_machine_opens_and_clicks_beside_the_peoples():
    table = report.render_table(data())
    header = table[table.index("funnel\n"):].splitlines()[1]
    assert "opened  clicked  machine opens  machine clicks" in header
    page = report.render_html(data())
    assert "<th>machine opens</th><th>machine clicks</th>" in page and "<td>40</td><td>9</td>" in page


def test_funnel_does_not_count_a_message_that_failed_to_render_as_sent_or_delivered():
    stats = {"sent": 100, "sent#a": 100, "rendering_failures": 30, "rendering_failures#a": 30, "hard_bounces": 2}

    assert report.funnel(stats, "#a")["delivered"] == 70
    assert report.funnel(stats)["delivered"] == 68
    assert report.funnel(stats)["sent"] == 70 and report.funnel(stats)["not_rendered"] == 30
    # the counter is at least once: a duplicate Rendering Failure never makes sent negative
    assert report.funnel({"sent": 3, "rendering_failures": 4}) == {**report.funnel({}), "not_rendered": 3}


def test_series_sorts_dedupes_skips_empty_readings_and_ends_with_the_counters():
    observed = [{"at": "2026-01-01T10:02:00", "sent": "300", "bounces": "4", "complaints": "1"},
                {"at": "2026-01-01T10:01:00", "sent": "100", "bounces": "1", "complaints": "0"},
                {"at": "2026-01-01T10:02:00", "sent": "300", "bounces": "4", "complaints": "1"},
                {"at": "2026-01-01T10:00:00", "sent": "0", "bounces": "0", "complaints": "0"}]
    points = report.series(observed, STATS, "2026-01-01T10:09:00")
    assert [(p["sent"], p["bounces"], p["complaints"]) for p in points] == [(100, 1, 0), (300, 4, 1), (1000, 12, 2)]
    assert points[-1]["final"] and points[-1]["at"] == "2026-01-01T10:09:00"
    assert report.series([], {}, "x") == []  # nothing sent: the charts say "no data yet"
    again = report.series([{"at": "t", "sent": 1000, "bounces": 12, "complaints": 2}], STATS, "later")
    assert len(again) == 1 and "final" not in again[0]  # the last reading already is the counters


def test_series_follows_the_counters_when_concurrent_batches_finished_out_of_the_order_they_read_them():
    # the batch that read 200 sent finished (and stamped its reading) after the one that read 250
    observed = [{"at": "2026-01-01T10:03:00", "sent": "200", "bounces": "2", "complaints": "0"},
                {"at": "2026-01-01T10:02:00", "sent": "250", "bounces": "3", "complaints": "1"}]
    points = report.series(observed, STATS, "2026-01-01T10:09:00")
    assert [p["sent"] for p in points] == [200, 250, 1000]


def test_halt_point_is_the_sent_the_breaker_judged_unless_an_earlier_reading_saw_more():
    points = [{"at": "10:01", "sent": 400, "bounces": 0, "complaints": 0},
              {"at": "10:03", "sent": 900, "bounces": 0, "complaints": 5}]
    assert report.halt_point(None, points) is None
    assert report.halt_point({"metric": "complaint", "sent": 700, "events": 3, "at": "10:02"}, points) == 700
    # a variant's verdict: its own 250 sent, when the campaign had already sent 400 before the halt
    assert report.halt_point({"metric": "complaint", "sent": 250, "events": 3, "at": "10:02"}, points) == 400
    # the engine's frozen clock: every reading at the halt's time, none before it
    same = [{**p, "at": "10:02"} for p in points]
    assert report.halt_point({"metric": "bounce", "sent": 700, "events": 30, "at": "10:02"}, same) == 700


def test_render_table_shows_the_funnel_rates_and_recipients_before_and_after():
    table = report.render_table(data())
    assert table.startswith("campaign spring-sale (Spring sale): COMPLETED  on local, list newsletter\n")
    assert "audience 1,000 to send, holdout 50" in table
    funnel = rows(table, "funnel")
    assert funnel["variant"][:3] == ["sent", "delivered", "(est.)"]
    assert funnel["a"] == ["600", "587", "260", "25", "40", "9", "12", "0", "0", "0"]
    assert funnel["b"] == ["400", "397", "190", "0", "30", "0", "3", "2", "4", "0"]
    assert funnel["all"][:2] == ["1,000", "984"]
    rates = rows(table, "rates")
    assert rates["bounce"] == ["12", "1.200%", "2%", "4%"] and rates["complaint"] == ["2", "0.200%", "0.05%", "0.08%"]
    assert "HALTED" not in table and "A/B decision\n  none" in table
    states = rows(table, "recipients by state")
    assert states["ACTIVE"] == ["1,040", "1,030"] and states["SUPPRESSED"] == ["10", "20"]


def test_render_table_shows_the_halt_and_a_missing_before_and_a_warning():
    table = report.render_table(data(
        status="HALTED", halt={"metric": "complaint", "at": "2026-01-01T10:03:00", "sent": 700, "events": 3,
                               "reason": "complaint rate 0.43% (3 of 700 sends)"},
        halt_sent=700, audience_before=None, warnings={"bounce": {"level": "warn"}}))
    assert ": HALTED" in table
    assert "HALTED on complaint at 700 sent (2026-01-01T10:03:00): complaint rate 0.43% (3 of 700 sends)" in table
    assert rows(table, "rates")["bounce"][-1] == "warned"
    assert "  before: not recorded" in table
    assert rows(table, "recipients by state")["ACTIVE"] == ["-", "1,030"]


def test_render_table_shows_the_decision_with_its_numbers_and_any_other_field():
    decision = {"winner": "b", "reason": "b's open rate is higher at 95% confidence", "p_value": 0.00123,
                "alpha": 0.05, "applied_policy": "winner", "metric": "open", "remainder": ["b"],
                "numbers": [{"name": "a", "sent": 600, "delivered": 587, "rate": 0.3407},
                            {"name": "b", "sent": 400, "delivered": 397, "rate": 0.4534}]}
    table = report.render_table(data(decision=decision))
    assert "winner b, policy winner, metric open, p-value 0.00123 (must be below 0.05)" in table
    assert "b's open rate is higher at 95% confidence" in table
    numbers = rows(table, "A/B decision")
    assert numbers["a"] == ["600", "587", "0.3407"] and numbers["b"] == ["400", "397", "0.4534"]
    assert '  remainder: ["b"]' in table


def test_render_table_keeps_terminal_escapes_in_a_name_from_reaching_the_terminal():
    table = report.render_table(data(name="Sale\x1b[2J\x1b]0;pwned\x07"))
    assert "\x1b" not in table and "\x07" not in table and "Sale?[2J?]0;pwned?" in table


def test_render_html_is_self_contained_and_escapes_what_came_from_data():
    name = '</script><script>alert(1)</script><b onmouseover="x">Sale & more'
    variant = "</script><script>alert(2)</script>"  # variant names reach the charts' JSON
    page = report.render_html(data(name=name, lists=["<i>list</i>"], audience_before=None,
                                   decision={"winner": "<svg onload=1>", "shape": "new"},
                                   funnel={variant: report.funnel(STATS, "#a"), "all": report.funnel(STATS)}))
    for raw in ("<script>alert(1)", "<script>alert(2)", "<b onmouseover", "<i>list", "<svg onload"):
        assert raw not in page
    assert ("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;b onmouseover=&quot;x&quot;&gt;Sale &amp; more"
            in page)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing to fetch
    assert "not recorded" in page
    # the charts' data: valid JSON that cannot close its <script> element
    embedded = page.split('<script type="application/json" id="report-data">')[1].split("</script>")[0]
    assert "<" not in embedded
    charts = json.loads(embedded)
    assert charts["funnel"][variant]["delivered"] == 587 and charts["thresholds"] == LEVELS
    assert [p["sent"] for p in charts["series"]] == [500, 1000] and charts["halt_sent"] is None


def test_render_table_names_every_list_of_the_campaign_and_its_exclude_lists():
    table = report.render_table(data(lists=["newsletter", "offers"], exclude_lists=["staff", "press"]))
    assert table.startswith("campaign spring-sale (Spring sale): COMPLETED  on local, lists newsletter, offers "
                            "less staff, press\n")
    assert "on local, list ?\n" in report.render_table(data(lists=[]))


def test_render_table_counts_who_the_snapshot_left_out_by_every_reason():
    table = report.render_table(data(left_out={"suppressed": 10, "quarantined": 2, "unsubscribed": 3, "excluded": 4,
                                               "filtered_out": 1200, "frequency_capped": 6, "ses_suppressed": 1}))
    left = rows(table, "left out of the audience")
    assert {reason: counts[0] for reason, counts in left.items() if reason != "reason"} == {
        "excluded": "4", "no_contact": "0", "suppressed": "10", "quarantined": "2", "unsubscribed": "3",
        "filtered_out": "1,200", "frequency_capped": "6", "ses_suppressed": "1"}
    # a reason this version does not know is shown too, after the known ones
    later = rows(report.render_table(data(left_out={"bounced_elsewhere": 5})), "left out of the audience")
    assert later["bounced_elsewhere"] == ["5"] and later["suppressed"][0] == "0"
    assert "left out of the audience (at the snapshot)\n  not recorded\n" in report.render_table(data(left_out=None))


def test_render_html_has_the_left_out_table_with_each_reason_escaped():
    page = report.render_html(data(left_out={"excluded": 7, "<b>new</b>": 2}))
    table = page.split('<table id="left-out">')[1].split("</table>")[0]
    cells = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td>", table)
    assert ("excluded", "7") in cells and ("filtered_out", "0") in cells and ("&lt;b&gt;new&lt;/b&gt;", "2") in cells
    assert "<b>new" not in page
    missing = report.render_html(data(left_out=None))
    assert 'id="left-out">Not recorded' in missing and '<table id="left-out">' not in missing


def test_report_shows_the_failure_with_ses_message_and_the_history():
    failure = {"at": "2026-01-01T10:00:05", "code": "NotFoundException", "message": "Template spring-x does not exist.",
               "batch": "all#000000", "position": 0, "recipient": "ada@example.org"}
    history = [{"at": "2026-01-01T10:00:00", "event": "started", "execution": "arn:x"},
               {"at": "2026-01-01T10:00:05", "event": "failed", **{k: v for k, v in failure.items() if k != "at"}}]
    shown = data(status="FAILED", failure=failure, history=history)

    table = report.render_table(shown)
    assert ("FAILED: NotFoundException: Template spring-x does not exist. (batch all#000000, position 0, recipient "
            "ada@example.org) at 2026-01-01T10:00:05") in table
    lines = table[table.index("\nhistory\n") + 1:].split("\n\n")[0].splitlines()[1:]
    assert [line.split()[:2] for line in lines] == [["2026-01-01T10:00:00", "started"],
                                                    ["2026-01-01T10:00:05", "failed"]]
    assert lines[1].endswith("NotFoundException: Template spring-x does not exist.")
    page = report.render_html(shown)
    assert 'id="failure"' in page and "Template spring-x does not exist." in page and 'id="history"' in page


def test_a_campaign_resumed_after_a_halt_does_not_read_as_never_halted():
    halt = {"at": "2026-01-01T10:03:00", "event": "halted", "metric": "complaint", "sent": 700,
            "reason": "complaint rate 0.43% (3 of 700 sends)"}
    page = report.render_html(data(halt=None, halts=[halt], halts_sent=[700],
                                   history=[{"at": "2026-01-01T10:00:00", "event": "started"}, halt]))
    assert "did not halt" not in page
    assert "halted this campaign 1 time; it was resumed after each" in page and halt["reason"] in page
    assert "did not halt" in report.render_html(data())
