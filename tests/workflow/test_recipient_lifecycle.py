"""The recipient lifecycle end to end on the engine, in virtual time: SES feedback -> feedback queue ->
IngestFeedbackFunction -> RecipientsTable and quarantine episodes (statemachines/recipient_lifecycle.asl.json)."""

import json
import threading
import time
from datetime import datetime, timedelta

import pytest
from app.domain.feedback import parse_feedback

from sesflow.engine.ses import feedback_record
from tests.contacts import add_contact

DAY = timedelta(days=1)
ADDRESS = "ada@example.com"


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ses_event(kind: str, at: datetime, address: str = ADDRESS, message: str = "m1") -> str:
    """One SES event-publishing record, as the configuration set sends it (the body SNS raw or SQS carries)."""
    tags = {"campaign": ["spring-sale"], "variant": ["a"]}
    return json.dumps(feedback_record(kind, address, at, f"0100-{message}-000000", tags=tags))


class Lifecycle:
    """The stack, seen from a recipient's point of view."""

    def __init__(self, stack):
        self.stack = stack
        self.ddb = stack.client("dynamodb")
        self.sfn = stack.client("stepfunctions")

    def now(self) -> datetime:
        return self.stack.clock.now()

    def add(self, address: str = ADDRESS, status: str = "ACTIVE") -> None:
        add_contact(self.stack, address, ["newsletter"], status=status)

    def feed(self, *bodies: str) -> None:
        for body in bodies:
            self.stack.client("sqs").send_message(QueueUrl=self.stack.outputs["FeedbackQueueUrl"], MessageBody=body)
        self.stack.deliver_queues()

    def item(self, address: str = ADDRESS) -> dict:
        item = self.ddb.get_item(TableName=self.stack.outputs["RecipientsTableName"],
                                 Key={"address": {"S": address}})["Item"]
        return {k: next(iter(v.values())) for k, v in item.items()}

    def until(self, check, what: str, timeout: float = 20) -> dict:
        """Poll (real time) until the recipient satisfies `check`: episodes run on their own threads."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.item()
            if check(item):
                return item
            if time.monotonic() > deadline:
                raise AssertionError(f"recipient never {what}: {item}")
            time.sleep(0.02)

    def parked(self, status: str) -> dict:
        return self.until(lambda i: i["status"] == status and "episode_token" in i, f"parked in {status}")

    def episodes(self) -> list[dict]:
        arn = self.stack.outputs["RecipientLifecycleStateMachineArn"]
        return self.sfn.list_executions(stateMachineArn=arn)["executions"]

    def ended(self, execution: dict, timeout: float = 20) -> dict:
        result = self.stack.wait(execution["executionArn"], timeout=timeout)
        return result.output

    def history(self, address: str = ADDRESS) -> list[tuple[str, str, str]]:
        items = self.ddb.query(TableName=self.stack.outputs["EventsTableName"], KeyConditionExpression="pk = :p",
                               ExpressionAttributeValues={":p": {"S": f"RECIPIENT#{address}"}})["Items"]
        return [(i["from_status"]["S"], i["to_status"]["S"], i["actor"]["S"]) for i in items if "to_status" in i]


@pytest.fixture
def life(stack) -> Lifecycle:
    return Lifecycle(stack)


def test_soft_bounce_rests_a_day_then_probation_then_a_delivery_makes_it_active(life):
    life.add()
    bounced_at = life.now()

    life.feed(ses_event("soft_bounce", bounced_at))

    item = life.parked("QUARANTINED")
    assert item["quarantined_until"] == iso(bounced_at + DAY)
    assert len(item["strike_times"]) == 1
    (episode,) = life.episodes()
    assert episode["status"] == "RUNNING"

    life.stack.clock.advance(DAY.total_seconds())
    item = life.parked("RECOVERY")
    assert "quarantined_until" not in item and item["status_cause"] == "quarantine_end"

    life.feed(ses_event("delivery", life.now(), message="m2"))

    assert life.item()["status"] == "ACTIVE"
    assert life.ended(episode)["ended"] == "during probation"
    item = life.item()
    assert item["strike_times"] == [] and "episode" not in item and "episode_token" not in item
    assert sorted(life.history()) == sorted([
        ("ACTIVE", "QUARANTINED", "ses-feedback"), ("QUARANTINED", "RECOVERY", "recipient-lifecycle"),
        ("RECOVERY", "ACTIVE", "ses-feedback")])


def test_three_soft_bounces_suppress_with_growing_rests(life):
    life.add()
    life.feed(ses_event("soft_bounce", life.now(), message="m1"))
    assert life.parked("QUARANTINED")["quarantined_until"] == iso(life.now() + DAY)
    life.stack.clock.advance(DAY.total_seconds())
    life.parked("RECOVERY")

    second = life.now()
    life.feed(ses_event("soft_bounce", second, message="m2"))
    item = life.until(lambda i: i["status"] == "QUARANTINED" and i.get("episode_token"), "quarantined again")
    assert item["quarantined_until"] == iso(second + 3 * DAY)  # the second strike rests longer
    life.stack.clock.advance(3 * DAY.total_seconds())
    life.parked("RECOVERY")

    life.feed(ses_event("soft_bounce", life.now(), message="m3"))

    item = life.item()
    assert (item["status"], item["status_cause"], len(item["strike_times"])) == ("SUPPRESSED", "strike_limit", 3)
    for episode in life.episodes():
        assert life.ended(episode)["ended"] == "during probation"
    assert len(life.episodes()) == 2


def test_complaint_during_quarantine_suppresses_and_ends_the_episode(life):
    life.add()
    life.feed(ses_event("soft_bounce", life.now()))
    life.parked("QUARANTINED")

    life.feed(ses_event("complaint", life.now(), message="m2"))

    assert life.item()["status"] == "SUPPRESSED"
    (episode,) = life.episodes()
    output = life.ended(episode)
    assert (output["ended"], output["status"], output["ended_by"]) == ("during quarantine", "SUPPRESSED", "complaint")
    life.stack.clock.advance(30 * DAY.total_seconds())  # nothing wakes up later and moves it
    assert life.item()["status"] == "SUPPRESSED"
    assert ("QUARANTINED", "RECOVERY", "recipient-lifecycle") not in life.history()


def test_hard_bounce_during_probation_suppresses_and_ends_the_episode(life):
    life.add()
    life.feed(ses_event("soft_bounce", life.now()))
    life.parked("QUARANTINED")
    life.stack.clock.advance(DAY.total_seconds())
    life.parked("RECOVERY")

    life.feed(ses_event("hard_bounce", life.now(), message="m2"))

    assert life.item()["status"] == "SUPPRESSED"
    (episode,) = life.episodes()
    assert life.ended(episode)["ended_by"] == "hard_bounce"


def test_a_duplicate_soft_bounce_starts_nothing_new(life):
    life.add()
    bounce = ses_event("soft_bounce", life.now())

    life.feed(bounce, bounce)  # one batch
    life.feed(bounce)  # a later redelivery

    item = life.parked("QUARANTINED")
    assert len(item["strike_times"]) == 1
    assert len(life.episodes()) == 1


def test_probation_with_no_outcome_ends_active_and_keeps_the_strike(life):
    life.add()
    life.feed(ses_event("soft_bounce", life.now()))
    life.parked("QUARANTINED")
    life.stack.clock.advance(DAY.total_seconds())
    life.parked("RECOVERY")

    life.stack.clock.advance(14 * DAY.total_seconds())

    item = life.until(lambda i: i["status"] == "ACTIVE", "active after probation")
    assert item["status_cause"] == "probation_end" and len(item["strike_times"]) == 1
    (episode,) = life.episodes()
    assert life.ended(episode) == {"ended": "probation ended", "status": "ACTIVE"}
    assert ("RECOVERY", "ACTIVE", "recipient-lifecycle") in life.history()


def test_two_events_for_one_recipient_applied_at_once_lose_no_update(life, monkeypatch):
    """Two Lambda batches at once, each with a soft bounce for the same recipient: both strikes count."""
    from app import clients
    from app.ingest import apply_events
    from app.settings import Settings

    monkeypatch.setenv("AWS_DEFAULT_REGION", life.stack.region)  # the Lambda code, run here as Lambda runs it
    clients.forget()

    life.add()
    outputs = life.stack.outputs
    settings = Settings(
        recipients_table=outputs["RecipientsTableName"], campaigns_table=outputs["CampaignsTableName"],
        sends_table=outputs["SendsTableName"], events_table=outputs["EventsTableName"],
        manifest_bucket=outputs["ManifestBucketName"], alert_topic_arn=outputs["AlertTopicArn"],
        configuration_set=outputs["ConfigurationSetName"], feedback_dlq_url=None,
        lifecycle_state_machine_arn=None, lifecycle_policy=None)
    batches = [parse_feedback(ses_event("soft_bounce", life.now(), message=m)).events for m in ("m1", "m2")]
    barrier, errors = threading.Barrier(2), []

    def apply(events):
        barrier.wait()
        try:
            apply_events(events, settings, outputs["RecipientLifecycleStateMachineArn"])
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=apply, args=(events,)) for events in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    item = life.parked("QUARANTINED")
    assert len(item["strike_times"]) == 2 and item["version"] == "3"  # two transitions and the episode's park
    assert len(life.episodes()) == 1  # the second strike fell in the quarantine the first began
