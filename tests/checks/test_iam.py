"""A missing IAM permission you can see in the template fails here first, not in a deployed execution.

State machines: every Task Resource of the deployed (substituted) ASL, every Distributed Map, ItemReader
and ResultWriter, and the Logging configuration are mapped to the IAM actions and resources they need,
and the state machine's Policies must allow them. Functions: the AWS calls each handler makes are listed
in HANDLER_CALLS (written by reading functions/app/handlers/), kept honest by a scan of the handler code.
Publishing to a topic encrypted with a key of this template also needs kms:GenerateDataKey and kms:Decrypt on
that key (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html); the key's own policy, which must
let the account's IAM policies grant them, is checked by test_kms.py.

Each role is what the engine enforces at run time (sesflow.engine.iam.role_of: SAM policy templates expanded
from aws-sam-translator's policy_templates.json, Statement blocks, the managed policies SAM adds, IAM's
evaluation). Here a need whose target is only known at run time (a JSONata or JSONPath value) is checked on the
action alone; the engine checks it again, with the real resource, when the call is made.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from sesflow.engine import iam
from sesflow.engine.stack import substitute_definition
from sesflow.engine.template import ACCOUNT_ID, PARTITION, Resource, Template, load_template
from tests.checks.asl_walk import iter_states

ROOT = Path(__file__).resolve().parents[2]

# The EventBridge rule Step Functions manages to follow a states:startExecution.sync child.
SYNC_EVENTS_RULE = "StepFunctionsGetEventsForStepFunctionsExecutionRule"

# Step Functions Logging needs these on "*" (the log delivery APIs have no resource-level permissions);
# SAM does not add them (it adds only X-Ray's managed policy when Tracing is enabled).
LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
)

# SDK service name (as in arn:aws:states:::aws-sdk:<service>:<api>) -> IAM prefix, where they differ.
IAM_PREFIX = {"sesv2": "ses", "sfn": "states", "stepfunctions": "states", "eventbridge": "events",
              "cloudwatchlogs": "logs"}

# What each handler calls, by reading functions/app/handlers/*.py: (IAM action, target ARN). Targets are
# templates: {Logical.Attr} is a GetAtt, {Logical} a Ref or parameter, {region}/{account}/{partition}.
# Calls through app.clients: client("<service>") and table(<name>) (a DynamoDB Table resource).
HANDLER_CALLS: dict[str, list[tuple[str, str]]] = {
    # parse_campaign; on a resume, app.campaign_control.stored_definition(): get_item of the control item
    "app.handlers.validate_campaign": [("dynamodb:GetItem", "{CampaignsTable.Arn}")],
    "app.handlers.snapshot_audience": [
        # app.audience.read() -> app.contacts.members(): query of each list's (and exclude list's) memberships
        ("dynamodb:Query", "{MembershipsTable.Arn}"),
        # app.contacts.read_contacts(): batch_get_item of the members' contacts and erased markers
        ("dynamodb:BatchGetItem", "{RecipientsTable.Arn}"),
        # app.audience.account_suppressed(): client("sesv2").list_suppressed_destinations(...)
        ("ses:ListSuppressedDestinations", "*"),
        # client("s3").put_object(...) of campaigns/<id>/<run>/<phase>.json and holdout.json
        ("s3:PutObject", "{ManifestBucket.Arn}/campaigns/*"),
    ],
    "app.handlers.send_batch": [
        # app.attributes.read(): batch_get_item of the recipients' personalization.fields
        ("dynamodb:BatchGetItem", "{RecipientsTable.Arn}"),
        # app.campaign_control.check(): batch_get_item of the control and stats items; halt()/warn(): update_item
        # and client("sns").publish() of the alert; add_counts(): update_item of the counters
        ("dynamodb:BatchGetItem", "{CampaignsTable.Arn}"),
        ("dynamodb:UpdateItem", "{CampaignsTable.Arn}"),
        ("sns:Publish", "{AlertTopic}"),
        # app.governor.Governor: get_item and conditional update_item of its item; client("sesv2").get_account()
        ("dynamodb:GetItem", "{CampaignsTable.Arn}"),
        ("ses:GetAccount", "*"),
        # app.unsubscribe.secret(): the key that signs each message's one-click unsubscribe link
        ("secretsmanager:GetSecretValue", "{UnsubscribeSecret}"),
        # app.sends: conditional update_item of the batch's claim (claim, in flight, finish)
        ("dynamodb:UpdateItem", "{SendsTable.Arn}"),
        # client("sesv2").send_bulk_email(FromEmailAddress, ConfigurationSetName, DefaultContent.Template)
        ("ses:SendBulkEmail", "arn:{partition}:ses:{region}:{account}:identity/{SenderIdentity}"),
        ("ses:SendBulkEmail", "arn:{partition}:ses:{region}:{account}:configuration-set/{ConfigurationSet}"),
        ("ses:SendBulkEmail", "arn:{partition}:ses:{region}:{account}:template/*"),
    ],
    "app.handlers.pick_winner": [
        # app.campaign_control.read(): batch_get_item of the control and stats items; the decision: update_item
        ("dynamodb:BatchGetItem", "{CampaignsTable.Arn}"),
        ("dynamodb:UpdateItem", "{CampaignsTable.Arn}"),
    ],
    "app.handlers.reweigh_variants": [
        # app.campaign_control.read(): batch_get_item of the control and stats items; record_reweighting():
        # update_item of the round's record
        ("dynamodb:BatchGetItem", "{CampaignsTable.Arn}"),
        ("dynamodb:UpdateItem", "{CampaignsTable.Arn}"),
    ],
    "app.handlers.finalize_campaign": [
        # app.campaign_control: change_status() update_item, read() batch_get_item
        ("dynamodb:UpdateItem", "{CampaignsTable.Arn}"),
        ("dynamodb:BatchGetItem", "{CampaignsTable.Arn}"),
        # app.sends.summary(): query of the campaign's claims
        ("dynamodb:Query", "{SendsTable.Arn}"),
    ],
    "app.handlers.ingest_feedback": [
        # dead_letter(): client("sqs").send_message(QueueUrl=FEEDBACK_DLQ_URL, ...)
        ("sqs:SendMessage", "{FeedbackDeadLetterQueue.Arn}"),
        # app.recipients.read(): batch_get_item on RecipientsTable
        ("dynamodb:BatchGetItem", "{RecipientsTable.Arn}"),
        # app.ingest._Batch.commit(): transact_write_items of markers and audit records (EventsTable: Put, and an
        # Update completing an untagged marker), recipients' new states and counters (Update); IAM checks a
        # transaction's items as the PutItem/UpdateItem they are
        ("dynamodb:PutItem", "{EventsTable.Arn}"),
        ("dynamodb:UpdateItem", "{EventsTable.Arn}"),
        ("dynamodb:UpdateItem", "{RecipientsTable.Arn}"),
        ("dynamodb:UpdateItem", "{CampaignsTable.Arn}"),
        # app.ingest._Batch.learn(): get_item of a marker whose condition failed
        ("dynamodb:GetItem", "{EventsTable.Arn}"),
        # app.recipients.start_episode(): client("stepfunctions").start_execution(...)
        ("states:StartExecution", "{RecipientLifecycleStateMachine.Arn}"),
        # app.recipients.end_episode(): client("stepfunctions").send_task_success(taskToken=...)
        ("states:SendTaskSuccess", "*"),
        # app.ingest.reconcile() -> app.sends.confirm(): conditional update_item of a send batch's claim
        ("dynamodb:UpdateItem", "{SendsTable.Arn}"),
        # app.campaign_control.check_by_id(): get_item and batch_get_item of the campaign, halt()/warn()
        # update_item and client("sns").publish() of the alert
        ("dynamodb:BatchGetItem", "{CampaignsTable.Arn}"),
        ("dynamodb:GetItem", "{CampaignsTable.Arn}"),
        ("sns:Publish", "{AlertTopic}"),
    ],
    "app.handlers.migrate_contacts": [
        # app.migration.migrate_segment(): client("dynamodb").scan(Segment=..., TotalSegments=...) of RecipientsTable
        ("dynamodb:Scan", "{RecipientsTable.Arn}"),
        # put_membership(): the conditional update_item of the membership
        ("dynamodb:UpdateItem", "{MembershipsTable.Arn}"),
        # detach_list(): transact_write_items of the contact's Update (REMOVE list_id) and its history record (Put);
        # app.contacts.register_list(): the conditional put_item of the list (pk LISTS)
        ("dynamodb:UpdateItem", "{RecipientsTable.Arn}"),
        ("dynamodb:PutItem", "{EventsTable.Arn}"),
    ],
    "app.handlers.unsubscribe": [
        # app.unsubscribe.secret(): client("secretsmanager").get_secret_value(SecretId=UNSUBSCRIBE_SECRET_ARN)
        ("secretsmanager:GetSecretValue", "{UnsubscribeSecret}"),
        # app.contacts.applied() and record_applied(): get_item and put_item of the link's marker
        ("dynamodb:GetItem", "{EventsTable.Arn}"),
        ("dynamodb:PutItem", "{EventsTable.Arn}"),
        # app.contacts.read_contacts(): batch_get_item of the contact
        ("dynamodb:BatchGetItem", "{RecipientsTable.Arn}"),
        # app.campaign_control.audience_lists(): get_item of the campaign's frozen definition; add_counts():
        # update_item of its unsubscribes counter
        ("dynamodb:GetItem", "{CampaignsTable.Arn}"),
        ("dynamodb:UpdateItem", "{CampaignsTable.Arn}"),
        # app.contacts.set_subscription(): transact_write_items of the membership's Update and its audit record's
        # Put (EventsTable, above)
        ("dynamodb:UpdateItem", "{MembershipsTable.Arn}"),
        # app.contacts.unsubscribe_all(): update_item of the contact, then lists_of(): query of ContactListsIndex
        # and batch_get_item of the memberships
        ("dynamodb:UpdateItem", "{RecipientsTable.Arn}"),
        ("dynamodb:Query", "{MembershipsTable.Arn}/index/ContactListsIndex"),
        ("dynamodb:BatchGetItem", "{MembershipsTable.Arn}"),
    ],
    "app.handlers.import_batch": [
        # app.contacts.read_contacts() and read_memberships(): batch_get_item of contacts, erased markers and
        # memberships
        ("dynamodb:BatchGetItem", "{RecipientsTable.Arn}"),
        ("dynamodb:BatchGetItem", "{MembershipsTable.Arn}"),
        # app.contacts.add_new(): transact_write_items of conditional Puts of new contacts and memberships
        ("dynamodb:PutItem", "{RecipientsTable.Arn}"),
        ("dynamodb:PutItem", "{MembershipsTable.Arn}"),
        # upsert_contact() and add_membership(): update_item; set_subscription(): a transaction of the membership's
        # Update and its audit record's Put; app.imports.add_progress(): update_item of the progress item
        ("dynamodb:UpdateItem", "{RecipientsTable.Arn}"),
        ("dynamodb:UpdateItem", "{MembershipsTable.Arn}"),
        ("dynamodb:PutItem", "{EventsTable.Arn}"),
        ("dynamodb:UpdateItem", "{EventsTable.Arn}"),
        # app.imports.store_rejects(): client("s3").put_object(...) of imports/<id>/rejects/<line>.jsonl
        ("s3:PutObject", "{ManifestBucket.Arn}/imports/*"),
    ],
    "app.handlers.finish_import": [
        # app.import_results.sum_results(): get_object of the ResultWriter's manifest and result files
        ("s3:GetObject", "{ManifestBucket.Arn}/import-results/*"),
        # gather_rejects(): list_objects_v2 of imports/<id>/rejects/, get_object of each, upload_file of the CSV
        ("s3:ListBucket", "{ManifestBucket.Arn}"),
        ("s3:GetObject", "{ManifestBucket.Arn}/imports/*"),
        ("s3:PutObject", "{ManifestBucket.Arn}/imports/*"),
        # app.contacts.register_list() and record_import(): put_item of the list and of the import's record
        ("dynamodb:PutItem", "{EventsTable.Arn}"),
    ],
}


# ------------------------------------------------------------------------------ policies


@dataclass(frozen=True)
class Need:
    action: str
    resource: str | None  # None: only known at run time, the action alone is checked
    why: str

    def __str__(self) -> str:
        return f"{self.action} on {self.resource or '<run-time value>'} ({self.why})"


@cache
def template() -> Template:
    return load_template(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def sam_policies() -> dict[str, Any]:
    """SAM's policy templates, as the engine reads them (aws-sam-translator is a dependency of the project)."""
    return iam.policy_templates()


def _matches(statement: iam.Statement, need: Need) -> bool:
    if need.resource is None:
        return statement.matches_action(need.action)
    return statement.applies(need.action, need.resource)


def missing(needs: list[Need], granted: list[iam.Statement]) -> list[Need]:
    allows = [s for s in granted if s.effect == "Allow"]
    denies = [s for s in granted if s.effect == "Deny"]
    return [
        n for n in needs
        if not any(_matches(s, n) for s in allows) or any(_matches(s, n) for s in denies)
    ]


# ------------------------------------------------------------------------------ state machine needs




def _static(args: dict[str, Any], key: str) -> str | None:
    """A literal argument value; None when it is computed at run time (JSONata, or JSONPath "Key.$")."""
    value = args.get(key)
    if not isinstance(value, str) or value.startswith("{%") or f"{key}.$" in args:
        return None
    return value


def _arguments(state: dict[str, Any]) -> dict[str, Any]:
    args = state.get("Arguments", state.get("Parameters", {}))
    return args if isinstance(args, dict) else {}


def _target(service: str, args: dict[str, Any], region: str) -> str | None:
    """The ARN an integration call touches, from its well-known argument names."""
    arn = f"arn:{PARTITION}:{{}}:{region}:{ACCOUNT_ID}:{{}}"
    if service == "lambda" and (name := _static(args, "FunctionName")):
        return name if name.startswith("arn:") else arn.format("lambda", f"function:{name}")
    if service == "dynamodb" and (table := _static(args, "TableName")):
        base = table if table.startswith("arn:") else arn.format("dynamodb", f"table/{table}")
        index = _static(args, "IndexName")
        return f"{base}/index/{index}" if index else base
    if service == "s3" and (bucket := _static(args, "Bucket")):
        if "Key" not in args and "Key.$" not in args:
            return f"arn:{PARTITION}:s3:::{bucket}"  # a bucket-level call (ListBucket...)
        return f"arn:{PARTITION}:s3:::{bucket}/{_static(args, 'Key') or '*'}"
    if service == "sns":
        return _static(args, "TopicArn")
    if service == "sqs" and (url := _static(args, "QueueUrl")):
        account, name = url.rstrip("/").split("/")[-2:]
        return f"arn:{PARTITION}:sqs:{region}:{account}:{name}"
    if service == "states":
        return _static(args, "StateMachineArn")
    if service == "events" and isinstance(args.get("Entries"), list):
        buses = {e.get("EventBusName", "default") for e in args["Entries"] if isinstance(e, dict)}
        if len(buses) == 1 and not (bus := buses.pop()).startswith("{%"):
            return bus if bus.startswith("arn:") else arn.format("events", f"event-bus/{bus}")
    return None


# arn:aws:states:::<service>:<api> -> IAM actions (a .waitForTaskToken suffix changes nothing).
OPTIMIZED = {
    ("lambda", "invoke"): ("lambda:InvokeFunction",),
    ("dynamodb", "getItem"): ("dynamodb:GetItem",),
    ("dynamodb", "putItem"): ("dynamodb:PutItem",),
    ("dynamodb", "updateItem"): ("dynamodb:UpdateItem",),
    ("dynamodb", "deleteItem"): ("dynamodb:DeleteItem",),
    ("sns", "publish"): ("sns:Publish",),
    ("sqs", "sendMessage"): ("sqs:SendMessage",),
    ("states", "startExecution"): ("states:StartExecution",),
    ("events", "putEvents"): ("events:PutEvents",),
}


# A DynamoDB transaction is authorised item by item, as the single-item action each one is.
TRANSACTION_ITEM_ACTIONS = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem",
                            "Delete": "dynamodb:DeleteItem", "ConditionCheck": "dynamodb:ConditionCheckItem"}


def _transaction_needs(args: dict[str, Any], why: str, region: str) -> list[Need]:
    items = args.get("TransactItems")
    if not isinstance(items, list):
        return [Need(action, None, why) for action in ("dynamodb:PutItem", "dynamodb:UpdateItem")]
    return [Need(TRANSACTION_ITEM_ACTIONS[kind], _target("dynamodb", body, region), why)
            for item in items if isinstance(item, dict) for kind, body in item.items()
            if kind in TRANSACTION_ITEM_ACTIONS and isinstance(body, dict)]


def task_needs(resource: str, args: dict[str, Any], where: str, t: Template) -> tuple[list[Need], list[str]]:
    why = f"{where}: {resource}"
    legacy = re.fullmatch(r"arn:aws[\w-]*:lambda:[^:]+:\d+:function:.+", resource)
    if legacy:
        return [Need("lambda:InvokeFunction", resource, why)], []
    if re.fullmatch(r"arn:aws[\w-]*:states:[^:]+:\d+:activity:.+", resource):
        return [], []  # the activity worker calls Step Functions, not the state machine's role
    match = re.fullmatch(r"arn:aws[\w-]*:states:::(?P<service>[\w-]+):(?P<api>[\w:]+?)(?P<suffix>\.[\w.:]+)?",
                         resource)
    if not match:
        return [], [f"{why}: not a Resource test_iam knows how to map; teach task_needs"]
    service, api, suffix = match["service"], match["api"], match["suffix"] or ""
    if service == "aws-sdk":
        sdk_service, _, sdk_api = api.partition(":")
        if (sdk_service, sdk_api) in (("dynamodb", "transactWriteItems"),):
            return _transaction_needs(args, why, t.region), []
        action = f"{IAM_PREFIX.get(sdk_service, sdk_service)}:{sdk_api[:1].upper()}{sdk_api[1:]}"
        target = _target(IAM_PREFIX.get(sdk_service, sdk_service), args, t.region)
        return [Need(action, target, why)], []
    if (service, api) not in OPTIMIZED:
        return [], [f"{why}: integration {service}:{api} is not in OPTIMIZED; add its IAM actions"]
    target = _target(service, args, t.region)
    needs = [Need(action, target, why) for action in OPTIMIZED[service, api]]
    if service == "states" and suffix.startswith(".sync"):
        name = target.rsplit(":", 1)[-1] if target else None
        executions = f"arn:{PARTITION}:states:{t.region}:{ACCOUNT_ID}:execution:{name}:*" if name else None
        rule = f"arn:{PARTITION}:events:{t.region}:{ACCOUNT_ID}:rule/{SYNC_EVENTS_RULE}"
        needs += [Need(a, executions, why) for a in ("states:DescribeExecution", "states:StopExecution")]
        needs += [Need(a, rule, why) for a in ("events:PutTargets", "events:PutRule", "events:DescribeRule")]
    return needs, []


def topic_key_id(t: Template, topic_arn: str | None) -> str | None:
    """The KmsMasterKeyId (key ARN, key id or alias) of the template's topic with this ARN; None when unencrypted."""
    for topic in t.of_type("AWS::SNS::Topic"):
        if topic.physical_id == topic_arn:
            return str(topic.properties.get("KmsMasterKeyId") or "") or None
    return None


def template_key(t: Template, key_id: str | None) -> Resource | None:
    """The template's AWS::KMS::Key that a KmsMasterKeyId names (by ARN or key id); None: not one of this stack."""
    return next((k for k in t.of_type("AWS::KMS::Key") if key_id in (k.physical_id, k.attributes["Arn"])), None)


TOPIC_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")  # what a publisher of an encrypted topic needs


def with_encryption_needs(needs: list[Need], t: Template) -> list[Need]:
    """needs, plus the key of each encrypted topic it publishes to (a key of this template: an AWS-managed key
    grants its use to the account's principals in its own policy)."""
    more = []
    for need in needs:
        if need.action.lower() != "sns:publish":
            continue
        key = template_key(t, topic_key_id(t, need.resource))
        if key is not None:
            why = f"{need.why}; {need.resource} is encrypted with {key.logical_id}"
            more += [Need(action, key.attributes["Arn"], why) for action in TOPIC_KEY_ACTIONS]
    return needs + more


def deployed_definition(machine: Resource) -> dict[str, Any]:
    text = (ROOT / machine.properties["DefinitionUri"]).read_text()
    return json.loads(substitute_definition(text, machine.properties.get("DefinitionSubstitutions") or {},
                                            machine.logical_id))


def state_machine_needs(machine: Resource, t: Template) -> tuple[list[Need], list[str]]:
    needs: list[Need] = []
    problems: list[str] = []
    own_arn, own_name = machine.attributes["Arn"], machine.attributes["Name"]
    for where, state in iter_states(deployed_definition(machine)["States"]):
        if state.get("Type") == "Task":
            task, unknown = task_needs(state["Resource"], _arguments(state), where, t)
            needs += task
            problems += unknown
        if state.get("Type") != "Map":
            continue
        if state.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED":
            why = f"{where}: a Distributed Map runs its items as child executions of this state machine"
            executions = f"arn:{PARTITION}:states:{t.region}:{ACCOUNT_ID}:execution:{own_name}/*"
            needs.append(Need("states:StartExecution", own_arn, why))
            needs += [Need(a, executions, why) for a in ("states:DescribeExecution", "states:StopExecution")]
        for key, actions in (("ItemReader", {"getObject": "s3:GetObject", "listObjectsV2": "s3:ListBucket"}),
                             ("ResultWriter", {"putObject": "s3:PutObject"})):
            io = state.get(key)
            if not isinstance(io, dict):
                continue
            api = io.get("Resource", "").rsplit(":", 1)[-1]
            if api not in actions:
                problems.append(f"{where}.{key}: Resource {io.get('Resource')!r} is not one test_iam maps")
                continue
            args = dict(_arguments(io))
            if api == "putObject":
                args["Key"] = f"{_static(args, 'Prefix') or ''}*" if "Prefix" in args else "*"
            elif api == "listObjectsV2":
                args.pop("Key", None)
            why = f"{where}.{key}: {io['Resource']}"
            needs.append(Need(actions[api], _target("s3", args, t.region), why))
    if (machine.properties.get("Logging") or {}).get("Destinations"):
        needs += [Need(a, "*", "Logging.Destinations (vended logs delivery)") for a in LOG_DELIVERY_ACTIONS]
    return with_encryption_needs(needs, t), problems


def unmet(machine_or_function: Resource, needs: list[Need], sam_policies: dict[str, Any], t: Template) -> str:
    role = iam.role_of(machine_or_function, t)
    lacking = missing(needs, role.statements)
    if not lacking:
        return ""
    note = f"\n(not expanded, so not counted: {role.unexpanded})" if role.unexpanded else ""
    lines = "\n  ".join(map(str, lacking))
    return f"{machine_or_function.logical_id}.Policies do not allow:\n  {lines}{note}"


def state_machines() -> list[Resource]:
    return [r for r in template().of_type("AWS::Serverless::StateMachine") if "DefinitionUri" in r.properties]


@pytest.mark.parametrize("machine", state_machines(), ids=lambda r: r.logical_id)
def test_state_machine_policies_allow_what_its_definition_calls(
    machine: Resource, sam_policies: dict[str, Any]
) -> None:
    t = template()
    needs, problems = state_machine_needs(machine, t)
    assert not problems, f"{machine.logical_id}: " + "; ".join(problems)
    report = unmet(machine, needs, sam_policies, t)
    assert not report, report


# ------------------------------------------------------------------------------ function needs


def function_needs(function: Resource, t: Template) -> list[Need]:
    module = function.properties["Handler"].rsplit(".", 1)[0]
    values = {"partition": PARTITION, "region": t.region, "account": ACCOUNT_ID, **t.parameters}

    def fill(match: re.Match[str]) -> str:
        name, _, attr = match.group(1).partition(".")
        if attr:
            return t.resources[name].attributes[attr]
        return str(values[name]) if name in values else t.resources[name].physical_id

    return with_encryption_needs([
        Need(action, re.sub(r"\{([\w.]+)\}", fill, target), f"{module} calls it")
        for action, target in HANDLER_CALLS.get(module, [])
    ], t)


def functions() -> list[Resource]:
    return template().of_type("AWS::Serverless::Function")


def handler_module(function: Resource) -> str:
    return function.properties["Handler"].rsplit(".", 1)[0]


@pytest.mark.parametrize("function", functions(), ids=lambda r: r.logical_id)
def test_function_policies_allow_what_its_handler_calls(
    function: Resource, sam_policies: dict[str, Any]
) -> None:
    t = template()
    report = unmet(function, function_needs(function, t), sam_policies, t)
    assert not report, report


def test_handler_calls_table_lists_every_handler_of_the_template() -> None:
    modules = {handler_module(f) for f in functions()}
    assert set(HANDLER_CALLS) == modules, (
        f"HANDLER_CALLS has no entry for {sorted(modules - set(HANDLER_CALLS))} and a stale one for "
        f"{sorted(set(HANDLER_CALLS) - modules)}: read the handler and list its AWS calls"
    )


def _calls(module: str, seen: set[str] | None = None) -> tuple[set[str], set[str]]:
    """(services the handler's code uses through app.clients, method names it calls), following the
    handler into the app.* modules it imports (its I/O may live in a service module such as app.ingest)."""
    seen = seen if seen is not None else set()
    seen.add(module)
    path = ROOT / "functions" / (module.replace(".", "/") + ".py")
    services: set[str] = set()
    methods: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        imported: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module == "app":  # from app import clients, sends
            imported = [f"app.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app."):
            imported = [node.module]
        for name in imported:
            if name not in seen and (ROOT / "functions" / (name.replace(".", "/") + ".py")).exists():
                more_services, more_methods = _calls(name, seen)
                services |= more_services
                methods |= more_methods
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute):
            methods.add(func.attr)
        elif isinstance(func, ast.Name) and func.id == "table":
            services.add("dynamodb")
        elif isinstance(func, ast.Name) and func.id == "client" and node.args:
            arg = node.args[0]
            services.add(arg.value if isinstance(arg, ast.Constant) else "<computed>")
    return services, methods


# Services a handler's imports reach that the handler never calls, each with why: the scan follows whole modules.
_AUDIT_HELPERS_ONLY = ("app.contacts imports app.recipients for its audit-record helpers (audit_pk, iso) only, and "
                       "its erase() (the CLI's) ends an episode; this handler starts and ends none")
IMPORTED_NOT_CALLED: dict[str, dict[str, str]] = {
    "app.handlers.unsubscribe": {"stepfunctions": _AUDIT_HELPERS_ONLY},
    "app.handlers.import_batch": {"stepfunctions": _AUDIT_HELPERS_ONLY},
    "app.handlers.finish_import": {"stepfunctions": _AUDIT_HELPERS_ONLY},
    "app.handlers.snapshot_audience": {
        "stepfunctions": "app.contacts imports app.recipients for its audit-record helpers (audit_pk, iso) only; "
                         "the snapshot starts and ends no quarantine episode",
    },
}


# IAM actions whose API method is named otherwise (the Service Authorization Reference: ListObjectsV2 needs
# s3:ListBucket).
METHOD_OF = {"s3:ListBucket": "list_objects_v2"}


@pytest.mark.parametrize("module", sorted(HANDLER_CALLS))
def test_handler_calls_table_matches_the_handler_code(module: str) -> None:
    services, methods = _calls(module)
    services -= set(IMPORTED_NOT_CALLED.get(module, {}))
    listed = HANDLER_CALLS[module]
    prefixes = {action.split(":")[0] for action, _ in listed}
    problems = [
        f"uses client/table for {service!r} but lists no {IAM_PREFIX.get(service, service)}:* action"
        for service in sorted(services)
        if IAM_PREFIX.get(service, service) not in prefixes
    ]
    for action, _ in listed:
        method = METHOD_OF.get(action) or re.sub(r"(?<!^)(?=[A-Z])", "_", action.split(":")[1]).lower()  # put_item
        in_transaction = action in TRANSACTION_ITEM_ACTIONS.values() and "transact_write_items" in methods
        if method not in methods and not in_transaction:
            problems.append(f"lists {action} but never calls .{method}()")
    assert not problems, f"HANDLER_CALLS[{module!r}] vs the code: " + "; ".join(problems)


# ------------------------------------------------------------------------------ the checker itself


def _without_grants(t: Template, logical_id: str, need: Need, sam_policies: dict[str, Any]) -> Template:
    """A copy of the resolved template whose resource lost every policy entry that grants `need`."""
    copied = copy.deepcopy(t)
    resource = copied.resources[logical_id]
    kept = [
        p for p in resource.properties["Policies"]
        if not any(_matches(s, need) for s in iam.statements([p], copied)[0] if s.effect == "Allow")
    ]
    assert len(kept) < len(resource.properties["Policies"]), f"no policy of {logical_id} grants {need}"
    resource.properties["Policies"] = kept
    return copied


def test_checker_reports_a_missing_permission_when_a_state_machine_policy_is_removed(
    sam_policies: dict[str, Any],
) -> None:
    t = template()
    machine = next(m for m in state_machines() if state_machine_needs(m, t)[0])
    needs = state_machine_needs(machine, t)[0]
    need = next(n for n in needs if n.resource not in (None, "*"))
    broken = _without_grants(t, machine.logical_id, need, sam_policies)
    report = unmet(broken.resources[machine.logical_id], needs, sam_policies, broken)
    assert str(need) in report, f"removing the grant of {need} went unnoticed: {report!r}"


def test_checker_reports_a_missing_permission_when_a_function_policy_is_removed(
    sam_policies: dict[str, Any],
) -> None:
    t = template()
    sends_email = [
        f for f in functions()
        if any(action.startswith("ses:") for action, _ in HANDLER_CALLS.get(handler_module(f), []))
    ]
    assert sends_email, "no handler in HANDLER_CALLS sends email: the control needs one"
    function = sends_email[0]
    needs = function_needs(function, t)
    need = next(n for n in needs if n.action.startswith("ses:"))
    broken = _without_grants(t, function.logical_id, need, sam_policies)
    report = unmet(broken.resources[function.logical_id], needs, sam_policies, broken)
    assert str(need) in report, f"removing the grant of {need} went unnoticed: {report!r}"


def test_checker_reports_the_topic_key_when_a_publisher_lacks_it(sam_policies: dict[str, Any]) -> None:
    t = template()
    publisher = t.resources["SendBatchFunction"]
    needs = function_needs(publisher, t)
    key_needs = [n for n in needs if n.action in TOPIC_KEY_ACTIONS]
    assert key_needs, "SendBatchFunction publishes to AlertTopic: its needs must include AlertTopic's key"
    broken = _without_grants(t, publisher.logical_id, key_needs[0], sam_policies)
    report = unmet(broken.resources[publisher.logical_id], needs, sam_policies, broken)
    assert "kms:GenerateDataKey on arn:aws:kms:" in report and "encrypted with TopicKey" in report, report


def test_send_batch_may_send_through_each_allowed_configuration_set_when_the_parameter_names_them(
    sam_policies: dict[str, Any],
) -> None:
    t = load_template(ROOT / "template.yaml", parameter_overrides={"AllowedConfigurationSets": "marketing,partner"})
    function = t.resources["SendBatchFunction"]
    prefix = f"arn:{PARTITION}:ses:{t.region}:{ACCOUNT_ID}:configuration-set/"
    needs = [Need(action, prefix + name, "a campaign's own configuration_set")
             for name in ("marketing", "partner") for action in ("ses:SendEmail", "ses:SendBulkEmail")]
    report = unmet(function, needs, sam_policies, t)
    assert not report, report
    granted = iam.statements(function.properties["Policies"], t)[0]
    assert missing([Need("ses:SendBulkEmail", prefix + "another", "not allowed")], granted), (
        "SendBatchFunction may send through a configuration set AllowedConfigurationSets does not name")


def test_send_batch_may_send_through_the_stacks_sets_only_when_the_parameter_is_empty(
    sam_policies: dict[str, Any],
) -> None:
    t = template()
    function = t.resources["SendBatchFunction"]
    sets = [str(r) for s in iam.statements(function.properties["Policies"], t)[0]
            for r in s.resources if ":configuration-set/" in str(r)]
    own = {t.resources[name].physical_id for name in ("ConfigurationSet", "ProbationConfigurationSet")}
    assert {r.rsplit("/", 1)[1] for r in sets} == own, sets
