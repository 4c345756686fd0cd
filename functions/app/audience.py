"""A campaign's audience as stored now: its lists' members read as contacts and chosen by app.domain.audience.select,
and the account's SES suppression list. What SnapshotAudienceFunction freezes and `sesflow campaign plan` shows,
read by the same code, so the plan's numbers are the snapshot's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app import clock, contacts
from app.clients import client
from app.domain import addresses, audience, frequency
from app.domain.audience import Contact
from app.settings import Settings


@dataclass(frozen=True)
class Read:
    """The selection, and every contact read for it (address -> Contact), eligible or not."""

    selection: audience.Selection
    contacts: dict[str, Contact]


def read(campaign: Any, config: Settings) -> Read:
    """The campaign's audience: its lists' members (one Query each), less its exclude lists' members, read as
    contacts (one BatchGetItem per 100) and chosen by app.domain.audience.select, with the campaign's frequency
    cap (app.domain.frequency) held against each contact's recent marketing sends as read now."""
    memberships = {name: list(contacts.members(name, config)) for name in campaign.audience.lists}
    excluded = {m.address for name in campaign.audience.exclude_lists for m in contacts.members(name, config)}
    subscribed, left = audience.candidates(memberships, excluded)
    stored = contacts.read_contacts(subscribed, config, with_markers=False)
    matches = campaign.audience.matches if campaign.audience.attributes else None
    cap, now = campaign.cap(config.frequency_cap), clock.now()
    capped = (lambda c: frequency.at_cap(c.marketing_sends, campaign.id, now, cap)) if cap.emails else None
    return Read(audience.select(subscribed, stored, left, matches, capped), stored)


def eligible(campaign: Any, config: Settings) -> audience.Selection:
    return read(campaign, config).selection


def account_suppressed() -> set[str]:
    """The account-level SES suppression list: SES would not deliver to these anyway, and would count a bounce."""
    ses, found, token = client("sesv2"), set(), None
    while True:
        page = ses.list_suppressed_destinations(**({"NextToken": token} if token else {}), PageSize=1000)
        found |= {suppressed_key(s["EmailAddress"]) for s in page.get("SuppressedDestinationSummaries", [])}
        token = page.get("NextToken")
        if not token:
            return found


def suppressed_key(address: str) -> str:
    """An SES suppression-list address as RecipientsTable keys it (app.domain.addresses.normalize). One that
    normalize refuses can match no key it made, and is kept lower-cased, so it still matches a key made before."""
    try:
        return addresses.normalize(address)
    except addresses.InvalidAddress:
        return address.strip().lower()
