"""The simulated SES's feedback: the mailbox simulator as AWS documents it, a seeded population model, and the
events flowing through the stack's real ingestion path while a campaign sends."""

import json
import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from app.domain.feedback import parse_feedback
from app.domain.feedback_apply import counter_name

from sesflow.engine import ses
from sesflow.engine.feedback_model import FeedbackModel, Rates
from sesflow.engine.ses import SentEmail
from sesflow.engine.stack import LocalStack
from tests.conftest import ROOT, SENDER_DOMAIN

SENT_AT = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
SENDS = counter_name(SimpleNamespace(kind="send", hard=None))  # the campaign counter of SES Send events
SIMULATOR = "simulator.amazonses.com"


def stamp(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def outcome(records):
    """(eventType, bounceType/bounceSubType or complaint type) per record, in order."""
    described = []
    for record in records:
        if record["eventType"] == "Bounce":
            described.append(("Bounce", f"{record['bounce']['bounceType']}/{record['bounce']['bounceSubType']}"))
        elif record["eventType"] == "Complaint":
            described.append(("Complaint", record["complaint"].get("complaintFeedbackType")))
        else:
            described.append((record["eventType"], None))
    return described


def sent_email(message_id, recipients, *, tags=None, suppressed=(), rendering_failure=None):
    return SentEmail(message_id=message_id, operation="SendBulkEmail", account_id="123456789012", region="us-east-1",
                     from_address=f"news@{SENDER_DOMAIN}", to=tuple(recipients), cc=(), bcc=(), configuration_set="cs",
                     tags=dict(tags or {}), template_name="spring", template_data={}, subject="Hi", headers={},
                     list_management=None, suppressed=tuple(suppressed), rendering_failure=rendering_failure,
                     sent_at=SENT_AT)


# ---------------------------------------------------------------- the mailbox simulator


@pytest.mark.parametrize(("address", "expected"), [
    (f"success@{SIMULATOR}", [("Send", None), ("Delivery", None)]),
    (f"bounce@{SIMULATOR}", [("Send", None), ("Bounce", "Permanent/General")]),
    (f"ooto@{SIMULATOR}", [("Send", None), ("Delivery", None)]),
    (f"complaint@{SIMULATOR}", [("Send", None), ("Delivery", None), ("Complaint", "abuse")]),
    (f"suppressionlist@{SIMULATOR}", [("Send", None), ("Bounce", "Permanent/Suppressed")]),
    (f"bounce+label1@{SIMULATOR}", [("Send", None), ("Bounce", "Permanent/General")]),
    (f"Complaint+VERP-42@{SIMULATOR.upper()}", [("Send", None), ("Delivery", None), ("Complaint", "abuse")]),
])
def test_mailbox_simulator_addresses_give_their_documented_events(address, expected):
    # Population rates that would make anyone else bounce: the simulator's answers do not depend on them.
    model = FeedbackModel(seed=3, rates=Rates(hard_bounce=0.5, soft_bounce=0.5, open=1.0, click=1.0, complaint=1.0))

    records = model.records("0100-sim", address, SENT_AT, tags={"campaign": "c-1", "variant": "a"})

    assert outcome(records) == expected
    assert all(r["mail"]["destination"] == [address] and r["mail"]["messageId"] == "0100-sim" for r in records)
    assert all(r["mail"]["tags"]["campaign"] == ["c-1"] and r["mail"]["tags"]["variant"] == ["a"] for r in records)


def test_simulator_bounce_is_an_unknown_user_and_suppressionlist_is_ses_s_own_suppression():
    model = FeedbackModel()
    [_, bounce] = model.records("m", f"bounce@{SIMULATOR}", SENT_AT)
    [_, suppressed] = model.records("m", f"suppressionlist@{SIMULATOR}", SENT_AT)

    [recipient] = bounce["bounce"]["bouncedRecipients"]
    assert recipient["status"] == "5.1.1" and "550 5.1.1 user unknown" in recipient["diagnosticCode"]
    assert "suppressed sending to this address" in suppressed["bounce"]["bouncedRecipients"][0]["diagnosticCode"]


def test_an_address_on_the_account_suppression_list_bounces_without_delivery():
    model = FeedbackModel(rates=Rates(hard_bounce=0.0, soft_bounce=0.0))
    message = sent_email("m-1", ["gone@example.org", "here@example.org"], suppressed=["gone@example.org"])

    records = model.records_for(message)

    assert outcome(records)[:3] == [("Send", None), ("Bounce", "Permanent/OnAccountSuppressionList"),
                                    ("Delivery", None)]
    assert records[0]["mail"]["destination"] == ["gone@example.org", "here@example.org"]  # one Send per message
    assert records[1]["bounce"]["bouncedRecipients"][0]["emailAddress"] == "gone@example.org"


def test_a_template_that_failed_to_render_delivers_nothing():
    records = FeedbackModel().records_for(sent_email("m-1", ["a@example.org"], rendering_failure="Attribute 'x'"))

    assert outcome(records) == [("Send", None), ("Rendering Failure", None)]
    assert records[1]["failure"] == {"errorMessage": "Attribute 'x'", "templateName": "spring"}


def test_every_record_is_one_the_ingestion_parser_reads_with_its_campaign_and_variant():
    model = FeedbackModel(seed=5, rates=Rates(hard_bounce=0.1, soft_bounce=0.1, open=0.5, click=0.2, complaint=0.1))
    addresses = [f"{m}@{SIMULATOR}" for m in ("success", "bounce", "ooto", "complaint", "suppressionlist")]
    addresses += [f"r{i}@example.org" for i in range(200)]
    kinds = Counter()

    for i, address in enumerate(addresses):
        for record in model.records(f"0100-{i}", address, SENT_AT, tags={"campaign": "c-1", "variant": "b"}):
            [event] = parse_feedback({"Type": "Notification", "Message": json.dumps(record)}).events
            assert (event.recipient, event.campaign_id, event.variant) == (address, "c-1", "b")
            kinds[event.kind if event.kind != "bounce" else ("hard" if event.hard else "soft") + "_bounce"] += 1

    assert set(kinds) == {"send", "delivery", "hard_bounce", "soft_bounce", "open", "click", "complaint"}


# ---------------------------------------------------------------- the population model


def within(count, n, p, sigmas=4.5):
    """count out of n is within `sigmas` standard deviations of n * p."""
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p)) + 1


def test_rates_over_10000_recipients_match_each_variant_s_rates():
    variants = {
        "a": Rates(hard_bounce=0.02, soft_bounce=0.03, open=0.20, click=0.05, complaint=0.002),
        "b": Rates(hard_bounce=0.02, soft_bounce=0.03, open=0.40, click=0.10, complaint=0.010),
    }
    model = FeedbackModel(seed=11, variants=variants)
    sent, counts = Counter(), Counter()

    for i in range(10_000):
        variant = "ab"[i % 2]
        records = model.records(f"0100-{i}", f"r{i}@example.org", SENT_AT, tags={"campaign": "c", "variant": variant})
        sent[variant] += 1
        counts.update((variant, kind) for kind in outcome(records))

    for variant, rates in variants.items():
        n = sent[variant]
        delivered = counts[variant, ("Delivery", None)]
        assert within(counts[variant, ("Bounce", "Permanent/General")], n, rates.hard_bounce)
        assert within(counts[variant, ("Bounce", "Transient/MailboxFull")], n, rates.soft_bounce)
        assert delivered + counts[variant, ("Bounce", "Permanent/General")] + counts[
            variant, ("Bounce", "Transient/MailboxFull")] == n == counts[variant, ("Send", None)]
        assert within(counts[variant, ("Open", None)], delivered, rates.open)
        assert within(counts[variant, ("Click", None)], delivered, rates.click)
        assert within(counts[variant, ("Complaint", "abuse")], delivered, rates.complaint)
    assert counts["b", ("Open", None)] > 1.7 * counts["a", ("Open", None)]


def test_an_address_class_has_its_own_rates_and_a_variant_s_apply_over_them():
    model = FeedbackModel(seed=2, rates=Rates(hard_bounce=0.01, open=0.2, click=0.0),
                          classes=[("*@old.example.org", {"hard_bounce": 0.3})], variants={"b": {"open": 0.6}})
    bounced, opened = Counter(), Counter()

    for i in range(4_000):
        domain = "old.example.org" if i % 2 else "example.org"
        for kind in outcome(model.records(f"m{i}", f"r{i}@{domain}", SENT_AT, tags={"variant": "b"})):
            bounced[domain] += kind == ("Bounce", "Permanent/General")
            opened[domain] += kind == ("Open", None)

    assert within(bounced["old.example.org"], 2_000, 0.3) and within(bounced["example.org"], 2_000, 0.01)
    assert model.rates_for("b", model.address_class("x@old.example.org")) == Rates(
        hard_bounce=0.3, soft_bounce=0.01, open=0.6, click=0.0, complaint=0.0005)
    assert within(opened["example.org"], 2_000 - bounced["example.org"], 0.6, sigmas=5)


def test_recovering_addresses_soft_bounce_first_then_are_delivered():
    model = FeedbackModel(seed=4, rates=Rates(hard_bounce=0.0, soft_bounce=0.0), recovering=0.1,
                          recovering_addresses=["Listed@Example.org"])
    addresses = ["listed@example.org"] + [f"r{i}@example.org" for i in range(3_000)]

    first = {a: outcome(model.records(f"m1-{a}", a, SENT_AT, tags={"campaign": "c1"}))[1] for a in addresses}
    later = SENT_AT + timedelta(days=3)
    second = {a: outcome(model.records(f"m2-{a}", a, later, tags={"campaign": "c2"}))[1] for a in addresses}

    soft = {a for a, kind in first.items() if kind == ("Bounce", "Transient/MailboxFull")}
    assert "listed@example.org" in soft and within(len(soft) - 1, 3_000, 0.1)
    assert soft == {a for a in addresses if model.is_recovering(a)}
    assert set(second.values()) == {("Delivery", None)}  # mailbox emptied: everyone is delivered next time


def test_events_happen_after_the_send_with_realistic_delays():
    model = FeedbackModel(seed=8, rates=Rates(hard_bounce=0.05, soft_bounce=0.05, open=0.6, click=0.3,
                                              complaint=0.05))
    delays = {}

    for i in range(2_000):
        records = model.records(f"m{i}", f"r{i}@example.org", SENT_AT, tags={"campaign": "c"})
        times = {r["eventType"] + r.get("bounce", {}).get("bounceType", ""): stamp(
            (r.get(r["eventType"].lower()) or {}).get("timestamp", r["mail"]["timestamp"])) for r in records}
        assert all(stamp(r["mail"]["timestamp"]) == SENT_AT for r in records)
        assert times["Send"] == SENT_AT
        if "Open" in times:
            assert times["Delivery"] < times["Open"]
        if "Click" in times:
            assert times["Open"] < times["Click"] <= times["Open"] + timedelta(minutes=10)
        for kind, at in times.items():
            delays.setdefault(kind, []).append((at - SENT_AT).total_seconds())

    assert min(delays["Delivery"]) >= 0.5 and max(delays["Delivery"]) <= 4
    assert min(delays["BouncePermanent"]) >= 0.5 and max(delays["BouncePermanent"]) <= 3
    assert min(delays["BounceTransient"]) >= 60 and max(delays["BounceTransient"]) <= 3600
    assert min(delays["Open"]) >= 60 and max(delays["Open"]) <= 12 * 3600 + 4
    assert max(delays["Open"]) > 3600  # some open hours later
    assert min(delays["Complaint"]) >= 300 and max(delays["Complaint"]) <= 24 * 3600 + 4


def test_opens_and_clicks_carry_what_ses_s_records_carry_and_machines_look_like_machines():
    """An Open record has ipAddress, timestamp and userAgent, a Click also link and linkTags (SES's "Open object",
    "Click object"); no field says a machine made it. The person's have a client's user agent and come a minute or
    more after the send; Apple's proxy's have its bare "Mozilla/5.0", a scanner's come seconds after the send."""
    from app.domain.engagement import is_machine

    people = FeedbackModel(seed=4, rates=Rates(hard_bounce=0, soft_bounce=0, open=1, click=1, complaint=0))
    machines = FeedbackModel(seed=4, rates=Rates(hard_bounce=0, soft_bounce=0, open=0, click=0, complaint=0,
                                                 proxy=1, scanner=1), links=("https://example.com/a",
                                                                             "https://example.com/b"))
    fields = {"Open": {"ipAddress", "timestamp", "userAgent"},
              "Click": {"ipAddress", "timestamp", "userAgent", "link", "linkTags"}}

    def engagement(model):
        found = []
        for i in range(50):
            for record in model.records(f"m{i}", f"r{i}@example.org", SENT_AT, tags={"campaign": "c"}):
                if record["eventType"] in fields:
                    assert set(record[record["eventType"].lower()]) == fields[record["eventType"]]
                    found += parse_feedback(json.dumps(record)).events
        return found

    mine = engagement(people)
    assert Counter(e.kind for e in mine) == {"open": 50, "click": 50}
    assert [is_machine(e) for e in mine] == [None] * 100
    theirs = engagement(machines)
    # per message: the proxy's open, the scanner's open and its click of each of the two links
    assert Counter(e.kind for e in theirs) == {"open": 100, "click": 100}
    assert all(is_machine(e) for e in theirs)
    assert sum(1 for e in theirs if is_machine(e).startswith("Apple Mail Privacy Protection")) == 50
    assert sum(1 for e in theirs if "s after the send" in is_machine(e)) == 150


def test_the_same_seed_gives_the_same_events_and_another_seed_others():
    def run(seed):
        model = FeedbackModel(seed=seed, recovering=0.05)
        return [model.records(f"0100-{i}", f"r{i}@example.org", SENT_AT, tags={"campaign": "c", "variant": "a"})
                for i in range(500)]

    assert run(7) == run(7)
    assert run(7) != run(8)
    assert [outcome(r) for r in run(7)] != [outcome(r) for r in run(8)]


def test_a_campaign_s_outcome_does_not_depend_on_moto_s_random_message_ids():
    model = FeedbackModel(seed=1, rates=Rates(hard_bounce=0.2, soft_bounce=0.2, open=0.5))
    tags = {"campaign": "spring", "variant": "a"}

    for i in range(200):
        assert outcome(model.records("id-1", f"r{i}@example.org", SENT_AT, tags=tags)) == outcome(
            model.records("id-2", f"r{i}@example.org", SENT_AT, tags=tags))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"rates": {"open": 1.5}}, "Rates.open: 1.5 is not a probability"),
    ({"rates": {"opens": 0.1}}, "rates: unknown rate"),
    ({"variants": {"a": {"opens": 0.1}}}, "variants\\['a'\\]: unknown rate"),
    ({"variants": {"a": {"click": 0.5}}}, "a click implies an open"),
    ({"classes": [("*@x", {"hard_bounce": 0.7, "soft_bounce": 0.7})]}, "hard_bounce \\+ soft_bounce"),
    ({"recovering": 1.5}, "recovering"),
])
def test_impossible_rates_are_refused_when_the_model_is_made(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FeedbackModel(**kwargs)


def test_rates_may_be_given_as_the_ones_that_differ():
    assert FeedbackModel(rates={"open": 0.4}).rates == Rates(open=0.4)


# ---------------------------------------------------------------- through the stack


def send_bulk(stack, addresses, *, campaign="spring", variant="a"):
    """Through the probation configuration set: it publishes every event type but Send (the campaign set also
    leaves out Delivery)."""
    sesv2 = stack.client("sesv2")
    return sesv2.send_bulk_email(
        FromEmailAddress=f"news@{SENDER_DOMAIN}",
        ConfigurationSetName=stack.outputs["ProbationConfigurationSetName"],
        DefaultEmailTags=[{"Name": "campaign", "Value": campaign}, {"Name": "variant", "Value": variant}],
        DefaultContent={"Template": {"TemplateName": "spring", "TemplateData": "{}"}},
        BulkEmailEntries=[{"Destination": {"ToAddresses": [a]}} for a in addresses],
    )["BulkEmailEntryResults"]


def stats(stack, campaign):
    item = stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"],
                                             Key={"campaign_id": {"S": f"{campaign}#stats"}}).get("Item", {})
    return {name: int(value["N"]) for name, value in item.items() if "N" in value}


def queue_depth(stack):
    attributes = stack.client("sqs").get_queue_attributes(QueueUrl=stack.outputs["FeedbackQueueUrl"],
                                                          AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def prepare(stack, model):
    ses.simulator().configure(feedback=model, max_send_rate=1_000)
    stack.client("sesv2").create_email_template(TemplateName="spring", TemplateContent={"Subject": "Hi", "Text": "x"})


SIMULATED = [f"{m}@{SIMULATOR}" for m in ("success", "bounce", "ooto", "complaint", "suppressionlist")]


@pytest.mark.slow
def test_a_bulk_send_s_feedback_reaches_the_campaign_counters_through_ingestion(stack):
    model = FeedbackModel(seed=21, rates=Rates(hard_bounce=0.1, soft_bounce=0.1, open=0.3, click=0.1,
                                               complaint=0.0))
    prepare(stack, model)
    population = [f"r{i}@example.org" for i in range(95)]

    results = send_bulk(stack, SIMULATED + population[:45]) + send_bulk(stack, population[45:], variant="b")
    stack.deliver_queues()

    assert {r["Status"] for r in results} == {"SUCCESS"} and model.failures == 0
    counters = stats(stack, "spring")
    expected = Counter()
    for message in ses.simulator().outbox:
        for kind in outcome(model.records_for(message)):
            expected[kind] += 1
    assert SENDS not in counters  # the model makes Send events; the stack's configuration set does not publish them
    assert counters["delivered"] == expected["Delivery", None] >= 60
    assert counters["hard_bounces"] == expected["Bounce", "Permanent/General"] + 1  # + suppressionlist@
    assert counters["hard_bounces"] >= 3  # bounce@, suppressionlist@ and the population's
    assert counters["soft_bounces"] == expected["Bounce", "Transient/MailboxFull"] >= 1
    assert counters["complaints"] == 1  # complaint@ (the population's rate is 0)
    assert counters["opens"] == expected["Open", None] and counters.get("clicks", 0) == expected["Click", None]
    assert model.published["Send"] == 100


@pytest.mark.slow
def test_untagged_messages_publish_too_and_messages_without_a_configuration_set_do_not(stack):
    prepare(stack, FeedbackModel(seed=1))
    sesv2 = stack.client("sesv2")
    simple = {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}}

    sesv2.send_email(FromEmailAddress=f"news@{SENDER_DOMAIN}", Destination={"ToAddresses": [SIMULATED[0]]},
                     Content=simple, ConfigurationSetName=stack.outputs["ProbationConfigurationSetName"])
    assert queue_depth(stack) == 1  # its Delivery, though no campaign tag (the set does not publish Send)
    sesv2.send_email(FromEmailAddress=f"news@{SENDER_DOMAIN}", Destination={"ToAddresses": [SIMULATED[0]]},
                     Content=simple)
    assert queue_depth(stack) == 1


@pytest.mark.slow
def test_a_deferred_model_publishes_when_flushed_in_send_order(stack):
    model = FeedbackModel(seed=1, deferred=True)
    prepare(stack, model)

    send_bulk(stack, SIMULATED[:1], campaign="first")
    send_bulk(stack, SIMULATED[:1], campaign="second")
    assert queue_depth(stack) == 0 and model.pending == 2

    assert model.flush() == 2 and model.pending == 0  # each Delivery: the stack's set does not publish Send
    bodies = [json.loads(json.loads(m["Body"])["Message"]) for m in stack.client("sqs").receive_message(
        QueueUrl=stack.outputs["FeedbackQueueUrl"], MaxNumberOfMessages=10)["Messages"]]
    assert [(b["eventType"], b["mail"]["tags"]["campaign"]) for b in bodies] == [
        ("Delivery", ["first"]), ("Delivery", ["second"])]


@pytest.mark.slow
def test_with_the_model_off_nothing_is_published(stack):
    stack.client("sesv2").create_email_template(TemplateName="spring", TemplateContent={"Subject": "Hi", "Text": "x"})

    send_bulk(stack, SIMULATED)

    assert queue_depth(stack) == 0


@pytest.mark.slow
def test_feedback_takes_the_eventbridge_route_and_can_fill_the_account_suppression_list():
    with LocalStack(template_path=ROOT / "template.yaml", ses_identities=(SENDER_DOMAIN,),
                    parameters={"FeedbackRoute": "eventbridge"}) as stack:
        model = FeedbackModel(seed=9, rates=Rates(hard_bounce=1.0, soft_bounce=0.0), auto_suppress=True)
        prepare(stack, model)

        send_bulk(stack, SIMULATED + ["gone@example.org"], campaign="eb")
        stack.deliver_queues()

        counters = stats(stack, "eb")
        assert SENDS not in counters and counters["delivered"] == 3 and counters["hard_bounces"] == 3
        suppressed = {s["EmailAddress"]: s["Reason"] for s in
                      stack.client("sesv2").list_suppressed_destinations()["SuppressedDestinationSummaries"]}
        assert suppressed == {"gone@example.org": "BOUNCE"}  # never a mailbox simulator address
