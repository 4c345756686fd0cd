"""cfn-lint on template.yaml: no errors, no warnings (the linter of `make lint` and `sam validate --lint`)."""

from __future__ import annotations

from pathlib import Path

from cfnlint.api import lint_file
from cfnlint.match import Match

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


def findings(path: Path) -> list[Match]:
    """Errors (E) and warnings (W); informational rules (I) are off by default, as on the command line."""
    return [m for m in lint_file(path) if m.rule.id[:1] in ("E", "W")]


def describe(matches: list[Match]) -> str:
    return "\n".join(
        f"{Path(m.filename).name}:{m.linenumber}:{m.columnnumber} [{m.rule.id}] {m.message}" for m in matches
    )


def test_template_passes_cfn_lint() -> None:
    matches = findings(TEMPLATE)
    assert not matches, f"cfn-lint reports {len(matches)} problem(s):\n{describe(matches)}"


def test_cfn_lint_reports_errors_when_a_getatt_names_no_attribute(tmp_path: Path) -> None:
    text = TEMPLATE.read_text()
    assert "!GetAtt SendBatchFunction.Arn" in text, "the control needs the GetAtt it breaks; pick another one"
    broken = tmp_path / "template.yaml"
    broken.write_text(text.replace("!GetAtt SendBatchFunction.Arn", "!GetAtt SendBatchFunction.Nope", 1))
    errors = [m for m in findings(broken) if m.rule.id.startswith("E")]
    assert errors, "cfn-lint reported nothing for a GetAtt to an attribute that does not exist"
