"""SnapshotAudienceFunction: the campaign's eligible recipients, frozen into S3 manifests of batches.

Eligible (app.domain.audience.select): subscribed on one of the campaign's lists, on none of its exclude lists,
ACTIVE or RECOVERY, matching its filters, and not on the account's SES suppression list; once each, however many
of its lists a contact is on. Every other member is counted by why it was left out. Each recipient gets its variant
(or the holdout) deterministically from campaign and address. Split mode writes one phase ("all");
test-then-winner writes the test cohort ("test", variants assigned) and the rest ("remainder", variant decided by
the winner); bandit writes one phase per round ("round-1", variants assigned by the campaign's weights, then
"round-2" and on, variants decided by each round's reweighting), a recipient's round drawn from its own hash.
Batches hold at most 50 recipients (SendBulkEmail's limit) of one variant (a batch whose variants are decided later
is grouped by variant when it is sent), so a batch is one SES call (two when it holds recipients on probation), and
a phase's batches alternate the variants in proportion to their
weights (app.domain.campaign.interleave): at any point of the send each variant has had its share, so the
per-variant breaker sees a bad variant early, and an A/B comparison is not biased by the time of day.
The manifests are frozen: a resume sends from the same batches, which is what makes
SendsTable's per-batch claims exactly once.

Under a send window each recipient is sent in its own time zone (its `time_zone` attribute, or the campaign's when
it has none or not an IANA name: counted in zone_defaulted), and a phase's batches are grouped by zone: each zone's
batches (interleaved by variant within the zone) in a manifest of their own, the zones in the order of their first
opening, so the campaign's execution waits for a zone's window once per zone, never per recipient.
"""

import json
from collections import Counter
from typing import Any

from app import audience as stored_audience
from app import clock
from app.clients import client
from app.contracts import Batch, Phase, Recipient, SnapshotAudienceInput, SnapshotAudienceResult, ZoneBatches
from app.domain import audience, send_window
from app.domain.campaign import REMAINDER, ROUND_PREFIX, Campaign, batches, interleave, split_audience
from app.domain.deferral import rfc3339
from app.observability import logger, metrics, tracer
from app.settings import settings

BATCH_SIZE = 50  # SES SendBulkEmail takes at most 50 entries


def row(address: str, variant: str | None, status: str) -> Recipient:
    """A manifest entry; `probation` marks a recipient in RECOVERY."""
    return Recipient(address, variant, status == "RECOVERY")


def write(bucket: str, key: str, document: Any) -> None:
    client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(document, separators=(",", ":")).encode())


def phase_chunks(campaign: Campaign, name: str, members: list[tuple[str, str]], statuses: dict[str, str],
                 ) -> list[list[Recipient]]:
    """A phase's (or one zone's part of it) batches in send order."""
    # Recipients on probation go out through the probation configuration set (the only one that publishes
    # Delivery events, which end probation), so they are grouped after the others of their variant: one
    # extra SES call per variant at most, not one per probationer.
    if name == REMAINDER or round_after_first(name):  # their variant is decided later: the winner's, or the round's
        members = sorted(members, key=lambda m: (statuses[m[0]] == "RECOVERY", m[0]))
        return batches([row(a, None, statuses[a]) for a, _ in members], BATCH_SIZE)
    # each variant's own batches, interleaved in proportion to the variants' sizes
    return interleave([
        batches([row(a, v, statuses[a]) for a, v in
                 sorted((m for m in members if m[1] == variant.name),
                        key=lambda m: (statuses[m[0]] == "RECOVERY", m[0]))], BATCH_SIZE)
        for variant in campaign.variants])


def round_after_first(name: str) -> bool:
    """Whether a phase is a bandit's round after the first, whose variants its reweighting decides."""
    return name.startswith(ROUND_PREFIX) and int(name.removeprefix(ROUND_PREFIX)) > 1


def by_zone(campaign: Campaign, members: tuple[tuple[str, str], ...], zones: dict[str, str],
            ) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(zone, its first opening, its members) for each zone with members, in the order of their first opening."""
    window = campaign.send_window
    assert window is not None
    grouped: dict[str, list[tuple[str, str]]] = {}
    for member in members:
        grouped.setdefault(zones[member[0]], []).append(member)
    return [(zone, rfc3339(opening), grouped[zone])
            for zone, opening in send_window.first_openings(window, grouped, clock.now())]


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = SnapshotAudienceInput.from_dict(event)
    campaign = request.campaign
    prefix = f"campaigns/{campaign.id}/{request.execution_name}"
    bucket = settings().manifest_bucket
    read = stored_audience.read(campaign, settings())
    selection = read.selection
    candidates = selection.chosen
    split = split_audience(campaign, candidates, stored_audience.account_suppressed())
    left_out = selection.left_out + Counter({audience.LEFT_SES_SUPPRESSED: split.ses_suppressed})
    holdout = list(split.holdout)

    window = campaign.send_window
    zones: dict[str, str] = {}  # address -> the zone it is sent in
    defaulted: Counter[str] = Counter()
    if window is not None:
        for address in candidates:
            found = read.contacts.get(address)
            zones[address], why = send_window.recipient_zone(
                window, found.attributes.get(window.zone_attribute) if found else None)
            if why:
                defaulted[why] += 1

    phases = []
    for name, members in split.cohorts.items():
        # A bandit's round number, from its phase's name; None in the other modes.
        number = int(name.removeprefix(ROUND_PREFIX)) if name.startswith(ROUND_PREFIX) else None
        key = f"{prefix}/{name}.json"
        if window is None:
            chunks = phase_chunks(campaign, name, list(members), candidates)
            manifest = [Batch(i, tuple(chunk)).to_dict() for i, chunk in enumerate(chunks)]
            parts: tuple[ZoneBatches, ...] = ()
        else:
            manifest, zone_parts, chunks = [], [], []
            for i, (zone, opens_at, zone_members) in enumerate(by_zone(campaign, members, zones)):
                zone_chunks = phase_chunks(campaign, name, zone_members, candidates)
                own = [Batch(len(manifest) + j, tuple(chunk), zone).to_dict() for j, chunk in enumerate(zone_chunks)]
                zone_key = f"{prefix}/{name}/zone-{i}.json"
                write(bucket, zone_key, own)
                manifest += own
                chunks += zone_chunks
                zone_parts.append(ZoneBatches(zone, zone_key, len(own), len(zone_members), opens_at))
            parts = tuple(zone_parts)
        write(bucket, key, manifest)
        per_variant = Counter(r.variant for chunk in chunks for r in chunk if r.variant is not None)
        phases.append(Phase(name, key, len(manifest), sum(map(len, chunks)), dict(sorted(per_variant.items())),
                            parts, round=number))
    write(bucket, f"{prefix}/holdout.json", holdout)

    metrics.add_metric(name="AudienceRecipients", unit="Count", value=len(split.assigned))
    logger.info("audience snapshot", extra={"campaign_id": campaign.id, "by_variant": split.by_variant,
                                            "suppressed_by_ses": split.ses_suppressed})
    return SnapshotAudienceResult(
        phases=tuple(phases),
        holdout_key=f"{prefix}/holdout.json",
        recipients=split.recipients,
        holdout=len(holdout),
        excluded_by_ses_suppression=split.ses_suppressed,
        by_variant=split.by_variant,
        states=dict(sorted(selection.states.items())),
        left_out=dict(sorted(left_out.items())),
        zone_defaulted=dict(sorted(defaulted.items())) if window is not None else None,
    ).to_dict()
