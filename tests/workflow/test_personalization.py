"""Per-recipient template data on the engine: each message renders with its recipient's own values, or the
campaign's defaults where the recipient has none, and a recipient whose data is too big is held back, not lost."""

from collections import Counter

import pytest

from sesflow.engine.ses import simulator
from tests.contacts import add_contact

LIST = "members"
TEMPLATE = {"Subject": "{{first_name}}, the sale ends {{sale_ends}}",
            "Text": "Hi {{first_name}}, you have {{points}} points in {{city}}."}


def campaign(**changes):
    return {
        "id": "member-sale",
        "sender": "news@example.com",
        "audience": {"lists": [LIST]},
        "variants": [{"name": "stored", "template": "member-sale"},
                     {"name": "inline", "subject": "{{first_name}}: {{points}} points", "text": "In {{city}}"}],
        "personalization": {"fields": ["first_name", "points", "city"],
                            "defaults": {"first_name": "there", "points": 0, "city": "your city",
                                         "sale_ends": "Sunday"}},
        **changes,
    }


@pytest.fixture
def members(stack):
    """address -> the attributes stored on its contact item (each an ACTIVE contact subscribed on LIST)."""
    simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)
    people = {f"member{i:03d}@example.org": {"first_name": f"Name{i}", "points": i * 10} for i in range(120)}
    people["blank@example.org"] = {"first_name": " ", "city": "Lyon"}
    people["bare@example.org"] = {}
    for address, attributes in people.items():
        add_contact(stack, address, [LIST], attributes=attributes)
    stack.client("sesv2").create_email_template(TemplateName="member-sale", TemplateContent=TEMPLATE)
    return people


def expected_subject(variant: str, first_name: str, points: int) -> str:
    if variant == "stored":
        return f"{first_name}, the sale ends Sunday"
    return f"{first_name}: {points} points"


def test_each_recipient_gets_one_email_rendered_with_its_own_values_or_the_defaults(stack, members):
    result = stack.run("CampaignStateMachine", campaign())

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    outbox = simulator().outbox
    assert Counter(r for m in outbox for r in m.to) == Counter(list(members))  # everyone, once
    for message in outbox:
        address = message.to[0]
        own = members[address]
        name = own["first_name"] if own.get("first_name", "").strip() else "there"
        points = int(own["points"]) if "points" in own else 0
        assert message.rendering_failure is None, (address, message.rendering_failure)
        assert message.subject == expected_subject(message.tags["variant"], name, points), address
    assert result.output["accounted"]["sent"] == len(members)


def test_a_recipient_whose_data_cannot_go_is_not_sent_and_is_counted_failed(stack, members):
    ddb = stack.client("dynamodb")
    table = stack.outputs["RecipientsTableName"]
    ddb.update_item(TableName=table, Key={"address": {"S": "member007@example.org"}},
                    UpdateExpression="SET city = :c", ExpressionAttributeValues={":c": {"S": "x" * 20_000}})
    ddb.update_item(TableName=table, Key={"address": {"S": "member008@example.org"}},
                    UpdateExpression="SET city = :c",
                    ExpressionAttributeValues={":c": {"M": {"photo": {"B": b"\x89"}}}})
    held_back = {"member007@example.org", "member008@example.org"}

    result = stack.run("CampaignStateMachine", campaign())

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    sent = Counter(r for m in simulator().outbox for r in m.to)
    assert set(sent) == set(members) - held_back and set(sent.values()) == {1}
    assert (result.output["accounted"]["sent"], result.output["accounted"]["failed"]) == (len(members) - 2, 2)
    from app import sends

    from tests.workflow.test_campaign_faults import config

    reasons = {r["address"]: (r["status"], r["error"]) for r in sends.refusals(campaign()["id"], config(stack))}
    too_big = ("TEMPLATE_DATA_REFUSED", "template data is 20065 bytes, at most 10000")
    assert reasons == {"member007@example.org": too_big,
                       "member008@example.org": ("TEMPLATE_DATA_REFUSED", "template data holds a binary value")}


def test_without_personalization_a_template_variable_fails_to_render_as_on_ses(stack, members):
    """Why the field exists: SES drops a message whose template names a variable the data lacks, and says so with
    a Rendering Failure event, which ingestion counts for the campaign."""
    result = stack.run("CampaignStateMachine", campaign(personalization={}))
    stack.deliver_queues()

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    outbox = simulator().outbox
    assert len(outbox) == len(members)
    assert all(m.subject is None and "is not present in the rendering data" in m.rendering_failure for m in outbox)
    assert all(m.delivered_to == () for m in outbox)
    stats = stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"],
                                              Key={"campaign_id": {"S": "member-sale#stats"}})["Item"]
    assert int(stats["rendering_failures"]["N"]) == len(members)
