"""The import's progress bar on a terminal: done of total, the rate, the time left (rich)."""

import io

from rich.console import Console

from sesflow.contacts_cli import Progress


def test_the_bar_shows_rows_done_of_the_total_and_the_rate():
    out = io.StringIO()
    bar = Progress(1000, "importing into news", True, console=Console(file=out, force_terminal=True, width=120))
    bar.advance(250, 250)
    bar._bar.refresh()
    bar.close()
    shown = out.getvalue()
    assert "importing into news" in shown and "250/1000" in shown and "rows/s" in shown and "ETA" in shown


def test_no_bar_when_output_is_not_a_terminal():
    bar = Progress(10, "x", False)
    bar.advance(5, 5)
    bar.close()
    assert bar._bar is None

