"""events/ feeds `sam local invoke -e`; here each sample goes through its handler on the engine."""

import json

import pytest

from tests.conftest import ROOT
from tests.contacts import add_contact, add_contacts

EVENTS = ROOT / "events"


def invoke(stack, logical_id, path):
    response = stack.client("lambda").invoke(
        FunctionName=stack.physical_id(logical_id), Payload=(EVENTS / path).read_bytes()
    )
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def test_valid_campaign_sample_is_accepted(stack):
    error, body = invoke(stack, "ValidateCampaignFunction", "validate_campaign/valid.json")
    assert error is None
    assert [v["name"] for v in body["campaign"]["variants"]] == ["a", "b", "c"] and body["resume"] is False


def test_invalid_campaign_sample_is_refused_naming_each_bad_field(stack):
    error, body = invoke(stack, "ValidateCampaignFunction", "validate_campaign/invalid.json")
    assert error is not None and body["errorType"] == "CampaignDefinitionError"
    for path in ("id:", "sender:", "audience.lists:", "variants[0].weight:", "variants[0].template:",
                 "holdout_percent:"):
        assert path in body["errorMessage"]


def test_snapshot_sample_writes_a_manifest_of_the_eligible_list(stack):
    add_contacts(stack, {f"r{i}@example.org": status for i, status in enumerate(["ACTIVE"] * 120 + ["SUPPRESSED"] * 3)},
                 ["newsletter"])

    error, body = invoke(stack, "SnapshotAudienceFunction", "snapshot_audience/spring_sale.json")

    assert error is None, body
    manifest = json.loads(stack.client("s3").get_object(
        Bucket=stack.outputs["ManifestBucketName"], Key=body["phases"][0]["manifest_key"])["Body"].read())
    addresses = [r["address"] for batch in manifest for r in batch["recipients"]]
    assert max(len(batch["recipients"]) for batch in manifest) <= 50
    assert len(addresses) == body["recipients"] and body["recipients"] + body["holdout"] == 120
    assert not any(a in addresses for a in ("r120@example.org", "r121@example.org", "r122@example.org"))


def test_snapshot_under_a_send_window_writes_each_zones_batches_apart_in_the_order_they_open(stack):
    zones = ["America/New_York", "Asia/Tokyo", None, "Mars/Olympus"]
    for i in range(240):
        zone = zones[i % 4]
        add_contact(stack, f"r{i:03d}@example.org", ["newsletter"], attributes={"time_zone": zone} if zone else None)

    error, body = invoke(stack, "SnapshotAudienceFunction", "snapshot_audience/send_window.json")

    assert error is None, body
    s3, bucket = stack.client("s3"), stack.outputs["ManifestBucketName"]
    phase = body["phases"][0]
    parts = phase["zones"]
    assert sorted(p["zone"] for p in parts) == ["America/New_York", "Asia/Tokyo", "Europe/Paris"]
    assert [p["opens_at"] for p in parts] == sorted(p["opens_at"] for p in parts)  # the order they open
    assert {p["zone"]: p["recipients"] for p in parts} == {"America/New_York": 60, "Asia/Tokyo": 60,
                                                           "Europe/Paris": 120}
    assert body["zone_defaulted"] == {"invalid": 60, "missing": 60}
    whole = json.loads(s3.get_object(Bucket=bucket, Key=phase["manifest_key"])["Body"].read())
    indexes = []
    for part in parts:
        own = json.loads(s3.get_object(Bucket=bucket, Key=part["manifest_key"])["Body"].read())
        assert {b["zone"] for b in own} == {part["zone"]} and len(own) == part["batches"]
        # within the zone, the variants alternate (interleaved), one variant per batch
        variants = [{r["variant"] for r in b["recipients"]} for b in own]
        assert all(len(v) == 1 for v in variants) and len({v.pop() for v in variants}) == 2
        indexes += [b["index"] for b in own]
    assert indexes == list(range(len(whole))) == [b["index"] for b in whole]  # phase-wide batch keys, no repeats


def test_send_batch_sample_sends_each_recipient_once_when_invoked_twice(stack):
    from sesflow.engine.ses import simulator

    stack.client("sesv2").create_email_template(
        TemplateName="spring-a", TemplateContent={"Subject": "A", "Text": "a"})
    stack.client("sesv2").create_email_template(
        TemplateName="spring-b", TemplateContent={"Subject": "B", "Text": "b"})

    first = invoke(stack, "SendBatchFunction", "send_batch/two_recipients.json")
    again = invoke(stack, "SendBatchFunction", "send_batch/two_recipients.json")

    assert first == (None, {"batch": "all#000000", "recipients": 2, "sent": 2, "failed": 0})
    assert again == (None, {"batch": "all#000000", "recipients": 2, "sent": 0, "failed": 0, "skipped": "SENT"})
    assert sorted(r for m in simulator().outbox for r in m.to) == ["ada@example.org", "success@simulator.amazonses.com"]


@pytest.mark.parametrize("sample", sorted(p.name for p in (EVENTS / "ingest_feedback").glob("*.json")))
def test_feedback_sample_sends_only_its_malformed_records_to_the_dead_letter_queue(stack, sample):
    event = json.loads((EVENTS / "ingest_feedback" / sample).read_text())
    error, body = invoke(stack, "IngestFeedbackFunction", f"ingest_feedback/{sample}")
    # SQS records (sqs_batch.json) or an SNS topic's records (sns_event.json: a topic invoking the function)
    bad = [r["body"] for r in event["Records"] if "body" in r and not r["body"].lstrip().startswith("{")]
    assert error is None
    assert body == {"batchItemFailures": []}  # nothing to retry: unusable input is not retried
    dlq = stack.client("sqs").receive_message(QueueUrl=stack.outputs["FeedbackDeadLetterQueueUrl"],
                                              MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    assert [m["Body"] for m in dlq.get("Messages", [])] == bad
    assert all("not JSON" in m["MessageAttributes"]["reason"]["StringValue"] for m in dlq.get("Messages", []))
