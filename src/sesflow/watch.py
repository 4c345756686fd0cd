"""`sesflow campaign watch ID [--interval S] [--once]`: live progress of a campaign.

One bar per variant (sent of the variant's planned total, from the audience snapshot on the control item),
the overall bar, and the bounce and complaint rates on a scale with the warn (|) and halt (!) levels marked,
with WARN or HALT when the observed rate crosses one. The breaker itself halts on a confidence bound over at
least min_sends, so the words say where the observed rate is, and the campaign's status says what the breaker
did. Redraws in place on a terminal, prints plain lines otherwise; stops when the campaign is no longer
RUNNING or SCHEDULED (printing its final status) or on Ctrl-C. render() is pure: it takes what snapshot() reads.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

LIVE = {"RUNNING", "SCHEDULED"}
BAR = 30


def snapshot(target: Any, campaign_id: str) -> dict[str, Any]:
    """What render() draws, read the way `campaign status` reads it (app.campaign_control.read)."""
    from sesflow.campaign_cli import _modules

    app = _modules(target)
    item, stats = app["control"].read(campaign_id, app["settings"])
    if not item:
        raise LookupError(f"no campaign {campaign_id} on {target.name}")
    definition = json.loads(item.get("definition", "{}"))
    audience = json.loads(item["audience"]) if "audience" in item else {}
    planned = audience.get("by_variant", {})
    return {
        "campaign_id": campaign_id,
        "status": item.get("status", "?"),
        "variants": [{"name": v["name"], "sent": stats.get(f"sent#{v['name']}", 0), "planned": planned.get(v["name"])}
                     for v in definition.get("variants", [])],
        "sent": stats.get("sent", 0),
        "planned": audience.get("recipients"),
        "hard_bounces": stats.get("hard_bounces", 0),
        "complaints": stats.get("complaints", 0),
        "thresholds": definition.get("thresholds") or {"bounce": {"warn": 0.02, "halt": 0.04},
                                                       "complaint": {"warn": 0.0005, "halt": 0.0008}},
        "why": why_stopped(item),
    }


def why_stopped(item: dict[str, Any]) -> str | None:
    """SES's refusal of a FAILED campaign, or the breaker's reason for a HALTED one (None: neither)."""
    if "failure" in item:
        failure = json.loads(item["failure"])
        return f"failed: {failure.get('code')}: {failure.get('message')}"
    return f"halted: {json.loads(item['halt']).get('reason')}" if "halt" in item else None


def progress_bar(done: int, total: int | None, width: int = BAR) -> str:
    if not total:
        return f"[{'.' * width}] {done:>7,} sent (audience not snapshot yet)"
    filled = min(width, done * width // total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done:>7,} / {total:<7,} {100 * done / total:5.1f}%"


def rate_bar(count: int, sent: int, warn: float, halt: float, width: int = BAR) -> str:
    """The rate on a scale up to 1.5 x halt, warn marked |, halt marked !; WARN/HALT when crossed."""
    rate = count / sent if sent else 0.0
    scale = halt * 1.5
    cells = ["."] * width
    for i in range(min(width, int(rate / scale * width + 0.5) if rate else 0)):
        cells[i] = "#"
    cells[min(width - 1, int(warn / scale * width))] = "|"
    cells[min(width - 1, int(halt / scale * width))] = "!"
    word = "HALT" if sent and rate >= halt else "WARN" if sent and rate >= warn else "ok"
    return (f"[{''.join(cells)}] {100 * rate:6.3f}%  ({count} of {sent:,}; warn {100 * warn:g}%, "
            f"halt {100 * halt:g}%)  {word}")


def render(shown: dict[str, Any]) -> list[str]:
    """The lines for one snapshot: pure, so tests can assert what the operator sees."""
    width = max([len(v["name"]) for v in shown["variants"]] + [len("complaints")])
    lines = [f"campaign {shown['campaign_id']}: {shown['status']}"]
    for variant in shown["variants"]:
        lines.append(f"  {variant['name']:<{width}}  {progress_bar(variant['sent'], variant['planned'])}")
    lines.append(f"  {'overall':<{width}}  {progress_bar(shown['sent'], shown['planned'])}")
    levels = shown["thresholds"]
    lines.append(f"  {'bounces':<{width}}  {rate_bar(shown['hard_bounces'], shown['sent'], **levels['bounce'])}")
    lines.append(f"  {'complaints':<{width}}  "
                 f"{rate_bar(shown['complaints'], shown['sent'], **levels['complaint'])}")
    lines += [f"  {shown['why']}"] if shown.get("why") else []
    return lines


def watch(target: Any, campaign_id: str, interval: float = 2.0, once: bool = False, out: TextIO = sys.stdout,
          sleep: Any = time.sleep) -> str:
    """Draw until the campaign leaves RUNNING/SCHEDULED (or once); returns the last status seen."""
    tty = out.isatty()
    drawn = 0
    try:
        while True:
            shown = snapshot(target, campaign_id)
            lines = render(shown)
            if tty and drawn:
                out.write(f"\x1b[{drawn}F\x1b[J")  # back to the first line drawn, clear below
            out.write("\n".join(lines) + "\n")
            out.flush()
            drawn = len(lines)
            if once or shown["status"] not in LIVE:
                if shown["status"] not in LIVE and not once:
                    out.write(f"campaign {campaign_id} is {shown['status']}: done watching\n")
                return str(shown["status"])
            sleep(interval)
    except KeyboardInterrupt:
        out.write("\nstopped watching (the campaign goes on)\n")
        return "INTERRUPTED"
