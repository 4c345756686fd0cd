"""Bandit mode on the engine: the audience goes out in rounds; between them SES's feedback (deliveries, clicks,
complaints) comes back through the real ingestion path while the campaign waits out the round's window (virtual
time), ReweighVariants records the next round's weights, and each round's recipients get their variant from them."""

import hashlib
import json
import os
from collections import Counter

import pytest
from app import campaign_control
from app.domain.bandit import reweigh, round_variant
from app.domain.campaign import HOLDOUT, assign_variant, bandit_round, parse_campaign
from app.domain.winner import VariantStats

from sesflow import campaign_cli, report
from sesflow.engine.ses import simulator
from sesflow.target import Target
from tests.workflow.feedback import Feedback
from tests.workflow.test_campaign import LIST, seed
from tests.workflow.test_campaign_faults import config
from tests.workflow.test_test_then_winner import clicks

RECIPIENTS = 2000
ROUNDS = 5


def definition(**ab):
    return {
        "id": "bandit-sale",
        "sender": "news@example.com",
        "audience": {"lists": [LIST]},
        "variants": [{"name": "a", "weight": 50, "template": "spring-a"},
                     {"name": "b", "weight": 50, "template": "spring-b"}],
        "holdout_percent": 5,
        "ab": {"mode": "bandit", "metric": "click", "rounds": ROUNDS, "round_seconds": 1800, "min_share": 0.05,
               **ab},
    }


@pytest.fixture
def audience(stack):
    simulator().configure(max_send_rate=1000, max_24h_send=1_000_000)  # a production account: not about pacing
    seed(stack, {f"user{i:04d}@example.org": "ACTIVE" for i in range(RECIPIENTS)})
    return [f"user{i:04d}@example.org" for i in range(RECIPIENTS)]


@pytest.fixture
def target(stack):
    """The stack as the operator's CLI sees it (sesflow campaign status, report)."""
    saved = dict(os.environ)
    yield Target(name="test-stack", region=stack.region, outputs=stack.outputs)
    os.environ.clear()
    os.environ.update(saved)


def waits(stack, result, state="WaitRoundWindow"):
    """How many times the execution entered `state`."""
    pages = stack.client("stepfunctions").get_paginator("get_execution_history").paginate(executionArn=result.arn)
    return sum(1 for page in pages for e in page["events"]
               if e["type"] == "WaitStateEntered" and e["stateEnteredEventDetails"]["name"] == state)


def control_item(stack):
    return stack.client("dynamodb").get_item(TableName=stack.outputs["CampaignsTableName"],
                                             Key={"campaign_id": {"S": "bandit-sale"}})["Item"]


def recorded_rounds(stack):
    return [json.loads(e["S"]) for e in control_item(stack).get("bandit_rounds", {}).get("L", [])]


def sent_by_round(campaign, audience):
    """{round: Counter(variant)} of what the simulated SES sent; asserts nobody got two emails and every recipient
    not held out got one."""
    got = Counter(r for m in simulator().outbox for r in m.to)
    assert set(got.values()) == {1}, "someone got it twice"
    variant = {m.to[0]: m.tags["variant"] for m in simulator().outbox}
    sendable = {a for a in audience if assign_variant(campaign, a) != HOLDOUT}
    assert set(variant) == sendable
    rounds: dict[int, Counter] = {}
    for address, name in variant.items():
        rounds.setdefault(bandit_round(campaign, address), Counter())[name] += 1
    return variant, rounds


def test_each_round_moves_its_share_toward_the_better_variant_and_everyone_gets_one_email(stack, audience, target):
    raw = definition()
    campaign = parse_campaign(raw)
    with Feedback(stack, clicks({"a": 0.03, "b": 0.12})):
        result = stack.run("CampaignStateMachine", raw)

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.output["status"] == "COMPLETED"
    variant, rounds = sent_by_round(campaign, audience)
    recorded = recorded_rounds(stack)
    assert [r["round"] for r in recorded] == [2, 3, 4, 5]
    # Round 1 by the campaign's weights; each later round by its recorded weights, recipient by recipient.
    for address, name in variant.items():
        number = bandit_round(campaign, address)
        expected = (assign_variant(campaign, address) if number == 1
                    else round_variant(campaign, recorded[number - 2]["weights"], address))
        assert name == expected
    share_b = [rounds[n]["b"] / sum(rounds[n].values()) for n in range(1, ROUNDS + 1)]
    assert 0.4 < share_b[0] < 0.6
    assert all(later > share_b[0] + 0.3 for later in share_b[1:]), share_b
    assert share_b[-1] > 0.9 and rounds[ROUNDS]["a"] > 0  # a keeps its minimum share: still explored
    assert all(r["weights"]["a"] >= 0.05 for r in recorded)
    # The numbers behind each reweighting are recorded, and compute the same weights again (seeded).
    for previous, entry in zip([None, *recorded], recorded, strict=False):
        numbers = {v["name"]: v for v in entry["variants"]}
        assert numbers["b"]["successes"] / numbers["b"]["delivered"] > numbers["a"]["successes"] / \
            numbers["a"]["delivered"]
        assert all(v["alpha"] == 1 + v["successes"] and v["beta"] == 1 + v["delivered"] - v["successes"]
                   for v in entry["variants"])
        stats = {n: VariantStats(v["sent"], v["delivered"], clicks=v["successes"], complaints=v["complaints"])
                 for n, v in numbers.items()}
        again = reweigh(campaign, stats, entry["round"], previous["weights"] if previous else None)
        assert again.to_dict() == entry
    # The first round's recipients count toward each variant's numbers as any others do.
    assert sum(v["sent"] for v in recorded[0]["variants"]) == sum(rounds[1].values())
    assert result.output["accounted"]["sent"] == len(variant)
    assert waits(stack, result) == ROUNDS - 1
    # One SES call per variant in a later round's batch (its recipients grouped by their variant), not one per
    # change of variant along the manifest.
    calls: dict[str, set] = {}
    for m in simulator().outbox:
        calls.setdefault(m.tags["batch"], set()).add((m.tags["call"], m.tags["variant"]))
    later = {b: c for b, c in calls.items() if not b.startswith("round-1-")}
    assert later and all(len(c) == len({v for _, v in c}) for c in later.values())
    # What the operator sees: `sesflow campaign status` and the report.
    assert campaign_cli.status(target, "bandit-sale")["bandit_rounds"] == recorded
    table = report.render_table(report.collect(target, "bandit-sale"))
    assert "bandit rounds" in table and recorded[0]["reason"] in table and "p_best" in table
    assert recorded[-1]["reason"] in report.render_html(report.collect(target, "bandit-sale"))


def test_a_resume_reads_the_recorded_rounds_back_without_their_waits(stack, audience, monkeypatch):
    """Paused as round 3 begins, then resumed: rounds 2 and 3 keep their recorded weights (not decided again on the
    later numbers), only rounds 4 and 5 wait their windows, and nobody gets two emails."""
    import app.handlers.send_batch as send_batch

    raw = definition()
    campaign = parse_campaign(raw)
    real_call, paused_at = send_batch.send_call, []

    def send_call(campaign, variant, probation, addresses, batch, *rest):
        if batch.startswith("round-3#") and not paused_at:  # the operator pauses as round 3 begins
            paused_at.append(batch)
            assert campaign_control.change_status("bandit-sale", campaign_control.PAUSED, config(stack))
        return real_call(campaign, variant, probation, addresses, batch, *rest)

    monkeypatch.setattr(send_batch, "send_call", send_call)
    with Feedback(stack, clicks({"a": 0.03, "b": 0.12})):
        paused = stack.run("CampaignStateMachine", raw)
    assert paused.status == "SUCCEEDED" and paused.output["status"] == "PAUSED", (paused.error, paused.cause)
    before = recorded_rounds(stack)
    assert [r["round"] for r in before] == [2, 3]

    with Feedback(stack, clicks({"a": 0.03, "b": 0.12})):
        resumed = stack.run("CampaignStateMachine", {**raw, "resume": True})

    assert resumed.status == "SUCCEEDED" and resumed.output["status"] == "COMPLETED", (resumed.error, resumed.cause)
    after = recorded_rounds(stack)
    assert after[:2] == before and [r["round"] for r in after] == [2, 3, 4, 5]
    assert waits(stack, resumed) == 2  # after rounds 3 and 4 only
    variant, _ = sent_by_round(campaign, audience)
    for address, name in variant.items():
        number = bandit_round(campaign, address)
        if number > 1:
            assert name == round_variant(campaign, after[number - 2]["weights"], address)


def test_a_variant_shown_over_the_complaint_halt_level_is_never_sent_again(stack, audience):
    """b draws about 2% complaints: after round 1 its complaint rate's lower bound is above the halt level, so the guard
    gives it weight 0 and says so (the breaker's min_sends is set high here, so the campaign itself goes on)."""
    raw = {**definition(), "thresholds": {"min_sends": 100_000}}
    campaign = parse_campaign(raw)

    def feedback(message):
        kinds = clicks({"a": 0.03, "b": 0.12})(message)
        complains = message.tags["variant"] == "b" and hashlib.sha256(message.to[0].encode()).digest()[-1] < 6
        return [*kinds, "complaint"] if complains else kinds

    with Feedback(stack, feedback):
        result = stack.run("CampaignStateMachine", raw)

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    sent_by_round(campaign, audience)
    recorded = recorded_rounds(stack)
    assert [r["weights"]["b"] for r in recorded] == [0.0] * (ROUNDS - 1)
    guard = {v["name"]: v for v in recorded[0]["variants"]}["b"]
    assert guard["complaints"] > 0 and "complaint guard" in guard["note"] and guard["p_best"] == 0
    assert "complaint guard" in recorded[0]["reason"]
    assert "not sent again" in {v["name"]: v for v in recorded[1]["variants"]}["b"]["note"]
    sent_b = Counter(m.tags["variant"] for m in simulator().outbox
                     if bandit_round(campaign, m.to[0]) > 1)
    assert sent_b["b"] == 0 and sent_b["a"] > 0
