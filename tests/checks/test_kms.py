"""Every publisher of an encrypted SNS topic may use the topic's key, or what it publishes is dropped.

A topic with KmsMasterKeyId encrypts each message with a data key of that KMS key, generated for the publisher:
an AWS service that publishes (CloudWatch alarm actions, SES event destinations, EventBridge targets) needs
kms:GenerateDataKey* and kms:Decrypt in the key's own policy, which the AWS-managed key alias/aws/sns does not
grant and cannot be changed to grant; a function or state machine needs them in its role's policy, which only
counts when the key policy lets the account's IAM policies grant them (the account root statement).
https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html

Static: the key policy is read from the template and evaluated here (Allow statements, Service and AWS principals,
action wildcards, and the condition operators StringEquals, StringLike, ArnEquals and ArnLike on the request's
aws:SourceAccount and aws:SourceArn; a statement with any other condition grants nothing). The local engine stores
the key policy in moto without enforcing it. Role policies are test_iam.py's (with_encryption_needs).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import pytest

from sesflow.engine.template import ACCOUNT_ID, PARTITION, Resource, Template, load_template
from tests.checks.test_iam import (
    ROOT,
    TOPIC_KEY_ACTIONS,
    function_needs,
    state_machine_needs,
    template,
    template_key,
    topic_key_id,
)

SERVICE_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")  # what SNS asks KMS for on a service's behalf


@dataclass(frozen=True)
class Publisher:
    """A resource that publishes to a topic, as the principal and request context KMS sees."""

    logical_id: str
    service: str | None  # a service principal (cloudwatch.amazonaws.com), or None for a role of this stack
    context: tuple[tuple[str, str], ...] = ()  # aws:SourceArn, aws:SourceAccount


def _arn(service: str, region: str, resource: str) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{ACCOUNT_ID}:{resource}"


def _source(arn: str) -> tuple[tuple[str, str], ...]:
    return (("aws:SourceArn", arn), ("aws:SourceAccount", ACCOUNT_ID))


def publishers(t: Template, topic: Resource) -> list[Publisher]:
    arn = topic.physical_id
    found: list[Publisher] = []
    for alarm in t.of_type("AWS::CloudWatch::Alarm"):
        actions = [a for key in ("AlarmActions", "OKActions", "InsufficientDataActions")
                   for a in alarm.properties.get(key) or []]
        if arn in actions:
            found.append(Publisher(alarm.logical_id, "cloudwatch.amazonaws.com", _source(alarm.attributes["Arn"])))
    for destination in t.of_type("AWS::SES::ConfigurationSetEventDestination"):
        spec = destination.properties["EventDestination"]
        if (spec.get("SnsDestination") or {}).get("TopicARN") == arn:
            name = destination.properties["ConfigurationSetName"]
            found.append(Publisher(destination.logical_id, "ses.amazonaws.com",
                                   _source(_arn("ses", t.region, f"configuration-set/{name}"))))
    for rule in t.of_type("AWS::Events::Rule"):
        if any(target.get("Arn") == arn for target in rule.properties.get("Targets") or []):
            # EventBridge's KMS request carries no aws:SourceArn: a key policy cannot scope it that way.
            found.append(Publisher(rule.logical_id, "events.amazonaws.com"))
    machines = [m for m in t.of_type("AWS::Serverless::StateMachine") if "DefinitionUri" in m.properties]
    for resource, needs in [(f, function_needs(f, t)) for f in t.of_type("AWS::Serverless::Function")] + [
            (m, state_machine_needs(m, t)[0]) for m in machines]:
        if any(n.action.lower() == "sns:publish" and n.resource == arn for n in needs):
            found.append(Publisher(resource.logical_id, None))
    return found


# ------------------------------------------------------------------------------ key policy evaluation


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


OPERATORS = {
    "StringEquals": lambda pattern, value: pattern == value,
    "ArnEquals": lambda pattern, value: pattern == value,
    "StringLike": _glob,
    "ArnLike": _glob,
}


def _conditions_hold(conditions: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, tests in conditions.items():
        if operator not in OPERATORS:
            return False  # not modelled: grants nothing here
        for key, patterns in tests.items():
            value = context.get(key)
            if value is None or not any(OPERATORS[operator](str(p), value) for p in _list(patterns)):
                return False
    return True


def _principal_matches(principal: Any, service: str | None, account_root: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    if service is not None:
        return service in _list(principal.get("Service", []))
    return any(p in (account_root, ACCOUNT_ID) for p in _list(principal.get("AWS", [])))


def key_policy_allows(policy: dict[str, Any], action: str, publisher: Publisher) -> bool:
    """Whether the key policy lets this publisher's principal ask for `action` (a matching Deny wins)."""
    root = f"arn:{PARTITION}:iam::{ACCOUNT_ID}:root"
    context = dict(publisher.context)

    def matches(statement: dict[str, Any]) -> bool:
        return (_principal_matches(statement.get("Principal"), publisher.service, root)
                and any(_glob(a, action, ignore_case=True) for a in _list(statement.get("Action", [])))
                and "*" in _list(statement.get("Resource", []))
                and _conditions_hold(statement.get("Condition") or {}, context))

    statements = _list(policy.get("Statement", []))
    allowed = any(s.get("Effect") == "Allow" and matches(s) for s in statements)
    return allowed and not any(s.get("Effect") == "Deny" and matches(s) for s in statements)


def problems(t: Template) -> list[str]:
    found = []
    for topic in t.of_type("AWS::SNS::Topic"):
        key_id = topic_key_id(t, topic.physical_id)
        if key_id is None:
            continue
        key = template_key(t, key_id)
        for publisher in publishers(t, topic):
            who = publisher.service or f"{publisher.logical_id}'s role"
            if key is None:
                if publisher.service is not None:
                    found.append(f"{topic.logical_id} is encrypted with {key_id}, a key whose policy this stack does "
                                 f"not write: {publisher.logical_id} publishes to it as {who}, which that policy "
                                 f"must allow to use the key (alias/aws/sns never does)")
                continue
            policy = key.properties.get("KeyPolicy") or {}
            # A role's own policy grants the key's use (test_iam.py) only where the key policy enables IAM policies.
            actions = SERVICE_KEY_ACTIONS if publisher.service else TOPIC_KEY_ACTIONS
            refused = [a for a in actions if not key_policy_allows(policy, a, publisher)]
            if refused:
                found.append(f"{topic.logical_id}: {key.logical_id}'s key policy does not allow {who} "
                             f"({publisher.logical_id}, context {dict(publisher.context)}) {', '.join(refused)}")
    return found


# ------------------------------------------------------------------------------ the template


@pytest.mark.parametrize("route", ["sns", "eventbridge"])
def test_every_publisher_of_an_encrypted_topic_may_use_its_key(route: str) -> None:
    t = load_template(ROOT / "template.yaml", parameter_overrides={"FeedbackRoute": route})
    found = problems(t)
    assert not found, "\n".join(found)


def test_alert_topic_and_feedback_topic_are_encrypted_with_a_key_of_the_stack_that_rotates() -> None:
    t = template()
    for name in ("AlertTopic", "FeedbackTopic"):
        key = template_key(t, topic_key_id(t, t.resources[name].physical_id))
        assert key is not None, f"{name} is not encrypted with a key of this template"
        assert key.properties.get("EnableKeyRotation") is True, f"{key.logical_id} does not rotate"


def test_every_alarm_and_configuration_set_is_counted_as_a_publisher() -> None:
    t = template()
    alert = publishers(t, t.resources["AlertTopic"])
    assert {p.logical_id for p in alert if p.service} == {a.logical_id for a in t.of_type("AWS::CloudWatch::Alarm")}
    assert {p.logical_id for p in alert if not p.service} == {"SendBatchFunction", "IngestFeedbackFunction"}
    feedback = publishers(t, t.resources["FeedbackTopic"])
    assert {p.logical_id for p in feedback} == {"SnsEventDestination", "ProbationSnsEventDestination"}


# ------------------------------------------------------------------------------ the checker itself


def _with(t: Template, change: Any) -> Template:
    copied = copy.deepcopy(t)
    change(copied)
    return copied


def test_checker_reports_the_alarms_when_the_alert_topic_uses_the_aws_managed_key() -> None:
    def aws_managed(t: Template) -> None:
        t.resources["AlertTopic"].properties["KmsMasterKeyId"] = "alias/aws/sns"

    found = "\n".join(problems(_with(template(), aws_managed)))
    assert "AlertTopic is encrypted with alias/aws/sns" in found and "BounceRateHaltAlarm" in found, found
    assert "SendBatchFunction" not in found, "a function may use the AWS-managed key through its role"


def test_checker_reports_an_alarm_whose_arn_the_key_policy_does_not_name() -> None:
    def renamed(t: Template) -> None:
        alarm = t.resources["BounceRateHaltAlarm"]
        alarm.attributes["Arn"] = _arn("cloudwatch", t.region, "alarm:another-stack-bounce-rate-halt")

    found = "\n".join(problems(_with(template(), renamed)))
    assert "does not allow cloudwatch.amazonaws.com (BounceRateHaltAlarm" in found, found
    assert "BounceRateWarnAlarm" not in found


def test_checker_reports_ses_when_the_key_policy_leaves_it_out() -> None:
    def without_ses(t: Template) -> None:
        policy = t.resources["TopicKey"].properties["KeyPolicy"]
        policy["Statement"] = [s for s in policy["Statement"]
                               if "ses.amazonaws.com" not in _list((s.get("Principal") or {}).get("Service", []))]

    found = "\n".join(problems(_with(template(), without_ses)))
    assert "does not allow ses.amazonaws.com (SnsEventDestination" in found, found


def test_checker_reports_the_functions_when_the_key_policy_does_not_enable_iam_policies() -> None:
    def without_root(t: Template) -> None:
        policy = t.resources["TopicKey"].properties["KeyPolicy"]
        policy["Statement"] = [s for s in policy["Statement"] if "AWS" not in (s.get("Principal") or {})]

    found = "\n".join(problems(_with(template(), without_root)))
    assert "does not allow SendBatchFunction's role" in found, found
