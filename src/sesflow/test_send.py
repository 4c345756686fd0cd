"""`sesflow campaign test FILE --to ADDR[,ADDR...] [--as CONTACT]`: each variant once to each address, as the campaign
would send it, marked as a test.

Each message is one SES v2 SendEmail from the campaign's sender, through its configuration set (its own, else the
stack's), with the variant's content (the stored template's parts from GetEmailTemplate, or the inline ones) and the
template data SendBatchFunction would give the contact named by --as (personalization over its attributes), or the
personalization defaults. It is rendered here first, as SES renders it, so a missing variable is refused with its
name instead of being accepted by SES and dropped as a Rendering Failure.

A test is marked three ways: the subject starts with "[TEST] ", the message carries the tag `sesflow-test` (the
campaign id) and the header X-Sesflow-Test, and it carries none of the campaign's own tags and headers. Feedback
about it therefore counts toward no campaign (app.domain.feedback: TEST_TAG), and nothing is claimed in SendsTable
or counted on the campaign. It has no one-click unsubscribe header, and its {{unsubscribe_url}} is a stand-in link
(app.domain.templates.sesflow_data): a tester clicking it unsubscribes nobody.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from sesflow.errors import InputError, email_address
from sesflow.plan import PARTS, render_failure, template_data, variant_content
from sesflow.target import Target

SUBJECT_PREFIX = "[TEST] "
VARIANT_TAG = "sesflow-test-variant"


def addresses_of(given: str) -> list[str]:
    """--to's comma-separated addresses, each as app.domain.addresses.normalize keys it; InputError naming the one
    it refuses."""
    found = []
    for raw in (part.strip() for part in given.split(",")):
        if not raw:
            continue
        address = email_address(raw, "--to")
        if address not in found:
            found.append(address)
    if not found:
        raise InputError("--to: give at least one address")
    return found


def send_tests(target: Target, definition: dict[str, Any], to: str, as_contact: str | None = None,
               source: str | None = None) -> list[dict[str, Any]]:
    """Send every variant to every address of `to`; returns one {variant, to, message_id} per message. `source`:
    the definition's file, for the message when the definition is not valid."""
    target.lambda_settings()
    from app import clients, contacts
    from app.domain.campaign import parse_campaign
    from app.domain.feedback import TEST_HEADER, TEST_TAG
    from app.domain.templates import sesflow_data
    from app.errors import CampaignDefinitionError
    from app.settings import settings

    config = settings()
    try:
        campaign = parse_campaign(definition, allowed_configuration_sets=config.campaign_configuration_sets)
    except CampaignDefinitionError as error:
        where = f"{source}: " if source else ""
        raise InputError(f"{where}the campaign definition is not valid: {error}") from None
    recipients = addresses_of(to)
    data = {**campaign.personalization.defaults, **sesflow_data()}  # its {{unsubscribe_url}} unsubscribes nobody
    if as_contact:
        key = email_address(as_contact, "--as")
        found = contacts.read_contacts([key], config, with_markers=False).get(key)
        if found is None or found.erased:
            raise LookupError(f"--as: no contact {key} in {config.recipients_table} ({target.name})")
        data = template_data(campaign, found.attributes)
    ses = clients.client("sesv2")
    contents = {}
    for variant in campaign.variants:
        content = variant_content(ses, variant)
        failed = render_failure(content, data)
        if failed:
            who = f"contact {as_contact}" if as_contact else "the personalization defaults"
            raise ValueError(f"variant {variant.name}: {failed[0]} does not render for {who}: {failed[1]} "
                             f"(nothing sent)")
        contents[variant.name] = content
    configuration_set = campaign.configuration_set or config.configuration_set
    sent = []
    for variant in campaign.variants:
        content = dict(contents[variant.name])
        content["Subject"] = SUBJECT_PREFIX + content.get("Subject", "")
        for address in recipients:
            try:
                response = ses.send_email(
                    FromEmailAddress=campaign.from_header,
                    **({"ReplyToAddresses": campaign.reply_to_addresses} if campaign.reply_to else {}),
                    Destination={"ToAddresses": [address]},
                    ConfigurationSetName=configuration_set,
                    EmailTags=[{"Name": TEST_TAG, "Value": campaign.id}, {"Name": VARIANT_TAG, "Value": variant.name}],
                    Content={"Template": {
                        "TemplateContent": {k: content[k] for k, _ in PARTS if k in content},
                        "TemplateData": json.dumps(data, separators=(",", ":"), ensure_ascii=False),
                        "Headers": [{"Name": TEST_HEADER, "Value": campaign.id}],
                    }},
                )
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                message = error.response.get("Error", {}).get("Message", "")
                raise ValueError(f"variant {variant.name} to {address}: SES refused it ({code}: {message}); "
                                 f"{len(sent)} test message(s) sent before") from None
            sent.append({"variant": variant.name, "to": address, "message_id": response["MessageId"]})
    return sent
