"""RFC 8058 one-click unsubscribe on the engine: UnsubscribeFunction behind its function URL (template.yaml)."""

import json
import logging
import time

import pytest
from app.unsubscribe import ONE_CLICK, headers, token

from sesflow.engine.ses import feedback_record
from tests.contacts import add_contact

ADDRESS = "ada+news@example.com"
CAMPAIGN = "spring-sale"


def secret(stack) -> bytes:
    value = stack.client("secretsmanager").get_secret_value(SecretId=stack.physical_id("UnsubscribeSecret"))
    return value["SecretString"].encode()


def unsubscribe_link(stack, address=ADDRESS, campaign=CAMPAIGN) -> str:
    """The URL in the List-Unsubscribe header SendBatch would give this recipient."""
    value = headers(stack.outputs["UnsubscribeUrl"], secret(stack), campaign, address)[0]["Value"]
    return value[1:-1]


def add(stack, address=ADDRESS, status="ACTIVE"):
    add_contact(stack, address, ["newsletter"], status=status)


def item(stack, address=ADDRESS):
    return stack.client("dynamodb").get_item(TableName=stack.outputs["RecipientsTableName"],
                                             Key={"address": {"S": address}}, ConsistentRead=True).get("Item")


def audit(stack, address=ADDRESS):
    return stack.client("dynamodb").query(
        TableName=stack.outputs["EventsTableName"], KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"RECIPIENT#{address}"}})["Items"]


def everything_written(stack):
    return (stack.client("dynamodb").scan(TableName=stack.outputs["RecipientsTableName"])["Items"],
            stack.client("dynamodb").scan(TableName=stack.outputs["EventsTableName"])["Items"])


def one_click(stack, url):
    """What a mailbox provider sends when its user clicks "unsubscribe" (RFC 8058 section 3.2)."""
    return stack.request(url, "POST", body=ONE_CLICK, headers={"content-type": "application/x-www-form-urlencoded"})


def test_the_stack_has_the_secret_and_the_url_sendbatch_signs_with(stack):
    url = stack.outputs["UnsubscribeUrl"]
    config = stack.client("lambda").get_function_url_config(FunctionName=stack.physical_id("UnsubscribeFunction"))
    assert (config["FunctionUrl"], config["AuthType"]) == (url, "NONE")
    assert url.startswith("https://") and url.endswith(".lambda-url.us-east-1.on.aws/")
    key = secret(stack).decode()
    assert len(key) == 64 and key.isalnum()  # GenerateSecretString: PasswordLength 64, ExcludePunctuation
    send_batch = stack.client("lambda").get_function(FunctionName=stack.physical_id("SendBatchFunction"))
    env = send_batch["Configuration"]["Environment"]["Variables"]
    assert env["UNSUBSCRIBE_URL"] == url
    assert env["UNSUBSCRIBE_SECRET_ARN"] == stack.physical_id("UnsubscribeSecret")


def test_one_click_post_suppresses_the_recipient_with_an_audit_record(stack):
    add(stack)

    response = one_click(stack, unsubscribe_link(stack))

    assert response["statusCode"] == 200 and "will not receive more" in response["body"]
    stored = item(stack)
    assert (stored["status"]["S"], stored["status_cause"]["S"], stored["status_reason"]["S"]) == (
        "SUPPRESSED", "unsubscribe", "unsubscribed")
    (record,) = audit(stack)
    assert {k: v["S"] for k, v in record.items() if k in (
        "from_status", "to_status", "cause", "reason", "actor", "campaign_id")} == {
        "from_status": "ACTIVE", "to_status": "SUPPRESSED", "cause": "unsubscribe", "reason": "unsubscribed",
        "actor": "one-click-unsubscribe", "campaign_id": CAMPAIGN}
    assert record["event_id"]["S"] == stored["status_event"]["S"]
    assert token(secret(stack), CAMPAIGN, ADDRESS) not in json.dumps(everything_written(stack))


def test_a_second_post_changes_nothing_even_after_a_reinstate(stack):
    add(stack)
    url = unsubscribe_link(stack)
    assert one_click(stack, url)["statusCode"] == 200
    first = item(stack)

    again = one_click(stack, url)

    assert again["statusCode"] == 200 and "will not receive more" in again["body"]
    assert item(stack) == first and len(audit(stack)) == 1
    # An operator reinstates the recipient; the same POST replayed (a provider's retry) must not undo that.
    stack.client("dynamodb").update_item(
        TableName=stack.outputs["RecipientsTableName"], Key={"address": {"S": ADDRESS}},
        UpdateExpression="SET #s = :active, version = :v", ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":active": {"S": "ACTIVE"}, ":v": {"N": "2"}})
    assert one_click(stack, url)["statusCode"] == 200
    assert item(stack)["status"]["S"] == "ACTIVE" and len(audit(stack)) == 1


def test_get_shows_a_page_whose_button_posts_and_changes_nothing(stack):
    add(stack)
    url = unsubscribe_link(stack)
    before = everything_written(stack)

    page = stack.request(url, "GET")
    head = stack.request(url, "HEAD")

    assert page["statusCode"] == 200 and page["headers"]["content-type"].startswith("text/html")
    body = page["body"]
    assert '<form method="post" action="?c=spring-sale&amp;r=ada%2Bnews%40example.com&amp;t=' in body
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in body
    assert page["headers"]["cache-control"] == "no-store"
    assert head["statusCode"] == 200 and head["body"] == ""
    assert everything_written(stack) == before


def test_the_page_form_posts_what_unsubscribes(stack):
    add(stack)
    url = unsubscribe_link(stack)
    body = stack.request(url, "GET")["body"]
    action = body.split('action="', 1)[1].split('"', 1)[0].replace("&amp;", "&")

    response = stack.request(stack.outputs["UnsubscribeUrl"] + action, "POST", body=ONE_CLICK)

    assert response["statusCode"] == 200
    assert item(stack)["status"]["S"] == "SUPPRESSED"


@pytest.mark.parametrize("change, message", [
    (lambda url: url[:-1] + ("A" if url[-1] != "A" else "B"), "not valid"),  # tampered token
    (lambda url: url.replace("c=spring-sale", "c=fall-sale"), "not valid"),  # another campaign
    (lambda url: url.replace("r=ada%2Bnews", "r=bob%2Bnews"), "not valid"),  # another recipient
    (lambda url: url.replace("%2B", "+"), "not valid"),  # a '+' left raw reads back as a space
    (lambda url: url.split("&t=")[0], "incomplete"),  # no token
    (lambda url: url + "&t=again", "incomplete"),  # two tokens
])
def test_a_bad_link_is_refused_with_400_and_nothing_is_written(stack, change, message):
    add(stack)
    url = change(unsubscribe_link(stack))
    before = everything_written(stack)

    for method in ("POST", "GET"):
        response = stack.request(url, method, body=ONE_CLICK if method == "POST" else None)
        assert response["statusCode"] == 400, (method, response)
        assert message in response["body"]
    assert everything_written(stack) == before


def test_an_unknown_recipient_gets_the_same_answer_and_nothing_is_written(stack):
    add(stack)
    before = everything_written(stack)

    unknown = one_click(stack, unsubscribe_link(stack, address="nobody@example.com"))
    known = one_click(stack, unsubscribe_link(stack))

    assert (unknown["statusCode"], unknown["body"]) == (known["statusCode"], known["body"])
    assert item(stack, "nobody@example.com") is None
    assert not audit(stack, "nobody@example.com")
    recipients_after, events_after = everything_written(stack)
    assert len(recipients_after) == len(before[0]) and all("nobody" not in json.dumps(e) for e in events_after)


def test_unsubscribing_a_quarantined_recipient_ends_its_waiting_episode(stack):
    add(stack)
    stack.client("sqs").send_message(QueueUrl=stack.outputs["FeedbackQueueUrl"], MessageBody=json.dumps(
        feedback_record("soft_bounce", ADDRESS, stack.clock.now(), "0100-m1")))
    stack.deliver_queues()
    sfn = stack.client("stepfunctions")
    (episode,) = sfn.list_executions(stateMachineArn=stack.outputs["RecipientLifecycleStateMachineArn"])["executions"]
    deadline = time.monotonic() + 20
    while "episode_token" not in item(stack):  # the episode runs on its own thread: wait until it has parked
        assert time.monotonic() < deadline, "the episode never parked its token"
        time.sleep(0.02)
    assert item(stack)["status"]["S"] == "QUARANTINED"

    assert one_click(stack, unsubscribe_link(stack))["statusCode"] == 200

    result = stack.wait(episode["executionArn"], timeout=20)
    assert result.status == "SUCCEEDED" and result.output["ended_by"] == "unsubscribe"
    stored = item(stack)
    assert stored["status"]["S"] == "SUPPRESSED" and "episode" not in stored and "episode_token" not in stored
    assert [(r["from_status"]["S"], r["to_status"]["S"], r["actor"]["S"]) for r in audit(stack)
            if r["actor"]["S"] == "one-click-unsubscribe"] == [("QUARANTINED", "SUPPRESSED", "one-click-unsubscribe")]


def test_addresses_are_never_logged(stack):
    from app.observability import logger

    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(f"{record.getMessage()} {record.__dict__}")

    keep = Keep(level=logging.DEBUG)
    standard = logging.getLogger(logger.name)
    previous = standard.level
    standard.addHandler(keep)
    standard.setLevel(logging.DEBUG)
    try:
        add(stack)
        url = unsubscribe_link(stack)
        stack.request(url, "GET")
        one_click(stack, url)
        one_click(stack, url[:-1] + ("A" if url[-1] != "A" else "B"))
        one_click(stack, unsubscribe_link(stack, address="nobody@example.com"))
    finally:
        standard.removeHandler(keep)
        standard.setLevel(previous)

    assert len(seen) >= 3  # the POSTs; a GET logs nothing
    assert not [line for line in seen if "ada" in line.lower() or "nobody" in line.lower()]
