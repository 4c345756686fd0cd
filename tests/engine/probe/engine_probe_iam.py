"""A handler that makes the AWS call its event names, for the engine's IAM tests (never part of the product)."""

import boto3
from botocore.exceptions import ClientError


def call(event, context):
    """{"service", "operation", "params"} -> the call's outcome: "ok", or the error as botocore raised it."""
    client = boto3.client(event["service"])
    try:
        getattr(client, event["operation"])(**event.get("params", {}))
    except ClientError as error:
        return {"class": type(error).__name__, "code": error.response["Error"]["Code"],
                "status": error.response["ResponseMetadata"]["HTTPStatusCode"],
                "message": error.response["Error"]["Message"]}
    return "ok"
