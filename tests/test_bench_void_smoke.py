"""Smoke test of bench/bench_void.py: tiny sizes, a real runtime, no timing assertions."""

from __future__ import annotations

from bench import bench_void


def test_void_bench_counts_and_serves_from_the_cache() -> None:
    result = bench_void.run(triples=3000, requests=5, rounds=1)
    assert result["void"]["triples"] == result["triples"] >= 3000
    assert result["void"]["classes"] > 0 and result["void"]["properties"] > 0
    assert result["served_ms"] > 0 and result["point_query_ms"] > 0
    # One computation of the statistics; every request after it is a cache hit.
    assert result["cache"]["hits"] >= 5
    assert result["cache"]["misses"] <= 3  # the stats, the VoID body, the description body
