"""`sesflow campaign watch ID [--interval S] [--once]`: live progress of a campaign.

One bar per variant (sent of the variant's planned total, from the audience snapshot on the control item),
the overall bar, and the bounce and complaint rates on a scale with the warn (|) and halt (!) levels marked,
with WARN or HALT when the observed rate crosses one. The breaker itself halts on a confidence bound over at
least min_sends, so the words say where the observed rate is, and the campaign's status says what the breaker
did. Below them: the phase (the test cohort, the evaluation window and its time left, the remainder; or a wait for
the send rate or the daily quota), the holdout, the A/B decision once made, the send rate against the campaign's
share of the account's rate (what the rate governor lets it take), the time elapsed and an ETA, and why the
campaign stopped (the breaker's halt, or the SES error that failed it).

A campaign about to start (no control item yet, or its execution still waiting for start_at or freezing its
audience) is waited for: "waiting for campaign X to start", polled until it sends. Redraws in place on a terminal,
prints plain lines otherwise; stops when the campaign is no longer RUNNING (printing its final status) or on
Ctrl-C. render() is pure: it takes what snapshot() reads. Times are the target's: the local engine's virtual
clock (its status endpoint), the real clock on AWS.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from sesflow.campaign_view import read_campaign

LIVE = {"RUNNING", "SCHEDULED"}
WAITING = "WAITING"  # no control item yet: the campaign is about to start
BAR = 30
# The workflow's states that say where a RUNNING execution is (statemachines/campaign.asl.json).
_STARTING = {"ValidateCampaign", "NewOrResume", "ClaimCampaign", "ResumeCampaign", "WaitForStartTime",
             "SnapshotAudience", "RecordAudience"}
_PARENT_STATES = _STARTING | {"SendPhase", "CheckDeferral", "AfterPhaseStopped", "WaitForDeferral",
                              "ResumeAfterDeferral", "CheckCampaign", "AfterPhase", "WaitEvaluationWindow",
                              "PickWinner", "CheckCampaignAfterWindow", "AfterDecision", "NextPhase",
                              "FinalizeCampaign", "PauseAfterFailure", "ParkZone", "NextZone", "AdvanceZone",
                              "TakeParkedZone", "WaitForZone", "WaitRoundWindow", "ReweighVariants",
                              "CheckCampaignAfterRound", "AfterReweighing"}
DEFAULT_LEVELS = {"bounce": {"warn": 0.02, "halt": 0.04}, "complaint": {"warn": 0.0005, "halt": 0.0008}}


def target_now(target: Any) -> datetime:
    """The target's time: the served engine's virtual clock (it moves with its Waits), else the real clock."""
    endpoint = getattr(target, "endpoint_url", None)
    if endpoint:
        from sesflow.target import STATUS_PATH

        try:
            with urllib.request.urlopen(endpoint + STATUS_PATH, timeout=3) as response:
                return _time(json.loads(response.read())["virtual_time"]) or datetime.now(UTC)
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return datetime.now(UTC)


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def snapshot(target: Any, campaign_id: str, now: datetime | None = None) -> dict[str, Any]:
    """What render() draws, read the way `campaign status` reads it (app.campaign_control.read), plus the
    execution's current state (its latest history events) while it runs and the governor's account rate."""
    view = read_campaign(target, campaign_id)
    now = now or target_now(target)
    if view is None:
        return {"campaign_id": campaign_id, "status": WAITING, "now": now, "where": target.name}
    item, stats, definition, audience = view.item, view.stats, view.definition, view.audience
    weights = {v["name"]: float(v.get("weight", 1.0)) for v in definition.get("variants", [])}
    planned = planned_by_variant(audience, view.decision, weights, view.bandit_rounds)
    status = item.get("status", "?")
    state = _current_state(target, item.get("execution_arn")) if status in LIVE else None
    return {
        "campaign_id": campaign_id,
        "status": status,
        "now": now,
        "where": target.name,
        "variants": [{"name": v["name"], "sent": stats.get(f"sent#{v['name']}", 0), "planned": planned.get(v["name"])}
                     for v in definition.get("variants", [])],
        "sent": stats.get("sent", 0),
        "planned": audience.get("recipients"),
        "phases": {p.get("name"): p.get("recipients", 0) for p in audience.get("phases", [])},
        "holdout": audience.get("holdout"),
        "hard_bounces": stats.get("hard_bounces", 0),
        "complaints": stats.get("complaints", 0),
        "thresholds": definition.get("thresholds") or DEFAULT_LEVELS,
        "ab": definition.get("ab") or {"mode": "split"},
        "start_at": definition.get("start_at"),
        "rate_share": definition.get("rate_share", 1.0),
        "account_rate": _account_rate(view.settings),
        "decision": view.decision,
        "bandit_rounds": view.bandit_rounds,
        "started_at": item.get("started_at"),
        "ended_at": item.get("status_changed_at") if status not in LIVE else None,
        "state": state,
        "deferral": view.deferral,
        "halt": view.halt,
        "failure": view.failure,
    }


def planned_by_variant(audience: dict[str, Any], decision: dict[str, Any] | None,
                       weights: dict[str, float], bandit_rounds: list[dict[str, Any]] | None = None) -> dict[str, int]:
    """Each variant's emails to send: its recipients in the phases that name their variant, and the remainder
    once the decision gives its variants (the winner; with several, by weight, near enough). A bandit's later
    round counts by its reweighting's weights, or the latest known ones until it has its own (an estimate). An
    audience recorded before phases carried their variants falls back on the assignment of every recipient."""
    phases = audience.get("phases", [])
    if not phases or any("by_variant" not in p for p in phases if p.get("name") != "remainder"):
        return {v: n for v, n in audience.get("by_variant", {}).items() if v != "holdout"}
    planned: dict[str, int] = {}
    for phase in phases:
        for variant, count in phase.get("by_variant", {}).items():
            planned[variant] = planned.get(variant, 0) + count
    remainder = sum(p.get("recipients", 0) for p in phases if p.get("name") == "remainder")
    chosen = (decision or {}).get("remainder") or []
    among = {v: weights.get(v, 1.0) for v in chosen}
    for variant in chosen:  # several (the split policy): each recipient keeps its weighted draw among them
        planned[variant] = planned.get(variant, 0) + round(remainder * among[variant] / sum(among.values()))
    known = {int(r.get("round", 0)): r.get("weights") or {} for r in bandit_rounds or []}
    latest = weights
    for phase in sorted((p for p in phases if int(p.get("round") or 0) > 1), key=lambda p: p["round"]):
        latest = known.get(int(phase["round"]), latest)
        total = sum(latest.values())
        for variant, weight in latest.items():
            if total > 0 and weight > 0:
                planned[variant] = planned.get(variant, 0) + round(phase.get("recipients", 0) * weight / total)
    return planned


def _current_state(target: Any, execution_arn: str | None) -> dict[str, Any] | None:
    """The state the execution is in ({"name", "entered"}): its latest StateEntered event of the parent's own
    states (a Map's children run apart), from the newest history events; None if it cannot be read."""
    if not execution_arn:
        return None
    try:
        events = target.client("stepfunctions").get_execution_history(
            executionArn=execution_arn, reverseOrder=True, maxResults=50)["events"]
    except Exception:  # noqa: BLE001 -- no permission, an execution gone: the phase is read without it
        return None
    # Newest first by event id: AWS honours reverseOrder and maxResults; moto (the engine) gives every event, oldest
    # first, which this sorts too.
    for event in sorted(events, key=lambda e: int(e.get("id", 0)), reverse=True):
        details = event.get("stateEnteredEventDetails")
        if details and details.get("name") in _PARENT_STATES:
            entered = event.get("timestamp")
            return {"name": details["name"],
                    "entered": entered.astimezone(UTC).isoformat() if isinstance(entered, datetime) else entered}
    return None


def _account_rate(settings: Any) -> float | None:
    """MaxSendRate as the rate governor last read it from SES (its item in CampaignsTable); None before any send."""
    from app.clients import client
    from app.governor import GOVERNOR_KEY

    try:
        found = client("dynamodb").get_item(TableName=settings.campaigns_table,
                                            Key={"campaign_id": {"S": GOVERNOR_KEY}},
                                            ProjectionExpression="max_send_rate").get("Item") or {}
        return float(found["max_send_rate"]["N"]) if "max_send_rate" in found else None
    except Exception:  # noqa: BLE001 -- the rate line says "not known yet"
        return None


# ------------------------------------------------------------------------------------------------ pure from here

def phase(shown: dict[str, Any]) -> dict[str, Any]:
    """Where the campaign is: {"name": starting | test | evaluation | remainder | sending | deferred | window | done,
    "text": the line to show, "until": when the wait ends (datetime) or None}."""
    now, status = shown["now"], shown["status"]
    phases = shown.get("phases") or {}
    state = (shown.get("state") or {}).get("name")
    decision = shown.get("decision")
    two_phases = "test" in phases
    if status == WAITING or (status in LIVE and (not phases or state in _STARTING)):
        start_at = _time(shown.get("start_at"))
        if start_at and start_at > now:
            return {"name": "starting", "until": start_at,
                    "text": f"starts at {shown['start_at']} (in {duration(start_at - now)})"}
        return {"name": "starting", "until": None,
                "text": "freezing its audience" if state in ("SnapshotAudience", "RecordAudience") else "starting"}
    if status not in LIVE:
        return {"name": "done", "until": None, "text": f"{status.lower()}"}
    deferral = shown.get("deferral") or {}
    if deferral.get("until") or state == "WaitForDeferral":
        until = _time(deferral.get("until"))
        why = {"rate": "the send rate", "daily_quota": "SES's daily quota",
               "time": "a fresh invocation", "window": "a zone's send window"}.get(
                   str(deferral.get("reason")), "the send rate or the daily quota")
        left = f" ({duration(until - now)} left, until {deferral['until']})" if until else ""
        return {"name": "deferred", "until": until, "text": f"waiting for {why}{left}"}
    if state == "WaitForZone":
        return {"name": "window", "until": None, "text": "waiting for the next zone's send window"}
    if "round-1" in phases:
        return _bandit_phase(shown, phases, state)
    if not two_phases:
        return {"name": "sending", "until": None, "text": f"sending to all {sum(phases.values()):,}"}
    if decision:
        remainder = decision.get("remainder") or []
        if not remainder:
            return {"name": "remainder", "until": None, "text": "the remainder gets nothing (the decision: stop)"}
        return {"name": "remainder", "until": None,
                "text": f"remainder: {phases.get('remainder', 0):,} recipients get {', '.join(remainder)}"}
    if state in ("WaitEvaluationWindow", "PickWinner", "CheckCampaignAfterWindow"):
        seconds = int((shown.get("ab") or {}).get("evaluation_seconds") or 0)
        entered = _time((shown.get("state") or {}).get("entered"))
        if state != "WaitEvaluationWindow":
            return {"name": "evaluation", "until": None, "text": "evaluation window over: deciding the A/B test"}
        if entered is None:
            return {"name": "evaluation", "until": None, "text": "evaluation window (its time left is not known)"}
        until = entered + timedelta(seconds=seconds)
        return {"name": "evaluation", "until": until,
                "text": f"evaluation window: {duration(max(until - now, timedelta()))} left (until "
                        f"{until.isoformat(timespec='seconds').replace('+00:00', 'Z')}), then the remainder "
                        f"({phases.get('remainder', 0):,})"}
    return {"name": "test", "until": None,
            "text": f"test cohort: {phases.get('test', 0):,} recipients, then the evaluation window, then the "
                    f"remainder ({phases.get('remainder', 0):,})"}


def _bandit_phase(shown: dict[str, Any], phases: dict[str, int], state: str | None) -> dict[str, Any]:
    """A bandit's round, or the window after it: the round being sent is the one after the last reweighting."""
    now, count = shown["now"], len(phases)
    rounds = shown.get("bandit_rounds") or []
    current = len(rounds) + 1
    weights = rounds[-1].get("weights") if rounds else None
    shares = (", ".join(f"{name} {100 * float(w):.3g}%" for name, w in weights.items()) if weights
              else "the campaign's weights")
    if state in ("WaitRoundWindow", "ReweighVariants", "CheckCampaignAfterRound", "AfterReweighing"):
        if state != "WaitRoundWindow":
            return {"name": "evaluation", "until": None,
                    "text": f"round {current} of {count} sent: deciding round {current + 1}'s weights"}
        entered = _time((shown.get("state") or {}).get("entered"))
        seconds = int((shown.get("ab") or {}).get("round_seconds") or 0)
        if entered is None:
            return {"name": "evaluation", "until": None,
                    "text": f"round {current} of {count} sent: its window (the time left is not known)"}
        until = entered + timedelta(seconds=seconds)
        return {"name": "evaluation", "until": until,
                "text": f"round {current} of {count} sent: its window, {duration(max(until - now, timedelta()))} "
                        f"left, then round {current + 1} ({phases.get(f'round-{current + 1}', 0):,})"}
    return {"name": "sending", "until": None,
            "text": f"round {min(current, count)} of {count}: {phases.get(f'round-{min(current, count)}', 0):,} "
                    f"recipients, {shares}"}


def timing(shown: dict[str, Any], observed_rate: float | None = None) -> dict[str, Any]:
    """elapsed (since the execution started), the send rate (observed between two draws, else the average while
    sending), the campaign's share of the account's rate, and the ETA (None when not known or over)."""
    now = shown["now"]
    started = _time(shown.get("started_at"))
    end = _time(shown.get("ended_at")) or now
    elapsed = max(end - started, timedelta()) if started else None
    ab = shown.get("ab") or {}
    decision = shown.get("decision")
    # Seconds not spent sending: waiting for start_at, and the evaluation window once it is over.
    idle = 0.0
    start_at = _time(shown.get("start_at"))
    if started and start_at and start_at > started:
        idle += (min(start_at, end) - started).total_seconds()
    if decision and ab.get("mode") == "test_then_winner":
        idle += float(ab.get("evaluation_seconds") or 0)
    if ab.get("mode") == "bandit":  # the windows of the rounds already reweighted
        idle += float(ab.get("round_seconds") or 0) * len(shown.get("bandit_rounds") or [])
    sending = elapsed.total_seconds() - idle if elapsed else 0.0
    sent = int(shown.get("sent") or 0)
    average = sent / sending if sending > 0 and sent else None
    rate = observed_rate if observed_rate is not None else average
    account = shown.get("account_rate")
    share_rate = account * float(shown.get("rate_share") or 1.0) if account else None
    eta = None
    current = phase(shown)
    if shown["status"] in LIVE and current["name"] != "starting":
        phases = shown.get("phases") or {}
        to_send = sum(phases.values())
        if decision is not None and not decision.get("remainder"):
            to_send -= phases.get("remainder", 0)
        left = max(0, to_send - sent)
        pace = rate or share_rate
        wait = 0.0
        if current["until"] is not None:
            wait = max(0.0, (current["until"] - now).total_seconds())
        elif current["name"] == "test" and "test" in phases:
            wait = float(ab.get("evaluation_seconds") or 0)
        if pace:
            eta = timedelta(seconds=wait + left / pace)
        elif not left:
            eta = timedelta(seconds=wait)
    return {"elapsed": elapsed, "rate": rate, "share_rate": share_rate, "eta": eta}


def duration(span: timedelta) -> str:
    seconds = int(max(span.total_seconds(), 0) + 0.5)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"


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


def _decision_line(decision: dict[str, Any]) -> str:
    winner = decision.get("winner")
    p = decision.get("p_value")
    head = f"{winner} wins on {decision.get('metric')}" if winner else f"no winner on {decision.get('metric')}"
    if p is not None:
        head += f" (p={p:.3g})"
    policy = decision.get("applied_policy")
    tail = f"; the remainder: {policy}" if policy and policy != "winner" else ""
    return f"{head}{tail}: {decision.get('reason', '')}".rstrip(": ")


def render(shown: dict[str, Any], observed_rate: float | None = None) -> list[str]:
    """The lines for one snapshot: pure, so tests can assert what the operator sees."""
    if shown["status"] == WAITING:
        return [f"waiting for campaign {shown['campaign_id']} to start (no campaign of that id on "
                f"{shown.get('where', 'the target')} yet)"]
    variants = shown.get("variants", [])
    width = max([len(v["name"]) for v in variants] + [len("complaints")])
    if "now" in shown and phase(shown)["name"] == "starting":
        return [f"waiting for campaign {shown['campaign_id']} to start: {phase(shown)['text']}"]
    lines = [f"campaign {shown['campaign_id']}: {shown['status']}"]
    for variant in variants:
        lines.append(f"  {variant['name']:<{width}}  {progress_bar(variant['sent'], variant['planned'])}")
    lines.append(f"  {'overall':<{width}}  {progress_bar(shown['sent'], shown['planned'])}")
    levels = shown["thresholds"]
    lines.append(f"  {'bounces':<{width}}  {rate_bar(shown['hard_bounces'], shown['sent'], **levels['bounce'])}")
    lines.append(f"  {'complaints':<{width}}  "
                 f"{rate_bar(shown['complaints'], shown['sent'], **levels['complaint'])}")
    if "now" not in shown:  # a snapshot without the workflow's whereabouts: the bars only
        return lines
    lines.append(f"  {'phase':<{width}}  {phase(shown)['text']}")
    if shown.get("holdout") is not None:
        lines.append(f"  {'holdout':<{width}}  {shown['holdout']:,} (recorded, not sent)")
    if (shown.get("ab") or {}).get("mode") == "test_then_winner":
        decision = shown.get("decision")
        lines.append(f"  {'decision':<{width}}  "
                     f"{_decision_line(decision) if decision else 'not yet: after the evaluation window'}")
    if (shown.get("ab") or {}).get("mode") == "bandit":
        rounds = shown.get("bandit_rounds") or []
        lines.append(f"  {'weights':<{width}}  "
                     f"{rounds[-1].get('reason', '') if rounds else 'round 1 by the campaign weights'}")
    times = timing(shown, observed_rate)
    share = float(shown.get("rate_share") or 1.0)
    if times["share_rate"] is not None:
        share_text = (f"its share: {100 * share:g}% of the account's {shown['account_rate']:g}/s = "
                      f"{times['share_rate']:.4g}/s")
    else:
        share_text = f"its share: {100 * share:g}% of the account's rate (not read from SES yet)"
    rate = f"{times['rate']:.4g}/s" if times["rate"] is not None else "-"
    lines.append(f"  {'send rate':<{width}}  {rate} ({share_text})")
    elapsed = duration(times["elapsed"]) if times["elapsed"] is not None else "-"
    eta = f"   ETA {duration(times['eta'])}" if times["eta"] is not None else ""
    lines.append(f"  {'elapsed':<{width}}  {elapsed}{eta}")
    halt = shown.get("halt")
    if halt:
        lines.append(f"  {'halted':<{width}}  {halt.get('reason') or halt.get('metric') or 'by the breaker'}")
    failure = shown.get("failure")
    if failure:
        where = ", ".join(f"{k} {failure[k]}" for k in ("batch", "position", "recipient") if failure.get(k) is not None)
        lines.append(f"  {'failed':<{width}}  {failure.get('code')}: {failure.get('message')}"
                     f"{f' ({where})' if where else ''}")
    return lines


def watch(target: Any, campaign_id: str, interval: float = 2.0, once: bool = False, out: TextIO = sys.stdout,
          sleep: Any = time.sleep, clock: Callable[[], datetime] | None = None) -> str:
    """Draw until the campaign leaves RUNNING (or once), waiting for one about to start; returns the last status
    seen. clock: the target's time (default: target_now)."""
    tty = out.isatty()
    drawn = 0
    before: tuple[int, datetime] | None = None
    try:
        while True:
            now = clock() if clock else target_now(target)
            shown = snapshot(target, campaign_id, now=now)
            if once and shown["status"] == WAITING:
                raise LookupError(f"no campaign {campaign_id} on {target.name} yet (`sesflow campaign watch "
                                  f"{campaign_id}` without --once waits for it to start)")
            observed = None
            if before is not None and now > before[1] and shown.get("sent", 0) >= before[0]:
                observed = (shown["sent"] - before[0]) / (now - before[1]).total_seconds()
            if shown["status"] in LIVE:
                before = (shown.get("sent", 0), now)
            lines = render(shown, observed)
            if tty and drawn:
                out.write(f"\x1b[{drawn}F\x1b[J")  # back to the first line drawn, clear below
            out.write("\n".join(lines) + "\n")
            out.flush()
            drawn = len(lines)
            live = shown["status"] in LIVE or shown["status"] == WAITING
            if once or not live:
                if not live and not once:
                    out.write(f"campaign {campaign_id} is {shown['status']}: done watching\n")
                return str(shown["status"])
            sleep(interval)
    except KeyboardInterrupt:
        out.write("\nstopped watching (the campaign goes on)\n")
        return "INTERRUPTED"
