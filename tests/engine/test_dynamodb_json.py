"""patches/dynamodb_json.py dumps DynamoDB item responses as they are; moto's shape-driven serializer is the
reference. The same calls on the same data must give the client the same answers on both paths."""

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from sesflow.engine.patches import dynamodb_json

ITEM = {"pk": {"S": "a"}, "sk": {"N": "1"}, "name": {"S": "Ada é"}, "n": {"N": "1.50"}, "yes": {"BOOL": True},
        "nothing": {"NULL": True}, "tags": {"SS": ["x", "y"]}, "nums": {"NS": ["1", "2"]},
        "list": {"L": [{"S": "a"}, {"N": "2"}, {"M": {"deep": {"L": []}}}]}, "empty": {"S": ""},
        "blob": {"B": b"\x00\xffbinary"}, "blobs": {"BS": [b"a", b"b"]}}


def calls(client):
    """(label, response or error code) for a run of item operations, each on data the run itself wrote."""
    client.create_table(
        TableName="t", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "N"},
                              {"AttributeName": "name", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": "by_name", "Projection": {"ProjectionType": "KEYS_ONLY"},
                                 "KeySchema": [{"AttributeName": "name", "KeyType": "HASH"}]}])
    without_blobs = {k: v for k, v in ITEM.items() if k not in ("blob", "blobs")}
    out = []

    def record(label, call, **kwargs):
        try:
            response = call(**kwargs)
            response.pop("ResponseMetadata", None)
            out.append((label, response))
        except ClientError as error:
            out.append((label, error.response["Error"]["Code"], error.response.get("Item")))

    record("put", client.put_item, TableName="t", Item=ITEM, ReturnConsumedCapacity="TOTAL")
    for i in range(2, 6):
        record(f"put{i}", client.put_item, TableName="t", Item={**without_blobs, "sk": {"N": str(i)}},
               ReturnValues="ALL_OLD")
    record("put again", client.put_item, TableName="t", Item={**without_blobs, "sk": {"N": "2"}},
           ReturnValues="ALL_OLD", ReturnConsumedCapacity="INDEXES")
    record("get with blobs", client.get_item, TableName="t", Key={"pk": {"S": "a"}, "sk": {"N": "1"}})
    record("get", client.get_item, TableName="t", Key={"pk": {"S": "a"}, "sk": {"N": "2"}}, ConsistentRead=True)
    record("get missing", client.get_item, TableName="t", Key={"pk": {"S": "b"}, "sk": {"N": "1"}})
    record("get projected", client.get_item, TableName="t", Key={"pk": {"S": "a"}, "sk": {"N": "3"}},
           ProjectionExpression="#n, list[2].deep", ExpressionAttributeNames={"#n": "name"})
    record("batch get", client.batch_get_item, RequestItems={"t": {
        "Keys": [{"pk": {"S": "a"}, "sk": {"N": str(i)}} for i in (2, 3, 9)],
        "ProjectionExpression": "pk, sk, tags, nums"}}, ReturnConsumedCapacity="TOTAL")
    record("query page 1", client.query, TableName="t", KeyConditionExpression="pk = :p",
           ExpressionAttributeValues={":p": {"S": "a"}, ":s": {"N": "1"}}, FilterExpression="sk > :s", Limit=2)
    record("query index", client.query, TableName="t", IndexName="by_name", KeyConditionExpression="#n = :n",
           ExpressionAttributeNames={"#n": "name"}, ExpressionAttributeValues={":n": {"S": "Ada é"}},
           ReturnConsumedCapacity="INDEXES")
    record("query count", client.query, TableName="t", KeyConditionExpression="pk = :p",
           ExpressionAttributeValues={":p": {"S": "a"}}, Select="COUNT")
    record("scan", client.scan, TableName="t", Limit=3)
    record("update new", client.update_item, TableName="t", Key={"pk": {"S": "a"}, "sk": {"N": "2"}},
           UpdateExpression="ADD n :one SET #e = :e", ExpressionAttributeNames={"#e": "extra"},
           ExpressionAttributeValues={":one": {"N": "1"}, ":e": {"M": {"k": {"S": "v"}}}}, ReturnValues="ALL_NEW")
    record("update old", client.update_item, TableName="t", Key={"pk": {"S": "a"}, "sk": {"N": "2"}},
           UpdateExpression="REMOVE extra", ReturnValues="UPDATED_OLD")
    record("update none", client.update_item, TableName="t", Key={"pk": {"S": "a"}, "sk": {"N": "3"}},
           UpdateExpression="SET n = :n", ExpressionAttributeValues={":n": {"N": "7"}})
    record("update refused", client.update_item, TableName="t", Key={"pk": {"S": "a"}, "sk": {"N": "3"}},
           UpdateExpression="SET n = :n", ConditionExpression="n = :other",
           ExpressionAttributeValues={":n": {"N": "8"}, ":other": {"N": "0"}},
           ReturnValuesOnConditionCheckFailure="ALL_OLD")
    record("transact get", client.transact_get_items, TransactItems=[
        {"Get": {"TableName": "t", "Key": {"pk": {"S": "a"}, "sk": {"N": str(i)}}}} for i in (3, 8)])
    record("delete", client.delete_item, TableName="t", Key={"pk": {"S": "a"}, "sk": {"N": "4"}},
           ReturnValues="ALL_OLD")
    record("delete blobs", client.delete_item, TableName="t", Key={"pk": {"S": "a"}, "sk": {"N": "1"}},
           ReturnValues="ALL_OLD")
    return out


def run(fast: bool):
    if fast:
        dynamodb_json.install()
    else:
        dynamodb_json.uninstall()
    try:
        with mock_aws():
            return calls(boto3.client("dynamodb", region_name="us-east-1"))
    finally:
        dynamodb_json.install()


def test_item_responses_are_the_same_on_the_fast_path_and_moto_s_serializer():
    reference, fast = run(fast=False), run(fast=True)

    assert [label for label, *_ in fast] == [label for label, *_ in reference]
    for got, expected in zip(fast, reference, strict=True):
        assert got == expected, got[0]
    assert any(label == "get with blobs" and r["Item"]["blob"] == {"B": ITEM["blob"]["B"]}
               for label, r, *_ in fast)


def test_the_fast_path_is_taken_for_item_operations_and_not_for_binary_values(monkeypatch):
    taken = []
    original = dynamodb_json.ActionResult.execute_result
    monkeypatch.setattr(dynamodb_json.ActionResult, "execute_result",
                        lambda self, context: taken.append(context.operation_model.name) or original(self, context))
    dynamodb_json.install()
    with mock_aws():
        calls(boto3.client("dynamodb", region_name="us-east-1"))

    # moto's path: the table's creation and the three responses that carry binary values, nothing else
    assert sorted(taken) == ["CreateTable", "DeleteItem", "GetItem", "Scan"]


@pytest.fixture(autouse=True)
def _installed():
    yield
    dynamodb_json.install()
