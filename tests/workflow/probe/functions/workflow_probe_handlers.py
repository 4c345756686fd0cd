"""Handlers of the probe stack (tests only)."""

import json
import os

import boto3


def write_manifest(event, context):
    count = int(event["count"])
    key = f"probe/{context.aws_request_id}.json"
    boto3.client("s3").put_object(Bucket=os.environ["BUCKET"], Key=key, Body=json.dumps(list(range(1, count + 1))))
    return {"key": key, "count": count}


def square(event, context):
    return event * event
