"""End to end: small campaigns to the SES mailbox simulator, checked as a user would, on a deployed stack
(`make test-aws STACK=NAME`) or on the embedded engine served on loopback (every `pytest` run). See conftest.py.

The mailbox simulator (https://docs.aws.amazon.com/ses/latest/dg/send-an-email-from-console.html, "Using the
mailbox simulator"): success@ is delivered; bounce@ hard-bounces (SMTP 550 5.1.1) and is never put on SES's
suppression list; complaint@ is delivered, then complains; ooto@ is delivered and auto-replies to the
Return-Path; suppressionlist@ hard-bounces as if on SES's global suppression list. Labels (bounce+x@...)
behave as the address without them, so every run gets its own recipients. Sending to the simulator works from
the SES sandbox, counts against the send rate but not the daily quota, and does not touch the account's
reputation.

Everything the tests create carries the run's prefix (recipients' labels and list, campaign ids, execution
names), and the module's teardown deletes it: recipients, their memberships of the run's lists, their history,
campaigns, their counters, batches and manifests. Only plain boto3 clients from the environment are used here
(deployed.client).
"""

from __future__ import annotations

import json
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from app.domain.campaign import REMAINDER, TEST, cohort, parse_campaign

from tests.contacts import add_contact
from tests.e2e.deployed import Deployed

pytestmark = [pytest.mark.aws, pytest.mark.slow]

SIMULATOR = "simulator.amazonses.com"
# Split campaign: every scenario twice, the rest delivered: 20 recipients.
SCENARIOS = {"success": 12, "bounce": 2, "complaint": 2, "suppressionlist": 2, "ooto": 2}
SUPPRESSED_BY_FEEDBACK = ("bounce", "complaint", "suppressionlist")


def deadline_for(deployed: Deployed, local: float, aws: float) -> float:
    """Seconds to wait: on the engine Wait states run on a virtual clock and feedback is pumped every 0.1 s; on
    AWS a campaign's executions, SES's feedback and its queue take real minutes."""
    return local if deployed.local else aws


def poll(what: str, probe: Callable[[], tuple[Any, Any]], timeout: float, interval: float) -> Any:
    """probe() -> (answer, what it saw) until the answer is truthy; after `timeout` s fail naming `what` and
    the last thing seen."""
    deadline = time.monotonic() + timeout
    while True:
        answer, seen = probe()
        if answer:
            return answer
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: still not so after {timeout:.0f} s (last seen: {seen!r})")
        time.sleep(interval)


# ---------------------------------------------------------------- the run and its clean-up


@dataclass
class Run:
    prefix: str
    addresses: set[str] = field(default_factory=set)
    lists: set[str] = field(default_factory=set)
    campaigns: set[str] = field(default_factory=set)

    def address(self, mailbox: str, label: str) -> str:
        return f"{mailbox}+{self.prefix}-{label}@{SIMULATOR}"


def _delete_partition(deployed: Deployed, table: str, key: tuple[str, str], partition: str) -> None:
    """Delete every item of one partition (hash key key[0] = partition, range key key[1])."""
    ddb = deployed.client("dynamodb")
    request = {"TableName": table, "KeyConditionExpression": "#h = :h", "ExpressionAttributeNames": {"#h": key[0]},
               "ExpressionAttributeValues": {":h": {"S": partition}}}
    while True:
        page = ddb.query(**request)
        for item in page["Items"]:
            ddb.delete_item(TableName=table, Key={k: item[k] for k in key})
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def clean(deployed: Deployed, run: Run) -> None:
    """Delete what the run made: point reads and queries by its keys, never a scan of a deployed stack's tables."""
    ddb, out = deployed.client("dynamodb"), deployed.outputs
    for address in sorted(run.addresses):
        ddb.delete_item(TableName=out["RecipientsTableName"], Key={"address": {"S": address}})
        _delete_partition(deployed, out["EventsTableName"], ("pk", "sk"), f"RECIPIENT#{address}")
    for name in sorted(run.lists):
        _delete_partition(deployed, out["MembershipsTableName"], ("list_id", "address"), name)
    s3 = deployed.client("s3")
    for campaign_id in sorted(run.campaigns):
        for key in (campaign_id, f"{campaign_id}#stats"):
            ddb.delete_item(TableName=out["CampaignsTableName"], Key={"campaign_id": {"S": key}})
        _delete_partition(deployed, out["SendsTableName"], ("campaign_id", "batch"), campaign_id)
        _delete_partition(deployed, out["EventsTableName"], ("pk", "sk"), f"ENGAGED#{campaign_id}")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=out["ManifestBucketName"],
                                                                 Prefix=f"campaigns/{campaign_id}/"):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=out["ManifestBucketName"], Delete={"Objects": keys, "Quiet": True})


def leftovers(deployed: Deployed, run: Run) -> list[str]:
    """What of the run is still in the stack, by the same keys."""
    ddb, out, found = deployed.client("dynamodb"), deployed.outputs, []
    for address in sorted(run.addresses):
        if "Item" in ddb.get_item(TableName=out["RecipientsTableName"], Key={"address": {"S": address}},
                                  ConsistentRead=True):
            found.append(f"recipient {address}")
        if ddb.query(TableName=out["EventsTableName"], KeyConditionExpression="pk = :pk",
                     ExpressionAttributeValues={":pk": {"S": f"RECIPIENT#{address}"}}, Limit=1)["Items"]:
            found.append(f"history of {address}")
    for name in sorted(run.lists):
        if ddb.query(TableName=out["MembershipsTableName"], KeyConditionExpression="list_id = :l",
                     ExpressionAttributeValues={":l": {"S": name}}, Limit=1)["Items"]:
            found.append(f"members of list {name}")
    for campaign_id in sorted(run.campaigns):
        for key in (campaign_id, f"{campaign_id}#stats"):
            if "Item" in ddb.get_item(TableName=out["CampaignsTableName"], Key={"campaign_id": {"S": key}},
                                      ConsistentRead=True):
                found.append(f"campaign item {key}")
        if ddb.query(TableName=out["SendsTableName"], KeyConditionExpression="campaign_id = :c",
                     ExpressionAttributeValues={":c": {"S": campaign_id}}, Limit=1)["Items"]:
            found.append(f"batches of {campaign_id}")
        if ddb.query(TableName=out["EventsTableName"], KeyConditionExpression="pk = :pk",
                     ExpressionAttributeValues={":pk": {"S": f"ENGAGED#{campaign_id}"}}, Limit=1)["Items"]:
            found.append(f"engagement markers of {campaign_id}")
        listed = deployed.client("s3").list_objects_v2(Bucket=out["ManifestBucketName"],
                                                       Prefix=f"campaigns/{campaign_id}/")
        if listed.get("KeyCount"):
            found.append(f"manifests of {campaign_id}")
    return found


@pytest.fixture(scope="module")
def run(deployed: Deployed) -> Iterator[Run]:
    made = Run(prefix=f"e2e-{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(3)}")
    yield made
    clean(deployed, made)


# ---------------------------------------------------------------- what a user does and reads


def add_recipients(deployed: Deployed, run: Run, list_name: str, addresses: list[str]) -> None:
    """ACTIVE contacts subscribed on the run's list `list_name`."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    run.lists.add(list_name)
    for address in addresses:
        run.addresses.add(address)
        add_contact(deployed, address, [list_name], attributes={"status_since": now, "version": 1})


def definition(deployed: Deployed, campaign_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": campaign_id,
        "name": "sesflow end-to-end test",
        "sender": deployed.sender,
        "audience": {"lists": [campaign_id]},
        "variants": [
            {"name": "a", "subject": "sesflow end-to-end test (a)", "text": "A test of sesflow to the SES mailbox "
                                                                             "simulator."},
            {"name": "b", "subject": "sesflow end-to-end test (b)", "text": "Another test of sesflow to the SES "
                                                                             "mailbox simulator."},
        ],
        "holdout_percent": 0,
        **extra,
    }


def run_campaign(deployed: Deployed, run: Run, campaign: dict[str, Any]) -> dict[str, Any]:
    """Start the campaign's execution (named after it) and wait for it to end; its describe_execution."""
    run.campaigns.add(campaign["id"])
    sfn = deployed.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=deployed.outputs["CampaignStateMachineArn"], name=campaign["id"],
                              input=json.dumps(campaign))["executionArn"]

    def ended() -> tuple[dict[str, Any] | None, str]:
        described = sfn.describe_execution(executionArn=arn)
        return (None if described["status"] == "RUNNING" else described), described["status"]

    return poll(f"execution {campaign['id']}", ended, deadline_for(deployed, 60, 900),
                deadline_for(deployed, 0.1, 5))


def campaign_items(deployed: Deployed, campaign_id: str) -> tuple[dict[str, Any], dict[str, int]]:
    """The campaign's control item and its counters, as `sesflow campaign status` reads them."""
    ddb, table = deployed.client("dynamodb"), deployed.outputs["CampaignsTableName"]
    found = {}
    for key in (campaign_id, f"{campaign_id}#stats"):
        item = ddb.get_item(TableName=table, Key={"campaign_id": {"S": key}}, ConsistentRead=True).get("Item", {})
        found[key] = {k: next(iter(v.values())) for k, v in item.items()}
    stats = {k: int(v) for k, v in found[f"{campaign_id}#stats"].items() if isinstance(v, str) and v.isdigit()}
    return found[campaign_id], stats


def batches(deployed: Deployed, campaign_id: str) -> list[dict[str, Any]]:
    """The campaign's SendsTable items: one per manifest batch it claimed."""
    ddb, items, request = deployed.client("dynamodb"), [], {
        "TableName": deployed.outputs["SendsTableName"], "KeyConditionExpression": "campaign_id = :c",
        "ExpressionAttributeValues": {":c": {"S": campaign_id}}, "ConsistentRead": True}
    while True:
        page = ddb.query(**request)
        items += [{k: next(iter(v.values())) for k, v in item.items()} for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def sent_by_batches(items: list[dict[str, Any]]) -> int:
    """Recipients the batches record as sent: up to `next` (all when SENT), less unknown and refused ones."""
    total = 0
    for item in items:
        done = int(item["recipients"]) if item["status"] == "SENT" else int(item.get("next", 0))
        total += done - int(item.get("unknown", 0)) - int(item.get("failed", 0))
    return total


def manifest_addresses(deployed: Deployed, control: dict[str, Any], phase: str) -> list[str]:
    audience = json.loads(control["audience"])
    key = next(p["manifest_key"] for p in audience["phases"] if p["name"] == phase)
    body = deployed.client("s3").get_object(Bucket=deployed.outputs["ManifestBucketName"], Key=key)["Body"].read()
    return [r["address"] for batch in json.loads(body) for r in batch["recipients"]]


def recipient(deployed: Deployed, address: str) -> dict[str, Any]:
    item = deployed.client("dynamodb").get_item(TableName=deployed.outputs["RecipientsTableName"],
                                                Key={"address": {"S": address}}, ConsistentRead=True)["Item"]
    return {k: next(iter(v.values())) for k, v in item.items()}


def history(deployed: Deployed, address: str) -> list[dict[str, Any]]:
    items = deployed.client("dynamodb").query(
        TableName=deployed.outputs["EventsTableName"], KeyConditionExpression="pk = :pk", ConsistentRead=True,
        ExpressionAttributeValues={":pk": {"S": f"RECIPIENT#{address}"}})["Items"]
    return [{k: next(iter(v.values())) for k, v in item.items()} for item in items]


# ---------------------------------------------------------------- a campaign to every scenario


@pytest.fixture(scope="module")
def split(deployed: Deployed, run: Run) -> dict[str, Any]:
    """One split campaign to 20 simulator recipients, run to its end."""
    campaign_id = f"{run.prefix}-all"
    audience = [run.address(mailbox, str(i)) for mailbox, n in SCENARIOS.items() for i in range(n)]
    add_recipients(deployed, run, campaign_id, audience)
    described = run_campaign(deployed, run, definition(deployed, campaign_id))
    return {"id": campaign_id, "audience": audience, "execution": described}


def test_every_recipient_gets_exactly_one_email_when_a_campaign_runs_to_completion(deployed, split):
    control, stats = campaign_items(deployed, split["id"])
    items = batches(deployed, split["id"])
    manifest = manifest_addresses(deployed, control, "all")

    assert split["execution"]["status"] == "SUCCEEDED", split["execution"].get("cause")
    assert control["status"] == "COMPLETED"
    assert sorted(manifest) == sorted(split["audience"])  # everyone once, nobody else
    assert stats["sent"] == len(split["audience"]) == 20
    assert all(item["status"] == "SENT" for item in items), items
    assert sum(int(item["recipients"]) for item in items) == len(manifest)  # one claim per batch, none twice
    assert sent_by_batches(items) == stats["sent"]
    assert not any(int(item.get(k, 0)) for item in items for k in ("unknown", "inflight", "failed"))
    assert stats["sent#a"] + stats["sent#b"] == stats["sent"]


def test_bounce_and_complaint_addresses_are_suppressed_when_their_feedback_arrives(deployed, split):
    audience = split["audience"]
    expected = {a: ("SUPPRESSED" if a.split("+")[0] in SUPPRESSED_BY_FEEDBACK else "ACTIVE") for a in audience}
    hard_bounces = sum(n for m, n in SCENARIOS.items() if m in ("bounce", "suppressionlist"))

    def settled() -> tuple[bool, Any]:
        states = {a: recipient(deployed, a)["status"] for a in audience}
        _, stats = campaign_items(deployed, split["id"])
        counted = (stats.get("hard_bounces", 0), stats.get("complaints", 0))
        suppressed = all(s == "SUPPRESSED" for a, s in states.items() if expected[a] == "SUPPRESSED")
        seen = {"states": dict(Counter(f"{a.split('+')[0]}:{s}" for a, s in states.items())),
                "hard_bounces, complaints": counted}
        return suppressed and counted == (hard_bounces, SCENARIOS["complaint"]), seen

    poll("bounce, complaint and suppressionlist recipients SUPPRESSED and counted", settled,
         deadline_for(deployed, 30, 900), deadline_for(deployed, 0.2, 10))

    states = {a: recipient(deployed, a)["status"] for a in audience}
    # success@ is delivered; ooto@ is delivered too (its auto-reply goes to the Return-Path, not to feedback)
    assert {a: s for a, s in states.items() if a.startswith("success+")} == \
        {a: "ACTIVE" for a in audience if a.startswith("success+")}
    assert all(states[a] != "SUPPRESSED" for a in audience if a.startswith("ooto+"))
    assert all(states[a] == "SUPPRESSED" for a in audience if expected[a] == "SUPPRESSED")
    for address in (a for a in audience if expected[a] == "SUPPRESSED"):
        kind = "complaint" if address.startswith("complaint+") else "bounce"
        events = [e for e in history(deployed, address) if e.get("kind") == kind]
        # one email, so one SES message this feedback is about (a repeated delivery of one event is one record)
        assert len({e["message_id"] for e in events}) == 1, (address, events)
        assert {e.get("to_status") for e in events} == {"SUPPRESSED"}


# ---------------------------------------------------------------- a complaint spike


def spike_audience(run: Run, campaign: dict[str, Any]) -> tuple[list[str], list[str]]:
    """10 recipients in the test cohort (4 complaint@, 6 success@) and 10 in the remainder (success@), chosen by
    the campaign's own cohort rule (app.domain.campaign.cohort: a hash of campaign and address)."""
    parsed = parse_campaign(campaign)
    wanted = {("complaint", TEST): 4, ("success", TEST): 6, ("success", REMAINDER): 10}
    chosen: dict[tuple[str, str], list[str]] = {k: [] for k in wanted}
    for mailbox in ("complaint", "success"):
        label = 0
        while any(len(chosen[k]) < n for k, n in wanted.items() if k[0] == mailbox):
            address = run.address(mailbox, f"s{label}")
            label += 1
            group = chosen.get((mailbox, cohort(parsed, address)))
            if group is not None and len(group) < wanted[(mailbox, cohort(parsed, address))]:
                group.append(address)
    test = chosen[("complaint", TEST)] + chosen[("success", TEST)]
    return test, chosen[("success", REMAINDER)]


def test_a_campaign_halts_with_the_breakers_reason_when_complaints_spike(deployed, run):
    campaign_id = f"{run.prefix}-spike"
    # Low levels and no minimum: one complaint in the test cohort is proof enough. The evaluation window holds
    # the remainder back while SES's complaints come in (seconds on AWS; on the engine before the Wait).
    campaign = definition(deployed, campaign_id,
                          ab={"mode": "test_then_winner", "test_percent": 50, "evaluation_seconds": 120},
                          thresholds={"complaint": {"warn": 0.001, "halt": 0.002}, "min_sends": 1})
    test, remainder = spike_audience(run, campaign)
    add_recipients(deployed, run, campaign_id, test + remainder)

    described = run_campaign(deployed, run, campaign)
    control, stats = campaign_items(deployed, campaign_id)
    items = batches(deployed, campaign_id)

    seen = {"execution": (described["status"], described.get("error"), described.get("cause")), "stats": stats,
            "control": {k: v for k, v in control.items() if k in ("status", "halt", "decision")},
            "batches": [(i["batch"], i["status"], i.get("next")) for i in items]}
    assert (described["status"], described.get("error")) == ("FAILED", "CampaignHalted"), seen
    assert control["status"] == "HALTED"
    halt = json.loads(control["halt"])
    assert halt["metric"] == "complaint" and halt["level"] == "halt"
    assert "complaint rate" in halt["reason"] and "above the halt level 0.2%" in halt["reason"], halt
    assert json.loads(described["cause"])["reason"] == halt["reason"]  # what the failed execution says
    assert sorted(manifest_addresses(deployed, control, TEST)) == sorted(test)
    # The halt kept every email of the remainder from going; of the test cohort, what went is accounted for.
    assert not [item for item in items if item["batch"].startswith(f"{REMAINDER}#")]
    assert 1 <= stats["sent"] <= len(test)
    assert sent_by_batches(items) == stats["sent"]
    assert stats.get("complaints", 0) >= 1


def test_nothing_of_the_run_is_left_when_it_is_cleaned_up(deployed, run, split):
    assert run.addresses and run.lists and run.campaigns  # the tests above made something to clean up

    clean(deployed, run)

    assert leftovers(deployed, run) == []
