"""Campaigns at scale on the engine: three at once under one account quota (the governor shares it, SES never
throttles), and the 1M-recipient design check (the parent execution's history does not grow with the audience)."""

from collections import Counter
from datetime import timedelta

import pytest

from sesflow.engine.limits import HISTORY_EVENT_LIMIT, PAYLOAD_LIMIT_BYTES
from sesflow.engine.phase_check import largest_payload
from sesflow.engine.ses import SesAccount, simulator
from tests.contacts import put_contacts_in_moto
from tests.workflow.test_campaign import seed

RATE = 100  # recipients a second, SES's MaxSendRate for the account
CAMPAIGNS = ("east", "west", "north")


def add_recipients(stack, list_name: str, count: int) -> set[str]:
    """`count` ACTIVE contacts subscribed on `list_name`, written straight into moto's tables (setup only: fast)."""
    addresses = {f"{list_name}{i:05d}@example.org" for i in range(count)}
    put_contacts_in_moto(stack, dict.fromkeys(sorted(addresses), "ACTIVE"), [list_name])
    return addresses


def definition(campaign_id: str, list_name: str) -> dict:
    return {"id": campaign_id, "sender": "news@example.com", "audience": {"lists": [list_name]},
            "variants": [{"name": "a", "weight": 50, "template": "spring-a"},
                         {"name": "b", "weight": 50, "template": "spring-b"}]}


@pytest.fixture(autouse=True)
def powertools_metrics(monkeypatch):
    """Workaround: with POWERTOOLS_METRICS_DISABLED the engine's handlers never flush their metrics, Powertools keeps
    them process-wide and serializes them anyway at 100 values of one metric (the 100th SendBatch of a pytest
    process), which fails without a namespace (app.observability was imported outside an invocation). These
    tests run hundreds of batches: give the metrics a namespace and start and leave them empty."""
    from app.observability import metrics

    metrics.clear_metrics()
    monkeypatch.setattr(metrics, "namespace", metrics.namespace or "sesflow")
    yield
    metrics.clear_metrics()


@pytest.fixture
def ses_calls(monkeypatch):
    """Every SendEmail/SendBulkEmail the simulated SES admits or refuses for its quota."""
    calls = Counter()
    original = SesAccount.admit

    def admit(account, recipients, now, config):
        try:
            original(account, recipients, now, config)
        except Exception as error:
            calls[getattr(error, "error_type", type(error).__name__)] += 1
            raise
        calls["accepted"] += 1

    monkeypatch.setattr(SesAccount, "admit", admit)
    return calls


@pytest.mark.slow
def test_three_campaigns_at_once_share_the_quota_without_a_throttle_and_everyone_gets_one_email(stack, ses_calls):
    simulator().configure(enforce_rate=True, max_send_rate=RATE, max_24h_send=1_000_000)
    seed(stack, {})  # the templates
    audiences = {name: add_recipients(stack, name, 400) for name in CAMPAIGNS}

    arns = [stack.start("CampaignStateMachine", definition(name, name)) for name in CAMPAIGNS]
    results = [stack.wait(arn, timeout=240) for arn in arns]

    assert [(r.status, r.output["status"]) for r in results] == [("SUCCEEDED", "COMPLETED")] * 3, results
    outbox = simulator().outbox
    sent = Counter(r for m in outbox for r in m.to)
    assert set(sent.values()) == {1}, "someone got a campaign twice"
    assert set(sent) == set().union(*audiences.values())
    for message in outbox:
        assert message.to[0] in audiences[message.tags["campaign"]]
    # SES's rule on the virtual clock: in any one second, (t - 1 s, t], at most RATE recipients.
    times = sorted(m.sent_at for m in outbox)
    busiest = max(sum(1 for u in times if t - timedelta(seconds=1) < u <= t) for t in sorted(set(times)))
    assert busiest <= RATE
    # Nothing refused for the rate: no SesThrottledError, so no Map Retry of a batch for it.
    assert ses_calls["TooManyRequestsException"] == 0 and ses_calls["LimitExceededException"] == 0
    assert ses_calls["accepted"] >= len(outbox) / 50
    # The quota was shared, not used up one campaign after another at a third of the rate each.
    span = (times[-1] - times[0]).total_seconds()
    assert span < 1.25 * len(outbox) / RATE, f"{len(outbox)} recipients took {span:.1f} s at {RATE}/s"
    claims = stack.client("dynamodb").scan(TableName=stack.outputs["SendsTableName"])["Items"]
    assert {c["status"]["S"] for c in claims} == {"SENT"}


@pytest.mark.slow
def test_parent_history_and_payloads_do_not_grow_with_the_audience(stack):
    """The 1M-recipient design check at 1k and 10k (benchmarks/campaign.py adds 100k): the recipients live in
    S3 manifests and the Distributed Map's children, so the parent's history and payloads stay the same."""
    simulator().configure(enforce_rate=False, max_send_rate=100_000, max_24h_send=10_000_000)  # not about pacing
    seed(stack, {})
    runs = {}
    for size in (1_000, 10_000):
        add_recipients(stack, f"size{size}", size)
        result = stack.run("CampaignStateMachine", definition(f"size-{size}", f"size{size}"), timeout=240)
        assert result.status == "SUCCEEDED", (result.error, result.cause)
        assert result.output["sent"] == size
        runs[size] = stack.history(result.arn)

    small, large = runs[1_000], runs[10_000]
    assert [e["type"] for e in small] == [e["type"] for e in large]
    assert len(large) < 100 < HISTORY_EVENT_LIMIT  # a constant, far from Standard's 25,000 events
    assert "MapRunStarted" in {e["type"] for e in large}  # the batches ran as a Map Run's child executions
    biggest = max(largest_payload(small), largest_payload(large))
    assert biggest < PAYLOAD_LIMIT_BYTES / 32, f"{biggest} bytes"  # under 8 KiB, nowhere near 256 KiB
    assert abs(largest_payload(large) - largest_payload(small)) < 64  # ids and counts grow a digit, no more
