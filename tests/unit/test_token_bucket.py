"""The rate governor's bucket math (app/domain/token_bucket.py): refill, cap, shares, the transactional reserve, the
daily quota, and SES's rule that no one-second window holds more than the rate, however the grants fall."""

import math

import pytest
from app.domain import token_bucket as tb
from hypothesis import given, settings
from hypothesis import strategies as st

POLICY = tb.Policy()
W = POLICY.window_ms


def bucket(rate=14.0, daily=1_000_000.0, sent=0.0, grants=(), granted=0):
    return tb.Bucket(version=1, grants=tuple(grants), quota=tb.Quota(rate, daily, sent, 0), granted=granted)


def grant(b, want, now, *, stream=tb.MARKETING, lane=None, share=1.0, policy=POLICY):
    """One caller's acquire on the pure bucket: (new bucket, plan)."""
    tag = tb.lane_tag(stream, lane)
    left = tb.daily_left(b, policy, stream=stream)
    chosen = tb.plan(b, policy, want=min(want, left), now=now, stream=stream, tag=tag, rate_share=share)
    return tb.take(b, policy, chosen, now=now, tag=tag), chosen


def second_peaks(history, select=lambda g: True, span=1000):
    """The most sends within any (x - span, x] over the grants `select` picks, as SES's simulator counts them."""
    chosen = [g for g in history if select(g)]
    return max((sum(h.count for h in chosen if g.at - span < h.at <= g.at) for g in chosen), default=0)


# --- refill and cap ---------------------------------------------------------------------------------------------


def test_a_grant_is_capped_at_one_second_of_rate_even_after_a_long_idle():
    b, chosen = grant(bucket(rate=14), 50, now=5_000_000)
    assert (chosen.at, chosen.count) == (5_000_000, 14)
    assert b.grants == (tb.Grant(5_000_000, 14, "m"),) and b.granted == 14


def test_tokens_come_back_one_window_after_they_were_taken_not_before():
    b, _ = grant(bucket(rate=14), 14, now=0)
    _, later = grant(b, 14, now=500)
    assert (later.at, later.count) == (W, 14)  # reserved ahead: the caller sleeps until then
    _, on_time = grant(b, 14, now=W)
    assert (on_time.at, on_time.count) == (W, 14)


def test_each_grant_comes_back_on_its_own_time():
    b, _ = grant(bucket(rate=14), 10, now=0)
    b, _ = grant(b, 4, now=300)
    b, first = grant(b, 14, now=500)
    assert (first.at, first.count) == (W, 10)
    _, second = grant(b, 14, now=first.at)
    assert (second.at, second.count) == (300 + W, 4)


def test_a_plain_token_bucket_would_let_twice_the_rate_through_in_one_second_this_one_does_not():
    # A full bucket's burst at 0, then what a continuous refill would have at 990 ms.
    b, _ = grant(bucket(rate=14), 14, now=0)
    _, chosen = grant(b, 13, now=990)
    assert chosen.at >= 1000


def test_grants_at_the_same_time_in_the_same_lane_share_one_log_entry():
    b, _ = grant(bucket(rate=100), 30, now=7)
    b, _ = grant(b, 30, now=7)
    b, _ = grant(b, 30, now=7, stream=tb.TRANSACTIONAL)
    assert b.grants == (tb.Grant(7, 60, "m"), tb.Grant(7, 30, "t"))


def test_old_grants_are_dropped_from_the_log_once_no_window_can_hold_them():
    b, _ = grant(bucket(rate=14), 14, now=0)
    b, _ = grant(b, 14, now=W)
    assert [g.at for g in b.grants] == [W]


@pytest.mark.parametrize("rate", [1, 14, 50, 200, 1000])
def test_continuous_demand_uses_at_least_97_percent_of_the_rate(rate):
    """Three campaigns asking for batches of 50 in turn for 60 s: the grants' sum against rate x 60 s."""
    b, now, sent, campaign = bucket(rate=rate), 0, 0, 0
    while True:
        b, chosen = grant(b, 50, now=now, lane=f"c{campaign}")
        if chosen.at >= 60_000:
            break
        now, sent, campaign = chosen.at, sent + chosen.count, (campaign + 1) % 3
    assert sent / (rate * 60) >= 0.97


# --- shares and the reserve -------------------------------------------------------------------------------------


def test_a_lane_with_a_rate_share_gets_that_share_and_the_others_the_rest():
    b, a1 = grant(bucket(rate=14), 50, now=0, lane="a", share=0.5)
    assert a1.count == 7
    b, a2 = grant(b, 50, now=0, lane="a", share=0.5)
    assert (a2.at, a2.count) == (W, 7)  # its own share is used up until its window ends ...
    _, other = grant(b, 50, now=10, lane="b")
    assert (other.at, other.count) == (10, 7)  # ... but the rest of the rate is free now, before a's reservation


@pytest.mark.parametrize("share", [0.1, 0.3, 0.5, 0.75])
def test_a_lane_alone_gets_its_share_of_the_rate_in_the_long_run(share):
    b, now, sent = bucket(rate=14), 0, 0
    while True:
        b, chosen = grant(b, 50, now=now, lane="solo", share=share)
        if chosen.at >= 60_000:
            break
        now, sent = chosen.at, sent + chosen.count
    allowed = 14 * share * 60 * 1000 / W
    assert allowed * 0.97 <= sent <= allowed + 14


def test_a_share_below_one_send_per_window_still_sends_one_per_window():
    b, first = grant(bucket(rate=2), 5, now=0, lane="slow", share=0.1)
    _, second = grant(b, 5, now=0, lane="slow", share=0.1)
    assert (first.count, second.count, second.at) == (1, 1, W)


def test_marketing_never_uses_the_transactional_reserve():
    policy = tb.Policy(transactional_reserve=0.2)
    b, now, history = bucket(rate=10), 0, []
    for _ in range(30):
        b, chosen = grant(b, 50, now=now, lane="campaign", policy=policy)
        history.append(tb.Grant(chosen.at, chosen.count, "m"))
        now = chosen.at
    assert second_peaks(history, span=W) <= 8
    assert sum(g.count for g in history) >= 8 * (now / W) * 0.97
    # The reserve is there at once, however busy marketing is.
    _, urgent = grant(b, 50, now=now, stream=tb.TRANSACTIONAL, policy=policy)
    assert urgent.at == now and urgent.count == 2


def test_transactional_may_use_the_whole_rate_when_marketing_is_idle():
    policy = tb.Policy(transactional_reserve=0.2)
    _, chosen = grant(bucket(rate=10), 50, now=0, stream=tb.TRANSACTIONAL, policy=policy)
    assert chosen.count == 10


# --- SES's rule, whatever the callers do --------------------------------------------------------------------------

CALLERS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=700),  # ms since the previous caller
        st.integers(min_value=1, max_value=50),  # want
        st.sampled_from([(tb.MARKETING, None, 1.0), (tb.MARKETING, "a", 0.5), (tb.MARKETING, "b", 0.3),
                         (tb.TRANSACTIONAL, None, 1.0), (tb.TRANSACTIONAL, "t", 0.4)]),
    ),
    min_size=1, max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(callers=CALLERS, rate=st.sampled_from([1.0, 3.0, 14.0, 37.5, 100.0]),
       reserve=st.sampled_from([0.0, 0.1, 0.25]))
def test_no_one_second_window_ever_holds_more_than_the_rate(callers, rate, reserve):
    policy = tb.Policy(transactional_reserve=reserve)
    b, now, history = bucket(rate=rate), 0, []
    for gap, want, (stream, lane, share) in callers:
        now += gap
        b, chosen = grant(b, want, now=now, stream=stream, lane=lane, share=share, policy=policy)
        assert 1 <= chosen.count <= min(want, math.floor(rate)) and chosen.at >= now
        history.append(tb.Grant(chosen.at, chosen.count, tb.lane_tag(stream, lane)))
    assert second_peaks(history) <= rate
    if reserve:
        marketing = next(lim for lim in tb.limits(b.quota, policy, stream=tb.MARKETING, tag="m")
                         if lim.scope == "stream:m")
        assert marketing.count == max(1, math.floor(rate * (1 - reserve)))
        assert second_peaks(history, lambda g: g.stream == tb.MARKETING, span=marketing.window_ms) <= marketing.count
    for lane, share in (("a", 0.5), ("b", 0.3), ("t", 0.4)):
        tag = tb.lane_tag(tb.TRANSACTIONAL if lane == "t" else tb.MARKETING, lane)
        limit = next(lim for lim in tb.limits(b.quota, policy, stream=tb.MARKETING, tag=tag, rate_share=share)
                     if lim.scope == f"tag:{tag}")
        assert second_peaks(history, lambda g, tag=tag: g.tag == tag, span=limit.window_ms) <= limit.count


# --- the daily quota ------------------------------------------------------------------------------------------------


def test_daily_quota_left_counts_sent_and_granted_and_keeps_the_reserve_from_marketing():
    policy = tb.Policy(transactional_reserve=0.2)
    b = bucket(daily=150, sent=100, granted=20)
    assert tb.daily_left(b, policy, stream=tb.MARKETING) == 0  # 150 x 0.8 = 120, all used
    assert tb.daily_left(b, policy, stream=tb.TRANSACTIONAL) == 30
    assert tb.daily_left(bucket(daily=150, sent=200), policy, stream=tb.TRANSACTIONAL) == 0


def test_a_grant_never_takes_more_than_the_daily_quota_left():
    b, chosen = grant(bucket(rate=100, daily=1000, sent=990), 50, now=0)
    assert chosen.count == 10 and tb.daily_left(b, POLICY, stream=tb.MARKETING) == 0


def test_a_refresh_takes_the_account_figures_and_counts_the_grants_still_held():
    b, _ = grant(bucket(rate=14, sent=500), 14, now=0)
    b, _ = grant(b, 14, now=W)
    fresh = tb.refreshed(b, POLICY, now=W + 5, max_send_rate=20, max_24h_send=2000, sent_last_24h=514)
    assert fresh.quota == tb.Quota(20.0, 2000.0, 514.0 + 14, W + 5)  # the grant at W may not be in SES's figure yet
    assert fresh.granted == 0 and fresh.grants == (tb.Grant(W, 14, "m"),)


def test_the_quota_is_read_again_after_the_refresh_interval():
    policy = tb.Policy(refresh_ms=60_000)
    assert tb.needs_refresh(tb.Bucket(), policy, 0)
    assert not tb.needs_refresh(bucket(), policy, 59_999)
    assert tb.needs_refresh(bucket(), policy, 60_000)


# --- the log's form and the guards ---------------------------------------------------------------------------------


def test_the_log_round_trips_in_a_few_bytes_per_grant():
    grants = (tb.Grant(1_732_000_000_000, 50, "m"), tb.Grant(1_732_000_001_010, 14, tb.lane_tag("marketing", "x")),
              tb.Grant(1_732_000_001_010, 2, "t"))
    base, text = tb.encode_grants(grants)
    assert base == 1_732_000_000_000 and text.startswith("0:50:m,1010:14:m")
    assert len(text) < 16 * len(grants)
    assert tb.decode_grants(base, text) == grants
    assert tb.encode_grants(()) == (0, "") and tb.decode_grants(0, "") == ()


def test_lane_tags_are_stable_short_and_tell_the_stream():
    assert tb.lane_tag("marketing") == "m" and tb.lane_tag("transactional", "transactional") == "t"
    tag = tb.lane_tag("marketing", "spring-sale")
    assert tag == tb.lane_tag("marketing", "spring-sale") != tb.lane_tag("marketing", "autumn-sale")
    assert len(tag) == 7 and tag.startswith("m") and tb.lane_tag("transactional", "spring-sale").startswith("t")


@pytest.mark.parametrize("call, message", [
    (lambda: tb.lane_tag("bulk"), "stream"),
    (lambda: tb.plan(bucket(), POLICY, want=0, now=0, stream="marketing", tag="m"), "want"),
    (lambda: tb.plan(bucket(), POLICY, want=1, now=0, stream="marketing", tag="m", rate_share=0), "rate_share"),
    (lambda: tb.plan(tb.Bucket(), POLICY, want=1, now=0, stream="marketing", tag="m"), "quota"),
    (lambda: tb.Policy(window_ms=900), "window_ms"),
    (lambda: tb.Policy(transactional_reserve=1.0), "transactional_reserve"),
])
def test_bad_arguments_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()
