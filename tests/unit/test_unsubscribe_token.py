"""The one-click unsubscribe link (app.unsubscribe): its token, and the headers SES v2 sends it in."""

from urllib.parse import parse_qs, urlsplit

import botocore.session
import pytest
from app import unsubscribe
from app.unsubscribe import headers, link, token, verify
from botocore.validate import ParamValidator

SECRET = b"k" * 64
BASE = "https://abc123.lambda-url.us-east-1.on.aws/"


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def test_a_token_verifies_for_its_campaign_and_address_only():
    t = token(SECRET, "spring-sale", "ada@example.com")

    assert verify(SECRET, "spring-sale", "ada@example.com", t)
    assert verify(SECRET, "spring-sale", "  Ada@Example.COM ", t)  # the address as RecipientsTable keys it
    assert not verify(SECRET, "fall-sale", "ada@example.com", t)
    assert not verify(SECRET, "spring-sale", "bob@example.com", t)
    assert not verify(b"another secret", "spring-sale", "ada@example.com", t)


def test_a_token_is_43_url_safe_characters_and_depends_on_every_input():
    t = token(SECRET, "spring-sale", "ada@example.com")

    assert len(t) == 43 and set(t) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    # Moving text between the campaign and the address is a different message, not the same token.
    assert token(SECRET, "ab", "c@example.com") != token(SECRET, "a", "bc@example.com")
    assert token(SECRET, "spring-sale", "ada@example.com") == t  # deterministic: a resend carries the same link


@pytest.mark.parametrize("tampered", [
    "", "x", "spring",
    "flip",  # one character changed, below
    "truncated",
    "padded",
    "non-ascii é",
])
def test_a_tampered_token_is_refused(tampered):
    t = token(SECRET, "spring-sale", "ada@example.com")
    candidate = {
        "flip": t[:10] + ("A" if t[10] != "A" else "B") + t[11:],
        "truncated": t[:-1],
        "padded": t + "=",
    }.get(tampered, tampered)

    assert not verify(SECRET, "spring-sale", "ada@example.com", candidate)


def test_an_empty_secret_signs_nothing():
    with pytest.raises(ValueError, match="secret"):
        token(b"", "spring-sale", "ada@example.com")


def test_headers_are_rfc_8058_one_click_in_the_shape_of_ses_replacement_headers():
    entries = headers(BASE, SECRET, "spring-sale", "Ada@Example.com")

    assert [h["Name"] for h in entries] == ["List-Unsubscribe", "List-Unsubscribe-Post"]
    assert entries[1]["Value"] == "List-Unsubscribe=One-Click"
    value = entries[0]["Value"]
    assert value.startswith(f"<{BASE}?") and value.endswith(">")
    params = query(value[1:-1])
    assert params == {"c": ["spring-sale"], "r": ["ada@example.com"],
                      "t": [token(SECRET, "spring-sale", "ada@example.com")]}
    # botocore's own model of SendBulkEmail accepts them as a BulkEmailEntry's ReplacementHeaders.
    model = botocore.session.get_session().get_service_model("sesv2")
    entry = {"Destination": {"ToAddresses": ["ada@example.com"]}, "ReplacementHeaders": entries}
    report = ParamValidator().validate(entry, model.shape_for("BulkEmailEntry"))
    assert not report.has_errors(), report.generate_report()


def test_plus_addresses_and_odd_campaign_ids_survive_url_encoding():
    address = "ada+news/2026@example.com"
    url = link(BASE, SECRET, "spring sale&more", address)

    raw = urlsplit(url).query
    assert "+" not in raw and "@" not in raw and " " not in raw  # a '+' left raw would read back as a space
    assert "r=ada%2Bnews%2F2026%40example.com" in raw
    params = query(url)
    assert params["r"] == [address] and params["c"] == ["spring sale&more"]
    assert verify(SECRET, params["c"][0], params["r"][0], params["t"][0])
    assert all(32 <= ord(ch) < 127 for ch in url)  # SES: printable ASCII only


def test_a_base_url_with_a_path_or_a_query_keeps_it():
    assert link("https://mail.example.com/unsubscribe", SECRET, "c1", "a@example.com").startswith(
        "https://mail.example.com/unsubscribe?c=c1&r=")
    assert link("https://x.example.com/?lang=en", SECRET, "c1", "a@example.com").startswith(
        "https://x.example.com/?lang=en&c=c1&r=")
    with pytest.raises(ValueError, match="base_url"):
        link("lambda-url.example.com", SECRET, "c1", "a@example.com")


def test_a_header_value_over_ses_limit_is_refused():
    # The longest local part SES takes, every character percent-encoded, behind a long base URL.
    with pytest.raises(ValueError, match="995"):
        headers(BASE + "x" * 700, SECRET, "spring-sale", "%" * 64 + "@example.com")
    with pytest.raises(ValueError, match="at most 64"):  # no SMTP hop takes a longer local part
        headers(BASE, SECRET, "spring-sale", "%" * 400 + "@example.com")


def test_the_secret_is_read_once_and_cached_per_arn(monkeypatch):
    calls = []

    class FakeSecretsManager:
        def get_secret_value(self, SecretId):  # noqa: N803 -- boto3's keyword
            calls.append(SecretId)
            return {"SecretString": f"value of {SecretId}"}

    monkeypatch.setattr(unsubscribe, "client", lambda service: FakeSecretsManager())
    monkeypatch.setattr(unsubscribe, "_secrets", {})
    monkeypatch.setenv(unsubscribe.SECRET_ARN_ENV, "arn:one")

    assert unsubscribe.secret() == b"value of arn:one"
    assert unsubscribe.secret() == b"value of arn:one"
    assert unsubscribe.secret("arn:two") == b"value of arn:two"
    assert calls == ["arn:one", "arn:two"]
    monkeypatch.delenv(unsubscribe.SECRET_ARN_ENV)
    with pytest.raises(RuntimeError, match="UNSUBSCRIBE_SECRET_ARN"):
        unsubscribe.secret()


def test_the_event_id_is_derived_from_the_token_but_does_not_contain_it():
    t = token(SECRET, "spring-sale", "ada@example.com")

    assert unsubscribe.event_id(t) == unsubscribe.event_id(t)
    assert t not in unsubscribe.event_id(t)
    assert unsubscribe.event_id(t) != unsubscribe.event_id(token(SECRET, "fall-sale", "ada@example.com"))


@pytest.mark.parametrize("address", ["Ada@Example.com", "  bob+x@example.org\n", "Élodie <elodie@ÉCOLE.fr>"])
def test_the_signed_address_is_the_recipients_table_key(address):
    from app import recipients

    assert unsubscribe.normalize(address) == recipients.normalize(address)


def test_no_link_is_made_or_verified_for_what_ses_would_not_send_to():
    """A non-ASCII local part (SES does not support SMTPUTF8): no token to sign, and none verifies."""
    with pytest.raises(ValueError, match="7-bit ASCII"):
        token(SECRET, "spring-sale", "élodie@example.fr")
    assert not verify(SECRET, "spring-sale", "élodie@example.fr", token(SECRET, "spring-sale", "elodie@example.fr"))
