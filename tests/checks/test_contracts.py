"""Drift between statemachines/*.asl.json and the contracts of functions/app/contracts.py.

For each lambda:invoke Task calling ${<Name>FunctionArn}, the models are <Name>Input and <Name>Result:
- the keys of its Arguments.Payload, or, when the Payload is `{% $states.input %}` (or `$merge([$states.input,
  {'key': ...}])`) and the state's input is one known object (a Map's ItemSelector, also when a loop brings it
  back), its keys (and the merged ones), are the input model's fields: every required one present, none unknown; and a
  value that is a single path to something of known shape ("{% $audience.holdout %}") is of the field's shape (a
  string, number or boolean, an array, or the same model). The first state of a state machine that passes
  `$states.input` sends the execution input, which no file fixes: the handler's from_dict checks it at run time;
- every path the ASL reads from a result names a field the result model has: `$states.result.Payload.X` in the
  Task's Assign and Output; `$var.X` for a variable a Lambda Task assigned from its result (Assign
  `{"audience": "{% $states.result.Payload %}"}` types $audience as SnapshotAudienceResult), anywhere in the same
  state machine (a Distributed Map's children are their own); and `$states.input.X` in the states after a Task
  whose Output is its result (through Choice, Pass and Wait states that keep their input), when every way into
  the state brings the same result.
Paths follow the models' field types: a nested model, an array (`[...]`, or JSONata's mapping over it), a
dict[str, X] (any key) or a Campaign (the keys Campaign.to_dict() gives the sample campaigns of events/campaign/).
A field typed Any, and a path into something no Lambda returned (a DynamoDB result, a Catch's error output), is
not checked. A variable also assigned by other states (ResumeCampaign parses $audience and $decision back from
the campaign's item; ValidateCampaign sets $decision to {}) keeps the type of the Lambda result it copies.
JSONata is read with regular expressions over `$states.result.Payload`, `$states.input` and `$<variable>`
followed by `.name` and `[...]` steps; what is inside the brackets is scanned for its own paths.
"""

from __future__ import annotations

import copy
import json
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import MISSING, fields
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from app import contracts
from app.domain.campaign import Campaign

from tests.checks.asl_walk import iter_states

ROOT = Path(__file__).resolve().parents[2]
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
FUNCTION_ARN = re.compile(r"^\$\{([A-Za-z0-9]+)FunctionArn\}$")
ROOT_REFERENCE = re.compile(r"\$(?:states\.(?P<states>result\.Payload|input)|(?P<var>[A-Za-z_]\w*))(?![\w(])")
IDENT = re.compile(r"\.([A-Za-z_]\w*)")
WHOLE = re.compile(r"^\{%\s*\$states\.result\.Payload((?:\.[A-Za-z_]\w*)*)\s*%\}$")
STATES_INPUT = re.compile(r"^\{%\s*\$states\.input\s*%\}$")
# $states.input with literal keys added: "{% $merge([$states.input, {'child_started_at': ...}]) %}"
MERGED_INPUT = re.compile(r"^\{%\s*\$merge\(\[\s*\$states\.input\s*,\s*\{(?P<body>[^{}]*)\}\s*\]\)\s*%\}$")
LITERAL_KEY = re.compile(r"""(?:^|,)\s*(['"])(?P<key>[^'"]+)\1\s*:""")
NESTED = ("ItemProcessor", "Iterator", "Branches")


def asl_files() -> list[Path]:
    return sorted((ROOT / "statemachines").glob("*.asl.json"))


# ------------------------------------------------------------------------------ shapes


class Shape:
    """What a path can step into: fields (an object with known keys), item (an array), value (any key), a leaf
    (a str, int, float or bool: no step), or nothing known (opaque: the path is not checked further)."""

    def __init__(self, name: str, fields: dict[str, Shape] | None = None, item: Shape | None = None,
                 value: Shape | None = None, leaf: str | None = None) -> None:
        self.name, self.fields, self.item, self.value, self.leaf = name, fields, item, value, leaf

    def step(self, segment: str) -> tuple[Shape | None, str | None]:
        """(the shape after `segment`, or None: unchecked from here; a problem, or None)."""
        if segment == "[]":
            return (self.item, None) if self.item is not None else (self, None)  # a filter on a single value
        if self.item is not None:  # JSONata maps a step over an array
            return self.item.step(segment)
        if self.fields is not None:
            if segment in self.fields:
                return self.fields[segment], None
            return None, f"{self.name} has no field {segment!r} (fields: {', '.join(self.fields)})"
        if self.value is not None:
            return self.value, None
        if self.leaf:
            return None, f"{self.name} is a value, it has no field {segment!r}"
        return None, None


OPAQUE = Shape("any")


@cache
def shape_of(tp: Any, name: str) -> Shape:
    """The shape of a type (one object per type: the input walk compares them by identity)."""
    if tp is Campaign:
        return campaign_shape()
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [t for t in typing.get_args(tp) if t is not type(None)]
        return shape_of(options[0], name)
    if origin in (tuple, list):
        return Shape(name, item=shape_of(typing.get_args(tp)[0], f"{name}[]"))
    if origin is dict:
        return Shape(name, value=shape_of(typing.get_args(tp)[1], f"{name}.*"))
    if isinstance(tp, type) and issubclass(tp, contracts.Contract):
        hints = contracts.hints(tp)
        return Shape(tp.__name__, fields={f.name: shape_of(hints[f.name], f"{tp.__name__}.{f.name}")
                                          for f in fields(tp)})  # type: ignore[arg-type]
    if tp in (str, int, float, bool):
        return Shape(name, leaf=tp.__name__)
    return OPAQUE


def json_shape(value: Any, name: str, into: Shape | None = None) -> Shape:
    """The shape of a JSON value, merged into `into` (the union of the keys every sample has)."""
    if isinstance(value, dict):
        shape = into if into is not None and into.fields is not None else Shape(name, fields={})
        for key, inner in value.items():
            shape.fields[key] = json_shape(inner, f"{name}.{key}", shape.fields.get(key))  # type: ignore[index]
        return shape
    if isinstance(value, list):
        shape = into if into is not None and into.item is not None else Shape(name, item=None)
        for inner in value:
            shape.item = json_shape(inner, f"{name}[]", shape.item)
        if shape.item is None:
            shape.item = OPAQUE
        return shape
    return into if into is not None else Shape(name, leaf=None if value is None else type(value).__name__)


@cache
def campaign_shape() -> Shape:
    shape = None
    for sample in sorted((ROOT / "events" / "campaign").glob("*.json")):
        campaign = contracts.ValidateCampaignInput.from_dict(json.loads(sample.read_text())).campaign
        shape = json_shape(campaign.to_dict(), "Campaign", shape)
    assert shape is not None, "events/campaign/ has no sample campaign to read Campaign's keys from"
    return shape


def models(function: str) -> tuple[type[contracts.Contract], type[contracts.Contract]]:
    found = [getattr(contracts, f"{function}{kind}", None) for kind in ("Input", "Result")]
    missing = [f"{function}{kind}" for kind, model in zip(("Input", "Result"), found, strict=True) if model is None]
    assert not missing, f"app/contracts.py has no {' or '.join(missing)} for {function}Function"
    return found[0], found[1]  # type: ignore[return-value]


def required(model: type[contracts.Contract]) -> set[str]:
    return {f.name for f in fields(model)  # type: ignore[arg-type]
            if f.default is MISSING and f.default_factory is MISSING}


# ------------------------------------------------------------------------------ reading JSONata


def expressions(node: Any) -> Iterator[str]:
    """Every JSONata string in a state (not in the states nested in it: they are walked on their own)."""
    if isinstance(node, str):
        if node.lstrip().startswith("{%"):
            yield node
    elif isinstance(node, list):
        for item in node:
            yield from expressions(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key not in NESTED:
                yield from expressions(value)


def _bracket_end(text: str, start: int) -> int:
    """The index after the `]` that closes the `[` at start (quoted strings skipped)."""
    depth, i, quote = 0, start, None
    while i < len(text):
        c = text[i]
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def references(text: str) -> Iterator[tuple[str, list[str]]]:
    """(root, steps) of each path: root "result" ($states.result.Payload), "input" ($states.input) or a variable
    name; steps are field names and "[]"."""
    for match in ROOT_REFERENCE.finditer(text):
        root = {"result.Payload": "result", "input": "input"}.get(match["states"] or "", match["var"])
        if root is None or root == "states":
            continue
        steps, i = [], match.end()
        while i < len(text):
            ident = IDENT.match(text, i)
            if ident:
                steps.append(ident[1])
                i = ident.end()
            elif text[i] == "[":
                steps.append("[]")
                i = _bracket_end(text, i)
            else:
                break
        yield root, steps


def walk(shape: Shape | None, steps: list[str]) -> tuple[Shape | None, str | None]:
    """(the shape at the end of the path, or None if not known; the first problem on the way, or None)."""
    for step in steps:
        if shape is None:
            return None, None
        shape, problem = shape.step(step)
        if problem:
            return None, problem
    return shape, None


def resolve(shape: Shape, steps: list[str]) -> str | None:
    return walk(shape, steps)[1]


def mismatch(expected: Shape, given: Shape) -> bool:
    """A value of shape `given` cannot be a field of shape `expected` (False where either is not known)."""
    if expected is OPAQUE or given is OPAQUE or given is expected:
        return False
    if expected.leaf or given.leaf:
        return not (expected.leaf == given.leaf or (expected.leaf == "float" and given.leaf == "int"))
    if expected.fields is not None and given.fields is not None:
        return expected.name != given.name
    return (expected.item is None) != (given.item is None)


LEAVES = {"str": "a string", "int": "a whole number", "float": "a number", "bool": "a boolean"}


def describe(shape: Shape) -> str:
    if shape.fields is not None:
        return shape.name
    return LEAVES.get(shape.leaf or "", shape.leaf or "") if shape.leaf else "an array" if shape.item else "an object"


# ------------------------------------------------------------------------------ walking the ASL


def blocks(states: dict[str, Any], start: str, path: str = "States") -> Iterator[tuple[str, dict[str, Any], str,
                                                                                      Any]]:
    """(path, states, StartAt, the Map state over it or None) of each block whose variables are its own: the
    state machine, and each Distributed Map's children (an Inline Map's or a Parallel's share their parent's)."""
    yield path, states, start, None
    for where, state in iter_states(states, path):
        processor = state.get("ItemProcessor") or {}
        if processor.get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED":
            yield (f"{where}.ItemProcessor.States", processor.get("States", {}), processor.get("StartAt"), state)


def own_states(states: dict[str, Any], path: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(path, name, state) of the block's states, into Inline Maps and Parallels but not Distributed Maps."""
    for name, state in states.items():
        yield f"{path}.{name}", name, state
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor and processor.get("ProcessorConfig", {}).get("Mode") != "DISTRIBUTED":
            yield from own_states(processor.get("States", {}), f"{path}.{name}.ItemProcessor.States")
        for i, branch in enumerate(state.get("Branches", [])):
            yield from own_states(branch.get("States", {}), f"{path}.{name}.Branches[{i}].States")


def function_of(state: dict[str, Any]) -> str | None:
    if state.get("Type") != "Task" or state.get("Resource") != LAMBDA_INVOKE:
        return None
    name = (state.get("Arguments") or {}).get("FunctionName")
    match = FUNCTION_ARN.match(name) if isinstance(name, str) else None
    assert match, f"a lambda:invoke Task names its function by ${{<Name>FunctionArn}}, not {name!r}"
    return match[1]


UNSEEN, MIXED = object(), object()  # no way in found yet; ways in that bring different things


def input_shapes(states: dict[str, Any], start: str, start_shape: Shape | None) -> dict[str, Shape | None]:
    """The shape of each top-level state's input in one block, where every way into it brings the same one."""
    def output(name: str, incoming: Any) -> Any:
        state = states[name]
        function = function_of(state)
        if function:
            if isinstance(state.get("Output"), str) and STATES_INPUT.match(state["Output"]):
                return incoming
            whole = WHOLE.match(state["Output"]) if isinstance(state.get("Output"), str) else None
            if not whole:
                return MIXED
            shape: Shape | None = shape_of(models(function)[1], f"{function}Result")
            for step in IDENT.findall(whole[1]):
                shape = shape.step(step)[0] if shape is not None else None
            return shape if shape is not None else MIXED
        if state.get("Type") in ("Choice", "Pass", "Wait") and "Output" not in state:
            return incoming
        return MIXED

    def targets(state: dict[str, Any]) -> Iterator[str]:
        yield from [state["Next"]] if "Next" in state else []
        yield from [rule["Next"] for rule in state.get("Choices", [])]
        yield from [state["Default"]] if "Default" in state else []

    inputs: dict[str, Any] = {name: UNSEEN for name in states}
    inputs[start] = start_shape if start_shape is not None else MIXED
    caught = {rule["Next"] for state in states.values() for rule in state.get("Catch", [])}
    for name in caught:
        inputs[name] = MIXED  # an error output
    changed = True
    while changed:
        changed = False
        for name, state in states.items():
            if inputs[name] is UNSEEN:
                continue
            out = output(name, inputs[name])
            for target in targets(state):
                now = inputs[target]
                joined = out if now is UNSEEN else now if now is out else MIXED
                if joined is not now:
                    inputs[target], changed = joined, True
    return {name: value if isinstance(value, Shape) else None for name, value in inputs.items()}


SINGLE_PATH = re.compile(r"^\{%\s*(\$[^\s?:&=<>!+*/(),{}]+)\s*%\}$")  # one path, no operator or call


class Scope:
    """What a block's expressions can read: its typed variables, and the known input of each of its states."""

    def __init__(self, variables: dict[str, Shape], inputs: dict[str, Shape | None]) -> None:
        self.variables, self.inputs = variables, inputs

    def shape(self, state: str, text: Any) -> Shape | None:
        """The shape of `text` read in `state` when it is a single path with a known start; else None."""
        match = SINGLE_PATH.match(text) if isinstance(text, str) else None
        found = list(references(match[1])) if match else []
        if not found or found[0][0] == "result":  # found[0] spans the text; the rest are inside its brackets
            return None
        root, steps = found[0]
        start = self.inputs.get(state) if root == "input" else self.variables.get(root)
        return walk(start, steps)[0]


def typed_variables(own: list[tuple[str, str, dict[str, Any]]], problems: list[str]) -> dict[str, Shape]:
    """Each variable a Lambda Task assigns from its result, with the shape of what it assigns."""
    variables: dict[str, Shape] = {}
    for where, _, state in own:
        function = function_of(state)
        for name, value in (state.get("Assign") or {}).items() if function else ():
            whole = WHOLE.match(value) if isinstance(value, str) else None
            shape = walk(shape_of(models(function)[1], f"{function}Result"), IDENT.findall(whole[1]))[0] \
                if whole else None
            if shape is None:
                continue
            if name in variables and variables[name].name != shape.name:
                problems.append(f"{where}.Assign.{name}: ${name} is already {variables[name].name}, here {shape.name}")
            variables.setdefault(name, shape)
    return variables


def contract_problems(definition: dict[str, Any]) -> list[str]:
    """Every way the definition's lambda:invoke Tasks differ from app/contracts.py."""
    problems: list[str] = []
    outer: dict[int, tuple[Scope, str]] = {}  # a Distributed Map's scope (its parent's) and name, by id
    for path, states, start, map_state in blocks(definition["States"], definition["StartAt"]):
        own = list(own_states(states, path))
        selector = (map_state or {}).get("ItemSelector")
        start_shape = None
        if isinstance(selector, dict):  # each item: the ItemSelector's keys, with what they read in the parent
            parent, map_name = outer[id(map_state)]
            start_shape = Shape("the Map's ItemSelector", fields={
                key: parent.shape(map_name, value) or OPAQUE for key, value in selector.items()})
        scope = Scope(typed_variables(own, problems), input_shapes(states, start, start_shape))

        for where, name, state in own:
            outer[id(state)] = (scope, name)
            function = function_of(state)
            if function:
                problems += payload_problems(where, function, state, scope, name,
                                             top=map_state is None and name == start)
                result = shape_of(models(function)[1], f"{function}Result")
                for key in ("Assign", "Output"):
                    for text in expressions(state.get(key)):
                        problems += [f"{where}.{key}: $states.result.Payload.{'.'.join(steps)}: {problem}"
                                     for root, steps in references(text) if root == "result"
                                     for problem in [resolve(result, steps)] if problem]
            for text in expressions(state):
                for root, steps in references(text):
                    shape = scope.inputs.get(name) if root == "input" else scope.variables.get(root)
                    problem = resolve(shape, steps) if shape is not None and root != "result" else None
                    if problem:
                        shown = "$states.input" if root == "input" else f"${root}"
                        problems.append(f"{where}: {shown}.{'.'.join(steps)}: {problem}")
    return problems


def payload_problems(where: str, function: str, state: dict[str, Any], scope: Scope, name: str,
                     top: bool) -> list[str]:
    """The Payload's keys against the input model's fields, and the shape of each value that is a single path
    against its field's. A Payload of `$states.input` (or `$merge([$states.input, {...}])`) sends the state's
    input: its keys are known where every way into the state brings the same object (a Map's ItemSelector)."""
    model = models(function)[0]
    payload = state["Arguments"].get("Payload")
    merged = MERGED_INPUT.match(payload) if isinstance(payload, str) else None
    whole_input = isinstance(payload, str) and (STATES_INPUT.match(payload) or merged)
    incoming = scope.inputs.get(name)
    if isinstance(payload, dict):
        given, source = {key: scope.shape(name, value) for key, value in payload.items()}, "Arguments.Payload"
    elif whole_input and incoming is not None and incoming.fields is not None:
        given, source = dict(incoming.fields), f"Arguments.Payload (from {incoming.name})"
        if merged:
            given |= {m["key"]: OPAQUE for m in LITERAL_KEY.finditer(merged["body"])}
    elif whole_input and top and not merged:
        return []  # the execution input: the handler's from_dict checks it at run time
    else:
        return [f"{where}.Arguments.Payload: {payload!r:.80} cannot be held to {model.__name__}: make it an object "
                f"of the model's fields, or pass $states.input where it is one known object (a Map's ItemSelector)"]
    problems = []
    known = {f.name: f for f in fields(model)}  # type: ignore[arg-type]
    if set(given) - set(known):
        problems.append(f"{where}: {source} has {sorted(set(given) - set(known))}, not fields of {model.__name__} "
                        f"(fields: {', '.join(sorted(known))})")
    if required(model) - set(given):
        problems.append(f"{where}: {source} lacks {sorted(required(model) - set(given))}, required by "
                        f"{model.__name__}")
    for key, shape in given.items():
        if key in known and shape is not None:
            expected = shape_of(contracts.hints(model)[key], f"{model.__name__}.{key}")
            if mismatch(expected, shape):
                read = shape.name if shape.fields is not None else f"{shape.name}, {describe(shape)}"
                problems.append(f"{where}: {source}.{key} is {read}; {model.__name__}.{key} is {describe(expected)}")
    return problems


# ------------------------------------------------------------------------------ the checks


@pytest.mark.parametrize("asl", asl_files(), ids=lambda p: p.name)
def test_lambda_payloads_and_results_match_their_contracts(asl: Path) -> None:
    problems = contract_problems(json.loads(asl.read_text()))
    assert not problems, f"{asl.name} differs from functions/app/contracts.py:\n" + "\n".join(problems)


def test_every_contract_names_a_function_a_state_machine_invokes() -> None:
    invoked = {function_of(state) for asl in asl_files()
               for _, state in iter_states(json.loads(asl.read_text())["States"])} - {None}
    named = {name.removesuffix(kind) for name in vars(contracts) for kind in ("Input", "Result")
             if name.endswith(kind) and isinstance(getattr(contracts, name), type)}
    assert invoked, "no lambda:invoke Task found in statemachines/"
    assert named == invoked, (f"contracts for functions no state machine invokes: {sorted(named - invoked)}; "
                              f"invoked functions without contracts: {sorted(invoked - named)}")


def _campaign() -> dict[str, Any]:
    return json.loads((ROOT / "statemachines" / "campaign.asl.json").read_text())


def _misspell(definition: dict[str, Any], path: list[Any], old: str, new: str) -> None:
    node = definition
    for key in path[:-1]:
        node = node[key]
    assert old in json.dumps(node[path[-1]]), f"{old!r} is not at {path}: update this test with the ASL"
    if isinstance(node[path[-1]], str):
        node[path[-1]] = node[path[-1]].replace(old, new)
    else:  # a key
        node[path[-1]][new] = node[path[-1]].pop(old)


MISSPELLINGS = [
    pytest.param(["States", "ValidateCampaign", "Assign", "campaign"], "Payload.campaign", "Payload.campain",
                 "'campain'", id="a $states.result.Payload field in Assign"),
    pytest.param(["States", "SnapshotAudience", "Arguments", "Payload"], "execution_name", "execution_nme",
                 "execution_nme", id="a Payload key"),
    pytest.param(["States", "SendPhase", "ItemSelector"], "decision", "decisions", "decisions",
                 id="an ItemSelector key"),
    pytest.param(["States", "SendPhase", "ItemReader", "Arguments", "Key"], "manifest_key", "manifestkey",
                 "'manifestkey'", id="a $audience field"),
    pytest.param(["States", "AfterDecision", "Choices", 1, "Condition"], "$decision.remainder",
                 "$decision.remainders", "'remainders'", id="a $decision field in a Choice"),
    pytest.param(["States", "WaitEvaluationWindow", "Seconds"], "ab.evaluation_seconds", "ab.evaluation_second",
                 "'evaluation_second'", id="a $campaign field"),
    pytest.param(["States", "Halted", "Cause"], "halt.reason", "halt.reasons", "'reasons'",
                 id="a result field read as $states.input two states later"),
    pytest.param(["States", "FinalizeCampaign", "Arguments", "Payload", "holdout"], "$audience.holdout",
                 "$audience.holdouts", "'holdouts'", id="a $audience field in a Payload"),
    pytest.param(["States", "SendPhase", "ItemProcessor", "States", "WaitForSendRate", "Seconds"],
                 "$outcome.wait_seconds", "$outcome.wait_second", "'wait_second'",
                 id="a result field of a variable in a Map's child"),
    pytest.param(["States", "SendPhase", "ItemProcessor", "States", "SendBatch", "Arguments", "Payload"],
                 "'child_started_at'", "'child_start_at'", "child_start_at", id="a key merged into the input"),
]


@pytest.mark.parametrize(("path", "old", "new", "named"), MISSPELLINGS)
def test_contract_check_fails_when_a_copy_of_the_asl_misspells_a_field(path: list[Any], old: str, new: str,
                                                                       named: str) -> None:
    definition = copy.deepcopy(_campaign())
    assert not contract_problems(definition)
    _misspell(definition, path, old, new)
    problems = contract_problems(definition)
    assert any(named in p for p in problems), f"misspelling {old!r} as {new!r} went unnoticed: {problems}"


def test_contract_check_fails_when_a_required_payload_key_is_missing() -> None:
    definition = copy.deepcopy(_campaign())
    del definition["States"]["FinalizeCampaign"]["Arguments"]["Payload"]["recipients"]
    problems = contract_problems(definition)
    assert any("lacks ['recipients']" in p and "FinalizeCampaignInput" in p for p in problems), problems


def test_contract_check_follows_a_model_when_a_field_is_added(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check is driven by the models: a field the ASL reads that the model lacks fails, and passes once the
    model has it."""
    definition = copy.deepcopy(_campaign())
    child = definition["States"]["SendPhase"]["ItemProcessor"]["States"]["SendBatch"]
    child["Assign"]["resume_at"] = "{% $states.result.Payload.resume_at %}"
    problems = contract_problems(definition)
    assert any("SendBatchResult has no field 'resume_at'" in p for p in problems), problems

    @contracts.dataclass(frozen=True)
    class SendBatchResult(contracts.SendBatchResult):
        resume_at: str | None = contracts.omitted_at_default(None)

    monkeypatch.setattr(contracts, "SendBatchResult", SendBatchResult)
    assert not contract_problems(definition)


WRONG_VALUES = [
    pytest.param(["States", "FinalizeCampaign", "Arguments", "Payload", "holdout"], "$audience.holdout",
                 "$audience.holdout_key", "FinalizeCampaignInput.holdout is a whole number",
                 id="a string for a number"),
    pytest.param(["States", "PickWinner", "Arguments", "Payload", "campaign"], "$campaign", "$audience",
                 "PickWinnerInput.campaign is Campaign", id="another model"),
    pytest.param(["States", "SendPhase", "ItemSelector", "phase"], "].name", "].batches",
                 "SendBatchInput.phase is a string", id="a number for a string in the ItemSelector"),
]


@pytest.mark.parametrize(("path", "old", "new", "named"), WRONG_VALUES)
def test_contract_check_fails_when_a_copy_of_the_asl_passes_a_field_of_the_wrong_shape(path: list[Any], old: str,
                                                                                       new: str, named: str) -> None:
    definition = copy.deepcopy(_campaign())
    _misspell(definition, path, old, new)
    problems = contract_problems(definition)
    assert any(named in p for p in problems), f"passing {new!r} for {old!r} went unnoticed: {problems}"
