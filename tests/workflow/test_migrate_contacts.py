"""MigrateContactsStateMachine on the engine: a stack holding contacts of the one-list model (list_id on the
contact, an unsubscribe that suppressed) comes out with memberships, and nothing else of it changed."""

import hashlib
import json
import time
from collections import Counter

import pytest
from app.domain import lifecycle

from sesflow.engine.ses import feedback_record, simulator
from tests.conftest import ROOT
from tests.workflow.test_campaign import campaign, seed

LIST, OTHER = "newsletter", "customers"
UNSUBSCRIBED_AT = "2026-03-02T10:00:00.000Z"
ERASED = "erased:" + hashlib.sha256(b"gone@example.org").hexdigest()


def S(value):  # noqa: N802
    return {"S": value}


def old_items():
    """The one-list model's items, as its writers left them, by address (DynamoDB JSON)."""
    plain = {f"user{i:02d}@example.org": {"status": S("ACTIVE"), "first_name": S(f"User {i}")} for i in range(12)}
    return {
        **{a: {"address": S(a), "list_id": S(LIST), **v} for a, v in plain.items()},
        "probation@example.org": {
            "address": S("probation@example.org"), "list_id": S(LIST), "status": S("RECOVERY"),
            "strike_times": {"L": [S("2026-03-01T08:00:00.000Z")]}, "status_since": S("2026-03-02T08:00:00.000Z"),
            "version": {"N": "2"}, "status_cause": S(lifecycle.QUARANTINE_END), "episode": S("0100-old-bounce"),
            "status_reason": S("quarantine ended 2026-03-02T08:00:00.000Z: on probation"),
            "plan": S("pro"), "tags": {"SS": ["eu", "vip"]}, "score": {"N": "4.5"}},
        "complained@example.org": {
            "address": S("complained@example.org"), "list_id": S(LIST), "status": S("SUPPRESSED"),
            "strike_times": {"L": []}, "status_since": S("2026-02-01T00:00:00.000Z"), "version": {"N": "1"},
            "status_cause": S(lifecycle.COMPLAINT), "status_reason": S("complaint (abuse)"),
            "first_name": S("Cleo")},
        # What lifecycle.unsubscribe wrote for the old one-click link (app.recipients.transition_update).
        "unsubscribed@example.org": {
            "address": S("unsubscribed@example.org"), "list_id": S(LIST), "status": S("SUPPRESSED"),
            "strike_times": {"L": []}, "status_since": S(UNSUBSCRIBED_AT), "status_changed_at": S(UNSUBSCRIBED_AT),
            "version": {"N": "1"}, "status_cause": S(lifecycle.UNSUBSCRIBE),
            "status_reason": S(lifecycle.UNSUBSCRIBED_REASON), "status_event": S("one-click-5f2c"),
            "first_name": S("Una")},
        "customer@example.org": {"address": S("customer@example.org"), "list_id": S(OTHER), "status": S("ACTIVE"),
                                 "first_name": S("Cas")},
        # Its list_id names no list a campaign could send to: left alone, counted.
        "odd@example.org": {"address": S("odd@example.org"), "list_id": S("has space"), "status": S("ACTIVE")},
        # On the list and, since the update, unsubscribed from it through a membership: that one stays.
        "leaver@example.org": {"address": S("leaver@example.org"), "list_id": S(LIST), "status": S("ACTIVE")},
        # Items of this model: a contact, a suppression with no contact behind it, an erased contact's marker.
        "newbie@example.org": {"address": S("newbie@example.org"), "status": S("ACTIVE"),
                               "created_by": S("import:newsletter.csv"), "first_name": S("Nia")},
        "blocked@example.org": {"address": S("blocked@example.org"), "status": S("SUPPRESSED"),
                                "created_by": S("suppression-import")},
        ERASED: {"address": S(ERASED), "status": S("SUPPRESSED"), "erased_at": S("2026-01-01T00:00:00.000Z"),
                 "erased_reason": S("asked to be forgotten")},
    }


def put_membership(stack, list_id, address, state, source):
    stack.client("dynamodb").put_item(TableName=stack.outputs["MembershipsTableName"], Item={
        "list_id": S(list_id), "address": S(address), "state": S(state), "state_at": S("2026-03-05T00:00:00.000Z"),
        "state_source": S(source), "added_at": S("2026-03-04T00:00:00.000Z")})


def feed(stack, *records):
    for record in records:
        stack.client("sqs").send_message(QueueUrl=stack.outputs["FeedbackQueueUrl"], MessageBody=json.dumps(record))
    stack.deliver_queues()


def wait_for(check, what, timeout=30):
    """Poll (real time): quarantine episodes run on their own threads."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.02)


def table(stack, output, key):
    ddb, found, start = stack.client("dynamodb"), {}, None
    while True:
        page = ddb.scan(TableName=stack.outputs[output], **({"ExclusiveStartKey": start} if start else {}))
        found |= {tuple(item[k]["S"] for k in key): item for item in page["Items"]}
        start = page.get("LastEvaluatedKey")
        if not start:
            return found


def recipients(stack):
    return {k[0]: v for k, v in table(stack, "RecipientsTableName", ("address",)).items()}


def memberships(stack):
    return table(stack, "MembershipsTableName", ("list_id", "address"))


def events(stack):
    return table(stack, "EventsTableName", ("pk", "sk"))


@pytest.fixture
def old_stack(stack):
    """A stack with the one-list model's contacts: seeded as its writers left them, and two moved by real SES
    feedback through the stack (a quarantine with its episode waiting, a suppression past the strike limit)."""
    ddb = stack.client("dynamodb")
    for item in old_items().values():
        ddb.put_item(TableName=stack.outputs["RecipientsTableName"], Item=item)
    for address in ("resting@example.org", "bounced@example.org"):
        ddb.put_item(TableName=stack.outputs["RecipientsTableName"], Item={
            "address": S(address), "list_id": S(LIST), "status": S("ACTIVE"), "first_name": S(address[:4])})
    for address in ("unsubscribed@example.org", "user00@example.org"):
        ddb.put_item(TableName=stack.outputs["EventsTableName"], Item={
            "pk": S(f"RECIPIENT#{address}"), "sk": S("2026-03-02T10:00:00.000Z#one-click-5f2c"),
            "kind": S("unsubscribe"), "from_status": S("ACTIVE"), "to_status": S("SUPPRESSED"),
            "actor": S("one-click-unsubscribe"), "campaign_id": S("winter")})
    put_membership(stack, LIST, "newbie@example.org", "SUBSCRIBED", "import:newsletter.csv")
    put_membership(stack, LIST, "leaver@example.org", "UNSUBSCRIBED", "one-click:spring")
    now = stack.clock.now()
    feed(stack, feedback_record("soft_bounce", "resting@example.org", now, "0100-r1"),
         *[feedback_record("soft_bounce", "bounced@example.org", now, f"0100-b{i}") for i in range(3)])
    lifecycle_arn = stack.outputs["RecipientLifecycleStateMachineArn"]
    sfn = stack.client("stepfunctions")

    def settled():
        items = recipients(stack)
        running = sfn.list_executions(stateMachineArn=lifecycle_arn, statusFilter="RUNNING")["executions"]
        return ("episode_token" in items["resting@example.org"] and len(running) == 1
                and items["bounced@example.org"]["status"]["S"] == "SUPPRESSED")

    wait_for(settled, "settled: one episode waiting, the other ended")
    return stack


def without_migration_marks(item):
    return {k: v for k, v in item.items() if k not in ("list_id", "created_by")}


def test_migration_makes_memberships_and_keeps_every_status_strike_attribute_and_history_record(old_stack):
    stack = old_stack
    before_contacts, before_events = recipients(stack), events(stack)
    assert before_contacts["resting@example.org"]["status"]["S"] == "QUARANTINED"
    assert "quarantined_until" in before_contacts["resting@example.org"]
    assert len(before_contacts["bounced@example.org"]["strike_times"]["L"]) == 3

    result = stack.run("MigrateContactsStateMachine", {})

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    on_list = {a for a, i in before_contacts.items() if i.get("list_id") == S(LIST)}
    assert result.output == {
        "dry_run": False, "segments": 4, "scanned": len(before_contacts), "migrated": len(on_list) + 1,
        "unsubscribed": 1, "memberships_kept": 1, "already": 1, "erased": 1, "suppression_only": 1,
        "invalid_list_id": 1, "changed_meanwhile": 0}
    after = recipients(stack)
    assert set(after) == set(before_contacts)
    for address, item in before_contacts.items():
        if address == "odd@example.org" or "list_id" not in item:
            assert after[address] == item, f"{address} changed"
            continue
        assert "list_id" not in after[address], address
        assert without_migration_marks(after[address]) == without_migration_marks(item), f"{address} changed"
        assert after[address]["created_by"] == item.get("created_by", S("migration"))

    members = memberships(stack)
    states = {key: (m["state"]["S"], m["state_source"]["S"]) for key, m in members.items()}
    assert states == {
        **{(LIST, a): ("SUBSCRIBED", "migration") for a in on_list - {"unsubscribed@example.org",
                                                                       "leaver@example.org"}},
        (LIST, "unsubscribed@example.org"): ("UNSUBSCRIBED", "migration"),
        (LIST, "leaver@example.org"): ("UNSUBSCRIBED", "one-click:spring"),
        (LIST, "newbie@example.org"): ("SUBSCRIBED", "import:newsletter.csv"),
        (OTHER, "customer@example.org"): ("SUBSCRIBED", "migration"),
    }
    unsubscribed = members[(LIST, "unsubscribed@example.org")]
    assert (unsubscribed["state_at"]["S"], unsubscribed["state_reason"]["S"]) == (
        UNSUBSCRIBED_AT, lifecycle.UNSUBSCRIBED_REASON)
    assert members[(LIST, "leaver@example.org")]["added_at"] == S("2026-03-04T00:00:00.000Z")

    after_events = events(stack)
    assert {k: v for k, v in after_events.items() if k in before_events} == before_events
    added = {k: v for k, v in after_events.items() if k not in before_events}
    records = Counter((k[0].removeprefix("RECIPIENT#"), v["kind"]["S"], v["list_id"]["S"])
                      for k, v in added.items() if k[0].startswith("RECIPIENT#"))
    assert records == Counter({(a, "migrated", LIST): 1 for a in on_list} | {
        ("customer@example.org", "migrated", OTHER): 1})
    assert {k for k in added if not k[0].startswith("RECIPIENT#")} == {("LISTS", LIST), ("LISTS", OTHER)}


def test_a_campaign_on_the_list_then_sends_to_exactly_its_sendable_subscribed_contacts(old_stack):
    stack = old_stack
    assert stack.run("MigrateContactsStateMachine", {"segments": 3}).status == "SUCCEEDED"
    simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)
    seed(stack, {})  # the campaign's templates

    result = stack.run("CampaignStateMachine", campaign(audience={"lists": [LIST]}, holdout_percent=0))

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    sent = Counter(r for m in simulator().outbox for r in m.to)
    expected = {f"user{i:02d}@example.org" for i in range(12)} | {"probation@example.org", "newbie@example.org"}
    assert sent == Counter(dict.fromkeys(expected, 1))


def test_running_it_again_writes_nothing(old_stack):
    stack = old_stack
    assert stack.run("MigrateContactsStateMachine", {}).status == "SUCCEEDED"
    before = (recipients(stack), memberships(stack), events(stack))
    stack.meter.reset()

    again = stack.run("MigrateContactsStateMachine", {"segments": 2})

    assert again.status == "SUCCEEDED", (again.error, again.cause)
    assert (again.output["migrated"], again.output["already"]) == (0, len(before[0]) - 3)
    assert (recipients(stack), memberships(stack), events(stack)) == before
    assert sum(stack.meter.dynamodb_write_units.values()) == 0


def test_a_dry_run_counts_what_it_would_do_and_writes_nothing(old_stack):
    stack = old_stack
    before = (recipients(stack), memberships(stack), events(stack))

    result = stack.run("MigrateContactsStateMachine", {"dry_run": True, "segments": 1})

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert (result.output["dry_run"], result.output["migrated"], result.output["unsubscribed"]) == (True, 19, 1)
    assert (recipients(stack), memberships(stack), events(stack)) == before


def test_a_segment_is_read_over_as_many_calls_as_it_needs(old_stack, monkeypatch):
    import app.handlers.migrate_contacts as handler

    monkeypatch.setattr(handler, "PAGE_ITEMS", 2)
    monkeypatch.setattr(handler, "PAGES_PER_CALL", 2)
    stack = old_stack
    contacts = recipients(stack)

    result = stack.run("MigrateContactsStateMachine", {"segments": 1})

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.output["scanned"] == len(contacts)
    history = stack.history(result.arn)
    calls = sum(e["type"] == "TaskSucceeded" for e in history)
    assert calls == -(-len(contacts) // 4) or calls == -(-len(contacts) // 4) + 1  # the last page may be empty
    assert len(history) == 10 + 4 + 7 * calls
    assert not any("list_id" in i for a, i in recipients(stack).items() if a != "odd@example.org")


@pytest.mark.parametrize("payload", [{"segments": 0}, {"segments": 41}, {"segments": "4"}, {"segments": 2.5},
                                     {"dry_run": "yes"}, {"segment": 4}])
def test_an_input_it_does_not_take_is_refused_before_anything_is_read(stack, payload):
    result = stack.run("MigrateContactsStateMachine", payload)

    assert (result.status, result.error) == ("FAILED", "ContractError")
    assert "segments (a whole number from 1 to 40, default 4)" in result.cause
    assert not any(e["type"] == "TaskScheduled" for e in stack.history(result.arn))


def test_the_sample_event_is_a_call_the_function_answers(old_stack):
    stack = old_stack
    response = stack.client("lambda").invoke(
        FunctionName=stack.physical_id("MigrateContactsFunction"),
        Payload=(ROOT / "events" / "migrate_contacts" / "first_call.json").read_bytes())

    body = json.loads(response["Payload"].read())
    assert response.get("FunctionError") is None, body
    assert (body["segment"], body["total_segments"], body["dry_run"], body["done"]) == (0, 4, True, True)
    assert 0 < body["counts"]["scanned"] < len(recipients(stack))  # one segment of four: a share of the table
    assert set(memberships(stack)) == {(LIST, "newbie@example.org"), (LIST, "leaver@example.org")}  # dry run
