"""Send windows in each recipient's local time, on the engine's virtual clock: every email goes out inside its
recipient's window (its own zone, or the campaign's for a contact without a valid one), each recipient exactly
once; the waits are in the campaign's Standard execution, a few events per zone whatever the audience; a window
that closes mid-send goes on at the next opening; "at 09:00" delivers each zone at its own 09:00."""

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.domain.campaign import TEST, cohort, parse_campaign
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from sesflow.engine.ses import simulator
from sesflow.engine.stack import LocalStack
from tests.conftest import ROOT, SENDER_DOMAIN
from tests.contacts import contact_items
from tests.workflow.test_campaign import seed
from tests.workflow.test_campaign_scale import powertools_metrics  # noqa: F401

LIST = "world"
CAMPAIGN_ZONE = "Europe/Paris"
# A contact's zone attribute -> the zone it is sent in
ZONES = {"America/New_York": "America/New_York", "Europe/Paris": "Europe/Paris", "Asia/Tokyo": "Asia/Tokyo",
         None: CAMPAIGN_ZONE, "Mars/Olympus": CAMPAIGN_ZONE}
WEEKDAYS = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00",
            "time_zone": CAMPAIGN_ZONE}
MONDAY_5AM_UTC = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)  # Tokyo 14:00 (open), Paris 06:00, New York 00:00


def up(start: datetime) -> LocalStack:
    return LocalStack(template_path=ROOT / "template.yaml", ses_identities=(SENDER_DOMAIN,), start_time=start)


def add_world(stack, count: int, zones=tuple(ZONES)) -> dict[str, str]:
    """`count` ACTIVE contacts on LIST, spread over `zones` (attribute values): address -> the zone it is sent in."""
    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][stack.region]
    sent_in = {}
    for i in range(count):
        value = zones[i % len(zones)]
        address = f"r{i:05d}@example.org"
        contact, memberships = contact_items(address, [LIST], attributes={"time_zone": value} if value else None)
        backend.put_item(stack.outputs["RecipientsTableName"], contact)
        for item in memberships:
            backend.put_item(stack.outputs["MembershipsTableName"], item)
        sent_in[address] = ZONES[value]
    return sent_in


def campaign(campaign_id: str, window: dict, **changes) -> dict:
    return {"id": campaign_id, "sender": "news@example.com", "audience": {"lists": [LIST]},
            "variants": [{"name": "a", "weight": 50, "template": "spring-a"},
                         {"name": "b", "weight": 50, "template": "spring-b"}],
            "send_window": window, **changes}


def completed(result) -> None:
    assert (result.status, (result.output or {}).get("status")) == ("SUCCEEDED", "COMPLETED"), (result.error,
                                                                                                result.cause)


def local_sends(sent_in: dict[str, str]) -> dict[str, list[datetime]]:
    """Each recipient's emails' send times in its own zone's wall clock."""
    out: dict[str, list[datetime]] = {}
    for message in simulator().outbox:
        for address in message.to:
            out.setdefault(address, []).append(message.sent_at.astimezone(ZoneInfo(sent_in[address])))
    return out


def in_weekday_hours(moment: datetime) -> bool:
    return moment.weekday() < 5 and time(9) <= moment.time() < time(18)


def entered(stack, arn: str) -> Counter:
    return Counter(e["stateEnteredEventDetails"]["name"] for e in stack.history(arn) if "stateEnteredEventDetails" in e)


def run_world(count: int, definition_id: str = "world") -> tuple[dict, dict, object, Counter]:
    with up(MONDAY_5AM_UTC) as stack:
        simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)
        seed(stack, {})
        sent_in = add_world(stack, count)
        result = stack.run("CampaignStateMachine", campaign(definition_id, WEEKDAYS), timeout=600, poll=0.2)
        completed(result)
        return sent_in, local_sends(sent_in), result, entered(stack, result.arn)


def check_world(count: int, definition_id: str):
    """Three zones and the contacts without a valid one: each recipient once, inside its own zone's window; the
    zones in the order their windows open. The parent's history and the states it entered."""
    sent_in, sends, result, states = run_world(count, definition_id)

    assert set(sends) == set(sent_in)
    assert {len(times) for times in sends.values()} == {1}, "someone got the campaign twice"
    outside = {a: t[0].isoformat() for a, t in sends.items() if not in_weekday_hours(t[0])}
    assert not outside, f"sent outside the recipient's window: {list(outside.items())[:5]}"
    first = {zone: min(t[0] for a, t in sends.items() if sent_in[a] == zone) for zone in set(sent_in.values())}
    # Tokyo at once (its window is open at the start), Paris at its 09:00, New York at its 09:00, all on Monday
    assert first["Asia/Tokyo"].astimezone(UTC) - MONDAY_5AM_UTC < timedelta(minutes=5)
    assert first["Europe/Paris"].replace(tzinfo=None) - datetime(2026, 12, 7, 9) < timedelta(minutes=5)
    assert first["America/New_York"].replace(tzinfo=None) - datetime(2026, 12, 7, 9) < timedelta(minutes=5)
    # The zones waited in the parent: each closed zone parked once, then one Wait for each
    assert states["ParkZone"] == 2 and states["WaitForZone"] == 2 and states["WaitForDeferral"] == 0
    return result, states


def test_every_recipient_gets_one_email_inside_its_own_zones_window_and_the_history_does_not_grow():
    """The same three zones with 500 and 2,000 recipients: the same parent history, event for event."""
    small, small_states = check_world(500, "small")
    large, large_states = check_world(2_000, "large")
    assert small.history_events == large.history_events, (small.history_events, large.history_events)
    assert small_states == large_states


def test_a_window_that_closes_mid_send_goes_on_at_the_next_opening():
    """Friday 17:56 in Paris, one email a second: four minutes' worth go on Friday, the rest on Monday from 09:00,
    none after 18:00 on Friday or at the weekend."""
    friday = datetime(2026, 12, 4, 16, 56, tzinfo=UTC)
    with up(friday) as stack:
        simulator().configure(enforce_rate=True, max_send_rate=1, max_24h_send=1_000_000)
        seed(stack, {})
        sent_in = add_world(stack, 400, zones=(None,))
        result = stack.run("CampaignStateMachine", campaign("late", WEEKDAYS), timeout=600, poll=0.2)
        completed(result)
        states = entered(stack, result.arn)

    sends = local_sends(sent_in)
    assert set(sends) == set(sent_in) and {len(t) for t in sends.values()} == {1}
    times = sorted(t[0] for t in sends.values())
    assert all(in_weekday_hours(t) for t in times), [t.isoformat() for t in times if not in_weekday_hours(t)][:5]
    on_friday = [t for t in times if t.weekday() == 4]
    on_monday = [t for t in times if t.weekday() == 0]
    assert 100 <= len(on_friday) <= 250 and len(on_friday) + len(on_monday) == 400
    assert on_monday[0].replace(tzinfo=None) - datetime(2026, 12, 7, 9) < timedelta(seconds=5)
    assert states["WaitForDeferral"] >= 1  # one zone: the parent waits for its next opening


def test_at_nine_local_delivers_each_zone_at_its_own_nine():
    """Started Monday 12:00 UTC with "at 09:00": New York at 09:00 Monday, Paris and Tokyo at 09:00 Tuesday."""
    noon = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    with up(noon) as stack:
        simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)
        seed(stack, {})
        sent_in = add_world(stack, 300)
        result = stack.run("CampaignStateMachine", campaign("nine", {"at": "09:00", "time_zone": CAMPAIGN_ZONE}),
                           timeout=600, poll=0.2)
        completed(result)

    sends = local_sends(sent_in)
    assert set(sends) == set(sent_in) and {len(t) for t in sends.values()} == {1}
    expected_day = {"America/New_York": 7, "Europe/Paris": 8, "Asia/Tokyo": 8}
    for address, (moment,) in sends.items():
        nine = datetime(2026, 12, expected_day[sent_in[address]], 9)
        assert timedelta(0) <= moment.replace(tzinfo=None) - nine < timedelta(minutes=2), (address, moment)


def test_test_then_winner_sends_the_test_cohort_in_its_windows_then_the_remainder_in_its_windows():
    """The test cohort in the zones' Monday windows, then the four-hour evaluation window, then the remainder (the
    control: no winner on so few sends) each zone in its next window: New York at once (18:00 UTC is 13:00 there),
    Tokyo and Paris at their 09:00 on Tuesday. Each recipient once."""
    ab = {"mode": "test_then_winner", "test_percent": 40, "evaluation_seconds": 14_400, "min_sample_per_variant": 10}
    definition = campaign("ab", WEEKDAYS, ab=ab)
    with up(MONDAY_5AM_UTC) as stack:
        simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)
        seed(stack, {})
        sent_in = add_world(stack, 300)
        result = stack.run("CampaignStateMachine", definition, timeout=600, poll=0.2)
        completed(result)

    sends = local_sends(sent_in)
    assert set(sends) == set(sent_in) and {len(t) for t in sends.values()} == {1}
    assert all(in_weekday_hours(t[0]) for t in sends.values())
    parsed = parse_campaign(definition)
    in_test = {a for a in sent_in if cohort(parsed, a) == TEST}
    assert result.output["decision"]["remainder"] == ["a"]
    variant = {m.to[0]: m.tags["variant"] for m in simulator().outbox}
    assert {variant[a] for a in sent_in if a not in in_test} == {"a"}
    decided = max(sends[a][0] for a in in_test).astimezone(UTC) + timedelta(seconds=14_400)
    early = [a for a in sent_in if a not in in_test and sends[a][0] < decided]
    assert not early, f"{len(early)} of the remainder sent before the decision at {decided}"
    first = {zone: min(sends[a][0] for a in sent_in if a not in in_test and sent_in[a] == zone)
             for zone in set(sent_in.values())}
    assert first["America/New_York"].astimezone(UTC) - decided < timedelta(minutes=5)
    for zone in ("Asia/Tokyo", "Europe/Paris"):
        assert first[zone].replace(tzinfo=None) - datetime(2026, 12, 8, 9) < timedelta(minutes=5), zone
