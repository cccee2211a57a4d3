"""pyoxigraph results are freed by the thread that made them, also when an error carries them.

A query result may only be freed in its own thread; freed in another it is leaked (with its
read snapshot of the store) and an "unsendable ... dropped on another thread" error is printed.
An exception raised after a result existed holds it in its traceback, and a future hands that
exception to the thread that waits (the event loop, the federated thread).
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pyoxigraph as ox
import pytest
from test_bad_input import READER, InProcessNode, build_node

from node.auth import caller_from_header
from node.errors import QueryTimeout
from node.service.dispatch import EngineSlot
from node.service.query import SparqlRequest, answer_query
from node.sparql.results import in_this_thread

DROPPED = "dropped on another thread"


@pytest.fixture()
def unraisable(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The unraisable errors reported during one test (a leaked result reports one)."""
    seen: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(str(u.exc_value)))
    yield seen
    gc.collect()


def _store() -> ox.Store:
    store = ox.Store()
    store.add(ox.Quad(ox.NamedNode("http://e/s"), ox.NamedNode("http://e/p"), ox.Literal("o")))
    return store


def _fails_after_a_result(store: ox.Store) -> None:
    def read() -> None:
        result = store.query("SELECT * WHERE { ?s ?p ?o }")  # noqa: F841 - held by the frame
        raise ValueError("failed while the result existed")

    try:
        read()
    except ValueError as exc:
        raise RuntimeError("wrapped") from exc  # the chain holds the frame too


def _raised_elsewhere(fn, *args) -> BaseException:
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(fn, *args)
        error = future.exception(timeout=30)
        del future
    assert error is not None
    return error


def test_the_hazard_is_real_and_the_check_sees_it(unraisable) -> None:
    error = _raised_elsewhere(_fails_after_a_result, _store())
    del error
    gc.collect()
    assert any(DROPPED in e for e in unraisable), unraisable


def test_work_handed_to_a_thread_frees_its_results_there(unraisable) -> None:
    store = _store()
    error = _raised_elsewhere(in_this_thread, lambda: _fails_after_a_result(store))
    assert isinstance(error, RuntimeError) and isinstance(error.__cause__, ValueError)
    del error
    gc.collect()
    assert not [e for e in unraisable if DROPPED in e]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> InProcessNode:
    return build_node(tmp_path_factory.mktemp("threads"))


def test_a_query_that_times_out_while_written_leaves_no_result_behind(node, unraisable) -> None:
    caller = caller_from_header(node.auth(READER)["Authorization"], node.rt.layer)
    req = SparqlRequest("SELECT ?s ?o WHERE { ?s ?p ?o }", [], [])
    past = time.monotonic() - 1  # the result exists, then its writer finds the deadline gone
    future = node.rt.queries.submit(
        answer_query, node.rt, caller, req, "application/sparql-results+json", None, past, ()
    )
    error = future.exception(timeout=30)
    del future
    assert isinstance(error, QueryTimeout)
    del error
    gc.collect()
    assert not [e for e in unraisable if DROPPED in e]
    last = list(node.rt.audit.entries(limit=None))[-1]
    assert (last.party, last.detail["error"]) == (READER, "query_timeout")


def test_engine_slot_work_frees_its_results_in_the_slot(node, unraisable) -> None:
    store = _store()
    slot = EngineSlot(node.rt, time.monotonic() + 30)
    with pytest.raises(RuntimeError):
        slot(lambda: _fails_after_a_result(store))
    gc.collect()  # the exception and its traceback are gone: freed here, in the test's thread
    assert not [e for e in unraisable if DROPPED in e]
