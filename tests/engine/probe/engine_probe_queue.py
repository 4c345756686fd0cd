"""Queue-triggered handlers for the engine's SQS poller tests (never part of the product)."""

BATCHES: list[list[str]] = []  # the bodies of every batch handed over, in order


def record(event, context):
    """Keep the batch; report the records whose body is "fail" as failed items."""
    bodies = [r["body"] for r in event["Records"]]
    BATCHES.append(bodies)
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "fail"]}
