"""The campaign state machine from template.yaml on the engine: who gets an email, and how many."""

from collections import Counter
from datetime import timedelta

import pytest

from sesflow.engine.ses import simulator
from tests.contacts import add_contacts

LIST = "newsletter"


def seed(stack, statuses: dict[str, str], lists=(LIST,)) -> None:
    """The contacts (address -> lifecycle status), SUBSCRIBED on `lists`, and the campaign's SES templates."""
    add_contacts(stack, statuses, lists)
    ses = stack.client("sesv2")
    for name in ("spring-a", "spring-b", "spring-c"):
        ses.create_email_template(
            TemplateName=name,
            TemplateContent={"Subject": f"Spring {name}", "Text": "Hello\n\nUnsubscribe: {{unsubscribe_url}}",
                             "Html": '<p>Hello</p><p><a href="{{unsubscribe_url}}">Unsubscribe</a></p>'},
        )


def campaign(**changes):
    return {
        "id": "spring-sale",
        "sender": "news@example.com",
        "audience": {"lists": [LIST]},
        "variants": [
            {"name": "a", "weight": 50, "template": "spring-a"},
            {"name": "b", "weight": 30, "template": "spring-b"},
            {"name": "c", "weight": 20, "template": "spring-c"},
        ],
        "holdout_percent": 10,
        **changes,
    }


@pytest.fixture
def audience(stack):
    simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)  # a production account: not about pacing
    statuses = {f"user{i:03d}@example.org": "ACTIVE" for i in range(240)}
    statuses |= {f"probation{i}@example.org": "RECOVERY" for i in range(10)}
    statuses |= {f"gone{i}@example.org": "SUPPRESSED" for i in range(5)}
    statuses |= {f"resting{i}@example.org": "QUARANTINED" for i in range(5)}
    seed(stack, statuses)
    return statuses


def test_every_eligible_recipient_gets_exactly_one_email_of_its_variant(stack, audience):
    from app.domain.campaign import HOLDOUT, assign_variant, parse_campaign

    result = stack.run("CampaignStateMachine", campaign())

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    definition = parse_campaign(campaign())
    expected = {
        a: assign_variant(definition, a) for a, s in audience.items() if s in ("ACTIVE", "RECOVERY")
    }
    sent = Counter(r for m in simulator().outbox for r in m.to)
    assert all(n == 1 for n in sent.values()), "someone got the campaign twice"
    assert set(sent) == {a for a, v in expected.items() if v != HOLDOUT}
    for message in simulator().outbox:
        address = message.to[0]
        assert (message.tags["campaign"], message.tags["variant"]) == ("spring-sale", expected[address])
        assert message.template_name == f"spring-{expected[address]}"
        # Recipients on probation go through the configuration set that publishes Delivery (it ends probation).
        assert message.configuration_set == stack.outputs[
            "ProbationConfigurationSetName" if audience[address] == "RECOVERY" else "ConfigurationSetName"]
        assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.headers["List-Unsubscribe"].startswith(f"<{stack.outputs['UnsubscribeUrl']}")
        assert message.headers["X-Sesflow-Campaign"] == "spring-sale"
    holdout = sum(v == HOLDOUT for v in expected.values())
    assert (result.output["status"], result.output["sent"], result.output["holdout"]) == (
        "COMPLETED", len(sent), holdout)
    assert {name: counts["sent"] for name, counts in result.output["per_variant"].items()} == dict(
        Counter(expected[a] for a in sent))
    assert result.output["accounted"] == {"sent": len(sent), "failed": 0, "not_sent": 0, "unknown_confirmed": 0,
                                          "unknown": 0}
    row = stack.client("dynamodb").get_item(
        TableName=stack.outputs["CampaignsTableName"], Key={"campaign_id": {"S": "spring-sale"}}
    )["Item"]
    assert row["status"] == {"S": "COMPLETED"}


def test_a_delivery_ends_probation_and_only_recipients_on_probation_cost_a_delivery_event(stack, audience):
    """Delivery events are published by the probation configuration set only: every delivered recipient that was
    in RECOVERY is ACTIVE after the campaign, and no other recipient's delivery reached ingestion."""
    from app.domain.campaign import HOLDOUT, assign_variant, parse_campaign

    from sesflow.engine.feedback_model import FeedbackModel, Rates

    simulator().configure(feedback=FeedbackModel(rates=Rates(hard_bounce=0, soft_bounce=0, open=0, click=0,
                                                             complaint=0)))
    result = stack.run("CampaignStateMachine", campaign())
    stack.deliver_queues()

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    definition = parse_campaign(campaign())
    on_probation = {a for a, s in audience.items() if s == "RECOVERY" and assign_variant(definition, a) != HOLDOUT}
    assert on_probation
    table = stack.outputs["RecipientsTableName"]
    status = {a: stack.client("dynamodb").get_item(TableName=table, Key={"address": {"S": a}})["Item"]["status"]["S"]
              for a in audience}
    assert {a for a in on_probation if status[a] != "ACTIVE"} == set()
    assert {a for a, s in audience.items() if s != "RECOVERY" and status[a] != s} == set()
    stats = stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"],
                                              Key={"campaign_id": {"S": "spring-sale#stats"}})["Item"]
    assert int(stats["delivered"]["N"]) == len(on_probation)
    assert int(stats["sent"]["N"]) > 10 * len(on_probation)


def test_second_execution_of_a_campaign_is_refused_and_sends_nothing_more(stack, audience):
    first = stack.run("CampaignStateMachine", campaign())
    sent_before = len(simulator().outbox)

    second = stack.run("CampaignStateMachine", campaign())

    assert first.status == "SUCCEEDED"
    assert (second.status, second.error) == ("FAILED", "CampaignAlreadyRunning")
    assert len(simulator().outbox) == sent_before


def test_bad_definition_fails_with_its_reason_before_anything_is_written(stack, audience):
    result = stack.run("CampaignStateMachine", campaign(sender="nobody", variants=[]))

    assert (result.status, result.error) == ("FAILED", "CampaignDefinitionError")
    assert "sender: 'nobody' is not valid" in result.cause
    assert "variants: required" in result.cause
    assert simulator().outbox == []
    assert stack.client("dynamodb").scan(TableName=stack.outputs["CampaignsTableName"])["Count"] == 0


def test_scheduled_campaign_waits_for_its_start_time_on_the_virtual_clock(stack, audience):
    start = (stack.clock.now() + timedelta(days=3)).replace(microsecond=0)

    result = stack.run("CampaignStateMachine", campaign(start_at=start.isoformat().replace("+00:00", "Z")))

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert stack.clock.now() >= start
    assert min(m.sent_at for m in simulator().outbox) >= start


def test_campaign_over_the_send_rate_backs_off_and_sends_everyone_once(stack, audience):
    simulator().configure(enforce_rate=True, max_send_rate=100)  # two 50-recipient calls a second

    result = stack.run("CampaignStateMachine", campaign())

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    sent = Counter(r for m in simulator().outbox for r in m.to)
    assert len(sent) == result.output["sent"] and set(sent.values()) == {1}
    claims = stack.client("dynamodb").scan(TableName=stack.outputs["SendsTableName"])["Items"]
    assert {c["status"]["S"] for c in claims} == {"SENT"}  # no claim left SENDING by a refused call
    assert result.output["accounted"]["unknown"] == 0


def test_campaign_with_no_eligible_recipient_completes_with_nothing_sent(stack, audience):
    result = stack.run("CampaignStateMachine", campaign(audience={"lists": ["nobody-here"]}))

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert (result.output["sent"], result.output["holdout"], result.output["status"]) == (0, 0, "COMPLETED")
    assert simulator().outbox == []


def test_the_one_click_link_in_an_email_unsubscribes_and_the_next_campaign_leaves_the_recipient_out(stack, audience):
    stack.run("CampaignStateMachine", campaign())
    message = simulator().outbox[0]
    link = message.headers["List-Unsubscribe"].strip("<>")

    answer = stack.request(link, "POST", body="List-Unsubscribe=One-Click",
                           headers={"content-type": "application/x-www-form-urlencoded"})

    assert answer["statusCode"] == 200
    membership = stack.client("dynamodb").get_item(TableName=stack.outputs["MembershipsTableName"],
                                                   Key={"list_id": {"S": LIST}, "address": {"S": message.to[0]}})
    assert membership["Item"]["state"]["S"] == "UNSUBSCRIBED"
    recipient = stack.client("dynamodb").get_item(TableName=stack.outputs["RecipientsTableName"],
                                                  Key={"address": {"S": message.to[0]}})["Item"]
    assert recipient["status"]["S"] == "ACTIVE"  # unsubscribing is per list; the lifecycle is the contact's
    simulator().outbox.clear()
    second = stack.run("CampaignStateMachine", campaign(id="spring-sale-2"))
    assert second.status == "SUCCEEDED"
    assert message.to[0] not in {r for m in simulator().outbox for r in m.to}


@pytest.mark.parametrize(("change", "message"), [
    ({"variants": [{"name": "a", "weight": 1, "template": "spring-a", "subject": "Hi"}]}, "variants[0]"),
    ({"holdout_percent": 100}, "holdout_percent"),
    ({"thresholds": {"complaint": {"warn": 0.01, "halt": 0.005}}}, "thresholds.complaint"),
    ({"ab": {"mode": "test_then_winner"}, "variants": [{"name": "a", "template": "spring-a"}]}, "ab"),
    ({"start_at": "tomorrow 9am"}, "start_at"),
    ({"rate_share": 0}, "rate_share"),
    ({"sendr": "news@example.com"}, "sendr"),
])
def test_each_bad_definition_is_refused_naming_its_field_before_anything_is_written_or_sent(
        stack, audience, change, message):
    result = stack.run("CampaignStateMachine", campaign(**change))

    assert (result.status, result.error) == ("FAILED", "CampaignDefinitionError")
    assert message in result.cause
    assert simulator().outbox == []
    assert stack.client("dynamodb").scan(TableName=stack.outputs["CampaignsTableName"])["Count"] == 0


def test_a_variant_that_draws_complaints_halts_the_campaign_early_because_the_variants_alternate(stack):
    # Variant c is a fifth of the audience and one in ten of its recipients complains. Its batches alternate with
    # a's and b's from the first, so the breaker sees it within the first batches; sent in turn, it would have
    # started after 80% of the audience had had a and b.
    from tests.workflow.feedback import Feedback

    simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)
    seed(stack, {f"user{i:04d}@example.org": "ACTIVE" for i in range(4000)})

    def c_offends(message):
        return ["complaint"] if message.tags.get("variant") == "c" and int(message.to[0][4:8]) % 10 == 0 else []

    with Feedback(stack, c_offends):
        result = stack.run("CampaignStateMachine", campaign(holdout_percent=0, thresholds={"min_sends": 100}))

    assert (result.status, result.error) == ("FAILED", "CampaignHalted"), result.cause
    sent = Counter(m.tags["variant"] for m in simulator().outbox)
    assert sum(sent.values()) < 1500, sent
    assert sent["c"] >= 100  # the breaker's minimum, reached while a and b had their shares
    for name, weight in (("a", 0.5), ("b", 0.3), ("c", 0.2)):
        assert abs(sent[name] - weight * sum(sent.values())) <= 10 * 50 + 50  # MaxConcurrency batches in flight


def test_each_variant_keeps_its_share_all_along_the_send(stack):
    """Over the course of a whole send, in the order SES was called, each variant has had its weight's share of the
    emails so far, give or take the batches in flight at once (MaxConcurrency 10): sent in turn, a would have had
    everything up to the middle of the send."""
    simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)
    seed(stack, {f"user{i:04d}@example.org": "ACTIVE" for i in range(4000)})

    result = stack.run("CampaignStateMachine", campaign(holdout_percent=0))

    assert result.status == "SUCCEEDED", result.cause
    order = [m.tags["variant"] for m in simulator().outbox]
    assert len(order) == 4000
    slack = 10 * 50 + 50  # the batches in flight at once, and one more
    for upto in range(250, 4001, 250):
        so_far = Counter(order[:upto])
        for name, weight in (("a", 0.5), ("b", 0.3), ("c", 0.2)):
            assert abs(so_far[name] - weight * upto) <= slack, (upto, dict(so_far))
