"""sesflow.engine.patches.sqs: sending stays O(1) per message, and the counts are still right."""

import boto3
import pytest
from moto import mock_aws
from moto.sqs.models import Queue

from sesflow.engine.patches import MotoDriftError, sqs


@pytest.fixture
def queue_url():
    sqs.install()
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        yield client, client.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]


def test_send_does_not_count_the_queue_when_it_grows(queue_url, monkeypatch):
    client, url = queue_url
    counted = []
    original = Queue.approximate_number_of_messages
    monkeypatch.setattr(Queue, "approximate_number_of_messages",
                        property(lambda self: counted.append(1) or original.fget(self)))

    for i in range(50):
        client.send_message(QueueUrl=url, MessageBody=str(i))

    assert counted == []


def test_queue_attributes_still_report_counts_and_settings(queue_url):
    client, url = queue_url
    for i in range(3):
        client.send_message(QueueUrl=url, MessageBody=str(i))
    client.receive_message(QueueUrl=url, MaxNumberOfMessages=1)

    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

    assert attributes["ApproximateNumberOfMessages"] == "2"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert attributes["VisibilityTimeout"] == "60"


def test_install_refuses_when_moto_builds_attributes_differently(monkeypatch):
    monkeypatch.setattr(sqs, "_original", property(lambda self: {}))
    monkeypatch.setattr(Queue, "attributes", property(lambda self: {}))
    with pytest.raises(MotoDriftError, match="Queue.attributes"):
        sqs.install()


def test_delete_removes_only_that_message_and_refuses_an_unknown_handle(queue_url):
    client, url = queue_url
    for i in range(5):
        client.send_message(QueueUrl=url, MessageBody=str(i))
    received = client.receive_message(QueueUrl=url, MaxNumberOfMessages=3)["Messages"]

    client.delete_message(QueueUrl=url, ReceiptHandle=received[1]["ReceiptHandle"])
    client.delete_message(QueueUrl=url, ReceiptHandle=received[1]["ReceiptHandle"])  # twice is fine

    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
        "2", "2")
    with pytest.raises(client.exceptions.ReceiptHandleIsInvalid):
        client.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")


def test_receive_still_skips_delayed_and_in_flight_messages(queue_url):
    client, url = queue_url
    client.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    client.send_message(QueueUrl=url, MessageBody="now")
    client.send_message(QueueUrl=url, MessageBody="also now")

    first = client.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
    rest = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]

    assert [m["Body"] for m in first] == ["now"]
    assert [m["Body"] for m in rest] == ["also now"]  # "now" is in flight, "later" still delayed
