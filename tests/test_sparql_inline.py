"""Lookups answered on the event loop (node/service/dispatch.py `answer_here`).

A one-pattern SELECT that arrives while the query pool is idle is answered where it arrives,
with the same answer, the same audit entry and the same refusals as from the pool. Anything
over the row budget, with a partial scope, needing a merge plan first, or arriving while the
pool is busy goes to the pool. In-process (Starlette TestClient over create_app).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pyoxigraph as ox
import pytest
from starlette.testclient import TestClient
from test_bad_input import BASE, OWNER, RDFS_LABEL, READER, InProcessNode, build_node
from test_sparql_audit_deferred import audit_log_locked

from node.service.query import INLINE_ROWS

RESULTS = "application/sparql-results+json"
PARTIAL = "EU.EORI.NL000000103"  # may read the labels of `bim` only: a partial scope
STRANGER = "EU.EORI.NL000000104"  # has no grant
WIDE_READER = "EU.EORI.NL000000105"  # may read `wide` only (READER reads `bim` only)
LOOKUP = f"SELECT ?p ?o WHERE {{ <{BASE}/id/building/b1> ?p ?o }}"
WIDE = f"<{BASE}/id/wide>"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcessNode, TestClient]]:
    built = build_node(tmp_path_factory.mktemp("inline"))
    rows = "".join(
        f'{WIDE} <{BASE}/def/p{i}> "{i}" .\n' for i in range(INLINE_ROWS + 44)
    )  # one subject with more rows than the inline budget
    built.rt.store.replace_dataset("wide", rows.encode(), ox.RdfFormat.N_TRIPLES)
    built.rt.policies.grant(WIDE_READER, dataset="wide")
    built.rt.policies.grant(PARTIAL, dataset="bim", attributes=[RDFS_LABEL])
    with TestClient(built.app, base_url=BASE, raise_server_exceptions=False) as client:
        yield built, client


@pytest.fixture()
def submitted(node, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """What went to the query pool during one test."""
    pool = node[0].rt.queries
    seen: list[object] = []
    real = pool.submit

    def counting(fn, *args, **kwargs):
        seen.append(fn)
        return real(fn, *args, **kwargs)

    monkeypatch.setattr(pool, "submit", counting)
    return seen


def _ask(n: InProcessNode, client: TestClient, query: str, party: str = READER):
    return client.get(
        "/sparql", params={"query": query}, headers={**n.auth(party), "Accept": RESULTS}
    )


def _entries(n: InProcessNode) -> list:
    return list(n.rt.audit.entries(limit=None))


def test_a_lookup_on_an_idle_node_is_answered_without_the_pool(node, submitted) -> None:
    n, client = node
    before = len(_entries(n))
    resp = _ask(n, client, LOOKUP)
    assert resp.status_code == 200, resp.text
    rows = resp.json()["results"]["bindings"]
    assert {r["o"]["value"] for r in rows} == {"House", f"{BASE}/id/storey/s1"}
    assert submitted == []
    added = _entries(n)[before:]
    assert [(e.kind, e.party, e.result_size, e.datasets) for e in added] == [
        ("query", READER, 2, ("bim",))
    ]


def test_a_query_that_is_not_a_lookup_goes_to_the_pool(node, submitted) -> None:
    n, client = node
    resp = _ask(n, client, f"SELECT DISTINCT ?p WHERE {{ <{BASE}/id/building/b1> ?p ?o }}")
    assert resp.status_code == 200
    assert len(submitted) == 1


def test_over_the_row_budget_the_pool_answers_in_full_and_audits_once(node, submitted) -> None:
    n, client = node
    before = len(_entries(n))
    resp = _ask(n, client, f"SELECT ?p ?o WHERE {{ {WIDE} ?p ?o }}", party=WIDE_READER)
    assert resp.status_code == 200
    assert len(resp.json()["results"]["bindings"]) == INLINE_ROWS + 44
    assert "dsgo-result-truncated" not in resp.headers
    assert len(submitted) == 1
    added = _entries(n)[before:]
    assert [(e.kind, e.result_size) for e in added] == [("query", INLINE_ROWS + 44)]


def test_a_lookup_with_its_own_small_limit_stays_inline(node, submitted) -> None:
    n, client = node
    resp = _ask(n, client, f"SELECT ?p ?o WHERE {{ {WIDE} ?p ?o }} LIMIT 7", party=WIDE_READER)
    assert resp.status_code == 200 and len(resp.json()["results"]["bindings"]) == 7
    assert submitted == []


def test_a_partial_scope_is_read_in_the_pool(node, submitted) -> None:
    n, client = node
    resp = _ask(n, client, LOOKUP, party=PARTIAL)
    assert resp.status_code == 200, resp.text
    rows = resp.json()["results"]["bindings"]
    assert [(r["p"]["value"], r["o"]["value"]) for r in rows] == [(RDFS_LABEL, "House")]
    assert len(submitted) == 1


def test_a_refusal_is_the_same_and_audited(node, submitted) -> None:
    n, client = node
    before = len(_entries(n))
    resp = _ask(n, client, LOOKUP, party=STRANGER)
    assert resp.status_code == 403
    assert resp.json()["error"]
    assert submitted == []
    added = _entries(n)[before:]
    assert len(added) == 1 and added[0].party == STRANGER
    assert (added[0].kind, added[0].target, added[0].detail["effect"]) == ("deny", "sparql", "Deny")


def test_a_busy_pool_sends_the_lookup_after_the_others(node, submitted) -> None:
    n, client = node
    release = threading.Event()
    blocker = n.rt.queries.submit(release.wait, 30)
    try:
        resp = _ask(n, client, LOOKUP)
    finally:
        release.set()
        blocker.result(timeout=30)
    assert resp.status_code == 200 and len(resp.json()["results"]["bindings"]) == 2
    assert len(submitted) == 2  # the blocker, then the lookup


def test_a_merge_not_planned_yet_is_planned_in_the_pool_first(node, submitted) -> None:
    n, client = node
    n.app.state.warmer.stop()  # or it may plan the new version before the first query
    n.rt.store.replace_dataset(
        "bim",
        (f'<{BASE}/id/building/b1> <{RDFS_LABEL}> "House" .\n').encode(),
        ox.RdfFormat.N_TRIPLES,
    )
    checks = n.rt.enforcer.merges.stats["pair_checks"]
    first = _ask(n, client, LOOKUP, party=OWNER)
    assert first.status_code == 200 and len(submitted) == 1
    assert n.rt.enforcer.merges.stats["pair_checks"] > checks  # the pool planned the merge
    second = _ask(n, client, LOOKUP, party=OWNER)
    assert second.status_code == 200 and len(submitted) == 1  # now planned: inline
    assert first.json() == second.json()


def test_an_unwritable_audit_log_gives_no_answer_inline_either(node, submitted) -> None:
    n, client = node
    before = len(_entries(n))
    with audit_log_locked(n):
        resp = _ask(n, client, LOOKUP)
    assert resp.status_code == 503
    assert "results" not in resp.text and resp.json()["error"]
    assert submitted == []
    assert len(_entries(n)) == before


def test_a_lookup_over_many_datasets_is_read_in_the_pool(tmp_path) -> None:
    from node.enforcement import QUICK_GRAPHS

    many = build_node(tmp_path)  # the owner reads every dataset: bim, secret and these
    for i in range(QUICK_GRAPHS):
        triple = f'<{BASE}/id/many/{i}> <{RDFS_LABEL}> "dataset {i}" .\n'
        many.rt.store.replace_dataset(f"many-{i}", triple.encode(), ox.RdfFormat.N_TRIPLES)
    seen: list[object] = []
    real = many.rt.queries.submit

    def counting(fn, *args, **kwargs):
        seen.append(fn)
        return real(fn, *args, **kwargs)

    many.rt.queries.submit = counting  # type: ignore[method-assign]
    with TestClient(many.app, base_url=BASE, raise_server_exceptions=False) as client:
        many.app.state.warmer.stop()
        query = f"SELECT ?o WHERE {{ <{BASE}/id/many/7> ?p ?o }}"
        for _ in range(2):  # the first plans the merge; the second finds it planned
            resp = _ask(many, client, query, party=OWNER)
            assert resp.status_code == 200, resp.text
            assert [r["o"]["value"] for r in resp.json()["results"]["bindings"]] == ["dataset 7"]
    assert len(seen) == 2  # both in the pool: over QUICK_GRAPHS graphs, never on the loop


@pytest.mark.parametrize(
    ("query", "accept", "status"),
    [
        (f"SELECT ?o WHERE {{ <{BASE}/id/building/b1> ex:p ?o }}", RESULTS, 400),  # no PREFIX ex:
        (LOOKUP, "image/png", 406),  # nothing acceptable
    ],
)
def test_bad_input_on_the_loop_is_answered_as_from_the_pool(
    node, submitted, monkeypatch: pytest.MonkeyPatch, query: str, accept: str, status: int
) -> None:
    n, client = node

    def ask():
        return client.get(
            "/sparql", params={"query": query}, headers={**n.auth(READER), "Accept": accept}
        )

    here = ask()
    assert submitted == []  # answered on the loop
    monkeypatch.setattr(n.rt.queries, "idle", lambda: False)
    pooled = ask()
    assert len(submitted) == 1
    assert here.status_code == pooled.status_code == status, (here.text, pooled.text)
    assert here.headers["content-type"].startswith("application/json")
    assert here.json() == pooled.json() and here.json()["error"]
