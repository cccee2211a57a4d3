"""Smoke test of bench/bench_admission.py: tiny sizes, a real node, no timing assertions."""

from __future__ import annotations

import pytest

from bench import bench_admission


def test_hot_path_counts_calls() -> None:
    row = bench_admission.hot_path(calls=2000, rounds=1)
    assert row["calls"] == 2000 and row["bare_ns_per_call"] > 0
    assert row["admission_ns_per_call"] > 0


@pytest.mark.timeout(240)
def test_overload_run_reports_admitted_and_refused() -> None:
    out = bench_admission.run_overload(seconds=1.0, connections=40)
    for name in ("with_admission", "without_admission"):
        row = out[name]
        assert row["admitted_rps"] > 0 and row["admitted_p99_ms"] is not None
        assert row["other_statuses"] == {}
        assert row["refused_503"] == row["refused_with_retry_after"]
    assert out["without_admission"]["refused_503"] == 0
