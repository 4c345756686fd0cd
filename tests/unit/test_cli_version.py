"""`sesflow --version`."""

from importlib import metadata

import pytest

from sesflow.cli import main


def test_sesflow_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"sesflow {metadata.version('sesflow')}\n"
