"""The meter counts DynamoDB read and write request units as on-demand DynamoDB bills them."""

import json
import textwrap

import pytest

from sesflow.engine.patches.capacity import item_size, value_size
from sesflow.engine.stack import LocalStack

KB = 1024


@pytest.fixture
def tables(tmp_path):
    """Two on-demand tables, one with a sort key and a KEYS_ONLY index, and a state machine writing one."""
    (tmp_path / "put.asl.json").write_text(json.dumps({
        "StartAt": "Put",
        "States": {"Put": {
            "Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem", "End": True,
            "Parameters": {"TableName": "${Table}", "Item": {"pk": {"S.$": "$.pk"}, "data": {"S.$": "$.data"}}},
        }},
    }))
    body = textwrap.dedent("""\
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Plain:
            Type: AWS::DynamoDB::Table
            Properties:
              TableName: plain
              BillingMode: PAY_PER_REQUEST
              AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
              KeySchema: [{AttributeName: pk, KeyType: HASH}]
          Sorted:
            Type: AWS::DynamoDB::Table
            Properties:
              TableName: sorted
              BillingMode: PAY_PER_REQUEST
              AttributeDefinitions:
                - {AttributeName: pk, AttributeType: S}
                - {AttributeName: sk, AttributeType: S}
                - {AttributeName: status, AttributeType: S}
              KeySchema: [{AttributeName: pk, KeyType: HASH}, {AttributeName: sk, KeyType: RANGE}]
              GlobalSecondaryIndexes:
                - IndexName: ByStatus
                  KeySchema: [{AttributeName: status, KeyType: HASH}]
                  Projection: {ProjectionType: KEYS_ONLY}
          Writer:
            Type: AWS::Serverless::StateMachine
            Properties:
              DefinitionUri: put.asl.json
              DefinitionSubstitutions: {Table: !Ref Plain}
              Policies: [DynamoDBWritePolicy: {TableName: !Ref Plain}]
        """)
    path = tmp_path / "template.yaml"
    path.write_text(body)
    with LocalStack(template_path=path) as up:
        yield up


def text(n_bytes, key="a", name="data"):
    """An item of exactly n_bytes: the key attribute pk plus a string attribute filling the rest."""
    return {"pk": {"S": key}, name: {"S": "x" * (n_bytes - 2 - len(key) - len(name))}}


def writes(stack):
    return stack.meter.snapshot()["dynamodb_write_units"]


def reads(stack):
    return stack.meter.snapshot()["dynamodb_read_units"]


# ---------------------------------------------------------------- item size


def test_item_size_follows_dynamodbs_rules():
    assert item_size({"name": {"S": "héllo"}}) == 4 + 6  # UTF-8 bytes
    assert value_size({"N": "12345"}) == 3 + 1  # 5 significant digits: 3 bytes, + 1
    assert value_size({"N": "1000000"}) == value_size({"N": "1"}) == 2  # trailing zeros are trimmed
    assert value_size({"N": "-0.00123"}) == 3
    assert value_size({"B": b"\x00\x01\x02"}) == 3  # raw bytes, not base64
    assert value_size({"BOOL": True}) == value_size({"NULL": True}) == 1
    assert value_size({"L": []}) == value_size({"M": {}}) == 3
    assert value_size({"L": [{"S": "ab"}, {"N": "7"}]}) == 3 + (1 + 2) + (1 + 2)
    assert value_size({"M": {"k": {"S": "ab"}}}) == 3 + 1 + 1 + 2
    assert value_size({"SS": ["a", "bc"]}) == 3
    assert item_size(text(500)) == 500


# ---------------------------------------------------------------- writes


def test_put_counts_one_unit_per_started_kilobyte(tables):
    ddb = tables.client("dynamodb")

    ddb.put_item(TableName="plain", Item=text(KB // 2, key="half"))
    assert writes(tables) == {"plain": 1}
    ddb.put_item(TableName="plain", Item=text(int(2.5 * KB), key="big"))
    assert writes(tables) == {"plain": 1 + 3}
    ddb.put_item(TableName="plain", Item=text(KB, key="exact"))  # exactly 1 KB: still one unit
    assert writes(tables) == {"plain": 1 + 3 + 1}


def test_put_over_a_larger_item_counts_the_larger(tables):
    ddb = tables.client("dynamodb")
    ddb.put_item(TableName="plain", Item=text(3 * KB))
    tables.meter.reset()

    ddb.put_item(TableName="plain", Item=text(100))

    assert writes(tables) == {"plain": 3}


def test_a_conditional_put_that_fails_still_consumes(tables):
    ddb = tables.client("dynamodb")
    ddb.put_item(TableName="plain", Item=text(int(2.5 * KB)))
    tables.meter.reset()

    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.put_item(TableName="plain", Item=text(100), ConditionExpression="attribute_not_exists(pk)")
    assert writes(tables) == {"plain": 3}  # the size of the item the condition was checked against

    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.put_item(TableName="plain", Item=text(100, key="new"), ConditionExpression="attribute_exists(pk)")
    assert writes(tables) == {"plain": 3 + 1}  # no item: one unit


def test_a_request_dynamodb_refuses_consumes_nothing(tables):
    ddb = tables.client("dynamodb")
    with pytest.raises(ddb.exceptions.ClientError, match="ValidationException"):
        ddb.put_item(TableName="plain", Item={"pk": {"S": ""}})  # an empty key
    with pytest.raises(ddb.exceptions.ResourceNotFoundException):
        ddb.put_item(TableName="missing", Item={"pk": {"S": "a"}})
    assert writes(tables) == {}


def test_update_counts_the_larger_of_the_item_before_and_after(tables):
    ddb = tables.client("dynamodb")
    ddb.put_item(TableName="plain", Item=text(KB // 2))
    tables.meter.reset()

    ddb.update_item(TableName="plain", Key={"pk": {"S": "a"}}, UpdateExpression="SET #d = :d",
                    ExpressionAttributeNames={"#d": "data"}, ExpressionAttributeValues={":d": {"S": "y" * 2000}})
    assert writes(tables) == {"plain": 2}  # grew to about 2 KB
    ddb.update_item(TableName="plain", Key={"pk": {"S": "a"}}, UpdateExpression="REMOVE #d",
                    ExpressionAttributeNames={"#d": "data"})
    assert writes(tables) == {"plain": 2 + 2}  # shrank: the item before counts


def test_delete_counts_the_deleted_item(tables):
    ddb = tables.client("dynamodb")
    ddb.put_item(TableName="plain", Item=text(int(1.5 * KB)))
    tables.meter.reset()

    ddb.delete_item(TableName="plain", Key={"pk": {"S": "a"}})
    ddb.delete_item(TableName="plain", Key={"pk": {"S": "nothing"}})

    assert writes(tables) == {"plain": 2 + 1}


def test_batch_write_counts_each_item_on_its_own(tables):
    ddb = tables.client("dynamodb")
    ddb.put_item(TableName="plain", Item=text(int(2.5 * KB), key="old"))
    tables.meter.reset()

    ddb.batch_write_item(RequestItems={"plain": [
        {"PutRequest": {"Item": text(KB // 2, key="p1")}},
        {"PutRequest": {"Item": text(int(1.5 * KB), key="p2")}},
        {"PutRequest": {"Item": text(100, key="p3")}},
        {"DeleteRequest": {"Key": {"pk": {"S": "old"}}}},
    ]})

    assert writes(tables) == {"plain": 1 + 2 + 1 + 3}  # not ceil(4.6 KB) = 5


def test_transact_write_counts_twice_each_item(tables):
    ddb = tables.client("dynamodb")
    ddb.put_item(TableName="plain", Item=text(int(1.5 * KB), key="upd"))
    ddb.put_item(TableName="plain", Item=text(100, key="chk"))
    tables.meter.reset()

    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": "plain", "Item": text(KB // 2, key="new")}},
        {"Update": {"TableName": "plain", "Key": {"pk": {"S": "upd"}}, "UpdateExpression": "SET n = :n",
                    "ExpressionAttributeValues": {":n": {"N": "1"}}}},
        {"ConditionCheck": {"TableName": "plain", "Key": {"pk": {"S": "chk"}},
                            "ConditionExpression": "attribute_exists(pk)"}},
    ])

    assert writes(tables) == {"plain": 2 * 1 + 2 * 2 + 2 * 1}


def test_index_entries_written_by_a_write_count_too(tables):
    ddb = tables.client("dynamodb")
    key = {"pk": {"S": "r"}, "sk": {"S": "1"}}

    ddb.put_item(TableName="sorted", Item={**key, "data": {"S": "x" * 1500}})
    assert writes(tables) == {"sorted": 2}  # not in the index: no status
    ddb.update_item(TableName="sorted", Key=key, UpdateExpression="SET #s = :s",
                    ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": {"S": "active"}})
    assert writes(tables) == {"sorted": 2 + 2 + 1}  # the item, and a new index entry
    ddb.update_item(TableName="sorted", Key=key, UpdateExpression="SET #d = :d",
                    ExpressionAttributeNames={"#d": "data"}, ExpressionAttributeValues={":d": {"S": "y"}})
    assert writes(tables) == {"sorted": 2 + 3 + 2}  # KEYS_ONLY: the index entry is unchanged
    ddb.update_item(TableName="sorted", Key=key, UpdateExpression="SET #s = :s",
                    ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": {"S": "quarantined"}})
    assert writes(tables) == {"sorted": 2 + 3 + 2 + 1 + 2}  # the index key changed: delete and put


def test_the_step_functions_dynamodb_integration_is_metered(tables):
    result = tables.run("Writer", {"pk": "sfn", "data": "x" * 1500})

    assert result.status == "SUCCEEDED", result.cause
    assert writes(tables) == {"plain": 2}


# ---------------------------------------------------------------- reads


def test_get_item_eventually_consistent_is_half_a_strong_read(tables):
    ddb = tables.client("dynamodb")
    ddb.put_item(TableName="plain", Item=text(KB // 2))
    ddb.put_item(TableName="plain", Item=text(5 * KB, key="big"))

    ddb.get_item(TableName="plain", Key={"pk": {"S": "a"}})
    assert reads(tables) == {"plain": 0.5}
    ddb.get_item(TableName="plain", Key={"pk": {"S": "a"}}, ConsistentRead=True)
    assert reads(tables) == {"plain": 0.5 + 1}
    ddb.get_item(TableName="plain", Key={"pk": {"S": "big"}}, ProjectionExpression="pk")  # 5 KB: 2 steps
    assert reads(tables) == {"plain": 0.5 + 1 + 1}
    ddb.get_item(TableName="plain", Key={"pk": {"S": "nothing"}})  # found nothing: still the minimum
    assert reads(tables) == {"plain": 0.5 + 1 + 1 + 0.5}


def test_query_sums_the_items_read_before_the_filter_and_rounds_once(tables):
    ddb = tables.client("dynamodb")
    for i in range(3):
        ddb.put_item(TableName="sorted", Item={"pk": {"S": "r"}, "sk": {"S": str(i)}, "data": {"S": "x" * 1500}})
    tables.meter.reset()
    query = {"TableName": "sorted", "KeyConditionExpression": "pk = :p"}

    items = ddb.query(**query, ExpressionAttributeValues={":p": {"S": "r"}})["Items"]
    assert len(items) == 3
    assert reads(tables) == {"sorted": 1.0}  # about 4.5 KB: 2 steps of 4 KB, halved
    filtered = ddb.query(**query, FilterExpression="sk = :none",
                         ExpressionAttributeValues={":p": {"S": "r"}, ":none": {"S": "zz"}})
    assert (filtered["Count"], filtered["ScannedCount"]) == (0, 3)
    assert reads(tables) == {"sorted": 2.0}  # the filter does not reduce what was read
    ddb.query(**query, ExpressionAttributeValues={":p": {"S": "r"}}, ConsistentRead=True, Limit=2)
    assert reads(tables) == {"sorted": 2.0 + 1.0}  # 3 KB strongly consistent: 1 step
    ddb.query(**query, ExpressionAttributeValues={":p": {"S": "nobody"}})
    assert reads(tables) == {"sorted": 3.0 + 0.5}


def test_query_on_a_keys_only_index_reads_the_index_entries(tables):
    ddb = tables.client("dynamodb")
    for i in range(3):
        ddb.put_item(TableName="sorted", Item={"pk": {"S": "r"}, "sk": {"S": str(i)}, "status": {"S": "active"},
                                               "data": {"S": "x" * 3000}})
    tables.meter.reset()

    ddb.query(TableName="sorted", IndexName="ByStatus", KeyConditionExpression="#s = :s",
              ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": {"S": "active"}})

    assert reads(tables) == {"sorted": 0.5}  # three small index entries, not three 3 KB items


def test_scan_counts_every_item_it_reads(tables):
    ddb = tables.client("dynamodb")
    for i in range(5):
        ddb.put_item(TableName="plain", Item=text(2 * KB, key=f"k{i}"))
    tables.meter.reset()

    response = ddb.scan(TableName="plain", FilterExpression="pk = :k", ExpressionAttributeValues={":k": {"S": "k0"}})

    assert response["Count"] == 1
    assert reads(tables) == {"plain": 1.5}  # 10 KB: 3 steps, halved


def test_batch_get_rounds_each_item_up_before_adding(tables):
    ddb = tables.client("dynamodb")
    ddb.put_item(TableName="plain", Item=text(int(1.5 * KB), key="small"))
    ddb.put_item(TableName="plain", Item=text(int(6.5 * KB), key="large"))
    tables.meter.reset()

    ddb.batch_get_item(RequestItems={"plain": {"Keys": [{"pk": {"S": "small"}}, {"pk": {"S": "large"}}]}})
    assert reads(tables) == {"plain": (1 + 2) / 2}  # 4 KB + 8 KB, not 8 KB
    ddb.batch_get_item(RequestItems={"plain": {"Keys": [{"pk": {"S": "small"}}], "ConsistentRead": True}})
    assert reads(tables) == {"plain": 1.5 + 1}


def test_transact_get_counts_twice_a_strong_read(tables):
    ddb = tables.client("dynamodb")
    ddb.put_item(TableName="plain", Item=text(KB // 2, key="one"))
    ddb.put_item(TableName="plain", Item=text(5 * KB, key="two"))
    tables.meter.reset()

    ddb.transact_get_items(TransactItems=[
        {"Get": {"TableName": "plain", "Key": {"pk": {"S": "one"}}}},
        {"Get": {"TableName": "plain", "Key": {"pk": {"S": "two"}}}},
    ])

    assert reads(tables) == {"plain": 2 * 1 + 2 * 2}


def test_reset_clears_the_units_and_deployment_is_not_counted(tables):
    assert writes(tables) == {} and reads(tables) == {}
    tables.client("dynamodb").put_item(TableName="plain", Item=text(100))
    tables.meter.reset()
    assert writes(tables) == {}
