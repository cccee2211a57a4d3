"""The federation benchmark runs end to end at a small size and reports every number."""

from __future__ import annotations

import math

from bench.bench_federation import run


def test_run_small() -> None:
    result = run(spaces=300, measured=120, observations=3, batch_size=50, repeat=2)
    assert result["results_equal"] is True
    assert result["joined_spaces"] == 120
    assert result["http_requests"] == math.ceil(120 / 50)
    assert result["remote_rows"] == 120  # only the joined spaces came back, not all 300
    for key in ("federated_ms", "merged_in_process_ms", "pull_whole_model_ms"):
        assert result[key] > 0
    assert result["federated_over_merged"] > 0
