"""Who engaged: a person, or a machine that opened or clicked in their place. Pure, stdlib only.

SES's Open and Click records say when (`timestamp`), from where (`ipAddress`) and with what (`userAgent`); a
Click also which link (`link`, `linkTags`); `mail.timestamp` is when the message was sent. No field marks an
automated open or click ("Contents of event data that Amazon SES publishes to Amazon SNS", Open object and
Click object, SES Developer Guide), yet machines make many: mail security gateways fetch every link of a message
as it arrives to scan it, and Apple Mail Privacy Protection's proxy loads every message's images, the open pixel
among them, whether or not anyone reads it. is_machine tells them apart on two signals the record does carry:

- the user agent: a scanner that names itself (SCANNER_AGENTS), or Apple's proxy's bare "Mozilla/5.0"
  (APPLE_PROXY_AGENT);
- the time from the send: an open or click under MACHINE_SECONDS after mail.timestamp came within seconds of
  delivery, before a person could have read the message.

Not machines: opens through Gmail's image proxy ("... (via ggpht.com GoogleImageProxy)"), which fetches the
images when the recipient opens the message, so the open is the person's.

Machine opens and clicks count on their own (`machine_opens`, `machine_clicks`: app.domain.feedback_apply) and
never as a person's engagement: they are left out of `opens` and `clicks`, and never take a recipient's first open
or first click, so the A/B decision (unique openers or clickers) compares people.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.domain.campaign import BANDIT, TEST_THEN_WINNER
from app.domain.feedback import FeedbackEvent

ENGAGEMENT_KINDS = frozenset({"open", "click"})

# Substrings (matched case-insensitively) that mail security scanners and HTTP libraries put in the user agent of
# the requests they make for a message's links and images. No vendor documents its scanner's user agent: these are
# the names senders' logs show (Barracuda, Mimecast, Proofpoint's URL Defense, Microsoft Defender for Office 365's
# Safe Links, Cisco IronPort, Trend Micro, Sophos) and the libraries' own defaults. Incomplete by nature: a scanner
# that poses as a browser is caught by the time signal instead.
SCANNER_AGENTS = (
    "barracuda", "mimecast", "proofpoint", "safelinks", "ironport", "trendmicro", "sophos", "fortiguard",
    "python-requests", "python-urllib", "go-http-client", "curl/", "wget/", "okhttp", "java/", "libwww-perl",
    "headlesschrome", "phantomjs", "bot/", "crawler", "spider",
)
# Apple Mail Privacy Protection's proxy fetches remote content with this user agent and nothing after it, where
# Apple Mail itself gives the platform ("Mozilla/5.0 (iPhone; ...) AppleWebKit/..."). Sources: the AWS Messaging
# & Targeting blog, "Apple Mail's iOS15 Privacy Protection Impact to Senders" (the proxy hides the recipient's IP
# address and user agent and loads every message's pixel); ClickDimensions, "Introduction to Adjusted Opens"
# (user agent "Mozilla/5.0" from Apple's addresses is its non-human open).
APPLE_PROXY_AGENT = "Mozilla/5.0"
# SES delivers most messages within seconds of the send (the Delivery object's processingTimeMillis); a scanner
# fetches a message's links as it arrives. SES's own example records have a person open 30 s and click 80 s after
# the send (Examples of event data that Amazon SES publishes to Amazon SNS, Open record and Click record): an open
# or click under this many seconds after the send is a machine's.
MACHINE_SECONDS = 10.0


def is_machine(event: FeedbackEvent) -> str | None:
    """Why an Open or Click was made by a machine (its user agent, or how soon after the send it came), or None:
    a person's, as far as the record tells, and any other kind of event."""
    if event.kind not in ENGAGEMENT_KINDS:
        return None
    agent = event.detail.get("userAgent")
    if isinstance(agent, str):
        if agent.strip() == APPLE_PROXY_AGENT:
            return "Apple Mail Privacy Protection's proxy (user agent Mozilla/5.0)"
        lowered = agent.lower()
        for token in SCANNER_AGENTS:
            if token in lowered:
                return f"a scanner's user agent ({token})"
    # An event with no time of its own carries the send's (app.domain.feedback): no time signal then.
    if event.timestamp and event.sent_at and event.timestamp != event.sent_at:
        at, sent = _moment(event.timestamp), _moment(event.sent_at)
        if at is not None and sent is not None and (at - sent).total_seconds() < MACHINE_SECONDS:
            return f"{(at - sent).total_seconds():.1f} s after the send (under {MACHINE_SECONDS:g} s)"
    return None


def counts_unique(definition: Mapping[str, Any], decided: bool, ended: bool = False) -> bool:
    """Whether a campaign counts each recipient's first human open and click now (`unique_opens`, `unique_clicks`,
    what the A/B decision and the bandit's reweighting compare): a test-then-winner campaign until its decision is
    recorded, a bandit campaign until it has `ended` (COMPLETED or CANCELLED: no reweighting is to come). Other
    campaigns skip the write it costs."""
    ab = definition.get("ab") if isinstance(definition.get("ab"), Mapping) else {}
    if ab.get("mode") == TEST_THEN_WINNER:
        return not decided
    return ab.get("mode") == BANDIT and not ended


def _moment(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
