"""IAM as AWS evaluates identity-based policies: what each role of the template may do, and who is calling.

One source of truth for both the static check (tests/checks/test_iam.py) and the engine's run-time check
(patches/iam.py): the statements a function or state machine role gets from template.yaml, and the
evaluation of a request (action, resource ARN) against them.

- Policies: SAM policy templates are expanded from aws-sam-translator's own policy_templates.json (the data
  `sam deploy` uses); `Statement` documents are taken as written; the managed policies SAM attaches
  (AWSLambdaBasicExecutionRole on every function, AWSXrayWriteOnlyAccess with Tracing) are modelled by
  name as granting what they grant to logs and xray; any other managed policy grants nothing here.
- Evaluation (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
  a matching Deny wins, else a matching Allow allows, else the request is implicitly denied. Action and
  NotAction match case-insensitively with `*` and `?`; Resource and NotResource case-sensitively. Condition
  blocks are not evaluated: a statement with one applies as if its condition held.
- Who is calling: a per-thread stack of principals. The Lambda bridge pushes the function's role around its
  handler, the Step Functions patch the state machine's role around each Task; a call with no principal is
  the operator's (a test, the CLI) and is not checked.
- A denial reads as AWS's (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html):
  "User: arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION is not authorized to perform: ACTION on resource:
  ARN because no identity-based policy allows the ACTION action".
"""

from __future__ import annotations

import contextlib
import importlib.resources
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import unquote

from sesflow.engine.template import ACCOUNT_ID, PARTITION, Resource, Template

# ------------------------------------------------------------------------------ the policy language


def _pattern(text: str, ignore_case: bool) -> re.Pattern[str]:
    regex = re.escape(str(text)).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(regex, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _listed(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(str(v) for v in (value if isinstance(value, list) else [value]))


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    conditional: bool = False

    @classmethod
    def parse(cls, s: dict[str, Any]) -> Statement:
        return cls(
            effect=str(s.get("Effect", "Allow")),
            actions=_listed(s.get("Action")), resources=_listed(s.get("Resource")),
            not_actions=_listed(s.get("NotAction")), not_resources=_listed(s.get("NotResource")),
            conditional="Condition" in s,
        )

    @property
    def _compiled(self) -> tuple[list[re.Pattern[str]], ...]:
        compiled = self.__dict__.get("_sesflow_compiled")
        if compiled is None:
            compiled = (
                [_pattern(a, True) for a in self.actions], [_pattern(a, True) for a in self.not_actions],
                [_pattern(r, False) for r in self.resources], [_pattern(r, False) for r in self.not_resources],
            )
            object.__setattr__(self, "_sesflow_compiled", compiled)
        return compiled

    def matches_action(self, action: str) -> bool:
        actions, not_actions, _, _ = self._compiled
        if self.actions:
            return any(p.fullmatch(action) for p in actions)
        return bool(self.not_actions) and not any(p.fullmatch(action) for p in not_actions)

    def applies(self, action: str, resource: str) -> bool:
        if not self.matches_action(action):
            return False
        _, _, resources, not_resources = self._compiled
        if self.resources:
            return any(p.fullmatch(resource) for p in resources)
        return bool(self.not_resources) and not any(p.fullmatch(resource) for p in not_resources)


ALLOWED, IMPLICIT_DENY, EXPLICIT_DENY = "allowed", "implicit", "explicit"


@dataclass
class Role:
    """A role and its statements; decisions are cached per (action, resource): a demo makes 10^5 calls."""

    name: str
    owner: str  # the logical id of the function or state machine whose role this is
    statements: list[Statement]
    unexpanded: list[str] = field(default_factory=list)  # managed policies not modelled: they grant nothing
    _decisions: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)

    @property
    def arn(self) -> str:
        return f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/{self.name}"

    def decide(self, action: str, resource: str) -> str:
        key = (action, resource)
        decision = self._decisions.get(key)
        if decision is None:
            decision = IMPLICIT_DENY
            for s in self.statements:
                if s.applies(action, resource):
                    if s.effect == "Deny":
                        decision = EXPLICIT_DENY
                        break
                    decision = ALLOWED
            if len(self._decisions) >= 50_000:  # resources include S3 keys: keep the cache bounded
                self._decisions.clear()
            self._decisions[key] = decision
        return decision


def denial_message(role: Role, session: str, action: str, resource: str, decision: str) -> str:
    on = f" on resource: {resource}" if resource != "*" else ""
    why = ("with an explicit deny in an identity-based policy" if decision == EXPLICIT_DENY
           else f"because no identity-based policy allows the {action} action")
    return (f"User: arn:{PARTITION}:sts::{ACCOUNT_ID}:assumed-role/{role.name}/{session} is not authorized to "
            f"perform: {action}{on} {why}")


# ------------------------------------------------------------------------------ policies of the template


@cache
def policy_templates() -> dict[str, Any]:
    """SAM's policy templates, from the aws-sam-translator package (read as data: nothing of it is imported)."""
    path = importlib.resources.files("samtranslator") / "policy_templates_data" / "policy_templates.json"
    return json.loads(path.read_text())["Templates"]


def _pseudo(t: Template) -> dict[str, str]:
    return {"AWS::Partition": PARTITION, "AWS::Region": t.region, "AWS::AccountId": ACCOUNT_ID}


def _expand(node: Any, params: dict[str, Any], pseudo: dict[str, str]) -> Any:
    """A policy template's Definition with its parameters: only Ref and Fn::Sub occur in the file."""
    if isinstance(node, list):
        return [_expand(item, params, pseudo) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"}:
        name = node["Ref"]
        if name in params:
            return params[name]
        if name in pseudo:
            return pseudo[name]
        raise KeyError(f"policy template parameter {name} has no value")
    if set(node) == {"Fn::Sub"}:
        arg = node["Fn::Sub"]
        text, names = (arg, {}) if isinstance(arg, str) else (arg[0], _expand(arg[1], params, pseudo))
        values = {**pseudo, **names}
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(values[m.group(1)]), text)
    return {key: _expand(value, params, pseudo) for key, value in node.items()}


def _logs_and_xray(*actions: str) -> list[Statement]:
    return [Statement("Allow", actions, ("*",))]


# AWS managed policies SAM attaches, by name: what they grant that a function or state machine here could use.
MANAGED_POLICIES: dict[str, list[Statement]] = {
    "AWSLambdaBasicExecutionRole": _logs_and_xray("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"),
    "AWSXrayWriteOnlyAccess": _logs_and_xray(
        "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
        "xray:GetSamplingStatisticSummaries"),
}


def statements(policies: Any, t: Template) -> tuple[list[Statement], list[str]]:
    """The statements of a resource's Policies, and the entries that could not be expanded (managed policies
    not modelled by name)."""
    templates = policy_templates()
    result: list[Statement] = []
    unexpanded: list[str] = []

    def add(document_statements: Any) -> None:
        for s in document_statements if isinstance(document_statements, list) else [document_statements]:
            if isinstance(s, dict):
                result.append(Statement.parse(s))

    for policy in policies if isinstance(policies, list) else [policies] if policies else []:
        if isinstance(policy, dict) and "Statement" in policy:
            add(policy["Statement"])
        elif isinstance(policy, dict) and len(policy) == 1 and next(iter(policy)) in templates:
            (name, params), = policy.items()
            add(_expand(templates[name]["Definition"], params or {}, _pseudo(t))["Statement"])
        elif isinstance(policy, str) and policy.rsplit("/", 1)[-1] in MANAGED_POLICIES:
            result.extend(MANAGED_POLICIES[policy.rsplit("/", 1)[-1]])
        else:
            unexpanded.append(policy if isinstance(policy, str) else json.dumps(policy))
    return result, unexpanded


def _role_name(stack_name: str, logical_id: str) -> str:
    """SAM's generated role is <LogicalId>Role; CloudFormation names it <stack>-<LogicalId>Role-<suffix>."""
    return f"{stack_name}-{logical_id}Role"[:64]


def _written_role(resource: Resource, t: Template) -> Role:
    """A `Role` (`RoleArn` for AWS::StepFunctions::StateMachine) the template gives a function or state machine: an
    AWS::IAM::Role of the template, whose inline Policies and ManagedPolicyArns (by name) it grants; SAM then adds
    nothing and ignores Policies."""
    value = str(resource.properties.get("Role") or resource.properties.get("RoleArn"))
    for r in t.of_type("AWS::IAM::Role"):
        if value in (r.physical_id, r.attributes.get("Arn")):
            documents = [p.get("PolicyDocument", {}).get("Statement", []) for p in r.properties.get("Policies") or []]
            granted, unexpanded = statements([{"Statement": d} for d in documents]
                                             + list(r.properties.get("ManagedPolicyArns") or []), t)
            return Role(str(r.properties.get("RoleName") or r.physical_id), resource.logical_id, granted, unexpanded)
    return Role(value.rsplit("/", 1)[-1], resource.logical_id, [], [f"{value}: not a role of the template"])


def role_of(resource: Resource, t: Template) -> Role:
    """The role SAM gives a function or state machine: its Policies, plus the managed policies SAM adds."""
    p = resource.properties
    if p.get("Role") or p.get("RoleArn"):
        return _written_role(resource, t)
    policies = list(p.get("Policies") or []) if isinstance(p.get("Policies"), list) else (
        [p["Policies"]] if p.get("Policies") else [])
    if resource.type == "AWS::Serverless::Function":
        policies.append("AWSLambdaBasicExecutionRole")
        if p.get("Tracing") == "Active":
            policies.append("AWSXrayWriteOnlyAccess")
    elif (p.get("Tracing") or {}).get("Enabled"):
        policies.append("AWSXrayWriteOnlyAccess")
    granted, unexpanded = statements(policies, t)
    return Role(_role_name(t.stack_name, resource.logical_id), resource.logical_id, granted, unexpanded)


@dataclass
class Roles:
    """The roles of one deployed stack, by function name and by state machine name."""

    functions: dict[str, Role] = field(default_factory=dict)
    state_machines: dict[str, Role] = field(default_factory=dict)

    @classmethod
    def of(cls, t: Template) -> Roles:
        roles = cls()
        for r in t.of_type("AWS::Serverless::Function"):
            roles.functions[r.physical_id] = role_of(r, t)
        for r in t.of_type("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            roles.state_machines[r.attributes["Name"]] = role_of(r, t)
        return roles


# ------------------------------------------------------------------------------ who is calling


@dataclass(frozen=True)
class Principal:
    role: Role
    session: str  # the assumed-role session: the function's name, or the execution's


_local = threading.local()


def current() -> Principal | None:
    stack = getattr(_local, "stack", None)
    return stack[-1] if stack else None


@contextlib.contextmanager
def acting_as(role: Role | None, session: str = "") -> Iterator[None]:
    """The calls this thread makes inside are the role's (None: nobody's, so unchecked)."""
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    stack.append(Principal(role, session) if role is not None else None)
    try:
        yield
    finally:
        stack.pop()


def operators(client: Any) -> Any:
    """Mark a boto3 client as the operator's (the engine's stack clients, a test's, the CLI's): its calls are never
    checked, even when made on a thread where a function is acting (a test's hook inside a handler)."""
    client._sesflow_operator = True
    return client


def is_operators(client: Any) -> bool:
    return getattr(client, "_sesflow_operator", False)


# ------------------------------------------------------------------------------ requests -> (action, resource)

# botocore service name -> IAM service prefix (https://docs.aws.amazon.com/service-authorization/latest/reference/)
IAM_PREFIX = {"sesv2": "ses", "ses": "ses", "stepfunctions": "states", "cloudwatch": "cloudwatch",
              "logs": "logs", "events": "events"}
# Calls that need no permission (GetCallerIdentity works even with every action denied).
UNCHECKED = {("sts", "GetCallerIdentity")}

Need = tuple[str, str]  # (IAM action, resource ARN or "*")


def _arn(service: str, region: str, rest: str) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{ACCOUNT_ID}:{rest}"


def _dynamodb(op: str, params: dict[str, Any], region: str) -> list[Need]:
    def table(name: str, index: str | None = None) -> str:
        base = name if name.startswith("arn:") else _arn("dynamodb", region, f"table/{name}")
        return f"{base}/index/{index}" if index else base

    if op in ("BatchGetItem", "BatchWriteItem"):
        return [(f"dynamodb:{op}", table(name)) for name in params.get("RequestItems") or {}]
    if op in ("TransactWriteItems", "TransactGetItems"):
        # Each item is authorised as the single-item action it is (DynamoDB's IAM guide for transactions).
        kinds = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                 "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
        return [(f"dynamodb:{kinds[kind]}", table(body["TableName"]))
                for item in params.get("TransactItems") or [] for kind, body in item.items() if kind in kinds]
    if "TableName" in params:
        return [(f"dynamodb:{op}", table(params["TableName"], params.get("IndexName")))]
    return [(f"dynamodb:{op}", "*")]


_S3_ACTIONS = {"HeadObject": "GetObject", "ListObjectsV2": "ListBucket", "ListObjects": "ListBucket",
               "HeadBucket": "ListBucket", "ListObjectVersions": "ListBucketVersions",
               "CreateMultipartUpload": "PutObject", "UploadPart": "PutObject",
               "CompleteMultipartUpload": "PutObject", "AbortMultipartUpload": "AbortMultipartUpload",
               "DeleteObjects": "DeleteObject", "ListBuckets": "ListAllMyBuckets",
               "GetBucketLifecycleConfiguration": "GetLifecycleConfiguration",
               "PutBucketLifecycleConfiguration": "PutLifecycleConfiguration"}


def _s3(op: str, params: dict[str, Any], region: str) -> list[Need]:
    action = f"s3:{_S3_ACTIONS.get(op, op)}"
    bucket = params.get("Bucket")
    if not bucket:
        return [(action, "*")]
    bucket_arn = f"arn:{PARTITION}:s3:::{bucket}"
    if op == "DeleteObjects":
        return [(action, f"{bucket_arn}/{o['Key']}") for o in (params.get("Delete") or {}).get("Objects") or []]
    needs = [(action, f"{bucket_arn}/{params['Key']}" if "Key" in params else bucket_arn)]
    if op in ("CopyObject", "UploadPartCopy"):
        source = params.get("CopySource")
        if isinstance(source, dict):
            source = f"{source['Bucket']}/{source['Key']}"
        needs.append(("s3:GetObject", f"arn:{PARTITION}:s3:::{unquote(str(source)).lstrip('/').split('?')[0]}"))
    return needs


_SQS_ACTIONS = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
                "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}


def _sqs(op: str, params: dict[str, Any], region: str) -> list[Need]:
    action = f"sqs:{_SQS_ACTIONS.get(op, op)}"
    if "QueueUrl" in params:
        account, name = str(params["QueueUrl"]).rstrip("/").split("/")[-2:]
        return [(action, f"arn:{PARTITION}:sqs:{region}:{account}:{name}")]
    if "QueueName" in params:
        return [(action, _arn("sqs", region, params["QueueName"]))]
    return [(action, "*")]


def _sns(op: str, params: dict[str, Any], region: str) -> list[Need]:
    action = "sns:Publish" if op == "PublishBatch" else f"sns:{op}"
    arn = params.get("TopicArn") or params.get("TargetArn")
    if not arn and "SubscriptionArn" in params:
        arn = str(params["SubscriptionArn"]).rsplit(":", 1)[0]
    return [(action, arn or "*")]


def _ses_identity(address: str, region: str) -> str:
    """The identity SES sends an address as: the address when it is itself verified, else its domain."""
    name = address.rsplit("<", 1)[-1].rstrip(">").strip()
    try:
        from moto.sesv2.models import sesv2_backends

        verified = sesv2_backends[ACCOUNT_ID][region].core_backend.email_identities
    except Exception:  # noqa: BLE001 -- no moto backend: the domain, as most senders verify one
        verified = {}
    identity = name if name in verified else name.rsplit("@", 1)[-1]
    return _arn("ses", region, f"identity/{identity}")


def _sesv2(op: str, params: dict[str, Any], region: str) -> list[Need]:
    action = f"ses:{op}"
    if op in ("SendEmail", "SendBulkEmail"):
        # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsimpleemailservicev2.html:
        # the sending identity, and the configuration set and template when the call names them.
        resources = []
        if params.get("FromEmailAddressIdentityArn"):
            resources.append(params["FromEmailAddressIdentityArn"])
        elif params.get("FromEmailAddress"):
            resources.append(_ses_identity(params["FromEmailAddress"], region))
        if params.get("ConfigurationSetName"):
            resources.append(_arn("ses", region, f"configuration-set/{params['ConfigurationSetName']}"))
        content = params.get("DefaultContent") if op == "SendBulkEmail" else params.get("Content")
        template = (content or {}).get("Template") or {}
        if template.get("TemplateArn"):
            resources.append(template["TemplateArn"])
        elif template.get("TemplateName"):
            resources.append(_arn("ses", region, f"template/{template['TemplateName']}"))
        return [(action, r) for r in resources] or [(action, "*")]
    if "EmailIdentity" in params:
        return [(action, _arn("ses", region, f"identity/{params['EmailIdentity']}"))]
    if "ConfigurationSetName" in params:
        return [(action, _arn("ses", region, f"configuration-set/{params['ConfigurationSetName']}"))]
    if "TemplateName" in params:
        return [(action, _arn("ses", region, f"template/{params['TemplateName']}"))]
    return [(action, "*")]


def _states(op: str, params: dict[str, Any], region: str) -> list[Need]:
    action = f"states:{op}"
    for key in ("stateMachineArn", "executionArn", "mapRunArn", "activityArn"):
        if key in params:
            return [(action, str(params[key]))]
    return [(action, "*")]  # SendTaskSuccess/Failure/Heartbeat: a task token is not a resource IAM can name


def _lambda(op: str, params: dict[str, Any], region: str) -> list[Need]:
    action = "lambda:InvokeFunction" if op in ("Invoke", "InvokeAsync", "InvokeWithResponseStream") else f"lambda:{op}"
    name = params.get("FunctionName")
    if not name:
        return [(action, "*")]
    name = str(name)
    if ":function:" in name and not name.startswith("arn:"):  # a partial ARN: ACCOUNT:function:NAME
        name = f"arn:{PARTITION}:lambda:{region}:{name}"
    elif not name.startswith("arn:"):
        name = _arn("lambda", region, f"function:{name}")
    if params.get("Qualifier") and name.count(":") == 6:
        name = f"{name}:{params['Qualifier']}"
    return [(action, name)]


def _secretsmanager(op: str, params: dict[str, Any], region: str) -> list[Need]:
    # The template resolves a secret's Ref to its ARN without AWS's random suffix, and the code passes that: the
    # request and the policy name the secret the same way.
    secret = params.get("SecretId")
    if not secret:
        return [(f"secretsmanager:{op}", "*")]
    secret = str(secret)
    return [(f"secretsmanager:{op}", secret if secret.startswith("arn:") else _arn("secretsmanager", region,
                                                                                       f"secret:{secret}"))]


def _kms(op: str, params: dict[str, Any], region: str) -> list[Need]:
    key = params.get("KeyId")
    if not key:
        return [(f"kms:{op}", "*")]
    key = str(key)
    return [(f"kms:{op}", key if key.startswith("arn:") else _arn("kms", region, key if key.startswith("alias/")
                                                                     else f"key/{key}"))]


def _events(op: str, params: dict[str, Any], region: str) -> list[Need]:
    if op == "PutEvents":
        buses = {str(e.get("EventBusName") or "default") for e in params.get("Entries") or []} or {"default"}
        return [("events:PutEvents", b if b.startswith("arn:") else _arn("events", region, f"event-bus/{b}"))
                for b in sorted(buses)]
    return [(f"events:{op}", "*")]


_RESOURCES = {"dynamodb": _dynamodb, "s3": _s3, "sqs": _sqs, "sns": _sns, "sesv2": _sesv2, "stepfunctions": _states,
              "lambda": _lambda, "secretsmanager": _secretsmanager, "kms": _kms, "events": _events}


def needs(service: str, op: str, params: dict[str, Any], region: str, signing_name: str = "") -> list[Need]:
    """The (IAM action, resource) pairs one API call must be allowed, from its botocore service and operation."""
    if (service, op) in UNCHECKED:
        return []
    mapper = _RESOURCES.get(service)
    if mapper is not None:
        return mapper(op, params, region)
    return [(f"{IAM_PREFIX.get(service, signing_name or service)}:{op}", "*")]


# The error each service answers a denied call with (botocore's code, HTTP status), per its API reference's
# Common Errors; SQS's JSON protocol sends AccessDeniedException with x-amzn-query-error "AccessDenied;Sender",
# which botocore reports as the code AccessDenied.
DENIAL_ERRORS = {
    "dynamodb": ("AccessDeniedException", 400),
    "s3": ("AccessDenied", 403),
    "sqs": ("AccessDenied", 403),
    "sns": ("AuthorizationError", 403),
    "sesv2": ("AccessDeniedException", 403),
    "stepfunctions": ("AccessDeniedException", 400),
    "lambda": ("AccessDeniedException", 403),
    "secretsmanager": ("AccessDeniedException", 400),
    "kms": ("AccessDeniedException", 400),
    "events": ("AccessDeniedException", 400),
}


def denial_response(service: str, message: str, request_id: str) -> dict[str, Any]:
    """A denied call's parsed error response, as botocore's parser builds it for that service."""
    code, status = DENIAL_ERRORS.get(service, ("AccessDeniedException", 400))
    error: dict[str, Any] = {"Code": code, "Message": message}
    if service == "sqs":
        error |= {"QueryErrorCode": "AccessDeniedException", "Type": "Sender"}
    if service in ("s3", "sns"):
        error["Type"] = "Sender"
    return {"Error": error, "ResponseMetadata": {"RequestId": request_id, "HTTPStatusCode": status,
                                                 "HTTPHeaders": {}, "RetryAttempts": 0}}
