"""The size check of a campaign's send phase: the CampaignStateMachine's real SendPhase Map, alone, over a manifest of
N batches, its children answering as SendBatch answers (a stand-in that sends nothing, so a million recipients take
minutes, not hours). It shows what AWS would hold the phase to: the parent's history, every payload (a child's input
carries the campaign and its batch), the Map's result, the EXPRESS children's five minutes.

    figures = run_send_phase(batches=20_000)   # 1,000,000 recipients in one phase

Used by benchmarks/send_phase.py and tests/workflow/test_send_phase_size.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from sesflow.engine.limits import HISTORY_EVENT_LIMIT, PAYLOAD_LIMIT_BYTES
from sesflow.engine.patches import lambda_bridge
from sesflow.engine.stack import LocalStack

BATCH_SIZE = 50
ROOT = Path(__file__).resolve().parents[3]


def campaign(campaign_id: str = "million") -> dict[str, Any]:
    return {"id": campaign_id, "sender": "news@example.com", "audience": {"lists": ["everyone"]},
            "variants": [{"name": "a", "weight": 50, "template": "spring-a"},
                         {"name": "b", "weight": 50, "template": "spring-b"}]}


def manifest(batches: int) -> list[dict[str, Any]]:
    """What SnapshotAudience writes for one phase: batches of 50 recipients with their variants."""
    return [{"index": i, "recipients": [{"address": f"r{i * BATCH_SIZE + j:07d}@example.org",
                                         "variant": "ab"[(i * BATCH_SIZE + j) % 2]} for j in range(BATCH_SIZE)]}
            for i in range(batches)]


def stand_in(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SendBatch's answer for a batch sent whole."""
    recipients = len(event["batch"]["recipients"])
    return {"batch": f"{event['phase']}#{event['batch']['index']:06d}", "recipients": recipients,
            "sent": recipients, "failed": 0}


def largest_payload(events: list[dict[str, Any]]) -> int:
    """Bytes of the largest state input, output, task result or assigned variable in a history."""
    sizes = [0]
    for event in events:
        for key, details in event.items():
            if key.endswith("EventDetails") and isinstance(details, dict):
                texts = [details.get(f) for f in ("input", "output", "result", "parameters")]
                texts += list((details.get("assignedVariables") or {}).values())
                sizes += [len(t.encode()) for t in texts if isinstance(t, str)]
    return max(sizes)


def run_send_phase(batches: int, template: Path = ROOT / "template.yaml") -> dict[str, Any]:
    with LocalStack(template_path=template) as stack:
        sfn = stack.client("stepfunctions")
        deployed = sfn.describe_state_machine(stateMachineArn=stack.physical_id("CampaignStateMachine"))
        send_phase = {k: v for k, v in json.loads(deployed["definition"])["States"]["SendPhase"].items()
                      if k not in ("Next", "Catch")}
        bucket = stack.outputs["ManifestBucketName"]
        key = "campaigns/million/size-check/all.json"
        document = manifest(batches)
        stack.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(document, separators=(",", ":")))
        audience = {"phases": [{"name": "all", "manifest_key": key, "batches": batches,
                                "recipients": batches * BATCH_SIZE}], "holdout": 0}
        definition = {"QueryLanguage": "JSONata", "StartAt": "Given", "States": {
            # The variables SendPhase reads, as ValidateCampaign assigns them for a split campaign.
            "Given": {"Type": "Pass", "Next": "SendPhase", "Assign": {
                "campaign": campaign(), "audience": audience, "phase": 0, "decision": {}, "zone": 0, "weights": {},
                "ready_at": "{% $states.context.Execution.StartTime %}"}},
            "SendPhase": {**send_phase, "End": True}}}
        machine = sfn.create_state_machine(name="SendPhaseSizeCheck", definition=json.dumps(definition),
                                           roleArn=deployed["roleArn"])["stateMachineArn"]
        spec = lambda_bridge.function(stack.physical_id("SendBatchFunction"))
        spec._callable = stand_in
        started = time.perf_counter()
        arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]
        result = stack.wait(arn, timeout=4 * 3600, poll=0.5)
        wall = time.perf_counter() - started
        history = stack.history(arn)
        runs = sfn.list_map_runs(executionArn=arn)["mapRuns"]
        counts = sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])["itemCounts"] if runs else {}
        child_input = max(len(json.dumps({"campaign": campaign(), "phase": "all", "decision": {}, "batch": b},
                                         separators=(",", ":")).encode()) for b in document[:10])
        return {
            "batches": batches,
            "recipients": batches * BATCH_SIZE,
            "status": result.status,
            "error": result.error,
            "output": result.output,
            "children": counts,
            "parent_history_events": len(history),
            "history_limit": HISTORY_EVENT_LIMIT,
            "largest_parent_payload_bytes": largest_payload(history),
            "largest_child_input_bytes": child_input,
            "payload_limit_bytes": PAYLOAD_LIMIT_BYTES,
            "manifest_bytes": len(json.dumps(document, separators=(",", ":")).encode()),
            "wall_seconds": round(wall, 1),
        }
