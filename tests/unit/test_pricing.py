"""Cost per N emails at AWS list prices from the engine's counts (src/sesflow/engine/pricing.py), and the
counts the pricing needs that the Meter takes (src/sesflow/engine/metering.py, patches/metering.py)."""

import json
import textwrap
from pathlib import Path

import pytest

from sesflow.engine.metering import PAYLOAD_CHUNK_BYTES, Meter, payload_chunks
from sesflow.engine.pricing import (
    API_CALLS,
    COUNTERS,
    PRICES,
    combine,
    cost_breakdown,
    format_table,
    lambda_architectures,
    unaccounted_counters,
)

ROOT = Path(__file__).resolve().parents[2]
M = 1_000_000


def snapshot(**counters):
    """A snapshot as Meter.snapshot() shapes it: every counter present, empty unless given."""
    base = Meter().snapshot()
    base.update(counters)
    return base


def line(breakdown, item):
    (found,) = [x for x in breakdown.lines if x.item == item]
    return found


# --------------------------------------------------------------------------- known counts, known dollars


KNOWN = snapshot(
    transitions={"Campaign/STANDARD": 40_000, "Campaign/SendBatches/EXPRESS": 20_000},
    executions={"Campaign/STANDARD": 1, "Campaign/SendBatches/EXPRESS": 20_000},
    express_billed_ms={"Campaign/SendBatches": 57_600_000},
    express_gb_seconds={"Campaign/SendBatches": 3_600.0},  # one GB-hour
    lambda_invocations={"SendBatch": 1_000_000, "Legacy": 10},
    lambda_billed_ms={"SendBatch": 400_000_000, "Legacy": 1_000},
    lambda_gb_seconds={"SendBatch": 100_000.0, "Legacy": 60_000.0},
    api_calls={"s3:PutObject": 2_000, "s3:GetObject": 5_000, "s3:DeleteObject": 7, "dynamodb:PutItem": 9,
               "sfn:StartExecution": 1, "sesv2:SendBulkEmail": 20_000, "lambda:Invoke": 10},
    dynamodb_write_units={"Sends": 2_000_000, "Campaigns": 400_000},
    dynamodb_read_units={"Recipients": 800_000},
    sqs_requests={"Feedback:SendMessage (from SNS)": 2_000_000, "Feedback:ReceiveMessage": 500_000,
                  "Orders.fifo:SendMessage": 1_000_000},
    sns_publishes={"Feedback": 2_000_000},
    sns_deliveries={"Feedback:sqs": 2_000_000, "Alerts:email": 100_000, "Hooks:https": 1_000_000},
    eventbridge_events={"default:aws.ses": 3_000_000, "default:sesflow.app": 1_000_000, "default:aws.ec2": 500},
)


@pytest.fixture(scope="module")
def known():
    return cost_breakdown(KNOWN, emails=M, lambda_architectures={"SendBatch": "arm64"})


@pytest.mark.parametrize(("item", "quantity", "dollars"), [
    ("Standard state transitions", 40_000, 1.00),  # $0.025 per 1,000
    ("Express state transitions", 20_000, 0.0),  # included in Express requests and duration
    ("Express requests", 20_000, 0.02),  # $1.00 per 1M
    ("Express duration", 3_600, 0.06),  # $0.06 per GB-hour
    ("Requests", 1_000_010, 0.200002),  # Lambda, $0.20 per 1M
    ("Duration (arm64)", 100_000, 1.33334),  # $0.0000133334 per GB-second
    ("Duration (x86_64)", 60_000, 1.000002),  # $0.0000166667 per GB-second: architecture not given
    ("Write request units (on-demand)", 2_400_000, 1.50),  # $0.625 per 1M
    ("Read request units (on-demand)", 800_000, 0.10),  # $0.125 per 1M
    ("PUT, COPY, POST, LIST requests", 2_000, 0.01),  # $0.005 per 1,000
    ("GET and other requests", 5_000, 0.002),  # $0.0004 per 1,000; DELETE free
    ("Requests (standard queues)", 2_500_000, 1.00),  # $0.40 per 1M
    ("Requests (FIFO queues)", 1_000_000, 0.50),  # $0.50 per 1M
    ("Publish requests", 2_000_000, 1.00),  # $0.50 per 1M
    ("Deliveries to SQS", 2_000_000, 0.0),
    ("Deliveries to HTTP/S", 1_000_000, 0.60),
    ("Deliveries to email", 100_000, 2.00),  # $2.00 per 100,000
    ("SES events (AWS opt-in data events)", 3_000_000, 3.00),
    ("Custom events", 1_000_000, 1.00),
    ("AWS management events", 500, 0.0),
])
def test_known_counts_give_known_dollars(known, item, quantity, dollars):
    found = line(known, item)
    assert found.quantity == pytest.approx(quantity)
    assert found.per_emails == pytest.approx(quantity)  # the run sent `per` emails: no scaling
    assert found.dollars == pytest.approx(dollars, rel=1e-9, abs=1e-12)


def test_total_is_the_sum_of_the_lines_and_leaves_ses_out(known):
    assert known.total == pytest.approx(sum(x.dollars for x in known.lines))
    assert known.total == pytest.approx(14.325344, abs=1e-6)
    assert known.ses.dollars == pytest.approx(100.0)  # $0.10 per 1,000 emails, reported apart
    assert all(x.service != "SES" for x in known.lines)


def test_each_line_keeps_its_resources(known):
    assert line(known, "Write request units (on-demand)").detail == {"Campaigns": 400_000, "Sends": 2_000_000}
    assert line(known, "Requests (standard queues)").detail == {
        "Feedback:ReceiveMessage": 500_000, "Feedback:SendMessage (from SNS)": 2_000_000}


def test_api_calls_counted_elsewhere_or_free_add_nothing(known):
    assert known.unpriced == ()
    s3_only = cost_breakdown(snapshot(api_calls={"dynamodb:PutItem": 10**9, "sfn:StartExecution": 10**9,
                                                 "sesv2:SendBulkEmail": 10**9, "s3:DeleteObject": 10**9}), emails=1)
    assert s3_only.lines == () and s3_only.total == 0


# --------------------------------------------------------------------------- scaling


def test_scales_a_small_run_to_a_million_emails():
    run = snapshot(transitions={"Campaign/STANDARD": 30}, dynamodb_write_units={"Sends": 750},
                   lambda_invocations={"SendBatch": 5})
    breakdown = cost_breakdown(run, emails=250)  # 4,000 times as many emails
    transitions = line(breakdown, "Standard state transitions")
    assert (transitions.quantity, transitions.per_emails) == (30, 120_000)
    assert transitions.dollars == pytest.approx(3.00)
    assert line(breakdown, "Write request units (on-demand)").dollars == pytest.approx(3_000_000 * 0.625 / M)
    assert line(breakdown, "Requests").dollars == pytest.approx(20_000 * 0.20 / M)
    assert breakdown.per == M and breakdown.runs == (("run", 250),)
    assert breakdown.ses.per_emails == M and breakdown.ses.dollars == pytest.approx(100.0)


def test_per_other_than_a_million():
    breakdown = cost_breakdown(snapshot(transitions={"C/STANDARD": 10}), emails=100, per=1_000)
    assert line(breakdown, "Standard state transitions").per_emails == 100
    assert breakdown.ses.dollars == pytest.approx(0.10)


@pytest.mark.parametrize("emails", [0, -5, True, 2.5, None])
def test_emails_must_be_a_positive_count(emails):
    with pytest.raises(ValueError, match=r"number of emails the run sent, at least 1; got"):
        cost_breakdown(snapshot(), emails=emails)


@pytest.mark.parametrize("per", [0, -1, 1.5])
def test_per_must_be_positive(per):
    with pytest.raises(ValueError, match="per must be a positive number of emails"):
        cost_breakdown(snapshot(), emails=10, per=per)


def test_combine_adds_the_feedback_of_a_campaign_and_counts_ses_once():
    campaign = cost_breakdown(snapshot(transitions={"C/STANDARD": 8}, dynamodb_write_units={"Sends": 300}),
                              emails=100, label="campaign")
    feedback = cost_breakdown(snapshot(dynamodb_write_units={"Campaigns": 20}, sns_publishes={"Feedback": 230}),
                              emails=100, label="feedback")
    both = combine(campaign, feedback)
    assert both.runs == (("campaign", 100), ("feedback", 100))
    assert both.total == pytest.approx(campaign.total + feedback.total)
    assert both.ses.dollars == pytest.approx(100.0)
    writes = line(both, "Write request units (on-demand)")
    assert writes.per_emails == pytest.approx(3_200_000)
    assert writes.detail == {"Campaigns": 200_000, "Sends": 3_000_000}
    assert [x.item for x in both.lines] == ["Standard state transitions", "Write request units (on-demand)",
                                            "Publish requests"]  # in PRICES order
    with pytest.raises(ValueError, match="different numbers of emails"):
        combine(campaign, cost_breakdown(snapshot(), emails=1, per=1_000))


# --------------------------------------------------------------------------- nothing unpriced goes unnoticed


def test_every_meter_counter_is_priced_or_listed():
    """A counter added to the Meter must be priced in pricing.py or listed there as free or informational."""
    counters = set(Meter().snapshot())
    assert unaccounted_counters(counters) == [], "add the new counter to pricing.COUNTERS (and price it)"
    assert counters == set(COUNTERS), "pricing.COUNTERS names a counter the Meter no longer has"


def test_an_unknown_counter_or_api_service_is_reported_not_dropped():
    breakdown = cost_breakdown({**snapshot(api_calls={"kinesis:PutRecord": 4, "s3:GetObject": 1}),
                                "kinesis_shard_hours": {"s": 1}}, emails=1)
    assert breakdown.unpriced == ("api_calls kinesis:PutRecord (4)",
                                  "kinesis_shard_hours (a counter pricing.COUNTERS does not know)")
    assert "Unpriced (no price here; not in the total): api_calls kinesis:PutRecord (4)" in format_table(breakdown)


def test_services_the_stack_calls_are_all_accounted_for():
    for service in ("dynamodb", "lambda", "sfn", "sqs", "sns", "eventbridge", "s3", "sesv2"):
        assert service in API_CALLS


def test_every_price_names_its_page():
    for key, price in PRICES.items():
        assert price.source.startswith("https://aws.amazon.com/"), key
        assert price.usd >= 0 and price.quoted, key


def test_list_prices_as_checked():
    """us-east-1, checked 2026-11-22 (pricing.PRICES_CHECKED): a change here is a price change, on purpose."""
    per_million = {key: round(price.usd * M, 6) for key, price in PRICES.items()}
    assert per_million["sfn_standard_transition"] == 25.0
    assert per_million["sfn_express_request"] == 1.0
    assert per_million["sfn_express_duration"] == pytest.approx(16.666667)  # $0.06 per GB-hour
    assert per_million["lambda_request"] == 0.2
    assert per_million["lambda_duration_x86_64"] == pytest.approx(16.6667)
    assert per_million["lambda_duration_arm64"] == pytest.approx(13.3334)
    assert per_million["dynamodb_write"] == 0.625 and per_million["dynamodb_read"] == 0.125
    assert per_million["s3_tier1"] == 5.0 and per_million["s3_tier2"] == 0.4
    assert per_million["sqs_request"] == 0.4 and per_million["sqs_fifo_request"] == 0.5
    assert per_million["sns_publish"] == 0.5 and per_million["sns_delivery_sqs"] == 0
    assert per_million["eventbridge_custom"] == 1.0 and per_million["eventbridge_aws_management"] == 0
    assert per_million["ses_email"] == 100.0


# --------------------------------------------------------------------------- output


def test_to_dict_is_json_and_agrees_with_the_table(known):
    document = json.loads(json.dumps(known.to_dict()))
    assert document["free_tiers"] == "not applied"
    assert document["total_usd"] == pytest.approx(known.total, abs=1e-6)
    assert document["total_with_ses_usd"] == pytest.approx(known.total + 100, abs=1e-6)
    assert document["ses"]["usd"] == 100.0
    assert {x["item"] for x in document["lines"]} == {x.item for x in known.lines}
    assert all(x["source"].startswith("https://") for x in document["lines"])
    assert [x["item"] for x in document["not_metered"]][:2] == ["CloudWatch Logs ingestion", "X-Ray traces recorded"]


def test_format_table(known):
    table = format_table(known)
    assert table.splitlines()[0].startswith("Cost per 1,000,000 emails at AWS list prices (us-east-1, checked ")
    assert "free tiers not applied" in table.splitlines()[0]
    rows = {row.split("  ")[1].strip(): row for row in table.splitlines() if row.startswith("  ") and "  " in row[2:]}
    assert rows["Step Functions"]
    total = next(row for row in table.splitlines() if row.startswith("  total"))
    assert total.endswith(f"${known.total:,.2f}")
    ses = next(row for row in table.splitlines() if row.startswith("  SES"))
    assert "not in the total" in ses and ses.endswith("$100.00")
    assert "Not metered (not in the total):" in table


# --------------------------------------------------------------------------- the Meter's new counts


def test_payload_chunks():
    assert [payload_chunks(n) for n in (0, 1, PAYLOAD_CHUNK_BYTES, PAYLOAD_CHUNK_BYTES + 1, 256 * 1024)] == [
        1, 1, 1, 2, 4]


def test_express_duration_is_billed_in_100_ms_steps_of_64_mb():
    meter = Meter()
    meter.count_express_duration("Map", 150)  # -> 200 ms of 64 MB
    meter.count_express_duration("Map", 1, memory_mb=65)  # -> 100 ms of 128 MB
    counts = meter.snapshot()
    assert counts["express_billed_ms"] == {"Map": 300}
    assert counts["express_gb_seconds"] == {"Map": pytest.approx(0.2 * 0.0625 + 0.1 * 0.125)}


def test_messaging_counts_and_reset():
    meter = Meter()
    meter.count_sqs_request("q", "SendMessageBatch", 3 * PAYLOAD_CHUNK_BYTES)
    meter.count_sqs_request("q", "DeleteMessage")
    meter.count_sns_publish("t", 10)
    meter.count_sns_delivery("t", "sqs")
    meter.count_eventbridge_event("default", "aws.ses", PAYLOAD_CHUNK_BYTES + 1)
    counts = meter.snapshot()
    assert counts["sqs_requests"] == {"q:DeleteMessage": 1, "q:SendMessageBatch": 3}
    assert counts["sns_publishes"] == {"t": 1} and counts["sns_deliveries"] == {"t:sqs": 1}
    assert counts["eventbridge_events"] == {"default:aws.ses": 2}
    meter.reset()
    assert all(value == {} for value in meter.snapshot().values())


def test_lambda_architectures_come_from_the_template():
    from sesflow.engine.template import load_template

    found = lambda_architectures(load_template(ROOT / "template.yaml"))
    assert found and set(found.values()) == {"arm64"}  # Globals: Architectures [arm64]


# --------------------------------------------------------------------------- the engine takes those counts


TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Topic:
    Type: AWS::SNS::Topic
  Queue:
    Type: AWS::SQS::Queue
  Subscription:
    Type: AWS::SNS::Subscription
    Properties: {TopicArn: !Ref Topic, Protocol: sqs, Endpoint: !GetAtt Queue.Arn}
  Rule:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {source: [sesflow.test]}
      Targets: [{Id: Queue, Arn: !GetAtt Queue.Arn}]
  Fanout:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: fanout.asl.json
      Policies:  # a Distributed Map starts its items as executions of its own state machine
        - Statement: [{Effect: Allow, Action: [states:StartExecution], Resource: "*"}]
"""
FANOUT = {
    "StartAt": "Each",
    "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "End": True,
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
            "StartAt": "Pause",
            "States": {"Pause": {"Type": "Wait", "Seconds": 2, "End": True}},
        },
    }},
}


@pytest.fixture
def messaging(tmp_path):
    from sesflow.engine.stack import LocalStack

    (tmp_path / "template.yaml").write_text(textwrap.dedent(TEMPLATE))
    (tmp_path / "fanout.asl.json").write_text(json.dumps(FANOUT))
    with LocalStack(template_path=tmp_path / "template.yaml") as up:
        yield up


def test_the_engine_meters_sqs_sns_eventbridge_and_express_duration(messaging):
    stack = messaging
    queue_url, queue = stack.physical_id("Queue"), stack.resource("Queue").attributes["QueueName"]
    topic = stack.physical_id("Topic")
    stack.meter.reset()
    stack.client("sns").publish(TopicArn=topic, Message="x" * (PAYLOAD_CHUNK_BYTES + 10))
    stack.client("events").put_events(Entries=[{"Source": "sesflow.test", "DetailType": "t", "Detail": "{}"}])
    sqs = stack.client("sqs")
    sqs.send_message_batch(QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": "m"} for i in range(3)])
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)])
    sqs.receive_message(QueueUrl=queue_url)  # empty: still a request
    sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])  # any action is a request
    result = stack.run("Fanout", {"items": [1, 2, 3]})
    assert result.status == "SUCCEEDED", (result.error, result.cause)

    counts = stack.meter.snapshot()
    topic_name = topic.rpartition(":")[2]
    assert counts["sns_publishes"] == {topic_name: 2}  # 64 KiB + 10 bytes: two chunks
    assert counts["sns_deliveries"] == {f"{topic_name}:sqs": 1}
    assert counts["eventbridge_events"] == {"default:sesflow.test": 1}
    assert len(received) == 5
    assert counts["sqs_requests"] == {
        f"{queue}:SendMessage (from SNS)": 2,  # SNS's envelope around 64 KiB: two chunks
        f"{queue}:SendMessage (from EventBridge)": 1,
        f"{queue}:SendMessageBatch": 1,
        f"{queue}:ReceiveMessage": 2 + 1,  # the five messages come to two chunks; then an empty receive
        f"{queue}:DeleteMessageBatch": 1,
        f"{queue}:GetQueueAttributes": 1,
    }
    machine = stack.physical_id("Fanout").rpartition(":")[2]
    assert counts["executions"][f"{machine}/Each/EXPRESS"] == 3
    billed = counts["express_billed_ms"][f"{machine}/Each"]
    assert billed >= 3 * 2_000 and billed % 100 == 0  # each child waits 2 s (virtual), in 100 ms steps
    assert counts["express_gb_seconds"][f"{machine}/Each"] == pytest.approx(billed / 1000 * 64 / 1024)

    breakdown = cost_breakdown(counts, emails=3)
    assert line(breakdown, "Express duration").dollars > 0
    assert line(breakdown, "Publish requests").per_emails == pytest.approx(2 * M / 3)
    assert breakdown.unpriced == ()
