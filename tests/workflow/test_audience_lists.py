"""A campaign on several lists on the engine: one email per contact however many of its lists it is on, none to a
member of an exclude list, and the snapshot's count of every member it left out, by reason (docs/contacts.md)."""

import json
from collections import Counter

from sesflow.engine.ses import simulator
from tests.contacts import UNSUBSCRIBED, add_contact

LISTS = ("news", "offers")
EXCLUDE = "staff"


def campaign(**changes):
    return {
        "id": "two-lists",
        "sender": "news@example.com",
        "audience": {"lists": list(LISTS), "exclude_lists": [EXCLUDE], "filters": {"attributes": {"plan": "pro"}}},
        "variants": [{"name": "a", "subject": "Hello", "text": "Hi"}],
        **changes,
    }


def seed_two_lists(stack) -> dict[str, str]:
    """The contacts of the campaign's lists, and for each who is sent to ("sent") or why it is left out."""
    simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)  # a production account: not about pacing
    pro = {"plan": "pro"}
    expected = {}

    def add(address, lists, why, **options):
        add_contact(stack, address, lists, attributes=options.pop("attributes", pro), **options)
        expected[address] = why

    for i in range(30):  # on both lists
        add(f"both{i:02d}@example.org", LISTS, "sent")
    for i in range(10):
        add(f"news{i:02d}@example.org", ["news"], "sent")
        add(f"offers{i:02d}@example.org", ["offers"], "sent")
    for i in range(4):  # left one list, still subscribed on the other
        add(f"moved{i}@example.org", {"news": UNSUBSCRIBED, "offers": "SUBSCRIBED"}, "sent")
    for i in range(3):  # left every list of the campaign it is on
        add(f"left{i}@example.org", {"news": UNSUBSCRIBED, "offers": UNSUBSCRIBED}, "unsubscribed")
    add("left.offers@example.org", ["offers"], "unsubscribed", state=UNSUBSCRIBED)
    for i in range(5):  # on the campaign's lists and on the exclude list (in any state there)
        add(f"staff{i}@example.org", [*LISTS, EXCLUDE], "excluded")
    add("former.staff@example.org", {"news": "SUBSCRIBED", EXCLUDE: UNSUBSCRIBED}, "excluded")
    add_contact(stack, "only.staff@example.org", [EXCLUDE], attributes=pro)  # not a member: not counted
    for i in range(2):
        add(f"gone{i}@example.org", LISTS, "suppressed", status="SUPPRESSED")
    for i in range(3):
        add(f"resting{i}@example.org", ["news"], "quarantined", status="QUARANTINED")
    add("probation@example.org", ["offers"], "sent", status="RECOVERY")
    for i in range(6):
        add(f"free{i}@example.org", LISTS, "filtered_out", attributes={"plan": "free"})
    add("unknown.plan@example.org", ["news"], "filtered_out", attributes={})
    add("ses.suppressed@example.org", ["offers"], "ses_suppressed")
    stack.client("sesv2").put_suppressed_destination(EmailAddress="ses.suppressed@example.org", Reason="BOUNCE")
    # a membership whose contact item is gone
    stack.client("dynamodb").put_item(TableName=stack.outputs["MembershipsTableName"], Item={
        "list_id": {"S": "news"}, "address": {"S": "no.contact@example.org"}, "state": {"S": "SUBSCRIBED"}})
    expected["no.contact@example.org"] = "no_contact"
    return expected


def snapshot(stack, campaign_id: str) -> dict:
    """The snapshot's result, as the campaign recorded it on its control item."""
    item = stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"],
                                             Key={"campaign_id": {"S": campaign_id}})["Item"]
    return json.loads(item["audience"]["S"])


def test_a_contact_on_several_lists_gets_one_email_and_each_member_left_out_is_counted_by_its_reason(stack):
    expected = seed_two_lists(stack)

    result = stack.run("CampaignStateMachine", campaign())

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    sent = Counter(r for m in simulator().outbox for r in m.to)
    assert set(sent.values()) == {1}, "someone got the campaign twice"
    assert set(sent) == {a for a, why in expected.items() if why == "sent"}
    assert {a for a in sent if a.startswith("both")} == {f"both{i:02d}@example.org" for i in range(30)}
    assert "only.staff@example.org" not in sent
    audience = snapshot(stack, "two-lists")
    assert audience["left_out"] == dict(sorted(Counter(why for why in expected.values() if why != "sent").items()))
    assert audience["left_out"] == {"excluded": 6, "filtered_out": 7, "no_contact": 1, "quarantined": 3,
                                    "ses_suppressed": 1, "suppressed": 2, "unsubscribed": 4}
    # the members' lifecycle states, each contact once, the excluded ones not among them
    assert audience["states"] == {"ACTIVE": 30 + 20 + 4 + 4 + 7 + 1, "QUARANTINED": 3, "RECOVERY": 1,
                                  "SUPPRESSED": 2}
    assert result.output["sent"] == audience["recipients"] == len(sent)


def test_a_member_of_an_exclude_list_gets_nothing_even_from_a_campaign_on_its_own_list(stack):
    seed_two_lists(stack)

    result = stack.run("CampaignStateMachine", campaign(
        id="news-only", audience={"lists": ["news"], "exclude_lists": [EXCLUDE]}))

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    sent = {r for m in simulator().outbox for r in m.to}
    assert sent and not {a for a in sent if a.startswith(("staff", "former.staff"))}
    assert {a for a in sent if a.startswith("moved")} == set()  # UNSUBSCRIBED on news, the only list here
    assert snapshot(stack, "news-only")["left_out"]["excluded"] == 6
