"""The query outline: one read of the text feeds scoping, graph mapping, the result cap, the
planner and the guard; edits keep it true to the edited text; a request tokenizes once."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pyoxigraph as ox
import pytest
from starlette.testclient import TestClient

from node.sparql.outline import OutlineCache, QueryOutline, outline
from node.sparql.rewrite import with_dataset, with_limit, with_physical_graphs
from node.sparql.text import STATS
from tests.test_bad_input import BASE, OWNER, READER, InProcessNode, build_node

IFC = f"{BASE}/dataset/ifc"
BAG = f"{BASE}/dataset/bag"
SECRET = f"{BASE}/dataset/secret"
QUERIES = [
    "SELECT * WHERE { ?s ?p ?o }",
    f"SELECT * FROM <{SECRET}> FROM NAMED <{SECRET}> WHERE {{ GRAPH <{SECRET}> {{ ?s ?p ?o }} }}",
    "PREFIX x: <http://x/> SELECT ?s (COUNT(*) AS ?n) WHERE { ?s ?p ?o } GROUP BY ?s",
    "CONSTRUCT { ?s ?p ?o } WHERE { GRAPH ?g { ?s ?p ?o } }",
    f"CONSTRUCT {{ ?s ?p ?o }} FROM <{SECRET}> WHERE {{ ?s ?p ?o }}",
    "CONSTRUCT WHERE { ?s ?p ?o }",
    f"DESCRIBE <{BASE}/id/building/1>",
    f"DESCRIBE <{BASE}/id/building/1> LIMIT 5",
    "ASK { ?s ?p ?o }",
    "# FROM <http://c/> in a comment\nSELECT ?from WHERE { ?from ?p 'FROM <http://s/>' }",
    f"PREFIX d: <{BASE}/dataset/> SELECT * FROM d:bag WHERE {{ GRAPH d:ifc {{ ?s ?p ?o }} }} LIMIT 3",
    f"SELECT * WHERE {{ GRAPH <{IFC}> {{ ?s ?p ?o }} }} VALUES ?s {{ <http://e/a> }}",
]


def facts(o: QueryOutline) -> tuple:
    """Everything an outline says, offsets included."""
    return (
        [(t.kind, t.text, t.start, t.end) for t in o.tokens],
        o.form,
        o.form_index,
        o.where_index,
        o.from_graphs,
        o.from_named,
        o.dataset_spans,
        o.dataset_at,
        None if o.limit is None else (o.limit.text, o.limit.start),
        o.values_at,
        o.graph_refs,
        o.binds_graph,
        o.services,
        o.depth,
        o.lookup,
    )


def test_dataset_clause_is_read_with_the_one_prefix_and_base_resolver() -> None:
    q = f"""
    # FROM <http://evil/in-comment>
    BASE <{BASE}/>
    PREFIX d: <dataset/>
    PREFIX from: <http://example.org/>
    SELECT ?from FROM d:ifc FROM NAMED <dataset/bag> FROM <{SECRET}>
    WHERE {{ ?s from:p "FROM <http://evil/in-string>" . FILTER(?from < 3) }}
    """
    o = outline(q)
    assert (o.from_graphs, o.from_named) == ((IFC, SECRET), (BAG,))
    assert outline("SELECT * WHERE { ?s ?p ?o }").from_graphs is None
    assert outline("ASK FROM NAMED <http://a> { }").from_graphs == ()
    assert outline("DESCRIBE <http://x> FROM <http://a>").from_named == ()
    # the relative prefix IRI resolves against BASE for GRAPH too, as the engine reads it
    graph_q = f"BASE <{BASE}/> PREFIX d: <dataset/> SELECT * {{ GRAPH d:bag {{ ?s ?p ?o }} }}"
    assert [r.iri for r in outline(graph_q).graph_refs] == [BAG]


@pytest.mark.parametrize("query", QUERIES)
def test_with_dataset_keeps_the_outline_true_to_the_new_text(query: str) -> None:
    edited = with_dataset(outline(query), [IFC], [BAG, SECRET])
    assert facts(edited) == facts(outline(edited.text))
    assert (edited.from_graphs, edited.from_named) == ((IFC,), (BAG, SECRET))
    ox.Store().query(edited.text)  # still valid SPARQL
    assert with_dataset(outline(query), [], []).text == query
    only_named = with_dataset(outline(query), [], [BAG])
    assert facts(only_named) == facts(outline(only_named.text))
    assert (only_named.from_graphs, only_named.from_named) == ((), (BAG,))


def test_with_dataset_refuses_injection() -> None:
    with pytest.raises(ValueError):
        with_dataset(outline("SELECT * { ?s ?p ?o }"), ["http://a> } ; DROP ALL #"], [])


@pytest.mark.parametrize("query", QUERIES)
def test_with_limit_and_physical_graphs_agree_with_a_fresh_read(query: str) -> None:
    limited = with_limit(outline(query), 2)
    if limited is None:
        assert outline(query).form != "SELECT" or "VALUES" in query
        return
    fresh = outline(limited.text)
    assert limited.graph_refs == fresh.graph_refs
    assert (limited.from_graphs, limited.from_named) == (fresh.from_graphs, fresh.from_named)
    mapping = {IFC: "urn:dsgo:data:ifc:1", SECRET: "urn:dsgo:data:secret:4"}
    assert with_physical_graphs(limited, mapping) == with_physical_graphs(fresh, mapping)


def test_physical_graphs_replace_only_graph_names() -> None:
    q = f"SELECT * WHERE {{ GRAPH <{IFC}> {{ <{IFC}> ?p '<{IFC}>' }} GRAPH ?g {{ ?s ?p ?o }} }}"
    text, binds = with_physical_graphs(outline(q), {IFC: "urn:x:1"})
    assert text.count("urn:x:1") == 1 and text.count(IFC) == 2 and binds


# --- one tokenization per request ---------------------------------------------------------------


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> InProcessNode:
    return build_node(tmp_path_factory.mktemp("outline"))


@pytest.fixture(scope="module")
def http(node: InProcessNode) -> Iterator[TestClient]:
    with TestClient(node.app, base_url=BASE, raise_server_exceptions=False) as client:
        # The warm-up (merge plans, VoID counts) runs queries of its own: let it finish first.
        warmer = node.app.state.warmer
        deadline = time.monotonic() + 60
        while warmer.warmed != node.rt.store.version() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert warmer.warmed == node.rt.store.version(), "the warm-up did not finish"
        yield client


@pytest.mark.parametrize(
    ("party", "query", "params"),
    [
        (OWNER, f"SELECT ?p ?o WHERE {{ <{BASE}/id/building/b1> ?p ?o }}", {}),
        (READER, f"SELECT ?p ?o WHERE {{ <{BASE}/id/building/b1> ?p ?o }} LIMIT 100", {}),
        (
            OWNER,
            f"SELECT * WHERE {{ GRAPH <{BASE}/dataset/bim> {{ ?s ?p ?o }} }}",
            {"named-graph-uri": f"{BASE}/dataset/bim"},
        ),
        (READER, "CONSTRUCT WHERE { ?s ?p ?o }", {"default-graph-uri": f"{BASE}/dataset/bim"}),
        (OWNER, f"ASK FROM <{BASE}/dataset/secret> {{ ?s ?p ?o }}", {}),
    ],
)
def test_a_request_tokenizes_its_query_once(http, node, party, query, params) -> None:
    before = STATS.tokenizations
    resp = http.get("/sparql", params={"query": query, **params}, headers=node.auth(party))
    assert resp.status_code == 200, resp.text
    assert STATS.tokenizations - before == 1


def test_a_repeated_text_is_not_read_again(http, node) -> None:
    query = f"SELECT ?o WHERE {{ <{BASE}/id/building/b1> ?p ?o }} LIMIT 7"
    resp = http.get("/sparql", params={"query": query}, headers=node.auth(READER))
    assert resp.status_code == 200, resp.text
    before = STATS.tokenizations
    again = http.get("/sparql", params={"query": query}, headers=node.auth(READER))
    assert again.status_code == 200 and again.json() == resp.json()
    assert STATS.tokenizations - before == 0
    other = http.get("/sparql", params={"query": query + " "}, headers=node.auth(READER))
    assert other.status_code == 200
    assert STATS.tokenizations - before == 1
    # another party's request reads it afresh: its speed tells nothing of what READER asked
    owner = http.get("/sparql", params={"query": query}, headers=node.auth(OWNER))
    assert owner.status_code == 200
    assert STATS.tokenizations - before == 2


def test_a_kept_outline_is_still_held_to_the_limits(http, node) -> None:
    limits = node.rt.settings.limits
    query = (
        "SELECT * WHERE "
        + "{ " * (limits.max_depth + 1)
        + "?s ?p ?o"
        + " }" * (limits.max_depth + 1)
    )
    for _ in range(2):  # refused the second time too, kept or not
        resp = http.get("/sparql", params={"query": query}, headers=node.auth(OWNER))
        assert resp.status_code == 400, resp.text
        assert "depth" in resp.text


def test_the_outline_cache_is_bounded_and_keeps_the_recently_used() -> None:
    cache = OutlineCache(size=2, max_chars=40)
    a, b, c = "ASK { ?a ?p ?o }", "ASK { ?b ?p ?o }", "ASK { ?c ?p ?o }"
    first = cache.outline(a, "P1")
    assert cache.outline(a, "P1") is first
    cache.outline(b, "P1")
    cache.outline(a, "P1")  # a is now the most recently used
    cache.outline(c, "P1")  # so b goes
    before = STATS.tokenizations
    assert cache.outline(a, "P1") is first
    assert STATS.tokenizations == before
    cache.outline(b, "P1")
    assert STATS.tokenizations == before + 1
    assert cache.outline(a, "P2") is not first  # kept per party
    long = "ASK { ?s ?p ?o } " + "#" * 40
    assert cache.outline(long, "P1") is not cache.outline(long, "P1")  # over max_chars
    assert cache.outline(long, "P1").text == long


def test_the_count_sees_a_second_read(http, node) -> None:
    """The counter is real: a query path that reads the text twice shows 2."""
    before = STATS.tokenizations
    outline("SELECT * { ?s ?p ?o }")
    outline("SELECT * { ?s ?p ?o }")
    assert STATS.tokenizations - before == 2


def test_a_prefixed_name_does_not_swallow_the_dot_that_ends_a_triple() -> None:
    from node.sparql.text import tokenize

    text = "ex:a ex:b ex:c.d. ex:e ex:f ex:g.. ex:h\\. ex:"
    got = [(t.kind, t.text) for t in tokenize(text)]
    assert got == [
        ("word", "ex:a"),
        ("word", "ex:b"),
        ("word", "ex:c.d"),
        ("punct", "."),
        ("word", "ex:e"),
        ("word", "ex:f"),
        ("word", "ex:g"),
        ("punct", "."),
        ("punct", "."),
        ("word", "ex:h\\."),  # an escaped dot is part of the name
        ("word", "ex:"),
    ]
    assert all(text[t.start : t.end] == t.text for t in tokenize(text))
    # an escaped '#' is part of the name, not a comment that would hide the rest of the line
    assert [t.text for t in tokenize("ex:a\\#b } SERVICE")] == ["ex:a\\#b", "}", "SERVICE"]


def test_an_edited_outline_takes_only_its_own_fields() -> None:
    read = outline("SELECT * { ?s ?p ?o }")
    edited = read.with_text("SELECT * { ?s ?p ?o } LIMIT 5", limit=None)
    assert edited.text.endswith("LIMIT 5") and read.text == "SELECT * { ?s ?p ?o }"
    assert edited.tokens is read.tokens  # nothing read again
    with pytest.raises(TypeError, match="tokenz"):
        read.with_text("SELECT * { ?s ?p ?o }", tokenz=())


LOOKUPS = [
    f"SELECT ?p ?o WHERE {{ <{BASE}/id/building/b1> ?p ?o }}",
    "SELECT * { ?s a <http://x.example/T> . } LIMIT 5",
    'PREFIX ex: <http://e.example/> SELECT ?s WHERE { ?s ex:p "v"@en }',
    'SELECT ?s WHERE { ?s <http://p.example/> "1"^^<http://www.w3.org/2001/XMLSchema#int> }',
    "SELECT ?s ?p ?o WHERE { ?s ?p ?o }",  # bounded by its rows all the same
    "SELECT $s WHERE { $s <http://p.example/> 42 } # a comment",
]
NOT_LOOKUPS = [
    "SELECT DISTINCT ?p WHERE { ?s ?p ?o }",  # few rows out of many triples read
    "SELECT ?x WHERE { ?x ?p ?x }",  # a repeated variable filters a scan
    "SELECT ?x WHERE { ?x ?p $x }",
    "SELECT ?s WHERE { ?s ?p ?o } OFFSET 5",
    "SELECT ?s WHERE { ?s ?p ?o } ORDER BY ?s",
    "SELECT ?s FROM <http://g.example/> WHERE { ?s ?p ?o }",
    "SELECT ?s WHERE { ?s ?p ?o FILTER(?o) }",
    "SELECT ?s WHERE { ?s <http://a.example/>/<http://b.example/> ?o }",
    "SELECT ?s WHERE { ?s ?p ?o ; ?q ?r }",
    "SELECT ?s WHERE { ?s ?p ?o . ?o ?q ?r }",
    "SELECT (1 AS ?x) WHERE { ?s ?p ?o }",
    "SELECT ?s WHERE { GRAPH ?g { ?s ?p ?o } }",
    "SELECT ?s WHERE { ?s ?p ?o } LIMIT 1.5",
    "SELECT ?s WHERE { ?s ?p ?o } VALUES ?s { <http://s.example/> }",
    "SELECT ?s WHERE { ?s ?p [] }",
    "SELECT ?s WHERE { _:b ?p ?s }",
    "SELECT ?s WHERE { ?s ex:a\\#b ?o }",  # an escape: the engine may read it otherwise
    "SELECT ?s WHERE { ?s ?p ?o SERVICE <http://x.example/sparql> { ?o ?q ?r } }",
    "ASK { ?s ?p ?o }",
    "CONSTRUCT WHERE { ?s ?p ?o }",
    "SELECT ?s WHERE { " + "?s ?p ?o " + "#" * 3000 + "\n}",  # longer than LOOKUP_MAX_CHARS
]


@pytest.mark.parametrize("query", LOOKUPS)
def test_a_lookup_is_one_triple_pattern_for_an_independent_parser_too(query: str) -> None:
    from rdflib.plugins.sparql import prepareQuery

    assert outline(query).lookup
    node = prepareQuery(query).algebra["p"]
    if node.name == "Slice":  # LIMIT n, from 0
        assert node["start"] == 0
        node = node["p"]
    assert node.name == "Project"
    bgp = node["p"]
    assert bgp.name == "BGP" and len(bgp["triples"]) == 1


@pytest.mark.parametrize("query", NOT_LOOKUPS)
def test_anything_else_is_not_a_lookup(query: str) -> None:
    assert not outline(query).lookup
