"""The embedded store: atomic dataset versions behind stable graph IRIs, reopen, old versions removed."""

from __future__ import annotations

import time
from pathlib import Path

import pyoxigraph as ox
import pytest

from node.store import PHYSICAL_PREFIX, LoadError, OxigraphStore, format_for, rewrite_query

# Big enough that removing it outlasts the 0.1 s that close() used to give the collector: with
# the old close() the test below fails at 20,000 triples (3 of 3 runs), as at 150,000, in 1/20 of
# the time.
N_BIG = 20_000
BASE = "http://node.test"
V1 = b'<http://e/s> <http://e/p> "1" .\n<http://e/s> <http://e/q> <http://e/o> .\n'
V2 = b'<http://e/s> <http://e/p> "2" .\n'
BROKEN = b'<http://e/s> <http://e/p> "3" .\n<http://e/s> <http://e/p> oops .\n'


@pytest.fixture
def store(tmp_path: Path):
    s = OxigraphStore(BASE, tmp_path / "store")
    yield s
    s.close()


def values(store: OxigraphStore, name: str = "a") -> set[str]:
    rows = store.query(
        "SELECT ?v WHERE { ?s <http://e/p> ?v }", default_graph=[f"{BASE}/dataset/{name}"]
    )
    return {row["v"].value for row in rows}


def test_replace_swaps_versions_and_a_broken_file_keeps_the_old_one(store: OxigraphStore) -> None:
    nt = format_for("x.nt")
    store.replace_dataset("a", V1, nt)
    store.replace_dataset("a", V2, nt)
    assert values(store) == {"2"}
    with pytest.raises(LoadError) as err:
        store.replace_dataset("a", BROKEN, nt, label="broken.nt")
    assert err.value.line == 2 and "broken.nt" in str(err.value)
    assert values(store) == {"2"}
    assert [d.triples for d in store.datasets()] == [1]


def test_graph_names_stay_stable_in_queries_and_quads(store: OxigraphStore) -> None:
    nt = format_for("x.nt")
    store.replace_dataset("a", V1, nt)
    store.replace_dataset("b", V2, nt)
    graph_a = f"{BASE}/dataset/a"
    rows = store.query("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }")
    names = {row["g"].value for row in rows}
    assert names == {graph_a, f"{BASE}/dataset/b"}
    assert not any(n.startswith(PHYSICAL_PREFIX) for n in names)
    from_rows = store.query(f"SELECT ?v FROM <{graph_a}> WHERE {{ ?s <http://e/p> ?v }}")
    assert {r["v"].value for r in from_rows} == {"1"}
    graph_rows = store.query(f"SELECT ?v WHERE {{ GRAPH <{graph_a}> {{ ?s <http://e/p> ?v }} }}")
    assert {r["v"].value for r in graph_rows} == {"1"}
    assert {q.graph_name.value for q in store.quads(subject="http://e/s")} == {
        graph_a,
        f"{BASE}/dataset/b",
    }
    triples = list(
        store.query("CONSTRUCT { ?g <http://e/has> ?s } WHERE { GRAPH ?g { ?s ?p ?o } }")
    )
    assert {t.subject.value for t in triples} == {graph_a, f"{BASE}/dataset/b"}


def test_rewrite_is_not_fooled_by_strings_or_comments() -> None:
    mapping = {"http://n/dataset/a": "urn:dsgo:data:a:1"}
    text = 'SELECT * WHERE { GRAPH <http://n/dataset/a> { ?s ?p "GRAPH <http://n/dataset/a>" } } # FROM <http://n/dataset/a>'
    out, binds = rewrite_query(text, mapping)
    assert out.count("urn:dsgo:data:a:1") == 1 and not binds
    assert '"GRAPH <http://n/dataset/a>"' in out and "# FROM <http://n/dataset/a>" in out


def test_reopen_after_close_and_old_versions_are_removed(tmp_path: Path) -> None:
    nt = format_for("x.nt")
    s = OxigraphStore(BASE, tmp_path / "store")
    s.replace_dataset("a", V1, nt)
    s.replace_dataset("a", V2, nt)
    old_graphs = lambda st: {  # noqa: E731
        g.value for g in st.raw.named_graphs() if g.value.startswith(PHYSICAL_PREFIX)
    }
    deadline = time.monotonic() + 30
    while len(old_graphs(s)) > 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(old_graphs(s)) == 1, "the replaced version should be removed in the background"
    s.close()
    again = OxigraphStore(BASE, tmp_path / "store")
    try:
        assert values(again) == {"2"}
        assert isinstance(again.raw, ox.Store)
    finally:
        again.close()


def test_close_while_old_versions_are_being_removed_releases_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short-lived process (dsgo sync) closes while the collector removes a big old version;
    the next process must find the store free, not locked by a removal still in flight."""
    import node.store.oxigraph as embedded

    nt = format_for("x.nt")
    big = b"".join(b'<http://e/s%d> <http://e/p> "%d" .\n' % (i, i) for i in range(N_BIG))
    path = tmp_path / "store"
    s = OxigraphStore(BASE, path)
    s.replace_dataset("a", big, nt)
    s.close()  # before the first version is garbage
    for attempt in range(3):  # each round: a version marked garbage, a reopen, a quick close
        s = OxigraphStore(BASE, path)
        monkeypatch.setattr(embedded, "GC_DELAY", 0.0)
        s.replace_dataset("a", big if attempt % 2 else V2, nt)
        s.close()
        monkeypatch.setattr(embedded, "GC_DELAY", 0.0)
        s = OxigraphStore(BASE, path)  # the collector starts removing the replaced version
        time.sleep(0.05 * attempt)
        s.close()
        again = OxigraphStore(BASE, path)  # raises StoreLocked if the removal still holds it
        again.close()
