"""SAM CLI on template.yaml: `sam validate --lint` and `sam build`, offline, from .venv-sam.

The build goes to a temporary folder (never .aws-sam/ in the tree) and runs once for the module. SAM CLI
builds without a container with the interpreter named like the template's Runtime (python3.13) found on PATH,
and refuses to build when there is none ("Binary validation failed for python"). The test puts first on PATH the
folder of one that runs: the test interpreter when it is that version, else one on PATH, else one of pyenv's
versions (a pyenv shim on PATH runs only the versions pyenv has selected); with none, the build tests skip, naming
what to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import cache
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


def runtime() -> str:
    runtimes = {f.properties["Runtime"] for f in load_template(TEMPLATE).of_type("AWS::Serverless::Function")}
    assert len(runtimes) == 1, f"the functions use several runtimes {sorted(runtimes)}: build each with its own"
    return runtimes.pop()


def _runs(path: str | Path) -> bool:
    try:
        return subprocess.run([str(path), "-c", ""], capture_output=True, timeout=30, check=False).returncode == 0
    except OSError:
        return False


@cache
def runtime_interpreter() -> Path | None:
    """A runnable interpreter named like the Runtime (python3.13), for SAM CLI to find on PATH."""
    name = runtime()
    if f"python{sys.version_info.major}.{sys.version_info.minor}" == name:
        return Path(sys.executable)
    candidates = [shutil.which(name)]
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False).stdout.strip()
        candidates += sorted(Path(root).glob(f"versions/{name.removeprefix('python')}*/bin/{name}"), reverse=True)
    return next((Path(c) for c in candidates if c and _runs(c)), None)


def run_sam(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    interpreter = runtime_interpreter()
    first = [str(interpreter.parent)] if interpreter else []
    env = {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PATH": os.pathsep.join([*first, os.environ.get("PATH", "")]),
    }
    return subprocess.run(
        [str(SAM), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit code {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    if runtime_interpreter() is None:
        pytest.skip(f"no runnable {runtime()} here (on PATH or in pyenv): sam build needs one for the Runtime "
                    f"{runtime()} (install it, e.g. `pyenv install {runtime().removeprefix('python')}`)")
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
