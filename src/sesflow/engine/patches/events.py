"""EventBridge delivery as AWS does it, where moto 5.2.5 differs (checked by tests/engine/test_feedback_routes.py).

moto matches a rule's pattern and calls `Rule.send_to_targets` for every rule of the bus. Fixed here:
- A DISABLED rule still delivered: now only ENABLED rules (and ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS).
- Arrays of objects in the event were not looked into, so a pattern on detail.bounce.bouncedRecipients
  .emailAddress never matched: the event is now flattened as EventBridge does, every value reachable
  through arrays counting (moto's filter operators are kept).
- An SQS target got moto's default input template: no "account", and the event's own text run through
  placeholder substitution (a subject containing "<id>" came out as the event id). It now gets the
  event exactly (version, id, detail-type, source, account, time, region, resources, detail), or the
  target's Input, InputPath or InputTransformer output.
Other target types are left to moto.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from moto.core.utils import iso_8601_datetime_without_milliseconds, utcfromtimestamp
from moto.events.models import EventPattern, Rule
from moto.utilities.arns import parse_arn

from sesflow.engine.patches import MotoDriftError

_ENABLED = {"ENABLED", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"}
_ENVELOPE = ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_original_send = Rule.__dict__.get("send_to_targets")


def _flatten(event: Any, prefix: str = "", out: dict[str, list[Any]] | None = None) -> dict[str, list[Any]]:
    """path -> every leaf value at that path, arrays (of objects too) expanded, as EventBridge matches."""
    out = {} if out is None else out
    if isinstance(event, dict) and event:
        for key, value in event.items():
            _flatten(value, f"{prefix}.{key}" if prefix else key, out)
    elif isinstance(event, list):
        for value in event:
            _flatten(value, prefix, out)
    elif prefix:
        out.setdefault(prefix, []).append(event)
    return out


def _flatten_dict(node: Any, prefix: str = "", result: dict[str, Any] | None = None) -> dict[str, Any]:
    flat = _flatten(node, prefix)
    if result is not None:
        result.update(flat)
        return result
    return flat


def _envelope(event: dict[str, Any]) -> dict[str, Any]:
    envelope = {key: copy.deepcopy(event.get(key)) for key in _ENVELOPE}
    when = envelope["time"]
    if isinstance(when, int | float) or (isinstance(when, str) and when.replace(".", "", 1).isdigit()):
        envelope["time"] = iso_8601_datetime_without_milliseconds(utcfromtimestamp(float(when)))
    return envelope


def _json_path(document: Any, path: str) -> tuple[bool, Any]:
    from jsonpath_ng.ext import parse  # moto's own dependency for InputTransformer

    found = parse(path).find(document)
    return (True, found[0].value) if found else (False, None)


def _transform(transformer: dict[str, Any], event: dict[str, Any], rule: Rule) -> str:
    """InputTransformer: a placeholder inside a JSON string gets the value's text, elsewhere its JSON."""
    values: dict[str, tuple[bool, Any]] = {
        name: _json_path(event, path) for name, path in (transformer.get("InputPathsMap") or {}).items()
    }
    values |= {
        "aws.events.rule-arn": (True, rule.arn),
        "aws.events.rule-name": (True, rule.name),
        "aws.events.event": (True, event),
        "aws.events.event.json": (True, event),
    }
    template, out, in_string, i = transformer["InputTemplate"], [], False, 0
    while i < len(template):
        char = template[i]
        match = _PLACEHOLDER.match(template, i) if char == "<" else None
        if match and match.group(1) in values:
            found, value = values[match.group(1)]
            if in_string:
                text = value if isinstance(value, str) else json.dumps(value) if found else ""
                out.append(json.dumps(text)[1:-1])
            else:
                out.append(json.dumps(value) if found else "null")
            i = match.end()
            continue
        if char == "\\" and in_string:
            out.append(template[i : i + 2])
            i += 2
            continue
        if char == '"':
            in_string = not in_string
        out.append(char)
        i += 1
    return "".join(out)


def _target_input(target: dict[str, Any], event: dict[str, Any], rule: Rule) -> str:
    if "Input" in target:
        return target["Input"]
    if "InputPath" in target:
        found, value = _json_path(event, target["InputPath"])
        return json.dumps(value if found else None)
    if "InputTransformer" in target:
        return _transform(target["InputTransformer"], event, rule)
    return json.dumps(event)


def _send_to_sqs(target: dict[str, Any], body: str) -> None:
    import warnings

    from moto.sqs import sqs_backends

    arn = parse_arn(target["Arn"])
    backend = sqs_backends[arn.account][arn.region]
    group_id = (target.get("SqsParameters") or {}).get("MessageGroupId")
    if group_id:
        attributes = backend.get_queue_attributes(arn.resource_id, ["ContentBasedDeduplication"])
        if attributes["ContentBasedDeduplication"] == "false":
            warnings.warn("EventBridge cannot send to a FIFO queue without content-based deduplication",
                          stacklevel=2)
            return
    backend.send_message(queue_name=arn.resource_id, message_body=body, group_id=group_id)


def send_to_targets(self: Rule, original_event: dict[str, Any], transform_input: bool = True) -> None:
    if self.state not in _ENABLED or not self.event_pattern.matches_event(original_event):
        return
    others = []
    event = _envelope(original_event)
    for target in self.targets:
        if parse_arn(target["Arn"]).service != "sqs":
            others.append(target)
            continue
        _send_to_sqs(target, _target_input(target, event, self) if transform_input else json.dumps(event))
    if others:
        rest = copy.copy(self)
        rest.targets = others
        _original_send(rest, original_event, transform_input)


def install() -> None:
    """Check moto still looks as the patch expects, then (re)attach. Safe to call again."""
    if _original_send is None or not isinstance(EventPattern.__dict__.get("_flatten_dict"), staticmethod):
        raise MotoDriftError("moto.events.models.Rule.send_to_targets / EventPattern._flatten_dict: not as expected")
    if "state" not in Rule.__init__.__code__.co_varnames:
        raise MotoDriftError("moto.events.models.Rule: no longer has a state")
    Rule.send_to_targets = send_to_targets
    EventPattern._flatten_dict = staticmethod(_flatten_dict)
