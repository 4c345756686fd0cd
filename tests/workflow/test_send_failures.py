"""SES refusing a campaign's sends, on the engine: what no retry fixes fails the campaign with SES's own words
(recorded, alerted, a named execution failure, nothing sent, resumable once fixed); what SES refuses one recipient
at a time fails that recipient alone, with its reason."""

import json
import os
from collections import Counter

import pytest
from app import campaign_control, sends

from sesflow import campaign_cli, report, watch
from sesflow.engine.ses import simulator
from sesflow.target import Target
from tests.workflow.test_campaign import LIST, seed
from tests.workflow.test_campaign_faults import config

RECIPIENTS = 120


def definition(**changes):
    return {"id": "refused-sale", "sender": "news@example.com", "audience": {"lists": [LIST]},
            "variants": [{"name": "a", "template": "spring-a"}], "thresholds": {}, **changes}


@pytest.fixture
def audience(stack):
    simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)
    statuses = {f"user{i:03d}@example.org": "ACTIVE" for i in range(RECIPIENTS)}
    seed(stack, statuses)
    return statuses


@pytest.fixture
def target(stack):
    """The stack as the operator's CLI sees it (sesflow campaign status, report, watch)."""
    saved = dict(os.environ)
    yield Target(name="test-stack", region=stack.region, outputs=stack.outputs)
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def alerts(stack):
    """What the AlertTopic publishes, read through an SQS queue subscribed to it (as an operator's pager would)."""
    sqs, sns = stack.client("sqs"), stack.client("sns")
    url = sqs.create_queue(QueueName="operator-alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=stack.outputs["AlertTopicArn"], Protocol="sqs", Endpoint=arn,
                  Attributes={"RawMessageDelivery": "true"})

    def read() -> list[dict]:
        found = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found
    return read


def control(stack, campaign_id="refused-sale"):
    item = stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"],
                                             Key={"campaign_id": {"S": campaign_id}})["Item"]
    return {k: next(iter(v.values())) for k, v in item.items()}


def events(item):
    return [entry["event"] for entry in campaign_control.history(item)]


@pytest.mark.parametrize(("change", "code", "words"), [
    ({"variants": [{"name": "a", "template": "no-such-template"}]}, "NotFoundException",
     "Template no-such-template does not exist."),
    ({"sender": "news@unverified.example.net"}, "MessageRejected", "Email address is not verified"),
], ids=["unknown template", "unverified sender"])
def test_a_send_ses_refuses_as_a_whole_fails_the_campaign_with_ses_words_and_sends_nothing(
        stack, audience, alerts, target, change, code, words):
    result = stack.run("CampaignStateMachine", definition(**change))

    assert (result.status, result.error) == ("FAILED", "CampaignFailed"), (result.error, result.cause)
    cause = json.loads(result.cause)
    assert cause["code"] == code and words in cause["message"] and cause["sent"] == 0
    assert simulator().outbox == []
    item = control(stack)
    assert item["status"] == "FAILED"
    failure = json.loads(item["failure"])
    assert failure["code"] == code and words in failure["message"]
    assert failure["batch"].startswith("all#") and failure["position"] == 0 and failure["recipient"] in audience
    assert events(item) == ["started", "failed"]
    assert campaign_control.history(item)[-1]["code"] == code
    (alert,) = alerts()
    assert alert["status"] == "FAILED" and alert["code"] == code and words in alert["message"]
    assert "sesflow campaign resume refused-sale" in alert["what_now"]

    shown = campaign_cli.status(target, "refused-sale")  # what `sesflow campaign status` prints
    assert shown["status"] == "FAILED" and shown["failure"] == failure and shown["sent"] == 0
    assert [e["event"] for e in shown["history"]] == ["started", "failed"]
    table = report.render_table(report.collect(target, "refused-sale"))
    assert f"FAILED: {code}: " in table and words in table and "failed  " in table
    drawn = watch.render(watch.snapshot(target, "refused-sale"))
    assert any(line.startswith(f"  failed      {code}: ") for line in drawn), drawn


def test_a_refused_send_is_not_retried_and_the_other_batches_stop_before_calling_ses(stack, audience, monkeypatch):
    import app.handlers.send_batch as send_batch

    calls = Counter()
    real = send_batch.send_call

    def send_call(campaign, variant, probation, addresses, batch, *rest):
        calls[batch] += 1
        return real(campaign, variant, probation, addresses, batch, *rest)

    monkeypatch.setattr(send_batch, "send_call", send_call)
    result = stack.run("CampaignStateMachine", definition(variants=[{"name": "a", "template": "gone"}]))

    assert result.error == "CampaignFailed"
    assert set(calls.values()) == {1}, "a batch SES refused was tried again"
    assert sum(calls.values()) <= 10, "more SES calls than batches in flight (MaxConcurrency 10)"


def test_a_campaign_failed_while_the_account_was_paused_resumes_once_sending_is_enabled(stack, audience, alerts):
    ses = stack.client("sesv2")
    ses.put_account_sending_attributes(SendingEnabled=False)

    failed = stack.run("CampaignStateMachine", definition())

    assert (failed.status, failed.error) == ("FAILED", "CampaignFailed")
    assert json.loads(failed.cause)["code"] == "SendingPausedException"
    assert simulator().outbox == []

    ses.put_account_sending_attributes(SendingEnabled=True)
    resumed = stack.run("CampaignStateMachine", definition(resume=True))

    assert resumed.status == "SUCCEEDED" and resumed.output["status"] == "COMPLETED", (resumed.error, resumed.cause)
    sent = Counter(r for m in simulator().outbox for r in m.to)
    assert set(sent) == set(audience) and set(sent.values()) == {1}
    item = control(stack)
    assert "failure" not in item  # the resume cleared it; the history keeps it
    assert events(item) == ["started", "failed", "resumed", "completed"]
    assert campaign_control.history(item)[1]["code"] == "SendingPausedException"


def sent_once(audience):
    sent = Counter(r for m in simulator().outbox for r in m.to)
    return set(sent) == set(audience) and set(sent.values()) == {1}


def test_an_address_that_is_not_one_fails_alone_with_its_reason_and_the_rest_are_sent_once(stack, audience):
    from tests.contacts import add_contact

    add_contact(stack, "legacy@localhost", [LIST])  # an old row no import checked: SES wants a top-level domain
    result = stack.run("CampaignStateMachine", definition())

    assert result.status == "SUCCEEDED" and result.output["status"] == "COMPLETED", (result.error, result.cause)
    assert sent_once(audience)
    assert result.output["accounted"]["failed"] == 1 and result.output["accounted"]["sent"] == RECIPIENTS
    (refused,) = sends.refusals("refused-sale", config(stack))
    assert refused["address"] == "legacy@localhost" and refused["status"] == "INVALID_ADDRESS"
    assert "the domain has no dot" in refused["error"] and refused["batch"].startswith("all#")


def test_an_entry_ses_refuses_in_an_accepted_call_fails_alone_with_ses_status_and_error(stack, audience, monkeypatch):
    from sesflow.engine.patches import sesv2

    stricter = sesv2._address_problem  # SES refusing an address sesflow's own check lets through
    monkeypatch.setattr(sesv2, "_address_problem",
                        lambda address: "refused by SES" if address == "user007@example.org" else stricter(address))
    result = stack.run("CampaignStateMachine", definition())

    assert result.status == "SUCCEEDED" and result.output["status"] == "COMPLETED", (result.error, result.cause)
    assert sent_once(set(audience) - {"user007@example.org"})
    assert result.output["accounted"]["failed"] == 1
    (refused,) = sends.refusals("refused-sale", config(stack))
    assert (refused["address"], refused["status"]) == ("user007@example.org", "INVALID_PARAMETER")
    assert refused["error"] == "Invalid email address <user007@example.org>: refused by SES."


def test_a_template_that_renders_for_nobody_fails_the_campaign_with_ses_rendering_message(
        stack, audience, alerts, target, monkeypatch):
    from tests.contacts import add_contacts

    add_contacts(stack, {f"more{i:04d}@example.org": "ACTIVE" for i in range(1000)}, (LIST,))
    stack.client("sesv2").create_email_template(TemplateName="greeting", TemplateContent={
        "Subject": "Hello {{first_name}}", "Text": "Hello {{first_name}}"})  # no campaign data gives first_name
    real_add = campaign_control.add_counts

    def add_counts(campaign_id, counts, settings):  # SES's Rendering Failures ingested once a batch is counted
        real_add(campaign_id, counts, settings)
        if "sent" in counts:
            stack.deliver_queues()

    monkeypatch.setattr(campaign_control, "add_counts", add_counts)
    result = stack.run("CampaignStateMachine", definition(variants=[{"name": "a", "template": "greeting"}]))

    assert (result.status, result.error) == ("FAILED", "CampaignFailed"), (result.error, result.cause)
    cause = json.loads(result.cause)
    assert cause["code"] == "RenderingFailure"
    assert cause["message"] == "Attribute 'first_name' is not present in the rendering data."
    accepted = len(simulator().outbox)
    assert 0 < accepted < len(audience) + 1000, "the send went on to the end"
    assert all(m.rendering_failure for m in simulator().outbox)  # SES sent none of them
    shown = campaign_cli.status(target, "refused-sale")
    assert shown["status"] == "FAILED" and shown["rendering_failures"] >= 10
    assert 10 <= shown["failure"]["rendering_failures"] <= shown["rendering_failures"]
    data = report.collect(target, "refused-sale")
    assert data["funnel"]["all"]["sent"] == 0 and data["funnel"]["all"]["delivered"] == 0
    assert data["funnel"]["all"]["not_rendered"] == shown["sent"]
    (alert,) = alerts()
    assert alert["code"] == "RenderingFailure"
