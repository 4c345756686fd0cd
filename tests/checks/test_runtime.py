"""The Lambda runtime and what the functions ship: the same Python and SDK the tests run with.

The functions call SES v2 with fields newer than the SDK some Lambda runtimes bundle, so boto3 and botocore are
pinned in functions/requirements.txt (sam build packages them with each function) to exactly the versions of the
test environment. The template's Runtime must be a Python the project supports (pyproject's requires-python).
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from sesflow.engine.template import load_template
from tests.conftest import ROOT

REQUIREMENTS = ROOT / "functions" / "requirements.txt"


def pinned(path) -> dict[str, str]:
    """name -> exact version of each `name==version` line (other requirement lines map to "")."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            exact = [s.version for s in requirement.specifier if s.operator == "=="]
            found[requirement.name.lower()] = exact[0] if exact else ""
    return found


@pytest.mark.parametrize("package", ["boto3", "botocore", "idna", "tzdata"])
def test_function_requirements_pin_the_sdk_version_the_tests_run_with(package: str) -> None:
    versions = pinned(REQUIREMENTS)
    assert versions.get(package), (
        f"functions/requirements.txt does not pin {package} exactly: the functions would run with the Lambda "
        f"runtime's bundled SDK, not the one the tests use")
    assert versions[package] == importlib.metadata.version(package), (
        f"functions/requirements.txt pins {package}=={versions[package]}, the tests run with "
        f"{importlib.metadata.version(package)}")


def test_function_runtime_is_a_python_the_project_supports() -> None:
    runtimes = {f.properties["Runtime"] for f in load_template(ROOT / "template.yaml").of_type(
        "AWS::Serverless::Function")}
    supported = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    for runtime in runtimes:
        match = re.fullmatch(r"python(\d+\.\d+)", runtime)
        assert match, f"Runtime {runtime} is not a Python runtime"
        assert supported.contains(f"{match[1]}.0"), f"Runtime {runtime} is outside requires-python {supported}"


def test_makefile_can_pick_the_function_runtimes_python() -> None:
    runtimes = {f.properties["Runtime"] for f in load_template(ROOT / "template.yaml").of_type(
        "AWS::Serverless::Function")}
    makefile = (ROOT / "Makefile").read_text()
    line = next(line for line in makefile.splitlines() if line.startswith("PYTHON :="))
    candidates = re.findall(r"python\d+\.\d+", line)
    assert runtimes <= set(candidates), f"the Makefile picks PYTHON among {candidates}, never {sorted(runtimes)}"
