"""Property: a query over a scope of several datasets answers as over one graph holding their
RDF merge (SPARQL 1.1: the default graph is the merge), whatever the datasets share.

Random small graphs are spread over two or three datasets with random overlap (a triple may sit
in one, two or all of them; blank nodes are each load's own, as RDF merge keeps them apart).
The node's answer (the embedded store, a partial grant's in-memory view, an external
`oxigraph serve`) is compared with pyoxigraph's answer over a reference store whose default
graph holds the set union of the scope's triples and whose named graphs are the datasets.
Rows, triples and counts are compared as multisets, so a duplicate row is a difference.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyoxigraph as ox
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nodeproc import ProcessGroup, free_port

from node.enforcement import OWNER_SCOPE, MaterialisedCache, scoped_query
from node.sparql.outline import outline
from node.store import OxigraphStore, SparqlProtocolStore, format_for
from node.store.merge import MERGE_PREFIX, MergePlanner
from node.store.sparql_protocol import MergeUnavailable
from trust.delegation import PartialGrant, Scope

BASE = "http://127.0.0.1:8101"
NAMES = ("a", "b", "c")
GRAPHS = {n: f"{BASE}/dataset/{n}" for n in NAMES}
SUBJECTS = [f"http://e/s{i}" for i in range(4)]
PREDICATES = [f"http://e/p{i}" for i in range(3)]
NT = format_for("x.nt")

# (template, whether it names graphs in a dataset clause)
TEMPLATES = [
    "SELECT * WHERE {{ ?s ?p ?o }}",
    "SELECT (COUNT(*) AS ?n) WHERE {{ ?s ?p ?o }}",
    "SELECT ?s (COUNT(?o) AS ?n) (SUM(?v) AS ?sum) WHERE {{ ?s {p} ?o BIND(1 AS ?v) }} GROUP BY ?s",
    "SELECT ?x ?y ?z WHERE {{ ?x {p} ?y . ?y {q} ?z }}",
    "SELECT ?x ?y WHERE {{ ?x {p}/{q} ?y }}",
    "SELECT ?x ?y WHERE {{ ?x {p}+ ?y }}",
    "SELECT ?x ?y WHERE {{ ?x {p}* ?y }}",
    "SELECT ?x ?y WHERE {{ ?x ({p}|{q}) ?y }}",
    "SELECT ?x ?y WHERE {{ ?x ^{p}/{q}? ?y }}",
    "SELECT ?x ?y WHERE {{ ?x !{p} ?y }}",
    "SELECT ?x ?y ?z WHERE {{ ?x {p} ?y OPTIONAL {{ ?y {q} ?z }} }}",
    "SELECT ?x WHERE {{ ?x ?p ?o MINUS {{ ?x {p} ?y }} }}",
    "SELECT ?x ?g WHERE {{ ?x {p} ?y GRAPH ?g {{ ?y ?q ?z }} }}",
    "SELECT (COUNT(DISTINCT ?s) AS ?n) (COUNT(?s) AS ?m) WHERE {{ ?s ?p {s} }}",
    "SELECT ?x WHERE {{ {{ ?x {p} ?y }} UNION {{ ?x {q} ?y }} }}",
    "SELECT ?x WHERE {{ ?x {p} ?y FILTER EXISTS {{ ?y {q} ?z }} }}",
    "ASK {{ {s} {p} ?o . ?o {q} ?z }}",
    "CONSTRUCT {{ ?x {q} ?y }} WHERE {{ ?x {p} ?y }}",
    "CONSTRUCT WHERE {{ ?s {p} ?o }}",
    "DESCRIBE {s}",
    "DESCRIBE ?x WHERE {{ ?x {p} {s} }}",
    "SELECT ?s ?o FROM {g} FROM {h} WHERE {{ ?s {p} ?o }}",
    "SELECT (COUNT(*) AS ?n) FROM {g} FROM {g} WHERE {{ ?s ?p ?o }}",
    "SELECT ?s FROM {g} FROM NAMED {h} WHERE {{ ?s ?p ?o GRAPH {h} {{ ?s ?q ?r }} }}",
]


def _iri(values: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(values).map(lambda v: f"<{v}>")


@st.composite
def queries(draw: st.DrawFn) -> str:
    template = draw(st.sampled_from(TEMPLATES))
    return template.format(
        p=draw(_iri(PREDICATES)),
        q=draw(_iri(PREDICATES)),
        s=draw(_iri(SUBJECTS)),
        g=draw(_iri(list(GRAPHS.values()))),
        h=draw(_iri(list(GRAPHS.values()))),
    )


term = st.sampled_from(SUBJECTS).map(lambda s: f"<{s}>")
subject = st.one_of(term, term, term, st.just("_:b"))
obj = st.one_of(term, term, st.integers(0, 2).map(lambda i: f'"{i}"'), st.just("_:b"))
triple = st.tuples(subject, st.sampled_from(PREDICATES).map(lambda p: f"<{p}>"), obj)


@st.composite
def spread(draw: st.DrawFn) -> dict[str, set[str]]:
    """Two or three datasets; every triple lands in a random non-empty subset of them."""
    names = NAMES[: draw(st.sampled_from([2, 2, 3]))]
    content: dict[str, set[str]] = {n: set() for n in names}
    for s, p, o in draw(st.lists(triple, min_size=1, max_size=24)):
        homes = draw(st.sets(st.sampled_from(names), min_size=1))
        for n in homes:
            content[n].add(f"{s} {p} {o} .")
    # often: a second dataset that is a copy of the first (the same model loaded twice)
    if draw(st.booleans()):
        content[names[1]] |= content[names[0]]
    return content


# --- the reference ------------------------------------------------------------------------------


def reference_answer(store, query: str, graphs: list[str]) -> Counter:
    """pyoxigraph over one graph holding the set union of the scope (or of its FROM graphs)."""
    ref = ox.Store()
    for g in graphs:
        for q in store.quads(graphs=[g]):
            ref.add(q)
    read = outline(query)
    froms, named = read.from_graphs, read.from_named
    if froms is None:
        default, named = graphs, graphs
    else:
        default = [g for g in froms if g in graphs]
        named = [g for g in (named or []) if g in graphs]
    merge = ox.NamedNode("urn:test:merge")
    for g in default:
        for q in ref.quads_for_pattern(None, None, None, ox.NamedNode(g)):
            ref.add(ox.Quad(q.subject, q.predicate, q.object, merge))
    result = ref.query(query, default_graph=[merge], named_graphs=[ox.NamedNode(g) for g in named])
    return normalise(result)


def normalise(result) -> Counter:
    """A multiset of rows (or triples, or the boolean): duplicates count."""
    if isinstance(result, ox.QueryBoolean | bool):
        return Counter([bool(result)])
    if hasattr(result, "variables"):
        names = [v.value for v in result.variables]
        return Counter(
            tuple("" if row[n] is None else str(row[n]) for n in names) for row in result
        )
    return Counter(str(t) for t in result)


def load(store, content: dict[str, set[str]]) -> list[str]:
    for name in NAMES:
        if name in content:
            store.replace_dataset(name, "\n".join(sorted(content[name])).encode() + b"\n", NT)
        elif any(d.name == name for d in store.datasets()):
            store.drop_dataset(name)
    return [GRAPHS[n] for n in content]


SCOPES = {
    "owner": lambda graphs: OWNER_SCOPE,
    "two whole datasets": lambda graphs: Scope(whole_datasets=frozenset(graphs[:2])),
    "partial grant (in-memory view)": lambda graphs: Scope(
        partial=(PartialGrant("p", datasets=frozenset(graphs)),)
    ),
}


def check(store, content: dict[str, set[str]], query: str, scope_name: str) -> None:
    graphs = load(store, content)
    scope = SCOPES[scope_name](graphs)
    visible = graphs if scope_name != "two whole datasets" else graphs[:2]
    got = normalise(
        scoped_query(
            store,
            query,
            scope,
            dataset_graphs=graphs,
            cache=MaterialisedCache(),
            data_version=store.version(),
            merges=PLANNER,
        )
    )
    assert got == reference_answer(store, query, visible), (query, scope_name, content)


PLANNER = MergePlanner()


@pytest.fixture(scope="module")
def embedded() -> Iterator[OxigraphStore]:
    store = OxigraphStore(BASE, None)
    yield store
    store.close()


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(content=spread(), query=queries(), scope_name=st.sampled_from(sorted(SCOPES)))
def test_multi_dataset_answers_equal_the_merge_embedded(
    embedded: OxigraphStore, content: dict[str, set[str]], query: str, scope_name: str
) -> None:
    check(embedded, content, query, scope_name)


@pytest.fixture(scope="module")
def external(module_procs: ProcessGroup, tmp_path_factory: pytest.TempPathFactory):
    engine = module_procs.oxigraph(tmp_path_factory.mktemp("merge-oxigraph"), free_port())
    url = engine.base_url
    store = SparqlProtocolStore(
        BASE, query_url=f"{url}/query", update_url=f"{url}/update", store_url=f"{url}/store"
    )
    yield store
    store.close()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(content=spread(), query=queries(), scope_name=st.sampled_from(sorted(SCOPES)))
def test_multi_dataset_answers_equal_the_merge_external_engine(
    external: SparqlProtocolStore, content: dict[str, set[str]], query: str, scope_name: str
) -> None:
    check(external, content, query, scope_name)


# --- the engine really does count twice: the property above is not vacuous ------------------------


def test_the_engine_alone_counts_a_shared_triple_twice(embedded: OxigraphStore) -> None:
    graphs = load(embedded, {"a": {"<http://e/s0> <http://e/p0> <http://e/s1> ."}, "b": set()})
    embedded.replace_dataset("b", b"<http://e/s0> <http://e/p0> <http://e/s1> .\n", NT)
    query = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
    (bag,) = embedded.query(query, default_graph=graphs)
    assert int(bag["n"].value) == 2  # pyoxigraph's bag union (oxigraph issue #1919)
    (row,) = scoped_query(embedded, query, OWNER_SCOPE, dataset_graphs=graphs, merges=PLANNER)
    assert int(row["n"].value) == 1


def test_merge_graphs_stay_hidden(embedded: OxigraphStore) -> None:
    """The hidden graph is no dataset and no named graph a query can see."""
    shared = {"<http://e/s0> <http://e/p0> <http://e/s1> .", '<http://e/s1> <http://e/p1> "2" .'}
    only_a = '<http://e/s2> <http://e/p0> "3" .'
    only_b = {'_:b <http://e/p2> "1" .', '<http://e/s3> <http://e/p0> "3" .'}
    graphs = load(embedded, {"a": shared | {only_a}, "b": shared | only_b})
    planned = PLANNER.default_graphs(embedded, graphs)
    assert any(g.startswith(MERGE_PREFIX) for g in planned)
    assert [d.graph for d in embedded.datasets()] == graphs
    rows = scoped_query(
        embedded,
        "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }",
        OWNER_SCOPE,
        dataset_graphs=graphs,
        merges=PLANNER,
    )
    assert sorted(r["g"].value for r in rows) == graphs
    assert not any(q.graph_name.value.startswith(MERGE_PREFIX) for q in embedded.quads())


def test_one_dataset_and_disjoint_datasets_need_no_merge_graph(tmp_path: Path) -> None:
    store = OxigraphStore(BASE, tmp_path / "store")
    try:
        graphs = load(
            store,
            {
                "a": {'<http://e/s0> <http://e/p0> "1" .'},
                "b": {'<http://e/s1> <http://e/p0> "1" .'},
            },
        )
        planner = MergePlanner()
        assert planner.default_graphs(store, graphs[:1]) == graphs[:1]
        assert planner.stats == {"pair_checks": 0, "merges_built": 0}  # never looked
        assert planner.default_graphs(store, graphs) == graphs
        assert planner.default_graphs(store, graphs) == graphs
        assert planner.stats == {"pair_checks": 1, "merges_built": 0}  # checked once, cached
    finally:
        store.close()


def test_merge_graphs_of_an_earlier_run_are_removed_at_open(tmp_path: Path) -> None:
    shared = '<http://e/s0> <http://e/p0> "1" .'
    store = OxigraphStore(BASE, tmp_path / "store")
    graphs = load(store, {"a": {shared}, "b": {shared, '<http://e/s1> <http://e/p0> "2" .'}})
    store.replace_dataset("a", f'{shared}\n<http://e/s2> <http://e/p0> "3" .\n'.encode(), NT)
    planned = MergePlanner().default_graphs(store, graphs)
    (merge,) = [g for g in planned if g.startswith(MERGE_PREFIX)]
    store.close()
    store = OxigraphStore(BASE, tmp_path / "store")
    try:
        deadline = time.monotonic() + 30
        while ox.NamedNode(merge) in set(store.raw.named_graphs()):
            assert time.monotonic() < deadline, "the old merge graph was never removed"
            time.sleep(0.2)
        # and a new run builds what it needs again, with the same answer
        (row,) = scoped_query(
            store, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", OWNER_SCOPE, dataset_graphs=graphs
        )
        assert int(row["n"].value) == 3
    finally:
        store.close()


def test_an_external_engine_without_an_update_url_refuses_the_merge_by_name(
    external: SparqlProtocolStore,
) -> None:
    """A read-only engine cannot hold the rest graph: 503 naming the setting, never a bag count."""
    graphs = load(external, {"a": {'<http://e/s0> <http://e/p0> "1" .'}, "b": set()})
    external.replace_dataset(
        "b", b'<http://e/s0> <http://e/p0> "1" .\n<http://e/s1> <http://e/p0> "1" .\n', NT
    )
    read_only = SparqlProtocolStore(
        BASE, query_url=external.query_url, update_url=None, store_url=None
    )
    try:
        with pytest.raises(MergeUnavailable) as err:
            scoped_query(
                read_only,
                "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",
                OWNER_SCOPE,
                dataset_graphs=graphs,
                merges=MergePlanner(),
            )
        assert err.value.status == 503 and "store.update_url" in str(err.value)
        # one dataset needs no merge: the read-only engine still answers it
        (row,) = scoped_query(
            read_only,
            "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",
            OWNER_SCOPE,
            dataset_graphs=graphs[1:],
            merges=MergePlanner(),
        )
        assert int(row["n"].value) == 2
    finally:
        read_only.close()


def test_a_changed_dataset_gets_a_new_merge_and_the_old_one_goes(tmp_path: Path) -> None:
    shared = '<http://e/s0> <http://e/p0> "1" .'
    store = OxigraphStore(BASE, tmp_path / "store")
    try:
        graphs = load(store, {"a": {shared}, "b": {shared, '<http://e/s1> <http://e/p0> "2" .'}})
        store.replace_dataset("a", f'{shared}\n<http://e/s2> <http://e/p0> "3" .\n'.encode(), NT)
        planner = MergePlanner()
        (old,) = [g for g in planner.default_graphs(store, graphs) if g.startswith(MERGE_PREFIX)]
        store.replace_dataset("a", f'{shared}\n<http://e/s3> <http://e/p0> "4" .\n'.encode(), NT)
        planned = planner.default_graphs(store, graphs)
        (new,) = [g for g in planned if g.startswith(MERGE_PREFIX)]
        assert new != old
        query = "SELECT ?o WHERE { ?s ?p ?o }"
        rows = scoped_query(store, query, OWNER_SCOPE, dataset_graphs=graphs, merges=planner)
        assert sorted(r["o"].value for r in rows) == ["1", "2", "4"]
        deadline = time.monotonic() + 30
        while ox.NamedNode(old) in set(store.raw.named_graphs()):
            assert time.monotonic() < deadline, "the superseded merge graph was never removed"
            time.sleep(0.2)
        assert ox.NamedNode(new) in set(store.raw.named_graphs())
    finally:
        store.close()


def test_concurrent_queries_check_and_build_once(embedded: OxigraphStore) -> None:
    shared = {'<http://e/s0> <http://e/p0> "1" .', '<http://e/s1> <http://e/p1> "1" .'}
    graphs = load(
        embedded,
        {
            "a": shared | {'<http://e/s2> <http://e/p0> "1" .'},
            "b": shared
            | {'<http://e/s3> <http://e/p0> "1" .', '<http://e/s3> <http://e/p1> "2" .'},
        },
    )
    planner = MergePlanner()
    with ThreadPoolExecutor(8) as pool:
        plans = list(pool.map(lambda _: planner.default_graphs(embedded, graphs), range(16)))
    assert all(p == plans[0] for p in plans) and len(plans[0]) == 2
    assert planner.stats == {"pair_checks": 1, "merges_built": 1}
