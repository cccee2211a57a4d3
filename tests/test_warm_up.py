"""After a new dataset version the node plans the RDF merge and counts VoID numbers itself, off
the request path, so the first query or catalog request does not pay for them."""

from __future__ import annotations

import time
from pathlib import Path

import pyoxigraph as ox
from starlette.testclient import TestClient

from node.void import stats_cache, version_key
from tests.test_bad_input import BASE, OWNER, build_node


def _wait(condition, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def _owner_query(http: TestClient, node) -> None:
    resp = http.get(
        "/sparql",
        params={"query": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"},
        headers=node.auth(OWNER),
    )
    assert resp.status_code == 200, resp.text


def test_a_new_version_is_warmed_before_the_first_query(tmp_path: Path) -> None:
    node = build_node(tmp_path)
    rt = node.rt
    with TestClient(node.app, base_url=BASE) as http:
        assert _wait(lambda: rt.enforcer.merges.stats["pair_checks"] >= 1), "no pair check ran"
        cache = stats_cache(rt)
        assert _wait(
            lambda: all(cache.get((version_key(rt, d), "whole")) for d in rt.store.datasets())
        )
        checks = rt.enforcer.merges.stats["pair_checks"]
        _owner_query(http, node)
        assert rt.enforcer.merges.stats["pair_checks"] == checks  # the query found it planned
        # a new version of one dataset is warmed again
        rt.store.replace_dataset(
            "secret", f'<{BASE}/id/vault/v2> <urn:p> "x" .\n'.encode(), ox.RdfFormat.N_TRIPLES
        )
        assert _wait(lambda: rt.enforcer.merges.stats["pair_checks"] > checks)


def test_without_warm_up_the_first_query_pays(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DSGO_STORE_WARM_UP", "false")
    node = build_node(tmp_path)
    rt = node.rt
    assert rt.settings.warm_up is False
    with TestClient(node.app, base_url=BASE) as http:
        time.sleep(3)  # longer than the watcher's interval
        assert rt.enforcer.merges.stats["pair_checks"] == 0
        _owner_query(http, node)
        assert rt.enforcer.merges.stats["pair_checks"] >= 1
