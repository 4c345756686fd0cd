"""Frequency caps: at most N marketing emails per contact per rolling D days, pure.

The account's policy is the stack's FrequencyCapEmails / FrequencyCapDays parameters (0 emails: no cap); a
campaign may override it with a reason (docs/campaign-schema.md, `frequency_cap`), and transactional mail is
exempt. Each contact item keeps its recent marketing sends as a map campaign id -> the time its email was reserved
(app.frequency writes it before the SES call, conditionally); the rules of what counts are here: an entry counts
while it is younger than the window, a campaign's own entry never counts against it (a resumed or retried batch
sends to the recipient it reserved), and entries older than every window in use are dropped on the next write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

# The contact item's attributes (RecipientsTable): the map of recent marketing sends, and its version, bumped by
# every write so a write made from what was read is refused if anyone wrote in between (optimistic concurrency).
SENDS_FIELD = "marketing_sends"
VERSION_FIELD = "marketing_sends_version"
MAX_DAYS = 365
MAX_EMAILS = 1000
MAX_REASON_CHARACTERS = 500
# The per-entry status a recipient capped at its send is recorded with (SendsTable's batch item, like SES's own
# BulkEmailEntryResult statuses), and the left-out reason at the snapshot (app.domain.audience).
CAPPED = "FREQUENCY_CAPPED"
# The contact's item is gone since the snapshot (erased): nothing to count against, and nobody to send to.
NO_CONTACT = "CONTACT_NOT_FOUND"


@dataclass(frozen=True)
class Policy:
    """The account's cap: `emails` per contact per rolling `days` (emails 0: no cap)."""

    emails: int = 0
    days: int = 0

    @property
    def active(self) -> bool:
        return self.emails > 0 and self.days > 0

    def text(self) -> str:
        return f"{self.emails} marketing email{'s' if self.emails != 1 else ''} per contact per {self.days} " \
               f"day{'s' if self.days != 1 else ''}" if self.active else "no cap"


@dataclass(frozen=True)
class Cap:
    """What holds for one campaign. `emails` None: not capped. `record`: its sends are written on the contact
    (every marketing send while a cap is in force anywhere, so the others count it). `keep_days`: how long a
    write keeps entries (the longest window in use). `source`: account, campaign, exempt, transactional or none."""

    emails: int | None
    days: int
    record: bool
    keep_days: int
    source: str
    reason: str | None = None

    def text(self) -> str:
        rule = Policy(self.emails or 0, self.days).text()
        return {
            "account": f"the account's cap: {rule}",
            "campaign": f"this campaign's own cap: {rule} (reason: {self.reason})",
            "exempt": f"exempt from the account's cap (reason: {self.reason}); its sends count for other campaigns",
            "transactional": "transactional: exempt, and not counted",
            "none": "no cap (FrequencyCapEmails is 0)",
        }[self.source]


def effective(stream: str, override: Mapping[str, object] | None, policy: Policy) -> Cap:
    """The cap that holds for a campaign of `stream` with its normalized `frequency_cap` (None: the account's)."""
    if stream != "marketing":
        return Cap(None, 0, False, 0, "transactional")
    if override and override.get("exempt"):
        return Cap(None, policy.days, policy.active, policy.days, "exempt", str(override.get("reason")))
    if override:
        days = int(override["days"])  # type: ignore[call-overload]
        return Cap(int(override["max"]), days, True, max(days, policy.days),  # type: ignore[call-overload]
                   "campaign", str(override.get("reason")))
    if policy.active:
        return Cap(policy.emails, policy.days, True, policy.days, "account")
    return Cap(None, 0, False, 0, "none")


def _at(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None


def within(sends: Mapping[str, str], now: datetime, days: int) -> dict[str, str]:
    """The entries younger than `days` days at `now` (the rolling window). An unreadable time counts: it is kept
    rather than let a contact past its cap."""
    start = now - timedelta(days=days)
    return {c: t for c, t in sends.items() if (at := _at(t)) is None or at > start}


def counted(sends: Mapping[str, str], campaign_id: str, now: datetime, days: int) -> int:
    """How many other campaigns' marketing emails count against this one's cap now."""
    return sum(1 for c in within(sends, now, days) if c != campaign_id)


def at_cap(sends: Mapping[str, str], campaign_id: str, now: datetime, cap: Cap) -> bool:
    """Whether this campaign's email would pass the contact's cap (never when it already reserved it)."""
    if cap.emails is None or campaign_id in sends:
        return False
    return counted(sends, campaign_id, now, cap.days) >= cap.emails


def reserved(sends: Mapping[str, str], campaign_id: str, now: datetime, cap: Cap) -> dict[str, str]:
    """The map to write when the campaign reserves its email: the entries still within `keep_days`, and its own
    (kept at its first time if it had one)."""
    kept = within(sends, now, cap.keep_days) if cap.keep_days else dict(sends)
    return {**kept, campaign_id: sends.get(campaign_id) or now.isoformat()}
