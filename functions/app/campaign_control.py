"""A campaign's control item and its counters (app.campaign_breaker trips it; operators pause, resume, cancel).

CampaignsTable holds, per campaign:
  <id>         the control item: status (RUNNING, PAUSED, HALTED, FAILED, CANCELLED, COMPLETED), definition
               (JSON), execution_arn, audience (the frozen manifests), decision (test-then-winner), bandit_rounds
               (a bandit's reweightings, JSON strings: element i holds round i + 2's weights), halt and warn
               details, failure (the SES error that stopped the send: code, message, batch, position, recipient),
               history (every start, halt, pause, resume, failure, cancel and completion, oldest first: a list of
               JSON strings, appended, never rewritten; a resume removes `halt` and `failure`, history keeps them),
               deferred_until and deferral (while the campaign's execution waits for the send rate or the daily quota)
  <id>#stats   counters: sent (exact, by SendBatch after each SES call), hard_bounces, complaints, rejects
               (exact, by ingestion), delivered, opens, clicks (people's), machine_opens, machine_clicks (a
               scanner's or a privacy proxy's: app.domain.engagement), ... (at least once), unique_opens,
               unique_clicks (each recipient's first human open and click, during a test), and name#variant of each

Every status change is a conditional update from the statuses it may leave, so a pause, a cancel and the
breaker racing each other end in one well-defined status; the writer that wins publishes the alert.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from app import clock
from app.clients import client
from app.settings import Settings

RUNNING, PAUSED, HALTED, FAILED, CANCELLED, COMPLETED = (
    "RUNNING", "PAUSED", "HALTED", "FAILED", "CANCELLED", "COMPLETED")
# Which statuses each change may leave. FAILED (SES refused the send in a way no retry fixes) is resumable, like
# HALTED, once the operator has fixed the cause (statemachines/campaign.asl.json, ResumeCampaign).
LEAVES = {
    PAUSED: (RUNNING,),
    HALTED: (RUNNING,),
    FAILED: (RUNNING,),
    CANCELLED: (RUNNING, PAUSED, HALTED, FAILED),
    COMPLETED: (RUNNING,),
}
# The history entry's event for each change (the ASL writes "started" and "resumed" itself).
EVENTS = {PAUSED: "paused", HALTED: "halted", FAILED: "failed", CANCELLED: "cancelled", COMPLETED: "completed"}


STATS_SUFFIX = "#stats"
BANDIT_ROUNDS = "bandit_rounds"  # the control item's list of a bandit's reweightings


def stats_key(campaign_id: str) -> dict[str, Any]:
    return {"campaign_id": {"S": campaign_id + STATS_SUFFIX}}


def read(campaign_id: str, settings: Settings) -> tuple[dict[str, Any], dict[str, int]]:
    """The control item (plain values) and the counters, in one request."""
    keys = [{"campaign_id": {"S": campaign_id}}, stats_key(campaign_id)]
    request = {settings.campaigns_table: {"Keys": keys, "ConsistentRead": True}}
    found: dict[str, dict[str, Any]] = {}
    while request:
        response = client("dynamodb").batch_get_item(RequestItems=request)
        for item in response["Responses"].get(settings.campaigns_table, []):
            found[item["campaign_id"]["S"]] = {k: next(iter(v.values())) for k, v in item.items()}
        request = response.get("UnprocessedKeys") or {}
    stats = {k: int(v) for k, v in found.get(campaign_id + STATS_SUFFIX, {}).items()
             if k not in ("campaign_id", "unknown_calls")}
    return found.get(campaign_id, {}), stats


def list_campaigns(settings: Settings) -> list[dict[str, Any]]:
    """Every campaign: id, status, when it started and how many emails it sent, newest first (a Scan of the control
    and counter items; the governor's and other internal items, whose keys hold a "#", are left out)."""
    ddb, found, sent = client("dynamodb"), {}, {}
    scan: dict[str, Any] = {"TableName": settings.campaigns_table,
                            "ProjectionExpression": "campaign_id, #s, started_at, sent",
                            "ExpressionAttributeNames": {"#s": "status"}}
    while True:
        page = ddb.scan(**scan)
        for item in page["Items"]:
            key = item["campaign_id"]["S"]
            if key.endswith(STATS_SUFFIX):
                sent[key.removesuffix(STATS_SUFFIX)] = int(item.get("sent", {}).get("N", "0"))
            elif "#" not in key:
                found[key] = {"campaign_id": key, "status": item.get("status", {}).get("S"),
                              "started_at": item.get("started_at", {}).get("S")}
        if "LastEvaluatedKey" not in page:
            break
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    shown = [{**entry, "sent": sent.get(key, 0)} for key, entry in found.items()]
    return sorted(shown, key=lambda c: (c["started_at"] or "", c["campaign_id"]), reverse=True)


def stored_definition(campaign_id: str, settings: Settings) -> dict[str, Any] | None:
    """The definition the campaign runs with (what ClaimCampaign or the last ResumeCampaign stored); None when
    there is no such campaign."""
    item = client("dynamodb").get_item(TableName=settings.campaigns_table, Key={"campaign_id": {"S": campaign_id}},
                                       ProjectionExpression="#d", ExpressionAttributeNames={"#d": "definition"},
                                       ConsistentRead=True).get("Item")
    if not item or "definition" not in item:
        return None
    return json.loads(item["definition"]["S"])


def audience_lists(campaign_id: str, settings: Settings) -> tuple[str, ...] | None:
    """The lists a campaign was sent to (its frozen definition's audience.lists); None when it is not recorded."""
    item = client("dynamodb").get_item(TableName=settings.campaigns_table, Key={"campaign_id": {"S": campaign_id}},
                                       ProjectionExpression="#d", ExpressionAttributeNames={"#d": "definition"}
                                       ).get("Item")
    if not item or "definition" not in item:
        return None
    given = json.loads(item["definition"]["S"]).get("audience") or {}
    lists = given.get("lists") or ([given["list_id"]] if given.get("list_id") else [])
    return tuple(str(name) for name in lists) or None


def history_entry(event: str, at: str, details: dict[str, Any] | None = None) -> str:
    """One `history` element: {"at", "event", ...details} as JSON (a halt's verdict and a failure are flattened in:
    reason, metric, rate, sent, ... or code, message, batch, position, recipient)."""
    flat: dict[str, Any] = {}
    for value in (details or {}).values():
        flat.update(value if isinstance(value, dict) else {})
    flat.pop("at", None)
    return json.dumps({"at": at, "event": event, **flat}, separators=(",", ":"))


def history(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The control item's history (as read() gives it: a list of {"S": json}), oldest first; entries that are not
    JSON objects are left out."""
    out = []
    for element in item.get("history") or []:
        try:
            entry = json.loads(element.get("S", "") if isinstance(element, dict) else element)
        except (TypeError, ValueError):
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out


def reweightings(item: dict[str, Any]) -> list[dict[str, Any]]:
    """A bandit's recorded reweightings (as read() gives the control item), element i for round i + 2."""
    return [json.loads(element["S"] if isinstance(element, dict) else element)
            for element in item.get(BANDIT_ROUNDS) or []]


def record_reweighting(campaign_id: str, index: int, reweighting: dict[str, Any], settings: Settings
                       ) -> dict[str, Any]:
    """Append reweighting `index` (0 for round 2) to the campaign's bandit_rounds, once: if it is there already (a
    retry, a resume, a race), the recorded one is returned and nothing is written. LookupError: no such campaign;
    ValueError: the reweighting before it is not recorded."""
    values: dict[str, Any] = {":entry": {"L": [{"S": json.dumps(reweighting, separators=(",", ":"))}]},
                              ":empty": {"L": []}}
    if index == 0:
        condition = "attribute_exists(campaign_id) AND attribute_not_exists(#r)"
    else:
        condition = "attribute_exists(campaign_id) AND attribute_exists(#r) AND size(#r) = :n"
        values[":n"] = {"N": str(index)}
    try:
        client("dynamodb").update_item(
            TableName=settings.campaigns_table, Key={"campaign_id": {"S": campaign_id}},
            UpdateExpression="SET #r = list_append(if_not_exists(#r, :empty), :entry)",
            ConditionExpression=condition, ExpressionAttributeNames={"#r": BANDIT_ROUNDS},
            ExpressionAttributeValues=values)
        return reweighting
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
    item = read(campaign_id, settings)[0]
    if not item:
        raise LookupError(f"campaign {campaign_id}: no control item, so no round of it can be recorded")
    recorded = reweightings(item)
    if len(recorded) <= index:
        raise ValueError(f"campaign {campaign_id}: bandit_rounds holds {len(recorded)} reweightings, so reweighting "
                         f"{index} cannot follow")
    return recorded[index]


def change_status(campaign_id: str, to: str, settings: Settings, details: dict[str, Any] | None = None,
                  note: dict[str, Any] | None = None) -> bool:
    """Move the campaign to `to` if it is in a status `to` may leave, recording `details` on the item (JSON each)
    and appending the change to its history (with `note`'s fields, e.g. who asked); False if it is not (or does
    not exist)."""
    allowed = LEAVES[to]
    at = clock.now().isoformat()
    entry = history_entry(EVENTS[to], at, {**(details or {}), "note": note or {}})
    values: dict[str, Any] = {":to": {"S": to}, ":at": {"S": at}, ":entry": {"L": [{"S": entry}]},
                              ":empty": {"L": []}}
    names = {"#s": "status", "#h": "history"}
    sets = ["#s = :to", "status_changed_at = :at", "#h = list_append(if_not_exists(#h, :empty), :entry)"]
    for i, status in enumerate(allowed):
        values[f":from{i}"] = {"S": status}
    for key, value in (details or {}).items():
        names[f"#d_{key}"] = key
        values[f":d_{key}"] = {"S": json.dumps(value) if not isinstance(value, str) else value}
        sets.append(f"#d_{key} = :d_{key}")
    try:
        client("dynamodb").update_item(
            TableName=settings.campaigns_table, Key={"campaign_id": {"S": campaign_id}},
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=f"#s IN ({', '.join(f':from{i}' for i in range(len(allowed)))})",
            ExpressionAttributeNames=names, ExpressionAttributeValues=values)
        return True
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise


def defer(campaign_id: str, until: str, reason: str, message: str, settings: Settings) -> None:
    """Record that the campaign's execution must wait until `until` (RFC 3339) before it runs the phase again. The
    latest deadline wins, and only a RUNNING campaign waits; the execution clears it when the wait is over."""
    try:
        client("dynamodb").update_item(
            TableName=settings.campaigns_table, Key={"campaign_id": {"S": campaign_id}},
            UpdateExpression="SET deferred_until = :until, deferral = :deferral",
            ConditionExpression="#s = :running AND (attribute_not_exists(deferred_until) OR deferred_until < :until)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":until": {"S": until}, ":running": {"S": RUNNING},
                ":deferral": {"S": json.dumps({"reason": reason, "message": message, "until": until})}})
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


def counts_update(campaign_id: str, counts: dict[str, int], settings: Settings) -> dict[str, Any]:
    """The UpdateItem (plain or in a transaction) that ADDs `counts` to the campaign's counters."""
    names = {f"#c{i}": name for i, name in enumerate(sorted(counts))}
    return {
        "TableName": settings.campaigns_table,
        "Key": stats_key(campaign_id),
        "UpdateExpression": "ADD " + ", ".join(f"{alias} :v{alias[2:]}" for alias in names),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {f":v{alias[2:]}": {"N": str(counts[n])} for alias, n in names.items()},
    }


def add_counts(campaign_id: str, counts: dict[str, int], settings: Settings) -> None:
    """ADD to the campaign's counters: one write, whatever the number of counters."""
    counts = {name: n for name, n in counts.items() if n}
    if counts:
        client("dynamodb").update_item(**counts_update(campaign_id, counts, settings))


def add_unknown_call(campaign_id: str, call: str, settings: Settings) -> None:
    """Note on the counters item an SES call whose outcome is unknown (app.sends.call_id)."""
    client("dynamodb").update_item(TableName=settings.campaigns_table, Key=stats_key(campaign_id),
                                   UpdateExpression="ADD unknown_calls :call",
                                   ExpressionAttributeValues={":call": {"SS": [call]}})


def unknown_calls(campaign_ids: set[str], settings: Settings) -> dict[str, set[str]]:
    """The calls with unknown outcomes of each campaign that has any: one BatchGetItem per 100 campaigns."""
    found: dict[str, set[str]] = {}
    ids = sorted(campaign_ids)
    for start in range(0, len(ids), 100):
        request = {settings.campaigns_table: {"Keys": [stats_key(c) for c in ids[start : start + 100]],
                                              "ProjectionExpression": "campaign_id, unknown_calls"}}
        while request:
            response = client("dynamodb").batch_get_item(RequestItems=request)
            for item in response["Responses"].get(settings.campaigns_table, []):
                if "unknown_calls" in item:
                    found[item["campaign_id"]["S"].removesuffix(STATS_SUFFIX)] = set(item["unknown_calls"]["SS"])
            request = response.get("UnprocessedKeys") or {}
    return found

