"""`sesflow report ID [--out FILE]` (also `sesflow campaign report ID`): one campaign's report.

collect() reads what the report shows, through the Lambda code's own app.* modules as `campaign status` does:
the control item (status, definition, the A/B decision, the halt, the failure and SES's message, the history of
every start, halt, pause, resume, failure, cancel and completion, the audience snapshot and whom it left out), the
counters item, the breaker's readings kept on each SendsTable batch (`observed`), and the campaign's lists' members
by lifecycle status now (MembershipsTable, then their contacts: app.contacts). render_html() makes one
self-contained page of it (inline CSS, inline script that draws the charts as SVG, no network needed to view it);
render_table() the same essentials for the terminal. Both are pure.

Sent is what SES accepted less the messages it could not render (Rendering Failure events: SES sends nothing for
them; shown as "not rendered"). Delivered is estimated as sent less bounces and rejects: the configuration set
publishes Delivery events only for recipients on probation, so the `delivered` counter undercounts
(app.domain.winner counts it the same way).
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sesflow.campaign_view import read_campaign
from sesflow.files import cannot_write
from sesflow.target import add_target_options

# domain/campaign.py's Thresholds defaults, for a definition that cannot be parsed any more (an older version).
DEFAULT_LEVELS = {"bounce": {"warn": 0.02, "halt": 0.04}, "complaint": {"warn": 0.0005, "halt": 0.0008}}
STAGES = ("sent", "delivered", "opened", "clicked", "machine_opened", "machine_clicked", "bounced", "complained",
          "unsubscribed", "not_rendered")
STAGE_LABELS = {"delivered": "delivered (est.)", "machine_opened": "machine opens", "machine_clicked": "machine clicks",
                "not_rendered": "not rendered"}
ALL = "all"  # the funnel's row for the whole campaign
# Why the snapshot left a member of the campaign's lists out (SnapshotAudienceResult.left_out; app.domain.audience
# LEFT_*), each with what it means, in the order the snapshot decides them: a member is counted once, for the first
# that applies.
LEFT_OUT = (
    ("excluded", "on an exclude list"),
    ("no_contact", "on a list with no contact item (erased)"),
    ("suppressed", "suppressed (hard bounce, complaint, operator, a suppression list)"),
    ("quarantined", "quarantined after soft bounces"),
    ("unsubscribed", "unsubscribed from the campaign's lists, or from everything"),
    ("filtered_out", "did not match the audience filters"),
    ("frequency_capped", "at the frequency cap (its marketing emails of the last days, from every campaign)"),
    ("ses_suppressed", "on the account's SES suppression list"),
)
CAPPED_AT_SEND = ("reached the frequency cap after the snapshot (another campaign sent to them first): not sent, "
                  "recorded FREQUENCY_CAPPED")


def _json(value: Any) -> Any:
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return None


def funnel(stats: dict[str, int], suffix: str = "") -> dict[str, int]:
    """One funnel from the counters (`name` for the campaign, `name#variant` with suffix "#variant")."""
    def n(name: str) -> int:
        return int(stats.get(name + suffix, 0))
    # SES accepted the message, then sent nothing: it failed to render (a Rendering Failure event). Not sent, so
    # not delivered either. (The counter is at least once: a duplicate event can count twice, hence the floor.)
    not_rendered = min(n("rendering_failures"), n("sent"))
    sent = n("sent") - not_rendered
    return {"sent": sent,
            "delivered": max(0, sent - n("hard_bounces") - n("soft_bounces") - n("rejects")),
            # SES's Open and Click events (at least once) that people made; those a scanner or a privacy proxy
            # made apart (app.domain.engagement). Unique openers and clickers are counted only while a
            # test-then-winner test is open (what the decision compares): most campaigns have none.
            "opened": n("opens"), "clicked": n("clicks"),
            "machine_opened": n("machine_opens"), "machine_clicked": n("machine_clicks"),
            "bounced": n("hard_bounces") + n("soft_bounces"), "complained": n("complaints"),
            "unsubscribed": n("unsubscribes"), "not_rendered": not_rendered}


def series(observed: list[dict[str, Any]], stats: dict[str, int], final_at: str) -> list[dict[str, Any]]:
    """The breaker's readings in the order they were read, repeats dropped, then the counters now as the last point.
    Points with nothing sent have no rate: left out. The counters only grow, so a reading read later has at least
    as much of each: ordered by them (then time). Not by time alone: a batch stamps its reading when it finishes,
    and of batches sending at once, one that read the counters later may finish first."""
    points = {(str(o.get("at", "")), int(o.get("sent", 0)), int(o.get("bounces", 0)), int(o.get("complaints", 0)))
              for o in observed}
    ordered = [{"at": at, "sent": sent, "bounces": bounces, "complaints": complaints}
               for at, sent, bounces, complaints in sorted(points, key=lambda p: (p[1], p[3], p[2], p[0])) if sent]
    final = {"at": final_at, "sent": int(stats.get("sent", 0)), "bounces": int(stats.get("hard_bounces", 0)),
             "complaints": int(stats.get("complaints", 0))}
    last = ordered[-1] if ordered else None
    if final["sent"] and (last is None or (last["sent"], last["bounces"], last["complaints"]) !=
                          (final["sent"], final["bounces"], final["complaints"])):
        ordered.append({**final, "final": True})
    return ordered


def halt_point(halt: dict[str, Any] | None, points: list[dict[str, Any]]) -> int | None:
    """Where on the send (cumulative sent) the breaker halted the campaign: the campaign's sent the halt recorded;
    for a halt that did not record it, the sent it judged, unless a reading taken strictly before the halt's time
    already had more. The verdict can be a variant's, and its sent is then
    that variant's alone; the campaign had sent at least what any earlier reading saw."""
    if not halt:
        return None
    if isinstance(halt.get("campaign_sent"), int):  # recorded at the halt: the campaign's own sent then
        return max(halt["campaign_sent"], int(halt.get("sent") or 0)) or None
    at = str(halt.get("at") or "")
    earlier = max((p["sent"] for p in points if at and p["at"] < at and not p.get("final")), default=0)
    return max(int(halt.get("sent") or 0), earlier) or None


def halts(history: list[dict[str, Any]], current: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every halt of the campaign, oldest first: the history's "halted" entries, and the current halt when the
    history does not have it (an item from before sesflow kept one)."""
    found = [entry for entry in history if entry.get("event") == "halted"]
    if current and not any(entry.get("at") == current.get("at") for entry in found):
        found.append(current)
    return found


def audience_after(lists: list[str], exclude_lists: list[str], settings: Any) -> dict[str, int]:
    """The campaign's members by lifecycle status now, counted as the snapshot counted them before: every contact
    on any of `lists` (subscribed or not), once however many of them it is on, less the members of
    `exclude_lists`. One Query per list (MembershipsTable), one BatchGetItem per 100 contacts. A membership whose
    contact is gone (erased) has no status: not counted, as the snapshot does not count it."""
    from app import contacts
    from app.domain import audience

    memberships = {name: list(contacts.members(name, settings)) for name in lists}
    excluded = {m.address for name in exclude_lists for m in contacts.members(name, settings)}
    members, left = audience.candidates(memberships, excluded)
    selection = audience.select(members, contacts.read_contacts(members, settings, with_markers=False), left)
    return dict(sorted(selection.states.items()))


def audience_lists(definition: dict[str, Any], parse: Any, definition_error: type[Exception]) -> tuple[list[str],
                                                                                                       list[str]]:
    """The frozen definition's lists and exclude lists, as the campaign parsed them (list_id is one list); of a
    definition that no longer parses, what it names."""
    try:
        audience = parse(definition).audience
        return list(audience.lists), list(audience.exclude_lists)
    except definition_error:
        pass
    raw = definition.get("audience") if isinstance(definition.get("audience"), dict) else {}
    lists = raw.get("lists") if isinstance(raw.get("lists"), list) else [raw.get("list_id") or
                                                                           definition.get("list_id")]
    exclude = raw.get("exclude_lists") if isinstance(raw.get("exclude_lists"), list) else []
    return [str(n) for n in lists if n], [str(n) for n in exclude if n]


def observed_readings(campaign_id: str, settings: Any) -> list[dict[str, Any]]:
    """The `observed` map of every SendsTable batch of the campaign that has one (older items have none)."""
    from app.clients import client

    query: dict[str, Any] = {"TableName": settings.sends_table, "KeyConditionExpression": "campaign_id = :c",
                             "ProjectionExpression": "observed",
                             "ExpressionAttributeValues": {":c": {"S": campaign_id}}}
    found = []
    while True:
        page = client("dynamodb").query(**query)
        for item in page["Items"]:
            fields = item.get("observed", {}).get("M")
            if fields:
                found.append({k: v.get("S", v.get("N")) for k, v in fields.items()})
        if "LastEvaluatedKey" not in page:
            return found
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def collect(target: Any, campaign_id: str) -> dict[str, Any]:
    """Everything the report shows, as plain data (render_html and render_table take it)."""
    view = read_campaign(target, campaign_id)
    if view is None:
        raise LookupError(f"no campaign {campaign_id} on {target.name}")
    from app.domain.campaign import parse_campaign
    from app.errors import CampaignDefinitionError

    item, stats, definition, audience, settings = view.item, view.stats, view.definition, view.audience, view.settings
    try:
        thresholds = parse_campaign(definition).thresholds.to_dict()  # the defaults filled in, as the breaker had them
    except CampaignDefinitionError:
        thresholds = {**DEFAULT_LEVELS, **(definition.get("thresholds") or {})}
    variants = view.variants
    before = _json(item.get("audience_states"))
    if before is None and isinstance(audience.get("states"), dict):  # the snapshot's own count of the list
        before = audience["states"]
    lists, exclude_lists = audience_lists(definition, parse_campaign, CampaignDefinitionError)
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    points = series(observed_readings(campaign_id, settings), stats,
                    str(item.get("status_changed_at") or generated))
    halt, history = view.halt, view.history
    every_halt = halts(history, halt)
    return {
        "campaign_id": campaign_id,
        "name": definition.get("name") or campaign_id,
        "status": item.get("status", "?"),
        "target": target.name,
        "lists": lists,
        "exclude_lists": exclude_lists,
        "generated_at": generated,
        "times": {k: v for k, v in sorted(item.items()) if k.endswith("_at") and isinstance(v, str)},
        "variants": variants,
        "funnel": {**{v: funnel(stats, f"#{v}") for v in variants}, ALL: funnel(stats)},
        "holdout": audience.get("holdout"),
        "planned": audience.get("recipients"),
        "counters": stats,
        "thresholds": {"bounce": thresholds["bounce"], "complaint": thresholds["complaint"]},
        "series": points,
        "halt": halt,
        "halt_sent": halt_point(halt, points),
        # where on the send each halt came (a campaign halted, resumed and halted again has two)
        "halts": every_halt,
        "halts_sent": [sent for sent in (halt_point(h, points) for h in every_halt) if sent],
        "failure": view.failure,
        "history": history,
        "warnings": {k.removeprefix("warned_"): v for k, v in view.warnings.items()},
        "decision": view.decision,
        "bandit_rounds": view.bandit_rounds,
        "audience_before": before,
        "audience_after": audience_after(lists, exclude_lists, settings) if lists else {},
        # the snapshot's count of the members it left out, by reason (None: no snapshot, or one before they were
        # counted)
        "left_out": audience.get("left_out") if isinstance(audience.get("left_out"), dict) else None,
        # recipients in the snapshot not sent at their turn: at their frequency cap by then (app.frequency)
        "capped_at_send": int(stats.get("capped", 0)),
    }


# ---- terminal ----

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _plain(value: Any) -> str:
    """A value for the terminal: no escape sequences from user input (a campaign name) reach it."""
    return _CONTROL.sub("?", str(value))


def _pct(count: int, sent: int) -> str:
    return f"{100 * count / sent:.3f}%" if sent else "-"


def _grid(header: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [header, *[[_plain(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return [("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                              for i, (c, w) in enumerate(zip(row, widths, strict=True)))).rstrip()
            for row in cells]


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render_table(data: dict[str, Any]) -> str:
    """The report's essentials as text: status, funnel, rates against the levels, halt, decision, recipients."""
    lines = [f"campaign {_plain(data['campaign_id'])} ({_plain(data['name'])}): {_plain(data['status'])}"
             f"  on {_plain(data['target'])}, {_plain(audience_text(data))}"]
    if data.get("planned") is not None:
        lines.append(f"  audience {data['planned']:,} to send, holdout {data.get('holdout') or 0:,}")
    lines += ["", "funnel"]
    header = ["variant", *[STAGE_LABELS.get(s, s) for s in STAGES]]
    lines += _grid(header, [[name, *[f"{row[s]:,}" for s in STAGES]] for name, row in data["funnel"].items()])
    total = data["funnel"][ALL]
    lines += ["", "rates (of sent)"]
    rows = []
    for metric, count in (("bounce", data["counters"].get("hard_bounces", 0)),
                          ("complaint", data["counters"].get("complaints", 0))):
        levels = data["thresholds"][metric]
        rows.append([metric, f"{count:,}", _pct(count, total["sent"]), f"{100 * levels['warn']:g}%",
                     f"{100 * levels['halt']:g}%", "warned" if metric in data.get("warnings", {}) else ""])
    lines += _grid(["metric", "events", "rate", "warn", "halt", ""], rows)
    lines.append(f"  readings over the send: {len(data['series'])}")
    halt = data.get("halt")
    if halt:
        lines.append(f"  HALTED on {_plain(halt.get('metric'))} at {data.get('halt_sent') or 0:,} sent"
                     f" ({_plain(halt.get('at', '?'))}): {_plain(halt.get('reason', ''))}")
    failure = data.get("failure")
    if failure:
        lines += ["", f"FAILED: {_plain(failure_text(failure))}"]
    lines += ["", "history"]
    lines += [f"  {_plain(line)}" for line in history_lines(data.get("history") or [])] or ["  not recorded"]
    lines += ["", "A/B decision"]
    lines += _decision_lines(data.get("decision"))
    if data.get("bandit_rounds"):
        lines += ["", "bandit rounds (the weights each round after the first was sent with)"]
        lines += bandit_lines(data["bandit_rounds"])
    lines += ["", "left out of the audience (at the snapshot)"]
    rows = left_out_rows(data.get("left_out"))
    grid = _grid(["reason", "members"], [row[:2] for row in rows])
    lines += [f"{line}  {_plain(row[2])}".rstrip() for line, row in zip(grid, [["", "", ""], *rows], strict=True)
              ] if rows else ["  not recorded"]
    if data.get("capped_at_send"):
        lines.append(f"  and at the send: {data['capped_at_send']:,} {CAPPED_AT_SEND}")
    lines += ["", "recipients by state (the campaign's lists)"]
    before, after = data.get("audience_before"), data.get("audience_after") or {}
    states = sorted(set(before or {}) | set(after))
    if before is None:
        lines.append("  before: not recorded")
    lines += _grid(["state", "before", "after"], [[s, "-" if before is None else f"{before.get(s, 0):,}",
                                                   f"{after.get(s, 0):,}"] for s in states])
    return "\n".join(lines) + "\n"


def failure_text(failure: dict[str, Any]) -> str:
    """"SES refused the send: NotFoundException: Template x does not exist. (batch all#000000, position 0, ...)"."""
    where = ", ".join(f"{name} {failure[name]}" for name in ("batch", "position", "recipient")
                      if failure.get(name) is not None)
    counted = (f"; {failure['rendering_failures']:,} of {failure.get('sent', 0):,} sends did not render"
               if failure.get("rendering_failures") else "")
    return (f"{failure.get('code', '?')}: {failure.get('message', '')}" + (f" ({where})" if where else "")
            + counted + f" at {failure.get('at', '?')}")


def history_why(entry: dict[str, Any]) -> str:
    """What a history entry says beyond its event: a halt's reason, a failure's code and message, who paused or
    cancelled, the execution that started or resumed."""
    event = entry.get("event")
    if event == "halted":
        return str(entry.get("reason") or "")
    if event == "failed":
        return f"{entry.get('code')}: {entry.get('message')}"
    return str(entry.get("by") or entry.get("execution") or "")


def history_lines(history: list[dict[str, Any]]) -> list[str]:
    """One line per history entry: when, what, and why."""
    return [f"{entry.get('at', '?')}  {str(entry.get('event', '?')):<9}  {history_why(entry)}".rstrip()
            for entry in history]


def audience_text(data: dict[str, Any]) -> str:
    """"lists a, b less c": the campaign's lists and the exclude lists taken from them."""
    lists, exclude = data.get("lists") or [], data.get("exclude_lists") or []
    text = f"list{'s' if len(lists) > 1 else ''} {', '.join(map(str, lists)) or '?'}"
    return text + (f" less {', '.join(map(str, exclude))}" if exclude else "")


def left_out_rows(left_out: dict[str, Any] | None) -> list[list[str]]:
    """One row per reason, every known one (0 when none was left out for it), then any other the snapshot named;
    none when the snapshot did not count them."""
    if left_out is None:
        return []
    known = dict(LEFT_OUT)
    reasons = [*known, *sorted(set(left_out) - set(known))]
    return [[reason, f"{int(left_out.get(reason) or 0):,}", known.get(reason, "")] for reason in reasons]


BANDIT_COLUMNS = ("name", "sent", "delivered", "successes", "complaints", "complaint_bound", "alpha", "beta",
                  "p_best", "weight", "note")


def bandit_lines(rounds: list[dict[str, Any]]) -> list[str]:
    """Each reweighting: its reason, then its numbers per variant."""
    lines: list[str] = []
    for entry in rounds:
        lines.append(f"  {_plain(entry.get('reason') or 'round ' + str(entry.get('round', '?')))}"
                     f" (seed {entry.get('seed', '?')}, {_number(entry.get('draws'))} draws)")
        variants = [v for v in entry.get("variants") or [] if isinstance(v, dict)]
        lines += _grid(list(BANDIT_COLUMNS), [[_number(v.get(k, "")) for k in BANDIT_COLUMNS] for v in variants])
    return lines


def _decision_lines(decision: Any) -> list[str]:
    if not decision:
        return ["  none (not a test-then-winner campaign, or not decided yet)"]
    if not isinstance(decision, dict):
        return [f"  {_plain(json.dumps(decision))}"]
    lines = [f"  winner {_plain(decision.get('winner') or 'none')}, "
             f"policy {_plain(decision.get('applied_policy', '?'))}, metric {_plain(decision.get('metric', '?'))}, "
             f"p-value {_number(decision.get('p_value'))}"
             f" (must be below {_number(decision.get('alpha'))})"]
    if decision.get("reason"):
        lines.append(f"  {_plain(decision['reason'])}")
    numbers = decision.get("numbers")
    if isinstance(numbers, list) and numbers and all(isinstance(n, dict) for n in numbers):
        keys = list(dict.fromkeys(k for n in numbers for k in n))
        lines += _grid(keys, [[_number(n.get(k, "")) for k in keys] for n in numbers])
    shown = {"winner", "applied_policy", "metric", "p_value", "alpha", "reason", "numbers"}
    lines += [f"  {_plain(k)}: {_plain(json.dumps(v))}" for k, v in decision.items() if k not in shown]
    return lines


# ---- HTML ----

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1040px;color:#1d2330}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2ea}
.meta{color:#5b6577}.status{display:inline-block;padding:1px 8px;border-radius:10px;background:#e4e8ef;font-weight:600}
.status.HALTED,.status.FAILED,.status.CANCELLED{background:#fbe0df;color:#9b1c1c}.status.COMPLETED{background:#dff3e4;color:#1b6b34}
table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px;border-bottom:1px solid #eef0f4;text-align:right}
td:first-child,th:first-child{text-align:left}th{font-weight:600;color:#5b6577}
.charts{display:flex;flex-wrap:wrap;gap:16px}svg{background:#fbfcfd;border:1px solid #e4e8ef;border-radius:6px}
svg text{font:11px system-ui,sans-serif;fill:#394150}.halt-note{color:#9b1c1c;font-weight:600}
.none{color:#5b6577;font-style:italic}
"""

# Draws the three charts from the JSON in #report-data, with DOM calls only (data never goes through innerHTML),
# then marks <body data-rendered="charts:N">.
_SCRIPT = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  var COLORS = ["#2f6fdf", "#e08a1e", "#2a9d6f", "#9c4fd6", "#c2455a", "#4aa3b5", "#7a7f2b", "#8a5a44"];
  function el(name, attrs, parent, text) {
    var node = document.createElementNS(NS, name);
    for (var key in attrs) { node.setAttribute(key, attrs[key]); }
    if (text !== undefined) { node.textContent = text; }
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function pct(x) { return (100 * x).toFixed(x < 0.01 ? 3 : 2) + "%"; }
  function chart(id, width, height) {
    var svg = el("svg", {width: width, height: height, viewBox: "0 0 " + width + " " + height,
                         role: "img", "data-chart": id});
    document.getElementById("chart-" + id).appendChild(svg);
    return svg;
  }
  function funnel() {
    var names = Object.keys(data.funnel).filter(function (n) { return n !== "all"; });
    if (!names.length) { names = ["all"]; }
    var stages = data.stages, W = 1000, H = 300, left = 56, top = 28, bottom = 40;
    var svg = chart("funnel", W, H);
    var max = 1;
    names.forEach(function (n) { stages.forEach(function (s) { max = Math.max(max, data.funnel[n][s]); }); });
    var plotH = H - top - bottom, group = (W - left - 10) / stages.length, bar = (group - 16) / names.length;
    el("line", {x1: left, x2: W - 10, y1: H - bottom, y2: H - bottom, stroke: "#9aa3b2"}, svg);
    el("text", {x: left - 6, y: top + 4, "text-anchor": "end"}, svg, max.toLocaleString());
    el("text", {x: left - 6, y: H - bottom, "text-anchor": "end"}, svg, "0");
    stages.forEach(function (stage, i) {
      var x0 = left + i * group + 8;
      el("text", {x: x0 + (group - 16) / 2, y: H - bottom + 16, "text-anchor": "middle"}, svg,
         data.stage_labels[stage] || stage);
      names.forEach(function (name, j) {
        var value = data.funnel[name][stage], h = plotH * value / max, x = x0 + j * bar;
        var rect = el("rect", {x: x, y: H - bottom - h, width: Math.max(1, bar - 2), height: h,
                               fill: COLORS[j % COLORS.length], "class": "bar", "data-variant": name,
                               "data-stage": stage, "data-value": value}, svg);
        el("title", {}, rect, name + " " + (data.stage_labels[stage] || stage) + ": " + value.toLocaleString());
        el("text", {x: x + bar / 2 - 1, y: H - bottom - h - 3, "text-anchor": "middle"}, svg,
           value.toLocaleString());
      });
    });
    names.forEach(function (name, j) {
      el("rect", {x: left + j * 110, y: 6, width: 10, height: 10, fill: COLORS[j % COLORS.length]}, svg);
      el("text", {x: left + j * 110 + 14, y: 15}, svg, "variant " + name);
    });
  }
  function rates(metric, events, title) {
    var W = 490, H = 260, left = 58, right = 12, top = 26, bottom = 38;
    var svg = chart(metric, W, H), levels = data.thresholds[metric];
    el("text", {x: left, y: 16, "font-weight": "600"}, svg, title);
    var points = data.series.map(function (p) { return {sent: p.sent, rate: p[events] / p.sent}; });
    if (!points.length) {
      el("text", {x: W / 2, y: H / 2, "text-anchor": "middle", "class": "no-data"}, svg, "no data yet");
      return;
    }
    var maxX = Math.max.apply(null, points.map(function (p) { return p.sent; }).concat(data.halts_sent, [1]));
    var maxY = Math.max.apply(null, points.map(function (p) { return p.rate; }).concat([levels.halt * 1.5]));
    function x(v) { return left + (W - left - right) * v / maxX; }
    function y(v) { return H - bottom - (H - top - bottom) * v / maxY; }
    el("line", {x1: left, x2: W - right, y1: y(0), y2: y(0), stroke: "#9aa3b2"}, svg);
    el("line", {x1: left, x2: left, y1: top, y2: y(0), stroke: "#9aa3b2"}, svg);
    el("text", {x: left - 4, y: y(0), "text-anchor": "end"}, svg, "0%");
    el("text", {x: left - 4, y: y(maxY) + 8, "text-anchor": "end"}, svg, pct(maxY));
    el("text", {x: W - right, y: H - 8, "text-anchor": "end"}, svg, maxX.toLocaleString() + " sent");
    [["warn", "#e0a01e", "6 4"], ["halt", "#c62828", ""]].forEach(function (level) {
      var at = y(levels[level[0]]);
      el("line", {x1: left, x2: W - right, y1: at, y2: at, stroke: level[1], "stroke-dasharray": level[2],
                  "class": "level " + level[0], "data-level": levels[level[0]]}, svg);
      var warn = level[0] === "warn";  // warn labelled at the left, halt at the right: close levels stay legible
      el("text", {x: warn ? left + 4 : W - right - 2, y: at - 3, "text-anchor": warn ? "start" : "end",
                  fill: level[1]}, svg, level[0] + " " + pct(levels[level[0]]));
    });
    el("polyline", {points: points.map(function (p) { return x(p.sent) + "," + y(p.rate); }).join(" "),
                    fill: "none", stroke: "#2f6fdf", "stroke-width": 2, "class": "rate-line"}, svg);
    points.forEach(function (p) {
      var dot = el("circle", {cx: x(p.sent), cy: y(p.rate), r: 3, fill: "#2f6fdf", "class": "point",
                              "data-sent": p.sent, "data-rate": p.rate}, svg);
      el("title", {}, dot, p.sent.toLocaleString() + " sent: " + pct(p.rate));
    });
    data.halts_sent.forEach(function (sent, i) {  // every halt, oldest first (a resume can be halted again)
      var hx = x(sent), late = hx > W / 2;
      el("line", {x1: hx, x2: hx, y1: top, y2: y(0), stroke: "#c62828", "stroke-width": 2,
                  "stroke-dasharray": "3 3", "class": "halt-marker", "data-sent": sent, "data-halt": i + 1}, svg);
      el("text", {x: late ? hx - 4 : hx + 4, y: top + 10 + 12 * i, fill: "#c62828",
                  "text-anchor": late ? "end" : "start"}, svg,
         (data.halts_sent.length > 1 ? "halt " + (i + 1) + ": " : "") + "halted at " + sent.toLocaleString() +
         " sent");
    });
  }
  var drawn = 0;
  [function () { funnel(); }, function () { rates("bounce", "bounces", "Hard bounces / sent"); },
   function () { rates("complaint", "complaints", "Complaints / sent"); }].forEach(function (draw) {
    draw(); drawn += 1;
  });
  document.body.dataset.rendered = "charts:" + drawn;
})();
"""


def _earlier_halts_html(halts: list[dict[str, Any]]) -> str:
    """For a campaign not halted now: the halts it was resumed from (the history has them), or that it had none."""
    if not halts:
        return "<p class=\"none\">The breaker did not halt this campaign.</p>"
    items = "".join(f"<li>{_e(h.get('at', '?'))}: {_e(h.get('reason', ''))}</li>" for h in halts)
    return (f"<p class=\"halt-note\" id=\"halt\">The breaker halted this campaign {len(halts)} "
            f"time{'s' if len(halts) > 1 else ''}; it was resumed after each:</p><ul>{items}</ul>")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _script_json(value: Any) -> str:
    """JSON safe inside <script>: no "</script>" or "<!--" can close or confuse the element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _html_table(header: list[str], rows: list[list[Any]], table_id: str | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    id_attribute = f' id="{_e(table_id)}"' if table_id else ""
    return f"<table{id_attribute}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(data: dict[str, Any]) -> str:
    """The report as one HTML document with no external resource."""
    total = data["funnel"][ALL]
    funnel_rows = [[name, *[f"{row[s]:,}" for s in STAGES]] for name, row in data["funnel"].items()]
    rate_rows = []
    for metric, counter in (("bounce", "hard_bounces"), ("complaint", "complaints")):
        count, levels = data["counters"].get(counter, 0), data["thresholds"][metric]
        rate_rows.append([metric, f"{count:,}", _pct(count, total["sent"]), f"{100 * levels['warn']:g}%",
                          f"{100 * levels['halt']:g}%", "yes" if metric in data.get("warnings", {}) else ""])
    halt = data.get("halt")
    halt_html = (f"<p class=\"halt-note\" id=\"halt\">Halted on {_e(halt.get('metric'))} at "
                 f"{data.get('halt_sent') or 0:,} sent ({_e(halt.get('at', '?'))}): {_e(halt.get('reason', ''))}</p>"
                 if halt else _earlier_halts_html(data.get("halts") or []))
    failure = data.get("failure")
    failure_html = (f"<p class=\"halt-note\" id=\"failure\">Failed: SES refused the send: {_e(failure_text(failure))}"
                    "</p>" if failure else "")
    history_rows = [[entry.get("at", "?"), entry.get("event", "?"), history_why(entry)]
                    for entry in data.get("history") or []]
    history_html = (_html_table(["at", "event", "why"], history_rows, table_id="history") if history_rows
                    else "<p class=\"none\" id=\"history\">Not recorded.</p>")
    decision = data.get("decision")
    if decision:
        decision_html = "<pre>" + _e("\n".join(line[2:] for line in _decision_lines(decision))) + "</pre>"
    else:
        decision_html = "<p class=\"none\">No A/B decision (not a test-then-winner campaign, or not decided yet).</p>"
    bandit_html = ("<h2>Bandit rounds</h2>\n<pre id=\"bandit-rounds\">" +
                   _e("\n".join(line[2:] for line in bandit_lines(data["bandit_rounds"]))) + "</pre>"
                   if data.get("bandit_rounds") else "")
    before, after = data.get("audience_before"), data.get("audience_after") or {}
    states = sorted(set(before or {}) | set(after))
    state_rows = [[s, "not recorded" if before is None else f"{before.get(s, 0):,}", f"{after.get(s, 0):,}"]
                  for s in states]
    left_rows = left_out_rows(data.get("left_out"))
    left_html = (_html_table(["reason", "members", "what it means"], left_rows, table_id="left-out") if left_rows
                 else "<p class=\"none\" id=\"left-out\">Not recorded (no snapshot yet, or one taken before "
                      "sesflow counted who it left out).</p>")
    if data.get("capped_at_send"):
        left_html += (f"<p id=\"capped-at-send\">And at the send: {data['capped_at_send']:,} "
                      f"{_e(CAPPED_AT_SEND)}.</p>")
    times = "".join(f"<li>{_e(k)}: {_e(v)}</li>" for k, v in data.get("times", {}).items())
    chart_data = {"funnel": data["funnel"], "stages": list(STAGES), "stage_labels": STAGE_LABELS,
                  "thresholds": data["thresholds"], "series": data["series"], "halt_sent": data.get("halt_sent"),
                  "halts_sent": data.get("halts_sent") or ([data["halt_sent"]] if data.get("halt_sent") else [])}
    status = str(data["status"])
    status_class = status if status.isalnum() else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sesflow report: {_e(data['name'])}</title>
<style>{_CSS}</style></head>
<body data-rendered="">
<h1>{_e(data['name'])} <span class="status {_e(status_class)}" id="status">{_e(status)}</span></h1>
<p class="meta">campaign <code>{_e(data['campaign_id'])}</code> on {_e(data['target'])},
<span id="lists">{_e(audience_text(data))}</span>; to send {_e(_number(data.get('planned')))}, holdout
{_e(_number(data.get('holdout')))}; report made {_e(data['generated_at'])}</p>
<ul class="meta">{times}</ul>
<h2>Funnel per variant</h2>
<div id="chart-funnel"></div>
{_html_table(["variant", *[STAGE_LABELS.get(s, s) for s in STAGES]], funnel_rows)}
<p class="meta">sent is what SES accepted less what it could not render (not rendered: a Rendering Failure,
nothing sent); delivered (est.) is sent less bounces and rejects: Delivery events are published only for recipients
on probation. Opened and clicked count SES's Open and Click events that people made (a recipient who
opens twice counts twice); machine opens and clicks are those a mail scanner or a privacy proxy made (a scanner's
user agent, Apple Mail Privacy Protection's proxy, or within seconds of the send), counted apart and never as a
person's; the A/B decision below compares unique human openers or clickers, counted during the test.</p>
<h2>Bounce and complaint rates over the send</h2>
<div class="charts"><div id="chart-bounce"></div><div id="chart-complaint"></div></div>
{_html_table(["metric", "events", "rate", "warn", "halt", "warned"], rate_rows)}
{halt_html}
{failure_html}
<h2>History</h2>
{history_html}
<h2>A/B decision</h2>
{decision_html}
{bandit_html}
<h2>Left out of the audience</h2>
<p class="meta">The members of the campaign's lists the snapshot did not send to, by reason: each counted once, for
the first reason that applies in this order.</p>
{left_html}
<h2>Recipients by state (the campaign's lists)</h2>
{_html_table(["state", "before (at the snapshot)", "after (now)"], state_rows)}
<noscript><p>The charts need JavaScript; the tables above hold the same numbers.</p></noscript>
<script type="application/json" id="report-data">{_script_json(chart_data)}</script>
<script>{_SCRIPT}</script>
</body></html>
"""


def write_report(target: Any, campaign_id: str, out: str | None = None) -> str:
    """collect(), write the page (default sesflow-report-<ID>.html here), and return what to print."""
    data = collect(target, campaign_id)
    safe_id = re.sub(r"[^A-Za-z0-9._-]", "_", campaign_id)
    path = Path(out or f"sesflow-report-{safe_id}.html")
    try:
        path.write_text(render_html(data), encoding="utf-8")
    except OSError as error:
        raise cannot_write(path, error) from None
    return f"report written to {path.resolve()}\n\n{render_table(data)}"


def add_arguments(parser: Any) -> None:
    parser.add_argument("id", help="the campaign id")
    parser.add_argument("--out", default=None, help="the HTML file (default: sesflow-report-ID.html here)")
    add_target_options(parser)
