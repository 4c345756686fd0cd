"""SES templates rendered as SES renders them: the renderer (engine/rendering.py), then the simulated SES v2
sending with it (outbox, Rendering Failure events) and TestRenderEmailTemplate."""

import email
import email.policy
import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from sesflow.engine import runtime
from sesflow.engine.feedback_model import FeedbackModel
from sesflow.engine.patches import sesv2
from sesflow.engine.rendering import RenderingError, render
from sesflow.engine.ses import simulator

SENDER = "news@example.com"
REGION = "eu-west-1"


def failure(source, data):
    with pytest.raises(RenderingError) as caught:
        render(source, data)
    return caught.value.message


# --------------------------------------------------------------------------------------------- the renderer


def test_variables_render_with_their_values_when_the_data_has_them():
    assert render("Hi {{first_name}}, {{ points }} points", {"first_name": "Ann", "points": 40}) == "Hi Ann, 40 points"


def test_nested_attributes_render_when_given_a_path():
    data = {"contact": {"firstName": "Anaya"}, "meta": {"userId": "518"}}

    assert render("Hello {{contact.firstName}}! id={{meta.userId}}", data) == "Hello Anaya! id=518"


def test_a_missing_variable_fails_with_the_message_ses_publishes_when_the_data_lacks_it():
    assert failure("Hi {{first_name}}", {"name": "x"}) == "Attribute 'first_name' is not present in the rendering data."
    assert failure("Hi {{first_name}}", {"first_name": None}) == \
        "Attribute 'first_name' is not present in the rendering data."
    assert "contact.firstName" in failure("Hello {{contact.firstName}}", {"contact": {}})


def test_if_renders_its_else_and_needs_nothing_in_the_branch_not_taken_when_the_attribute_is_absent():
    """SES's own example: the recipient without the attribute gets the {{else}} text, and is sent."""
    template = "Dear {{name}}, {{#if subscription}}you like {{#each subscription}}{{interest}};{{/each}}" \
               "{{else}}tell us what you like{{/if}}"

    assert render(template, {"name": "Shirley"}) == "Dear Shirley, tell us what you like"
    assert render(template, {"name": "Anaya", "subscription": [{"interest": "Sports"}, {"interest": "Travel"}]}) == \
        "Dear Anaya, you like Sports;Travel;"
    assert "favorite" in failure("{{#if vip}}{{favorite}}{{/if}}", {"vip": True})


def test_each_renders_every_item_with_its_own_values_and_index_when_given_a_list():
    data = {"items": [{"type": "dog", "name": "bobby", "best": True}, {"type": "cat", "name": "pedro", "best": False}]}
    template = "{{#each items}}{{@index}}:{{name}} is {{#if best}}the best{{else}}a {{type}}{{/if}}" \
               "{{#unless @last}}, {{/unless}}{{/each}}"

    assert render(template, data) == "0:bobby is the best, 1:pedro is a cat"
    assert render("{{#each tags}}[{{this}}]{{else}}none{{/each}}", {"tags": []}) == "none"
    assert render("{{#each o}}{{@key}}={{this}} {{/each}}", {"o": {"a": 1, "b": "x"}}) == "a=1 b=x "


def test_a_name_is_looked_up_in_the_item_only_when_inside_each():
    template = "{{#each people}}{{name}} of {{../team}} {{/each}}"

    assert render(template, {"team": "T", "people": [{"name": "A"}]}) == "A of T "
    assert "name" in failure("{{#each people}}{{name}}{{/each}}", {"name": "root", "people": [{}]})


def test_unless_with_else_if_and_sections_render_as_handlebars_when_used():
    assert render("{{#unless paid}}You owe {{total}}{{/unless}}", {"total": "$5"}) == "You owe $5"
    assert render("{{#with contact}}{{firstName}}{{/with}}", {"contact": {"firstName": "Z"}}) == "Z"
    chain = "{{#if gold}}G{{else if silver}}S{{else}}B{{/if}}"
    assert [render(chain, d) for d in ({"gold": 1}, {"silver": 1}, {})] == ["G", "S", "B"]
    assert render("{{#contact}}{{firstName}}{{/contact}}{{^missing}}!{{/missing}}", {"contact": {"firstName": "Y"}}) \
        == "Y!"


def test_inline_partials_render_where_included_and_their_newline_is_dropped_when_defined():
    """send-personalized-email-advanced.html, "Creating inline partials"."""
    template = '{{#* inline "fullName"}}{{firstName}}{{#if lastName}} {{lastName}}{{/if}}{{/inline}}\n' \
               "Hello {{> fullName}}! Friends: {{#each friends}}{{> fullName}}; {{/each}}"
    data = {"firstName": "Ann", "friends": [{"firstName": "Bo", "lastName": "Li"}, {"firstName": "Cy"}]}

    assert render(template, data) == "Hello Ann! Friends: Bo Li; Cy; "


def test_values_are_inserted_unescaped_in_every_form_as_ses_documents():
    """SES doesn't escape HTML content when rendering (send-personalized-email-advanced.html)."""
    assert render("<p>{{x}} {{{x}}} {{&x}}</p>", {"x": "<b>Tom & Jerry</b>"}) == \
        "<p><b>Tom & Jerry</b> <b>Tom & Jerry</b> <b>Tom & Jerry</b></p>"


def test_comments_whitespace_control_and_standalone_lines_render_as_handlebars_when_used():
    assert render("a{{! note }}b{{!-- has }} in it --}}c \\{{literal}}", {}) == "abc {{literal}}"
    assert render("x  {{~name~}}  y", {"name": "N"}) == "xNy"
    assert render("<ul>\n  {{#each s}}\n  <li>{{this}}</li>\n  {{/each}}\n</ul>", {"s": ["a", "b"]}) == \
        "<ul>\n  <li>a</li>\n  <li>b</li>\n</ul>"


def test_values_print_as_json_writes_them_when_not_strings():
    assert render("{{n}} {{f}} {{t}} {{e}}|", {"n": 3, "f": 2.5, "t": False, "e": ""}) == "3 2.5 false |"


@pytest.mark.parametrize("template", ["{{#if x}}open", "{{/if}}", "{{#if a}}{{/each}}", "{{shout name}}",
                                      "{{> nowhere}}", "{{#if}}{{/if}}"])
def test_a_template_that_does_not_parse_fails_every_message_when_rendered(template):
    assert failure(template, {"x": 1, "a": 1, "name": "n"})


# --------------------------------------------------------------------------------- the simulated SES v2


@pytest.fixture
def ses():
    sesv2.install()
    simulator().reset()
    simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)
    runtime.activate(runtime.Runtime())
    with mock_aws():
        client = boto3.client("sesv2", region_name=REGION, config=Config(retries={"total_max_attempts": 1}))
        client.create_email_identity(EmailIdentity="example.com")
        client.create_configuration_set(ConfigurationSetName="campaigns")
        client.create_email_template(TemplateName="greeting", TemplateContent={
            "Subject": "{{first_name}}, the sale is on",
            "Html": "<p>Hello {{first_name}}{{#if city}} in {{city}}{{/if}}</p>",
            "Text": "Hello {{first_name}}"})
        yield client
    runtime.deactivate()
    simulator().reset()


@pytest.fixture
def events(ses):
    """The Rendering Failure events the configuration set publishes, through SNS to a queue (raw delivery)."""
    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="feedback")["TopicArn"]
    queue = sqs.create_queue(QueueName="feedback")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    ses.create_configuration_set_event_destination(
        ConfigurationSetName="campaigns", EventDestinationName="failures",
        EventDestination={"Enabled": True, "MatchingEventTypes": ["RENDERING_FAILURE"],
                          "SnsDestination": {"TopicArn": topic}})

    def received():
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]
    return received


def bulk(ses, entries, default=None, template=None):
    return ses.send_bulk_email(
        FromEmailAddress=SENDER, ConfigurationSetName="campaigns",
        DefaultEmailTags=[{"Name": "campaign", "Value": "c1"}],
        DefaultContent={"Template": {**(template or {"TemplateName": "greeting"}),
                                     "TemplateData": json.dumps(default or {})}},
        BulkEmailEntries=[{"Destination": {"ToAddresses": [address]},
                           "ReplacementEmailContent": {"ReplacementTemplate": {
                               "ReplacementTemplateData": json.dumps(data)}}} for address, data in entries],
    )["BulkEmailEntryResults"]


def test_a_stored_template_renders_into_each_outbox_message_with_its_entry_data_when_sent_in_bulk(ses):
    results = bulk(ses, [("ann@x.com", {"first_name": "Ann", "city": "Lyon"}), ("bo@x.com", {"first_name": "Bo"})])

    ann, bo = simulator().outbox
    assert [r["Status"] for r in results] == ["SUCCESS", "SUCCESS"]
    assert (ann.subject, ann.html, ann.text) == ("Ann, the sale is on", "<p>Hello Ann in Lyon</p>", "Hello Ann")
    assert (bo.subject, bo.html, bo.delivered_to) == ("Bo, the sale is on", "<p>Hello Bo</p>", ("bo@x.com",))


def test_an_entry_with_an_empty_object_renders_with_the_default_data_when_sent_in_bulk(ses):
    """send-personalized-email-api.html: an empty ReplacementTemplateData uses DefaultTemplateData."""
    bulk(ses, [("ann@x.com", {})], default={"first_name": "friend"})

    [message] = simulator().outbox
    assert (message.subject, message.rendering_failure) == ("friend, the sale is on", None)


def test_inline_template_content_renders_per_entry_when_sent_in_bulk(ses):
    bulk(ses, [("ann@x.com", {"n": 2, "items": ["a", "b"]})],
         template={"TemplateContent": {"Subject": "{{n}} items", "Text": "{{#each items}}-{{this}}{{/each}}"}})

    [message] = simulator().outbox
    assert (message.subject, message.text, message.html) == ("2 items", "-a-b", None)


def test_a_missing_variable_is_accepted_sends_nothing_and_publishes_a_rendering_failure_when_sent(ses, events):
    results = bulk(ses, [("ann@x.com", {"first_name": "Ann"}), ("nameless@x.com", {"city": "Oslo"})])

    ann, nameless = simulator().outbox
    published = events()
    assert [r["Status"] for r in results] == ["SUCCESS", "SUCCESS"] and all(r["MessageId"] for r in results)
    assert ann.delivered_to == ("ann@x.com",)
    assert nameless.delivered_to == () and nameless.subject is None and nameless.html is None
    assert nameless.rendering_failure == "Attribute 'first_name' is not present in the rendering data."
    [record] = published  # no model: SES's own Rendering Failure, nothing else
    assert record["eventType"] == "Rendering Failure"
    assert record["failure"] == {"errorMessage": "Attribute 'first_name' is not present in the rendering data.",
                                 "templateName": "greeting"}
    assert record["mail"]["messageId"] == results[1]["MessageId"]
    assert record["mail"]["destination"] == ["nameless@x.com"]
    assert record["mail"]["tags"]["campaign"] == ["c1"]
    assert record["mail"]["tags"]["ses:configuration-set"] == ["campaigns"]


def test_a_rendering_failure_is_published_once_after_its_send_when_a_feedback_model_answers(ses, events):
    model = FeedbackModel()
    simulator().configure(feedback=model)

    bulk(ses, [("nameless@x.com", {"city": "Oslo"})])

    assert [r["eventType"] for r in events()] == ["Rendering Failure"]  # the destination matches failures only
    assert model.published == {"Send": 1, "Rendering Failure": 1}


def test_a_templated_send_email_that_fails_to_render_is_accepted_and_not_delivered(ses, events):
    message_id = ses.send_email(FromEmailAddress=SENDER, Destination={"ToAddresses": ["a@x.com"]},
                                ConfigurationSetName="campaigns",
                                Content={"Template": {"TemplateName": "greeting", "TemplateData": "{}"}})["MessageId"]

    [message] = simulator().outbox
    assert message.message_id == message_id and message.delivered_to == ()
    assert [r["mail"]["messageId"] for r in events()] == [message_id]


def test_render_email_template_returns_the_rendered_mime_message_when_the_data_is_complete(ses):
    rendered = ses.test_render_email_template(
        TemplateName="greeting", TemplateData=json.dumps({"first_name": "Zoë", "city": "Kraków"}))["RenderedTemplate"]

    mime = email.message_from_string(rendered, policy=email.policy.default)
    assert mime["Subject"] == "Zoë, the sale is on"
    assert mime.get_content_type() == "multipart/alternative"
    assert mime.get_body(("plain",)).get_content().strip() == "Hello Zoë"
    assert mime.get_body(("html",)).get_content().strip() == "<p>Hello Zoë in Kraków</p>"
    assert mime["Date"]


def test_render_email_template_is_a_bad_request_when_the_data_lacks_a_variable(ses):
    with pytest.raises(ClientError) as caught:
        ses.test_render_email_template(TemplateName="greeting", TemplateData=json.dumps({"city": "Oslo"}))

    error = caught.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("BadRequestException", 400)
    assert error["Error"]["Message"] == "Attribute 'first_name' is not present in the rendering data."


def test_render_email_template_is_refused_when_the_template_does_not_exist_or_called_twice_a_second(ses):
    with pytest.raises(ClientError) as missing:
        ses.test_render_email_template(TemplateName="nope", TemplateData="{}")
    ses.test_render_email_template(TemplateName="greeting", TemplateData=json.dumps({"first_name": "A"}))
    with pytest.raises(ClientError) as throttled:
        ses.test_render_email_template(TemplateName="greeting", TemplateData=json.dumps({"first_name": "A"}))
    runtime.current().clock.advance(1)
    ses.test_render_email_template(TemplateName="greeting", TemplateData=json.dumps({"first_name": "A"}))

    assert missing.value.response["Error"]["Code"] == "NotFoundException"
    assert throttled.value.response["Error"]["Code"] == "TooManyRequestsException"


def test_a_served_engine_renders_again_once_a_wall_second_has_passed(ses, monkeypatch):
    """Served, the virtual clock stands still between an operator's commands: a second preview a real second later
    is what SES would accept."""
    wall = [1000.0]
    monkeypatch.setattr(sesv2.time, "monotonic", lambda: wall[0])
    simulator().configure(wall_time_passes=True)
    data = json.dumps({"first_name": "A"})
    ses.test_render_email_template(TemplateName="greeting", TemplateData=data)
    wall[0] += 0.5
    with pytest.raises(ClientError) as throttled:
        ses.test_render_email_template(TemplateName="greeting", TemplateData=data)
    wall[0] += 1.0

    assert "Hello A" in ses.test_render_email_template(TemplateName="greeting", TemplateData=data)["RenderedTemplate"]
    assert throttled.value.response["Error"]["Code"] == "TooManyRequestsException"
