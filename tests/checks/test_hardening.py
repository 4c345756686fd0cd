"""What template.yaml does to hold up on AWS beyond working: least privilege, data kept, ordering, undelivered events.

Static over the template as the engine resolves it (and as written, for DependsOn and the deletion policies).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import pytest

from sesflow.engine import iam
from sesflow.engine.template import Template, load_template
from tests.checks.test_iam import (
    ROOT,
    Need,
    missing,
    sam_policies,  # noqa: F401  (the fixture)
    template,
)

# Actions with no resource type in the Service Authorization Reference: a policy can only grant them on "*".
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html (SendTaskSuccess),
# list_amazoncloudwatchlogs.html (the log delivery APIs), list_amazonsimpleemailservicev2.html (GetAccount,
# ListSuppressedDestinations).
NO_RESOURCE_TYPE = {
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    "ses:GetAccount", "ses:ListSuppressedDestinations", "states:SendTaskSuccess",
}
# The tables that hold recipients and their history: lost with the stack, they cannot be rebuilt.
KEPT_TABLES = ("RecipientsTable", "MembershipsTable", "CampaignsTable", "EventsTable", "SendsTable")


@cache
def raw() -> dict[str, Any]:
    """The template as written (intrinsics unresolved)."""
    from cfnlint.decode import cfn_yaml

    return cfn_yaml.load(str(ROOT / "template.yaml"))


def with_route(route: str) -> Template:
    return load_template(ROOT / "template.yaml", parameter_overrides={"FeedbackRoute": route})


def depends_on(logical_id: str) -> set[str]:
    value = raw()["Resources"][logical_id].get("DependsOn") or []
    return set(value if isinstance(value, list) else [value])


def _actions(statement: Any) -> list[str]:
    return list(statement.actions)


# ------------------------------------------------------------------------------ least privilege


def wildcard_grants(t: Template, sam: dict[str, Any]) -> list[str]:
    found = []
    for resource in t.of_type("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
        for statement in iam.statements(resource.properties.get("Policies") or [], t)[0]:
            if statement.effect != "Allow" or "*" not in [str(r) for r in statement.resources]:
                continue
            scoped = [a for a in _actions(statement) if a not in NO_RESOURCE_TYPE]
            if scoped:
                found.append(f"{resource.logical_id}: {', '.join(scoped)} on \"*\" (the action has a resource type: "
                             f"name the resource)")
    return found


@pytest.mark.parametrize("route", ["sns", "eventbridge"])
def test_policies_grant_on_star_only_actions_without_a_resource_type(route: str, sam_policies: dict) -> None:  # noqa: F811
    found = wildcard_grants(with_route(route), sam_policies)
    assert not found, "\n".join(found)


def test_distributed_map_may_start_and_stop_only_its_own_state_machines_executions(sam_policies: dict) -> None:  # noqa: F811
    t = template()
    machine = t.resources["CampaignStateMachine"]
    granted = iam.statements(machine.properties["Policies"], t)[0]
    name, arn = machine.attributes["Name"], machine.attributes["Arn"]
    other = arn.replace(f":stateMachine:{name}", ":stateMachine:another")
    own_child = arn.replace(":stateMachine:", ":execution:") + "/Batches:0f1e"
    assert not missing([Need("states:StartExecution", arn, "its own children"),
                        Need("states:StopExecution", own_child, "its own children")], granted)
    assert missing([Need("states:StartExecution", other, "another state machine")], granted), (
        "CampaignStateMachine may start executions of a state machine that is not its own")


def test_snapshot_writes_only_its_manifest_prefix_without_acl_or_lifecycle_rights(sam_policies: dict) -> None:  # noqa: F811
    t = template()
    function = t.resources["SnapshotAudienceFunction"]
    granted = iam.statements(function.properties["Policies"], t)[0]
    bucket = t.resources["ManifestBucket"].attributes["Arn"]
    assert not missing([Need("s3:PutObject", f"{bucket}/campaigns/c-1/run/test.json", "a manifest")], granted)
    for need in (Need("s3:PutObject", f"{bucket}/elsewhere.json", "outside campaigns/"),
                 Need("s3:PutObjectAcl", f"{bucket}/campaigns/c-1/run/test.json", "an object's ACL"),
                 Need("s3:PutLifecycleConfiguration", bucket, "the bucket's lifecycle")):
        assert missing([need], granted), f"SnapshotAudienceFunction may {need}"


# ------------------------------------------------------------------------------ data kept


@pytest.mark.parametrize("table", KEPT_TABLES)
def test_table_is_kept_when_the_stack_is_deleted_or_the_table_replaced(table: str) -> None:
    body = raw()["Resources"][table]
    assert body.get("DeletionPolicy") == "Retain", f"{table}: deleting the stack deletes its data"
    assert body.get("UpdateReplacePolicy") == "Retain", f"{table}: a replacing update deletes its data"
    assert body["Properties"].get("DeletionProtectionEnabled") is True, f"{table}: can be deleted by a call"


def test_every_table_has_point_in_time_recovery() -> None:
    lacking = [t.logical_id for t in template().of_type("AWS::DynamoDB::Table")
               if not (t.properties.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled")]
    assert not lacking, f"no point-in-time recovery: {lacking}"


# ------------------------------------------------------------------------------ ordering


def _policy_of(t: Template, policy_type: str, key: str, target: str) -> list[str]:
    """The logical ids of the policies of this type whose Topics/Queues list the target."""
    return [p.logical_id for p in t.of_type(policy_type) if target in (p.properties.get(key) or [])]


def test_sns_event_destinations_wait_for_the_topic_policy_that_lets_ses_publish() -> None:
    t = with_route("sns")
    found = []
    for destination in t.of_type("AWS::SES::ConfigurationSetEventDestination"):
        topic = (destination.properties["EventDestination"].get("SnsDestination") or {}).get("TopicARN")
        if topic:
            policies = _policy_of(t, "AWS::SNS::TopicPolicy", "Topics", topic)
            assert policies, f"{topic}: no topic policy lets SES publish"
            if not set(policies) & depends_on(destination.logical_id):
                found.append(f"{destination.logical_id} does not DependsOn {policies}")
    assert not found, "; ".join(found)


def test_queue_subscriptions_wait_for_the_queue_policy_that_lets_sns_deliver() -> None:
    t = with_route("sns")
    queues = {q.attributes["Arn"]: q.physical_id for q in t.of_type("AWS::SQS::Queue")}
    found = []
    for subscription in t.of_type("AWS::SNS::Subscription"):
        if subscription.properties.get("Protocol") != "sqs":
            continue
        policies = _policy_of(t, "AWS::SQS::QueuePolicy", "Queues", queues[subscription.properties["Endpoint"]])
        assert policies, f"{subscription.properties['Endpoint']}: no queue policy lets SNS deliver"
        if not set(policies) & depends_on(subscription.logical_id):
            found.append(f"{subscription.logical_id} does not DependsOn {policies}")
    assert not found, "; ".join(found)


# ------------------------------------------------------------------------------ undelivered events


def test_every_event_rule_target_retries_and_keeps_what_it_cannot_deliver_in_a_queue_the_rule_may_write() -> None:
    t = with_route("eventbridge")
    queues = {q.attributes["Arn"]: q for q in t.of_type("AWS::SQS::Queue")}
    rules = t.of_type("AWS::Events::Rule")
    assert rules, "FeedbackRoute=eventbridge has no rule: the check checks nothing"
    for rule in rules:
        for target in rule.properties.get("Targets") or []:
            where = f"{rule.logical_id}.Targets.{target['Id']}"
            retry = target.get("RetryPolicy") or {}
            assert retry.get("MaximumRetryAttempts") and retry.get("MaximumEventAgeInSeconds"), (
                f"{where}: no RetryPolicy")
            dead_letters = (target.get("DeadLetterConfig") or {}).get("Arn")
            assert dead_letters in queues, f"{where}: no DeadLetterConfig naming a queue of the stack"
            assert dead_letters != target["Arn"], f"{where}: dead-letters into its own target"
            queue = queues[dead_letters]
            policies = [p for p in t.of_type("AWS::SQS::QueuePolicy")
                        if queue.physical_id in (p.properties.get("Queues") or [])]
            allowed = [s for p in policies for s in p.properties["PolicyDocument"]["Statement"]
                       if s.get("Effect") == "Allow" and (s.get("Principal") or {}).get("Service") ==
                       "events.amazonaws.com" and re.search("sqs:SendMessage", str(s.get("Action")))
                       and rule.attributes["Arn"] in str(s.get("Condition"))]
            assert allowed, f"{where}: no policy of {queue.logical_id} lets EventBridge send from {rule.logical_id}"
