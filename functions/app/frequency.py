"""The frequency cap at the send: each recipient's marketing email reserved on its contact item (RecipientsTable)
before the SES call, by a conditional UpdateItem, so campaigns sending at once cannot together pass a contact's
cap (the rules: app.domain.frequency).

The item's `marketing_sends` map holds campaign id -> when its email was reserved; `marketing_sends_version` is
bumped by every write. One write per recipient in the common case:

- SET marketing_sends.<campaign> = if_not_exists(..., now), under the condition that the contact exists, the map
  exists, and either the campaign is in it already (a retried or resumed batch: the recipient it reserved is sent,
  nothing counts twice) or the map holds fewer than the cap's entries. Entries past the window still count here,
  so this check can only be stricter than the rule; DynamoDB evaluates the condition and the write as one.
- When that condition fails, the item as it was comes back with the error (ReturnValuesOnConditionCheckFailure
  ALL_OLD, no read units): the rule decides from it (app.domain.frequency) and, if the contact is not at its cap,
  the map is written whole, pruned of the entries older than the longest window, on the condition that the version
  is still the one read (optimistic concurrency); a lost race goes round again.

A transactional campaign writes nothing; an exempt one records its send without a cap, so the others count it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from app.clients import client
from app.domain import frequency
from app.settings import Settings

_plain = TypeDeserializer()
ATTEMPTS = 8  # rounds of the optimistic write before giving up (each lost round is another writer's success)
_NAMES = {"#f": frequency.SENDS_FIELD, "#v": frequency.VERSION_FIELD}


class FrequencyContentionError(RuntimeError):
    """The contact's item changed under every attempt: SendBatch fails, and the Map's Retry runs it again."""


def _update(config: Settings, address: str, **kwargs: Any) -> dict[str, Any] | None:
    """update_item; None when it succeeded, else the item as it was when its condition failed ({}: no item)."""
    try:
        client("dynamodb").update_item(TableName=config.recipients_table, Key={"address": {"S": address}},
                                       ReturnValuesOnConditionCheckFailure="ALL_OLD", **kwargs)
        return None
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        return error.response.get("Item") or {}


def reserve(address: str, campaign_id: str, cap: frequency.Cap, now: datetime, config: Settings) -> str | None:
    """Reserve this campaign's email to `address` under `cap`: None when it may be sent (reserved now or before),
    else why not (frequency.CAPPED, or frequency.NO_CONTACT when the contact's item is gone)."""
    if not cap.record:
        return None
    stamp = {"S": now.isoformat()}
    names = {**_NAMES, "#c": campaign_id}
    limit = "" if cap.emails is None else " AND (attribute_exists(#f.#c) OR size(#f) < :max)"
    for _ in range(ATTEMPTS):
        old = _update(
            config, address, UpdateExpression="SET #f.#c = if_not_exists(#f.#c, :now) ADD #v :one",
            ConditionExpression="attribute_exists(address) AND attribute_exists(#f)" + limit,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={":now": stamp, ":one": {"N": "1"},
                                       **({":max": {"N": str(cap.emails)}} if cap.emails is not None else {})})
        if old is None:
            return None
        if not old:
            return frequency.NO_CONTACT
        sends = {str(k): str(v) for k, v in (_plain.deserialize(old[frequency.SENDS_FIELD])
                                             if frequency.SENDS_FIELD in old else {}).items()}
        if campaign_id in sends:
            return None  # reserved by another invocation of this campaign meanwhile
        if frequency.at_cap(sends, campaign_id, now, cap):
            return frequency.CAPPED
        version = old.get(frequency.VERSION_FIELD)
        written = {k: {"S": v} for k, v in frequency.reserved(sends, campaign_id, now, cap).items()}
        lost = _update(
            config, address, UpdateExpression="SET #f = :sends ADD #v :one",
            ConditionExpression="attribute_exists(address) AND " + (
                "#v = :version" if version else "attribute_not_exists(#v)"),
            ExpressionAttributeNames=_NAMES,
            ExpressionAttributeValues={":sends": {"M": written}, ":one": {"N": "1"},
                                       **({":version": version} if version else {})})
        if lost is None:
            return None
        if not lost:
            return frequency.NO_CONTACT
    raise FrequencyContentionError(f"campaign {campaign_id}: a contact's item changed under {ATTEMPTS} attempts "
                                   f"to reserve its email")
