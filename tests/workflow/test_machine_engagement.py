"""Test-then-winner counts people, not machines: on the engine, variant a's messages go through link scanners (an
open and a click of every link seconds after delivery) and Apple Mail Privacy Protection's proxy (an open of every
message), variant b's readers click more. SES publishes those events through the configuration sets and
IngestFeedbackFunction counts them; the decision must see b's people and not a's machines."""

import json
from datetime import datetime

import pytest
from app.domain.campaign import HOLDOUT, TEST, assign_variant, cohort, parse_campaign

from sesflow import report
from sesflow.engine.feedback_model import FeedbackModel, Rates
from sesflow.engine.ses import simulator
from tests.workflow.test_test_then_winner import audience, definition  # noqa: F401 - the fixture

# Everyone is delivered; a's people click 4%, b's 12%; half of a's messages are scanned, 90% proxied.
PEOPLE = Rates(hard_bounce=0, soft_bounce=0, open=0.2, click=0.04, complaint=0)
MACHINES = {"a": {"scanner": 0.5, "proxy": 0.9}, "b": {"click": 0.12}}


@pytest.fixture
def model():
    found = FeedbackModel(seed=5, rates=PEOPLE, variants=MACHINES)
    simulator().configure(feedback=found)
    return found


def test_machine_clicks_do_not_win_and_machine_opens_take_no_persons_first_open(stack, audience, model):  # noqa: F811
    before = stack.runtime.before_wait
    stack.runtime.before_wait = stack.deliver_queues  # what the test cohort caused is ingested before the window
    try:
        result = stack.run("CampaignStateMachine", definition())
    finally:
        stack.runtime.before_wait = before
    stack.deliver_queues()

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    control = stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"],
                                                Key={"campaign_id": {"S": "winter-sale"}})["Item"]
    decision = json.loads(control["decision"]["S"])
    numbers = {n["name"]: n for n in decision["numbers"]}
    # Counting machines, a would win by far (over half its messages clicked); counting people, b does.
    assert decision["winner"] == "b", decision["reason"]
    assert numbers["a"]["rate"] < 0.08 < numbers["b"]["rate"]

    # Who opened or clicked in person (SES's records of the test cohort, as the model published them): not the
    # proxy's agent, and a minute or more after the send (the machines' come within seconds, or with that agent).
    campaign = parse_campaign(definition())
    people = {"open": {"a": set(), "b": set()}, "click": {"a": set(), "b": set()}}
    for sent in simulator().outbox:
        if assign_variant(campaign, sent.to[0]) == HOLDOUT or cohort(campaign, sent.to[0]) != TEST:
            continue
        for record in model.records_for(sent):
            kind = record["eventType"].lower()
            if kind in people and record[kind]["userAgent"] != "Mozilla/5.0" and \
                    _seconds(record[kind]["timestamp"], record["mail"]["timestamp"]) >= 60:
                people[kind][sent.tags["variant"]].add(sent.to[0])
    stats = {k: int(v["N"]) for k, v in stack.client("dynamodb").get_item(
        TableName=stack.outputs["CampaignsTableName"], Key={"campaign_id": {"S": "winter-sale#stats"}})["Item"].items()
        if "N" in v}
    # The winner's metric counts each person once, machines never; a proxy's open before the person's own took no
    # first-open marker: every a recipient who opened is counted, though nine in ten had a machine open first.
    assert people["open"]["a"] and people["click"]["a"] and people["click"]["b"]
    assert stats["unique_opens#a"] == len(people["open"]["a"]) and stats["unique_opens#b"] == len(people["open"]["b"])
    assert stats["unique_clicks#a"] == numbers["a"]["successes"] == len(people["click"]["a"])
    assert stats["unique_clicks#b"] == numbers["b"]["successes"] == len(people["click"]["b"])
    # The machines' own counts (the remainder got b: no scanner, no proxy): a proxy's open of 90% of a's messages
    # and a scanner's open and click of half of them.
    sent_a = stats["sent#a"]
    assert 1.2 * sent_a < stats["machine_opens#a"] < 1.6 * sent_a
    assert 0.4 * sent_a < stats["machine_clicks#a"] < 0.6 * sent_a
    assert "machine_opens#b" not in stats and "machine_clicks#b" not in stats
    # The report's funnel and the campaign's summary show them beside the people's.
    funnel = report.funnel(stats, "#a")
    assert [funnel["machine_opened"], funnel["machine_clicked"]] == [
        stats["machine_opens#a"], stats["machine_clicks#a"]]
    assert funnel["clicked"] == stats["clicks#a"] < funnel["machine_clicked"]
    assert result.output["feedback"]["machine_clicks"] == stats["machine_clicks"]
    assert result.output["per_variant"]["a"]["machine_opens"] == stats["machine_opens#a"]


def _seconds(at, since):
    return (datetime.fromisoformat(at.replace("Z", "+00:00")) -
            datetime.fromisoformat(since.replace("Z", "+00:00"))).total_seconds()
