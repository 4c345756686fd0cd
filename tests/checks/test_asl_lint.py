"""statelint on every state machine of template.yaml, after DefinitionSubstitutions, as it is deployed.

Linting the substituted definition (not the file) means placeholders never trip the URI checks and no
problem type has to be ignored wholesale. Whether moto's ASL grammar accepts each definition is left to
the engine tests: the engine rewrites the Distributed Map's ExecutionType before moto sees it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from statelint.config import Config
from statelint.linter import Linter

from sesflow.engine.stack import substitute_definition
from sesflow.engine.template import Resource, load_template

ROOT = Path(__file__).resolve().parents[2]
READER_INPUT_TYPES = {"CSV", "JSON", "JSONL", "MANIFEST", "PARQUET"}


@dataclass(frozen=True)
class FalsePositive:
    """A statelint 3.1.0 report about valid ASL, filtered only where `applies` confirms it is that case."""

    pattern: re.Pattern[str]
    applies: Callable[[dict[str, Any], re.Match[str]], bool]
    reason: str


def _node(definition: dict[str, Any], path: str) -> Any:
    """The node statelint names, e.g. "State Machine.States.SendBatches.ItemReader"; None if not found."""
    node: Any = definition
    for part in path.removeprefix("State Machine").strip(".").split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _is_distributed_map(definition: dict[str, Any], match: re.Match[str]) -> bool:
    state = _node(definition, match["path"])
    return (
        isinstance(state, dict)
        and state.get("Type") == "Map"
        and state.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED"
    )


def _is_known_input_type(definition: dict[str, Any], match: re.Match[str]) -> bool:
    config = _node(definition, match["path"])
    return isinstance(config, dict) and config.get("InputType") in READER_INPUT_TYPES


KNOWN_FALSE_POSITIVES = [
    FalsePositive(
        re.compile(r'(?P<path>.+)\.Timestamp is "\{%.*%\}" but should be an RFC3339 timestamp'),
        lambda definition, match: True,
        "a JSONata Wait may compute Timestamp with {% ... %}; statelint only accepts a literal timestamp",
    ),
    FalsePositive(
        re.compile(r'(?P<path>.+)\.(TimeoutSeconds|HeartbeatSeconds|Seconds) is "\{%.*%\}" but should be an Integer'),
        lambda definition, match: True,
        "a JSONata state may compute a Task's TimeoutSeconds and HeartbeatSeconds, and a Wait's Seconds, with "
        "{% ... %}; statelint wants a literal",
    ),
    FalsePositive(
        re.compile(r"(?P<path>.+)\.ToleratedFailurePercentage is \d+\.\d+ but should be an Integer"),
        lambda definition, match: True,
        "AWS takes a number from 0 to 100 and moto's grammar requires a decimal literal (0.0, not 0)",
    ),
    FalsePositive(
        re.compile(r'Field "Label" not allowed in (?P<path>.+)'),
        _is_distributed_map,
        "Label names a Distributed Map's map runs; statelint does not know the field",
    ),
    FalsePositive(
        re.compile(r'Field "InputType" not allowed in (?P<path>.+\.ItemReader\.ReaderConfig)'),
        _is_known_input_type,
        "ReaderConfig.InputType (CSV, JSON, JSONL, MANIFEST, PARQUET) is valid; statelint does not know it",
    ),
]


def real_problems(definition: dict[str, Any]) -> list[str]:
    problems = Linter.validate(definition, Config(evaluate_jsonata=True))
    return [p for p in problems if not any(_known(fp, definition, p) for fp in KNOWN_FALSE_POSITIVES)]


def _known(fp: FalsePositive, definition: dict[str, Any], problem: str) -> bool:
    match = fp.pattern.fullmatch(problem)
    return bool(match) and fp.applies(definition, match)


@cache
def state_machines() -> list[Resource]:
    t = load_template(ROOT / "template.yaml")
    return [r for r in t.of_type("AWS::Serverless::StateMachine") if "DefinitionUri" in r.properties]


def deployed_definition(machine: Resource) -> dict[str, Any]:
    text = (ROOT / machine.properties["DefinitionUri"]).read_text()
    substitutions = machine.properties.get("DefinitionSubstitutions") or {}
    return json.loads(substitute_definition(text, substitutions, machine.logical_id))


@pytest.mark.parametrize("machine", state_machines(), ids=lambda r: r.logical_id)
def test_state_machine_passes_statelint(machine: Resource) -> None:
    problems = real_problems(deployed_definition(machine))
    where = f"{machine.logical_id} ({machine.properties['DefinitionUri']})"
    assert not problems, f"{where}, statelint:\n" + "\n".join(problems)


def test_statelint_reports_problems_when_the_definition_is_broken() -> None:
    broken = {"StartAt": "Greet", "States": {"Greet": {"Type": "Pass", "Next": "Nowhere"}}}
    problems = real_problems(broken)
    assert any('No state found named "Nowhere"' in p for p in problems), f"statelint missed it: {problems}"


def test_known_false_positives_are_still_reported_by_statelint() -> None:
    """Each filter must still be needed: when a statelint upgrade fixes one, delete its entry."""
    sample = {
        "QueryLanguage": "JSONata",
        "StartAt": "Wait",
        "States": {
            "Wait": {"Type": "Wait", "Timestamp": "{% $states.input.at %}", "Next": "Rest"},
            "Rest": {"Type": "Wait", "Seconds": "{% $states.input.seconds %}", "Next": "Park"},
            "Park": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                     "TimeoutSeconds": "{% $states.input.seconds %}", "Next": "Fan",
                     "Arguments": {"QueueUrl": "q", "MessageBody": "{% $states.context.Task.Token %}"}},
            "Fan": {
                "Type": "Map",
                "Label": "Fan",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON"},
                    "Arguments": {"Bucket": "b", "Key": "k"},
                },
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                    "StartAt": "Noop",
                    "States": {"Noop": {"Type": "Pass", "End": True}},
                },
                "ToleratedFailurePercentage": 5.0,
                "End": True,
            },
        },
    }
    problems = Linter.validate(sample, Config(evaluate_jsonata=True))
    unused = [fp.reason for fp in KNOWN_FALSE_POSITIVES if not any(_known(fp, sample, p) for p in problems)]
    assert not unused, f"statelint no longer reports these; remove them from KNOWN_FALSE_POSITIVES: {unused}"
    assert not real_problems(sample), f"the sample is valid ASL: {real_problems(sample)}"
