"""Addresses out of logs: the hash, the redacted form, and the scrubber every log line goes through."""

import hashlib
import io
import json

import pytest
from app.domain.addresses import address_hash, redact, scrub


def test_address_hash_is_the_lowercased_sha256_prefix_sendstable_stores():
    expected = hashlib.sha256(b"jane.doe@example.com").hexdigest()[:12]
    assert address_hash("Jane.Doe@Example.com") == address_hash("jane.doe@example.com") == expected
    assert redact("Jane.Doe@Example.com") == f"rcpt-{expected}"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("jane@example.com: changed 4 times", ": changed 4 times"),
        ('{"to":"\\"Jane Doe\\" <Jane.Doe+news@mail.example.co.uk>","n":1}', '{"to":"\\"Jane Doe\\" <'),
        ("smtp; 550 5.1.1 <jane@example.com>... User unknown", "smtp; 550 5.1.1 <"),
        ("recipients: a@example.com, b@example.org.", "recipients: "),
    ],
)
def test_scrub_redacts_every_address_in_free_text_and_nothing_around_it(text, kept):
    scrubbed = scrub(text)
    assert "@" not in scrubbed and kept in scrubbed
    assert scrubbed.count("rcpt-") == text.count("@")


@pytest.mark.parametrize("text", [
    "arn:aws:sns:us-east-1:123456789012:sesflow-feedback", "batch all#000001 call 0@50", "user@localhost",
    "template data is 20036 bytes, at most 10000", "rcpt-86e0b9e56c17"])
def test_scrub_leaves_text_without_an_address_alone(text):
    assert scrub(text) == text


def test_logger_redacts_an_address_in_an_exception_it_logs():
    """A message nobody wrote for a log (here an exception naming an address) is redacted when it is written."""
    from app.observability import logger

    buffer = io.StringIO()
    previous = logger.registered_handler.setStream(buffer)
    try:
        try:
            raise RuntimeError("Jane@Example.com: changed 4 times while being updated")
        except RuntimeError:
            logger.exception("applying failed", extra={"note": "to bob@example.org"})
    finally:
        logger.registered_handler.setStream(previous)
    (line,) = buffer.getvalue().splitlines()
    record = json.loads(line)
    assert "@" not in line
    assert record["stack_trace"]["value"].startswith(redact("jane@example.com"))
    assert record["note"] == f"to {redact('bob@example.org')}"
