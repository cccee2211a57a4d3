"""Issue 4 end to end: a builder node (also the registry), a renovator party, CLI-managed policies."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import rdflib
from nodeproc import ProcessGroup, dsgo, edit_config, free_port, init_owner_and_guest, token_for
from rdflib.namespace import RDFS

BUILDER = "EU.EORI.NL000000101"
RENOVATOR = "EU.EORI.NL000000201"
BIM = """\
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix bot: <https://w3id.org/bot#> .
@prefix ex: <https://example.org/def#> .
<building/b1> a bot:Building ; rdfs:label "Huis"@nl , "House"@en ; ex:height 12 ;
    bot:hasStorey <storey/s1> .
<storey/s1> a bot:Storey ; rdfs:label "Begane grond" .
"""
BAG = """\
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
<pand/p1> rdfs:label "Pand 1" ; <https://example.org/def#bouwjaar> 1930 .
"""


@dataclass
class World:
    """The builder node serving bim + bag, and the renovator's identity registered there."""

    builder: Path
    renovator: Path
    base: str

    def token(self) -> str:
        return token_for(self.renovator, self.base)

    def get(self, path: str, token: str, accept: str = "text/turtle", **params: str):
        headers = {"Authorization": f"Bearer {token}", "Accept": accept}
        return httpx.get(f"{self.base}{path}", params=params, headers=headers)

    def select(self, token: str, query: str) -> httpx.Response:
        return self.get("/sparql", token, "application/sparql-results+json", query=query)

    def grant(self, *args: str) -> str:
        out = dsgo("policy", "grant", "--config", self.builder, "--to", RENOVATOR, *args)
        return out.stdout.strip()

    def revoke(self, policy_id: str) -> None:
        dsgo("policy", "revoke", "--config", self.builder, policy_id)


@pytest.fixture(scope="module")
def world(module_procs: ProcessGroup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("authz")
    port = free_port()
    builder, renovator = init_owner_and_guest(root, BUILDER, RENOVATOR, port)
    base = f"http://127.0.0.1:{port}"
    for name, text in (("bim", BIM), ("bag", BAG)):
        path = root / f"{name}.ttl"
        path.write_text(text)
        dsgo("load", path, "--dataset", name, "--config", builder)
    edit_config(builder, {"catalog": {"advertise": ["bag"]}})
    module_procs.serve(builder, port, name="builder")
    yield World(builder, renovator, base)


def rows(resp: httpx.Response) -> set[tuple[str, ...]]:
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    names = doc["head"]["vars"]
    return {tuple(b[v]["value"] for v in names) for b in doc["results"]["bindings"]}


def owner_rows(world: World, graph: str) -> set[tuple[str, ...]]:
    token = token_for(world.builder, world.base)
    query = f"SELECT ?s ?p ?o WHERE {{ GRAPH <{world.base}/dataset/{graph}> {{ ?s ?p ?o }} }}"
    return rows(world.select(token, query))


def assert_denied(resp: httpx.Response) -> dict:
    """403 with an explanation naming the renovator and a Deny decision."""
    assert resp.status_code == 403, resp.text
    body = resp.json()
    assert body["error"] == "access_denied"
    assert body["explanation"]["decision"] == "Deny"
    assert body["explanation"]["party"] == RENOVATOR
    return body


def test_no_policy_means_403_with_explanation(world: World) -> None:
    assert dsgo("policy", "list", "--config", world.builder, "--to", RENOVATOR).stdout.startswith(
        "no policies"
    )
    token = world.token()
    body = assert_denied(world.get("/id/building/b1", token))
    assert "deny by default" in body["explanation"]["rule"]
    assert_denied(world.select(token, "SELECT * WHERE { ?s ?p ?o }"))
    catalog = world.get("/catalog", token)
    # bim is not advertised: invisible. bag is advertised: listed with an offer, no statistics.
    assert "dataset/bim" not in catalog.text
    assert "dataset/bag#offer" in catalog.text and "void#triples" not in catalog.text


def test_dataset_grant_reads_exactly_that_dataset_until_revoked(world: World) -> None:
    token = world.token()
    policy_id = world.grant("--dataset", "bim")
    try:
        listed = dsgo("policy", "list", "--config", world.builder, "--to", RENOVATOR).stdout
        assert policy_id in listed
        everything = rows(world.select(token, "SELECT ?s ?p ?o WHERE { ?s ?p ?o }"))
        bim = owner_rows(world, "bim")
        assert everything == bim and len(bim) == 7
        assert not everything & owner_rows(world, "bag")
        graphs = rows(world.select(token, "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"))
        assert graphs == {(f"{world.base}/dataset/bim",)}
        from_bag = world.select(
            token, f"SELECT * FROM <{world.base}/dataset/bag> WHERE {{ ?s ?p ?o }}"
        )
        assert rows(from_bag) == set()
        assert world.get("/id/building/b1", token).status_code == 200
        assert_denied(world.get("/id/pand/p1", token))
        catalog = rdflib.Graph().parse(data=world.get("/catalog", token).text, format="turtle")
        readable = {
            str(s) for s in catalog.subjects(rdflib.URIRef("http://rdfs.org/ns/void#triples"), None)
        }
        assert readable == {f"{world.base}/dataset/bim"}  # bag is only advertised, with an offer
    finally:
        world.revoke(policy_id)
    assert_denied(world.get("/id/building/b1", token))
    assert_denied(world.select(token, "SELECT * WHERE { ?s ?p ?o }"))
    assert policy_id not in dsgo("policy", "list", "--config", world.builder).stdout


def test_attribute_limited_grant_returns_only_those_properties(world: World) -> None:
    token = world.token()
    policy_id = world.grant("--type", "bot:Building", "--attributes", "rdfs:label")
    try:
        resp = world.get("/id/building/b1", token, accept="application/n-triples")
        assert resp.status_code == 200, resp.text
        graph = rdflib.Graph().parse(data=resp.text, format="nt")
        b1 = rdflib.URIRef(f"{world.base}/id/building/b1")
        assert set(graph.predicates()) == {RDFS.label}
        assert set(graph.objects(b1, RDFS.label)) == {
            rdflib.Literal("Huis", lang="nl"),
            rdflib.Literal("House", lang="en"),
        }
        assert_denied(world.get("/id/storey/s1", token))
        labels = rows(world.select(token, "SELECT ?s ?p ?o WHERE { ?s ?p ?o }"))
        assert {p for _, p, _ in labels} == {str(RDFS.label)}
        assert {s for s, _, _ in labels} == {str(b1)}
    finally:
        world.revoke(policy_id)
    assert_denied(world.get("/id/building/b1", token))


def test_unknown_policy_revoke_fails(world: World) -> None:
    proc = dsgo("policy", "revoke", "--config", world.builder, "nope", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr


def test_catalog_offers_advertised_datasets_the_caller_may_not_read(world: World) -> None:
    """Advertised datasets outside the caller's grants appear with an ODRL offer, not their data."""
    odrl = rdflib.Namespace("http://www.w3.org/ns/odrl/2/")
    dcat = rdflib.Namespace("http://www.w3.org/ns/dcat#")
    policy = world.grant("--dataset", "bim")
    try:
        resp = world.get("/catalog", world.token(), "text/turtle")
        assert resp.status_code == 200
        graph = rdflib.Graph().parse(data=resp.text, format="turtle")
        bag = rdflib.URIRef(f"{world.base}/dataset/bag")
        bim = rdflib.URIRef(f"{world.base}/dataset/bim")
        offers = {o for o in graph.objects(bag, odrl.hasPolicy)}
        assert len(offers) == 1
        (offer,) = offers
        assert (offer, rdflib.RDF.type, odrl.Offer) in graph
        assert (offer, odrl.target, bag) in graph
        # bag's statistics stay hidden; bim (granted) has them and no offer.
        assert not list(graph.objects(bag, rdflib.URIRef("http://rdfs.org/ns/void#triples")))
        assert list(graph.objects(bim, rdflib.URIRef("http://rdfs.org/ns/void#triples")))
        assert not list(graph.objects(bim, odrl.hasPolicy))
        assert (bim, rdflib.RDF.type, dcat.Dataset) in graph
    finally:
        world.revoke(policy)


def test_delegation_evidence_header_that_does_not_verify_is_refused(world: World) -> None:
    """Forged, malformed or oversized evidence is an error, never a silent fall-back to no evidence."""
    token = world.token()
    query = {"query": "SELECT * WHERE { ?s ?p ?o } LIMIT 1"}
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/sparql-results+json"}
    # A JWT-shaped string that no register signed, and one that is not a JWT at all.
    forged = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJ4In0.c2ln"
    for evidence in (forged, "not-a-jwt"):
        resp = httpx.get(
            f"{world.base}/sparql",
            params=query,
            headers={**headers, "Delegation-Evidence": evidence},
        )
        assert resp.status_code == 401, resp.text
        assert "delegation_evidence" in resp.json()["error_description"]
    resp = httpx.get(
        f"{world.base}/sparql",
        params=query,
        headers={**headers, "Delegation-Evidence": "x" * (40 * 1024)},
    )
    assert resp.status_code == 400, resp.text
    assert "delegation_evidence" in resp.json()["error_description"]
