"""The recipient lifecycle policy and its transition functions, pure: each rule by example, then properties over
random event sequences (hypothesis), then the policy documents load_policy refuses."""

from datetime import UTC, datetime, timedelta

import pytest
from app.domain.feedback import HARD_BOUNCE_TYPES, FeedbackEvent
from app.domain.lifecycle import (
    ACTIVE,
    COMPLAINT,
    DELIVERY,
    HARD_BOUNCE,
    OPERATOR_REINSTATE,
    OPERATOR_SUPPRESS,
    PROBATION_END,
    QUARANTINE_END,
    QUARANTINED,
    RECOVERY,
    SOFT_BOUNCE,
    STATUSES,
    STRIKE_LIMIT,
    SUPPRESSED,
    UNSUBSCRIBE,
    Decision,
    Policy,
    RecipientState,
    decide,
    default_document,
    end_probation,
    end_quarantine,
    load_policy,
    operator_reinstate,
    operator_suppress,
    unsubscribe,
)
from hypothesis import given, settings
from hypothesis import strategies as st

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
POLICY = load_policy()

# The lifecycle as specified (issue 4): every (from, to, cause) a transition may have. Written out here, not
# imported, so the code is checked against the spec rather than against itself.
ALLOWED = frozenset({
    *((s, SUPPRESSED, c) for s in (ACTIVE, QUARANTINED, RECOVERY)
      for c in (HARD_BOUNCE, COMPLAINT, UNSUBSCRIBE, STRIKE_LIMIT, OPERATOR_SUPPRESS)),
    (ACTIVE, QUARANTINED, SOFT_BOUNCE),
    (RECOVERY, QUARANTINED, SOFT_BOUNCE),
    (QUARANTINED, QUARANTINED, SOFT_BOUNCE),  # in-flight mail bounced: a strike, the deadline stays
    (QUARANTINED, RECOVERY, QUARANTINE_END),
    (RECOVERY, ACTIVE, DELIVERY),
    (RECOVERY, ACTIVE, PROBATION_END),
    *((s, ACTIVE, OPERATOR_REINSTATE) for s in STATUSES),  # ACTIVE -> ACTIVE: an operator clears strikes
})

PERMANENT = ("General", "NoEmail", "Suppressed", "OnAccountSuppressionList")
TRANSIENT = ("General", "MailboxFull", "MessageTooLarge", "ContentRejected", "AttachmentRejected")
NO_CHANGE_KINDS = ("send", "reject", "rendering_failure", "delivery_delay", "open", "click")


def event(kind: str, bounce_type: str | None = None, bounce_subtype: str | None = None,
          complaint_type: str | None = None, unsubscribe_all: bool | None = None, n: int = 0) -> FeedbackEvent:
    detail = {} if unsubscribe_all is None else {"unsubscribeAll": unsubscribe_all}
    return FeedbackEvent(
        event_id=f"e{n}", kind=kind, recipient="jane@example.com", bounce_type=bounce_type,
        bounce_subtype=bounce_subtype, hard=HARD_BOUNCE_TYPES.get(bounce_type, False) if kind == "bounce" else None,
        complaint_type=complaint_type, message_id=f"m{n}", campaign_id="c", variant="a", timestamp=None,
        source="event_publishing", envelope="sns", detail=detail,
    )


def bounce(bounce_type: str | None, subtype: str | None = "General") -> FeedbackEvent:
    return event("bounce", bounce_type, subtype)


def state(status: str = ACTIVE, strikes: int = 0, **changes) -> RecipientState:
    if status == QUARANTINED:
        changes.setdefault("quarantined_until", T0 + DAY)
    changes.setdefault("status_since", T0 - DAY)
    times = tuple(T0 - timedelta(hours=i + 1) for i in range(strikes))
    return RecipientState(status=status, strike_times=times, version=7, **changes)


def policy(**fields) -> Policy:
    return load_policy({**default_document(), **fields})


# --- each rule, by example -----------------------------------------------------------------------------------

SUPPRESSING = [
    *((bounce("Permanent", s), HARD_BOUNCE, f"hard bounce (Permanent/{s})") for s in PERMANENT),
    (bounce("Permanent", "SomethingNew"), HARD_BOUNCE, "hard bounce (Permanent/SomethingNew)"),
    (bounce("Permanent", None), HARD_BOUNCE, "hard bounce (Permanent/no subtype)"),
    (event("complaint", complaint_type="abuse"), COMPLAINT, "complaint (abuse)"),
    (event("complaint", complaint_type="fraud"), COMPLAINT, "complaint (fraud)"),
    (event("complaint"), COMPLAINT, "complaint (no feedback type)"),
    (event("subscription", unsubscribe_all=True), UNSUBSCRIBE, "unsubscribed"),
]


@pytest.mark.parametrize("status", [ACTIVE, QUARANTINED, RECOVERY])
@pytest.mark.parametrize(("feedback", "cause", "reason"), SUPPRESSING)
def test_hard_bounce_complaint_and_unsubscribe_suppress_from_any_status(status, feedback, cause, reason):
    before = state(status, strikes=1)
    decision = decide(POLICY, before, feedback, T0)
    assert (decision.from_status, decision.to_status, decision.cause, decision.reason) == (
        status, SUPPRESSED, cause, reason)
    assert decision.state.quarantined_until is None and decision.deadline is None
    assert decision.state.strike_times == before.strike_times  # kept for the record
    assert decision.state.version == 8 and decision.state.status_since == T0


SOFT = [
    *(bounce("Transient", s) for s in TRANSIENT),
    bounce("Undetermined", "Undetermined"),
    bounce("Transient", "SomethingNew"),  # unknown subtype: falls back on the type
    bounce("Transient", None),
    bounce("Undetermined", None),
    bounce("SomeNewType", "General"),  # unknown type: soft, the reversible choice
    bounce(None, None),
]


@pytest.mark.parametrize("feedback", SOFT, ids=lambda e: f"{e.bounce_type}/{e.bounce_subtype}")
@pytest.mark.parametrize("status", [ACTIVE, RECOVERY])
def test_soft_bounce_quarantines_for_the_first_period(feedback, status):
    decision = decide(POLICY, state(status), feedback, T0)
    assert (decision.to_status, decision.cause, decision.state.strikes) == (QUARANTINED, SOFT_BOUNCE, 1)
    assert decision.deadline == decision.state.quarantined_until == T0 + DAY
    assert decision.reason.startswith("soft bounce (") and "strike 1 of 3, quarantined for 1 day" in decision.reason
    assert decision.starts_quarantine


@pytest.mark.parametrize(("strikes", "period"), [(0, DAY), (1, 3 * DAY)])
def test_quarantine_grows_with_strikes(strikes, period):
    decision = decide(POLICY, state(RECOVERY, strikes), bounce("Transient", "MailboxFull"), T0)
    assert decision.state.strikes == strikes + 1
    assert decision.deadline == T0 + period


@pytest.mark.parametrize("status", [ACTIVE, RECOVERY, QUARANTINED])
def test_a_strike_past_the_limit_suppresses(status):
    decision = decide(POLICY, state(status, strikes=2), bounce("Transient", "MailboxFull"), T0)
    assert (decision.to_status, decision.cause, decision.state.strikes) == (SUPPRESSED, STRIKE_LIMIT, 3)
    assert "strike 3 within 30 days reaches the strike limit of 3" in decision.reason


def test_strikes_older_than_the_window_no_longer_count():
    old = RecipientState(strike_times=(T0 - 31 * DAY, T0 - 30 * DAY, T0 - 29 * DAY))
    decision = decide(POLICY, old, bounce("Transient", "MailboxFull"), T0)
    assert decision.state.strike_times == (T0 - 29 * DAY, T0)  # exactly 30 days old is out
    assert decision.deadline == T0 + 3 * DAY


def test_soft_bounce_while_quarantined_counts_a_strike_and_keeps_the_deadline():
    before = state(QUARANTINED, strikes=1, quarantined_until=T0 + 5 * DAY)
    decision = decide(POLICY, before, bounce("Transient", "General"), T0)
    assert (decision.from_status, decision.to_status, decision.state.strikes) == (QUARANTINED, QUARANTINED, 2)
    assert decision.deadline == T0 + 5 * DAY and not decision.starts_quarantine
    assert decision.state.status_since == before.status_since  # the status did not change
    assert "while quarantined: strike 2 of 3, deadline unchanged" in decision.reason


@pytest.mark.parametrize(("decay", "strikes", "left"), [("one", 2, 1), ("one", 0, 0), ("all", 3, 0)])
def test_delivery_during_probation_activates_and_decays_strikes(decay, strikes, left):
    decision = decide(policy(strike_decay=decay), state(RECOVERY, strikes), event("delivery"), T0)
    assert (decision.to_status, decision.cause, decision.state.strikes) == (ACTIVE, DELIVERY, left)
    assert decision.reason == f"delivered during probation: strikes {strikes} -> {left}"
    if left:
        assert decision.state.strike_times[0] == state(RECOVERY, strikes).strike_times[strikes - left]  # oldest go


@pytest.mark.parametrize("status", [ACTIVE, QUARANTINED])
def test_delivery_outside_probation_changes_nothing(status):
    assert decide(POLICY, state(status, 1), event("delivery"), T0) is None


@pytest.mark.parametrize("complaint_type", ["not-spam", "NOT-SPAM", "Not-Spam"])
def test_not_spam_complaint_changes_nothing(complaint_type):
    assert decide(POLICY, state(), event("complaint", complaint_type=complaint_type), T0) is None


@pytest.mark.parametrize("unsubscribe_all", [False, None])
def test_subscription_without_unsubscribe_all_changes_nothing(unsubscribe_all):
    assert decide(POLICY, state(), event("subscription", unsubscribe_all=unsubscribe_all), T0) is None


@pytest.mark.parametrize("kind", [*NO_CHANGE_KINDS, "a_kind_ses_adds_later"])
@pytest.mark.parametrize("status", STATUSES)
def test_other_events_change_nothing(kind, status):
    assert decide(POLICY, state(status, 1), event(kind), T0) is None


@pytest.mark.parametrize("feedback", [*(e for e, _, _ in SUPPRESSING), *SOFT, event("delivery")])
def test_feedback_never_leaves_suppressed(feedback):
    assert decide(POLICY, state(SUPPRESSED, 2), feedback, T0) is None


def test_one_click_unsubscribe_suppresses():
    decision = unsubscribe(state(RECOVERY), T0)
    assert (decision.to_status, decision.cause, decision.reason) == (SUPPRESSED, UNSUBSCRIBE, "unsubscribed")
    assert unsubscribe(decision.state, T0) is None


def test_quarantine_ends_at_its_deadline():
    quarantined = state(QUARANTINED, 1, quarantined_until=T0 + DAY)
    assert end_quarantine(quarantined, T0 + DAY - timedelta(seconds=1)) is None
    decision = end_quarantine(quarantined, T0 + DAY)
    assert (decision.to_status, decision.cause, decision.state.quarantined_until) == (RECOVERY, QUARANTINE_END, None)
    assert decision.state.strikes == 1 and decision.state.status_since == T0 + DAY
    assert decision.reason.startswith("quarantine ended")
    for status in (ACTIVE, RECOVERY, SUPPRESSED):
        assert end_quarantine(state(status), T0 + 10 * DAY) is None


@pytest.mark.parametrize(("probation_end", "left", "what"), [("keep_strikes", 2, "2 strikes kept"),
                                                             ("decay", 1, "strikes 2 -> 1")])
def test_probation_without_an_outcome_ends_in_active(probation_end, left, what):
    chosen = policy(probation_end=probation_end)
    recovering = state(RECOVERY, 2, status_since=T0)
    assert end_probation(chosen, recovering, T0 + 14 * DAY - timedelta(seconds=1)) is None
    decision = end_probation(chosen, recovering, T0 + 14 * DAY)
    assert (decision.to_status, decision.cause, decision.state.strikes) == (ACTIVE, PROBATION_END, left)
    assert decision.reason == f"probation ended with no delivery or bounce within 14 days: {what}"
    for status in (ACTIVE, QUARANTINED, SUPPRESSED):
        assert end_probation(chosen, state(status), T0 + 100 * DAY) is None


@pytest.mark.parametrize("status", [SUPPRESSED, QUARANTINED, RECOVERY, ACTIVE])
def test_operator_reinstate_makes_active_with_no_strikes(status):
    decision = operator_reinstate(state(status, 2), "  confirmed by phone  ", T0)
    assert (decision.from_status, decision.to_status, decision.cause) == (status, ACTIVE, OPERATOR_REINSTATE)
    assert decision.state.strikes == 0 and decision.state.quarantined_until is None
    assert decision.reason == "operator reinstated: confirmed by phone"
    assert operator_reinstate(decision.state, "again", T0) is None  # ACTIVE with no strikes: nothing to do


@pytest.mark.parametrize("status", [ACTIVE, QUARANTINED, RECOVERY])
def test_operator_suppress(status):
    decision = operator_suppress(state(status, 1), "asked by email", T0)
    assert (decision.to_status, decision.cause, decision.reason) == (
        SUPPRESSED, OPERATOR_SUPPRESS, "operator suppressed: asked by email")
    assert operator_suppress(decision.state, "again", T0) is None


@pytest.mark.parametrize("action", [operator_reinstate, operator_suppress])
@pytest.mark.parametrize("reason", ["", "   ", None])
def test_operator_actions_need_a_reason(action, reason):
    with pytest.raises(ValueError, match="reason"):
        action(state(SUPPRESSED), reason, T0)


def test_times_without_a_zone_are_refused():
    with pytest.raises(ValueError, match="now: must be a datetime with a time zone"):
        decide(POLICY, state(), bounce("Transient"), datetime(2026, 11, 22, 9, 0))
    with pytest.raises(ValueError, match="strike_times"):
        RecipientState(strike_times=(datetime(2026, 1, 1),))


@pytest.mark.parametrize(("fields", "message"), [
    ({"status": "PAUSED"}, "status: 'PAUSED' is not one of"),
    ({"status": QUARANTINED}, "quarantined_until: set exactly when QUARANTINED"),
    ({"status": ACTIVE, "quarantined_until": T0}, "quarantined_until: set exactly when QUARANTINED"),
    ({"version": -1}, "version: must be an integer"),
])
def test_inconsistent_state_is_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        RecipientState(**fields)


def test_state_round_trips_through_a_dict_and_defaults_missing_fields():
    before = state(QUARANTINED, 2)
    assert RecipientState.from_dict(before.to_dict()) == before
    assert RecipientState.from_dict({"status": "RECOVERY"}) == RecipientState(status=RECOVERY)


def test_a_whole_episode_with_the_default_policy():
    """1 day, RECOVERY, delivery, then bounces that rest 1 and 3 days and a 3rd that suppresses."""
    s, now, seen = RecipientState(), T0, []

    def step(decision: Decision | None) -> None:
        nonlocal s
        assert decision is not None
        seen.append((decision.to_status, decision.state.strikes))
        s = decision.state

    step(decide(POLICY, s, bounce("Transient", "MailboxFull"), now))
    now += DAY
    step(end_quarantine(s, now))
    step(decide(POLICY, s, event("delivery"), now))
    for rest in (1, 3):
        step(decide(POLICY, s, bounce("Transient", "MailboxFull"), now))
        assert s.quarantined_until == now + rest * DAY
        now = s.quarantined_until
        step(end_quarantine(s, now))
    step(decide(POLICY, s, bounce("Transient", "MailboxFull"), now))
    assert seen == [(QUARANTINED, 1), (RECOVERY, 1), (ACTIVE, 0), (QUARANTINED, 1), (RECOVERY, 1),
                    (QUARANTINED, 2), (RECOVERY, 2), (SUPPRESSED, 3)]
    assert s.version == len(seen)


# --- properties over random event sequences --------------------------------------------------------------------

# Weighted towards what keeps a recipient moving (soft bounces, deliveries), so sequences reach deep states.
BOUNCE_TYPES = st.sampled_from(["Transient"] * 4 + ["Undetermined", "Permanent", "NewType", None])
SUBTYPES = st.sampled_from([*PERMANENT, *TRANSIENT, "Undetermined", "NewSubtype", None])
COMPLAINT_TYPES = st.sampled_from([None, "not-spam", "NOT-SPAM", "abuse", "fraud", "virus", "other"])
KINDS = st.sampled_from(["bounce"] * 6 + ["delivery"] * 4 + ["complaint", "subscription", *NO_CHANGE_KINDS, "new_kind"])
# Which causes each action may produce: anything else (or a cause from the wrong action) is a bug.
CAUSES = {
    "bounce": {HARD_BOUNCE, SOFT_BOUNCE, STRIKE_LIMIT},
    "complaint": {COMPLAINT},
    "subscription": {UNSUBSCRIBE},
    "delivery": {DELIVERY},
    "end_quarantine": {QUARANTINE_END},
    "end_probation": {PROBATION_END},
    "reinstate": {OPERATOR_REINSTATE},
    "suppress": {OPERATOR_SUPPRESS},
}


@st.composite
def feedback_events(draw) -> FeedbackEvent:
    kind = draw(KINDS)
    if kind == "bounce":
        return event(kind, draw(BOUNCE_TYPES), draw(SUBTYPES))
    if kind == "complaint":
        return event(kind, complaint_type=draw(COMPLAINT_TYPES))
    if kind == "subscription":
        return event(kind, unsubscribe_all=draw(st.sampled_from([True, False, None])))
    return event(kind)


@st.composite
def actions(draw):
    which = draw(st.sampled_from(["event"] * 10 + ["end_quarantine"] * 4 + ["end_probation"] * 2
                                 + ["reinstate"] * 2 + ["suppress"]))
    if which == "event":
        return ("event", draw(feedback_events()))
    if which in ("reinstate", "suppress"):
        return (which, draw(st.sampled_from(["ticket 42", "confirmed address", "asked to stop"])))
    return (which, draw(st.booleans()))  # True: the timer fires at its deadline, as the workflow's Wait does


GAPS = st.one_of(st.integers(0, 3_600), st.integers(0, 4 * 86_400), st.integers(0, 20 * 86_400))


@st.composite
def policies(draw) -> Policy:
    limit = draw(st.integers(2, 5))
    periods = sorted(draw(st.lists(st.integers(60, 30 * 86_400), min_size=1, max_size=limit - 1)))
    return policy(
        strike_limit=limit,
        quarantine_seconds=periods,
        strike_window_seconds=draw(st.integers(3_600, 90 * 86_400)),
        strike_decay=draw(st.sampled_from(["one", "all"])),
        probation_seconds=draw(st.integers(3_600, 30 * 86_400)),
        probation_end=draw(st.sampled_from(["keep_strikes", "decay"])),
        hard_bounce_types=draw(st.sampled_from([["Permanent"], [], ["Permanent", "Undetermined"]])),
    )


@st.composite
def start_states(draw, chosen: Policy) -> RecipientState:
    """Any state a recipient can be in: under strike_limit strikes unless SUPPRESSED, each in the window."""
    status = draw(st.sampled_from(STATUSES))
    most = chosen.strike_limit - 1 + (1 if status == SUPPRESSED else 0)
    ages = draw(st.lists(st.integers(0, chosen.strike_window_seconds - 1), max_size=most))
    until = T0 + timedelta(seconds=draw(st.integers(0, 7 * 86_400))) if status == QUARANTINED else None
    return RecipientState(status=status, strike_times=tuple(T0 - timedelta(seconds=a) for a in ages),
                          quarantined_until=until, status_since=T0, version=draw(st.integers(0, 100)))


def apply(chosen: Policy, s: RecipientState, action: tuple, now: datetime) -> Decision | None:
    name = action[0]
    if name == "event":
        return decide(chosen, s, action[1], now)
    if name == "end_quarantine":
        return end_quarantine(s, now)
    if name == "end_probation":
        return end_probation(chosen, s, now)
    if name == "reinstate":
        return operator_reinstate(s, action[1], now)
    return operator_suppress(s, action[1], now)


def run(chosen: Policy, steps: list, start: RecipientState | None = None) -> list[tuple[str, Decision]]:
    """Apply the steps, checking every transition against the spec; returns (action, decision) for each one."""
    s, now, transitions = start or RecipientState(status_since=T0), T0, []
    for gap, action in steps:
        now += timedelta(seconds=gap)
        if action[0] == "end_quarantine" and action[1] and s.quarantined_until:
            now = max(now, s.quarantined_until)
        if action[0] == "end_probation" and action[1] and s.status == RECOVERY:
            now = max(now, s.status_since + timedelta(seconds=chosen.probation_seconds))
        decision = apply(chosen, s, action, now)
        if decision is None:
            continue
        name = action[1].kind if action[0] == "event" else action[0]
        new = decision.state
        assert decision.from_status == s.status and decision.to_status == new.status
        assert (decision.from_status, decision.to_status, decision.cause) in ALLOWED
        assert decision.cause in CAUSES.get(name, set()), (name, decision)
        if s.status == SUPPRESSED:
            assert name == "reinstate"
        assert new.version == s.version + 1
        assert decision.reason.strip()
        assert new.strikes < chosen.strike_limit or new.status == SUPPRESSED
        if new.status == QUARANTINED:
            started = decision.starts_quarantine
            expected = now + chosen.quarantine_period(new.strikes) if started else s.quarantined_until
            assert decision.deadline == new.quarantined_until == expected
        else:
            assert decision.deadline is None and new.quarantined_until is None
        transitions.append((name, decision))
        s = new
    assert RecipientState.from_dict(s.to_dict()) == s
    return transitions


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(GAPS, actions()), min_size=5, max_size=60))
def test_random_sequences_follow_the_default_policy(steps):
    run(POLICY, steps)


@settings(max_examples=300, deadline=None)
@given(st.data(), policies(), st.lists(st.tuples(GAPS, actions()), min_size=5, max_size=60))
def test_random_sequences_from_any_state_follow_any_valid_policy(data, chosen, steps):
    run(chosen, steps, data.draw(start_states(chosen)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2 * 86_400), st.sampled_from(TRANSIENT)), min_size=1, max_size=30))
def test_soft_bounces_alone_suppress_only_past_the_limit_within_the_window(bounces):
    """Each soft bounce arrives whatever the status (timers run too); suppression needs limit live strikes."""
    s, now = RecipientState(), T0
    for gap, subtype in bounces:
        now += timedelta(seconds=gap)
        for decision in (end_quarantine(s, now), end_probation(POLICY, s, now)):
            s = decision.state if decision else s
        live = [t for t in s.strike_times if t > now - timedelta(seconds=POLICY.strike_window_seconds)]
        decision = decide(POLICY, s, bounce("Transient", subtype), now)
        if s.status == SUPPRESSED:
            assert decision is None
            continue
        assert (decision.to_status == SUPPRESSED) == (len(live) + 1 >= POLICY.strike_limit)
        s = decision.state


@given(BOUNCE_TYPES, SUBTYPES)
def test_default_policy_classifies_bounces_as_the_parser_does(bounce_type, subtype):
    assert POLICY.is_hard(bounce_type, subtype) == HARD_BOUNCE_TYPES.get(bounce_type, False)


# --- the policy document ---------------------------------------------------------------------------------------


def test_default_policy_is_the_shipped_document():
    assert load_policy(default_document()) == POLICY
    assert load_policy(POLICY.to_dict()) == POLICY
    assert POLICY.quarantine_seconds == (86_400, 259_200) and POLICY.strike_limit == 3
    assert [POLICY.quarantine_period(n) for n in (1, 2, 3)] == [DAY, 3 * DAY, 3 * DAY]


def test_a_policy_can_move_a_subtype_between_classes():
    chosen = policy(hard_bounces={"Permanent": ["General", "NoEmail"]},
                    soft_bounces={"Permanent": ["Suppressed"], "Transient": ["General"]})
    assert chosen.is_hard("Permanent", "NoEmail") and not chosen.is_hard("Permanent", "Suppressed")
    assert chosen.is_hard("Permanent", "OnAccountSuppressionList")  # unlisted: the type decides


BAD_DOCUMENTS = [
    ({"strike_limt": 3}, "strike_limt: not a policy field"),
    ({"strike_limit": 0}, "strike_limit: must be an integer of at least 2, got 0"),
    ({"strike_limit": True}, "strike_limit: must be an integer of at least 2, got True"),
    ({"strike_limit": "3"}, "strike_limit: must be an integer of at least 2, got '3'"),
    ({"quarantine_seconds": []}, "quarantine_seconds: must be a non-empty list of whole seconds"),
    ({"quarantine_seconds": [86400, 0]}, "quarantine_seconds: must be a non-empty list of whole seconds"),
    ({"quarantine_seconds": [1.5]}, "quarantine_seconds: must be a non-empty list of whole seconds"),
    ({"quarantine_seconds": "86400"}, "quarantine_seconds: must be a non-empty list of whole seconds"),
    ({"quarantine_seconds": [259200, 86400]}, "quarantine_seconds: must not decrease"),
    ({"quarantine_seconds": [1, 2, 3]}, "quarantine_seconds: 3 periods, but strike_limit 3 allows only 2"),
    ({"strike_window_seconds": 0}, "strike_window_seconds: must be an integer of at least 1"),
    ({"probation_seconds": -5}, "probation_seconds: must be an integer of at least 1"),
    ({"probation_seconds": 365 * 86_400}, "probation_seconds: the longest quarantine plus probation"),
    ({"strike_decay": "half"}, "strike_decay: must be one of one, all, got 'half'"),
    ({"probation_end": "SUPPRESSED"}, "probation_end: must be one of keep_strikes, decay, got 'SUPPRESSED'"),
    ({"hard_bounces": ["Permanent"]}, "hard_bounces: must be an object of bounceType -> list of bounceSubType"),
    ({"hard_bounces": {"Permanent": "General"}}, "hard_bounces.Permanent: must be a list of non-empty strings"),
    ({"soft_bounces": {"": ["General"]}}, "soft_bounces: a bounce type must be a non-empty string"),
    ({"soft_bounces": {"Permanent": ["General"]}}, "soft_bounces.Permanent: 'General' is also in hard_bounces"),
    ({"hard_bounce_types": "Permanent"}, "hard_bounce_types: must be a list of non-empty strings"),
    ({"complaint_types_not_suppressed": [""]}, "complaint_types_not_suppressed: must be a list of non-empty"),
]


@pytest.mark.parametrize(("change", "message"), BAD_DOCUMENTS, ids=[m.split(":")[0] for _, m in BAD_DOCUMENTS])
def test_bad_policy_document_is_refused_naming_the_field(change, message):
    with pytest.raises(ValueError) as raised:
        load_policy({**default_document(), **change})
    assert message in str(raised.value)
    assert str(raised.value).startswith("lifecycle policy: ")


@pytest.mark.parametrize("field", ["strike_limit", "quarantine_seconds", "probation_end", "hard_bounces"])
def test_every_field_is_required(field):
    document = default_document()
    del document[field]
    with pytest.raises(ValueError, match=f"{field}: required"):
        load_policy(document)


def test_every_bad_field_is_reported_at_once_and_a_bad_limit_reports_only_itself():
    with pytest.raises(ValueError) as raised:
        load_policy({**default_document(), "strike_limit": -1, "strike_decay": None, "probation_seconds": "14d"})
    text = str(raised.value)
    assert all(f"{name}:" in text for name in ("strike_limit", "strike_decay", "probation_seconds"))
    assert "quarantine_seconds" not in text


def test_a_policy_document_must_be_an_object():
    with pytest.raises(ValueError, match="lifecycle policy: must be a JSON object"):
        load_policy([])  # type: ignore[arg-type]
