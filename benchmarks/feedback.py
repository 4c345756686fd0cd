"""Feedback ingestion cost: DynamoDB write units and Lambda invocations per 1,000 SES events.

    .venv/bin/python benchmarks/feedback.py [--events 1000] [--route sns|eventbridge]

A realistic mix (a Delivery unless the message bounced; ~20% opened, ~3% clicked; ~2% bounces, two thirds of them
hard; ~0.1% complaints, all per message; the Send events are made but the stack's configuration set does not
publish them) goes through the simulated SES to the configuration set's destination, and flows SNS (or
EventBridge) -> FeedbackQueue -> IngestFeedbackFunction, and the quarantine episodes run out.
Prints one JSON document. Target: under 150 write units per 1,000 events.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from pathlib import Path

from sesflow.engine.ses import publish_event
from sesflow.engine.stack import LocalStack

ROOT = Path(__file__).resolve().parents[1]


def events_for(message: int, rng: random.Random) -> list[dict]:
    address = f"r{message:06d}@example.org"
    mail = {"timestamp": "2026-11-22T09:00:00.000Z", "source": "news@example.com",
            "messageId": f"0100019355a1{message:08d}-bench", "destination": [address],
            "tags": {"campaign": ["bench"], "variant": [rng.choice("ab")]}}
    at = "2026-11-22T09:00:0{}.000Z"
    out = [{"eventType": "Send", "mail": mail, "send": {}}]
    roll = rng.random()
    if roll < 0.0133:
        out.append({"eventType": "Bounce", "mail": mail, "bounce": {
            "bounceType": "Permanent", "bounceSubType": "General", "feedbackId": f"fb-{message}",
            "timestamp": at.format(1), "bouncedRecipients": [{"emailAddress": address}]}})
    elif roll < 0.02:
        out.append({"eventType": "Bounce", "mail": mail, "bounce": {
            "bounceType": "Transient", "bounceSubType": "MailboxFull", "feedbackId": f"fb-{message}",
            "timestamp": at.format(1), "bouncedRecipients": [{"emailAddress": address}]}})
    else:
        out.append({"eventType": "Delivery", "mail": mail, "delivery": {
            "timestamp": at.format(1), "recipients": [address], "smtpResponse": "250 ok"}})
        if rng.random() < 0.20:
            out.append({"eventType": "Open", "mail": mail, "open": {"timestamp": at.format(2), "userAgent": "x"}})
            if rng.random() < 0.15:
                out.append({"eventType": "Click", "mail": mail, "click": {
                    "timestamp": at.format(3), "link": "https://example.com/sale", "userAgent": "x"}})
        if rng.random() < 0.001:  # 0.1% of messages
            out.append({"eventType": "Complaint", "mail": mail, "complaint": {
                "feedbackId": f"c-{message}", "timestamp": at.format(4), "complaintFeedbackType": "abuse",
                "complainedRecipients": [{"emailAddress": address}]}})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--route", choices=["sns", "eventbridge"], default="sns")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    records: list[dict] = []
    message = 0
    while len(records) < args.events:
        records.extend(events_for(message, rng))
        message += 1
    records = records[: args.events]

    with LocalStack(template_path=ROOT / "template.yaml", ses_identities=("example.com",),
                    parameters={"FeedbackRoute": args.route}) as stack:
        table = stack.outputs["RecipientsTableName"]
        ddb = stack.client("dynamodb")
        for start in range(0, message, 25):
            ddb.batch_write_item(RequestItems={table: [
                {"PutRequest": {"Item": {"address": {"S": f"r{i:06d}@example.org"}, "status": {"S": "ACTIVE"}}}}
                for i in range(start, min(start + 25, message))]})
        configuration_set = stack.outputs["ConfigurationSetName"]
        # The configuration set publishes every type but Send (SendBatch counts sends itself).
        records = [r for r in records if publish_event(configuration_set, r)]
        stack.meter.reset()  # count ingestion only, not the seeding or the publishing
        started = time.perf_counter()
        stack.deliver_queues()
        # Quarantine episodes write too: let their rest, then their probation, run out. Each wait starts on the
        # virtual clock when its episode gets there, so move the clock until none is left waiting.
        sfn, arn = stack.client("stepfunctions"), stack.outputs["RecipientLifecycleStateMachineArn"]
        for _ in range(50):
            if not sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]:
                break
            stack.clock.advance(15 * 86_400)
            time.sleep(0.5)
        wall = time.perf_counter() - started
        counts = stack.meter.snapshot()
        dlq = stack.client("sqs").get_queue_attributes(QueueUrl=stack.outputs["FeedbackDeadLetterQueueUrl"],
                                                       AttributeNames=["ApproximateNumberOfMessages"])

    per_thousand = 1000 / len(records)
    write_units = sum(counts["dynamodb_write_units"].values())
    read_units = sum(counts["dynamodb_read_units"].values())
    print(json.dumps({
        "events": len(records),
        "mix": dict(Counter(r["eventType"] for r in records).most_common()),
        "route": args.route,
        "write_units_per_1000_events": round(write_units * per_thousand, 1),
        "write_units_by_table": counts["dynamodb_write_units"],
        "read_units_per_1000_events": round(read_units * per_thousand, 1),
        "lambda_invocations_per_1000_events": round(sum(counts["lambda_invocations"].values()) * per_thousand, 1),
        "lifecycle_transitions": sum(v for k, v in counts["transitions"].items()),
        "dead_lettered": int(dlq["Attributes"]["ApproximateNumberOfMessages"]),
        "wall_seconds": round(wall, 2),
    }, indent=2))


if __name__ == "__main__":
    main()
