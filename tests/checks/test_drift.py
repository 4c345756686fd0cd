"""Drift between template.yaml, the ASL files and the code in functions/ (STYLE items 1, 2 and 7).

Each check reads the files as they are; nothing is deployed or executed except the handler imports.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from sesflow.engine.template import Resource, Template, load_template
from tests.checks.asl_walk import iter_states

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = ROOT / "functions"
ERRORS_MODULE = "app.errors"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")  # the same syntax the engine substitutes

# Fail-state Error names that are outcomes decided by the workflow itself, not raised by any code, so no
# class in app/errors.py can exist for them. Each one is part of the contract with whoever starts the
# execution (operator, CLI), so it is listed here on purpose and reviewed like code; an entry no ASL uses
# any more is a failure too, so the list cannot rot.
WORKFLOW_OUTCOMES = {
    "CampaignAlreadyRunning": "ClaimCampaign's conditional put found the campaign id already claimed",
    "CampaignNotResumable": "ResumeCampaign found the campaign neither PAUSED, HALTED nor FAILED (or with no audience)",
    "CampaignHalted": "the breaker halted the campaign: the execution ends with its numbers in the cause",
    "CampaignFailed": "SES refused the send in a way no retry fixes, or a batch failed for good: the execution ends "
                      "with SES's code and message in the cause",
    "BatchDeferred": "a SendPhase child must wait longer than its five minutes allow: the campaign's execution waits",
}


@cache
def template() -> Template:
    return load_template(ROOT / "template.yaml")


def functions() -> list[Resource]:
    return template().of_type("AWS::Serverless::Function")


def state_machines() -> list[Resource]:
    return [r for r in template().of_type("AWS::Serverless::StateMachine") if "DefinitionUri" in r.properties]


def asl_text(machine: Resource) -> str:
    return (ROOT / machine.properties["DefinitionUri"]).read_text()




def snake(name: str) -> str:
    """SendBatch -> send_batch, SESFeedback -> ses_feedback."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


@cache
def domain_errors() -> dict[str, type[BaseException]]:
    """The exception classes defined in functions/app/errors.py, by name."""
    module = importlib.import_module(ERRORS_MODULE)
    return {
        name: obj
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, Exception) and obj.__module__ == ERRORS_MODULE
    }


def by_id(resources: list[Resource]) -> dict[str, Any]:
    return {"argvalues": resources, "ids": [r.logical_id for r in resources]}


# ------------------------------------------------------------------------------ ASL <-> template


@pytest.mark.parametrize("machine", **by_id(state_machines()))
def test_asl_placeholders_match_definition_substitutions(machine: Resource) -> None:
    uri = machine.properties["DefinitionUri"]
    used = set(PLACEHOLDER.findall(asl_text(machine)))
    keys = set(machine.properties.get("DefinitionSubstitutions") or {})
    problems = []
    if used - keys:
        problems.append(f"placeholders with no DefinitionSubstitutions key: {sorted(used - keys)}")
    if keys - used:
        problems.append(f"DefinitionSubstitutions keys the ASL never uses: {sorted(keys - used)}")
    assert not problems, f"{machine.logical_id} ({uri}): " + "; ".join(problems)


def _spellings(t: Template) -> dict[str, Any]:
    """STYLE item 1: a substitution key is <LogicalId><Attribute> (or a parameter name) -> its value."""
    values: dict[str, Any] = dict(t.parameters)
    for r in t.resources.values():
        values.update({f"{r.logical_id}{attr}": value for attr, value in r.attributes.items()})
        ref = r.physical_id
        kind = "Arn" if ref.startswith("arn:") else "Url" if ref.startswith("https://") else "Name"
        values.setdefault(f"{r.logical_id}{kind}", ref)  # what !Ref gives, spelled by its kind
    return values


@pytest.mark.parametrize("machine", **by_id(state_machines()))
def test_substitution_keys_spell_the_resource_they_resolve_to(machine: Resource) -> None:
    spellings = _spellings(template())
    problems = []
    for key, value in (machine.properties.get("DefinitionSubstitutions") or {}).items():
        if key not in spellings:
            problems.append(f"{key} spells no <LogicalId>Arn/Name/Url or parameter (STYLE item 1)")
        elif str(value) != str(spellings[key]):
            problems.append(f"{key} resolves to {value!r}, but {key} is {spellings[key]!r}")
    assert not problems, f"{machine.logical_id}.DefinitionSubstitutions: " + "; ".join(problems)


# ------------------------------------------------------------------------------ handlers


@pytest.mark.parametrize("function", **by_id(functions()))
def test_handler_imports_from_its_code_uri(function: Resource) -> None:
    name = function.logical_id
    handler, code_uri = function.properties.get("Handler"), function.properties.get("CodeUri")
    assert isinstance(handler, str) and "." in handler, f"{name}: Handler {handler!r} is not module.function"
    assert isinstance(code_uri, str), f"{name}: CodeUri {code_uri!r} is not a local folder"
    code_dir = (ROOT / code_uri).resolve()
    module_name, attr = handler.rsplit(".", 1)

    spec = importlib.util.find_spec(module_name)
    assert spec is not None and spec.origin, f"{name}: Handler module {module_name} is not importable"
    origin = Path(spec.origin).resolve()
    assert origin.is_relative_to(code_dir), (
        f"{name}: {module_name} imports from {origin}, not from CodeUri {code_uri} "
        f"(Lambda only has CodeUri on its path; is pytest's pythonpath the CodeUri?)"
    )
    module = importlib.import_module(module_name)
    fn = getattr(module, attr, None)
    assert callable(fn), f"{name}: {module_name} has no callable {attr} (Handler {handler})"
    try:
        inspect.signature(fn).bind(object(), object())
    except TypeError as error:
        pytest.fail(f"{name}: {handler} cannot be called as (event, context): {error}")


def test_functions_never_import_sesflow() -> None:
    """The local engine (package sesflow) is test tooling: code under functions/ must not depend on it."""
    offenders = []
    for path in sorted(FUNCTIONS_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            if any(name == "sesflow" or name.startswith("sesflow.") for name in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, f"functions/ imports the sesflow package at {', '.join(offenders)}"


# ------------------------------------------------------------------------------ error names


def _is_custom_error(name: str) -> bool:
    """The rule for which ErrorEquals/Error names must be classes in app/errors.py.

    - "States.*" are Step Functions' own errors.
    - A dotted name is a namespaced integration or runtime error: "Lambda.ServiceException",
      "DynamoDB.ConditionalCheckFailedException", "SesV2.MessageRejectedException", "sesv2.X",
      "Sandbox.Timedout", "Runtime.ExitError"... A Python class name cannot contain a dot, so a dotted
      name can never be an exception our code raises.
    - Anything else is what a Lambda error is called: the class name of the exception the handler raised.
      It must be one of ours (STYLE item 7), never a built-in such as "KeyError": raise a domain error.
    """
    return not name.startswith("States.") and "." not in name


def _asl_files() -> list[Path]:
    return sorted((ROOT / "statemachines").glob("*.asl.json"))


@pytest.mark.parametrize("asl", _asl_files(), ids=lambda p: p.name)
def test_custom_error_names_in_error_equals_are_domain_errors(asl: Path) -> None:
    definition = json.loads(asl.read_text())
    errors = domain_errors()
    problems = []
    for where, state in iter_states(definition["States"]):
        for kind in ("Retry", "Catch"):
            for i, rule in enumerate(state.get(kind, [])):
                for name in rule.get("ErrorEquals", []):
                    if _is_custom_error(name) and name not in errors:
                        problems.append(f"{where}.{kind}[{i}] matches {name!r}")
    assert not problems, (
        f"{asl.name}: error names with no class in functions/app/errors.py "
        f"(known: {sorted(errors)}): " + "; ".join(problems)
    )


@pytest.mark.parametrize("asl", _asl_files(), ids=lambda p: p.name)
def test_fail_state_errors_are_domain_errors_or_workflow_outcomes(asl: Path) -> None:
    definition = json.loads(asl.read_text())
    errors = domain_errors()
    problems = []
    for where, state in iter_states(definition["States"]):
        if state.get("Type") != "Fail":
            continue
        name = state.get("Error")
        # ErrorPath / a JSONata Error are computed at run time: nothing to compare statically.
        if not isinstance(name, str) or name.startswith("{%") or not _is_custom_error(name):
            continue
        if name not in errors and name not in WORKFLOW_OUTCOMES:
            problems.append(f"{where} fails with {name!r}")
    assert not problems, (
        f"{asl.name}: Fail states with an Error that is neither a class in functions/app/errors.py nor in "
        f"WORKFLOW_OUTCOMES of {Path(__file__).name}: " + "; ".join(problems)
    )


def test_workflow_outcomes_are_used_by_some_fail_state() -> None:
    used = {
        state.get("Error")
        for asl in _asl_files()
        for _, state in iter_states(json.loads(asl.read_text())["States"])
        if state.get("Type") == "Fail"
    }
    stale = sorted(set(WORKFLOW_OUTCOMES) - used)
    assert not stale, f"WORKFLOW_OUTCOMES lists {stale}, used by no Fail state in statemachines/: remove them"


def test_domain_errors_end_with_error() -> None:
    errors = domain_errors()
    assert errors, f"{ERRORS_MODULE} defines no exception class"
    wrong = sorted(name for name in errors if not name.endswith("Error"))
    assert not wrong, f"functions/app/errors.py: {wrong} do not end with 'Error' (STYLE item 7)"


# ------------------------------------------------------------------------------ naming (STYLE item 1)


def test_function_handlers_follow_the_naming_convention() -> None:
    problems = []
    for function in functions():
        match = re.fullmatch(r"([A-Z][A-Za-z0-9]*)Function", function.logical_id)
        if not match:
            problems.append(f"{function.logical_id}: a function's logical id ends with 'Function'")
            continue
        expected = f"app.handlers.{snake(match.group(1))}"
        module = str(function.properties.get("Handler", "")).rsplit(".", 1)[0]
        if module != expected:
            problems.append(f"{function.logical_id}: Handler module is {module!r}, expected {expected!r}")
    assert not problems, "template.yaml: " + "; ".join(problems)


def test_state_machine_definitions_follow_the_naming_convention() -> None:
    problems = []
    for machine in state_machines():
        match = re.fullmatch(r"([A-Z][A-Za-z0-9]*)StateMachine", machine.logical_id)
        if not match:
            problems.append(f"{machine.logical_id}: a state machine's logical id ends with 'StateMachine'")
            continue
        expected = f"statemachines/{snake(match.group(1))}.asl.json"
        uri = machine.properties["DefinitionUri"]
        if uri != expected:
            problems.append(f"{machine.logical_id}: DefinitionUri is {uri!r}, expected {expected!r}")
    assert not problems, "template.yaml: " + "; ".join(problems)


def test_event_folders_name_a_function_or_state_machine() -> None:
    """events/send_batch/ holds SendBatchFunction's sample events (`sam local invoke -e`); events/campaign/
    holds CampaignStateMachine's execution inputs: the same snake_case spelling of one name."""
    folders = sorted(p for p in (ROOT / "events").glob("*") if p.is_dir())
    if not folders:
        pytest.skip("events/ has no <function>/ folders yet: nothing to match")
    names = {snake(f.logical_id.removesuffix("Function")) for f in functions()}
    names |= {snake(m.logical_id.removesuffix("StateMachine")) for m in state_machines()}
    orphans = [f"events/{p.name}/" for p in folders if p.name not in names]
    assert not orphans, f"{orphans} name no function or state machine (expected one of {sorted(names)})"
