"""Quarantine episodes: state transitions, DynamoDB write units and dollars per episode.

    .venv/bin/python benchmarks/lifecycle.py [--recipients 50]

Each recipient soft-bounces once and rests its day; then, in turn, its probation ends with a delivery
(-> ACTIVE), with no outcome at all (the 14-day window ends -> ACTIVE), or with a complaint (-> SUPPRESSED).
Everything flows through the real path on the embedded engine (feedback queue -> IngestFeedbackFunction ->
RecipientLifecycleStateMachine) in virtual time. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta
from pathlib import Path

from sesflow.engine.ses import feedback_record
from sesflow.engine.stack import LocalStack

ROOT = Path(__file__).resolve().parents[1]
STANDARD_PER_TRANSITION = 0.025 / 1000  # Step Functions Standard, us-east-1 list price
WRITE_UNIT = 0.625 / 1_000_000  # DynamoDB on-demand write request unit
ENDINGS = ("delivery", "no outcome", "complaint")


def wait_for(stack: LocalStack, addresses: list[str], status: str, parked: bool, timeout: float = 120) -> None:
    ddb, table = stack.client("dynamodb"), stack.outputs["RecipientsTableName"]
    deadline = time.monotonic() + timeout
    while True:
        items = [ddb.get_item(TableName=table, Key={"address": {"S": a}})["Item"] for a in addresses]
        if all(i["status"]["S"] == status and (not parked or "episode_token" in i) for i in items):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"recipients did not all reach {status}")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=60)
    args = parser.parse_args()
    started = time.perf_counter()
    with LocalStack(template_path=ROOT / "template.yaml", ses_identities=("example.com",)) as stack:
        ddb, sqs = stack.client("dynamodb"), stack.client("sqs")
        addresses = [f"r{i:05d}@example.org" for i in range(args.recipients)]
        for address in addresses:
            ddb.put_item(TableName=stack.outputs["RecipientsTableName"], Item={
                "address": {"S": address}, "status": {"S": "ACTIVE"}})

        def feed(kind: str, who: list[str]) -> None:
            for i, address in enumerate(who):
                record = feedback_record(kind, address, stack.clock.now(), f"0100-{kind}-{i:06d}",
                                         tags={"campaign": ["bench"], "variant": ["a"]})
                sqs.send_message(QueueUrl=stack.outputs["FeedbackQueueUrl"], MessageBody=json.dumps(record))
            stack.deliver_queues()

        stack.meter.reset()
        feed("soft_bounce", addresses)
        wait_for(stack, addresses, "QUARANTINED", parked=True)
        stack.clock.advance(timedelta(days=1).total_seconds())
        wait_for(stack, addresses, "RECOVERY", parked=True)
        by_ending = {ending: addresses[i :: len(ENDINGS)] for i, ending in enumerate(ENDINGS)}
        feed("delivery", by_ending["delivery"])
        feed("complaint", by_ending["complaint"])
        stack.clock.advance(timedelta(days=14).total_seconds())
        wait_for(stack, by_ending["no outcome"], "ACTIVE", parked=False)
        sfn = stack.client("stepfunctions")
        episodes = sfn.list_executions(stateMachineArn=stack.outputs["RecipientLifecycleStateMachineArn"])
        for execution in episodes["executions"]:
            stack.wait(execution["executionArn"], timeout=60)
        snapshot = stack.meter.snapshot()

    lifecycle = {k: n for k, n in snapshot["transitions"].items() if "RecipientLifecycle" in k}
    transitions = sum(lifecycle.values())
    episodes_run = len(episodes["executions"])
    writes = sum(snapshot["dynamodb_write_units"].values())
    per_episode = {
        "state_transitions": round(transitions / episodes_run, 2),
        "dynamodb_write_units_all_paths": round(writes / episodes_run, 2),
        "dollars_step_functions": round(transitions / episodes_run * STANDARD_PER_TRANSITION, 8),
        "dollars_dynamodb_writes": round(writes / episodes_run * WRITE_UNIT, 8),
    }
    print(json.dumps({
        "recipients": args.recipients,
        "episodes": episodes_run,
        "endings": {ending: len(who) for ending, who in by_ending.items()},
        "per_episode": per_episode,
        "dollars_per_million_episodes": round(1_000_000 * (per_episode["dollars_step_functions"]
                                                           + per_episode["dollars_dynamodb_writes"]), 2),
        "lambda_invocations": snapshot["lambda_invocations"],
        "wall_seconds": round(time.perf_counter() - started, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
