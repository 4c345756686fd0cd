"""sesflow.engine.patches.sns: one signing certificate per subscription key, envelopes still signed and whole."""

import base64
import inspect
import json
from datetime import UTC, datetime

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns import models as sns_models
from moto.sns.models import Subscription

from sesflow.engine import runtime
from sesflow.engine.clock import VirtualClock
from sesflow.engine.patches import MotoDriftError, sns

REGION = "eu-west-1"
START = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def topic():
    sns.install()
    runtime.activate(runtime.Runtime(clock=VirtualClock(START)))
    with mock_aws():
        client, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
        arn = client.create_topic(Name="feedback")["TopicArn"]
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        client.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
        yield client, arn, sqs, url
    runtime.deactivate()


def received(sqs, url, count):
    bodies = []
    while len(bodies) < count:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        assert messages, f"only {len(bodies)} of {count} messages arrived"
        bodies += [json.loads(m["Body"]) for m in messages]
    return bodies


def public_keys():
    return sns_models.sns_backends[DEFAULT_ACCOUNT_ID][REGION]._message_public_keys


def test_the_envelope_is_signed_with_a_certificate_moto_serves(topic):
    client, arn, sqs, url = topic
    client.publish(TopicArn=arn, Message='{"eventType": "Send"}')

    [body] = received(sqs, url, 1)

    assert body["Type"] == "Notification" and body["TopicArn"] == arn and body["Message"] == '{"eventType": "Send"}'
    assert body["SignatureVersion"] == "2" and body["MessageId"] and "UnsubscribeURL" in body
    key_name = body["SigningCertURL"].rpartition("/")[2]
    certificate = x509.load_pem_x509_certificate(public_keys()[key_name])
    signed = (f"Message\n{body['Message']}\nMessageId\n{body['MessageId']}\nTimestamp\n{body['Timestamp']}\n"
              f"TopicArn\n{arn}\nType\nNotification\n")
    certificate.public_key().verify(base64.b64decode(body["Signature"]), signed.encode(), padding.PKCS1v15(),
                                    hashes.SHA256())  # raises if the signature is wrong


def test_one_certificate_serves_every_message(topic, monkeypatch):
    client, arn, sqs, url = topic
    client.publish(TopicArn=arn, Message="first")
    built = []
    original = x509.CertificateBuilder.sign
    monkeypatch.setattr(x509.CertificateBuilder, "sign", lambda *a, **k: built.append(1) or original(*a, **k))

    for i in range(20):
        client.publish(TopicArn=arn, Message=f"m{i}")

    bodies = received(sqs, url, 21)
    assert built == []
    assert {b["SigningCertURL"] for b in bodies} == {bodies[0]["SigningCertURL"]}
    assert len(public_keys()) == 1  # moto kept one PEM per message
    assert len({b["Signature"] for b in bodies}) == 21  # each message is still signed on its own


def test_the_timestamp_is_the_virtual_clock(topic):
    client, arn, sqs, url = topic
    runtime.current().clock.advance(3600)
    client.publish(TopicArn=arn, Message="later")

    [body] = received(sqs, url, 1)

    assert body["Timestamp"] == "2030-05-01T13:00:00.000Z"


def test_install_refuses_when_moto_signs_differently(monkeypatch):
    def get_post_data(self, message, message_id, subject, message_attributes=None):
        return {"Message": message}

    monkeypatch.setattr(Subscription, "get_post_data", get_post_data)
    with pytest.raises(MotoDriftError, match="get_post_data: source no longer contains 'CertificateBuilder'"):
        sns.install()


def test_install_twice_keeps_moto_s_original_underneath():
    sns.install()
    sns.install()

    assert Subscription.get_post_data is sns.get_post_data
    assert "CertificateBuilder" in inspect.getsource(sns.get_post_data.__sesflow_original__)
