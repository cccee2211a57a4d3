"""Smoke test of bench_merge at a tiny size: it runs, the scopes answer, no timing asserted."""

from __future__ import annotations

from bench import bench_merge, run


def test_merge_bench_reports_every_scope_and_its_ratios() -> None:
    result = bench_merge.run(triples=2000, rounds=1, per_round=5)
    sizes = result["triples_per_dataset"]
    assert sizes["a"] == sizes["copy"] >= 2000 and sizes["b"] >= 2000
    # the copy's blank nodes are its own (RDF merge keeps them apart): they make the rest graph
    assert 0 < result["one_off"]["rest_graph_triples"] < sizes["copy"]
    for case in ("point", "aggregate"):
        row = result[case]
        for name in ("engine_single", "single", "disjoint", "overlap"):
            assert row[f"{name}_ms"] > 0
        assert row["ratio_overlap_vs_single"] > 0
    names = {r["target"] for r in run.targets({"bench_merge": result})}
    assert "merge: 2 overlapping datasets / 1 dataset (point)" in names
