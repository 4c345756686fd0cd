"""asl-validator (npm, pinned in package.json) on every state machine of template.yaml after DefinitionSubstitutions:
a second, independent reading of the ASL beside statelint (test_asl_lint.py).

asl-validator 4.0.0 validates JSONata states by JSON schema: QueryLanguage, Arguments, Output, Assign, Condition,
Items, ItemSelector, the Wait's Seconds/Timestamp and a Task's TimeoutSeconds; each "{% ... %}" string there is
compiled by the jsonata package (a syntax error fails); JSONPath fields (InputPath, Parameters, ResultPath,
ResultSelector...) in a JSONata state fail; plus transitions (missing targets, unreachable states, terminal
states) and Resource ARNs. It does not check (each tried on a copy of campaign.asl.json): a Catch rule at all
(its Output and Assign expressions, unknown fields), a Retry's JitterStrategy or unknown fields or an empty
ErrorEquals, ItemReader.ReaderConfig.InputType, a JSONPath `Variable` in a JSONata Choice rule, a "{%...%}"
written without the spaces after "{%" and before "%}" (taken as a plain string), or the meaning of any
expression (it is compiled, never evaluated). No flag is needed for this ASL: the default path and ARN checks
pass on the substituted definitions.

`make test` installs it (node_modules/.installed, `npm ci` from package-lock.json); without Node.js the tests skip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sesflow.engine.template import Resource
from tests.checks.test_asl_lint import deployed_definition, state_machines

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"


def validate(definition: dict[str, Any], tmp_path: Path, name: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js (node and npm) is not installed: asl-validator cannot run")
    assert VALIDATOR.exists(), f"{VALIDATOR.relative_to(ROOT)} is missing: run `make node` (make test does)"
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(definition))
    return subprocess.run([str(VALIDATOR), "--json-path", str(path)], capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.mark.parametrize("machine", state_machines(), ids=lambda r: r.logical_id)
def test_state_machine_passes_asl_validator(machine: Resource, tmp_path: Path) -> None:
    run = validate(deployed_definition(machine), tmp_path, machine.logical_id)
    where = f"{machine.logical_id} ({machine.properties['DefinitionUri']})"
    assert run.returncode == 0, f"{where}, asl-validator (exit {run.returncode}):\n{run.stdout}{run.stderr}"


def test_asl_validator_reports_problems_when_a_jsonata_expression_is_broken(tmp_path: Path) -> None:
    machine = next(m for m in state_machines() if m.logical_id == "CampaignStateMachine")
    definition = deployed_definition(machine)
    definition["States"]["ValidateCampaign"]["Assign"]["campaign"] = "{% $states.result.Payload.( %}"
    run = validate(definition, tmp_path, "broken")
    assert run.returncode == 1, f"asl-validator passed a broken expression:\n{run.stdout}{run.stderr}"
    assert "/States/ValidateCampaign/Assign/campaign" in run.stdout + run.stderr
