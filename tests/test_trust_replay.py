"""jti replay cache (trust/replay.py): atomic across processes, per namespace, expiring."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from trust.errors import ReplayError
from trust.replay import ReplayCache


def test_second_use_rejected(tmp_path):
    cache = ReplayCache(tmp_path / "r.db")
    cache.check_and_store("token", "EU.EORI.NL000000001", "j1", exp=1030, now=1000)
    with pytest.raises(ReplayError) as e:
        cache.check_and_store("token", "EU.EORI.NL000000001", "j1", exp=1030, now=1001)
    assert e.value.check == "jti_replayed" and e.value.error == "invalid_client"


def test_keyed_per_namespace_and_issuer(tmp_path):
    cache = ReplayCache(tmp_path / "r.db")
    cache.check_and_store("token", "A", "j1", exp=1030, now=1000)
    cache.check_and_store("previous_steps", "A", "j1", exp=1030, now=1000)
    cache.check_and_store("token", "B", "j1", exp=1030, now=1000)
    with pytest.raises(ReplayError):
        cache.check_and_store("previous_steps", "A", "j1", exp=1030, now=1000)


def test_entry_kept_until_exp_plus_skew_then_reclaimed(tmp_path):
    cache = ReplayCache(tmp_path / "r.db", skew=10)
    cache.check_and_store("token", "A", "j", exp=1030, now=1000)
    with pytest.raises(ReplayError):
        cache.check_and_store("token", "A", "j", exp=1030, now=1039)
    cache.check_and_store("token", "A", "j", exp=2030, now=1041)  # old entry expired
    assert cache.purge(now=5000) == 1


def test_persistent_across_instances(tmp_path):
    ReplayCache(tmp_path / "r.db").check_and_store("token", "A", "j", exp=1030, now=1000)
    with pytest.raises(ReplayError):
        ReplayCache(tmp_path / "r.db").check_and_store("token", "A", "j", exp=1030, now=1000)


def _worker(path: str, jti_count: int, results) -> None:
    cache = ReplayCache(path)
    ok = 0
    for i in range(jti_count):
        try:
            cache.check_and_store("token", "A", f"j{i}", exp=1e12, now=1000)
            ok += 1
        except ReplayError:
            pass
    results.put(ok)


def test_exactly_one_process_wins_each_jti(tmp_path):
    path = str(tmp_path / "r.db")
    ReplayCache(path)
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(path, 200, results)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert sum(results.get(timeout=5) for _ in procs) == 200
