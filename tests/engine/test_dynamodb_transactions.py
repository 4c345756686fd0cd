"""TransactWriteItems on the engine (patches/dynamodb.py backs up the items a transaction names, not whole
tables): all of it applies, or none of it."""

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from sesflow.engine.patches import dynamodb


@pytest.fixture
def ddb():
    dynamodb.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        for name, keys in (("simple", [("pk", "HASH")]), ("ranged", [("pk", "HASH"), ("sk", "RANGE")])):
            client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                                AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k, _ in keys],
                                KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in keys])
        client.put_item(TableName="simple", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
        client.put_item(TableName="ranged", Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1"}})
        yield client


def items(client):
    return {name: sorted(str(i) for i in client.scan(TableName=name)["Items"]) for name in ("simple", "ranged")}


def test_a_cancelled_transaction_leaves_every_item_it_named_as_it_was(ddb):
    before = items(ddb)
    tables = dict(dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables)

    with pytest.raises(ClientError) as raised:
        ddb.transact_write_items(TransactItems=[
            {"Update": {"TableName": "simple", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET n = :n",
                        "ExpressionAttributeValues": {":n": {"N": "2"}}}},
            {"Put": {"TableName": "ranged", "Item": {"pk": {"S": "a"}, "sk": {"S": "2"}}}},
            {"Delete": {"TableName": "ranged", "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}}}},
            {"Put": {"TableName": "simple", "Item": {"pk": {"S": "b"}}, "ConditionExpression": "attribute_exists(pk)"}},
        ])

    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert items(ddb) == before
    # restored item by item: the tables were never copied (moto alone swaps in a copy made before the call)
    assert all(dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[n] is t for n, t in tables.items())


def test_a_transaction_whose_conditions_hold_applies_all_of_it(ddb):
    ddb.transact_write_items(TransactItems=[
        {"Update": {"TableName": "simple", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET n = :n",
                    "ConditionExpression": "n = :one",
                    "ExpressionAttributeValues": {":n": {"N": "2"}, ":one": {"N": "1"}}}},
        {"Put": {"TableName": "ranged", "Item": {"pk": {"S": "a"}, "sk": {"S": "2"}}}},
    ])

    assert ddb.get_item(TableName="simple", Key={"pk": {"S": "a"}})["Item"]["n"] == {"N": "2"}
    assert len(ddb.scan(TableName="ranged")["Items"]) == 2
