"""Smoke test of bench/bench_enforcement.py: it runs and reports both registers (no timing asserts)."""

from __future__ import annotations

from bench.bench_enforcement import run


def test_bench_runs_and_reports_ratio() -> None:
    result = run(policies=40, requests=3, rounds=1, resources=10)
    assert result["policies_in_register"] == 40
    assert result["per_request_us_register"] > 0 and result["per_request_us_single"] > 0
    expected = result["per_request_us_register"] / result["per_request_us_single"]
    assert abs(result["ratio"] - expected) < 0.01
    assert result["within_target"] == (result["ratio"] <= 1.2)
