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


def record_campaign(stack, lists=("newsletter",), campaign=CAMPAIGN):
    """The campaign's control item as ValidateCampaign writes it: its frozen definition names its lists."""
    stack.client("dynamodb").put_item(TableName=stack.outputs["CampaignsTableName"], Item={
        "campaign_id": {"S": campaign}, "definition": {"S": json.dumps({"id": campaign, "audience": {
            "lists": list(lists)}})}})


def states(stack, address=ADDRESS):
    found = stack.client("dynamodb").query(
        TableName=stack.outputs["MembershipsTableName"], IndexName="ContactListsIndex",
        KeyConditionExpression="address = :a", ExpressionAttributeValues={":a": {"S": address}})["Items"]
    return {i["list_id"]["S"]: i["state"]["S"] for i in found}


def test_one_click_unsubscribes_from_the_campaigns_lists_only_audited_and_keeps_the_status(stack):
    add_contact(stack, ADDRESS, ["newsletter", "offers", "product-news"])
    record_campaign(stack, lists=("newsletter", "offers"))

    response = one_click(stack, unsubscribe_link(stack))

    assert response["statusCode"] == 200 and "will not receive these emails" in response["body"]
    assert states(stack) == {"newsletter": "UNSUBSCRIBED", "offers": "UNSUBSCRIBED", "product-news": "SUBSCRIBED"}
    assert item(stack)["status"]["S"] == "ACTIVE"
    counters = stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"],
                                                 Key={"campaign_id": {"S": CAMPAIGN + "#stats"}})["Item"]
    assert counters["unsubscribes"]["N"] == "1"  # the campaign's report counts it
    records = sorted(audit(stack), key=lambda r: r["list_id"]["S"])
    assert [{k: r[k]["S"] for k in ("kind", "list_id", "to_state", "actor", "campaign_id")} for r in records] == [
        {"kind": "subscription", "list_id": name, "to_state": "UNSUBSCRIBED", "actor": "one-click-unsubscribe",
         "campaign_id": CAMPAIGN} for name in ("newsletter", "offers")]
    assert token(secret(stack), CAMPAIGN, ADDRESS) not in json.dumps(everything_written(stack))


def test_a_second_post_changes_nothing_even_after_a_resubscribe(stack):
    add(stack)
    record_campaign(stack)
    url = unsubscribe_link(stack)
    assert one_click(stack, url)["statusCode"] == 200

    again = one_click(stack, url)

    assert again["statusCode"] == 200 and states(stack) == {"newsletter": "UNSUBSCRIBED"} and len(audit(stack)) == 1
    # An operator resubscribes the contact; the same POST replayed (a provider's retry) must not undo that.
    stack.client("dynamodb").update_item(
        TableName=stack.outputs["MembershipsTableName"],
        Key={"list_id": {"S": "newsletter"}, "address": {"S": ADDRESS}},
        UpdateExpression="SET #s = :sub", ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":sub": {"S": "SUBSCRIBED"}})
    assert one_click(stack, url)["statusCode"] == 200
    assert states(stack) == {"newsletter": "SUBSCRIBED"} and len(audit(stack)) == 1


def test_the_pages_second_button_unsubscribes_from_everything(stack):
    add_contact(stack, ADDRESS, ["newsletter", "offers"])
    record_campaign(stack)
    body = stack.request(unsubscribe_link(stack), "GET")["body"]
    forms = body.split("<form ")[1:]
    assert len(forms) == 2 and 'name="scope" value="all"' in forms[1] and "Unsubscribe from everything" in forms[1]
    action = forms[1].split('action="', 1)[1].split('"', 1)[0].replace("&amp;", "&")

    response = stack.request(stack.outputs["UnsubscribeUrl"] + action, "POST", body=ONE_CLICK + "&scope=all")

    assert response["statusCode"] == 200 and "unsubscribed from everything" in response["body"]
    assert states(stack) == {"newsletter": "UNSUBSCRIBED", "offers": "UNSUBSCRIBED"}
    assert "unsubscribed_all_at" in item(stack) and item(stack)["status"]["S"] == "ACTIVE"


def test_a_link_whose_campaign_is_not_recorded_unsubscribes_from_everything(stack):
    add_contact(stack, ADDRESS, ["newsletter", "offers"])

    assert one_click(stack, unsubscribe_link(stack))["statusCode"] == 200

    assert states(stack) == {"newsletter": "UNSUBSCRIBED", "offers": "UNSUBSCRIBED"}


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
    assert states(stack) == {"newsletter": "UNSUBSCRIBED"}


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


def test_unsubscribing_a_quarantined_contact_leaves_its_lifecycle_and_episode_alone(stack):
    add(stack)
    record_campaign(stack)
    stack.client("sqs").send_message(QueueUrl=stack.outputs["FeedbackQueueUrl"], MessageBody=json.dumps(
        feedback_record("soft_bounce", ADDRESS, stack.clock.now(), "0100-m1")))
    stack.deliver_queues()
    deadline = time.monotonic() + 20
    while "episode_token" not in item(stack):  # the episode runs on its own thread: wait until it has parked
        assert time.monotonic() < deadline, "the episode never parked its token"
        time.sleep(0.02)

    assert one_click(stack, unsubscribe_link(stack))["statusCode"] == 200

    stored = item(stack)
    assert stored["status"]["S"] == "QUARANTINED" and "episode_token" in stored
    assert states(stack) == {"newsletter": "UNSUBSCRIBED"}


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
