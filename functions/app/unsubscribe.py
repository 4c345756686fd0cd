"""RFC 8058 one-click unsubscribe: the signed link each campaign email carries, and what its POST does.

Every email of a campaign carries two headers (SES v2 SendBulkEmail: BulkEmailEntries[].ReplacementHeaders, a list
of {"Name": ..., "Value": ...}; at most 15 per message, a value of at most 995 printable ASCII characters):

    List-Unsubscribe: <https://<UnsubscribeFunction's URL>/?c=<campaign>&r=<address>&t=<token>>
    List-Unsubscribe-Post: List-Unsubscribe=One-Click

The token is an HMAC-SHA256 of (campaign, lower-cased address) under the stack's UnsubscribeSecret, base64url
without padding: a link works for one recipient of one campaign, and making one for anybody else, or editing its
campaign or address, needs the secret. The POST (what a mailbox provider sends for one click, and what the page
behind a GET submits) suppresses the recipient at once (reason "unsubscribed"), audited with actor
one-click-unsubscribe; the event id is derived from the token, so the same link POSTed again changes nothing
(app.handlers.unsubscribe applies it; this module only signs and verifies, for SendBatch and that handler).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from urllib.parse import quote, urlsplit, urlunsplit

from app.clients import client
from app.domain import addresses

ACTOR = "one-click-unsubscribe"
ONE_CLICK = "List-Unsubscribe=One-Click"  # the List-Unsubscribe-Post value, and the body of the POST (RFC 8058)
SECRET_ARN_ENV = "UNSUBSCRIBE_SECRET_ARN"
URL_ENV = "UNSUBSCRIBE_URL"
MAX_HEADER_VALUE = 995  # SES v2 MessageHeaderValue
# Query parameters of the link: the campaign, the recipient, the token.
CAMPAIGN, RECIPIENT, TOKEN = "c", "r", "t"
_CONTEXT = b"sesflow one-click unsubscribe v1\n"  # a key used for nothing else, but say what is signed anyway
_SECRET_TTL_S = 900.0  # a changed secret value is read within this long by a warm container
_secrets: dict[str, tuple[float, bytes]] = {}


def normalize(address: str) -> str:
    """The RecipientsTable key (app.recipients.normalize), taken from the pure app.domain.addresses so that
    SendBatch, which signs, imports no recipient writes (and the IAM check of its calls sees none). Raises
    InvalidAddress (a ValueError)."""
    return addresses.normalize(address)


def token(secret: bytes, campaign_id: str, address: str) -> str:
    """The link's proof: HMAC-SHA256 over the campaign and the address (as RecipientsTable keys it), base64url."""
    if not isinstance(secret, bytes) or not secret:
        raise ValueError("secret: must be non-empty bytes")
    signed = _CONTEXT + json.dumps([campaign_id, normalize(address)], ensure_ascii=False).encode()
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(secret: bytes, campaign_id: str, address: str, candidate: str) -> bool:
    """Whether `candidate` is the token of this campaign and address (in constant time)."""
    if not candidate or not campaign_id or not address:
        return False
    try:
        expected = token(secret, campaign_id, address)
    except addresses.InvalidAddress:  # no link is ever made for it
        return False
    return hmac.compare_digest(expected.encode(), candidate.encode("utf-8", "replace"))


def link(base_url: str, secret: bytes, campaign_id: str, address: str) -> str:
    """The one-click URL: base_url (the function URL) with ?c=&r=&t=, every value percent-encoded."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(f"base_url: must be an absolute http(s) URL, got {base_url!r}")
    address = normalize(address)
    query = "&".join(f"{name}={quote(value, safe='')}" for name, value in (
        (CAMPAIGN, campaign_id), (RECIPIENT, address), (TOKEN, token(secret, campaign_id, address))))
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/",
                       f"{parts.query}&{query}" if parts.query else query, ""))


def headers(base_url: str, secret: bytes, campaign_id: str, address: str) -> list[dict[str, str]]:
    """The RFC 8058 headers of one recipient's email, as SES v2 BulkEmailEntry.ReplacementHeaders takes them.

    Raises ValueError when the address is not one SES sends to (InvalidAddress) or the List-Unsubscribe value would
    pass SES's 995 characters."""
    value = f"<{link(base_url, secret, campaign_id, address)}>"
    if len(value) > MAX_HEADER_VALUE:
        raise ValueError(f"List-Unsubscribe: {len(value)} characters, over SES's {MAX_HEADER_VALUE}")
    return [{"Name": "List-Unsubscribe", "Value": value}, {"Name": "List-Unsubscribe-Post", "Value": ONE_CLICK}]


def secret(arn: str | None = None) -> bytes:
    """The signing key: UnsubscribeSecret's value (the ARN in UNSUBSCRIBE_SECRET_ARN), cached per container."""
    arn = arn or os.environ.get(SECRET_ARN_ENV)
    if not arn:
        raise RuntimeError(f"{SECRET_ARN_ENV} is not set: the template gives it to the functions that sign or verify")
    cached = _secrets.get(arn)
    if cached and time.monotonic() - cached[0] < _SECRET_TTL_S:
        return cached[1]
    value = client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"].encode()
    if not value:
        raise RuntimeError(f"{arn}: the secret is empty")
    _secrets[arn] = (time.monotonic(), value)
    return value


def event_id(candidate: str) -> str:
    """The unsubscribe's event id: derived from the token (not the token itself, which stays out of the tables)."""
    return "one-click-" + hashlib.sha256(candidate.encode()).hexdigest()[:32]
