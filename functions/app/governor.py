"""The account-wide rate governor: one bucket (app/domain/token_bucket.py) shared by every campaign and Lambda in
the account, kept in one CampaignsTable item and changed only by conditional writes, so concurrent callers never
hand out more than SES allows.

    governor = Governor(client("dynamodb"), settings.campaigns_table, client("sesv2"))
    n = governor.acquire(len(pending), stream="marketing", lane=campaign.id, rate_share=campaign.rate_share,
                         now=lambda: clock.now().timestamp(), sleep=clock.sleep)
    # send pending[:n] now, in one or more SendBulkEmail calls, then acquire again for the rest

`acquire` returns how many sends the caller may make now (1..want), after sleeping (with the injected `sleep`)
until its grant starts. It never waits longer than `max_wait`: it raises GovernorBusyError (nothing reserved) for
the workflow's Retry to come back later, and DailyQuotaExhaustedError when the 24-hour quota is used up.

The item (CampaignsTable, campaign_id "#governor"; a campaign id cannot start with "#"):

    campaign_id     S  "#governor"
    version         N  incremented by every write; each write is conditional on the version it read
    log_base        N  ms since the epoch: the grants' offsets are from it
    log             S  the grants still holding tokens (and those reserved ahead), "offset:count:tag,...", e.g.
                       "0:50:m,1010:50:m,1010:14:t": 50 marketing sends at log_base, and so on. A tag is the
                       stream's initial (m, t), then 6 hex digits of the lane's hash when a lane has a rate_share
    granted         N  sends granted since the quota was refreshed
    max_send_rate   N  GetAccount SendQuota.MaxSendRate
    max_24h_send    N  GetAccount SendQuota.Max24HourSend
    sent_24h        N  SendQuota.SentLast24Hours at the refresh, plus the grants held then
    quota_at        N  ms since the epoch of that GetAccount
    updated_at      N  the latest writer's clock, ms since the epoch: no grant is placed before it (a Lambda whose
                       clock is behind plans from there, so it never backfills a window whose grants were dropped)

About 150 bytes plus 8 to 16 per grant held: one write unit while it holds fewer than about 50 grants, i.e. below
a rate of about 50 grants a second.

Cost per acquire, in the common case: one strongly consistent GetItem (1 read unit) and one conditional UpdateItem
(1 write unit); a write that loses a race costs one more write unit and no read (the failed write returns the item
it lost to). GetAccount once per `Policy.refresh_ms` across the account (SES does not bill it).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from app.domain import token_bucket as tb
from app.errors import DailyQuotaExhaustedError, GovernorBusyError

GOVERNOR_KEY = "#governor"


@dataclass(frozen=True)
class Reservation:
    """The last grant: `count` sends from `at` (seconds since the epoch), after waiting `waited` seconds."""

    at: float
    count: int
    waited: float
    conflicts: int


@dataclass(frozen=True)
class SendQuota:
    """GetAccount's SendQuota, read at `read_at` (ms)."""

    max_send_rate: float
    max_24h_send: float
    sent_last_24h: float
    read_at: int

    def apply(self, bucket: tb.Bucket, policy: tb.Policy) -> tb.Bucket:
        return tb.refreshed(bucket, policy, now=self.read_at, max_send_rate=self.max_send_rate,
                            max_24h_send=self.max_24h_send, sent_last_24h=self.sent_last_24h)


QUICK_RETRIES = 2  # lost races retried at once on the item the failed write returns; then with random back-off
SLEEP_TOLERANCE = 0.001  # grants are in whole ms; the window's margin (10 ms) covers being this early


class Governor:
    """One per Lambda container is enough (it keeps no state between calls but the last Reservation)."""

    def __init__(self, dynamodb: Any, table_name: str, ses: Any, *, policy: tb.Policy | None = None,
                 key: str = GOVERNOR_KEY, max_wait: float = 10.0, max_conflicts: int = 30) -> None:
        self.dynamodb = dynamodb
        self.table_name = table_name
        self.ses = ses
        self.policy = policy or tb.Policy()
        self.key = key
        self.max_wait = max_wait
        self.max_conflicts = max_conflicts
        self.last: Reservation | None = None

    # --- public -------------------------------------------------------------------------------------------

    def acquire(self, want: int, *, stream: str = tb.MARKETING, rate_share: float = 1.0, lane: str | None = None,
                now: Callable[[], float], sleep: Callable[[float], None], max_wait: float | None = None) -> int:
        """Sends the caller may make now: 1..want (and at most the account's rate), having slept until they may.

        stream: "marketing" or "transactional" (marketing never uses the transactional reserve).
        lane, rate_share: the lane (e.g. the campaign id) may use at most rate_share of the account's rate, all
        its Lambdas together; without a lane, rate_share caps the whole stream.
        now, sleep: seconds since the epoch, and a sleep, so that a virtual clock can drive it.
        max_wait: the longest sleep allowed (default the Governor's), e.g. the Lambda's remaining time less the
        time the sends need. A longer one raises GovernorBusyError, reserving nothing.
        """
        if not isinstance(want, int) or want < 1:
            raise ValueError(f"want: {want!r} is not a positive int")
        tag = tb.lane_tag(stream, lane)
        limit = self.max_wait if max_wait is None else max_wait
        bucket = self.read()
        account: SendQuota | None = None  # a GetAccount read by this call, applied to whatever it writes on
        for conflicts in range(self.max_conflicts + 1):
            started = now()
            at_ms = math.ceil(started * 1000)
            working = bucket
            if tb.needs_refresh(working, self.policy, at_ms):
                if account is None or at_ms - account.read_at >= self.policy.refresh_ms:
                    account = self._get_account(at_ms)
                working = account.apply(working, self.policy)
            left = tb.daily_left(working, self.policy, stream=stream)
            if left < 1:
                quota = working.quota
                assert quota is not None
                if working is not bucket:  # keep the fresh quota, so that the next caller need not read it again
                    self._write(working, expected=bucket.version, now=at_ms)
                retry = max(1.0, (quota.refreshed_at + self.policy.refresh_ms - at_ms) / 1000)
                raise DailyQuotaExhaustedError(
                    f"{stream}: the 24-hour quota is used up ({quota.sent_24h + working.granted:.0f} of "
                    f"{quota.max_24h_send:.0f}, transactional reserve {self.policy.transactional_reserve:.0%})",
                    retry_after=retry)
            chosen = tb.plan(working, self.policy, want=min(want, left), now=at_ms, stream=stream, tag=tag,
                             rate_share=rate_share)
            wait = (chosen.at - at_ms) / 1000
            if wait > limit:
                raise GovernorBusyError(
                    f"{stream}: the send rate is booked {wait:.1f} s ahead, more than {limit:.1f} s", retry_after=wait)
            new = tb.take(working, self.policy, chosen, now=at_ms, tag=tag)
            found = self._write(new, expected=bucket.version, now=at_ms)
            if found is None:
                break
            if conflicts < QUICK_RETRIES:
                bucket = found  # someone wrote first: plan again on what they wrote, no extra read
            else:  # a crowd: step aside a random while, then read what it left
                sleep(random.uniform(0, min(0.1, 0.004 * 2 ** (conflicts - QUICK_RETRIES))))
                bucket = self.read()
        else:
            raise GovernorBusyError(f"{stream}: {self.max_conflicts} conflicting writes in a row", retry_after=1.0)
        waited = self._sleep_until(chosen.at / 1000, now, sleep)
        self.last = Reservation(chosen.at / 1000, chosen.count, waited, conflicts)
        return chosen.count

    def refresh_quota(self, *, now: Callable[[], float]) -> tb.Quota:
        """Read GetAccount now and store it, whatever the age of the stored quota (e.g. after a quota increase)."""
        bucket = self.read()
        for _ in range(self.max_conflicts + 1):
            at_ms = math.ceil(now() * 1000)
            new = self._get_account(at_ms).apply(bucket, self.policy)
            found = self._write(new, expected=bucket.version, now=at_ms)
            if found is None:
                assert new.quota is not None
                return new.quota
            bucket = found
        raise GovernorBusyError(f"{self.max_conflicts} conflicting writes in a row", retry_after=1.0)

    def read(self) -> tb.Bucket:
        item = self.dynamodb.get_item(TableName=self.table_name, Key={"campaign_id": {"S": self.key}},
                                      ConsistentRead=True).get("Item")
        return decode(item)

    # --- DynamoDB and SES ---------------------------------------------------------------------------------

    def _get_account(self, at_ms: int) -> SendQuota:
        quota = self.ses.get_account()["SendQuota"]
        return SendQuota(float(quota["MaxSendRate"]), float(quota["Max24HourSend"]),
                         float(quota["SentLast24Hours"]), at_ms)

    def _write(self, bucket: tb.Bucket, *, expected: int, now: int) -> tb.Bucket | None:
        """Store `bucket` as version expected + 1 if the item is still at `expected`; else what is stored."""
        values = encode(replace(bucket, version=expected + 1), now=now)
        names = {f"#{k}": k for k in values}
        update = "SET " + ", ".join(f"#{k} = :{k}" for k in values)
        attribute_values = {f":{k}": v for k, v in values.items()}
        if expected == 0:
            condition = "attribute_not_exists(campaign_id)"
        else:
            condition = "#version = :expected"
            attribute_values[":expected"] = {"N": str(expected)}
        try:
            self.dynamodb.update_item(
                TableName=self.table_name, Key={"campaign_id": {"S": self.key}}, UpdateExpression=update,
                ConditionExpression=condition, ExpressionAttributeNames=names,
                ExpressionAttributeValues=attribute_values, ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return decode(error.response.get("Item"))
        return None

    @staticmethod
    def _sleep_until(at: float, now: Callable[[], float], sleep: Callable[[float], None]) -> float:
        started = now()
        for _ in range(1000):
            remaining = at - now()
            if remaining <= SLEEP_TOLERANCE:
                return max(0.0, now() - started)
            sleep(remaining)
        raise RuntimeError("the injected sleep does not move the injected clock")


def encode(bucket: tb.Bucket, *, now: int) -> dict[str, dict[str, str]]:
    """The item's attributes but its key, in DynamoDB's typed form."""
    if bucket.quota is None:
        raise ValueError("a governor item always has a quota")
    base, log = tb.encode_grants(bucket.grants)
    q = bucket.quota
    numbers = {"version": bucket.version, "log_base": base, "granted": bucket.granted,
               "max_send_rate": q.max_send_rate, "max_24h_send": q.max_24h_send, "sent_24h": q.sent_24h,
               "quota_at": q.refreshed_at, "updated_at": max(bucket.seen, now)}
    return {"log": {"S": log}} | {k: {"N": _number(v)} for k, v in numbers.items()}


def decode(item: dict[str, Any] | None) -> tb.Bucket:
    if not item:
        return tb.Bucket()

    def number(name: str) -> float:
        return float(item[name]["N"])

    quota = tb.Quota(number("max_send_rate"), number("max_24h_send"), number("sent_24h"), int(number("quota_at")))
    return tb.Bucket(version=int(number("version")), quota=quota, granted=int(number("granted")),
                     grants=tb.decode_grants(int(number("log_base")), item["log"]["S"]),
                     seen=int(number("updated_at")))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
