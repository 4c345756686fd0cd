"""ruff over every Python file of the project, with the rules in pyproject.toml."""

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_python_sources_pass_ruff():
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run(
        [str(ruff), "check", "--output-format", "concise", "src", "functions", "tests", "benchmarks"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
