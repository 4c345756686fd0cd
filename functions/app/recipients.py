"""A recipient's lifecycle state in DynamoDB, and the writes that move it (the I/O side of app.domain.lifecycle).

The RecipientsTable item, keyed by the lower-case address:
  status, strike_times (list of ISO times), quarantined_until, status_since, version   -- RecipientState
  status_cause, status_reason, status_event                                            -- the last transition
  episode        the id (the soft bounce's event id) of the quarantine episode running for it, if any
  episode_token  the task token that episode waits on (set by the workflow), so a new outcome can end it
  reinstated_at  when an operator last reinstated it: feedback about mail from before then changes nothing
  and the team's own attributes (a contact: docs/contacts.md; its lists are MembershipsTable's, app.contacts)

Every transition is one conditional, versioned write (condition: the version read) together with its audit
record, in one transaction; the lifecycle workflow's writes bump the version too, so a concurrent writer
always re-reads. A recipient's history is one query: EventsTable pk RECIPIENT#<address>.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from app import clock
from app.clients import client
from app.domain import addresses, lifecycle
from app.domain.lifecycle import Decision, Policy, RecipientState
from app.settings import Settings

AUDIT_RETENTION = timedelta(days=400)
_OPERATOR_RETRIES = 5
_TOKEN_GONE = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}


@dataclass(frozen=True)
class Stored:
    """A recipient as read: its lifecycle state and the episode bookkeeping around it."""

    address: str
    state: RecipientState
    exists: bool = False
    episode: str | None = None
    episode_token: str | None = None
    reinstated_at: datetime | None = None
    cause: str | None = None
    reason: str | None = None


def normalize(address: str) -> str:
    """The RecipientsTable key: app.domain.addresses.normalize (what the feedback parser, the one-click link and
    every import produce too). Raises InvalidAddress (a ValueError) for what SES would not send to."""
    return addresses.normalize(address)


def iso(moment: datetime) -> str:
    """Times as SES and Step Functions write them (2026-11-22T09:00:00.000Z), so history keys sort as one."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def audit_pk(address: str) -> str:
    return f"RECIPIENT#{address}"


def _time(value: dict[str, Any] | None) -> datetime | None:
    return datetime.fromisoformat(value["S"]) if value and "S" in value else None


def from_item(address: str, item: dict[str, Any] | None) -> Stored:
    if not item:
        return Stored(address, RecipientState())
    state = RecipientState(
        status=item.get("status", {}).get("S") or lifecycle.ACTIVE,
        strike_times=tuple(datetime.fromisoformat(v["S"]) for v in item.get("strike_times", {}).get("L", [])),
        quarantined_until=_time(item.get("quarantined_until")),
        status_since=_time(item.get("status_since")),
        version=int(item.get("version", {}).get("N", "0")),
    )
    return Stored(
        address, state, exists=True,
        episode=item.get("episode", {}).get("S"),
        episode_token=item.get("episode_token", {}).get("S"),
        reinstated_at=_time(item.get("reinstated_at")),
        cause=item.get("status_cause", {}).get("S"),
        reason=item.get("status_reason", {}).get("S"),
    )


def read(addresses: set[str], settings: Settings, consistent: bool = False) -> dict[str, Stored]:
    """Every address's state. Eventually consistent (half the read units): a transition is conditional on the
    version read, so a stale read only costs a retry, which reads consistently."""
    found = {a: Stored(a, RecipientState()) for a in addresses}
    ddb = client("dynamodb")
    keys = [{"address": {"S": a}} for a in sorted(addresses)]
    for start in range(0, len(keys), 100):  # BatchGetItem's limit
        request = {settings.recipients_table: {"Keys": keys[start : start + 100], "ConsistentRead": consistent}}
        while request:
            response = ddb.batch_get_item(RequestItems=request)
            for item in response["Responses"].get(settings.recipients_table, []):
                address = item["address"]["S"]
                found[address] = from_item(address, item)
            request = response.get("UnprocessedKeys") or {}
    return found


def transition_update(stored: Stored, final: Decision, episode: str | None, event_id: str | None,
                      settings: Settings, now: datetime, *, reinstated: bool = False) -> dict[str, Any]:
    """The conditional, versioned write of a recipient's new state after one or more decisions (the last is
    `final`). `episode` is the quarantine episode the recipient is in afterwards (None: none)."""
    new = final.state
    values: dict[str, Any] = {
        ":status": {"S": new.status},
        ":strikes": {"L": [{"S": iso(t)} for t in new.strike_times]},
        ":version": {"N": str(new.version)},
        ":cause": {"S": final.cause},
        ":reason": {"S": final.reason},
        ":changed": {"S": iso(now)},
    }
    sets = ["#status = :status", "strike_times = :strikes", "version = :version", "status_cause = :cause",
            "status_reason = :reason", "status_changed_at = :changed"]
    removes = []
    for name, value in (("quarantined_until", new.quarantined_until), ("status_since", new.status_since)):
        if value is None:
            removes.append(name)
        else:
            sets.append(f"{name} = :{name}")
            values[f":{name}"] = {"S": iso(value)}
    if event_id:
        sets.append("status_event = :event")
        values[":event"] = {"S": event_id}
    if episode:
        sets.append("episode = :episode")
        values[":episode"] = {"S": episode}
    else:
        removes.append("episode")
    if episode != stored.episode:
        removes.append("episode_token")  # the old episode's token; the new episode stores its own
    if reinstated:
        sets.append("reinstated_at = :changed")
    if stored.state.version:
        condition = "version = :read"
        values[":read"] = {"N": str(stored.state.version)}
    else:  # never transitioned: an item seeded without a version
        condition = "attribute_exists(address) AND attribute_not_exists(version)"
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    return {"Update": {
        "TableName": settings.recipients_table,
        "Key": {"address": {"S": stored.address}},
        "UpdateExpression": expression,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": {"#status": "status"},
        "ExpressionAttributeValues": values,
    }}


def audit_record(address: str, decision: Decision | None, *, event_id: str, actor: str, at: datetime,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One entry of the recipient's history: from, to, cause, reason (when it moved), event, actor, time."""
    fields = {
        "pk": audit_pk(address),
        "sk": f"{iso(at)}#{event_id}",
        "event_id": event_id,
        "from_status": decision and decision.from_status,
        "to_status": decision and decision.to_status,
        "cause": decision and decision.cause,
        "reason": decision and decision.reason,
        "actor": actor,
        "recorded_at": iso(at),
        "expires_at": int((at + AUDIT_RETENTION).timestamp()),
        **(extra or {}),
    }
    return {k: ({"N": str(v)} if isinstance(v, int) else {"S": str(v)}) for k, v in fields.items() if v is not None}


def episode_after(stored: Stored, decisions: list[tuple[Decision, str]]) -> str | None:
    """The episode a recipient is in after `decisions` ((decision, event id) in order): a new quarantine starts
    one named after its event; QUARANTINED -> QUARANTINED keeps it; anything but QUARANTINED or RECOVERY ends it."""
    episode = stored.episode
    for decision, event_id in decisions:
        if decision.starts_quarantine:
            episode = event_id
        elif decision.to_status not in (lifecycle.QUARANTINED, lifecycle.RECOVERY):
            episode = None
    return episode


def end_episode(stored: Stored, outcome: Decision) -> None:
    """Tell the recipient's waiting episode what happened, so it ends now rather than at its deadline.

    Best effort: a token that timed out meanwhile is fine, and an episode not told still ends at its deadline,
    when its conditional write finds the recipient moved on."""
    if not stored.episode_token:
        return
    try:
        client("stepfunctions").send_task_success(taskToken=stored.episode_token, output=json.dumps({
            "ended_by": outcome.cause, "status": outcome.to_status, "reason": outcome.reason}))
    except ClientError as error:
        if error.response["Error"]["Code"] not in _TOKEN_GONE:
            raise


def start_episode(address: str, episode: str, deadline: datetime, policy: Policy, lifecycle_arn: str) -> None:
    """Run the quarantine episode; its name is the episode id, so starting it twice starts one execution."""
    decay = "none" if policy.probation_end == "keep_strikes" else policy.strike_decay
    try:
        client("stepfunctions").start_execution(
            stateMachineArn=lifecycle_arn,
            name=f"quarantine-{episode}"[:80],
            input=json.dumps({"address": address, "episode": episode, "deadline": iso(deadline),
                              "probation_seconds": policy.probation_seconds, "probation_decay": decay}),
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise


def apply_decision(address: str, decide: Callable[[RecipientState, datetime], Decision | None], settings: Settings,
                   *, event_id: str, actor: str, reinstated: bool = False, marker: str | None = None,
                   audit_extra: dict[str, Any] | None = None) -> tuple[Stored, Decision | None]:
    """Decide one change from the recipient as it is and write it: the conditional, versioned update with its audit
    record in one transaction, then end the episode it leaves. When the recipient changed between the read and the
    write, it is read and decided again (up to _OPERATOR_RETRIES times, then RuntimeError).

    `marker` makes the change idempotent: an EventsTable item (pk `marker`) written in the same transaction only if
    absent, so the same change asked again writes nothing even when the recipient could move again (reinstated).
    Returns the recipient as last read and the decision written; None when the recipient does not exist (nothing
    is written), `decide` returns None, or the marker was there already. `decide` may raise (a bad reason)."""
    address = normalize(address)
    for attempt in range(_OPERATOR_RETRIES):
        stored = read({address}, settings, consistent=attempt > 0)[address]
        if not stored.exists:
            return stored, None
        now = clock.now()
        decision = decide(stored.state, now)
        if decision is None:
            return stored, None
        episode = episode_after(stored, [(decision, event_id)])
        items = [
            transition_update(stored, decision, episode, event_id, settings, now, reinstated=reinstated),
            {"Put": {"TableName": settings.events_table,
                     "Item": audit_record(address, decision, event_id=event_id, actor=actor, at=now,
                                          extra=audit_extra)}},
        ]
        if marker:
            items.append({"Put": {
                "TableName": settings.events_table,
                "Item": {"pk": {"S": marker}, "sk": {"S": "marker"}, "event_id": {"S": event_id},
                         "recorded_at": {"S": iso(now)},
                         "expires_at": {"N": str(int((now + AUDIT_RETENTION).timestamp()))}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }})
        try:
            client("dynamodb").transact_write_items(TransactItems=items)
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons") or []]
            if marker and len(reasons) == len(items) and reasons[-1] == "ConditionalCheckFailed":
                return stored, None  # this very change was applied before
            continue  # it changed between the read and the write: decide again from what it is now
        if episode != stored.episode:
            end_episode(stored, decision)
        return stored, decision
    raise RuntimeError(f"{address}: changed {_OPERATOR_RETRIES} times while being updated; try again")


def operator_change(address: str, action: str, reason: str, settings: Settings, actor: str) -> Decision | None:
    """An operator reinstates or suppresses a recipient, audited; None when it is already so.

    Raises ValueError for an empty reason or an unknown action. Retries when the recipient changes meanwhile."""
    change = {"reinstate": lifecycle.operator_reinstate, "suppress": lifecycle.operator_suppress}.get(action)
    if change is None:
        raise ValueError(f"action: must be reinstate or suppress, got {action!r}")
    stored, decision = apply_decision(address, lambda state, now: change(state, reason, now), settings,
                                      event_id=f"operator-{uuid.uuid4()}", actor=actor,
                                      reinstated=action == "reinstate")
    if not stored.exists:
        raise LookupError(f"{stored.address}: no such recipient in {settings.recipients_table}")
    return decision


def suppress_address(address: str, reason: str, settings: Settings, actor: str,
                     created_by: str = "suppression-import") -> str:
    """Suppress an address whether or not it is a contact yet, audited: "suppressed" (a contact moved to SUPPRESSED),
    "already" (it was), or "created" (no contact had it: an item SUPPRESSED with no lists is made, which every import
    and snapshot then honours). Raises ValueError for an empty reason."""
    address = normalize(address)
    for _ in range(_OPERATOR_RETRIES):
        try:
            decision = operator_change(address, "suppress", reason, settings, actor)
        except LookupError:
            pass
        else:
            return "suppressed" if decision else "already"
        now = clock.now()
        decision = lifecycle.operator_suppress(RecipientState(), reason, now)
        assert decision is not None  # a new state is ACTIVE, so suppressing it is a change
        event_id = f"operator-{uuid.uuid4()}"
        update = transition_update(Stored(address, RecipientState()), decision, None, event_id, settings, now)
        values = update["Update"]["ExpressionAttributeValues"]
        item = {"address": {"S": address}, "status": values[":status"], "strike_times": values[":strikes"],
                "version": values[":version"], "status_cause": values[":cause"], "status_reason": values[":reason"],
                "status_changed_at": values[":changed"], "status_event": {"S": event_id},
                "created_at": {"S": iso(now)}, "created_by": {"S": created_by}}
        if decision.state.status_since:
            item["status_since"] = {"S": iso(decision.state.status_since)}
        try:
            client("dynamodb").transact_write_items(TransactItems=[
                {"Put": {"TableName": settings.recipients_table, "Item": item,
                         "ConditionExpression": "attribute_not_exists(address)"}},
                {"Put": {"TableName": settings.events_table,
                         "Item": audit_record(address, decision, event_id=event_id, actor=actor, at=now)}},
            ])
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            continue  # made meanwhile: suppress it as a contact
        return "created"
    raise RuntimeError(f"{address}: changed {_OPERATOR_RETRIES} times while being suppressed; try again")


def history(address: str, settings: Settings, limit: int = 100) -> list[dict[str, Any]]:
    """The recipient's audit records, newest first."""
    response = client("dynamodb").query(
        TableName=settings.events_table, KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": audit_pk(normalize(address))}},
        ScanIndexForward=False, Limit=limit)
    return [{k: next(iter(v.values())) for k, v in item.items()} for item in response["Items"]]


def with_state(stored: Stored, decision: Decision) -> Stored:
    return replace(stored, state=decision.state)
