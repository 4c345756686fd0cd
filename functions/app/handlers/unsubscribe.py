"""UnsubscribeFunction: the RFC 8058 one-click unsubscribe endpoint, behind a Lambda function URL (payload 2.0).

    POST ?c=<campaign>&r=<address>&t=<token>   (body List-Unsubscribe=One-Click)  -> unsubscribed at once, 200
         the same, body also scope=all                                            -> from every list, 200
    GET  the same URL                                                             -> a page whose buttons POST

One click unsubscribes the contact from the lists the campaign was sent to (its audience.lists), each membership
UNSUBSCRIBED with its audit record; the contact's lifecycle status is not touched, and its other lists go on. The
page's second button unsubscribes from everything: every list, and no later import puts the contact on a list
again (app.contacts.unsubscribe_all). A link whose campaign is not recorded any more unsubscribes from everything.

A GET never changes anything: mail scanners and link previews fetch every URL in an email. A link whose token does
not verify is refused with 400. A verified link for an address that is no contact gets the same 200 as anyone else
(whether an address is on a list is not told) and nothing is written. Addresses are never logged.
"""

from __future__ import annotations

import base64
import contextlib
import html
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

from botocore.exceptions import ClientError

from app import campaign_control, clock, contacts
from app.domain.addresses import InvalidAddress
from app.domain.audience import UNSUBSCRIBED
from app.observability import logger, metrics, redact, tracer
from app.recipients import normalize
from app.settings import Settings, settings
from app.unsubscribe import ACTOR, CAMPAIGN, ONE_CLICK, RECIPIENT, TOKEN, event_id, secret, verify

DONE = "You are unsubscribed: you will not receive these emails at this address any more.\n"
DONE_ALL = "You are unsubscribed from everything: you will not receive campaign emails at this address any more.\n"
SCOPE_ALL = "scope=all"  # the page's second button: unsubscribe from every list
INCOMPLETE = ("This unsubscribe link is incomplete: it needs its c (campaign), r (recipient) and t (token) "
              "parameters, exactly as the email gave them. Open the link from the email again.\n")
INVALID = ("This unsubscribe link is not valid: it was cut short or altered. Open the link from the email again, "
           "or reply to the email to ask to be removed.\n")
FAILED = "Something went wrong on our side and nothing was changed. Please try the link again in a few minutes.\n"
_MAX_PARAMETER = 512  # longer than any address, campaign id or token: refused before any work
_SECURITY_HEADERS = {
    "cache-control": "no-store",
    "x-robots-tag": "noindex",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}


@dataclass(frozen=True)
class Outcome:
    known: bool  # the address is a contact
    left: tuple[str, ...]  # the lists it was unsubscribed from now; () when nothing changed (or applied before)


def unsubscribe(campaign_id: str, address: str, candidate: str, config: Settings, *,
                everything: bool = False) -> Outcome:
    """Unsubscribe the contact of a verified link from the campaign's lists (or, `everything`, from every list and
    for good), each change audited. The event id comes from the token and a marker is written after the change,
    so the same link applied again (a retried POST, even after an operator resubscribed the contact) changes
    nothing. An address that is no contact stays unknown: nothing is written."""
    applied = event_id(candidate) + ("-all" if everything else "")
    marker = f"UNSUBSCRIBE#{applied}"
    if contacts.applied(marker, config):
        return Outcome(True, ())
    now = clock.now()
    if not contacts.read_contacts([address], config, with_markers=False):
        return Outcome(False, ())
    source = f"one-click:{campaign_id}"
    lists = None if everything else campaign_control.audience_lists(campaign_id, config)
    if lists is None:
        left = contacts.unsubscribe_all(address, source=source, actor=ACTOR, event_id=applied, now=now,
                                        settings=config)
    else:
        left = [name for name in lists if contacts.set_subscription(
            name, address, UNSUBSCRIBED, reason="one-click unsubscribe", source=source, actor=ACTOR,
            event_id=f"{applied}-{name}"[:200], now=now, settings=config, audit_extra={"campaign_id": campaign_id})]
    contacts.record_applied(marker, applied, now, config)
    if left and lists is not None:  # the campaign's unsubscribes (its report's funnel); the link names no variant
        campaign_control.add_counts(campaign_id, {"unsubscribes": 1}, config)
    return Outcome(True, tuple(left))


def response(status: int, body: str, content_type: str = "text/plain; charset=utf-8",
             extra: dict[str, str] | None = None) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"content-type": content_type, **_SECURITY_HEADERS, **(extra or {})},
            "body": body}


def link_parameters(event: dict[str, Any]) -> tuple[str, str, str] | None:
    """(campaign, address, token) from the query string, the address normalized (as given when it is not an
    address: no token verifies for it, so the link is refused as altered); None when one is missing, repeated or
    absurdly long."""
    raw = event.get("rawQueryString")
    if raw is not None:
        values = parse_qs(raw, keep_blank_values=True)
    else:  # a hand-written event: the decoded parameters only
        values = {k: [v] for k, v in (event.get("queryStringParameters") or {}).items()}
    found = []
    for name in (CAMPAIGN, RECIPIENT, TOKEN):
        given = values.get(name) or []
        if len(given) != 1 or not given[0].strip() or len(given[0]) > _MAX_PARAMETER:
            return None
        found.append(given[0].strip())
    campaign_id, address, candidate = found
    with contextlib.suppress(InvalidAddress):
        address = normalize(address)
    return campaign_id, address, candidate


def page(campaign_id: str, address: str, candidate: str) -> str:
    """The GET answer: what the link would do, and a button that POSTs exactly what a one-click client would."""
    query = "&".join(f"{name}={quote(value, safe='')}" for name, value in (
        (CAMPAIGN, campaign_id), (RECIPIENT, address), (TOKEN, candidate)))
    field, value = ONE_CLICK.split("=", 1)
    scope, everything = SCOPE_ALL.split("=", 1)
    form = (f'<form method="post" action="?{html.escape(query)}">'
            f'<input type="hidden" name="{html.escape(field)}" value="{html.escape(value)}">')
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Unsubscribe</title></head>\n<body><main>\n<h1>Unsubscribe</h1>\n"
        f"<p>Stop these emails to <strong>{html.escape(address)}</strong>?</p>\n"
        f'{form}<button type="submit">Unsubscribe</button></form>\n'
        f'{form}<input type="hidden" name="{scope}" value="{everything}">'
        '<button type="submit">Unsubscribe from everything</button></form>\n</main></body></html>\n'
    )


def failure(error: Exception) -> str:
    """What went wrong, without the message: messages of our own errors name the address."""
    if isinstance(error, ClientError):
        return f"{error.operation_name}: {error.response.get('Error', {}).get('Code')}"
    return type(error).__name__


def post_body(event: dict[str, Any]) -> dict[str, list[str]]:
    """The POST's form fields: RFC 8058's List-Unsubscribe=One-Click (logged; the token is what authorises), and
    the page's scope=all."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body).decode("utf-8", "replace")
        except ValueError:
            return {}
    return parse_qs(body, keep_blank_values=True)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "GET").upper()
    if method not in ("GET", "HEAD", "POST"):
        metrics.add_metric(name="UnsubscribeLinksRefused", unit="Count", value=1)
        return response(405, "Use the link from the email.\n", extra={"allow": "GET, HEAD, POST"})
    found = link_parameters(event)
    if found is None:
        logger.info("unsubscribe link refused: incomplete", extra={"method": method})
        metrics.add_metric(name="UnsubscribeLinksRefused", unit="Count", value=1)
        return response(400, INCOMPLETE)
    campaign_id, address, candidate = found
    try:
        key = secret()
    except Exception as error:
        logger.error("the unsubscribe secret could not be read", extra={"error": failure(error)})
        metrics.add_metric(name="UnsubscribeFailures", unit="Count", value=1)
        return response(500, FAILED)
    if not verify(key, campaign_id, address, candidate):
        logger.info("unsubscribe link refused: bad token", extra={"method": method, "campaign_id": campaign_id,
                                                                   "recipient": redact(address)})
        metrics.add_metric(name="UnsubscribeLinksRefused", unit="Count", value=1)
        return response(400, INVALID)
    if method != "POST":  # GET or HEAD: never a change; scanners fetch links
        metrics.add_metric(name="UnsubscribePagesShown", unit="Count", value=1)
        body = page(campaign_id, address, candidate)
        return response(200, "" if method == "HEAD" else body, "text/html; charset=utf-8",
                        {"content-security-policy": "default-src 'none'; form-action 'self'"})
    form = post_body(event)
    everything = form.get(SCOPE_ALL.split("=")[0]) == [SCOPE_ALL.split("=")[1]]
    try:
        outcome = unsubscribe(campaign_id, address, candidate, settings(), everything=everything)
    except Exception as error:
        logger.error("the unsubscribe could not be written", extra={
            "campaign_id": campaign_id, "recipient": redact(address), "error": failure(error)})
        metrics.add_metric(name="UnsubscribeFailures", unit="Count", value=1)
        return response(500, FAILED)
    result = "unknown recipient" if not outcome.known else "unsubscribed" if outcome.left else "unchanged"
    logger.info("one-click unsubscribe", extra={
        "campaign_id": campaign_id, "recipient": redact(address), "outcome": result, "everything": everything,
        "one_click": form.get("List-Unsubscribe") == ["One-Click"], "event_id": event_id(candidate),
        "lists": list(outcome.left)})
    metrics.add_metric(name="OneClickUnsubscribes" if outcome.left else "OneClickUnchanged", unit="Count", value=1)
    return response(200, DONE_ALL if everything else DONE)
