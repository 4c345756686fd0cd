"""The payloads the state machines pass to each Lambda function, and the results they read back, as typed models.

Each function's contract is a pair named after it: <Name>Input (what its Task's Arguments.Payload holds, or the
Map's ItemSelector for a Map's first state) and <Name>Result (the Payload the ASL reads back through
$states.result.Payload, the variables it assigns and the states after it). tests/checks/test_contracts.py holds
statemachines/*.asl.json to these fields, so a rename on either side fails there before it fails in a run.

from_dict validates a payload at the handler's boundary: the first bad field is named by its path
("SendBatchInput.batch.recipients[3].address: required, a string"), in the error class of the innermost model
that declares one (ContractError unless stated). to_dict is what travels: a field made with `omitted_at_default`
is left out while it holds its default (a manifest row without a variant, a batch result without "stopped").
A campaign travels as Campaign.to_dict() and is read back with parse_campaign (CampaignDefinitionError).
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable, Collection
from dataclasses import MISSING, dataclass, field, fields
from functools import cache
from typing import Any, ClassVar, Self

from app.domain.campaign import Campaign, parse_campaign
from app.errors import CampaignDefinitionError, ContractError, ManifestError, SesflowError

_OMIT = "omitted_at_default"
_EMPTY_IS_NONE = "empty_object_is_none"


def omitted_at_default(default: Any = None) -> Any:
    """A field to_dict leaves out while it holds `default` (and from_dict fills in when it is absent)."""
    return field(default=default, metadata={_OMIT: True})


class Contract:
    """Base of the models: dataclasses whose fields are str, int, float, bool, None, Campaign, another Contract,
    tuple[X, ...] (a JSON array), dict[str, X] or Any (not checked)."""

    error: ClassVar[type[SesflowError]] = ContractError

    @classmethod
    def from_dict(cls, raw: Any) -> Self:
        value: Self = _read(cls, raw, cls.__name__, cls.error)
        return value

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.metadata.get(_OMIT) and value == f.default:
                continue
            out[f.name] = _write(value)
        return out


@cache
def hints(cls: type) -> dict[str, Any]:
    """The resolved type of each field of a model."""
    return typing.get_type_hints(cls)


def _kind(tp: Any) -> str:
    names = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}
    if tp in names:
        return names[tp]
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _kind(next(t for t in typing.get_args(tp) if t is not type(None))) + " or null"
    if origin in (tuple, list):
        return "an array"
    return "an object"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


Reader = Callable[[Any, str, type[SesflowError]], Any]  # (raw, its path, the error to raise) -> the value


def _read(tp: Any, raw: Any, path: str, error: type[SesflowError]) -> Any:
    return _reader(tp)(raw, path, error)


@cache
def _reader(tp: Any) -> Reader:  # noqa: PLR0911
    """How to read a value of type tp, worked out once per type."""
    if tp is Any:
        return lambda raw, path, error: raw
    if tp is Campaign:
        return _read_campaign
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [t for t in typing.get_args(tp) if t is not type(None)]
        if len(options) != 1:
            raise TypeError(f"contracts read X | None, not {tp!r}")
        inner = _reader(options[0])
        return lambda raw, path, error: None if raw is None else inner(raw, path, error)
    if origin in (tuple, list):
        item = _reader(typing.get_args(tp)[0])

        def array(raw: Any, path: str, error: type[SesflowError]) -> tuple[Any, ...]:
            if not isinstance(raw, list | tuple):
                raise error(f"{path}: must be an array, got {_show(raw)}")
            return tuple(item(value, f"{path}[{i}]", error) for i, value in enumerate(raw))
        return array
    if origin is dict:
        value_reader = _reader(typing.get_args(tp)[1])

        def mapping(raw: Any, path: str, error: type[SesflowError]) -> dict[str, Any]:
            if not isinstance(raw, dict):
                raise error(f"{path}: must be an object, got {_show(raw)}")
            return {key: value_reader(value, f"{path}.{key}", error) for key, value in raw.items()}
        return mapping
    if isinstance(tp, type) and issubclass(tp, Contract):
        return _model_reader(tp)
    check = _SCALARS.get(tp)
    if check is None:
        raise TypeError(f"contracts cannot read a {tp!r}")

    def scalar(raw: Any, path: str, error: type[SesflowError]) -> Any:
        ok, value = check(raw)
        if not ok:
            raise error(f"{path}: must be {_kind(tp)}, got {_show(raw)}")
        return value
    return scalar


def _whole(raw: Any) -> tuple[bool, Any]:  # 500.0 passes: a JSONata sum or count may be written that way
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return False, raw
    return (True, int(raw)) if math.isfinite(raw) and raw == int(raw) else (False, raw)


_SCALARS: dict[Any, Callable[[Any], tuple[bool, Any]]] = {
    bool: lambda raw: (isinstance(raw, bool), raw),
    int: _whole,
    float: lambda raw: (True, float(raw)) if isinstance(raw, int | float) and not isinstance(raw, bool)
    else (False, raw),
    str: lambda raw: (isinstance(raw, str), raw),
}


def _read_campaign(raw: Any, path: str, error: type[SesflowError]) -> Campaign:
    if isinstance(raw, Campaign):
        return raw
    try:
        return parse_campaign(raw)
    except CampaignDefinitionError as problem:
        raise CampaignDefinitionError(f"{path}: {problem}") from problem


def _model_reader(cls: type[Contract]) -> Reader:
    own_error = vars(cls).get("error")
    specs = []  # (name, required, {} reads as None, None allowed, the field's reader, its kind)
    for f in fields(cls):  # type: ignore[arg-type]
        tp = hints(cls)[f.name]
        specs.append((f.name, f.default is MISSING and f.default_factory is MISSING,
                      bool(f.metadata.get(_EMPTY_IS_NONE)), _optional(tp), _reader(tp), _kind(tp)))
    known = {spec[0] for spec in specs}
    listed = ", ".join(spec[0] for spec in specs)

    def model(raw: Any, path: str, error: type[SesflowError]) -> Contract:
        error = own_error or error
        if not isinstance(raw, dict):
            raise error(f"{path}: must be an object, got {_show(raw)}")
        if not known.issuperset(raw):
            raise error(f"{path}.{sorted(set(raw) - known)[0]}: unknown field (known: {listed})")
        values: dict[str, Any] = {}
        for name, required, empty_is_none, nullable, read, kind in specs:
            if name not in raw:
                if required:
                    raise error(f"{path}.{name}: required, {kind}")
                continue
            value = raw[name]
            if empty_is_none and value == {}:
                values[name] = None
            elif value is None and not nullable:
                raise error(f"{path}.{name}: required, {kind}")
            else:
                values[name] = read(value, f"{path}.{name}", error)
        return cls(**values)
    return model


def _optional(tp: Any) -> bool:
    return tp is Any or type(None) in typing.get_args(tp)


def _write(value: Any) -> Any:
    if isinstance(value, Contract | Campaign):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_write(v) for v in value]
    if isinstance(value, dict):
        return {k: _write(v) for k, v in value.items()}
    return value


# ------------------------------------------------------------------------------ ValidateCampaign


@dataclass(frozen=True)
class ValidateCampaignInput(Contract):
    """The execution's input: a campaign definition, with `"resume": true` to resume a PAUSED, HALTED or FAILED one."""

    error: ClassVar[type[SesflowError]] = CampaignDefinitionError
    campaign: Campaign
    resume: bool = False

    @classmethod
    def from_dict(cls, raw: Any, allowed_configuration_sets: Collection[str] | None = None) -> Self:
        """allowed_configuration_sets: as parse_campaign takes them (None: not checked)."""
        definition = dict(raw) if isinstance(raw, dict) else raw
        resume = definition.pop("resume", False) if isinstance(definition, dict) else False
        campaign = parse_campaign(definition, allowed_configuration_sets=allowed_configuration_sets)
        if not isinstance(resume, bool):
            raise CampaignDefinitionError(f"resume: must be true or false, got {resume!r}")
        return cls(campaign, resume)

    def to_dict(self) -> dict[str, Any]:
        return {**self.campaign.to_dict(), "resume": self.resume}


@dataclass(frozen=True)
class ValidateCampaignResult(Contract):
    campaign: Campaign  # normalised: every default explicit
    resume: bool


# ------------------------------------------------------------------------------ SnapshotAudience and the manifests


@dataclass(frozen=True)
class SnapshotAudienceInput(Contract):
    campaign: Campaign
    execution_name: str  # the manifests' folder: one snapshot per execution


@dataclass(frozen=True)
class ZoneBatches(Contract):
    """One time zone's batches of a phase under a send window: their own manifest (the phase's batches of that
    zone, with the phase's batch indexes), which the SendPhase Map reads when that zone's turn comes."""

    zone: str  # an IANA name
    manifest_key: str
    batches: int
    recipients: int
    opens_at: str  # RFC 3339: the zone's first opening after the snapshot (for the plan and the operator)


@dataclass(frozen=True)
class Phase(Contract):
    """One manifest: "all" (split), "test" then "remainder" (test-then-winner), or "round-1" to "round-N"
    (bandit). Under a send window the phase's batches are grouped by zone (`zones`, in the order of their
    first opening), and the Map runs zone by zone."""

    name: str
    manifest_key: str
    batches: int
    recipients: int
    # The phase's recipients by variant; empty for the remainder, whose variant is the winner's, and for a bandit's
    # rounds after the first, whose variants their reweighting's weights decide.
    by_variant: dict[str, int] = field(default_factory=dict)
    zones: tuple[ZoneBatches, ...] = omitted_at_default(())
    round: int | None = omitted_at_default(None)  # a bandit's round number, from 1


@dataclass(frozen=True)
class SnapshotAudienceResult(Contract):
    """The frozen audience (the workflow's $audience, recorded on the campaign for a resume)."""

    phases: tuple[Phase, ...]
    holdout_key: str
    recipients: int  # sendable, over every phase
    holdout: int
    excluded_by_ses_suppression: int
    by_variant: dict[str, int]  # holdout included
    states: dict[str, int]  # the lists' members by lifecycle status, before the snapshot
    # The members not sent to, by reason (app.domain.audience LEFT_*): suppressed, quarantined, unsubscribed,
    # excluded, filtered_out, ses_suppressed, no_contact.
    left_out: dict[str, int] = field(default_factory=dict)
    # Under a send window: the recipients sent in the campaign's zone because their own is missing or not an IANA
    # name (app.domain.send_window MISSING, INVALID).
    zone_defaulted: dict[str, int] | None = omitted_at_default(None)


@dataclass(frozen=True)
class Recipient(Contract):
    """A manifest row. No variant in a remainder batch (the winner decides it) or in a bandit's later round (its
    weights do); probation: in RECOVERY."""

    error: ClassVar[type[SesflowError]] = ManifestError
    address: str
    variant: str | None = omitted_at_default(None)
    probation: bool = omitted_at_default(False)


@dataclass(frozen=True)
class Batch(Contract):
    """A manifest item, as the SendPhase Map reads it: at most 50 recipients (SendBulkEmail's limit)."""

    error: ClassVar[type[SesflowError]] = ManifestError
    index: int
    recipients: tuple[Recipient, ...]
    zone: str | None = omitted_at_default(None)  # under a send window: the IANA zone its recipients are sent in


# ------------------------------------------------------------------------------ PickWinner


@dataclass(frozen=True)
class PickWinnerInput(Contract):
    campaign: Campaign


@dataclass(frozen=True)
class VariantNumbers(Contract):
    """app.domain.winner.VariantResult as it travels."""

    name: str
    sent: int
    delivered: int
    successes: int
    rate: float
    complaints: int
    complaint_rate: float
    eligible: bool
    note: str
    complaint_bound: float = 0.0  # 0 when a recorded decision does not carry it


@dataclass(frozen=True)
class PickWinnerResult(Contract):
    """The decision (app.domain.winner.Decision as it travels): the workflow's $decision."""

    winner: str | None
    reason: str
    numbers: tuple[VariantNumbers, ...]
    p_value: float | None
    applied_policy: str
    remainder: tuple[str, ...]  # () sends nothing more
    metric: str
    alpha: float | None


# ------------------------------------------------------------------------------ ReweighVariants


@dataclass(frozen=True)
class ReweighVariantsInput(Contract):
    """round: the bandit round whose weights are decided (2 to ab.rounds), after the round before it."""

    campaign: Campaign
    round: int


@dataclass(frozen=True)
class VariantWeightNumbers(Contract):
    """app.domain.bandit.VariantWeight as it travels."""

    name: str
    sent: int
    delivered: int
    successes: int
    complaints: int
    complaint_bound: float
    alpha: int
    beta: int
    p_best: float
    weight: float
    note: str


@dataclass(frozen=True)
class ReweighVariantsResult(Contract):
    """A round's reweighting (app.domain.bandit.Reweighting as it travels, as recorded on the campaign): the
    workflow's $weights. stop: every weight is 0 (the complaint guard), so no later round is sent."""

    round: int
    metric: str
    seed: int
    draws: int
    weights: dict[str, float]
    variants: tuple[VariantWeightNumbers, ...]
    reason: str
    stop: bool


# ------------------------------------------------------------------------------ SendBatch


@dataclass(frozen=True)
class SendBatchInput(Contract):
    """One item of the SendPhase Map (its ItemSelector), with the child's start. decision: the winner decision in
    a remainder batch; {} (read as None) otherwise. weights: in a bandit's round after the first, the round's
    weights (variant -> share); {} otherwise. child_started_at: when the EXPRESS child started (RFC 3339), the
    start of its five minutes (app.domain.deferral); absent, the invocation's start."""

    campaign: Campaign
    batch: Batch
    phase: str = "all"
    decision: PickWinnerResult | None = field(default=None, metadata={_EMPTY_IS_NONE: True})
    weights: dict[str, float] = field(default_factory=dict)
    child_started_at: str | None = None
    # When the phase became ready to send (RFC 3339): a send window's time of day (`at`) counts from it.
    ready_at: str | None = None


@dataclass(frozen=True)
class Deferral(Contract):
    """A wait too long for the child: the campaign's execution waits until `until` (RFC 3339) and runs the phase
    again. No message when the phase was already deferred."""

    until: str
    reason: str  # app.domain.deferral's RATE, DAILY_QUOTA or TIME, or "phase already deferred"
    message: str | None = omitted_at_default(None)


@dataclass(frozen=True)
class SendBatchResult(Contract):
    batch: str  # the batch's key in SendsTable: "<phase>#<index>"
    recipients: int
    sent: int
    failed: int
    stopped: str | None = omitted_at_default(None)  # the campaign's status when a pause, halt or cancel stopped it
    capped: int = omitted_at_default(0)  # recipients at their frequency cap when their call came (not sent)
    skipped: str | None = omitted_at_default(None)  # the claim's status when another run already has it
    wait_seconds: float | None = omitted_at_default(None)  # the child waits this long and sends the batch again
    deferred: Deferral | None = omitted_at_default(None)  # or the campaign's execution waits


# ------------------------------------------------------------------------------ FinalizeCampaign


@dataclass(frozen=True)
class FinalizeCampaignInput(Contract):
    campaign: Campaign
    holdout: int  # recorded, not sent
    recipients: int  # the phases that were to be sent: the accounting's audience


@dataclass(frozen=True)
class Accounting(Contract):
    """Every recipient of the audience accounted for (app.sends.summary)."""

    sent: int
    failed: int
    not_sent: int
    unknown_confirmed: int
    unknown: int
    capped: int = omitted_at_default(0)  # at their frequency cap when their batch was sent (app.frequency)


@dataclass(frozen=True)
class Halt(Contract):
    """The breaker's verdict when it halted the campaign (app.domain.breaker.Verdict, and when)."""

    level: str
    metric: str
    rate: float
    bound: float
    reason: str
    sent: int
    events: int
    halt_level: float
    at: str
    campaign_sent: int | None = omitted_at_default(None)  # the campaign's sent then (`sent` may be a variant's)


@dataclass(frozen=True)
class Failure(Contract):
    """What stopped a FAILED campaign (its control item's `failure`): SES's error code and message, and the batch
    ("<phase>#<index>"), position in it and recipient the refused call began with (None when not known: a batch
    that failed for good, whose code and message are the Map's Error and Cause). A failure for Rendering Failures
    also has their count and the sends they were counted against."""

    at: str
    code: str
    message: str
    batch: str | None = None
    position: int | None = None
    recipient: str | None = None
    rendering_failures: int | None = omitted_at_default(None)
    sent: int | None = omitted_at_default(None)


@dataclass(frozen=True)
class FinalizeCampaignResult(Contract):
    """The execution's output (and a halted or failed one's Cause)."""

    campaign_id: str
    status: str | None  # None only if the campaign's control item is gone
    sent: int
    per_variant: dict[str, dict[str, int]]
    feedback: dict[str, int]
    accounted: Accounting
    holdout: int
    decision: PickWinnerResult | None
    halt: Halt | None
    failure: Failure | None = None


# ------------------------------------------------------------------------------ ImportContacts


@dataclass(frozen=True)
class StartImport(Contract):
    """The execution's input, as `sesflow contacts import --workflow` starts it: the options and the upload's key."""

    import_id: str
    list_id: str
    source: str
    actor: str
    dry_run: bool
    resubscribe_reason: str | None
    key: str
    file: str  # the user's file name, for the summary


@dataclass(frozen=True)
class UploadedRow(Contract):
    """A row as the CLI uploads it (one JSON Lines line): its line in the user's file, and its fields by column."""

    line: int
    fields: dict[str, Any]
    problem: str | None = omitted_at_default(None)  # the CLI could not split the line into fields: why


@dataclass(frozen=True)
class ImportBatchOptions(Contract):
    """The ItemBatcher's BatchInput: the execution's input, the same for every batch."""

    request: StartImport


@dataclass(frozen=True)
class ImportBatchInput(Contract):
    """What a Distributed Map child with an ItemBatcher gets: the rows, and the BatchInput."""

    Items: tuple[UploadedRow, ...]  # noqa: N815 -- Step Functions' name
    BatchInput: ImportBatchOptions  # noqa: N815 -- Step Functions' name


@dataclass(frozen=True)
class ImportBatchResult(Contract):
    """A batch's counts (app.imports.Tally.to_dict)."""

    rows: int
    created: int
    updated: int
    unchanged: int
    added_to_list: int
    resubscribed: int
    repeated: int
    skipped: dict[str, int]
    dynamodb_writes: int
    write_units: int


@dataclass(frozen=True)
class ResultWriterDetails(Contract):
    Bucket: str  # noqa: N815 -- Step Functions' name
    Key: str  # noqa: N815 -- Step Functions' name


@dataclass(frozen=True)
class FinishImportInput(Contract):
    request: StartImport  # the execution's input
    results: ResultWriterDetails  # the ImportRows Map's ResultWriter: where its manifest is


@dataclass(frozen=True)
class FinishImportResult(Contract):
    """The import's summary: what `sesflow contacts import --json` prints."""

    file: str
    list: str
    dry_run: bool
    rows: int
    created: int
    updated: int
    unchanged: int
    added_to_list: int
    resubscribed: int
    repeated: int
    skipped: dict[str, int]
    dynamodb_writes: int
    write_units: int
    rejects_key: str | None


# ------------------------------------------------------------------------------ MigrateContacts

# The most segments a migration scans at once: an Inline Map runs at most 40 iterations concurrently.
MAX_MIGRATION_SEGMENTS = 40


@dataclass(frozen=True)
class MigrationCounts(Contract):
    """app.domain.migration.Counts as it travels: a segment's running totals, and (summed) the execution's output."""

    scanned: int = 0
    migrated: int = 0
    unsubscribed: int = 0
    memberships_kept: int = 0
    already: int = 0
    erased: int = 0
    suppression_only: int = 0
    invalid_list_id: int = 0
    changed_meanwhile: int = 0


@dataclass(frozen=True)
class MigrateContactsInput(Contract):
    """One call of a segment's loop (the Map's ItemSelector, then the previous call's result): scan on from
    `cursor` (the segment's LastEvaluatedKey, DynamoDB JSON; {}: its start), adding to `counts` ({}: zeros).
    `run`: the execution's name, the event id of the history records it writes. No field is ever null: a JSONata
    path to a JSON null reads as undefined in some evaluators, which Step Functions refuses."""

    segment: int
    total_segments: int
    run: str
    dry_run: bool = False
    cursor: dict[str, Any] = field(default_factory=dict)
    counts: MigrationCounts = field(default_factory=MigrationCounts)

    def __post_init__(self) -> None:
        if not 1 <= self.total_segments <= MAX_MIGRATION_SEGMENTS:
            raise ContractError(f"MigrateContactsInput.total_segments: must be 1 to {MAX_MIGRATION_SEGMENTS}, got "
                                f"{self.total_segments}")
        if not 0 <= self.segment < self.total_segments:
            raise ContractError(f"MigrateContactsInput.segment: must be 0 to {self.total_segments - 1}, got "
                                f"{self.segment}")
        if not self.run:
            raise ContractError("MigrateContactsInput.run: required, a non-empty string")


@dataclass(frozen=True)
class MigrateContactsResult(Contract):
    """The next call's input, and whether the segment is done (then cursor is {}). pages: the Scan pages this call
    read."""

    segment: int
    total_segments: int
    run: str
    dry_run: bool
    cursor: dict[str, Any]
    counts: MigrationCounts
    done: bool
    pages: int
