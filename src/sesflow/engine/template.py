"""template.yaml as the local engine sees it: parameters, conditions, Globals and intrinsics resolved.

The engine deploys exactly what `sam deploy` would, so nothing here is sesflow-specific: physical names
are derived like CloudFormation's (stack-LogicalId-SUFFIX, stable across runs), and every Ref, GetAtt
and Sub resolves to the name or ARN the resource gets when the engine creates it.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

ACCOUNT_ID = "123456789012"  # moto's default account
PARTITION = "aws"
NO_VALUE = object()  # AWS::NoValue: the key or list item disappears

_SUB_VAR = re.compile(r"\$\{([^!}][^}]*)\}")
_GLOBALS_SECTIONS = {
    "Function": "AWS::Serverless::Function",
    "StateMachine": "AWS::Serverless::StateMachine",
    "SimpleTable": "AWS::Serverless::SimpleTable",
}


class TemplateError(ValueError):
    """The template cannot be resolved; the message names the resource or property."""


@dataclass
class Resource:
    logical_id: str
    type: str
    properties: dict[str, Any]
    physical_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Template:
    path: Path
    stack_name: str
    region: str
    parameters: dict[str, Any]
    conditions: dict[str, bool]
    resources: dict[str, Resource]
    outputs: dict[str, Any]

    @property
    def root(self) -> Path:
        return self.path.parent

    def of_type(self, *types: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type in types]


def load_template(
    path: str | Path,
    *,
    stack_name: str = "sesflow-local",
    region: str = "us-east-1",
    parameter_overrides: dict[str, Any] | None = None,
) -> Template:
    path = Path(path)
    try:
        raw = cfn_yaml.load(str(path))
    except Exception as error:  # cfn-lint raises several decode errors; all mean "cannot read"
        raise TemplateError(f"{path}: cannot be read as a CloudFormation template: {error}") from error
    return _Resolver(path, raw, stack_name, region, parameter_overrides or {}).resolve()


def _physical_id(stack_name: str, logical_id: str, max_len: int, lower: bool = False) -> str:
    """stack-LogicalId-SUFFIX as CloudFormation names things, truncated to the service's limit."""
    suffix = hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()[:12].upper()
    head = f"{stack_name}-{logical_id}"[: max_len - len(suffix) - 1]
    name = f"{head}-{suffix}"
    return name.lower() if lower else name


class _Resolver:
    def __init__(self, path: Path, raw: dict[str, Any], stack_name: str, region: str, overrides: dict[str, Any]):
        if not isinstance(raw, dict) or not isinstance(raw.get("Resources"), dict):
            raise TemplateError(f"{path}: a template needs a Resources mapping")
        self.path, self.raw, self.stack_name, self.region = path, raw, stack_name, region
        self.pseudo = {
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Region": region,
            "AWS::Partition": PARTITION,
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{region}:{ACCOUNT_ID}:stack/{stack_name}/local",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        self.parameters = self._parameters(overrides)
        self.mappings = raw.get("Mappings", {})
        self.conditions: dict[str, bool] = {}
        self.resources: dict[str, Resource] = {}

    # ---------------------------------------------------------------- top level
    def resolve(self) -> Template:
        for name in self.raw.get("Conditions", {}):
            self._condition(name)
        raw_resources = {
            logical_id: self._with_globals(body)
            for logical_id, body in self.raw["Resources"].items()
            if "Condition" not in body or self._condition(body["Condition"])
        }
        for logical_id, body in list(raw_resources.items()):  # what SAM generates that a template may name
            url_config = (body.get("Properties") or {}).get("FunctionUrlConfig")
            if body.get("Type") == "AWS::Serverless::Function" and url_config:
                raw_resources[f"{logical_id}Url"] = {"Type": "AWS::Lambda::Url", "Properties": {
                    **url_config, "TargetFunctionArn": {"Ref": logical_id}}}
        for logical_id, body in raw_resources.items():  # names first: intrinsics may point anywhere
            self.resources[logical_id] = self._name(logical_id, body)
        for logical_id, body in raw_resources.items():
            self.resources[logical_id].properties = self._value(
                body.get("Properties", {}), f"Resources.{logical_id}.Properties"
            )
        outputs = {}
        for name, body in self.raw.get("Outputs", {}).items():
            if "Condition" in body and not self._condition(body["Condition"]):
                continue
            outputs[name] = self._value(body["Value"], f"Outputs.{name}")
        return Template(self.path, self.stack_name, self.region, self.parameters, self.conditions,
                        self.resources, outputs)

    def _parameters(self, overrides: dict[str, Any]) -> dict[str, Any]:
        declared = self.raw.get("Parameters", {})
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise TemplateError(f"parameter override {', '.join(unknown)}: not a parameter of {self.path.name}")
        values = {}
        for name, spec in declared.items():
            if name in overrides:
                value = overrides[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise TemplateError(f"Parameters.{name}: has no Default; pass a value for it")
            allowed = spec.get("AllowedValues")
            if allowed is not None and str(value) not in [str(a) for a in allowed]:
                raise TemplateError(f"Parameters.{name}: {value!r} is not one of {allowed}")
            if spec.get("Type") == "Number":
                value = str(value)  # Ref to a Number parameter yields a string, as in CloudFormation
            elif spec.get("Type", "").startswith("List<") or spec.get("Type") == "CommaDelimitedList":
                value = value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
            values[name] = value
        return values

    def _with_globals(self, body: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(body)
        for section, rtype in _GLOBALS_SECTIONS.items():
            defaults = self.raw.get("Globals", {}).get(section)
            if defaults and body.get("Type") == rtype:
                body["Properties"] = _merge_globals(defaults, body.get("Properties") or {})
        return body

    def _name(self, logical_id: str, body: dict[str, Any]) -> Resource:
        """Physical id and GetAtt values, as the engine will create the resource."""
        rtype, props = body.get("Type", ""), body.get("Properties") or {}
        region, acct, p = self.region, ACCOUNT_ID, PARTITION

        def explicit(key: str, default: str) -> str:
            return str(self._value(props[key], f"Resources.{logical_id}.{key}")) if key in props else default

        attrs: dict[str, str] = {}
        if rtype == "AWS::DynamoDB::Table" or rtype == "AWS::Serverless::SimpleTable":
            name = explicit("TableName", _physical_id(self.stack_name, logical_id, 255))
            arn = f"arn:{p}:dynamodb:{region}:{acct}:table/{name}"
            attrs = {"Arn": arn, "StreamArn": f"{arn}/stream/local"}
            physical = name
        elif rtype == "AWS::S3::Bucket":
            physical = explicit("BucketName", _physical_id(self.stack_name, logical_id, 63, lower=True))
            attrs = {"Arn": f"arn:{p}:s3:::{physical}", "DomainName": f"{physical}.s3.amazonaws.com"}
        elif rtype == "AWS::SQS::Queue":
            name = explicit("QueueName", _physical_id(self.stack_name, logical_id, 80))
            physical = f"https://sqs.{region}.amazonaws.com/{acct}/{name}"
            attrs = {"Arn": f"arn:{p}:sqs:{region}:{acct}:{name}", "QueueName": name, "QueueUrl": physical}
        elif rtype == "AWS::SNS::Topic":
            name = explicit("TopicName", _physical_id(self.stack_name, logical_id, 256))
            physical = f"arn:{p}:sns:{region}:{acct}:{name}"
            attrs = {"TopicArn": physical, "TopicName": name}
        elif rtype in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            physical = explicit("FunctionName", _physical_id(self.stack_name, logical_id, 64))
            attrs = {"Arn": f"arn:{p}:lambda:{region}:{acct}:function:{physical}"}
        elif rtype in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            name = explicit("Name", _physical_id(self.stack_name, logical_id, 80))
            physical = f"arn:{p}:states:{region}:{acct}:stateMachine:{name}"
            attrs = {"Arn": physical, "Name": name}
        elif rtype == "AWS::SES::ConfigurationSet":
            physical = explicit("Name", _physical_id(self.stack_name, logical_id, 64))
        elif rtype == "AWS::CloudWatch::Alarm":
            physical = explicit("AlarmName", _physical_id(self.stack_name, logical_id, 255))
            attrs = {"Arn": f"arn:{p}:cloudwatch:{region}:{acct}:alarm:{physical}"}
        elif rtype == "AWS::CloudWatch::Dashboard":
            physical = explicit("DashboardName", _physical_id(self.stack_name, logical_id, 255))
        elif rtype == "AWS::Logs::LogGroup":
            physical = explicit("LogGroupName", f"/aws/{self.stack_name}/{logical_id}")
            attrs = {"Arn": f"arn:{p}:logs:{region}:{acct}:log-group:{physical}:*"}
        elif rtype == "AWS::Lambda::Url":  # SAM's <Function>Url of FunctionUrlConfig; AWS picks a random url id
            url_id = hashlib.sha256(f"{self.stack_name}/{logical_id}".encode()).hexdigest()[:32]
            physical = f"https://{url_id}.lambda-url.{region}.on.aws/"
            attrs = {"FunctionUrl": physical}
        elif rtype == "AWS::SecretsManager::Secret":  # a partial ARN (AWS appends -XXXXXX); GetSecretValue takes it
            physical = f"arn:{p}:secretsmanager:{region}:{acct}:secret:" + explicit(
                "Name", _physical_id(self.stack_name, logical_id, 256))
            attrs = {"Id": physical}
        elif rtype == "AWS::KMS::Key":  # AWS draws a random key id; a stable one here, derived like the names
            digest = hashlib.sha256(f"{self.stack_name}/{logical_id}".encode()).hexdigest()
            physical = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
            attrs = {"Arn": f"arn:{p}:kms:{region}:{acct}:key/{physical}", "KeyId": physical}
        elif rtype == "AWS::Events::Rule":
            physical = explicit("Name", _physical_id(self.stack_name, logical_id, 64))
            attrs = {"Arn": f"arn:{p}:events:{region}:{acct}:rule/{physical}"}
        else:
            physical = f"{self.stack_name}-{logical_id}"
            attrs = {"Arn": f"arn:{p}:local:{region}:{acct}:{logical_id}"}
        return Resource(logical_id, rtype, {}, physical, attrs, body.get("Metadata") or {})

    # ---------------------------------------------------------------- intrinsics
    def _condition(self, name: str) -> bool:
        if name not in self.conditions:
            body = self.raw.get("Conditions", {}).get(name)
            if body is None:
                raise TemplateError(f"Conditions.{name}: is used but not declared")
            self.conditions[name] = bool(self._value(body, f"Conditions.{name}"))
        return self.conditions[name]

    def _value(self, node: Any, where: str) -> Any:
        if isinstance(node, list):
            items = [self._value(item, f"{where}[{i}]") for i, item in enumerate(node)]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                return self._intrinsic(key, arg, where)
        resolved = {k: self._value(v, f"{where}.{k}") for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _intrinsic(self, key: str, arg: Any, where: str) -> Any:
        if key == "Ref":
            return self._ref(arg, where)
        if key == "Condition":
            return self._condition(arg)
        if key == "Fn::GetAtt":
            logical_id, attr = arg.split(".", 1) if isinstance(arg, str) else arg
            return self._getatt(logical_id, self._value(attr, where), where)
        if key == "Fn::Sub":
            return self._sub(arg, where)
        if key == "Fn::Join":
            sep, items = arg
            return self._value(sep, where).join(str(i) for i in self._value(items, where))
        if key == "Fn::Select":
            index, items = self._value(arg, where)
            try:
                return items[int(index)]
            except (IndexError, ValueError, TypeError) as error:
                raise TemplateError(f"{where}: Fn::Select index {index!r} is not in {items!r}") from error
        if key == "Fn::Split":
            sep, text = self._value(arg, where)
            return str(text).split(sep)
        if key == "Fn::If":
            name, then, otherwise = arg
            return self._value(then if self._condition(name) else otherwise, where)
        if key == "Fn::Equals":
            left, right = self._value(arg, where)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self._value(arg[0], where)
        if key == "Fn::And":
            return all(self._value(a, where) for a in arg)
        if key == "Fn::Or":
            return any(self._value(a, where) for a in arg)
        if key == "Fn::FindInMap":
            name, top, second = self._value(arg, where)
            try:
                return self.mappings[name][top][second]
            except KeyError as error:
                raise TemplateError(f"{where}: Fn::FindInMap {name}.{top}.{second} is not in Mappings") from error
        if key == "Fn::GetAZs":
            return [f"{self.region}{z}" for z in "abc"]
        if key == "Fn::Base64":
            import base64

            return base64.b64encode(str(self._value(arg, where)).encode()).decode()
        raise TemplateError(f"{where}: intrinsic {key} is not supported by the local engine")

    def _ref(self, name: str, where: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources:
            return self.resources[name].physical_id
        raise TemplateError(f"{where}: Ref {name} names no parameter or resource")

    def _getatt(self, logical_id: str, attr: str, where: str) -> str:
        resource = self.resources.get(logical_id)
        if resource is None:
            raise TemplateError(f"{where}: Fn::GetAtt {logical_id}.{attr}: no resource {logical_id}")
        if attr not in resource.attributes:
            raise TemplateError(
                f"{where}: Fn::GetAtt {logical_id}.{attr}: {resource.type} has no attribute {attr} "
                f"(the engine knows {sorted(resource.attributes)})"
            )
        return resource.attributes[attr]

    def _sub(self, arg: Any, where: str) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self._value(arg[1], where))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return str(self._getatt(*name.split(".", 1), where))
            return str(self._ref(name, where))

        return _SUB_VAR.sub(replace, text).replace("${!", "${")


def _merge_globals(defaults: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    """SAM's rule: maps merge (resource wins), lists concatenate, scalars are replaced."""
    merged = copy.deepcopy(defaults)
    for key, value in props.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge_globals(merged[key], value)
        elif isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = merged[key] + value
        else:
            merged[key] = value
    return merged
