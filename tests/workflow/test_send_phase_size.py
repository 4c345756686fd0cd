"""A phase larger than the Map's result limit would allow without a ResultWriter: 5,000 batches (250,000 recipients;
children outputting SendBatch's answer, ~80 bytes each, would pass 256 KiB at about 3,300). benchmarks/send_phase.py
runs the same check at 20,000 batches, a million recipients."""

import pytest

from sesflow.engine.limits import PAYLOAD_LIMIT_BYTES
from sesflow.engine.phase_check import run_send_phase


@pytest.mark.slow
def test_a_phase_of_5000_batches_stays_within_every_limit_when_children_output_nothing():
    small, large = run_send_phase(100), run_send_phase(5_000)

    assert (large["status"], large["error"]) == ("SUCCEEDED", None)
    assert large["children"]["succeeded"] == 5_000 and large["children"]["timedOut"] == 0
    assert large["parent_history_events"] == small["parent_history_events"] < 20  # the same, whatever the size
    assert large["largest_parent_payload_bytes"] == small["largest_parent_payload_bytes"] < 1_000
    assert large["largest_child_input_bytes"] < PAYLOAD_LIMIT_BYTES / 64
