"""Email addresses: the one normalization every key and comparison goes through, and how they are kept out of
logs (one hash, one redacted form, one scrubber). Pure: no AWS, no environment.

normalize is the RecipientsTable key, what a one-click link signs, what feedback and the SES suppression list are
matched on: an address SES v2 accepts as a destination, in one spelling. SES does not support SMTPUTF8 (RFC 6531):
the local part must be 7-bit ASCII, and a domain with non-ASCII characters must be sent in Punycode (RFC 3492).

address_hash is also what SendsTable stores to tell a call's recipients apart (app.sends), so it must never change.
"""

from __future__ import annotations

import hashlib
import re

import idna

# Anything shaped like local@domain.tld inside free text (a JSON log line, an exception message). Quotes, brackets,
# whitespace, backslashes (JSON escapes) and separators end it, so it never swallows the text around an address.
_IN_TEXT = re.compile(r"[^\s\"'<>()\[\]{},;:\\@]+@[^\s\"'<>()\[\]{},;:\\@]+\.[^\s\"'<>()\[\]{},;:\\@.]+")

# RFC 5321 4.5.3.1: a local part of at most 64 octets; a path (the address in angle brackets) of at most 256, so an
# address of at most 254; a domain name of at most 255 octets on the wire, 253 characters written out (RFC 1035
# 2.3.4), each label at most 63. SES documents no limits of its own: these are what any SMTP hop enforces.
MAX_LOCAL = 64
MAX_DOMAIN = 253
MAX_LABEL = 63
MAX_ADDRESS = 254
# A trailing "<address>" after a display name: `"Doe, Jane" <jane@example.com>`, `Jane <jane@example.com>`.
_ANGLE = re.compile(r"<([^<>]*)>\s*$")
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
# RFC 5322 3.2.3 atext, and dots between atoms (dot-atom): what SES accepts in a local part unquoted.
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
# RFC 1123 2.1 letters, digits and hyphens, not at either end.
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
# The common case at once (a bare ASCII address, its last label starting with a letter); anything else takes the
# checks one by one, which say what is wrong.
_PLAIN = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


class InvalidAddress(ValueError):
    """Not an address SES would send to. The message says why and never quotes the address: it gets logged."""


def normalize(value: str) -> str:
    """The one spelling of an address: `"Doe, Jane" <Jane.Doe@Bücher.DE>` -> `jane.doe@xn--bcher-kva.de`.

    Trimmed; a display name and angle brackets (or quotes around the whole address) removed; lower case; a domain
    with non-ASCII characters converted to Punycode by IDNA 2008 with the UTS #46 mapping, non-transitional (the
    `idna` package: what browsers and registries such as DENIC resolve; Python's own `encodings.idna` is IDNA 2003,
    which maps `ß` to `ss` and so names another domain than `straße.de`). Then it must be an address SES v2 accepts
    as a destination: a 7-bit ASCII local part (SES does not support SMTPUTF8) of RFC 5322 atoms separated by
    single dots, at most 64 characters; a domain of at least two labels of letters, digits and inner hyphens, at
    most 63 characters each and 253 in all, Punycode labels that decode, a top-level label not all digits (no IP
    address); no whitespace or control character; at most 254 characters in all. A quoted local part
    (`"john doe"@example.com`) and a domain literal (`user@[192.0.2.1]`) are refused.

    Idempotent: normalize(normalize(x)) == normalize(x). Raises InvalidAddress saying why (never quoting it)."""
    if not isinstance(value, str):
        raise InvalidAddress(f"not a string but {type(value).__name__}")
    text = value.strip()
    if _PLAIN.match(text):
        address = text.lower()
        if len(address) <= MAX_ADDRESS and address.index("@") <= MAX_LOCAL and "xn--" not in address:
            return address
    match = _ANGLE.search(text)
    if match:
        text = match.group(1).strip()
    if len(text) > 1 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    if not text:
        raise InvalidAddress("empty")
    if _SPACE_OR_CONTROL.search(text):
        raise InvalidAddress("contains whitespace or a control character")
    local, at, domain = text.rpartition("@")
    if not at:
        raise InvalidAddress("no @")
    if not local:
        raise InvalidAddress("nothing before the @")
    if not domain:
        raise InvalidAddress("nothing after the @")
    address = f"{_local(local)}@{_domain(domain)}"
    if len(address) > MAX_ADDRESS:
        raise InvalidAddress(f"{len(address)} characters, at most {MAX_ADDRESS}")
    return address


def _local(local: str) -> str:
    if not local.isascii():
        raise InvalidAddress("the part before the @ is not 7-bit ASCII (SES does not support SMTPUTF8, RFC 6531)")
    if len(local) > MAX_LOCAL:
        raise InvalidAddress(f"the part before the @ has {len(local)} characters, at most {MAX_LOCAL}")
    if local.startswith('"'):
        raise InvalidAddress("a quoted part before the @ is not supported")
    if not _LOCAL.match(local):
        if local.startswith(".") or local.endswith(".") or ".." in local:
            raise InvalidAddress("the part before the @ starts or ends with a dot or has two in a row")
        odd = next(c for c in local if c != "." and not _LOCAL.match(c))
        raise InvalidAddress(f"the part before the @ contains {odd!r}, which SES refuses unquoted")
    return local.lower()


def _domain(domain: str) -> str:
    if domain.startswith("["):
        raise InvalidAddress("an address literal after the @ is not supported: it needs a domain name")
    if domain.endswith("."):
        raise InvalidAddress("the domain ends with a dot")
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True, transitional=False).decode("ascii")
        except idna.IDNAError:  # its message quotes the domain
            raise InvalidAddress("the domain is not a valid internationalized domain name (IDNA 2008)") from None
    domain = domain.lower()
    labels = domain.split(".")
    if len(labels) < 2:
        raise InvalidAddress("the domain has no dot")
    if any(not label for label in labels):
        raise InvalidAddress("the domain has two dots in a row or starts with one")
    for label in labels:
        if len(label) > MAX_LABEL:
            raise InvalidAddress(f"a label of the domain has {len(label)} characters, at most {MAX_LABEL}")
        if not _LABEL.match(label):
            raise InvalidAddress("the domain has a character other than letters, digits, inner hyphens and dots")
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError):
                raise InvalidAddress("a label of the domain starts with xn-- but is not valid Punycode") from None
    if labels[-1].isdigit():
        raise InvalidAddress("the domain's last label is all digits: an IP address is not a domain name")
    if len(domain) > MAX_DOMAIN:
        raise InvalidAddress(f"the domain has {len(domain)} characters, at most {MAX_DOMAIN}")
    return domain


def address_hash(address: str) -> str:
    """12 hex digits of the lower-cased address's SHA-256: tells recipients apart without storing their address."""
    return hashlib.sha256(address.lower().encode()).hexdigest()[:12]


def redact(address: str) -> str:
    """What a log says instead of an address: a short stable hash lets an operator correlate lines (and find an
    address's lines by computing its form)."""
    return "rcpt-" + address_hash(address)


def scrub(text: str) -> str:
    """`text` with every address in it redacted: for text no one wrote with logs in mind (exceptions, reasons)."""
    return _IN_TEXT.sub(lambda match: redact(match.group(0)), text)
