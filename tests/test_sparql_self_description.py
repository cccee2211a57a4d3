"""Issue 16 parts 3 and 4: the SPARQL endpoint describes itself and works with SPARQLWrapper.

Against a real node process: the SPARQL 1.1 Service Description at GET /sparql (no query) and
VoID per dataset, both scoped to the caller and counted against the data they describe (parsed
here with rdflib, independently of the node), and updated when a dataset gets a new version;
SPARQLWrapper, unmodified and with its defaults, in every return format it offers for SELECT,
ASK, CONSTRUCT and DESCRIBE; the request-charset rule of node.negotiation.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.dom.minidom import Document

import httpx
import pytest
import rdflib
from nodeproc import (
    ProcessGroup,
    dsgo,
    edit_config,
    free_port,
    init_owner_and_guest,
    sparql_backend,
    token_for,
)
from rdflib.namespace import RDF
from SPARQLWrapper import (
    ASK,
    CONSTRUCT,
    CSV,
    DESCRIBE,
    JSON,
    JSONLD,
    N3,
    RDFXML,
    SELECT,
    TSV,
    TURTLE,
    XML,
    SPARQLWrapper,
)

OWNER = "EU.EORI.NL000000101"
READER = "EU.EORI.NL000000201"
SD = rdflib.Namespace("http://www.w3.org/ns/sparql-service-description#")
VOID = rdflib.Namespace("http://rdfs.org/ns/void#")
FORMATS = rdflib.Namespace("http://www.w3.org/ns/formats/")
BIM = """\
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix bot: <https://w3id.org/bot#> .
@prefix ex: <https://example.org/def#> .
<building/b1> a bot:Building ; rdfs:label "Huis"@nl , "House"@en ; ex:height 12 ;
    bot:hasStorey <storey/s1>, <storey/s2> .
<storey/s1> a bot:Storey ; rdfs:label "Begane grond" ; bot:hasSpace <space/r1>, <space/r2> .
<storey/s2> a bot:Storey ; rdfs:label "Eerste verdieping" ; bot:hasSpace <space/r3> .
<space/r1> a bot:Space ; rdfs:label "Woonkamer" .
<space/r2> a bot:Space, bot:Zone ; rdfs:label "Keuken" .
<space/r3> a bot:Space ; rdfs:label "Slaapkamer" ; ex:area 14.5 .
"""
EXTRA = """\
<space/r4> a <https://w3id.org/bot#Space> ; <http://www.w3.org/2000/01/rdf-schema#label> "Zolder" .
"""
BAG = """\
<pand/p1> <http://www.w3.org/2000/01/rdf-schema#label> "Pand 1" .
"""
RDF_PARSERS = {
    "text/turtle": "turtle",
    "application/ld+json": "json-ld",
    "application/n-triples": "nt",
}


@dataclass
class World:
    owner: Path
    reader: Path
    base: str
    root: Path

    def get(self, path: str, token: str | None = None, accept: str = "text/turtle", **params):
        headers = {"Accept": accept}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.get(f"{self.base}{path}", params=params, headers=headers, timeout=60)

    def graph(self, path: str, token: str | None, accept: str = "text/turtle") -> rdflib.Graph:
        resp = self.get(path, token, accept)
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].split(";")[0] == accept
        return rdflib.Graph().parse(data=resp.text, format=RDF_PARSERS[accept])

    def load(self, name: str, text: str) -> None:
        path = self.root / f"{name}.ttl"
        path.write_text(text, encoding="utf-8")
        dsgo("load", path, "--dataset", name, "--config", self.owner)


@pytest.fixture(scope="module")
def world(module_procs: ProcessGroup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("sd")
    port = free_port()
    owner, reader = init_owner_and_guest(root, OWNER, READER, port)
    w = World(owner, reader, f"http://127.0.0.1:{port}", root)
    w.load("bim", BIM)
    w.load("bag", BAG)
    dsgo("policy", "grant", "--config", owner, "--to", READER, "--dataset", "bim")
    module_procs.serve(owner, port, name="owner")
    yield w


def expected(world: World, text: str) -> rdflib.Graph:
    """The dataset as the node stores it (relative IRIs against {base}/id/), parsed by rdflib."""
    return rdflib.Graph().parse(data=text, format="turtle", publicID=f"{world.base}/id/")


def reader_token(world: World) -> str:
    return token_for(world.reader, world.base)


# --- Service Description -----------------------------------------------------------------------


@pytest.mark.parametrize("accept", sorted(RDF_PARSERS))
def test_service_description_for_a_reader(world: World, accept: str) -> None:
    graph = world.graph("/sparql", reader_token(world), accept)
    service = rdflib.URIRef(f"{world.base}/sparql#service")
    assert (service, RDF.type, SD.Service) in graph
    assert graph.value(service, SD.endpoint) == rdflib.URIRef(f"{world.base}/sparql")
    assert (service, SD.supportedLanguage, SD.SPARQL11Query) in graph
    formats = set(graph.objects(service, SD.resultFormat))
    assert {FORMATS.SPARQL_Results_JSON, FORMATS.SPARQL_Results_XML, FORMATS.Turtle} <= formats
    dataset = graph.value(service, SD.defaultDataset)
    named = list(graph.objects(dataset, SD.namedGraph))
    assert [graph.value(n, SD.name) for n in named] == [
        rdflib.URIRef(f"{world.base}/dataset/bim")
    ]  # bag is not the reader's
    described = graph.value(named[0], SD.graph)
    assert int(graph.value(described, VOID.triples)) == len(expected(world, BIM))
    default = graph.value(dataset, SD.defaultGraph)
    assert int(graph.value(default, VOID.triples)) == len(expected(world, BIM))


def test_service_description_anonymous_lists_no_datasets(world: World) -> None:
    graph = world.graph("/sparql", None)
    service = rdflib.URIRef(f"{world.base}/sparql#service")
    assert (service, RDF.type, SD.Service) in graph
    assert not list(graph.objects(None, SD.namedGraph))


def test_service_description_for_the_owner_lists_every_dataset(world: World) -> None:
    graph = world.graph("/sparql", token_for(world.owner, world.base))
    names = {str(n) for n in graph.objects(None, SD.name)}
    assert {f"{world.base}/dataset/bim", f"{world.base}/dataset/bag"} <= names


def test_service_description_refusals(world: World) -> None:
    resp = world.get("/sparql", reader_token(world), "image/png")
    assert resp.status_code == 406 and resp.json()["error"] == "not_acceptable"
    resp = world.get("/sparql", "not-a-token")
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_token"
    # `update` on a GET is not a request for the description: it is refused.
    resp = world.get("/sparql", reader_token(world), update="CLEAR ALL")
    assert resp.status_code == 403, resp.text
    # Nor is a protocol parameter without a query.
    resp = world.get("/sparql", reader_token(world), **{"default-graph-uri": "urn:x"})
    assert resp.status_code == 400 and "query" in resp.json()["error_description"]


def test_service_description_format_parameter(world: World) -> None:
    resp = world.get("/sparql", None, "text/turtle", format="json-ld")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/ld+json")
    graph = rdflib.Graph().parse(data=resp.text, format="json-ld")
    assert (rdflib.URIRef(f"{world.base}/sparql#service"), RDF.type, SD.Service) in graph


# --- VoID --------------------------------------------------------------------------------------


def void_counts(graph: rdflib.Graph, dataset: str) -> dict:
    ds = rdflib.URIRef(dataset)
    classes = {
        str(graph.value(p, VOID["class"])): int(graph.value(p, VOID.entities))
        for p in graph.objects(ds, VOID.classPartition)
    }
    properties = {
        str(graph.value(p, VOID.property)): int(graph.value(p, VOID.triples))
        for p in graph.objects(ds, VOID.propertyPartition)
    }
    return {
        "triples": int(graph.value(ds, VOID.triples)),
        "subjects": int(graph.value(ds, VOID.distinctSubjects)),
        "classes": classes,
        "properties": properties,
    }


def counts_of(data: rdflib.Graph) -> dict:
    classes: dict[str, set] = {}
    for s, o in data.subject_objects(RDF.type):
        classes.setdefault(str(o), set()).add(s)
    properties: dict[str, int] = {}
    for p in data.predicates():
        properties[str(p)] = properties.get(str(p), 0) + 1
    return {
        "triples": len(data),
        "subjects": len(set(data.subjects())),
        "classes": {c: len(s) for c, s in classes.items()},
        "properties": properties,
    }


@pytest.mark.parametrize("accept", sorted(RDF_PARSERS))
def test_void_of_a_dataset_matches_the_data(world: World, accept: str) -> None:
    graph = world.graph("/dataset/bim/void", reader_token(world), accept)
    bim = f"{world.base}/dataset/bim"
    assert (rdflib.URIRef(bim), RDF.type, VOID.Dataset) in graph
    got = void_counts(graph, bim)
    assert got == counts_of(expected(world, BIM))
    assert got["classes"]["https://w3id.org/bot#Space"] == 3
    assert got["properties"]["https://w3id.org/bot#hasSpace"] == 3


def test_well_known_void_is_scoped_to_the_caller(world: World) -> None:
    anonymous = world.graph("/.well-known/void", None)
    assert not list(anonymous.subjects(RDF.type, VOID.Dataset))
    reader = world.graph("/.well-known/void", reader_token(world))
    assert {str(s) for s in reader.subjects(RDF.type, VOID.Dataset)} == {
        f"{world.base}/dataset/bim"
    }
    owner = world.graph("/.well-known/void", token_for(world.owner, world.base))
    bag = void_counts(owner, f"{world.base}/dataset/bag")
    assert bag == counts_of(expected(world, BAG))


def test_void_refusals(world: World) -> None:
    token = reader_token(world)
    resp = world.get("/dataset/bag/void", token)  # exists, but not the reader's
    assert resp.status_code == 404 and resp.json()["error"] == "not_found"
    resp = world.get("/dataset/nope/void", token)
    assert resp.status_code == 404
    resp = world.get("/dataset/NOT_A_NAME/void", token)
    assert resp.status_code == 400, resp.text
    resp = world.get("/dataset/bim/void")
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_token"
    resp = world.get("/dataset/bim/void", token, "image/png")
    assert resp.status_code == 406


def test_void_under_a_partial_grant_counts_only_what_the_caller_sees(world: World) -> None:
    """A type-and-attribute grant: VoID counts exactly the triples the reader can query."""
    dsgo("policy", "revoke", "--config", world.owner, _policy_id(world, "bim"))
    out = dsgo(
        *("policy", "grant", "--config", world.owner, "--to", READER),
        *("--type", "bot:Space", "--attributes", "rdfs:label"),
    )
    policy = out.stdout.strip()
    try:
        token = reader_token(world)
        graph = world.graph("/dataset/bim/void", token)
        got = void_counts(graph, f"{world.base}/dataset/bim")
        resp = world.get(
            "/sparql",
            token,
            "application/sparql-results+json",
            query="SELECT ?s ?p ?o WHERE { ?s ?p ?o }",
        )
        rows = resp.json()["results"]["bindings"]
        assert got["triples"] == len(rows) == 3  # the three spaces' labels, nothing else
        assert got["subjects"] == 3
        assert got["properties"] == {"http://www.w3.org/2000/01/rdf-schema#label": 3}
        assert got["classes"] == {}  # rdf:type is not among the granted attributes
        sd = world.graph("/sparql", token)
        assert {int(o) for o in sd.objects(None, VOID.triples)} == {3}
    finally:
        dsgo("policy", "revoke", "--config", world.owner, policy)
        dsgo("policy", "grant", "--config", world.owner, "--to", READER, "--dataset", "bim")


def _policy_id(world: World, dataset: str) -> str:
    listed = dsgo("policy", "list", "--config", world.owner, "--to", READER).stdout
    for line in listed.splitlines():
        if f"/dataset/{dataset}" in line:
            return json.loads(line)["id"]
    raise AssertionError(f"no policy for {dataset}: {listed}")


def test_void_and_service_description_follow_a_new_version(world: World) -> None:
    token = reader_token(world)
    before = void_counts(world.graph("/dataset/bim/void", token), f"{world.base}/dataset/bim")
    world.load("bim", BIM + EXTRA)  # through the running node's admin API
    try:
        after = void_counts(world.graph("/dataset/bim/void", token), f"{world.base}/dataset/bim")
        assert after == counts_of(expected(world, BIM + EXTRA))
        assert after["triples"] == before["triples"] + 2
        sd = world.graph("/sparql", token)
        named = next(iter(sd.objects(None, SD.namedGraph)))
        assert int(sd.value(sd.value(named, SD.graph), VOID.triples)) == after["triples"]
    finally:
        world.load("bim", BIM)


# --- SPARQLWrapper with its defaults -----------------------------------------------------------

S1 = "building/b1"
QUERIES = {
    SELECT: "SELECT ?s ?label WHERE {{ ?s <http://www.w3.org/2000/01/rdf-schema#label> ?label }}",
    ASK: "ASK {{ <{base}/id/building/b1> a <https://w3id.org/bot#Building> }}",
    CONSTRUCT: "CONSTRUCT {{ ?s a ?c }} WHERE {{ ?s a ?c }}",
    DESCRIBE: "DESCRIBE <{base}/id/building/b1>",
}
# Every (query form, return format) for which SPARQLWrapper sends a specific Accept header
# (its _getAcceptHeader): SELECT/ASK in XML, JSON, CSV, TSV; CONSTRUCT/DESCRIBE in XML, RDF/XML,
# Turtle, N3 and JSON-LD.
CASES = [(q, f) for q in (SELECT, ASK) for f in (XML, JSON, CSV, TSV)] + [
    (q, f) for q in (CONSTRUCT, DESCRIBE) for f in (XML, RDFXML, TURTLE, N3, JSONLD)
]
MEDIA = {
    XML: "application/sparql-results+xml",
    JSON: "application/sparql-results+json",
    CSV: "text/csv",
    TSV: "text/tab-separated-values",
}
GRAPH_MEDIA = {
    XML: "application/rdf+xml",
    RDFXML: "application/rdf+xml",
    TURTLE: "text/turtle",
    N3: "text/turtle",
    JSONLD: "application/ld+json",
}


def wrapper(world: World, query: str, fmt: str) -> SPARQLWrapper:
    client = SPARQLWrapper(f"{world.base}/sparql")
    client.addCustomHttpHeader("Authorization", f"Bearer {reader_token(world)}")
    client.setQuery(query.format(base=world.base))
    client.setReturnFormat(fmt)
    return client


@pytest.mark.parametrize(("form", "fmt"), CASES, ids=[f"{q}-{f}" for q, f in CASES])
def test_sparqlwrapper_with_its_defaults(world: World, form: str, fmt: str) -> None:
    data = expected(world, BIM)
    with warnings.catch_warnings():
        # SPARQLWrapper warns when the answer is not in the format it asked for
        warnings.simplefilter("error", RuntimeWarning)
        result = wrapper(world, QUERIES[form], fmt).query()
        converted = result.convert()
    graph_form = form in (CONSTRUCT, DESCRIBE)
    assert (
        result.info()["content-type"].split(";")[0] == (GRAPH_MEDIA if graph_form else MEDIA)[fmt]
    )
    labels = sorted(str(o) for o in data.objects(None, rdflib.RDFS.label))
    if form == SELECT and fmt == JSON:
        got = sorted(b["label"]["value"] for b in converted["results"]["bindings"])
        assert got == labels
    elif form == SELECT and fmt == XML:
        assert isinstance(converted, Document)
        assert len(converted.getElementsByTagName("result")) == len(labels)
    elif form == SELECT:  # CSV / TSV: bytes, a header line and one line per row
        lines = converted.decode().strip().splitlines()
        assert len(lines) == 1 + len(labels)
    elif form == ASK and fmt == JSON:
        assert converted["boolean"] is True
    elif form == ASK and fmt == XML:
        (node,) = converted.getElementsByTagName("boolean")
        assert node.firstChild.data == "true"
    elif form == ASK:
        assert converted.decode().split()[-1] == "true"
    elif isinstance(converted, bytes):  # Turtle and N3: SPARQLWrapper hands over the text
        assert fmt in (TURTLE, N3)
        converted = rdflib.Graph().parse(data=converted, format="turtle")
    if form == CONSTRUCT:
        assert isinstance(converted, rdflib.Graph)
        assert set(converted) == set(data.triples((None, RDF.type, None)))
    elif form == DESCRIBE:  # the building's own triples
        b1 = rdflib.URIRef(f"{world.base}/id/{S1}")
        assert set(converted.triples((b1, None, None))) == set(data.triples((b1, None, None)))


def test_sparqlwrapper_post_with_its_defaults(world: World) -> None:
    """The same client switched to POST (a form body that repeats `format`)."""
    client = wrapper(world, QUERIES[CONSTRUCT], XML)
    client.setMethod("POST")
    converted = client.query().convert()
    assert set(converted) == set(expected(world, BIM).triples((None, RDF.type, None)))


def test_format_the_node_cannot_make_falls_back_to_accept(world: World) -> None:
    token = reader_token(world)
    query = "CONSTRUCT { ?s a ?c } WHERE { ?s a ?c }"
    resp = world.get("/sparql", token, "application/n-triples", query=query, format="csv")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/n-triples")
    resp = world.get("/sparql", token, "image/png", query=query, format="csv")
    assert resp.status_code == 406 and resp.json()["error"] == "not_acceptable"
    resp = world.get("/sparql", token, "text/csv", query="ASK {}", format="xml")
    assert resp.headers["content-type"].startswith("application/sparql-results+xml")


# --- request charsets --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ctype", "body", "status"),
    [
        ("application/sparql-query", b"ASK {}", 200),
        ("application/sparql-query; charset=utf-8", "ASK { FILTER('é' != '') }".encode(), 200),
        ("application/sparql-query; charset=UTF-8", b"ASK {}", 200),
        ("application/sparql-query; charset=us-ascii", b"ASK {}", 200),
        # The W3C protocol case: an ASCII body declared ISO-8859-1.
        ("application/sparql-query; charset=ISO-8859-1", b"ASK {}", 415),
        (
            "application/sparql-query; charset=iso-8859-1",
            "ASK { FILTER('é') }".encode("latin-1"),
            415,
        ),
        ("application/sparql-query; charset=us-ascii", "ASK { FILTER('é') }".encode(), 415),
        ("application/sparql-query", "ASK { FILTER('é') }".encode("latin-1"), 400),
        ("application/x-www-form-urlencoded; charset=windows-1252", b"query=ASK+%7B%7D", 415),
        ("application/x-www-form-urlencoded; charset=utf-8", b"query=ASK+%7B%7D", 200),
    ],
)
def test_declared_charset_rule(world: World, ctype: str, body: bytes, status: int) -> None:
    resp = httpx.post(
        f"{world.base}/sparql",
        content=body,
        headers={
            "Authorization": f"Bearer {reader_token(world)}",
            "Content-Type": ctype,
            "Accept": "application/sparql-results+json",
        },
    )
    assert resp.status_code == status, resp.text
    if status != 200:
        assert resp.json()["error_description"]
        if status == 415:
            assert "charset" in resp.json()["error_description"]


# --- the external engine (store.backend = "sparql") ---------------------------------------------


def test_void_and_service_description_with_the_external_engine(procs, tmp_path: Path) -> None:
    """The same counts when the data lives in `oxigraph serve`, and a new version shows."""
    port = free_port()
    owner, _ = init_owner_and_guest(tmp_path, OWNER, READER, port)
    engine = procs.oxigraph(tmp_path / "oxigraph", free_port())
    edit_config(owner, {"store": sparql_backend(engine.base_url)})
    w = World(owner, owner, f"http://127.0.0.1:{port}", tmp_path)
    w.load("bim", BIM)
    procs.serve(owner, port, name="owner-external")
    token = token_for(owner, w.base)
    bim = f"{w.base}/dataset/bim"
    assert void_counts(w.graph("/dataset/bim/void", token), bim) == counts_of(expected(w, BIM))
    w.load("bim", BIM + EXTRA)  # through the node's admin API, into the engine
    deadline = time.monotonic() + 10
    while True:  # the engine's version is looked at once a second
        got = void_counts(w.graph("/dataset/bim/void", token), bim)
        if got["triples"] == len(expected(w, BIM + EXTRA)) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert got == counts_of(expected(w, BIM + EXTRA))
    sd = w.graph("/sparql", token)
    (named,) = sd.subjects(SD.name, rdflib.URIRef(bim))
    assert int(sd.value(sd.value(named, SD.graph), VOID.triples)) == got["triples"]
