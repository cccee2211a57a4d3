"""The engine profiles (node/store/engine_profile.py) and the Virtuoso launcher's refusal.

The profiles are checked on real engines by test_node_http and test_merge_e2e; here are the
text rewrites themselves, each with a case that must stay untouched, and what happens when
Virtuoso is missing (a failure in CI, a skip only when asked for)."""

from __future__ import annotations

import json
from pathlib import Path

import pyoxigraph as ox
import pytest
import virtuoso
from nodeproc import ProcessGroup, free_port

from node.store.engine_profile import (
    GENERIC,
    OXIGRAPH,
    VIRTUOSO,
    profile_from_server,
    profile_named,
)
from node.store.sparql_protocol import SparqlProtocolStore

FROM_QUERY = (
    "PREFIX a: <http://x/> SELECT ?s FROM <http://g/1> FROM NAMED a:two "
    "WHERE { ?s ?p ?o } # FROM <http://g/3> in a comment"
)


def test_virtuoso_cuts_dataset_clauses_only_when_the_protocol_names_a_dataset() -> None:
    cut = VIRTUOSO.query_text(FROM_QUERY, protocol_dataset=True)
    assert "<http://g/1>" not in cut and "a:two" not in cut
    assert "FROM" not in cut.split("#")[0]
    assert ox.Store().query(cut) is not None  # still a query
    assert VIRTUOSO.query_text(FROM_QUERY, protocol_dataset=False) == FROM_QUERY
    for profile in (OXIGRAPH, GENERIC):  # SPARQL 1.1: the protocol's dataset wins already
        assert profile.query_text(FROM_QUERY, protocol_dataset=True) == FROM_QUERY


def test_virtuoso_graph_iris_outside_the_protocols_named_graphs_reach_nothing() -> None:
    query = "SELECT * WHERE { GRAPH <http://g/1> { ?s ?p ?o } GRAPH <http://g/2> { ?s ?p ?o } }"
    asked = VIRTUOSO.query_text(query, True, named_graphs=["http://g/1"])
    assert "<http://g/1>" in asked and "<http://g/2>" not in asked and "<urn:dsgo:empty>" in asked
    assert VIRTUOSO.query_text(query, False, named_graphs=None) == query
    assert OXIGRAPH.query_text(query, True, named_graphs=["http://g/1"]) == query


def test_virtuoso_asks_an_empty_graph_group_as_a_subquery() -> None:
    query = "SELECT DISTINCT ?g WHERE { GRAPH ?g { } }"
    asked = VIRTUOSO.query_text(query, protocol_dataset=False)
    assert "GRAPH ?g { ?dsgo_s ?dsgo_p ?dsgo_o }" in asked
    store = ox.Store()
    store.add(
        ox.Quad(
            ox.NamedNode("http://s"),
            ox.NamedNode("http://p"),
            ox.Literal("o"),
            ox.NamedNode("http://g"),
        )
    )
    assert [r["g"] for r in store.query(asked)] == [r["g"] for r in store.query(query)]
    kept = "SELECT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"
    assert VIRTUOSO.query_text(kept, protocol_dataset=False) == kept
    assert OXIGRAPH.query_text(query, protocol_dataset=False) == query


def test_virtuoso_blank_node_labels_are_made_valid() -> None:
    body = json.dumps(
        {
            "head": {"vars": ["b", "o"]},
            "results": {
                "bindings": [
                    {
                        "b": {"type": "bnode", "value": "nodeID://b10000"},
                        "o": {"type": "literal", "value": "nodeID://not-a-bnode"},
                    }
                ]
            },
        }
    ).encode()
    with pytest.raises(SyntaxError):
        list(ox.parse_query_results(body, ox.QueryResultsFormat.JSON))
    (row,) = ox.parse_query_results(VIRTUOSO.json_results(body), ox.QueryResultsFormat.JSON)
    assert row["b"] == ox.BlankNode("b10000")
    assert row["o"].value == "nodeID://not-a-bnode"  # a literal is left as it is
    assert OXIGRAPH.json_results(body) is body


def test_accept_and_updates_per_engine() -> None:
    assert VIRTUOSO.accept("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }") == "application/n-triples"
    assert VIRTUOSO.accept("DESCRIBE <http://x>") == "application/n-triples"
    assert VIRTUOSO.accept("SELECT * WHERE { ?s ?p ?o }") == "application/sparql-results+json"
    assert "application/n-triples" in OXIGRAPH.accept("CONSTRUCT WHERE { ?s ?p ?o }")
    assert VIRTUOSO.update_text("DROP SILENT GRAPH <g>").startswith("DEFINE sql:log-enable 3 ")
    assert OXIGRAPH.update_text("DROP SILENT GRAPH <g>") == "DROP SILENT GRAPH <g>"
    body, media = VIRTUOSO.query_request("ASK { }")
    assert media == "application/x-www-form-urlencoded" and body == b"query=ASK+%7B+%7D"
    assert OXIGRAPH.query_request("ASK { }") == (b"ASK { }", "application/sparql-query")
    assert VIRTUOSO.graph_filter("g").count("STRSTARTS") == 3 and OXIGRAPH.graph_filter("g") == ""


def test_auto_detection_reads_the_server_header() -> None:
    assert profile_from_server("Virtuoso/07.20.3229 (Linux) x86_64-pc-linux-gnu") is VIRTUOSO
    assert profile_from_server("Oxigraph/0.5.0") is OXIGRAPH
    assert profile_from_server(None) is GENERIC
    assert profile_from_server("nginx") is GENERIC
    assert profile_named("auto") is None and profile_named("virtuoso") is VIRTUOSO
    with pytest.raises(KeyError):
        profile_named("blazegraph")


def test_missing_virtuoso_fails_unless_skipping_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(virtuoso, "VIRTUOSO_T", "/nonexistent/virtuoso-t")
    monkeypatch.delenv(virtuoso.SKIP_ENV, raising=False)
    with pytest.raises(pytest.fail.Exception, match="apt-get install virtuoso-opensource"):
        virtuoso.require_virtuoso()
    monkeypatch.setenv(virtuoso.SKIP_ENV, "1")
    with pytest.raises(pytest.skip.Exception, match="DSGO_SKIP_VIRTUOSO"):
        virtuoso.require_virtuoso()


def test_auto_detects_a_running_oxigraph_and_retries_an_unreachable_engine(
    procs: ProcessGroup, tmp_path: Path
) -> None:
    engine = procs.oxigraph(tmp_path / "ox", free_port())
    store = SparqlProtocolStore(
        "http://127.0.0.1:1", query_url=f"{engine.base_url}/query", update_url=None, store_url=None
    )
    assert store.profile() is OXIGRAPH
    down = SparqlProtocolStore(
        "http://127.0.0.1:1",
        query_url=f"http://127.0.0.1:{free_port()}/q",
        update_url=None,
        store_url=None,
    )
    assert down.profile() is GENERIC and down._profile is None  # asked again next time
    store.close()
    down.close()
