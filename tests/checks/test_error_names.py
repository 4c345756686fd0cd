"""Every ErrorEquals names an error Step Functions really reports for that Task, and the transient ones are retried.

A Retry on a name AWS never emits retries nothing, and no local run shows it: the engine reports the names moto
makes, which follow AWS's rules. Those rules (Step Functions developer guide, "Error handling" and "AWS SDK
integrations"):
- lambda:invoke Tasks: `Lambda.<exception>` of Lambda's API, plus Lambda.ClientExecutionTimeoutException,
  Lambda.SdkClientException, Lambda.AWSLambdaException and Lambda.Unknown, which Step Functions adds; a function's
  own error is its errorType (here: a class in functions/app/errors.py).
- Optimized DynamoDB Tasks (arn:aws:states:::dynamodb:*): `DynamoDB.<error code>` as the API returns it (a 500 is
  `DynamoDB.InternalServerError`), and DynamoDB.AmazonDynamoDBException for an error without a code.
- AWS SDK Tasks (arn:aws:states:::aws-sdk:dynamodb:*): `DynamoDb.<error code>`, with "Exception" appended when the
  code does not end in it (`DynamoDb.InternalServerErrorException`).
Error codes are read from botocore's service models, the same models the AWS SDKs are built from.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import botocore.session
import pytest

from tests.checks.asl_walk import iter_states
from tests.checks.test_drift import domain_errors

ROOT = Path(__file__).resolve().parents[2]
STATES_ERRORS = {
    "States.ALL", "States.Timeout", "States.HeartbeatTimeout", "States.TaskFailed", "States.Permissions",
    "States.DataLimitExceeded", "States.Runtime", "States.ExceedToleratedFailureThreshold",
    "States.ItemReaderFailed", "States.ResultWriterFailed", "States.BranchFailed", "States.NoChoiceMatched",
    "States.IntrinsicFailure", "States.QueryEvaluationError",
}
LAMBDA_EXTRAS = {"ClientExecutionTimeoutException", "SdkClientException", "AWSLambdaException", "Unknown"}
# What every Task of each kind must retry: throttling and the service's own transient failures.
MUST_RETRY = {
    "lambda": {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
               "Lambda.TooManyRequestsException", "Lambda.ClientExecutionTimeoutException", "Lambda.Unknown"},
    "dynamodb": {"DynamoDB.ProvisionedThroughputExceededException", "DynamoDB.ThrottlingException",
                 "DynamoDB.RequestLimitExceeded", "DynamoDB.InternalServerError",
                 "DynamoDB.AmazonDynamoDBException"},
    "aws-sdk:dynamodb": {"DynamoDb.ProvisionedThroughputExceededException", "DynamoDb.ThrottlingException",
                         "DynamoDb.RequestLimitExceededException", "DynamoDb.InternalServerErrorException"},
}


@cache
def error_codes(service: str) -> frozenset[str]:
    model = botocore.session.get_session().get_service_model(service)
    return frozenset(shape.name for shape in model.error_shapes)


def kind(resource: str) -> str | None:
    if resource.startswith("arn:aws:states:::lambda:invoke"):
        return "lambda"
    if resource.startswith("arn:aws:states:::dynamodb:"):
        return "dynamodb"
    if resource.startswith("arn:aws:states:::aws-sdk:dynamodb:"):
        return "aws-sdk:dynamodb"
    return None


def emitted(task_kind: str | None) -> set[str]:
    """The service error names a Task of this kind can report."""
    if task_kind == "lambda":
        return {f"Lambda.{code}" for code in error_codes("lambda") | LAMBDA_EXTRAS} | set(domain_errors())
    if task_kind == "dynamodb":
        return {f"DynamoDB.{code}" for code in error_codes("dynamodb")} | {"DynamoDB.AmazonDynamoDBException"}
    if task_kind == "aws-sdk:dynamodb":
        return {f"DynamoDb.{code}" if code.endswith("Exception") else f"DynamoDb.{code}Exception"
                for code in error_codes("dynamodb")}
    return set()


def tasks() -> list[tuple[str, str, dict]]:
    found = []
    for asl in sorted((ROOT / "statemachines").glob("*.asl.json")):
        for where, state in iter_states(json.loads(asl.read_text())["States"]):
            if state.get("Type") in ("Task", "Map"):
                found.append((asl.name, where, state))
    return found


@pytest.mark.parametrize(("asl", "where", "state"), tasks(), ids=[f"{a}:{w}" for a, w, _ in tasks()])
def test_error_equals_name_errors_the_task_can_report(asl: str, where: str, state: dict) -> None:
    names = emitted(kind(state.get("Resource", "")))
    if state["Type"] == "Map":
        names = set()  # a Map reports only States.* errors (its children's failures become a tolerance failure)
    for clause in ("Retry", "Catch"):
        for entry in state.get(clause, []):
            unknown = [n for n in entry["ErrorEquals"] if n not in STATES_ERRORS and n not in names]
            assert not unknown, f"{asl} {where} {clause}: no such error for this Task: {unknown}"


@pytest.mark.parametrize(("asl", "where", "state"), tasks(), ids=[f"{a}:{w}" for a, w, _ in tasks()])
def test_transient_service_errors_are_retried(asl: str, where: str, state: dict) -> None:
    required = MUST_RETRY.get(kind(state.get("Resource", "")) or "", set())
    retried = {n for entry in state.get("Retry", []) for n in entry["ErrorEquals"]}
    if "States.ALL" in retried or not required:
        return
    assert required <= retried, f"{asl} {where}: not retried: {sorted(required - retried)}"


def test_the_rules_know_the_error_codes_aws_documents():
    """Holds the botocore models to the codes the rules above rely on (a model without them would pass anything)."""
    assert {"InternalServerError", "RequestLimitExceeded", "ThrottlingException",
            "ConditionalCheckFailedException", "TransactionCanceledException"} <= error_codes("dynamodb")
    assert {"ServiceException", "TooManyRequestsException"} <= error_codes("lambda")
    assert "DynamoDB.InternalServerErrorException" not in emitted("dynamodb")
    assert "DynamoDb.InternalServerErrorException" in emitted("aws-sdk:dynamodb")
