"""Email addresses kept out of logs: one hash, one redacted form, one scrubber. Pure: no AWS, no environment.

address_hash is also what SendsTable stores to tell a call's recipients apart (app.sends), so it must never change.
"""

from __future__ import annotations

import hashlib
import re

# Anything shaped like local@domain.tld inside free text (a JSON log line, an exception message). Quotes, brackets,
# whitespace, backslashes (JSON escapes) and separators end it, so it never swallows the text around an address.
_IN_TEXT = re.compile(r"[^\s\"'<>()\[\]{},;:\\@]+@[^\s\"'<>()\[\]{},;:\\@]+\.[^\s\"'<>()\[\]{},;:\\@.]+")


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
