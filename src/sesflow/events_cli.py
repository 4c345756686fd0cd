"""`sesflow events replay FILE... [--dry-run]`: send SES feedback into the stack's real ingestion path.

Each message goes to the stack's FeedbackQueue (output FeedbackQueueUrl), where IngestFeedbackFunction takes it
as it takes SES's own (on the local engine, the server's queue pump delivers it): duplicates are absorbed by
event identity exactly as in production, and what the parser cannot use goes to the DLQ with its reason.

A FILE is what `events parse` takes (see split): a queue message body (SES event JSON, an SNS or EventBridge
envelope), a Lambda SQS or SNS event (record by record: an SNS record is sent as the notification SNS would have
put on the queue), JSON Lines, or JSON documents back to back (Firehose's SES records in S3). --dry-run parses
every message with the ingest function's own parser and sends nothing. On the local engine the command waits for
the pump to drain the queue, then says how many went to the DLQ and why; on a deployed stack it says how many it
sent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from sesflow.errors import InputError, report
from sesflow.files import read_text
from sesflow.target import Target, TargetError, add_target_options, target_of


def split(text: str) -> list[tuple[str, Any]]:
    """(label, message) for each message a file's text holds, label "" when the file is one message:
    - a Lambda event ({"Records": [...]}): each record ("Records[i]"), an SQS record or an SNS record (a topic
      invoking a function directly), given whole to the parser;
    - JSON Lines, one message a line ("line N"); ValueError("line N: not JSON ...") for a broken line;
    - JSON documents one after another with no separator, as Firehose writes SES's records to S3 ("record N");
    - anything else is one message: SES JSON, an SNS or EventBridge envelope, or text (SES's topic validation, or
      something broken, which the parser names).
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        pass
    else:
        if isinstance(document, dict) and isinstance(document.get("Records"), list):
            return [(f"Records[{i}]", record) for i, record in enumerate(document["Records"])]
        return [("", text)]
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if len(lines) >= 2 and _is_json(lines[0][1]):  # JSON Lines
        for number, line in lines:
            try:
                json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"line {number}: not JSON ({error.msg} at column {error.colno})") from None
        return [(f"line {number}", line) for number, line in lines]
    return _concatenated(text) or [("", text)]


def _concatenated(text: str) -> list[tuple[str, str]] | None:
    """JSON documents back to back ({...}{...}), or None when the text is not that."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return [(f"record {i}", doc) for i, doc in enumerate(found, start=1)] if len(found) >= 2 else None
        try:
            _, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            return None
        found.append(text[at:end])
        at = end


def queue_body(message: Any) -> str:
    """What the feedback queue gets for a message: an SQS record's body; an SNS record's notification, as SNS
    delivers it to a queue; any other message as it is (JSON text) or as JSON."""
    if isinstance(message, str):
        return message
    if isinstance(message, dict) and isinstance(message.get("body"), str):
        return message["body"]
    if isinstance(message, dict) and message.get("EventSource") == "aws:sns" and isinstance(message.get("Sns"), dict):
        return json.dumps(message["Sns"])
    return json.dumps(message)


def messages(path: str) -> list[tuple[str, str]]:
    """(where, queue body) for every message in the file; InputError naming the file and line when it is not
    usable (replay sends JSON only: text the parser would refuse is refused here, before anything is sent)."""
    text = read_text(path)
    if not text.strip():
        raise InputError(f"{path}: empty: it needs SES feedback (a message body, a Lambda event, JSON Lines)")
    try:
        found = split(text)
    except ValueError as error:
        raise InputError(f"{path}: {error}") from None
    if found == [("", text)]:
        try:
            json.loads(text)
        except json.JSONDecodeError as whole:
            raise InputError(f"{path}: not JSON ({whole.msg} at line {whole.lineno}, column {whole.colno})") from None
    return [(f"{path}: {label}" if label else path, queue_body(message)) for label, message in found]


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def check(found: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(where, why) for each message the ingest function's parser would send to the DLQ."""
    from app.domain.feedback import parse_feedback
    from app.errors import FeedbackParseError

    refused = []
    for where, body in found:
        try:
            parse_feedback(body, envelope_hint="sqs")
        except FeedbackParseError as error:
            refused.append((where, str(error)))
    return refused


def send(target: Target, found: list[tuple[str, str]]) -> dict[str, str]:
    """Send every body to the feedback queue, 10 per call; returns SQS message id -> where."""
    sqs, url = target.client("sqs"), target.output("FeedbackQueueUrl")
    sent: dict[str, str] = {}
    for start in range(0, len(found), 10):
        chunk = found[start : start + 10]
        response = sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": body} for i, (_, body) in enumerate(chunk)])
        if response.get("Failed"):
            first = response["Failed"][0]
            raise ValueError(f"{chunk[int(first['Id'])][0]}: the feedback queue refused it ({first.get('Message')})")
        sent |= {ok["MessageId"]: chunk[int(ok["Id"])][0] for ok in response["Successful"]}
    return sent


def drained(target: Target, timeout: float = 60) -> bool:
    """Wait until the engine's pump has taken everything off the feedback queue."""
    sqs, url = target.client("sqs"), target.output("FeedbackQueueUrl")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        if not any(int(n) for n in counts.values()):
            return True
        time.sleep(0.2)
    return False


def dead_lettered(target: Target, sent: dict[str, str]) -> list[tuple[str, str]]:
    """(where, reason) of the sent messages that IngestFeedback put on the DLQ; left there, visible, for redrive."""
    sqs, url = target.client("sqs"), target.output("FeedbackDeadLetterQueueUrl")
    found: dict[str, str] = {}
    for _ in range(max(3, len(sent) // 5)):
        page = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                   MessageAttributeNames=["All"]).get("Messages", [])
        if not page:
            break
        for message in page:
            attributes = message.get("MessageAttributes", {})
            source = attributes.get("source_message_id", {}).get("StringValue")
            if source in sent:
                found[source] = attributes.get("reason", {}).get("StringValue", "(no reason)")
    return [(sent[m], reason) for m, reason in found.items()]


def replay(args: argparse.Namespace, settle: Callable[[Target], bool] | None = None) -> int:
    try:
        found = [m for name in args.files for m in messages(name)]
        if args.dry_run:
            refused = check(found)
            for where, why in refused:
                print(f"{where}: would go to the DLQ: {why}", file=sys.stderr)
            print(f"dry run: {len(found)} messages, {len(found) - len(refused)} usable, {len(refused)} would go "
                  f"to the DLQ; nothing sent")
            return 1 if refused else 0
        target = target_of(args)
        sent = send(target, found)
        print(f"sent {len(sent)} messages to {target.output('FeedbackQueueUrl').rsplit('/', 1)[-1]} ({target.name})")
        settle = settle or (drained if target.is_local else None)
        if settle is None:
            print("IngestFeedbackFunction takes them from there; its DLQ holds any it cannot use")
            return 0
        if not settle(target):
            print("sesflow: the engine's queue pump has not drained the feedback queue yet; "
                  "look again with `sesflow campaign status` or the DLQ", file=sys.stderr)
            return 1
        failed = dead_lettered(target, sent)
    except (TargetError, ValueError) as error:
        return report(error)
    for where, reason in failed:
        print(f"{where}: dead-lettered: {reason}", file=sys.stderr)
    print(f"ingested {len(sent) - len(failed)} (applied, or absorbed as duplicates), {len(failed)} to the DLQ")
    return 1 if failed else 0


def register(events: Any) -> None:
    """Add `events replay` to the `events` subcommands."""
    action = events.add_parser("replay", help="send feedback files into the stack's feedback queue, as SES would")
    action.add_argument("files", nargs="+", metavar="FILE",
                        help="a queue message body (SES event, SNS, EventBridge), a Lambda SQS event, or JSON Lines")
    action.add_argument("--dry-run", action="store_true", help="parse every message, send nothing")
    add_target_options(action)
    action.set_defaults(func=replay)
