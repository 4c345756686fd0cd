"""IngestFeedbackFunction: SES feedback from the feedback queue, with partial batch failures.

This is the seam issue 3 fills in: for now each record is parsed and kept once, by message id, as an
audit record; a record that is not JSON fails alone and, after the queue's maxReceiveCount, reaches
the dead-letter queue.
"""

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from app.clients import table
from app.observability import logger, tracer
from app.settings import settings

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    try:
        body = json.loads(record.body)
    except json.JSONDecodeError as error:
        logger.warning("feedback record is not JSON", extra={"message_id": record.message_id})
        raise ValueError(f"record {record.message_id}: body is not JSON ({error.msg})") from error
    table(settings().events_table).put_item(
        Item={"pk": f"FEEDBACK#{record.message_id}", "sk": "RECEIVED", "body": json.dumps(body)},
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
