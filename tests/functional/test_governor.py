"""The rate governor (app/governor.py) on moto: CampaignsTable as template.yaml makes it, SES v2 from the engine's
simulator (which refuses a call over the per-second rate), and clocks the tests drive: no real waiting."""

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import boto3
import pytest
from app.domain import token_bucket as tb
from app.governor import GOVERNOR_KEY, DailyQuotaExhaustedError, Governor, GovernorBusyError
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from sesflow.engine import runtime
from sesflow.engine.clock import VirtualClock
from sesflow.engine.patches import metering, sesv2
from sesflow.engine.ses import simulator
from sesflow.engine.template import load_template
from tests.conftest import ROOT

TABLE = "campaigns"
REGION = "us-east-1"
START = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@dataclass
class Aws:
    dynamodb: object
    ses: object
    clock: VirtualClock
    meter: object

    def governor(self, **kwargs) -> Governor:
        return Governor(self.dynamodb, TABLE, self.ses, **kwargs)

    def now(self) -> float:
        return self.clock.now().timestamp()

    def sleep(self, seconds: float) -> None:
        self.clock.sleep(seconds, reason="governor")

    def item(self) -> dict:
        return self.dynamodb.get_item(TableName=TABLE, Key={"campaign_id": {"S": GOVERNOR_KEY}})["Item"]


@pytest.fixture
def aws() -> Iterator[Aws]:
    sesv2.install()
    metering.install()
    simulator().reset()
    simulator().configure(max_send_rate=14, max_24h_send=1_000_000)
    active = runtime.activate(runtime.Runtime(clock=VirtualClock(START)))
    properties = load_template(ROOT / "template.yaml").resources["CampaignsTable"].properties
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(TableName=TABLE, BillingMode=properties["BillingMode"],
                              KeySchema=properties["KeySchema"],
                              AttributeDefinitions=properties["AttributeDefinitions"])
        # No SDK retries: a throttled call must surface as an error the test counts.
        ses = boto3.client("sesv2", region_name=REGION, config=Config(retries={"total_max_attempts": 1}))
        ses.create_email_identity(EmailIdentity="example.com")
        ses.create_email_template(TemplateName="promo", TemplateContent={"Subject": "Hi", "Text": "Hello"})
        active.meter.reset()
        yield Aws(dynamodb, ses, active.clock, active.meter)
    runtime.deactivate()
    simulator().reset()


def send(aws: Aws, campaign: str, variant: str, addresses: list[str]) -> None:
    aws.ses.send_bulk_email(
        FromEmailAddress="news@example.com",
        DefaultEmailTags=[{"Name": "campaign", "Value": campaign}, {"Name": "variant", "Value": variant}],
        DefaultContent={"Template": {"TemplateName": "promo", "TemplateData": "{}"}},
        BulkEmailEntries=[{"Destination": {"ToAddresses": [a]}} for a in addresses],
    )


# --- the item, the quota ------------------------------------------------------------------------------------------


def test_the_first_acquire_reads_the_quota_and_writes_the_documented_item(aws):
    granted = aws.governor().acquire(50, now=aws.now, sleep=aws.sleep)
    metered = aws.meter.snapshot()

    assert granted == 14  # one second of the account's rate, never more
    assert metered["api_calls"] == {"dynamodb:GetItem": 1, "sesv2:GetAccount": 1, "dynamodb:UpdateItem": 1}
    assert metered["dynamodb_write_units"] == {TABLE: 1}
    item = aws.item()
    assert set(item) == {"campaign_id", "version", "log_base", "log", "granted", "max_send_rate", "max_24h_send",
                         "sent_24h", "quota_at", "updated_at"}
    now_ms = round(aws.now() * 1000)
    assert item["version"] == {"N": "1"} and item["log"] == {"S": "0:14:m"}
    assert item["log_base"] == {"N": str(now_ms)} and item["quota_at"] == {"N": str(now_ms)}
    assert (item["max_send_rate"], item["max_24h_send"], item["sent_24h"], item["granted"]) == (
        {"N": "14"}, {"N": "1000000"}, {"N": "0"}, {"N": "14"})


def test_the_quota_is_read_again_only_after_the_refresh_interval_and_a_raise_is_picked_up(aws):
    governor = aws.governor(policy=tb.Policy(refresh_ms=60_000))
    for _ in range(40):  # 40 virtual seconds
        governor.acquire(14, now=aws.now, sleep=aws.sleep)
    assert aws.meter.snapshot()["api_calls"]["sesv2:GetAccount"] == 1

    simulator().configure(max_send_rate=50)
    aws.clock.advance(30)
    assert governor.acquire(50, now=aws.now, sleep=aws.sleep) == 50
    assert aws.meter.snapshot()["api_calls"]["sesv2:GetAccount"] == 2
    simulator().configure(max_send_rate=20)
    assert governor.refresh_quota(now=aws.now).max_send_rate == 20


def test_the_daily_quota_counts_what_ses_already_sent_and_refuses_once_used_up(aws):
    simulator().configure(max_send_rate=50, max_24h_send=120)
    send(aws, "earlier", "a", [f"e{i}@example.org" for i in range(30)])
    aws.clock.advance(2)
    governor, granted = aws.governor(), 0

    with pytest.raises(DailyQuotaExhaustedError) as refused:
        while True:
            granted += governor.acquire(50, now=aws.now, sleep=aws.sleep)

    assert granted == 90 and refused.value.retry_after >= 1
    version = aws.item()["version"]
    with pytest.raises(DailyQuotaExhaustedError):
        governor.acquire(1, now=aws.now, sleep=aws.sleep)
    assert aws.item()["version"] == version  # a refusal reserves nothing


def test_the_transactional_reserve_is_free_at_once_while_marketing_uses_all_it_may(aws):
    simulator().configure(max_send_rate=10)
    governor = aws.governor(policy=tb.Policy(transactional_reserve=0.2))
    marketing = [governor.acquire(50, lane=f"c{i % 3}", now=aws.now, sleep=aws.sleep) for i in range(10)]
    assert set(marketing) == {8}

    before = aws.now()
    assert governor.acquire(50, stream=tb.TRANSACTIONAL, now=aws.now, sleep=aws.sleep) == 2
    assert aws.now() == before  # no wait


def test_a_wait_longer_than_allowed_raises_governor_busy_and_reserves_nothing(aws):
    governor = aws.governor(max_wait=0.5)
    governor.acquire(14, now=aws.now, sleep=aws.sleep)
    version = aws.item()["version"]

    with pytest.raises(GovernorBusyError) as busy:
        governor.acquire(14, now=aws.now, sleep=aws.sleep)

    assert busy.value.retry_after == pytest.approx(tb.WINDOW_MS / 1000)
    assert aws.item()["version"] == version
    assert governor.acquire(14, now=aws.now, sleep=aws.sleep, max_wait=2) == 14  # a caller with more time waits


def test_a_lost_race_is_planned_again_on_the_winners_item_without_another_read(aws):
    rival = aws.governor()
    calls = Counter()

    class RacingClient:
        """Lets the rival write between this governor's read and its write, once."""

        def __getattr__(self, name):
            calls[name] += 1
            if name == "update_item" and calls[name] == 1:
                rival.acquire(10, now=aws.now, sleep=aws.sleep)
            return getattr(aws.dynamodb, name)

    governor = Governor(RacingClient(), TABLE, aws.ses)
    assert governor.acquire(14, now=aws.now, sleep=aws.sleep) == 4  # what the rival left of this second
    assert governor.last.conflicts == 1
    assert (calls["get_item"], calls["update_item"]) == (1, 2)


# --- concurrency and rate fidelity ------------------------------------------------------------------------------------


class SharedClock:
    """Virtual time for threads: a sleep moves the clock forward by its length, and really sleeps at most 2 ms (so
    that a governor backing off after a lost race lets the others through, as on AWS)."""

    def __init__(self, start: float) -> None:
        self._now, self._lock = start, threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)
        time.sleep(min(seconds, 0.002))


@pytest.mark.slow
def test_concurrent_lambdas_never_hand_out_more_than_the_rate(aws):
    rate, target, workers = 14, 800, 6
    clock = SharedClock(START.timestamp())
    lock, grants, conflicts, busy, errors = threading.Lock(), [], [], [], []

    def lambda_worker(index: int) -> None:
        # Each worker is a Lambda of its own: its own clients and governor.
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        ses = boto3.client("sesv2", region_name=REGION)
        governor = Governor(dynamodb, TABLE, ses, max_wait=60)
        try:
            while True:
                with lock:
                    if sum(n for _, n in grants) >= target:
                        return
                try:
                    count = governor.acquire(50, lane=f"campaign-{index % 3}", now=clock.now, sleep=clock.sleep)
                except GovernorBusyError as error:  # the workflow's Retry brings the batch back later
                    busy.append(error)
                    clock.sleep(error.retry_after)
                    continue
                with lock:
                    grants.append((governor.last.at, count))
                    conflicts.append(governor.last.conflicts)
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=lambda_worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors, errors
    assert all(1 <= n <= rate for _, n in grants)
    # SES's own rule: no one-second window (x - 1, x] holds more than the rate ...
    times = sorted(at for at, _ in grants)
    peak = max(sum(n for at, n in grants if x - 1 < at <= x) for x in times)
    assert peak <= rate, sorted(grants)[:40]
    # ... so in all, never more than rate x elapsed + one second's worth.
    assert sum(n for _, n in grants) <= rate * (times[-1] - times[0]) + rate
    assert sum(conflicts) > 0, "the workers never raced: the test shows nothing about concurrency"
    assert len(busy) <= len(grants) // 10, "lost races should rarely end in GovernorBusyError"


@pytest.mark.parametrize("rate", [14, pytest.param(200, marks=pytest.mark.slow)])
def test_three_campaigns_for_60_virtual_seconds_get_97_percent_of_the_rate_with_no_throttling(aws, rate):
    """As the engine runs them: SendBatch invocations one at a time (interleaved across three campaigns), each
    acquiring for what is left of its batch of 50 and sending the grant as one SendBulkEmail per variant."""
    simulator().configure(max_send_rate=rate)
    governor = aws.governor()
    start, sent, throttled, acquires = aws.now(), 0, 0, 0
    batches = {c: 0 for c in ("spring", "summer", "autumn")}
    aws.meter.reset()
    while aws.now() < start + 60:
        for campaign in batches:
            batch = [(f"{campaign}-{batches[campaign]}-{i}@example.org", "abc"[i % 3]) for i in range(50)]
            batches[campaign] += 1
            while batch:
                count = governor.acquire(len(batch), lane=campaign, now=aws.now, sleep=aws.sleep)
                acquires += 1
                now, (chunk, batch) = aws.now(), (batch[:count], batch[count:])
                for variant in "abc":
                    addresses = [a for a, v in chunk if v == variant]
                    if not addresses:
                        continue
                    try:
                        send(aws, campaign, variant, addresses)
                    except ClientError as error:
                        assert error.response["Error"]["Code"] == "TooManyRequestsException"
                        throttled += 1
                        continue
                    if now < start + 60:
                        sent += len(addresses)

    fidelity = sent / (rate * 60)
    writes = aws.meter.snapshot()["dynamodb_write_units"][TABLE]
    reads = aws.meter.snapshot()["dynamodb_read_units"][TABLE]
    total = sum(len(m.to) for m in simulator().outbox)
    print(json.dumps({"rate": rate, "fidelity": round(fidelity, 4), "throttled": throttled, "acquires": acquires,
                      "emails": total, "write_units_per_1000": round(writes * 1000 / total, 1),
                      "read_units_per_1000": round(reads * 1000 / total, 1)}))
    assert throttled == 0
    assert fidelity >= 0.97
    assert Counter(m.tags["campaign"] for m in simulator().outbox).keys() == batches.keys()
