"""Smoke test of the load test (bench/bench_load.py): tiny sizes, real processes, no timings.

The figures are not asserted; what the load test checks is: no 5xx, every request sent was
answered, and the audit entries written during the run equal the requests answered.
"""

from __future__ import annotations

from bench import bench_load, run


def test_load_test_accounts_every_request() -> None:
    result = bench_load.run(seconds=3.0, connections=16, triples=5000, warmup=0.5)
    assert result["answered"] > 0 and result["answered"] == result["sent"]
    assert set(result["statuses"]) == {"sparql", "resource", "catalog"}
    assert all(set(by) == {"200"} for by in result["statuses"].values()), result["statuses"]
    assert result["count_5xx"] == 0
    assert result["audit_entries_written"] == result["answered"]
    assert result["ok"] is True
    assert result["baseline_open_healthz_rps"] > 0 and "ratio_vs_open_healthz" in result


def test_summary_row_says_miss_when_the_counts_differ() -> None:
    load = {"answered": 100, "audit_entries_written": 99, "ok": False, "count_5xx": 0}
    rows = [r for r in run.targets({"bench_load": load}) if r["target"].startswith("load")]
    assert rows and rows[0]["result"] == "MISS" and rows[0]["ratio"] == 0.99
    load.update(audit_entries_written=100, ok=True)
    rows = [r for r in run.targets({"bench_load": load}) if r["target"].startswith("load")]
    assert rows[0]["result"] == "PASS"
