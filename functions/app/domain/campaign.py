"""Campaign definitions and variant assignment: pure functions, no AWS, no environment."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from app.errors import CampaignDefinitionError

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
_EMAIL = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")
HOLDOUT = "holdout"


@dataclass(frozen=True)
class Variant:
    name: str
    weight: float
    template: str


@dataclass(frozen=True)
class Campaign:
    id: str
    name: str
    sender: str
    list_id: str
    variants: tuple[Variant, ...]
    holdout_percent: float
    start_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "sender": self.sender,
            "audience": {"list_id": self.list_id},
            "variants": [{"name": v.name, "weight": v.weight, "template": v.template} for v in self.variants],
            "holdout_percent": self.holdout_percent,
            "start_at": self.start_at,
        }


def parse_campaign(raw: Any) -> Campaign:
    """Validate a definition; raise CampaignDefinitionError listing every bad field by its path."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise CampaignDefinitionError("campaign: must be a JSON object")

    def text(path: str, value: Any, pattern: re.Pattern[str] | None = None) -> str:
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{path}: required, a non-empty string")
            return ""
        if pattern and not pattern.match(value):
            problems.append(f"{path}: {value!r} is not valid")
        return value

    campaign_id = text("id", raw.get("id"), _ID)
    sender = text("sender", raw.get("sender"), _EMAIL)
    audience = raw.get("audience")
    list_id = text("audience.list_id", audience.get("list_id") if isinstance(audience, dict) else None)

    variants: list[Variant] = []
    raw_variants = raw.get("variants")
    if not isinstance(raw_variants, list) or not raw_variants:
        problems.append("variants: required, a non-empty list")
        raw_variants = []
    for i, item in enumerate(raw_variants):
        path = f"variants[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{path}: must be an object")
            continue
        name = text(f"{path}.name", item.get("name"), _ID)
        if name == HOLDOUT:
            problems.append(f"{path}.name: {HOLDOUT!r} is reserved for the holdout group")
        weight = item.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
            problems.append(f"{path}.weight: must be a number above 0, got {weight!r}")
            weight = 0
        template = text(f"{path}.template", item.get("template"))
        variants.append(Variant(name, float(weight), template))
    names = [v.name for v in variants]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"variants: name {name!r} is used more than once")

    holdout = raw.get("holdout_percent", 0)
    if isinstance(holdout, bool) or not isinstance(holdout, int | float) or not 0 <= holdout < 100:
        problems.append(f"holdout_percent: must be a number from 0 to below 100, got {holdout!r}")
        holdout = 0

    start_at = raw.get("start_at")
    if start_at is not None and not (isinstance(start_at, str) and _RFC3339_UTC.match(start_at)):
        # Exactly what a Wait state's Timestamp takes; refused here, before the campaign is claimed.
        problems.append(f"start_at: {start_at!r} is not a UTC time like 2026-12-01T09:00:00Z")

    if problems:
        raise CampaignDefinitionError("; ".join(problems))
    return Campaign(
        id=campaign_id,
        name=str(raw.get("name") or campaign_id),
        sender=sender,
        list_id=list_id,
        variants=tuple(variants),
        holdout_percent=float(holdout),
        start_at=start_at,
    )


def assign_variant(campaign: Campaign, address: str) -> str:
    """The same campaign and address always get the same variant (or HOLDOUT), in proportion to weights."""
    digest = hashlib.sha256(f"{campaign.id}\x00{address}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * 100  # uniform in [0, 100)
    if point < campaign.holdout_percent:
        return HOLDOUT
    point = (point - campaign.holdout_percent) / (100 - campaign.holdout_percent)  # back to [0, 1)
    total = sum(v.weight for v in campaign.variants)
    edge = 0.0
    for variant in campaign.variants:
        edge += variant.weight / total
        if point < edge:
            return variant.name
    return campaign.variants[-1].name


def batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
