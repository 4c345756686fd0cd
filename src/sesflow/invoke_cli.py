"""`sesflow invoke FUNCTION -e EVENT`: one function of template.yaml run once on the embedded engine, with `sam local
invoke`'s flags and no Docker.

    sesflow invoke ValidateCampaignFunction -e events/validate_campaign/valid.json
    echo '{"id": "x"}' | sesflow invoke ValidateCampaignFunction -e -
    sesflow invoke SendBatchFunction -e events/send_batch/two_recipients.json -n env.json --data .sesflow/data

The stack is deployed in this process (a second or two), as `sesflow local up` deploys it, and the function is
invoked through Lambda's Invoke API on it: its handler runs in-process from CodeUri with the template's
environment, its Timeout, MemorySize and its role's permissions (engine/patches/lambda_bridge.py), and every AWS
call it makes reaches that stack's tables, queues and simulated SES. `--data DIR` first loads what a served
engine saved there (`sesflow local up --serve --data DIR`); nothing is written back.

The function's result goes to stdout (its JSON payload, as `sam local invoke` prints it); whatever it logs or
prints goes to stderr. A function that raised prints Lambda's error payload (errorType, errorMessage, stackTrace)
on stdout, the error type and message on stderr, and exits 1. Bad input (no such function, an event or env-vars
file that is not JSON, a template that does not load) exits 2 before anything runs.

-n/--env-vars takes sam's file: {"FunctionLogicalId": {"VAR": "value"}} for one function (its logical id or its
function name) and {"Parameters": {"VAR": "value"}} for all; the function's own entry wins. As with sam, only
variables the function's Environment declares in the template are overridden; the others are named on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from sesflow.files import read_json_object, read_text

FUNCTION_TYPE = "AWS::Serverless::Function"


class InvokeError(ValueError):
    """Bad input to `sesflow invoke`: the message names the file, the field or the function."""


def register(commands: Any) -> None:
    invoke = commands.add_parser(
        "invoke", help="run one function of template.yaml on the embedded engine (sam local invoke, no Docker)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    invoke.add_argument("function", nargs="?", metavar="FUNCTION_LOGICAL_ID",
                        help="the function's logical id (or its function name); optional if the template has one")
    invoke.add_argument("-e", "--event", metavar="PATH",
                        help="JSON file of the event; '-' reads it from stdin (default: no event, {})")
    invoke.add_argument("-n", "--env-vars", metavar="PATH",
                        help='JSON file of environment variables: {"FunctionLogicalId": {"VAR": "value"}} or '
                             '{"Parameters": {"VAR": "value"}}, as sam local invoke takes it')
    invoke.add_argument("--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE",
                        help="template parameters: KEY=VALUE or ParameterKey=KEY,ParameterValue=VALUE")
    invoke.add_argument("-t", "--template", "--template-file", default="template.yaml",
                        help="the SAM template (default: template.yaml)")
    invoke.add_argument("--region", default="us-east-1", help="the local stack's region (default: us-east-1)")
    invoke.add_argument("--data", metavar="DIR", default=None,
                        help="load a served engine's saved state first (sesflow local up --serve --data DIR); "
                             "read only")
    invoke.set_defaults(func=run)


def parameters(pairs: list[str]) -> dict[str, str]:
    """--parameter-overrides in both of sam's forms: KEY=VALUE, and ParameterKey=KEY,ParameterValue=VALUE."""
    values = {}
    for pair in pairs:
        if pair.startswith("ParameterKey="):
            fields = dict(part.partition("=")[::2] for part in pair.split(",", 1))
            if set(fields) != {"ParameterKey", "ParameterValue"} or not fields["ParameterKey"]:
                raise InvokeError(f"--parameter-overrides: {pair!r} is not ParameterKey=KEY,ParameterValue=VALUE")
            values[fields["ParameterKey"]] = fields["ParameterValue"]
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvokeError(f"--parameter-overrides takes KEY=VALUE pairs, got {pair!r}")
        values[key] = value
    return values


def read_event(path: str | None, stdin: Any = None) -> Any:
    if path is None:
        return {}
    name = "stdin" if path == "-" else path
    if path == "-":
        try:
            text = (stdin or sys.stdin).read()
        except UnicodeDecodeError as error:
            raise InvokeError(f"--event {name}: not UTF-8 text (byte {error.start})") from None
    else:
        text = read_text(path, error=InvokeError, label=f"--event {name}")
    try:
        return json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as error:
        raise InvokeError(f"--event {name}: not JSON ({error.msg} at line {error.lineno}, column {error.colno})") \
            from None


def read_env_vars(path: str | None) -> dict[str, dict[str, str]]:
    """sam's env-vars file: an object of objects of variable -> value (strings, numbers or booleans)."""
    if path is None:
        return {}
    data = read_json_object(path, 'an object of {"FunctionLogicalId" or "Parameters": {"VAR": "value"}}',
                            error=InvokeError, label=f"--env-vars {path}")
    found: dict[str, dict[str, str]] = {}
    for scope, variables in data.items():
        if not isinstance(variables, dict):
            raise InvokeError(f'--env-vars {path}: {scope}: an object of variable -> value, e.g. {{"STAGE": "dev"}}')
        for name, value in variables.items():
            if isinstance(value, dict | list) or value is None:
                raise InvokeError(f"--env-vars {path}: {scope}.{name}: {json.dumps(value)} is not a string, "
                                  f"number or boolean")
        found[scope] = {name: str(value).lower() if isinstance(value, bool) else str(value)
                        for name, value in variables.items()}
    return found


def run(args: argparse.Namespace) -> int:
    from sesflow.engine import data_dir
    from sesflow.engine.template import TemplateError, load_template

    try:
        overrides = parameters(args.parameter_overrides)
        event = read_event(args.event)
        env_vars = read_env_vars(args.env_vars)
        template = load_template(Path(args.template), stack_name="sesflow-local", region=args.region,
                                 parameter_overrides=overrides)
        functions = {r.logical_id: r for r in template.of_type(FUNCTION_TYPE)}
        logical_id = pick(args.function, functions, args.template)
        saved = data_dir.manifest(Path(args.data)) if args.data else None
        if args.data and saved is None:
            raise InvokeError(f"--data {args.data}: nothing saved there yet (sesflow local up --serve --data "
                              f"{args.data} writes it when it stops)")
    except (InvokeError, TemplateError, OSError, data_dir.DataDirError) as error:
        print(f"sesflow invoke: {error}", file=sys.stderr)
        return 2
    return invoke(args, overrides, event, env_vars, logical_id, saved)


def pick(asked: str | None, functions: dict[str, Any], template: str) -> str:
    """The function's logical id, from its logical id or its function name; the only one if none is asked."""
    known = ", ".join(sorted(functions)) or "none"
    if asked is None:
        if len(functions) == 1:
            return next(iter(functions))
        raise InvokeError(f"{template} has {len(functions)} functions: name one ({known})")
    if asked in functions:
        return asked
    by_name = [lid for lid, r in functions.items() if asked in (r.physical_id, r.properties.get("FunctionName"))]
    if by_name:
        return by_name[0]
    raise InvokeError(f"no function {asked} in {template}; its functions: {known}")


def invoke(args: argparse.Namespace, overrides: dict[str, str], event: Any, env_vars: dict[str, dict[str, str]],
           logical_id: str, saved: dict[str, Any] | None) -> int:
    from sesflow.engine import data_dir
    from sesflow.engine.patches import lambda_bridge
    from sesflow.engine.stack import LocalStack
    from sesflow.engine.template import TemplateError

    out = sys.stdout
    stack = LocalStack(template_path=Path(args.template), parameters=overrides, region=args.region,
                       ses_identities=(overrides.get("SenderIdentity", "example.com"),),
                       # the function logs at the template's level, as sam local invoke shows it; no X-Ray, no EMF
                       lambda_env_overrides={"POWERTOOLS_TRACE_DISABLED": "true",
                                             "POWERTOOLS_METRICS_DISABLED": "true"})
    # What the function prints or logs goes to stderr: stdout is its result only.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            stack.up()
        except (TemplateError, OSError) as error:
            print(f"sesflow invoke: {error}", file=sys.stderr)
            return 2
        try:
            if saved is not None:
                data_dir.load(stack, Path(args.data), saved)
            resource = stack.resource(logical_id)
            spec = lambda_bridge.function(resource.physical_id)
            apply_env_vars(spec, env_vars, logical_id, resource)
            response = stack.client("lambda").invoke(FunctionName=resource.physical_id,
                                                     Payload=json.dumps(event).encode())
            payload = response["Payload"].read().decode()
        except data_dir.DataDirError as error:
            print(f"sesflow invoke: {error}", file=sys.stderr)
            return 2
        finally:
            stack.down()
    print(payload, file=out, flush=True)
    if response.get("FunctionError"):
        try:
            error = json.loads(payload)
        except json.JSONDecodeError:
            error = {}
        error = error if isinstance(error, dict) else {}
        print(f"sesflow invoke: {logical_id} failed: {error.get('errorType', 'Unknown')}: "
              f"{error.get('errorMessage', payload)}", file=sys.stderr)
        return 1
    return 0


def apply_env_vars(spec: Any, env_vars: dict[str, dict[str, str]], logical_id: str, resource: Any) -> None:
    """Override the function's variables as sam does: Parameters for all, then its own entry (by logical id or
    function name); only variables its Environment declares. The others are named on stderr, not set."""
    declared = set((resource.properties.get("Environment") or {}).get("Variables") or {})
    given = dict(env_vars.get("Parameters", {}))
    for key in (resource.physical_id, resource.properties.get("FunctionName"), logical_id):  # lowest first
        if key and key in env_vars:
            given |= env_vars[key]
    ignored = sorted(set(given) - declared)
    if ignored:
        print(f"sesflow invoke: --env-vars: {', '.join(ignored)} not in {logical_id}'s Environment in the template, "
              f"so not set (sam local invoke overrides declared variables only)", file=sys.stderr)
    spec.environment.update({k: v for k, v in given.items() if k in declared})
