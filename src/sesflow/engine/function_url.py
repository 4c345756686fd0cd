"""Lambda function URLs on the engine: an HTTP request as Lambda hands it to the function (payload format 2.0),
and the function's answer as the caller of the URL receives it.

    response = stack.request(stack.outputs["UnsubscribeUrl"] + "?c=...", method="POST", body="...")
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

# Request bodies Lambda passes as text; anything else arrives base64-encoded (isBase64Encoded).
_TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "application/xml")


def base(url: str) -> str:
    """The URL's scheme and host: what identifies one function URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def request_event(url: str, method: str = "GET", body: str | bytes | None = None,
                  headers: dict[str, str] | None = None, source_ip: str = "198.51.100.7") -> dict[str, Any]:
    """The event a function behind a function URL receives for this request (payload format 2.0)."""
    parts = urlsplit(url)
    host = parts.netloc
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    lowered.setdefault("host", host)
    lowered.setdefault("user-agent", "sesflow-engine")
    if body is not None and "content-type" not in lowered and method.upper() == "POST":
        lowered["content-type"] = "application/x-www-form-urlencoded"
    parameters: dict[str, list[str]] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        parameters.setdefault(name, []).append(value)
    text = lowered.get("content-type", "").startswith(_TEXT_TYPES)
    encoded = isinstance(body, bytes) and not text
    if body is None:
        payload = None
    elif isinstance(body, bytes):
        payload = base64.b64encode(body).decode() if encoded else body.decode()
    else:
        payload = body
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path or "/",
        "rawQueryString": parts.query,
        "headers": lowered,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": host.split(".", 1)[0],
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0],
            "http": {"method": method.upper(), "path": parts.path or "/", "protocol": "HTTP/1.1",
                     "sourceIp": source_ip, "userAgent": lowered["user-agent"]},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if parameters:  # Lambda joins a repeated parameter's values with commas
        event["queryStringParameters"] = {k: ",".join(v) for k, v in parameters.items()}
    if payload is not None:
        event["body"] = payload
    return event


def http_response(payload: str, errored: bool) -> dict[str, Any]:
    """What the URL's caller gets: the function's statusCode/headers/body, or Lambda's 502 when it failed.

    A result that is not a {"statusCode": ...} object is sent as a 200 JSON body, as Lambda infers it."""
    if errored:
        return {"statusCode": 502, "headers": {"content-type": "application/json"},
                "body": json.dumps({"Message": "Internal Server Error"})}
    result = json.loads(payload) if payload else None
    if not isinstance(result, dict) or "statusCode" not in result:
        return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(result)}
    body = result.get("body") or ""
    if result.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    return {"statusCode": int(result["statusCode"]),
            "headers": {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}, "body": body}

