"""The audit benchmark runs end to end at a tiny size and reports every number."""

from __future__ import annotations

from bench.bench_audit import dataset, run


def test_dataset_is_deterministic() -> None:
    assert dataset(50) == dataset(50)
    assert len(dataset(101)) == 101


def test_run_small() -> None:
    result = run(appends=20, triples=200)
    for key in ("noop_appends_per_s", "sqlite_normal_appends_per_s", "sqlite_full_appends_per_s"):
        assert result[key] > 0
    assert result["sign_s"] >= 0 and result["verify_s"] >= 0
    assert result["triples"] == 200
