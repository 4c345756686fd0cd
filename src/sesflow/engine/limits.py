"""Quotas AWS enforces and moto does not. The engine fails a run that would fail on AWS."""

from __future__ import annotations

# Step Functions Standard: https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html
HISTORY_EVENT_LIMIT = 25_000
PAYLOAD_LIMIT_BYTES = 256 * 1024
# Step Functions Distributed Map: MaxConcurrency 0 (the default) runs up to 10,000 child executions at once.
DISTRIBUTED_MAP_MAX_CONCURRENCY = 10_000
# Step Functions Express: an execution runs at most five minutes.
EXPRESS_MAX_SECONDS = 300
# SES v2 SendBulkEmail: at most 50 BulkEmailEntries per call.
SES_BULK_DESTINATIONS_LIMIT = 50
# SES v2: 50 recipients (To + Cc + Bcc) per message.
SES_RECIPIENTS_PER_MESSAGE_LIMIT = 50


class AwsLimitExceededError(Exception):
    """A run did something AWS would refuse; the message says which limit and by how much."""
