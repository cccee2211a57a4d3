"""Issue 2 acceptance against real `dsgo serve` processes: resources, SPARQL protocol, catalog, loads.

Every resource/SPARQL test runs twice: embedded store, and external `oxigraph serve` backend.
"""

from __future__ import annotations

import csv
import io
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import rdflib
from nodeproc import (
    ProcessGroup,
    dsgo,
    edit_config,
    free_port,
    init_node,
    sparql_backend,
    token_for,
)
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, DCTERMS, RDF, RDFS
from virtuoso import Virtuoso, start_virtuoso

OWNER = "EU.EORI.NL000000101"
BOT = rdflib.Namespace("https://w3id.org/bot#")
EX = rdflib.Namespace("https://example.org/def#")
SRX = "{http://www.w3.org/2005/sparql-results#}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
MAX_RESULTS = 25

BIM_TTL = """\
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix bot: <https://w3id.org/bot#> .
@prefix ex: <https://example.org/def#> .
<building/b1> a bot:Building ; rdfs:label "Huis"@nl , "House"@en ;
    ex:height "12.5"^^xsd:decimal ; ex:floors 3 ; bot:hasStorey <storey/s1> ;
    ex:note [ rdfs:label "anonymous note" ] .
<storey/s1> a bot:Storey ; rdfs:label "Begane grond"@nl ;
    bot:hasSpace <space/sp1> , <space/sp2> .
<space/sp1> a bot:Space ; rdfs:label "Keuken" .
<space/sp2> a bot:Space ; rdfs:label "Woonkamer" .
"""
BIM_TRIPLES = 16
BAG_TTL = """\
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix ex: <https://example.org/def#> .
<pand/p1> a ex:Pand ; rdfs:label "Pand 1" ; ex:bouwjaar 1930 .
"""
BAG_TRIPLES = 3
BROKEN_TTL = """\
@prefix ex: <https://example.org/def#> .
<building/b9> ex:p "fine" .
<building/b9> ex:p "unterminated .
<building/b9> ex:q "more" .
"""
RDF_FORMATS = {
    "application/ld+json": "json-ld",
    "text/turtle": "turtle",
    "application/n-triples": "nt",
    "application/rdf+xml": "xml",
}


@dataclass
class Node:
    """A running node under test, with an owner token and a client."""

    backend: str
    config: Path
    base: str
    http: httpx.Client
    token: str

    def auth(self, **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **headers}

    def iri(self, local: str) -> str:
        return f"{self.base}/id/{local}"

    def graph(self, name: str) -> str:
        return f"{self.base}/dataset/{name}"

    def sparql(self, query: str, accept: str = "application/sparql-results+json", **params):
        return self.http.get(
            "/sparql", params={"query": query, **params}, headers=self.auth(Accept=accept)
        )


def start_node(
    procs: ProcessGroup,
    root: Path,
    backend: str,
    store: dict | None = None,
    datasets: dict[str, str] | None = None,
    party_id: str = OWNER,
    virtuoso: Virtuoso | None = None,
) -> Node:
    """Init a node (with an `oxigraph serve` store for backend 'sparql', `virtuoso` cleared for
    backend 'virtuoso'), load data, serve it."""
    port = free_port()
    config = init_node(root / "node", party_id, "Builder", port)
    settings = dict(store or {})
    if backend == "sparql":
        engine = procs.oxigraph(root / "oxigraph", free_port())
        settings.update(sparql_backend(engine.base_url))
    elif backend == "virtuoso":
        assert virtuoso is not None
        virtuoso.clear()
        settings.update(virtuoso.store_settings())
    if settings:
        edit_config(config, {"store": settings})
    for name, text in (datasets or {}).items():
        path = root / f"{name}.ttl"
        path.write_text(text, encoding="utf-8")
        dsgo("load", path, "--dataset", name, "--config", config)
    proc = procs.serve(config, port)
    http = httpx.Client(base_url=proc.base_url, timeout=30.0)
    return Node(backend, config, proc.base_url, http, token_for(config, proc.base_url))


@pytest.fixture(scope="module", params=["embedded", "sparql", "virtuoso"])
def node(
    request: pytest.FixtureRequest,
    module_procs: ProcessGroup,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Node]:
    """One node per backend holding datasets bim and bag, max_results = 25."""
    root = tmp_path_factory.mktemp(f"node-{request.param}")
    n = start_node(
        module_procs,
        root,
        request.param,
        store={"max_results": MAX_RESULTS},
        datasets={"bim": BIM_TTL, "bag": BAG_TTL},
        virtuoso=request.getfixturevalue("virtuoso") if request.param == "virtuoso" else None,
    )
    yield n
    n.http.close()


def parse_rdf(body: bytes | str, media: str, base: str = "") -> rdflib.Graph:
    """Parse an RDF response body with rdflib (JSON-LD included)."""
    return rdflib.Graph().parse(data=body, format=RDF_FORMATS[media], publicID=base or None)


def check_sparql_json(doc: dict) -> list[dict]:
    """Assert the W3C SPARQL 1.1 JSON results structure; return the bindings."""
    assert set(doc) == {"head", "results"}
    names = doc["head"]["vars"]
    assert isinstance(names, list) and all(isinstance(v, str) for v in names)
    bindings = doc["results"]["bindings"]
    assert isinstance(bindings, list)
    for binding in bindings:
        assert set(binding) <= set(names)
        for term in binding.values():
            assert term["type"] in ("uri", "literal", "bnode")
            assert isinstance(term["value"], str)
            assert set(term) <= {"type", "value", "xml:lang", "datatype"}
            if term["type"] != "literal":
                assert "xml:lang" not in term and "datatype" not in term
            assert not ("xml:lang" in term and "datatype" in term)
    return bindings


# --- resources ---------------------------------------------------------------------------------


def test_resource_every_rdf_format_parses_to_the_same_graph(node: Node) -> None:
    """JSON-LD, Turtle, N-Triples and RDF/XML describe b1 with the same 7 triples."""
    b1 = rdflib.URIRef(node.iri("building/b1"))
    graphs = {}
    for media in RDF_FORMATS:
        resp = node.http.get("/id/building/b1", headers=node.auth(Accept=media))
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].split(";")[0] == media
        assert "accept" in resp.headers["vary"].lower()
        graphs[media] = parse_rdf(resp.content, media, node.base)
    reference = graphs["application/n-triples"]
    assert len(reference) == 7
    assert (b1, RDFS.label, rdflib.Literal("Huis", lang="nl")) in reference
    assert (b1, RDF.type, BOT.Building) in reference
    assert (b1, EX.height, rdflib.Literal("12.5", datatype=rdflib.XSD.decimal)) in reference
    for media, graph in graphs.items():
        assert isomorphic(graph, reference), media


def test_resource_html(node: Node) -> None:
    resp = node.http.get("/id/building/b1", headers=node.auth(Accept="text/html"))
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "Huis" in resp.text


def test_resource_format_parameter(node: Node) -> None:
    resp = node.http.get("/id/space/sp1", params={"format": "ttl"}, headers=node.auth())
    assert resp.status_code == 200
    graph = parse_rdf(resp.content, "text/turtle", node.base)
    assert (rdflib.URIRef(node.iri("space/sp1")), RDFS.label, rdflib.Literal("Keuken")) in graph


def test_resource_etag_and_304(node: Node) -> None:
    """Strong ETag per representation; If-None-Match gives 304 without a body."""
    first = node.http.get("/id/building/b1", headers=node.auth(Accept="text/turtle"))
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    again = node.http.get("/id/building/b1", headers=node.auth(Accept="text/turtle"))
    assert again.headers["etag"] == etag
    cached = node.http.get(
        "/id/building/b1", headers=node.auth(Accept="text/turtle", **{"If-None-Match": etag})
    )
    assert cached.status_code == 304 and cached.content == b""
    assert cached.headers["etag"] == etag
    other = node.http.get(
        "/id/building/b1", headers=node.auth(Accept="text/turtle", **{"If-None-Match": '"x"'})
    )
    assert other.status_code == 200 and other.content == first.content
    jsonld = node.http.get("/id/building/b1", headers=node.auth(Accept="application/ld+json"))
    assert jsonld.headers["etag"] != etag


def test_resource_406_lists_offered_types(node: Node) -> None:
    resp = node.http.get("/id/building/b1", headers=node.auth(Accept="image/png"))
    assert resp.status_code == 406
    offered = resp.json()["offered"]
    for media in [*RDF_FORMATS, "text/html"]:
        assert media in offered


def test_resource_unknown_iri_404(node: Node) -> None:
    resp = node.http.get("/id/building/nope", headers=node.auth(Accept="text/turtle"))
    assert resp.status_code == 404
    assert node.iri("building/nope") in resp.json()["error_description"]


@pytest.mark.parametrize("path", ["/id/building/b1", "/sparql?query=ASK%7B%7D"])
def test_401_without_token(node: Node, path: str) -> None:
    resp = node.http.get(path)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


@pytest.mark.parametrize("path", ["/id/building/b1", "/sparql?query=ASK%7B%7D"])
def test_401_with_bad_token(node: Node, path: str) -> None:
    tampered = node.token[:-4] + ("AAAA" if not node.token.endswith("AAAA") else "BBBB")
    for token in ("not-a-jwt", tampered):
        resp = node.http.get(path, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401, token
        assert resp.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


# --- SPARQL protocol ---------------------------------------------------------------------------


def b1_query(node: Node) -> str:
    return f"SELECT ?p ?o WHERE {{ <{node.iri('building/b1')}> ?p ?o }}"


def test_sparql_json_results_structure(node: Node) -> None:
    resp = node.sparql(b1_query(node))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/sparql-results+json")
    doc = resp.json()
    bindings = check_sparql_json(doc)
    assert doc["head"]["vars"] == ["p", "o"]
    assert len(bindings) == 7
    objects = [b["o"] for b in bindings]
    assert {"type": "literal", "value": "Huis", "xml:lang": "nl"} in objects
    assert {
        "type": "literal",
        "value": "12.5",
        "datatype": "http://www.w3.org/2001/XMLSchema#decimal",
    } in objects
    assert {"type": "uri", "value": node.iri("storey/s1")} in objects
    assert sum(o["type"] == "bnode" for o in objects) == 1


def test_sparql_get_post_form_and_direct_agree(node: Node) -> None:
    query = b1_query(node)
    accept = {"Accept": "application/sparql-results+json"}
    got = node.sparql(query)
    form = node.http.post("/sparql", data={"query": query}, headers=node.auth(**accept))
    direct = node.http.post(
        "/sparql",
        content=query.encode(),
        headers=node.auth(**accept, **{"Content-Type": "application/sparql-query"}),
    )
    rows = []
    for resp in (got, form, direct):
        assert resp.status_code == 200, resp.text
        rows.append(
            sorted(
                json.dumps(b, sort_keys=True)
                for b in resp.json()["results"]["bindings"]
                if b["o"]["type"] != "bnode"
            )
        )
    assert rows[0] == rows[1] == rows[2] and len(rows[0]) == 6


def test_sparql_default_graph_is_union_of_datasets(node: Node) -> None:
    resp = node.sparql("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
    assert int(resp.json()["results"]["bindings"][0]["n"]["value"]) == BIM_TRIPLES + BAG_TRIPLES


def test_sparql_default_and_named_graph_uri(node: Node) -> None:
    count = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
    only_bag = node.sparql(count, **{"default-graph-uri": node.graph("bag")})
    assert int(only_bag.json()["results"]["bindings"][0]["n"]["value"]) == BAG_TRIPLES
    named = node.sparql(
        "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }",
        **{"named-graph-uri": node.graph("bim")},
    )
    graphs = [b["g"]["value"] for b in named.json()["results"]["bindings"]]
    assert graphs == [node.graph("bim")]
    all_graphs = node.sparql("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }")
    found = {b["g"]["value"] for b in all_graphs.json()["results"]["bindings"]}
    assert found == {node.graph("bim"), node.graph("bag")}


def test_sparql_xml_results(node: Node) -> None:
    resp = node.sparql(b1_query(node), accept="application/sparql-results+xml")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/sparql-results+xml")
    root = ET.fromstring(resp.content)
    assert root.tag == f"{SRX}sparql"
    names = [v.get("name") for v in root.find(f"{SRX}head").findall(f"{SRX}variable")]
    assert names == ["p", "o"]
    results = root.find(f"{SRX}results").findall(f"{SRX}result")
    assert len(results) == 7
    kinds = {}
    for result in results:
        for binding in result.findall(f"{SRX}binding"):
            assert binding.get("name") in names
            (term,) = list(binding)
            kinds.setdefault(term.tag.removeprefix(SRX), []).append(term)
    assert set(kinds) == {"uri", "literal", "bnode"}
    huis = [t for t in kinds["literal"] if t.text == "Huis"]
    assert huis and huis[0].get(XML_LANG) == "nl"
    height = [t for t in kinds["literal"] if t.text == "12.5"]
    assert height[0].get("datatype") == "http://www.w3.org/2001/XMLSchema#decimal"


def test_sparql_csv_and_tsv(node: Node) -> None:
    query = (
        f"SELECT ?label WHERE {{ <{node.iri('building/b1')}> "
        "<http://www.w3.org/2000/01/rdf-schema#label> ?label } ORDER BY STR(?label)"
    )  # STR: SPARQL leaves the order of literals with different language tags to the engine
    as_csv = node.sparql(query, accept="text/csv")
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows == [["label"], ["House"], ["Huis"]]
    as_tsv = node.sparql(query, accept="text/tab-separated-values")
    assert as_tsv.headers["content-type"].startswith("text/tab-separated-values")
    lines = as_tsv.text.strip("\n").split("\n")
    assert lines == ["?label", '"House"@en', '"Huis"@nl']


def test_sparql_ask(node: Node) -> None:
    yes = node.sparql(f"ASK {{ <{node.iri('space/sp1')}> ?p ?o }}")
    assert yes.json() == {"head": {}, "boolean": True}
    no = node.sparql(f"ASK {{ <{node.iri('space/none')}> ?p ?o }}")
    assert no.json()["boolean"] is False
    xml = node.sparql("ASK { ?s ?p ?o }", accept="application/sparql-results+xml")
    assert ET.fromstring(xml.content).find(f"{SRX}boolean").text == "true"


@pytest.mark.parametrize("media", list(RDF_FORMATS))
def test_sparql_construct_negotiates_rdf(node: Node, media: str) -> None:
    query = f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{node.graph('bag')}> {{ ?s ?p ?o }} }}"
    resp = node.sparql(query, accept=media)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].split(";")[0] == media
    graph = parse_rdf(resp.content, media, node.base)
    assert len(graph) == BAG_TRIPLES
    assert (rdflib.URIRef(node.iri("pand/p1")), RDFS.label, rdflib.Literal("Pand 1")) in graph


def test_sparql_describe(node: Node) -> None:
    resp = node.sparql(f"DESCRIBE <{node.iri('space/sp2')}>", accept="text/turtle")
    assert resp.status_code == 200
    graph = parse_rdf(resp.content, "text/turtle", node.base)
    assert (rdflib.URIRef(node.iri("space/sp2")), RDF.type, BOT.Space) in graph


def test_sparql_406(node: Node) -> None:
    resp = node.sparql("SELECT * WHERE { ?s ?p ?o } LIMIT 1", accept="image/png")
    assert resp.status_code == 406
    assert "application/sparql-results+json" in resp.json()["offered"]


def test_sparql_malformed_query_400_with_parser_message(node: Node) -> None:
    resp = node.sparql("SELECT ?s WHERE { ?s ?p }")
    assert resp.status_code == 400
    body = resp.json()
    assert body["error"] == "bad_request"
    # The parser's own message says where it failed; not just a generic text.
    assert "1:" in body["error_description"] or "line" in body["error_description"].lower()


def test_sparql_missing_or_repeated_query_400(node: Node) -> None:
    # GET without a query is the service description (tests/test_sparql_self_description.py).
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert node.http.post("/sparql", content=b"", headers=node.auth(**form)).status_code == 400
    no_query = node.http.get("/sparql", params={"default-graph-uri": "urn:x"}, headers=node.auth())
    assert no_query.status_code == 400
    resp = node.http.get(
        "/sparql", params=[("query", "ASK {}"), ("query", "ASK {}")], headers=node.auth()
    )
    assert resp.status_code == 400


def test_sparql_update_is_403_and_changes_nothing(node: Node) -> None:
    update = f'INSERT DATA {{ <{node.iri("x/evil")}> <urn:p> "x" }}'
    form = node.http.post("/sparql", data={"update": update}, headers=node.auth())
    assert form.status_code == 403
    direct = node.http.post(
        "/sparql",
        content=update.encode(),
        headers=node.auth(**{"Content-Type": "application/sparql-update"}),
    )
    assert direct.status_code == 403
    via_get = node.http.get("/sparql", params={"update": update}, headers=node.auth())
    assert via_get.status_code == 403
    check = node.sparql(f"ASK {{ <{node.iri('x/evil')}> ?p ?o }}")
    assert check.json()["boolean"] is False


def test_sparql_oversized_body_413(node: Node) -> None:
    """Refused as soon as the body passes 256 KB; the node goes on answering."""
    big = b"ASK { ?s ?p ?o } #" + b"x" * (256 * 1024)
    resp = node.http.post(
        "/sparql",
        content=big,
        headers=node.auth(**{"Content-Type": "application/sparql-query"}),
    )
    assert resp.status_code == 413
    assert "over 262144 bytes" in resp.json()["error_description"]
    assert node.sparql("ASK { ?s ?p ?o }").json()["boolean"] is True


def test_sparql_non_bearer_authorization_400(node: Node) -> None:
    resp = node.http.get(
        "/sparql", params={"query": "ASK {}"}, headers={"Authorization": "Basic dXNlcjpwdw=="}
    )
    assert resp.status_code == 400
    assert "Bearer" in resp.json()["error_description"]


def test_sparql_wrong_content_type_415(node: Node) -> None:
    resp = node.http.post(
        "/sparql", content=b"ASK {}", headers=node.auth(**{"Content-Type": "text/plain"})
    )
    assert resp.status_code == 415


def test_sparql_result_cap_sets_truncated_header(node: Node) -> None:
    query = "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f }"
    resp = node.sparql(query)
    assert resp.status_code == 200
    assert resp.headers["dsgo-result-truncated"] == f"max_results={MAX_RESULTS}"
    assert len(resp.json()["results"]["bindings"]) == MAX_RESULTS
    small = node.sparql("SELECT * WHERE { ?a ?b ?c } LIMIT 3")
    assert "dsgo-result-truncated" not in small.headers
    construct = node.sparql(
        "CONSTRUCT { ?a <urn:p> ?d } WHERE { ?a ?b ?c . ?d ?e ?f }", accept="application/n-triples"
    )
    assert construct.headers["dsgo-result-truncated"] == f"max_results={MAX_RESULTS}"
    assert len(parse_rdf(construct.content, "application/n-triples")) <= MAX_RESULTS


@pytest.mark.parametrize(
    "accept", ["application/sparql-results+xml", "text/csv", "text/tab-separated-values"]
)
def test_sparql_result_cap_in_every_results_format(node: Node, accept: str) -> None:
    resp = node.sparql("SELECT ?a ?c WHERE { ?a ?b ?c . ?d ?e ?f } ORDER BY ?a ?c", accept=accept)
    assert resp.status_code == 200
    assert resp.headers["dsgo-result-truncated"] == f"max_results={MAX_RESULTS}"
    assert len(_result_rows(resp.content, accept)) == MAX_RESULTS
    small = node.sparql(f"SELECT ?a WHERE {{ ?a a <{BOT}Space> }} ORDER BY ?a", accept=accept)
    assert "dsgo-result-truncated" not in small.headers
    assert len(_result_rows(small.content, accept)) == 2


def test_sparql_own_limit_and_values_clause_with_the_cap(node: Node) -> None:
    """The query's own LIMIT above the cap is cut to the cap; a trailing VALUES still binds."""
    over = node.sparql("SELECT * WHERE { ?a ?b ?c . ?d ?e ?f } LIMIT 1000")
    assert over.headers["dsgo-result-truncated"] == f"max_results={MAX_RESULTS}"
    assert len(over.json()["results"]["bindings"]) == MAX_RESULTS
    sp1, sp2 = node.iri("space/sp1"), node.iri("space/sp2")
    values = node.sparql(
        f"SELECT ?s ?label WHERE {{ ?s <{RDFS.label}> ?label }} ORDER BY ?s "
        f"VALUES ?s {{ <{sp1}> <{sp2}> }}"
    )
    assert values.status_code == 200, values.text
    rows = values.json()["results"]["bindings"]
    assert [(r["s"]["value"], r["label"]["value"]) for r in rows] == [
        (sp1, "Keuken"),
        (sp2, "Woonkamer"),
    ]
    assert "dsgo-result-truncated" not in values.headers


def _result_rows(body: bytes, media: str) -> list:
    """The rows of a SPARQL results document in XML, CSV or TSV."""
    if media == "application/sparql-results+xml":
        return ET.fromstring(body).findall(f"{SRX}results/{SRX}result")
    if media == "text/csv":
        return list(csv.reader(io.StringIO(body.decode(), newline="")))[1:]
    return body.decode().split("\n")[1:-1]


# --- catalog, health, docs ---------------------------------------------------------------------


@pytest.mark.parametrize("media", ["text/turtle", "application/ld+json"])
def test_catalog_lists_datasets_for_owner_only(node: Node, media: str) -> None:
    owner = node.http.get("/catalog", headers=node.auth(Accept=media))
    assert owner.status_code == 200
    graph = parse_rdf(owner.content, media, node.base)
    datasets = set(graph.subjects(RDF.type, DCAT.Dataset))
    assert datasets == {rdflib.URIRef(node.graph("bim")), rdflib.URIRef(node.graph("bag"))}
    names = {str(graph.value(d, DCTERMS.identifier)) for d in datasets}
    assert names == {"bim", "bag"}
    anonymous = node.http.get("/catalog", headers={"Accept": media})
    assert anonymous.status_code == 200
    anon = parse_rdf(anonymous.content, media, node.base)
    assert set(anon.subjects(RDF.type, DCAT.Catalog))
    assert not set(anon.subjects(RDF.type, DCAT.Dataset))


def test_health_docs_openapi(node: Node) -> None:
    health = node.http.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert node.http.get("/docs").status_code == 200
    spec = node.http.get("/openapi.json")
    assert spec.status_code == 200 and "/sparql" in spec.json()["paths"]


# --- timeout -----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["embedded", "sparql"])
def test_sparql_timeout_503_and_node_keeps_answering(
    procs: ProcessGroup, tmp_path: Path, backend: str
) -> None:
    """Long cross products are cancelled with 503 after query_timeout = 1; later queries work."""
    rows = "".join(f'<r/{i}> <urn:p> "v{i}" .\n' for i in range(60))
    n = start_node(
        procs,
        tmp_path,
        backend,
        store={"query_timeout": 1, "max_results": 10**9},
        datasets={"big": rows},
    )
    # More heavy queries than query_slots (2): each must give its slot back when cancelled.
    for _ in range(3):
        resp = n.sparql("SELECT ?a WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }")
        assert resp.status_code == 503
        assert resp.json()["error"] == "query_timeout"
    ok = n.sparql("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
    assert ok.status_code == 200
    assert ok.json()["results"]["bindings"][0]["n"]["value"] == "60"
    # Audit: one entry per request, the decision and the query in one record; each cancelled
    # query's record names its error, the answered one has the size of the answer.
    tail = dsgo("audit", "tail", "--config", n.config, "-n", "50").stdout
    entries = [json.loads(line) for line in tail.splitlines()]
    sparql = [e for e in entries if e["target"] == "sparql"]
    assert [e["kind"] for e in sparql] == ["query"] * 4
    assert all(e["detail"]["effect"] == "Permit" for e in sparql)
    assert [e["detail"].get("error") for e in sparql] == ["query_timeout"] * 3 + [None]
    assert sparql[-1]["result_size"] == 1 and sparql[-1]["party"] == OWNER


# --- atomic loads and the store lock -----------------------------------------------------------

V1_TTL = """\
@prefix ex: <https://example.org/def#> .
<building/b9> ex:version "v1" ; ex:p "a" .
<building/b8> ex:version "v1" .
"""
V2_TTL = """\
@prefix ex: <https://example.org/def#> .
<building/b9> ex:version "v2" .
"""


def graph_rows(n: Node, name: str) -> set[tuple[str, str, str]]:
    """Every triple of one dataset as (s, p, o) values, read over SPARQL."""
    resp = n.sparql(f"SELECT ?s ?p ?o WHERE {{ GRAPH <{n.graph(name)}> {{ ?s ?p ?o }} }}")
    assert resp.status_code == 200, resp.text
    return {
        (b["s"]["value"], b["p"]["value"], b["o"]["value"])
        for b in resp.json()["results"]["bindings"]
    }


def v1_rows(n: Node) -> set[tuple[str, str, str]]:
    ex = "https://example.org/def#"
    b9, b8 = n.iri("building/b9"), n.iri("building/b8")
    return {(b9, ex + "version", "v1"), (b9, ex + "p", "a"), (b8, ex + "version", "v1")}


def assert_one_line_error(proc, *needles: str) -> None:
    """A failed CLI run: non-zero exit, `dsgo: error:` naming `needles`, no traceback."""
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("dsgo: error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], proc.stderr


@pytest.mark.parametrize("backend", ["embedded", "sparql"])
def test_atomic_load_with_node_stopped(procs: ProcessGroup, tmp_path: Path, backend: str) -> None:
    """A broken file loaded directly names file and line and leaves v1 in place."""
    port = free_port()
    config = init_node(tmp_path / "node", OWNER, "Builder", port)
    if backend == "sparql":
        edit_config(
            config, {"store": sparql_backend(procs.oxigraph(tmp_path / "ox", free_port()).base_url)}
        )
    v1, broken = tmp_path / "v1.ttl", tmp_path / "broken.ttl"
    v1.write_text(V1_TTL)
    broken.write_text(BROKEN_TTL)
    dsgo("load", v1, "--dataset", "atomic", "--config", config)
    failed = dsgo("load", broken, "--dataset", "atomic", "--config", config, check=False)
    assert_one_line_error(failed, f"{broken}:3")
    proc = procs.serve(config, port)
    n = Node(
        backend,
        config,
        proc.base_url,
        httpx.Client(base_url=proc.base_url),
        token_for(config, proc.base_url),
    )
    assert graph_rows(n, "atomic") == v1_rows(n)
    staging = n.sparql("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }")
    assert [b["g"]["value"] for b in staging.json()["results"]["bindings"]] == [n.graph("atomic")]


@pytest.fixture(scope="module")
def spare_virtuoso(module_procs: ProcessGroup, tmp_path_factory: pytest.TempPathFactory):
    """A second Virtuoso for the tests that start their own node (the `node` fixture's node
    keeps the module's `virtuoso` busy); each such test clears it first."""
    return start_virtuoso(module_procs, tmp_path_factory.mktemp("spare-virtuoso"))


@pytest.mark.parametrize("backend", ["embedded", "sparql", "virtuoso"])
def test_atomic_load_with_node_running(
    procs: ProcessGroup, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """While serving: CLI and admin API reject a broken file with file and line; v1 stays; v2 loads."""
    engine = request.getfixturevalue("spare_virtuoso") if backend == "virtuoso" else None
    n = start_node(procs, tmp_path, backend, datasets={"atomic": V1_TTL}, virtuoso=engine)
    etag = n.http.get("/id/building/b9", headers=n.auth(Accept="text/turtle")).headers["etag"]
    broken = tmp_path / "broken.ttl"
    broken.write_text(BROKEN_TTL)
    failed = dsgo("load", broken, "--dataset", "atomic", "--config", n.config, check=False)
    assert_one_line_error(failed, f"{broken}:3")
    resp = n.http.put(
        "/admin/datasets/atomic",
        content=BROKEN_TTL.encode(),
        headers=n.auth(**{"Content-Type": "text/turtle", "X-DSGO-Source": "broken.ttl"}),
    )
    assert resp.status_code == 400
    body = resp.json()
    assert body["file"] == "broken.ttl" and body["line"] == 3
    assert graph_rows(n, "atomic") == v1_rows(n)
    same = n.http.get("/id/building/b9", headers=n.auth(Accept="text/turtle"))
    assert same.headers["etag"] == etag

    v2 = tmp_path / "v2.ttl"
    v2.write_text(V2_TTL)
    loaded = dsgo("load", v2, "--dataset", "atomic", "--config", n.config)
    assert "dataset atomic: 1 triples" in loaded.stdout
    if backend == "embedded":
        assert "in use" in loaded.stderr
    ex = "https://example.org/def#"
    assert graph_rows(n, "atomic") == {(n.iri("building/b9"), ex + "version", "v2")}
    changed = n.http.get("/id/building/b9", headers=n.auth(Accept="text/turtle"))
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    gone = n.http.get("/id/building/b8", headers=n.auth(Accept="text/turtle"))
    assert gone.status_code == 404


def test_admin_load_by_other_party_is_refused(procs: ProcessGroup, tmp_path: Path) -> None:
    """The admin API is for the node's own party: another registered party gets 403."""
    n = start_node(procs, tmp_path, "embedded", datasets={"atomic": V1_TTL})
    other = init_node(
        tmp_path / "other",
        "EU.EORI.NL000000102",
        "Other",
        free_port(),
        ca=tmp_path / "node" / "keys" / "dev-ca",
    )
    dsgo(
        "registry",
        "add",
        "--config",
        n.config,
        "--party-id",
        "EU.EORI.NL000000102",
        "--name",
        "Other",
        "--cert",
        tmp_path / "other" / "keys" / "node.cert.pem",
    )
    token = token_for(other, n.base)
    resp = n.http.put(
        "/admin/datasets/atomic",
        content=V2_TTL.encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/turtle"},
    )
    assert resp.status_code == 403
    assert graph_rows(n, "atomic") == v1_rows(n)


def test_second_process_on_same_store_gets_in_use(procs: ProcessGroup, tmp_path: Path) -> None:
    """A second `dsgo serve` on a served store stops with one "in use" line; the first keeps going."""
    n = start_node(procs, tmp_path, "embedded", datasets={"atomic": V1_TTL})
    second = dsgo(
        "serve", "--config", n.config, "--port", str(free_port()), check=False, timeout=60
    )
    assert_one_line_error(second, "in use")
    listed = dsgo("datasets", "--config", n.config)
    assert listed.stdout.startswith("atomic\t3\t")
    assert graph_rows(n, "atomic") == v1_rows(n)


@pytest.mark.parametrize("backend", ["sparql", "virtuoso"])
def test_external_store_sees_dataset_loaded_by_another_process(
    procs: ProcessGroup, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """Another process writes to the engine directly; the node sees it within its poll interval."""
    engine = request.getfixturevalue("spare_virtuoso") if backend == "virtuoso" else None
    n = start_node(procs, tmp_path, backend, datasets={"bag": BAG_TTL}, virtuoso=engine)
    assert n.sparql("ASK { ?s ?p ?o }").json()["boolean"] is True
    assert n.http.get("/id/building/b9", headers=n.auth()).status_code == 404
    extra = tmp_path / "extra.ttl"
    extra.write_text(V2_TTL)
    dsgo("load", extra, "--dataset", "extra", "--config", n.config)
    deadline = time.monotonic() + 10
    while True:
        graphs = n.sparql("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }")
        found = {b["g"]["value"] for b in graphs.json()["results"]["bindings"]}
        if found == {n.graph("bag"), n.graph("extra")} or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert found == {n.graph("bag"), n.graph("extra")}
    assert n.http.get("/id/building/b9", headers=n.auth()).status_code == 200
    dsgo("datasets", "--config", n.config)  # the CLI reads the engine directly too
