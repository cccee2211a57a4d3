"""Smoke test of the benchmark harness: tiny sizes, real processes, no timing assertions."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyoxigraph as ox
import pytest

from bench import bench_node, run, synth

BASE = "http://127.0.0.1:8100"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_synth_is_deterministic_and_counts_triples(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.nt", tmp_path / "b.nt", tmp_path / "c.nt"
    sa = synth.generate(a, BASE, triples=3000, seed=1)
    sb = synth.generate(b, BASE, triples=3000, seed=1)
    synth.generate(c, BASE, triples=3000, seed=2)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)
    assert sa.triples == sb.triples >= 3000
    store = ox.Store()
    store.bulk_load(path=str(a), format=ox.RdfFormat.N_TRIPLES)
    assert len(store) == sa.triples
    assert sa.buildings and sa.spaces and sa.walls


def test_queries_parse_and_answer(tmp_path: Path) -> None:
    summary = synth.generate(tmp_path / "s.nt", BASE, triples=3000, seed=1)
    store = ox.Store()
    store.bulk_load(path=str(tmp_path / "s.nt"), format=ox.RdfFormat.N_TRIPLES)
    for name, variants in bench_node.queries(summary).items():
        rows = list(store.query(variants[0]))
        assert rows or name == "filter_range", name


@pytest.mark.timeout(240)
def test_node_bench_returns_positive_numbers(tmp_path: Path) -> None:
    result = bench_node.run(
        triples=3000, seconds=0.3, connections=2, workdir=tmp_path, audit_runs=1
    )
    assert result["triples"] >= 3000
    assert result["bare_fastapi"]["rps"] > 0
    for row in result["http"].values():
        assert row["rps"] > 0 and row["errors"] == 0
    for row in result["sparql"].values():
        assert row["rps"] > 0 and row["http_median_ms"] > 0 and row["inprocess_median_ms"] > 0
    assert result["audit_http"]["protected_get_sqlite_rps"] > 0
    assert result["audit_http"]["protected_get_noop_rps"] > 0
    rows = run.targets({"bench_node": result})
    assert {r["result"] for r in rows} <= {"PASS", "MISS", "n/a"}
    assert "summary" in run.summary_table(rows)
