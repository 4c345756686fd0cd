"""SAM CLI on template.yaml: `sam validate --lint` and `sam build`, offline, from .venv-sam.

The build goes to a temporary folder (never .aws-sam/ in the tree) and runs once for the module. SAM CLI
needs an interpreter for the template's Runtime on PATH: the test interpreter's folder is put first (the
project requires Python 3.11, the Runtime is python3.11).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sesflow.engine.template import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAM = ROOT / ".venv-sam" / "bin" / "sam"

pytestmark = [
    pytest.mark.sam,
    pytest.mark.skipif(
        not SAM.exists(), reason=f"SAM CLI is not at {SAM.relative_to(ROOT)} (`make setup` installs it there)"
    ),
]


def run_sam(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    return subprocess.run(
        [str(SAM), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit code {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    build_dir = tmp_path_factory.mktemp("sam") / "build"
    result = run_sam("build", "--template-file", str(TEMPLATE), "--build-dir", str(build_dir), timeout=600)
    return result, build_dir


def test_sam_validate_lint_passes() -> None:
    result = run_sam("validate", "--lint", "--template-file", str(TEMPLATE), timeout=300)
    assert result.returncode == 0, f"sam validate --lint failed on template.yaml: {output(result)}"


@pytest.mark.slow
def test_sam_build_succeeds(build: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    result, build_dir = build
    assert result.returncode == 0, f"sam build failed: {output(result)}"
    assert (build_dir / "template.yaml").is_file(), f"sam build wrote no template.yaml in {build_dir}"


@pytest.mark.slow
def test_sam_build_packages_each_function_with_its_handler_and_powertools(
    build: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, build_dir = build
    if result.returncode != 0:
        pytest.fail(f"sam build failed (see test_sam_build_succeeds): {output(result)}")
    problems = []
    for function in load_template(TEMPLATE).of_type("AWS::Serverless::Function"):
        folder = build_dir / function.logical_id
        handler_file = function.properties["Handler"].rsplit(".", 1)[0].replace(".", "/") + ".py"
        expected = {
            "app/handlers/": folder / "app" / "handlers",
            handler_file: folder / handler_file,
            "aws_lambda_powertools/": folder / "aws_lambda_powertools",
        }
        problems += [f"{function.logical_id}/ has no {n}" for n, p in expected.items() if not p.exists()]
        if (folder / "sesflow").exists():
            problems.append(f"{function.logical_id}/ ships the sesflow package (the local engine)")
    assert not problems, f"sam build output in {build_dir}: " + "; ".join(problems)
