"""Addresses out of logs: the hash, the redacted form, and the scrubber every log line goes through."""

import hashlib
import io
import json

import pytest
from app.domain.addresses import InvalidAddress, address_hash, normalize, redact, scrub
from hypothesis import given, settings
from hypothesis import strategies as st


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


# ---------------------------------------------------------------- normalize: the one spelling of an address


@pytest.mark.parametrize(
    ("raw", "address"),
    [
        ('"Doe, Jane" <Jane@Example.COM>', "jane@example.com"),
        ("Jane <j@x.com>", "j@x.com"),
        ("  <Jane.Doe+news@Mail.Example.co.uk>\n", "jane.doe+news@mail.example.co.uk"),
        ('"jane@example.com"', "jane@example.com"),
        ("user@bücher.de", "user@xn--bcher-kva.de"),
        ("User@BÜCHER.DE", "user@xn--bcher-kva.de"),
        ("user@XN--BCHER-KVA.de", "user@xn--bcher-kva.de"),
        ("user@straße.de", "user@xn--strae-oqa.de"),  # IDNA 2008: ß is its own letter (IDNA 2003 made it ss)
        ("o'brien!#$%&*+/=?^_`{|}~-@example.com", "o'brien!#$%&*+/=?^_`{|}~-@example.com"),
    ],
)
def test_normalize_removes_the_display_name_lower_cases_and_puts_an_idn_domain_in_punycode(raw, address):
    assert normalize(raw) == address


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "empty"),
        ("Jane <>", "empty"),
        ("jane.example.com", "no @"),
        ("@example.com", "nothing before the @"),
        ("jane@", "nothing after the @"),
        ("jane doe@example.com", "whitespace"),
        ("jane@exa\tmple.com", "whitespace"),
        ("jane\x00@example.com", "control character"),
        ("élodie@example.fr", "not 7-bit ASCII (SES does not support SMTPUTF8"),
        ("\u212aate@example.com", "not 7-bit ASCII"),  # KELVIN SIGN, which lower() would make an ASCII k
        ("a" * 65 + "@example.com", "65 characters, at most 64"),
        ('"john doe"@example.com', "whitespace"),
        ('"john"@example.com', "quoted part before the @ is not supported"),
        (".jane@example.com", "starts or ends with a dot"),
        ("jane.@example.com", "starts or ends with a dot"),
        ("ja..ne@example.com", "two in a row"),
        ("ja(ne)@example.com", "contains '('"),
        ("jane@localhost", "the domain has no dot"),
        ("jane@example..com", "two dots in a row"),
        ("jane@.example.com", "two dots in a row or starts with one"),
        ("jane@example.com.", "ends with a dot"),
        ("jane@exam_ple.com", "other than letters, digits, inner hyphens and dots"),
        ("jane@-example.com", "other than letters, digits, inner hyphens and dots"),
        ("jane@" + "a" * 64 + ".com", "64 characters, at most 63"),
        ("jane@" + ".".join(["a" * 60] * 5), "characters, at most 253"),
        ("jane@xn--zz.com", "not valid Punycode"),
        ("jane@😀.com", "not a valid internationalized domain name (IDNA 2008)"),
        ("jane@192.0.2.1", "an IP address is not a domain name"),
        ("jane@[192.0.2.1]", "an address literal"),
        ("a" * 64 + "@" + ".".join(["b" * 62] * 3) + ".com", "257 characters, at most 254"),
        (None, "not a string"),
    ],
)
def test_normalize_refuses_what_ses_would_not_send_to_saying_why_without_the_address(raw, why):
    with pytest.raises(InvalidAddress) as raised:
        normalize(raw)
    reason = str(raised.value)
    assert why in reason
    assert not (raw and raw in reason) and scrub(reason) == reason  # the reason is logged: no address in it


def test_invalid_address_is_a_value_error():
    assert issubclass(InvalidAddress, ValueError)


# Addresses as people paste them: any ASCII or non-ASCII text around an @, display names, IDN domains, case.
_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
_pasted = st.one_of(
    st.emails(),
    st.builds(lambda n, a: f'"{n}" <{a}>', _text, st.emails()),
    st.builds(lambda local, domain: f"{local}@{domain}", _text, _text),
    st.builds(lambda local, label, tld: f"{local}@{label}.{tld}",
              st.from_regex(r"[A-Za-z0-9.+_-]{1,20}", fullmatch=True),
              st.text(alphabet="abcçdeéfghiïjklmnoöpqrsßtuüvwxyzäåøæ-0123456789ÄÖÜ", min_size=1, max_size=20),
              st.sampled_from(["de", "com", "рф", "XN--P1AI", "co.uk"])),
    _text,
)


@settings(max_examples=500)
@given(_pasted)
def test_normalize_is_idempotent_and_accepts_only_ascii_addresses_ses_takes(value):
    try:
        address = normalize(value)
    except InvalidAddress:
        return
    assert normalize(address) == address
    local, _, domain = address.rpartition("@")
    assert local and local.isascii() and domain.isascii() and "." in domain
    assert address == address.lower() and len(address) <= 254 and len(local) <= 64
    assert not any(c.isspace() for c in address)


@given(st.emails())
def test_every_rfc_5322_dot_atom_address_is_accepted_as_itself_lower_cased(address):
    assert normalize(address) == address.lower()


def test_an_ses_suppression_list_address_is_matched_as_recipients_table_keys_it():
    """The snapshot skips the account's SES suppression list: its addresses are keyed as RecipientsTable's are
    (an IDN domain in Punycode), and one normalize refuses is still compared lower-cased."""
    from app.audience import suppressed_key

    assert suppressed_key("Jane@Bücher.de") == normalize("jane@xn--bcher-kva.de") == "jane@xn--bcher-kva.de"
    assert suppressed_key("Élodie@Example.fr") == "élodie@example.fr"
