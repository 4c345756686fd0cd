"""SNS delivery to SQS and HTTP subscriptions without a new X.509 certificate per message.

moto 5.2.5's `Subscription.get_post_data` (the SNS envelope of every non-raw delivery) builds and signs a
fresh certificate for the subscription's key on every publish, names it with a new uuid and stores its PEM in
the default account's `_message_public_keys`, which therefore grows by one PEM per message. That is about
3 of the 4 ms moto spends on a publish to one SQS subscriber (the RSA signature of the message itself is
the rest). SNS signs with one certificate for a long time, so here the certificate and its name are made
once per subscription key and the PEM is registered once (again after a moto reset). The envelope is
otherwise moto's: same fields, a real signature over the same string, SignatureVersion 2, and
SigningCertURL naming a PEM that the key verifies. Its Timestamp is the engine's virtual clock, as every
other time the engine reports is.
"""

from __future__ import annotations

import base64
import inspect
import threading
from datetime import timedelta
from typing import Any

import cryptography.x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509 import Name, NameAttribute
from cryptography.x509.oid import NameOID
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.utils import iso_8601_datetime_with_milliseconds, utcnow
from moto.moto_api._internal import mock_random
from moto.sns import models as sns_models
from moto.sns.models import Subscription

from sesflow.engine import runtime
from sesflow.engine.patches import MotoDriftError

_TARGET = "moto.sns.models.Subscription.get_post_data"
_MARKERS = ("CertificateBuilder", "self.private_key()", "_message_public_keys", "string_to_sign",
            '"SigningCertURL"', '"UnsubscribeURL"', 'signature_version = "2"')
_PARAMS = ("self", "message", "message_id", "subject", "message_attributes")
_lock = threading.Lock()
# id(private key) -> (the key, certificate PEM, its file name); the key is kept so its id stays unique
_certificates: dict[int, tuple[Any, bytes, str]] = {}


def _certificate(key: Any) -> tuple[bytes, str]:
    """The PEM and name of one certificate for this key, made on first use."""
    with _lock:
        known = _certificates.get(id(key))
        if known is None or known[0] is not key:
            issuer = [
                NameAttribute(NameOID.COUNTRY_NAME, "US"),
                NameAttribute(NameOID.ORGANIZATION_NAME, "Amazon"),
                NameAttribute(NameOID.COMMON_NAME, "Amazon RSA 2048 M01"),
            ]
            cert = (
                cryptography.x509.CertificateBuilder()
                .subject_name(Name([NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")]))
                .issuer_name(Name(issuer))
                .public_key(key.public_key())
                .serial_number(cryptography.x509.random_serial_number())
                .not_valid_before(utcnow())
                .not_valid_after(utcnow() + timedelta(days=365))
                .sign(key, hashes.SHA256())
            )
            name = f"SimpleNotificationService-{str(mock_random.uuid4()).replace('-', '')}.pem"
            known = _certificates[id(key)] = (key, cert.public_bytes(serialization.Encoding.PEM), name)
        return known[1], known[2]


def _timestamp() -> str:
    return iso_8601_datetime_with_milliseconds(runtime.current().clock.now().replace(tzinfo=None))


def get_post_data(self: Subscription, message: str, message_id: str, subject: str | None,
                  message_attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    """moto's envelope, signed with the subscription's key and its one cached certificate."""
    key = self.private_key()
    pem, key_name = _certificate(key)
    timestamp = _timestamp()
    string_to_sign = (f"Message\n{message}\nMessageId\n{message_id}\nTimestamp\n{timestamp}\n"
                      f"TopicArn\n{self.topic.arn}\nType\nNotification\n")
    signature = key.sign(string_to_sign.encode("UTF-8"), padding.PKCS1v15(), hashes.SHA256())
    # As moto does: the PEM is fetched without credentials, so it lives in the default account's backend.
    region = self.topic.sns_backend.region_name
    public_keys = sns_models.sns_backends[DEFAULT_ACCOUNT_ID][region]._message_public_keys
    if key_name not in public_keys:
        public_keys[key_name] = pem
    post_data: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": self.topic.arn,
        "Message": message,
        "Timestamp": timestamp,
        "SignatureVersion": "2",
        "Signature": base64.b64encode(signature).decode("utf-8"),
        "SigningCertURL": f"https://sns.{region}.amazonaws.com/{key_name}",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:"
                          f"us-east-1:{self.account_id}:{self.topic.name}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
    }
    if subject:
        post_data["Subject"] = subject
    if message_attributes:
        post_data["MessageAttributes"] = message_attributes
    return post_data


def _original() -> Any:
    value = Subscription.__dict__.get("get_post_data")
    value = getattr(value, "__sesflow_original__", value)
    if not callable(value):
        raise MotoDriftError(f"{_TARGET}: missing")
    source = inspect.getsource(value)
    for marker in _MARKERS:
        if marker not in source:
            raise MotoDriftError(f"{_TARGET}: source no longer contains {marker!r}")
    if tuple(inspect.signature(value).parameters) != _PARAMS:
        raise MotoDriftError(f"{_TARGET}: parameters are no longer {_PARAMS}")
    if not callable(getattr(Subscription, "private_key", None)):
        raise MotoDriftError("moto.sns.models.Subscription.private_key: missing")
    if not hasattr(sns_models, "sns_backends"):
        raise MotoDriftError("moto.sns.models.sns_backends: missing")
    if "_message_public_keys" not in inspect.getsource(sns_models.SNSBackend.__init__):
        raise MotoDriftError("moto.sns.models.SNSBackend: no longer keeps _message_public_keys")
    return value


def install() -> None:
    """Check moto still signs as expected, then replace get_post_data. Safe to call again."""
    original = _original()
    get_post_data.__sesflow_original__ = original  # type: ignore[attr-defined]
    Subscription.get_post_data = get_post_data
