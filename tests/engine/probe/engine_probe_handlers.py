"""Handlers the engine tests deploy from a throwaway template (never part of the product)."""

import os
import time


def whoami(event, context):
    time.sleep(0.001)  # let other threads run mid-invocation
    return {"who": os.environ["WHO"], "function": context.function_name, "memory": context.memory_limit_in_mb}


class PaymentDeclinedError(Exception):
    pass


def fail(event, context):
    raise PaymentDeclinedError(f"card {event.get('card')} declined")


def partial(event, context):
    """Reports the records whose body says "bad" as batch item failures, as a Powertools handler would."""
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "bad"]}
