"""No email address in clear text in any line the functions log: a campaign with feedback runs on the engine with
every function logging at DEBUG, and what Powertools writes is read back and searched for each recipient."""

import io
import json
import logging

import pytest

from sesflow.engine.ses import simulator
from sesflow.engine.stack import LocalStack
from tests.conftest import ROOT, SENDER_DOMAIN
from tests.contacts import add_contact
from tests.workflow.feedback import Feedback

LIST = "members"
CAMPAIGN = "privacy-sale"
HELD_BACK = "Held.Back@Example.org"  # its template data is too big to send: SendBatch warns about it
FEEDBACK = {
    "hard.bounce@example.org": ["hard_bounce"],
    "complainer@example.org": ["complaint"],
    "soft.bounce@example.org": ["soft_bounce"],
    "on.probation@example.org": ["delivery"],
}
READERS = [f"reader{i:02d}@example.org" for i in range(24)]


@pytest.fixture
def debug_stack():
    """The project stack with every function at DEBUG (the engine's default is WARNING: a quiet console)."""
    overrides = {"POWERTOOLS_LOG_LEVEL": "DEBUG", "POWERTOOLS_TRACE_DISABLED": "true",
                 "POWERTOOLS_METRICS_DISABLED": "true"}
    with LocalStack(template_path=ROOT / "template.yaml", ses_identities=(SENDER_DOMAIN,),
                    lambda_env_overrides=overrides) as up:
        yield up


@pytest.fixture
def written():
    """Every line the functions' Powertools logger writes (its stdout handler, pointed at a buffer), at DEBUG.
    The level is set here too: the logger took its level from the environment of whichever invocation imported
    app.observability first in this process."""
    from app.observability import logger

    buffer = io.StringIO()
    previous_stream = logger.registered_handler.setStream(buffer)
    previous_level = logger.log_level
    logger.setLevel(logging.DEBUG)
    try:
        yield lambda: buffer.getvalue().splitlines()
    finally:
        logger.registered_handler.setStream(previous_stream)
        logger.setLevel(previous_level)


def seed(stack):
    statuses = {a: "ACTIVE" for a in [*READERS, *FEEDBACK, HELD_BACK.lower()]}
    statuses["on.probation@example.org"] = "RECOVERY"
    for address, status in statuses.items():
        attributes = {"first_name": address.split("@")[0]}
        if address == HELD_BACK.lower():
            attributes["city"] = "x" * 20_000
        add_contact(stack, address, [LIST], status=status, attributes=attributes)
    return statuses


def campaign():
    return {
        "id": CAMPAIGN,
        "sender": "news@example.com",
        "audience": {"lists": [LIST]},
        "variants": [{"name": "a", "subject": "{{first_name}}, the sale", "text": "In {{city}}"}],
        "personalization": {"fields": ["first_name", "city"], "defaults": {"first_name": "there", "city": "town"}},
    }


def feedback_for(message):
    return FEEDBACK.get(message.to[0], ["open"])


def test_no_function_logs_a_recipient_address_when_a_campaign_sends_and_feedback_comes_back(debug_stack, written):
    from app.observability import redact

    stack = debug_stack
    simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)
    statuses = seed(stack)

    with Feedback(stack, feedback_for):
        result = stack.run("CampaignStateMachine", campaign())
    stack.deliver_queues()

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.output["accounted"]["failed"] == 1  # the held-back recipient
    table = stack.outputs["RecipientsTableName"]
    after = {a: stack.client("dynamodb").get_item(TableName=table, Key={"address": {"S": a}})["Item"]["status"]["S"]
             for a in FEEDBACK}
    assert after == {"hard.bounce@example.org": "SUPPRESSED", "complainer@example.org": "SUPPRESSED",
                     "soft.bounce@example.org": "QUARANTINED", "on.probation@example.org": "ACTIVE"}

    lines = written()
    logged = [json.loads(line) for line in lines]
    # The capture sees the functions' own lines, so the search below is not of an empty log.
    assert len([r for r in logged if r.get("campaign_id") == CAMPAIGN]) >= 3
    addresses = {a.lower() for a in statuses}
    leaks = [(address, line) for line in lines for address in addresses if address in line.lower()]
    assert leaks == [], f"{len(leaks)} log lines name a recipient, e.g. {leaks[:3]}"

    # What they say instead: the redacted form, the same for every line about one recipient.
    (held,) = [r for r in logged if r["message"] == "recipient not sent"]
    assert (held["campaign_id"], held["recipient"]) == (CAMPAIGN, redact(HELD_BACK.lower()))
    assert "bytes" in held["reason"]
    moved = {r["recipient"]: r["to"] for r in logged if r["message"] == "recipient transition"}
    assert {redact(a): s for a, s in after.items()}.items() <= moved.items()
