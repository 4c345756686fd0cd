"""IngestFeedbackFunction: SES feedback from the feedback queue, applied once per batch.

Each record is parsed on its own: one SES can never produce (FeedbackParseError) goes straight to the
dead-letter queue with its reason, since retrying cannot fix it; the rest of the batch is applied
together (counters are written once per campaign per batch). If applying fails, the records that held
events are reported as batch item failures and come back; applying again is safe (see app.ingest).
Not Powertools' BatchProcessor: it handles records one by one, and this handler aggregates across them.

template.yaml wires the function to FeedbackQueue only (SQS, ReportBatchItemFailures): SES -> SNS -> SQS is the
supported deployment. The handler also takes the event of an SNS topic subscribed to the function directly (Records
with EventSource aws:sns, as in `sam local invoke -e events/ingest_feedback/sns_event.json`): each record is
parsed the same way, an unusable one is dead-lettered the same way (its SNS notification as the DLQ body, which
FeedbackQueue's own parser takes on redrive), but SNS invokes asynchronously and ignores batchItemFailures, so a
batch that fails to apply raises instead, and Lambda's asynchronous retries bring the whole event back (applying
again is safe); so does one whose unusable record the DLQ did not take. Such a subscription has no DLQ of its
own for invocations that keep failing: another reason it is not the template's.
"""

import json
from collections import Counter
from typing import Any

from app.clients import client
from app.domain import lifecycle
from app.domain.feedback import FeedbackEvent, parse_feedback
from app.errors import FeedbackParseError
from app.ingest import apply_events
from app.observability import logger, metrics, tracer
from app.settings import settings

# Feedback events applied, by kind, for the dashboard's funnel: a handful of metric names (EMF costs nothing per
# call, but each name is a custom metric). Kinds not listed here (send, rendering_failure, delivery_delay,
# subscription) count as FeedbackOther.
FEEDBACK_METRICS = {
    "bounce": "FeedbackBounce",
    "complaint": "FeedbackComplaint",
    "reject": "FeedbackReject",
    "delivery": "FeedbackDelivery",
    "open": "FeedbackOpen",
    "click": "FeedbackClick",
}
FEEDBACK_OTHER = "FeedbackOther"


def count_by_kind(events: list[FeedbackEvent]) -> None:
    """One metric per kind present in the batch, over distinct events (one event twice in a batch is one)."""
    distinct = {e.event_id: e.kind for e in events}
    for name, n in sorted(Counter(FEEDBACK_METRICS.get(k, FEEDBACK_OTHER) for k in distinct.values()).items()):
        metrics.add_metric(name=name, unit="Count", value=n)


def is_sns(record: dict[str, Any]) -> bool:
    """A record of an SNS topic invoking the function directly, not of the feedback queue."""
    return record.get("EventSource") == "aws:sns" and isinstance(record.get("Sns"), dict)


def record_id(record: dict[str, Any]) -> str:
    if is_sns(record):
        return str(record["Sns"].get("MessageId", ""))
    return record.get("messageId", "")


def record_body(record: dict[str, Any]) -> str:
    """What the DLQ keeps of a record: an SQS message's body, or the SNS notification (as SNS delivers it to SQS)."""
    if is_sns(record):
        return json.dumps(record["Sns"])
    return record.get("body") or "(empty)"


def dead_letter(record: dict[str, Any], reason: str, dlq_url: str) -> None:
    client("sqs").send_message(
        QueueUrl=dlq_url,
        MessageBody=record_body(record),
        MessageAttributes={
            "reason": {"DataType": "String", "StringValue": reason[:1000]},
            "source_message_id": {"DataType": "String", "StringValue": record_id(record) or "unknown"},
        },
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    config = settings()
    assert config.feedback_dlq_url and config.lifecycle_state_machine_arn, "template gives both to this function"
    policy = lifecycle.policy_with_overrides(config.lifecycle_policy)  # a bad override fails every batch, loudly
    events: list[FeedbackEvent] = []
    carrying: list[str] = []  # records whose events are applied below
    failures: list[str] = []
    records = event.get("Records", [])
    for record in records:
        message_id = record_id(record)
        try:
            result = parse_feedback(record if is_sns(record) else record.get("body", ""), envelope_hint="sqs")
        except FeedbackParseError as error:
            logger.warning("unusable feedback record sent to the DLQ", extra={"message_id": message_id,
                                                                              "reason": str(error)})
            try:
                dead_letter(record, str(error), config.feedback_dlq_url)
                metrics.add_metric(name="FeedbackDeadLettered", unit="Count", value=1)
            except Exception:  # this record comes back (and reaches the DLQ by redrive); the rest go on
                logger.exception("sending to the DLQ failed", extra={"message_id": message_id})
                failures.append(message_id)
            continue
        if result.control:
            logger.info("SNS control message", extra={"message_id": message_id, "control": result.control})
            continue
        events.extend(result.events)
        carrying.append(message_id)
    if events:
        try:
            summary = apply_events(events, config, config.lifecycle_state_machine_arn, policy)
            logger.info("feedback applied", extra=summary)
            metrics.add_metric(name="FeedbackEvents", unit="Count", value=len(events))
            count_by_kind(events)
        except Exception:
            logger.exception("applying the batch failed; its records will come back")
            if any(is_sns(r) for r in records):
                raise  # SNS ignores batchItemFailures: Lambda's asynchronous retry brings the event back
            failures.extend(carrying)
    if failures and any(is_sns(r) for r in records):
        # What the DLQ did not take: SNS would drop it with the response, so the whole event comes back instead.
        raise RuntimeError(f"{len(failures)} SNS records could not be dead-lettered; Lambda retries the event")
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failures]}
