"""DynamoDB writes on the engine. patches/dynamodb.py backs up the items a transaction names, not whole tables
(all of it applies, or none of it), and copies a parsed update expression node by node, not with deepcopy."""

import copy

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.parsing import validators
from moto.dynamodb.parsing.ast_nodes import Node
from moto.dynamodb.parsing.expressions import UpdateExpressionParser

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


UPDATES = [
    ("SET n = if_not_exists(n, :zero) + :one, #m = if_not_exists(#m, :empty) REMOVE gone ADD tags :tags, c :one",
     {":zero": {"N": "0"}, ":one": {"N": "1"}, ":empty": {"M": {}}, ":tags": {"SS": ["x", "y"]}}),
    ("SET l = list_append(if_not_exists(l, :none), :more), #m.k = :v",
     {":none": {"L": []}, ":more": {"L": [{"S": "z"}]}, ":v": {"S": "v"}}),
    ("ADD c :one DELETE tags :tags", {":one": {"N": "1"}, ":tags": {"SS": ["x"]}}),
    ("SET missing.k = :v", {":v": {"S": "v"}}),  # refused: the path's map does not exist
]


def shape(node):
    """A parsed tree as plain data, parent links included (each node names its parent's type)."""
    if not isinstance(node, Node):
        return node
    children = [shape(c) for c in node.children] if isinstance(node.children, list) else node.children
    return (node.type, node.parent.type if node.parent else None, children)


@pytest.mark.parametrize("expression", [u for u, _ in UPDATES])
def test_a_parsed_update_expression_is_copied_to_the_same_tree_sharing_no_node(expression):
    dynamodb.install()
    tree = UpdateExpressionParser.make(expression)

    copied = validators.deepcopy(tree)

    assert validators.deepcopy is not copy.deepcopy  # the patch is what ran
    assert shape(copied) == shape(tree) == shape(copy.deepcopy(tree))
    originals, copies = [], []
    for root, into in ((tree, originals), (copied, copies)):
        stack = [root]
        while stack:
            node = stack.pop()
            into.append(id(node))
            stack.extend(c for c in node.children or [] if isinstance(c, Node))
    assert not set(originals) & set(copies)


def test_update_item_gives_the_same_items_with_the_node_copy_as_with_deepcopy(ddb, monkeypatch):
    def run(client, table):
        client.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        for key in ("new", "new"):  # first on an item that does not exist (its tree is validated twice), then again
            for expression, values in UPDATES:
                try:
                    client.update_item(TableName=table, Key={"pk": {"S": key}}, UpdateExpression=expression,
                                       ExpressionAttributeNames={"#m": "m"} if "#m" in expression else {},
                                       ExpressionAttributeValues=values)
                except ClientError as error:
                    yield expression, error.response["Error"]["Code"]
        yield "items", client.scan(TableName=table)["Items"]

    patched = list(run(ddb, "patched"))
    monkeypatch.setattr(validators, "deepcopy", copy.deepcopy)
    plain = list(run(ddb, "plain"))

    assert patched == plain
    assert patched[:-1] == [("SET missing.k = :v", "ValidationException")] * 2
    (item,) = patched[-1][1]
    assert item["c"] == {"N": "4"} and item["n"] == {"N": "2"} and item["tags"] == {"SS": ["y"]}
    assert item["m"] == {"M": {"k": {"S": "v"}}} and item["l"] == {"L": [{"S": "z"}] * 2}
