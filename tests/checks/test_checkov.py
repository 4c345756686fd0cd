"""checkov on template.yaml: no finding but those tests/checks/checkov_baseline.yaml accepts, each with its reason.

checkov (Prisma Cloud's IaC scanner, https://www.checkov.io/) is a second opinion independent of cfn-lint and of
these checks. It pins its own boto3, so it lives in its own environment: .venv-checkov, built from pyproject's
dependency group `checkov` (`python3 -m venv .venv-checkov && .venv-checkov/bin/pip install --upgrade pip &&
.venv-checkov/bin/pip install --group checkov`), or any checkov on PATH.

checkov evaluates the template's Conditions with the parameters' defaults, so it is run once over the default
template and once over a copy whose FeedbackRoute defaults to eventbridge (the rule, its dead-letter queue). One
checkov process scans both (and a third copy, the control, that must draw a finding the baseline does not list).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

TEMPLATE = ROOT / "template.yaml"
BASELINE = ROOT / "tests" / "checks" / "checkov_baseline.yaml"
ROUTE_DEFAULT = "  FeedbackRoute:\n    Type: String\n    Default: sns\n"
PUBLIC_ACCESS_BLOCK = re.compile(r"      PublicAccessBlockConfiguration:\n(        .*\n){4}")

pytestmark = pytest.mark.slow  # importing checkov alone takes seconds


def checkov() -> str | None:
    local = ROOT / ".venv-checkov" / "bin" / "checkov"
    return str(local) if local.exists() else shutil.which("checkov")


def baseline() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(BASELINE.read_text())


@pytest.fixture(scope="module")
def findings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[tuple[str, str]]]:
    """file name -> {(check id, logical id)} of every failed check."""
    command = checkov()
    if command is None:
        pytest.skip("checkov is not installed: python3 -m venv .venv-checkov && .venv-checkov/bin/pip install "
                    "--upgrade pip && .venv-checkov/bin/pip install --group checkov (pyproject's dependency group)")
    text = TEMPLATE.read_text()
    assert text.count(ROUTE_DEFAULT) == 1, "FeedbackRoute's declaration changed: update ROUTE_DEFAULT"
    assert len(PUBLIC_ACCESS_BLOCK.findall(text)) == 1, "ManifestBucket's public access block changed"
    folder = tmp_path_factory.mktemp("checkov")
    (folder / "sns.yaml").write_text(text)
    (folder / "eventbridge.yaml").write_text(text.replace(ROUTE_DEFAULT, ROUTE_DEFAULT.replace("sns", "eventbridge")))
    (folder / "control.yaml").write_text(PUBLIC_ACCESS_BLOCK.sub("", text))
    result = subprocess.run(
        [command, "-d", str(folder), "--framework", "cloudformation", "-o", "json", "--quiet", "--skip-download"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov wrote no JSON report (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    report = report[0] if isinstance(report, list) else report
    assert not report["summary"].get("parsing_errors"), f"checkov could not parse: {report['summary']}"
    found: dict[str, set[tuple[str, str]]] = {"sns.yaml": set(), "eventbridge.yaml": set(), "control.yaml": set()}
    for failure in report["results"]["failed_checks"]:
        found[Path(failure["file_path"]).name].add((failure["check_id"], failure["resource"].rsplit(".", 1)[-1]))
    return found


def accepted() -> set[tuple[str, str]]:
    return {(check, resource) for check, entry in baseline().items() for resource in entry["resources"]}


def test_every_baseline_entry_gives_its_reason() -> None:
    lacking = [check for check, entry in baseline().items() if len(str(entry.get("reason") or "").split()) < 8]
    assert not lacking, f"{BASELINE.name}: entries without a reason: {lacking}"


@pytest.mark.parametrize("variant", ["sns.yaml", "eventbridge.yaml"])
def test_checkov_finds_nothing_the_baseline_does_not_accept(findings, variant: str) -> None:
    new = sorted(findings[variant] - accepted())
    assert not new, (f"checkov on template.yaml ({variant.removesuffix('.yaml')} route) finds what "
                     f"{BASELINE.name} does not accept: fix it, or add it there with its reason:\n"
                     + "\n".join(f"  {check} on {resource}" for check, resource in new))


def test_baseline_accepts_only_what_checkov_still_finds(findings) -> None:
    stale = sorted(accepted() - findings["sns.yaml"] - findings["eventbridge.yaml"])
    assert not stale, f"{BASELINE.name} accepts findings checkov no longer reports; remove them: {stale}"


def test_checkov_reports_a_finding_outside_the_baseline_when_the_bucket_loses_its_public_access_block(
    findings,
) -> None:
    new = findings["control.yaml"] - accepted()
    assert {resource for _, resource in new} == {"ManifestBucket"}, new
