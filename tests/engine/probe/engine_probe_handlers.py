"""Handlers the engine tests deploy from a throwaway template (never part of the product)."""

import os
import threading
import time

import boto3
from app import clock  # functions/app: the engine gives it its virtual clock (imported with the handler, as there)


def whoami(event, context):
    time.sleep(0.001)  # let other threads run mid-invocation
    return {"who": os.environ["WHO"], "function": context.function_name, "memory": context.memory_limit_in_mb}


def echo(event, context):
    """Answers with what it was given (a Distributed Map child that shows its batch)."""
    return event


class PaymentDeclinedError(Exception):
    pass


def fail(event, context):
    raise PaymentDeclinedError(f"card {event.get('card')} declined")


def partial(event, context):
    """Reports the records whose body says "bad" as batch item failures, as a Powertools handler would."""
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "bad"]}


def sleepy(event, context):
    """Sleeps event["sleep"] virtual seconds (from an SQS event: the sum of the bodies) through app.clock, as the
    governor does, writing a marker in event["table"] before and, if it wakes, after; returns the time it had
    left when it woke."""
    if "Records" in event:
        event = {"sleep": sum(float(r["body"]) for r in event["Records"])}
    table = boto3.resource("dynamodb").Table(event["table"]) if event.get("table") else None
    if table is not None:
        table.put_item(Item={"id": f"{event.get('id', 'x')}#before"})
    clock.sleep(float(event.get("sleep", 0)))
    if table is not None:
        table.put_item(Item={"id": f"{event.get('id', 'x')}#after"})
    return {"remaining_ms": context.get_remaining_time_in_millis()}


def busy(event, context):
    """Runs on the CPU for event["cpu"] seconds without sleeping, then writes a marker in event["table"] (if any)
    and answers."""
    until = time.thread_time() + float(event.get("cpu", 0))
    while time.thread_time() < until:
        pass
    if event.get("table"):
        boto3.resource("dynamodb").Table(event["table"]).put_item(Item={"id": "busy#after"})
    return {"done": True}


_in_flight = threading.Condition()
_IN_FLIGHT = [0]


def overlapping(event, context):
    """Holds its invocation until event["expect"] invocations are in flight together (or half a real second has
    passed), so that a test sees how many the engine lets run at once."""
    expect = int(event.get("expect") or os.environ.get("EXPECT") or 1)  # an SQS or URL event: the environment's
    with _in_flight:
        _IN_FLIGHT[0] += 1
        _in_flight.notify_all()
        _in_flight.wait_for(lambda: _IN_FLIGHT[0] >= expect, timeout=0.5)
    time.sleep(0.01)
    with _in_flight:
        _IN_FLIGHT[0] -= 1
    return {"batchItemFailures": []} if "Records" in event else {"ok": True}  # a URL's caller gets a 200
