"""Where a batch waits (app.domain.deferral): in its EXPRESS child only when the wait and what follows fit in five
minutes; the daily quota always in the campaign's execution."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.domain import deferral

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_child_waits_itself_when_a_short_rate_wait_fits_in_its_five_minutes():
    wait = deferral.Wait(20, deferral.RATE, "booked 20 s ahead")
    assert deferral.fits_in_child(wait, START, START + timedelta(seconds=5), invocation_seconds=30)


def test_parent_waits_when_the_wait_would_take_the_child_past_five_minutes():
    wait = deferral.Wait(60, deferral.RATE, "booked 60 s ahead")
    # 150 s in, 60 s of wait, then up to 5 invocations of 30 s and their back-offs: past 300 s
    assert not deferral.fits_in_child(wait, START, START + timedelta(seconds=150), invocation_seconds=30)


def test_parent_waits_for_the_daily_quota_however_short_its_retry():
    wait = deferral.for_daily_quota(5, "quota used up")
    assert wait.seconds == deferral.DAILY_QUOTA_WAIT_SECONDS
    assert not deferral.fits_in_child(wait, START, START, invocation_seconds=1)


def test_parent_wait_ends_at_an_rfc3339_utc_timestamp_that_sorts_as_time():
    # A Wait's Timestamp counts whole seconds (Step Functions truncates milliseconds): rounded up, never early.
    until = deferral.until(deferral.Wait(90.5, deferral.RATE, ""), START)
    assert until == "2026-12-03T12:01:31.000Z"
    assert deferral.parse_rfc3339(until) == START + timedelta(seconds=91)
    assert deferral.rfc3339(START) < until
    assert deferral.until(deferral.Wait(90, deferral.RATE, ""), START) == "2026-12-03T12:01:30.000Z"


def test_a_batch_outside_its_send_window_always_waits_in_the_parent():
    assert not deferral.fits_in_child(deferral.Wait(2, deferral.WINDOW, ""), START, START, invocation_seconds=1)


def test_crash_retries_match_the_send_batch_task_in_the_campaign_workflow():
    """The child's budget counts the SendBatch Task's retry attempts: the ASL and the domain must agree."""
    asl = json.loads((ROOT / "statemachines/campaign.asl.json").read_text())
    task = asl["States"]["SendPhase"]["ItemProcessor"]["States"]["SendBatch"]
    attempts = sum(r["MaxAttempts"] for r in task["Retry"])
    longest = sum(r["IntervalSeconds"] * r["BackoffRate"] ** n for r in task["Retry"] for n in range(r["MaxAttempts"]))
    assert attempts == deferral.CRASH_RETRIES
    assert longest <= deferral.CRASH_BACKOFF_SECONDS
