"""The CLI's house: commands against a deployed stack never load the engine (moto), and the CLI modules import
each other one way only."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "src" / "sesflow"


def test_an_operator_command_against_a_deployed_stack_loads_no_moto():
    # Nothing answers at this endpoint: the command fails to find the stack, as it would without a network, and
    # by then the engine must not have been imported.
    probe = (
        "import sys\n"
        "from sesflow.cli import main\n"
        "code = main(['campaign', 'status', 'spring-sale', '--stack', 'sesflow-prod', '--region', 'eu-west-1'])\n"
        "print(code, sorted(m for m in sys.modules if m == 'moto' or m.startswith(('moto.', 'sesflow.engine'))))\n")
    env = {"PATH": "/usr/bin:/bin", "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "AWS_MAX_ATTEMPTS": "1", "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'functions'}"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    code, loaded = done.stdout.strip().split(" ", 1)
    assert code == "1" and "cannot reach CloudFormation" in done.stderr, (done.stdout, done.stderr)
    assert loaded == "[]"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {name.removeprefix("sesflow.") for name in found if name.startswith("sesflow.")}


def test_no_two_cli_modules_import_each_other():
    modules = {p.stem: _imports(p) for p in CLI.glob("*.py")}
    circles = sorted((a, b) for a in modules for b in modules
                     if a < b and b in modules[a] and a in modules[b])
    assert circles == []
