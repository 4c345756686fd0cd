"""Exactly-once sending: one claim per manifest batch in SendsTable, and an in-flight mark before every SES call.

Item (campaign_id, batch = "<phase>#<index>"); the batch's recipients are the frozen manifest's, in order:
  status      SENDING (claimed by a running SendBatch), STOPPED (a pause, halt, refused call or a wait for the rate
              stopped it; resumable from `next`), SENT (every call made)
  next        position of the first recipient not yet sent
  inflight    how many recipients from `next` on are in an SES call whose answer has not been recorded (0: none)
  unknown     recipients whose call's outcome was never recorded (a crash, a timeout, a 5xx): never resent;
              unknown_calls: those calls, by their first position (SendBatch tags each message with it, "call")
  confirmed   which of those unknown recipients SES feedback has since shown were sent (reconciliation): short
              hashes of their addresses, so a duplicate event counts once and only that call's recipients count
  failed      how many recipients SES refused one by one in an accepted call (a BulkEmailEntryResult other than
              SUCCESS); failed_addresses: which; failed_reasons: why, one JSON string each {"address", "status",
              "error"} (SES's status and Error text), never stopping the others of the batch
  capped      how many recipients were not sent because they reached their frequency cap since the snapshot
              (app.frequency; status FREQUENCY_CAPPED in failed_reasons)
  recipients, claimed_at, sent_at, expires_at

The claim is conditional: a new batch, a STOPPED one, or one SENDING with nothing in flight (its SendBatch died
between calls, or is still running and loses the batch: its next in-flight mark is refused) is taken over from
`next`. One SENDING with a call in flight is busy while that call can still be running (its mark, `inflight_at`,
is younger than IN_FLIGHT_STALE_SECONDS: no SendBatch runs longer than its Timeout); an older one is a crashed
call, whose recipients first move to `unknown` (they may have been sent), so the rest can go, and nobody gets
the campaign twice.
Cost: three writes per batch in the common case (claim, in flight, finish), two more per extra SES call.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from app import campaign_control, clock
from app.clients import client
from app.domain import frequency
from app.domain.addresses import address_hash
from app.settings import Settings

SENDING, STOPPED, SENT = "SENDING", "STOPPED", "SENT"
# An in-flight mark older than this belongs to an invocation that has ended: twice SendBatchFunction's Timeout
# (template.yaml), which Lambda enforces.
IN_FLIGHT_STALE_SECONDS = 60
RETENTION = timedelta(days=400)
_NAMES = {"#s": "status", "#next": "next"}
OBSERVED = {"sent": "sent", "bounces": "hard_bounces", "complaints": "complaints"}  # observed's fields: counters


def batch_key(phase: str, index: int) -> str:
    return f"{phase}#{index:06d}"


def _key(campaign_id: str, batch: str) -> dict[str, Any]:
    return {"campaign_id": {"S": campaign_id}, "batch": {"S": batch}}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _update(campaign_id: str, batch: str, settings: Settings, names: dict[str, str] | None = None,
            **kwargs: Any) -> dict[str, Any]:
    """update_item; {"Failed": the item as it was} when its condition failed."""
    used = " ".join((kwargs.get("UpdateExpression", ""), kwargs.get("ConditionExpression", "")))
    aliases = {alias: name for alias, name in {**_NAMES, **(names or {})}.items() if alias in used}
    try:
        return client("dynamodb").update_item(TableName=settings.sends_table, Key=_key(campaign_id, batch),
                                              ExpressionAttributeNames=aliases, **kwargs)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        return {"Failed": error.response.get("Item", {})}


def claim(campaign_id: str, batch: str, recipients: int, settings: Settings,
          owner: str = "") -> tuple[int | None, str | None]:
    """Claim the batch before sending: (position to send from, None), or (None, status) when it is done (SENT) or
    another SendBatch holds it (SENDING with a call in flight is first settled as unknown, then claimed).

    `owner` (the invocation's request id) holds the claim: in_flight and finish write only for it. A claim can be
    taken from a SendBatch that is still running between two calls (SENDING, nothing in flight), as a crashed one
    leaves it: the Map's retry of a batch, or the phase run again after a deferral, while an invocation of the
    first run still sends (Step Functions stops a failed Map Run's children, not the Lambda invocations they made).
    The one that lost it then finds in_flight refused, and stops before its next call."""
    now = clock.now()
    for _ in range(2):
        response = _update(
            campaign_id, batch, settings,
            UpdateExpression="SET #s = :sending, recipients = :n, claimed_at = :now, claimed_by = :owner, "
                             "expires_at = :ttl, #next = if_not_exists(#next, :zero), inflight = :zero",
            ConditionExpression="attribute_not_exists(#s) OR #s = :stopped OR (#s = :sending AND inflight = :zero)",
            ExpressionAttributeValues={
                ":sending": {"S": SENDING}, ":stopped": {"S": STOPPED}, ":n": _n(recipients),
                ":now": {"S": now.isoformat()}, ":zero": _n(0), ":owner": {"S": owner},
                ":ttl": _n(int((now + RETENTION).timestamp()))},
            ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD")
        if "Failed" not in response:
            return int(response["Attributes"]["next"]["N"]), None
        item = response["Failed"]
        status = item.get("status", {}).get("S", SENT)
        inflight = int(item.get("inflight", {}).get("N", "0"))
        if status != SENDING or not inflight:
            return None, status
        marked = item.get("inflight_at", {}).get("S")
        if marked and (now - datetime.fromisoformat(marked)).total_seconds() < IN_FLIGHT_STALE_SECONDS:
            return None, SENDING  # a live invocation's call: busy
        settle_unknown(campaign_id, batch, int(item["next"]["N"]), inflight, settings)
    return None, SENDING


def settle_unknown(campaign_id: str, batch: str, position: int, inflight: int, settings: Settings) -> None:
    """A call whose answer was never recorded: its recipients become unknown (never resent); the batch goes on.
    The campaign's counters item lists the call first, so feedback ingestion knows which calls to reconcile
    without a write per event."""
    campaign_control.add_unknown_call(campaign_id, call_id(batch, position), settings)
    _update(campaign_id, batch, settings,
            UpdateExpression="SET #s = :stopped, #next = :after, inflight = :zero "
                             "ADD #unknown :inflight, unknown_calls :call",
            names={"#unknown": "unknown"},
            ConditionExpression="#s = :sending AND #next = :next AND inflight = :inflight",
            ExpressionAttributeValues={":stopped": {"S": STOPPED}, ":sending": {"S": SENDING},
                                       ":next": _n(position), ":after": _n(position + inflight),
                                       ":inflight": _n(inflight), ":zero": _n(0), ":call": {"NS": [str(position)]}})


Refusal = tuple[str, str, str]  # (address, SES's status for its entry, SES's Error text)


def _failures(failed: list[Refusal]) -> tuple[str, dict[str, Any]]:
    """The ADD clause recording the recipients of the last call that were not sent, one by one, and why: refused
    by SES (or by sesflow for data or an address SES would refuse), counted `failed`; or at their frequency cap
    (app.frequency), counted `capped`. Each one's reason is kept in failed_reasons."""
    if not failed:
        return "", {}
    reasons = sorted({json.dumps({"address": a, "status": status, "error": error}, separators=(",", ":"))
                      for a, status, error in failed})
    refused = sorted({a for a, status, _ in failed if status != frequency.CAPPED})
    capped = len({a for a, status, _ in failed if status == frequency.CAPPED})
    clause, values = " ADD failed_reasons :reasons", {":reasons": {"SS": reasons}}
    if refused:
        clause += ", failed :failed, failed_addresses :addresses"
        values |= {":failed": _n(len(refused)), ":addresses": {"SS": refused}}
    if capped:
        clause += ", capped :capped"
        values[":capped"] = _n(capped)
    return clause, values


def refusals(campaign_id: str, settings: Settings, limit: int = 100) -> list[dict[str, str]]:
    """The recipients not sent one by one, with SES's status and Error text (or sesflow's: FREQUENCY_CAPPED, ...),
    batch by batch (at most `limit`)."""
    found: list[dict[str, str]] = []
    query: dict[str, Any] = {
        "TableName": settings.sends_table, "KeyConditionExpression": "campaign_id = :c",
        "ProjectionExpression": "#b, failed_reasons", "ExpressionAttributeNames": {"#b": "batch"},
        "ExpressionAttributeValues": {":c": {"S": campaign_id}}}
    while len(found) < limit:
        page = client("dynamodb").query(**query)
        for item in page["Items"]:
            for text in sorted(item.get("failed_reasons", {}).get("SS", ())):
                found.append({"batch": item["batch"]["S"], **json.loads(text)})
        if "LastEvaluatedKey" not in page:
            break
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return found[:limit]


def in_flight(campaign_id: str, batch: str, position: int, count: int, settings: Settings,
              failed: list[Refusal] | None = None, owner: str = "") -> bool:
    """Record, before an SES call, that recipients [position, position + count) are in it (and the last
    call's refused recipients). False, recording nothing, when `owner` no longer holds the batch's claim: the call
    must not be made (another SendBatch holds the batch now, or it is done)."""
    add, extra = _failures(failed or [])
    response = _update(campaign_id, batch, settings,
                       UpdateExpression="SET #next = :next, inflight = :count, inflight_at = :now" + add,
                       ConditionExpression="#s = :sending AND claimed_by = :owner",
                       ExpressionAttributeValues={":next": _n(position), ":count": _n(count),
                                                  ":now": {"S": clock.now().isoformat()},
                                                  ":sending": {"S": SENDING}, ":owner": {"S": owner}, **extra})
    return "Failed" not in response


def finish(campaign_id: str, batch: str, status: str, position: int, settings: Settings,
           failed: list[Refusal] | None = None, observed: dict[str, int] | None = None, owner: str = "") -> None:
    """After the last call (SENT), or to stop before the next one (STOPPED): nothing is in flight. `observed`:
    the campaign's counters as the breaker last read them in this batch (kept for the report's rates over time)."""
    add, extra = _failures(failed or [])
    values = {":to": {"S": status}, ":next": _n(position), ":zero": _n(0), ":sending": {"S": SENDING}, **extra}
    sets = "SET #s = :to, #next = :next, inflight = :zero"
    now = {"S": clock.now().isoformat()}
    if status == SENT:
        sets += ", sent_at = :now"
        values[":now"] = now
    if observed is not None:
        sets += ", observed = :observed"
        values[":observed"] = {"M": {"at": now, **{name: _n(observed.get(counter, 0))
                                                   for name, counter in OBSERVED.items()}}}
    values[":owner"] = {"S": owner}
    _update(campaign_id, batch, settings, UpdateExpression=sets + add,  # nothing, if another SendBatch holds it now
            ConditionExpression="#s = :sending AND claimed_by = :owner", ExpressionAttributeValues=values)


def confirm(campaign_id: str, batch: str, call: int, addresses: set[str], settings: Settings) -> None:
    """SES feedback showed these recipients of the call at `call` were sent: counted if that call's outcome is
    unknown, a no-op for the others (reconciliation; repeat events count once)."""
    _update(campaign_id, batch, settings, UpdateExpression="ADD confirmed :ids",
            ConditionExpression="contains(unknown_calls, :call)",
            ExpressionAttributeValues={":ids": {"SS": sorted(map(address_hash, addresses))}, ":call": _n(call)})


def call_id(batch: str, position: int) -> str:
    return f"{batch}@{position}"


def summary(campaign_id: str, settings: Settings, audience: int = 0) -> dict[str, int]:
    """Every recipient of an `audience` of that many, accounted for: sent, failed (SES refused it), capped (at its
    frequency cap when its turn came; only when any were), not_sent (a stop came first, claimed or not),
    unknown_confirmed (sent, by feedback), unknown."""
    totals = {"sent": 0, "failed": 0, "capped": 0, "not_sent": 0, "unknown_confirmed": 0, "unknown": 0}
    claimed = 0
    query: dict[str, Any] = {
        "TableName": settings.sends_table, "KeyConditionExpression": "campaign_id = :c",
        "ExpressionAttributeValues": {":c": {"S": campaign_id}}}
    while True:
        page = client("dynamodb").query(**query)
        for item in page["Items"]:
            value = {k: int(v["N"]) for k, v in item.items() if "N" in v}
            size, position = value.get("recipients", 0), value.get("next", 0)
            unknown = value.get("unknown", 0) + value.get("inflight", 0)
            confirmed = min(len(item.get("confirmed", {}).get("SS", ())), unknown)
            done = size if item["status"]["S"] == SENT else position
            totals["failed"] += value.get("failed", 0)
            totals["capped"] += value.get("capped", 0)
            totals["sent"] += done - value.get("unknown", 0) - value.get("failed", 0) - value.get("capped", 0)
            totals["unknown_confirmed"] += confirmed
            totals["unknown"] += unknown - confirmed
            totals["not_sent"] += size - done - value.get("inflight", 0)
            claimed += size
        if "LastEvaluatedKey" not in page:
            totals["not_sent"] += max(0, audience - claimed)  # batches a stop kept from being claimed at all
            if not totals["capped"]:
                del totals["capped"]  # as the Accounting contract omits it: only where a frequency cap held
            return totals
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
