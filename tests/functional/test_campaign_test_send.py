"""`sesflow campaign test FILE --to ADDR[,ADDR...] [--as CONTACT]` on the engine: one message per variant per address,
rendered with the contact's data, marked as a test, and counted toward no campaign, its feedback included."""

import json

import pytest

from sesflow.engine.feedback_model import FeedbackModel, Rates
from sesflow.engine.ses import simulator
from tests.contacts import add_contact
from tests.functional.test_campaign_cli import run, target  # noqa: F401  (the same engine fixture)
from tests.workflow.test_campaign import campaign


def definition(**changes):
    return campaign(**{
        "id": "welcome",
        "personalization": {"fields": ["first_name"], "defaults": {"first_name": "there"}},
        "variants": [{"name": "stored", "template": "welcome-stored"},
                     {"name": "inline", "subject": "{{first_name}}, a word", "text": "Dear {{first_name}}",
                      "html": "<p>Dear {{first_name}}</p>"}],
        **changes})


@pytest.fixture
def tester(stack, target, tmp_path):  # noqa: F811
    stack.client("sesv2").create_email_template(TemplateName="welcome-stored", TemplateContent={
        "Subject": "Hi {{first_name}}", "Text": "Hello {{first_name}}", "Html": "<p>Hello {{first_name}}</p>"})
    add_contact(stack, "ada@example.org", ["newsletter"], attributes={"first_name": "Ada"})
    path = tmp_path / "welcome.json"
    path.write_text(json.dumps(definition()))
    return str(path)


def send(path, to, **options):
    return run("test", file=path, to=to, as_contact=options.get("as_contact"))


def campaign_items(stack):
    ddb = stack.client("dynamodb")
    return (ddb.scan(TableName=stack.outputs["CampaignsTableName"])["Items"],
            ddb.scan(TableName=stack.outputs["SendsTableName"])["Items"])


def test_each_variant_goes_once_to_each_address_with_the_contacts_data_marked_as_a_test(stack, tester, capsys):
    assert send(tester, "me@example.org, You@Example.org", as_contact="Ada@example.org") == 0

    out = capsys.readouterr().out
    assert out.count("sent test of variant") == 4
    sent = simulator().outbox
    assert sorted((m.to, m.tags["sesflow-test-variant"]) for m in sent) == [
        (("me@example.org",), "inline"), (("me@example.org",), "stored"),
        (("you@example.org",), "inline"), (("you@example.org",), "stored")]
    subjects = {m.tags["sesflow-test-variant"]: m.subject for m in sent}
    assert subjects == {"stored": "[TEST] Hi Ada", "inline": "[TEST] Ada, a word"}
    for message in sent:
        assert message.rendering_failure is None and "Ada" in message.text and "Ada" in message.html
        assert message.from_address == "news@example.com"
        assert message.configuration_set == stack.outputs["ConfigurationSetName"]
        assert message.tags["sesflow-test"] == "welcome" and "campaign" not in message.tags
        assert message.headers == {"X-Sesflow-Test": "welcome"}  # no campaign header, no unsubscribe link
    assert campaign_items(stack) == ([], [])  # no claim, no counter, no control item


def test_without_a_contact_the_personalization_defaults_render(stack, tester, capsys):
    assert send(tester, "me@example.org") == 0

    assert sorted(m.subject for m in simulator().outbox) == ["[TEST] Hi there", "[TEST] there, a word"]


def test_feedback_about_a_test_message_counts_toward_no_campaign(stack, tester, capsys):
    simulator().configure(feedback=FeedbackModel(rates=Rates(hard_bounce=0, soft_bounce=0, open=1, click=1,
                                                             complaint=0)))

    assert send(tester, "bounce@simulator.amazonses.com,me@example.org") == 0
    stack.deliver_queues()

    events = stack.client("dynamodb").scan(TableName=stack.outputs["EventsTableName"])["Items"]
    assert any(item.get("kind", {}).get("S") == "bounce" for item in events), "the bounce reached ingestion"
    assert all("campaign_id" not in item or item["campaign_id"].get("NULL") for item in events)
    assert campaign_items(stack) == ([], [])  # no counter of opens, clicks or bounces for "welcome"


@pytest.mark.parametrize(("to", "as_contact", "code", "refused"), [
    ("me@example.org,not an address", None, 2, "--to: 'not an address' is not an email address SES sends to"),
    ("me@example.org", "nobody@example.org", 1, "--as: no contact nobody@example.org"),
])
def test_an_address_or_contact_refused_sends_nothing(stack, tester, capsys, to, as_contact, code, refused):
    assert send(tester, to, as_contact=as_contact) == code

    assert refused in capsys.readouterr().err
    assert simulator().outbox == []


def test_a_variant_that_does_not_render_for_the_contact_is_refused_before_anything_is_sent(stack, target,  # noqa: F811
                                                                                           tmp_path, capsys):
    add_contact(stack, "ada@example.org", ["newsletter"], attributes={"first_name": "Ada"})
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(definition(variants=[
        {"name": "fine", "subject": "Hi", "text": "Hello"},
        {"name": "broken", "subject": "Hi {{first_name}}", "text": "Your code: {{code}}"}])))

    assert send(str(path), "me@example.org", as_contact="ada@example.org") == 1

    assert "variant broken: text does not render for contact ada@example.org: Attribute 'code' is not present in " \
           "the rendering data. (nothing sent)" in capsys.readouterr().err
    assert simulator().outbox == []
