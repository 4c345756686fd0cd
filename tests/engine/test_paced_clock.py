"""PacedClock (`sesflow local up --serve --pace real|N`): time passes by itself, a sleep takes its share of wall
time in the thread that sleeps and moves nobody else's time; a stopped Wait ends early; the stack going down ends
every sleep. VirtualClock stays the default."""

import threading
from datetime import UTC, datetime, timedelta

import pytest

from sesflow.engine.clock import ClockClosedError, PacedClock, parse_pace
from sesflow.engine.stack import LocalStack

START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_time_passes_by_itself_and_a_sleep_ends_when_its_time_has_come():
    clock = PacedClock(pace=100, start=START)
    first = clock.now()

    clock.sleep(2)  # 20 ms of wall time

    assert clock.now() >= first + timedelta(seconds=2)
    assert clock.now() < first + timedelta(hours=1)
    assert clock.sleeps == [("sleep", 2.0)]


def test_a_sleep_moves_nobody_elses_time():
    """The virtual clock moves for everyone when one thread sleeps (a start_at's Wait jumps every campaign ahead);
    a paced one does not: each waits in its own thread while time passes for all alike."""
    clock = PacedClock(pace=1, start=START)
    asleep = threading.Event()

    def long_wait():
        asleep.set()
        clock.sleep(3600, stop=lambda: done.is_set())

    done = threading.Event()
    sleeper = threading.Thread(target=long_wait)
    sleeper.start()
    asleep.wait()
    try:
        assert clock.now() < START + timedelta(minutes=1)  # an hour's sleep beside us left our time alone
    finally:
        done.set()
        sleeper.join()


def test_a_sleep_ends_early_when_its_stop_says_so():
    """A Wait state of a stopped execution (StopExecution) ends then, not when its seconds are over."""
    clock = PacedClock(pace=1, start=START)
    stopped = threading.Event()
    threading.Timer(0.2, stopped.set).start()

    clock.sleep_until(START + timedelta(days=1), stop=stopped.is_set)

    assert stopped.is_set() and clock.now() < START + timedelta(hours=1)


def test_advance_moves_time_on_for_everyone_and_ends_the_sleeps_it_passes():
    clock = PacedClock(pace=1, start=START)
    woke = []
    sleeper = threading.Thread(target=lambda: (clock.sleep(3600), woke.append(clock.now())))
    sleeper.start()

    clock.advance(7200)

    sleeper.join(timeout=5)
    assert woke and woke[0] >= START + timedelta(hours=2)


def test_wake_at_sets_the_event_when_its_time_comes():
    """A callback Task's TimeoutSeconds: nobody answers the token, the time comes, the wait ends."""
    clock = PacedClock(pace=100, start=START)
    later, never = threading.Event(), threading.Event()
    clock.wake_at(clock.now() + timedelta(seconds=2), later)  # 20 ms of wall time
    clock.wake_at(clock.now() + timedelta(days=30), never)

    assert later.wait(timeout=5)
    assert not never.is_set()
    clock.close()


def test_closing_ends_every_sleep_with_clock_closed():
    """The stack goes down: a thread still waiting unwinds (quietly: a SystemExit) instead of waking on the next
    stack's backends."""
    clock = PacedClock(pace=1, start=START)
    ended = []

    def sleep():
        try:
            clock.sleep(3600)
        except ClockClosedError as error:
            ended.append(error)

    sleeper = threading.Thread(target=sleep)
    sleeper.start()
    threading.Timer(0.1, clock.close).start()
    sleeper.join(timeout=5)

    assert ended and isinstance(ended[0], SystemExit)


def test_an_express_child_is_charged_only_what_real_time_did_not_count():
    """Its five minutes are its real time plus what the ledger was charged: at pace 1 the wall clock saw the whole
    sleep; at pace 10 it saw a tenth."""
    for pace, charged in ((1, 0.0), (10, 0.9)):
        clock, account = PacedClock(pace=pace, start=START), [0.0]
        with clock.ledger(account):
            clock.sleep(0.1 * pace)
        assert account[0] == pytest.approx(charged * 0.1 * pace)


def test_pace_is_virtual_real_or_a_positive_number():
    assert (parse_pace("virtual"), parse_pace("real"), parse_pace("20"), parse_pace("0.5")) == (None, 1.0, 20.0, 0.5)
    for bad in ("0", "-3", "fast", "nan", "inf"):
        with pytest.raises(ValueError, match=f"--pace '{bad}': virtual, real, or a number more than 0"):
            parse_pace(bad)


def test_the_stack_is_on_virtual_time_unless_paced():
    assert LocalStack().pace is None


def test_stopping_an_execution_ends_its_wait_on_a_paced_clock(monkeypatch):
    """`aws stepfunctions stop-execution` on a campaign waiting for its start_at: the Wait ends then, as moto's own
    Wait does, rather than sleeping out its hour in a thread of an execution that is over."""
    import json
    import time

    import boto3
    from moto import mock_aws

    from sesflow.engine import runtime
    from sesflow.engine.patches import sfn
    from tests.engine.conftest import EXECUTING, REGION

    ended = threading.Event()
    original = PacedClock._sleep_to

    def noting(self, end, stop):
        try:
            return original(self, end, stop)
        finally:
            ended.set()

    monkeypatch.setattr(PacedClock, "_sleep_to", noting)
    sfn.install()
    clock = PacedClock(pace=1)
    runtime.activate(runtime.Runtime(clock=clock))
    try:
        with mock_aws(config=EXECUTING):
            client = boto3.client("stepfunctions", region_name=REGION)
            arn = client.create_state_machine(
                name="waits", roleArn="arn:aws:iam::123456789012:role/sfn", definition=json.dumps(
                    {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}),
            )["stateMachineArn"]
            execution = client.start_execution(stateMachineArn=arn)["executionArn"]
            deadline = time.monotonic() + 10
            while ("Wait", 3600.0) not in clock.sleeps:
                assert time.monotonic() < deadline, "the Wait never started"
                time.sleep(0.01)

            client.stop_execution(executionArn=execution)

            assert ended.wait(timeout=5), "the Wait kept sleeping after the execution was stopped"
            deadline = time.monotonic() + 5
            while client.describe_execution(executionArn=execution)["status"] != "ABORTED":
                assert time.monotonic() < deadline, "the execution never showed ABORTED"
                time.sleep(0.01)
            assert clock.now() < datetime.now(UTC) + timedelta(minutes=1)
    finally:
        clock.close()
        runtime.deactivate()
