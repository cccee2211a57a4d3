"""A SPARQL answer's audit entry is committed off the engine slot, and still before the answer.

The query thread hands the request's entry back (`Answer.unwritten`); /sparql has it
group-committed on the event loop and answers only once it is written. In-process (Starlette
TestClient over create_app, `build_node` from test_bad_input).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future

import pytest
from starlette.testclient import TestClient
from test_bad_input import BASE, READER, InProcessNode, build_node

from node.auth import caller_from_header
from node.routes.sparql import _write_late
from node.runtime import QueryPool
from node.service.query import Answer, SparqlRequest, answer_query
from trust.audit import AuditEvent

COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
RESULTS = "application/sparql-results+json"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcessNode, TestClient]]:
    built = build_node(tmp_path_factory.mktemp("deferred"))
    with TestClient(built.app, base_url=BASE, raise_server_exceptions=False) as client:
        yield built, client


def _entries(n: InProcessNode) -> list:
    return list(n.rt.audit.entries(limit=None))


@pytest.fixture(params=["written in the query thread", "group-committed"])
def path(request: pytest.FixtureRequest, node, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways an entry is committed: with others waiting for a slot (made to seem so here:
    the request itself would wait behind real blockers) the route commits it."""
    if request.param == "group-committed":
        monkeypatch.setattr(node[0].rt.queries, "waiting", lambda: 1)
    return request.param


def test_an_answered_query_has_its_one_record_before_the_answer(node, path) -> None:
    n, client = node
    before = len(_entries(n))
    resp = client.get(
        "/sparql", params={"query": COUNT}, headers={**n.auth(READER), "Accept": RESULTS}
    )
    assert resp.status_code == 200
    added = _entries(n)[before:]
    assert [e.kind for e in added] == ["query"]
    assert added[0].party == READER and added[0].result_size == 1
    assert added[0].datasets == ("bim",)


@contextlib.contextmanager
def audit_log_locked(n: InProcessNode) -> Iterator[None]:
    """Another writer holds the SQLite audit log's lock: no commit is possible meanwhile."""
    store = n.rt.audit.store
    store._connection().execute("PRAGMA busy_timeout=50")
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        store._connection().execute("PRAGMA busy_timeout=30000")


def test_an_unwritable_audit_log_gives_no_answer(node, path) -> None:
    n, client = node
    before = len(_entries(n))
    with audit_log_locked(n):
        resp = client.get(
            "/sparql", params={"query": COUNT}, headers={**n.auth(READER), "Accept": RESULTS}
        )
    assert resp.status_code == 503
    assert resp.headers["content-type"].startswith("application/json")
    assert "results" not in resp.text and resp.json()["error"]
    assert len(_entries(n)) == before  # nothing was written, and nothing was answered


def test_an_answer_that_came_after_its_timeout_is_still_audited(node) -> None:
    n, _ = node
    before = len(_entries(n))
    event = AuditEvent(kind="query", party=READER, target="sparql", action="dsgo:query")
    late: Future[Answer] = Future()
    late.add_done_callback(_write_late(n.rt))
    late.set_result(Answer(b"{}", RESULTS, 0, False, unwritten=[event]))
    failed: Future[Answer] = Future()
    failed.add_done_callback(_write_late(n.rt))
    failed.set_exception(RuntimeError("the query thread audited this failure itself"))
    added = _entries(n)[before:]
    assert [(e.kind, e.party, e.target) for e in added] == [("query", READER, "sparql")]


def _ask(n: InProcessNode) -> Answer:
    """answer_query as /sparql calls it (defer_audit=True), here in the test's own thread."""
    caller = caller_from_header(n.auth(READER)["Authorization"], n.rt.layer)
    req = SparqlRequest(COUNT, [], [])
    deadline = time.monotonic() + 30
    return answer_query(n.rt, caller, req, RESULTS, None, deadline, (), defer_audit=True)


def test_with_no_one_waiting_for_a_slot_the_query_thread_writes_the_entry(node) -> None:
    n, _ = node
    assert n.rt.queries.waiting() == 0
    before = len(_entries(n))
    answer = _ask(n)
    assert answer.unwritten == []
    added = _entries(n)[before:]
    assert [(e.kind, e.party, e.result_size) for e in added] == [("query", READER, 1)]


def test_while_others_wait_for_a_slot_the_entry_is_left_to_the_group_commit(node) -> None:
    n, _ = node
    pool = n.rt.queries
    release = threading.Event()
    busy = [pool.submit(release.wait, 30) for _ in range(pool.slots + 1)]  # one of them queued
    try:
        assert pool.waiting() == 1
        before = len(_entries(n))
        answer = _ask(n)
        assert [(e.kind, e.party) for e in answer.unwritten] == [("query", READER)]
        assert len(_entries(n)) == before  # left to the caller, who commits before answering
    finally:
        release.set()
        for f in busy:
            f.result(timeout=30)
    assert pool.waiting() == 0


def test_the_query_pool_counts_what_waits_for_a_slot() -> None:
    pool = QueryPool(2)
    release = threading.Event()
    try:
        futures = [pool.submit(release.wait, 30) for _ in range(5)]
        assert pool.waiting() == 3
        futures[-1].cancel()  # a cancelled submission no longer waits
        assert pool.waiting() == 2
    finally:
        release.set()
        pool.shutdown(wait=True)
    assert pool.waiting() == 0
    with pytest.raises(RuntimeError):  # refused after shutdown: not counted as waiting
        pool.submit(release.wait, 30)
    assert pool._unfinished == 0
