"""SES v2 as sesflow's campaigns see it through the embedded engine's patched moto."""

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.sesv2.responses import SESV2Response

from sesflow.engine import runtime
from sesflow.engine.patches import MotoDriftError, sesv2
from sesflow.engine.ses import simulator

SENDER = "news@example.com"
TEMPLATE = {"Subject": "Hello {{name}}", "Text": "Hi {{name}}, your code is {{code}}."}


@pytest.fixture
def ses():
    sesv2.install()
    simulator().reset()
    simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)
    runtime.activate(runtime.Runtime())
    with mock_aws():
        # no retries: a throttled call must surface, as the engine's Retry states expect
        client = boto3.client(
            "sesv2", region_name="eu-west-1", config=Config(retries={"total_max_attempts": 1})
        )
        client.create_email_identity(EmailIdentity="example.com")
        client.create_configuration_set(ConfigurationSetName="campaigns")
        client.create_email_template(TemplateName="welcome", TemplateContent=TEMPLATE)
        yield client
    runtime.deactivate()
    simulator().reset()


def send_simple(client, to="a@x.com", **kwargs):
    return client.send_email(
        FromEmailAddress=SENDER,
        Destination={"ToAddresses": [to]},
        Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
        **kwargs,
    )


def send_bulk(client, count, **kwargs):
    kwargs.setdefault("FromEmailAddress", SENDER)
    return client.send_bulk_email(
        ConfigurationSetName="campaigns",
        DefaultEmailTags=[{"Name": "campaign", "Value": "c1"}],
        DefaultContent={"Template": {"TemplateName": "welcome", "TemplateData": json.dumps({"code": "X"})}},
        BulkEmailEntries=[
            {
                "Destination": {"ToAddresses": [f"r{i}@x.com"]},
                "ReplacementEmailContent": {
                    "ReplacementTemplate": {"ReplacementTemplateData": json.dumps({"name": f"R{i}", "code": i})}
                },
            }
            for i in range(count)
        ],
        **kwargs,
    )


def error_of(call) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def test_templated_send_is_recorded_with_template_data_and_tags_when_sent_with_a_template(ses):
    message_id = ses.send_email(
        FromEmailAddress=SENDER,
        Destination={"ToAddresses": ["ada@x.com"], "BccAddresses": ["audit@x.com"]},
        Content={
            "Template": {"TemplateName": "welcome", "TemplateData": json.dumps({"name": "Ada", "code": 7})}
        },
        ConfigurationSetName="campaigns",
        EmailTags=[{"Name": "campaign", "Value": "c1"}],
    )["MessageId"]

    [record] = simulator().outbox
    assert record.message_id == message_id
    assert record.operation == "SendEmail"
    assert (record.to, record.bcc) == (("ada@x.com",), ("audit@x.com",))
    assert (record.template_name, record.template_data) == ("welcome", {"name": "Ada", "code": 7})
    assert record.subject == "Hello Ada"
    assert record.tags == {"campaign": "c1"}
    assert record.configuration_set == "campaigns"
    assert record.sent_at == runtime.current().clock.now()
    assert record.delivered_to == ("ada@x.com", "audit@x.com")


def test_simple_send_is_recorded_in_the_outbox_when_sent_with_simple_content(ses):
    message_id = send_simple(ses)["MessageId"]

    assert [(r.message_id, r.to, r.subject) for r in simulator().outbox] == [(message_id, ("a@x.com",), "s")]


def test_raw_send_is_recorded_with_its_header_recipients_when_it_has_no_destination(ses):
    raw = f"From: {SENDER}\r\nTo: Ada <ada@x.com>\r\nCc: bob@x.com\r\nSubject: Raw hello\r\n\r\nbody"

    ses.send_email(Content={"Raw": {"Data": raw.encode()}})

    [record] = simulator().outbox
    assert (record.from_address, record.to, record.cc, record.subject) == (
        SENDER,
        ("ada@x.com",),
        ("bob@x.com",),
        "Raw hello",
    )


def test_bulk_send_records_one_message_per_entry_when_given_50_entries(ses):
    results = send_bulk(ses, 50)["BulkEmailEntryResults"]

    outbox = simulator().outbox
    assert [r["Status"] for r in results] == ["SUCCESS"] * 50
    assert [r.message_id for r in outbox] == [r["MessageId"] for r in results]
    assert len({r.message_id for r in outbox}) == 50
    assert outbox[7].to == ("r7@x.com",)
    assert outbox[7].template_data == {"name": "R7", "code": 7}  # an entry's own data replaces the default
    assert outbox[7].subject == "Hello R7"
    assert outbox[7].tags == {"campaign": "c1"}


def test_bulk_entry_without_its_own_data_renders_with_the_default_data(ses):
    ses.send_bulk_email(
        FromEmailAddress=SENDER,
        DefaultContent={"Template": {"TemplateName": "welcome",
                                     "TemplateData": json.dumps({"name": "there", "code": 0})}},
        BulkEmailEntries=[{"Destination": {"ToAddresses": ["a@x.com"]}},
                          {"Destination": {"ToAddresses": ["b@x.com"]},
                           "ReplacementEmailContent": {"ReplacementTemplate": {
                               "ReplacementTemplateData": json.dumps({"code": 1})}}}],
    )

    first, second = simulator().outbox
    assert (first.subject, first.rendering_failure) == ("Hello there", None)
    assert second.subject is None and "name" in second.rendering_failure  # no merge: SES drops it


def test_bulk_send_with_inline_template_content_renders_each_entry_and_delivers_it(ses):
    """A campaign variant with its own subject and body (no stored template) goes out as inline TemplateContent."""
    results = ses.send_bulk_email(
        FromEmailAddress=SENDER,
        DefaultContent={"Template": {"TemplateContent": {"Subject": "May for {{name}}", "Html": "<p>Hi</p>"},
                                     "TemplateData": "{}"}},
        BulkEmailEntries=[{"Destination": {"ToAddresses": [f"r{i}@x.com"]},
                           "ReplacementEmailContent": {"ReplacementTemplate": {
                               "ReplacementTemplateData": json.dumps({"name": f"R{i}"})}}} for i in range(2)],
    )["BulkEmailEntryResults"]

    assert [r["Status"] for r in results] == ["SUCCESS"] * 2
    assert [(m.to, m.subject, m.delivered_to) for m in simulator().outbox] == [
        (("r0@x.com",), "May for R0", ("r0@x.com",)), (("r1@x.com",), "May for R1", ("r1@x.com",))]


def test_bulk_send_is_refused_and_nothing_recorded_when_given_51_entries(ses):
    code, status, _ = error_of(lambda: send_bulk(ses, 51))

    assert (code, status) == ("BadRequestException", 400)
    assert simulator().outbox == []
    assert ses.get_account()["SendQuota"]["SentLast24Hours"] == 0


def test_bulk_entry_is_accepted_but_not_delivered_when_its_template_data_is_missing_a_variable(ses):
    results = ses.send_bulk_email(
        FromEmailAddress=SENDER,
        DefaultContent={"Template": {"TemplateName": "welcome", "TemplateData": json.dumps({"name": "N"})}},
        BulkEmailEntries=[{"Destination": {"ToAddresses": ["a@x.com"]}}],
    )["BulkEmailEntryResults"]

    [record] = simulator().outbox
    assert results[0]["Status"] == "SUCCESS"
    assert "code" in record.rendering_failure
    assert record.delivered_to == ()


def test_send_is_refused_when_the_configuration_set_does_not_exist(ses):
    code, status, _ = error_of(lambda: send_simple(ses, ConfigurationSetName="nope"))

    assert (code, status) == ("NotFoundException", 404)
    assert simulator().outbox == []


def test_send_is_refused_when_the_template_does_not_exist(ses):
    code, status, _ = error_of(
        lambda: ses.send_email(
            FromEmailAddress=SENDER,
            Destination={"ToAddresses": ["a@x.com"]},
            Content={"Template": {"TemplateArn": "arn:aws:ses:eu-west-1:123456789012:template/nope"}},
        )
    )

    assert (code, status) == ("NotFoundException", 404)


def test_send_is_refused_when_it_has_more_than_50_recipients(ses):
    too_many = {
        "ToAddresses": [f"t{i}@x.com" for i in range(30)],
        "CcAddresses": [f"c{i}@x.com" for i in range(21)],
    }
    content = {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}}

    code, _, _ = error_of(
        lambda: ses.send_email(FromEmailAddress=SENDER, Destination=too_many, Content=content)
    )

    assert code == "BadRequestException"
    assert simulator().outbox == []


def test_send_is_refused_when_the_sender_is_not_verified(ses):
    code, _, message = error_of(
        lambda: ses.send_email(
            FromEmailAddress="someone@elsewhere.com",
            Destination={"ToAddresses": ["a@x.com"]},
            Content={"Template": {"TemplateName": "welcome", "TemplateData": "{}"}},
        )
    )

    assert code == "MessageRejected"
    assert "someone@elsewhere.com" in message


def test_a_display_name_sender_is_checked_by_its_address_and_kept_on_the_message(ses):
    encoded = "=?utf-8?b?Wm/DqyBDYWbDqQ==?= <news@example.com>"  # "Zoë Café", RFC 2047
    send_bulk(ses, 1, FromEmailAddress=encoded, ReplyToAddresses=["Help <help@example.org>"])

    (message,) = simulator().outbox
    assert message.from_address == encoded and message.reply_to == ("Help <help@example.org>",)
    code, _, text = error_of(lambda: send_bulk(ses, 1, FromEmailAddress="News <news@elsewhere.com>"))
    assert code == "MessageRejected" and text.endswith(": news@elsewhere.com")  # the address, not the name
    assert len(simulator().outbox) == 1


@pytest.mark.parametrize(("sender", "reply_to", "refused"), [
    ("News <zoë@example.com>", None, "Local address contains control or whitespace"),
    ("news@exämple.com", None, "Domain contains illegal character"),
    ("News <news>", None, "Missing final '@domain'"),
    (SENDER, "Help <hélp@example.org>", "Local address contains control or whitespace"),
], ids=["local part", "domain", "no domain", "reply-to"])
def test_an_address_that_is_not_ascii_or_lacks_its_domain_is_refused_as_ses_does(ses, sender, reply_to, refused):
    extra = {"ReplyToAddresses": [reply_to]} if reply_to else {}
    code, status, text = error_of(lambda: send_bulk(ses, 1, FromEmailAddress=sender, **extra))
    assert (code, status, text) == ("BadRequestException", 400, refused)
    assert simulator().outbox == []


def test_a_display_name_not_mime_encoded_loses_its_non_ascii_characters_as_on_ses(ses):
    send_bulk(ses, 1, FromEmailAddress="Zoë Café <news@example.com>")
    assert simulator().outbox[0].from_address == "Zo Caf <news@example.com>"

def test_a_bulk_entry_whose_address_is_not_one_is_refused_alone_and_the_others_are_sent(ses):
    entries = [{"Destination": {"ToAddresses": [to]}} for to in ("r0@x.com", "legacy@localhost", "r2@x.com",
                                                                  "no-domain@")]
    results = ses.send_bulk_email(
        FromEmailAddress=SENDER, ConfigurationSetName="campaigns",
        DefaultContent={"Template": {"TemplateName": "welcome", "TemplateData": json.dumps({"code": "X"})}},
        BulkEmailEntries=entries)["BulkEmailEntryResults"]

    assert [r["Status"] for r in results] == ["SUCCESS", "INVALID_PARAMETER", "SUCCESS", "INVALID_PARAMETER"]
    assert "legacy@localhost" in results[1]["Error"] and "MessageId" not in results[1]
    assert [m.to for m in simulator().outbox] == [("r0@x.com",), ("r2@x.com",)]
    assert [r["MessageId"] for r in (results[0], results[2])] == [m.message_id for m in simulator().outbox]


def test_send_email_to_an_address_that_is_not_one_is_refused_as_a_whole(ses):
    code, _, message = error_of(lambda: send_simple(ses, to="legacy@localhost"))

    assert code == "BadRequestException" and "legacy@localhost" in message
    assert simulator().outbox == []


def test_every_send_is_refused_while_the_accounts_sending_is_paused(ses):
    ses.put_account_sending_attributes(SendingEnabled=False)

    assert not ses.get_account()["SendingEnabled"]
    assert error_of(lambda: send_bulk(ses, 2))[0] == "SendingPausedException"
    assert error_of(lambda: send_simple(ses))[0] == "SendingPausedException"
    ses.put_account_sending_attributes(SendingEnabled=True)
    assert [r["Status"] for r in send_bulk(ses, 2)["BulkEmailEntryResults"]] == ["SUCCESS", "SUCCESS"]
    assert len(simulator().outbox) == 2


def test_send_is_accepted_but_not_delivered_when_the_recipient_is_suppressed(ses):
    ses.put_suppressed_destination(EmailAddress="Gone@x.com", Reason="BOUNCE")
    ses.put_suppressed_destination(EmailAddress="angry@x.com", Reason="COMPLAINT")

    message_id = ses.send_email(
        FromEmailAddress=SENDER,
        Destination={"ToAddresses": ["gone@x.com", "ok@x.com"]},
        Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
    )["MessageId"]

    [record] = simulator().outbox
    assert record.message_id == message_id
    assert record.suppressed == ("gone@x.com",)
    assert record.delivered_to == ("ok@x.com",)
    got = ses.get_suppressed_destination(EmailAddress="gone@x.com")["SuppressedDestination"]
    assert (got["EmailAddress"], got["Reason"]) == ("Gone@x.com", "BOUNCE")
    listed = ses.list_suppressed_destinations(Reasons=["COMPLAINT"])["SuppressedDestinationSummaries"]
    assert [s["EmailAddress"] for s in listed] == ["angry@x.com"]


def test_suppression_list_is_paged_and_entries_removable_when_listing_and_deleting(ses):
    for i in range(3):
        ses.put_suppressed_destination(EmailAddress=f"s{i}@x.com", Reason="BOUNCE")

    first = ses.list_suppressed_destinations(PageSize=2)
    second = ses.list_suppressed_destinations(PageSize=2, NextToken=first["NextToken"])
    ses.delete_suppressed_destination(EmailAddress="s0@x.com")

    assert len(first["SuppressedDestinationSummaries"]) == 2
    assert len(second["SuppressedDestinationSummaries"]) == 1 and "NextToken" not in second
    assert error_of(lambda: ses.get_suppressed_destination(EmailAddress="s0@x.com"))[:2] == (
        "NotFoundException",
        404,
    )
    assert (
        error_of(lambda: ses.delete_suppressed_destination(EmailAddress="s0@x.com"))[0] == "NotFoundException"
    )


def test_suppression_list_is_filtered_by_date_when_given_a_start_date(ses):
    clock = runtime.current().clock
    ses.put_suppressed_destination(EmailAddress="old@x.com", Reason="BOUNCE")
    clock.advance(3600)
    ses.put_suppressed_destination(EmailAddress="new@x.com", Reason="BOUNCE")

    listed = ses.list_suppressed_destinations(StartDate=clock.now() - timedelta(minutes=1))

    assert [s["EmailAddress"] for s in listed["SuppressedDestinationSummaries"]] == ["new@x.com"]


def test_send_is_throttled_when_more_than_max_send_rate_in_one_virtual_second(ses):
    simulator().configure(max_send_rate=2)
    send_simple(ses)
    send_simple(ses)

    code, status, message = error_of(lambda: send_simple(ses))
    runtime.current().clock.advance(1)
    send_simple(ses)

    assert (code, status, message) == ("TooManyRequestsException", 429, "Maximum sending rate exceeded.")
    assert len(simulator().outbox) == 3


def test_bulk_send_is_throttled_when_its_entries_exceed_max_send_rate(ses):
    simulator().configure(max_send_rate=14)

    assert error_of(lambda: send_bulk(ses, 15))[0] == "TooManyRequestsException"
    assert len(send_bulk(ses, 14)["BulkEmailEntryResults"]) == 14


def test_send_is_refused_when_the_rolling_daily_quota_is_used_up(ses):
    simulator().configure(max_24h_send=3)
    send_bulk(ses, 3)
    clock = runtime.current().clock

    clock.advance(23 * 3600)
    code, status, message = error_of(lambda: send_simple(ses))
    clock.advance(3600)
    send_simple(ses)

    assert (code, status, message) == ("LimitExceededException", 400, "Daily message quota exceeded.")
    assert len(simulator().outbox) == 4


def test_exactly_max_send_rate_sends_are_accepted_when_sent_from_many_threads_at_once(ses):
    simulator().configure(max_send_rate=20)

    def attempt(i):
        try:
            return send_simple(ses, to=f"t{i}@x.com")["MessageId"]
        except ClientError as error:
            return error.response["Error"]["Code"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(40)))

    accepted = [o for o in outcomes if o != "TooManyRequestsException"]
    assert len(accepted) == 20
    assert sorted(r.message_id for r in simulator().outbox) == sorted(accepted)


def test_sends_are_not_limited_when_enforcement_is_off(ses):
    simulator().configure(max_send_rate=1, max_24h_send=1, enforce_rate=False)

    send_bulk(ses, 50)

    assert ses.get_account()["SendQuota"]["SentLast24Hours"] == 50


def test_get_account_reports_the_configured_quota_and_sent_last_24_hours_when_configured(ses):
    simulator().configure(max_send_rate=14, max_24h_send=50_000, production_access=True)
    send_bulk(ses, 10)
    ses.put_account_suppression_attributes(SuppressedReasons=["BOUNCE"])

    account = ses.get_account()
    runtime.current().clock.advance(24 * 3600)

    assert account["SendQuota"] == {"Max24HourSend": 50_000, "MaxSendRate": 14, "SentLast24Hours": 10}
    assert account["ProductionAccessEnabled"] is True and account["SendingEnabled"] is True
    assert account["SuppressionAttributes"]["SuppressedReasons"] == ["BOUNCE"]
    assert ses.get_account()["SendQuota"]["SentLast24Hours"] == 0


def test_get_account_reports_a_sandbox_account_when_not_configured(ses):
    simulator().reset()

    account = ses.get_account()

    assert account["SendQuota"] == {"Max24HourSend": 200, "MaxSendRate": 1, "SentLast24Hours": 0}
    assert account["ProductionAccessEnabled"] is False
    assert account["SuppressionAttributes"]["SuppressedReasons"] == ["BOUNCE", "COMPLAINT"]


def test_template_calls_fail_as_on_aws_when_the_template_exists_or_is_missing(ses):
    duplicate = error_of(lambda: ses.create_email_template(TemplateName="welcome", TemplateContent=TEMPLATE))
    missing = [
        error_of(lambda: ses.get_email_template(TemplateName="nope")),
        error_of(lambda: ses.update_email_template(TemplateName="nope", TemplateContent=TEMPLATE)),
        error_of(lambda: ses.delete_email_template(TemplateName="nope")),
    ]

    assert duplicate[:2] == ("AlreadyExistsException", 400)
    assert [e[:2] for e in missing] == [("NotFoundException", 404)] * 3


def test_templates_can_be_updated_listed_and_deleted_when_they_exist(ses):
    ses.create_email_template(TemplateName="bye", TemplateContent={"Subject": "Bye", "Html": "<p>bye</p>"})
    ses.update_email_template(TemplateName="welcome", TemplateContent={"Subject": "Hey {{name}}"})

    got = ses.get_email_template(TemplateName="welcome")
    names = [t["TemplateName"] for t in ses.list_email_templates()["TemplatesMetadata"]]
    ses.delete_email_template(TemplateName="bye")

    assert got["TemplateContent"] == {"Subject": "Hey {{name}}"}
    assert names == ["welcome", "bye"]
    assert [t["TemplateName"] for t in ses.list_email_templates()["TemplatesMetadata"]] == ["welcome"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda mp: mp.delattr(SESV2Response, "sesv2_backend"), "SESV2Response.sesv2_backend"),
        (lambda mp: mp.delattr(SESV2Response, "send_email"), "SESV2Response.send_email"),
        (
            lambda mp: mp.setattr(SESV2Response, "send_bulk_email", lambda self: "{}", raising=False),
            "SESV2Response.send_bulk_email",
        ),
    ],
)
def test_install_raises_moto_drift_error_naming_the_target_when_moto_changed_it(monkeypatch, change, named):
    sesv2.install()
    change(monkeypatch)

    with pytest.raises(MotoDriftError, match=named):
        sesv2.install()
