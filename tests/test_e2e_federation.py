"""Issue 6 end to end: a registry, a builder (IFC + BAG) and a renovator (measurements) federating.

Every node is a real `dsgo serve` process; the renovator reaches the builder's data on demand with
its own access token (SERVICE and link dereference), nothing is copied into its store.
"""

from __future__ import annotations

import collections
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest
import rdflib
from nodeproc import (
    DUPLEX_IFC,
    ROOM_SPACES,
    Proc,
    ProcessGroup,
    base_of,
    dsgo,
    free_port,
    init_node,
    select_rows,
    token_for,
    trust_client,
    write_measurements,
)

REGISTRY = "EU.EORI.NL000000100"
BUILDER = "EU.EORI.NL000000101"
RENOVATOR = "EU.EORI.NL000000102"
RESULTS_JSON = "application/sparql-results+json"
BAG = """\
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
<pand/0221100000323434> rdfs:label "Pand 0221100000323434" .
<pand/0221100000999999> rdfs:label "Pand 0221100000999999" .
"""
PREFIXES = """PREFIX sosa: <http://www.w3.org/ns/sosa/> PREFIX qudt: <http://qudt.org/schema/qudt/>
PREFIX dsgo: <https://w3id.org/dsgo-node/def#> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX props: <https://w3id.org/props#>
"""
# The renovator's readings joined with the builder's spaces; {service} / {close} wrap the
# builder's part in SERVICE (federated) or leave it plain (the one-store reference).
JOIN = (
    PREFIXES
    + """SELECT ?space ?code ?long ?area ?co2 WHERE {{
  ?obs sosa:observedProperty dsgo:CO2Concentration ; sosa:hasFeatureOfInterest ?space ;
       sosa:hasResult/qudt:numericValue ?co2 .
  {service}
    ?space rdfs:label ?code ; props:longName ?long .
    OPTIONAL {{ ?space props:area/qudt:numericValue ?area }}
  {close}
}}"""
)


@dataclass
class World:
    root: Path
    procs: ProcessGroup
    builder: Path
    renovator: Path
    builder_url: str
    renovator_url: str
    builder_port: int
    builder_proc: Proc

    def renovator_select(self, query: str) -> httpx.Response:
        """POST /sparql at the renovator as the renovator party (a token via TrustClient)."""
        client = trust_client(self.renovator)
        try:
            return client.request(
                "POST",
                self.renovator_url,
                "/sparql",
                data={"query": query},
                headers={"Accept": RESULTS_JSON},
                timeout=60,
            )
        finally:
            client.close()

    def owner_select(self, config: Path, base: str, query: str) -> httpx.Response:
        token = token_for(config, base)
        return httpx.post(
            f"{base}/sparql",
            data={"query": query},
            headers={"Authorization": f"Bearer {token}", "Accept": RESULTS_JSON},
            timeout=60,
        )

    def owner_dump(self, config: Path, base: str, dataset: str) -> bytes:
        """The dataset's triples as N-Triples, read by the node's owner."""
        token = token_for(config, base)
        query = (
            f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{base}/dataset/{dataset}> {{ ?s ?p ?o }} }}"
        )
        resp = httpx.post(
            f"{base}/sparql",
            data={"query": query},
            headers={"Authorization": f"Bearer {token}", "Accept": "application/n-triples"},
            timeout=60,
        )
        assert resp.status_code == 200, resp.text
        return resp.content

    def federated_join(self) -> str:
        return JOIN.format(service=f"SERVICE <{self.builder_url}/sparql> {{", close="}")


@pytest.fixture(scope="module")
def world(
    module_procs: ProcessGroup, dev_ca: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    root = tmp_path_factory.mktemp("federation")
    reg_port, b_port, r_port = free_port(), free_port(), free_port()
    registry_cfg = init_node(root / "registry", REGISTRY, "Registry", reg_port, ca=dev_ca)
    registry = module_procs.serve(registry_cfg, reg_port, name="registry")
    configs = {}
    for party, name, port in ((BUILDER, "Builder", b_port), (RENOVATOR, "Renovator", r_port)):
        configs[party] = init_node(
            root / name.lower(),
            party,
            name,
            port,
            ca=dev_ca,
            registry_url=registry.base_url,
            registry_id=REGISTRY,
        )
        dsgo(
            *("registry", "add", "--config", registry_cfg, "--party-id", party, "--name", name),
            *("--cert", configs[party].parent / "keys" / "node.cert.pem"),
            *("--capability-url", f"{base_of(configs[party])}/capabilities"),
        )
    builder, renovator = configs[BUILDER], configs[RENOVATOR]
    builder_url, renovator_url = f"http://127.0.0.1:{b_port}", f"http://127.0.0.1:{r_port}"
    ifc = root / "duplex.ifc"
    shutil.copyfile(DUPLEX_IFC, ifc)
    dsgo("connect", "ifc", ifc, "--dataset", "bim", "--config", builder)
    bag = root / "bag.ttl"
    bag.write_text(BAG)
    dsgo("load", bag, "--dataset", "bag", "--config", builder)
    csv_path, mapping = write_measurements(root / "sensors")
    dsgo(
        *("connect", "measurements", csv_path, "--dataset", "measurements"),
        *("--mapping", mapping, "--option", f"feature_base={builder_url}"),
        *("--config", renovator),
    )
    builder_proc = module_procs.serve(builder, b_port, name="builder")
    module_procs.serve(renovator, r_port, name="renovator")
    dsgo("policy", "grant", "--config", builder, "--to", RENOVATOR, "--dataset", "bim")
    yield World(
        root,
        module_procs,
        builder,
        renovator,
        builder_url,
        renovator_url,
        b_port,
        builder_proc,
    )


def multiset(rows: list[tuple]) -> collections.Counter:
    return collections.Counter(rows)


def test_cross_node_dereference_with_automatic_token(world: World) -> None:
    space = f"{world.builder_url}/id/bim/space/{ROOM_SPACES['917810']}"
    # Without a token the builder refuses: the CLI's answer comes from its automatic token.
    assert httpx.get(space, headers={"Accept": "text/turtle"}).status_code == 401
    out = dsgo("get", space, "--config", world.renovator).stdout
    graph = rdflib.Graph().parse(data=out, format="turtle")
    subject = rdflib.URIRef(space)
    assert (subject, rdflib.RDFS.label, rdflib.Literal("A102")) in graph
    assert {str(s) for s in graph.subjects()} >= {space}


def test_federated_join_equals_one_store_evaluation(world: World) -> None:
    federated = select_rows(world.renovator_select(world.federated_join()))
    reference = ox.Store()
    for config, base, dataset in (
        (world.builder, world.builder_url, "bim"),
        (world.renovator, world.renovator_url, "measurements"),
    ):
        reference.load(world.owner_dump(config, base, dataset), format=ox.RdfFormat.N_TRIPLES)
    plain = JOIN.format(service="{", close="}")
    solutions = reference.query(plain)
    names = [v.value for v in solutions.variables]
    expected = [tuple(None if s[n] is None else s[n].value for n in names) for s in solutions]
    # 3 rooms x 4 CO2 readings, each joined with its space.
    assert len(expected) == 12
    assert {row[1] for row in expected} == {"A102", "B102", "A103"}
    assert multiset(federated) == multiset(expected)


def test_remote_policy_narrows_the_federated_query(world: World) -> None:
    query = (
        PREFIXES
        + f"""SELECT ?pand ?label WHERE {{ SERVICE <{world.builder_url}/sparql> {{
          GRAPH <{world.builder_url}/dataset/bag> {{ ?pand rdfs:label ?label }} }} }}"""
    )
    assert select_rows(world.renovator_select(query)) == []
    policy = dsgo(
        "policy", "grant", "--config", world.builder, "--to", RENOVATOR, "--dataset", "bag"
    ).stdout.strip()
    try:
        rows = select_rows(world.renovator_select(query))
    finally:
        dsgo("policy", "revoke", "--config", world.builder, policy)
    assert sorted(rows) == [
        (f"{world.builder_url}/id/pand/0221100000323434", "Pand 0221100000323434"),
        (f"{world.builder_url}/id/pand/0221100000999999", "Pand 0221100000999999"),
    ]
    assert select_rows(world.renovator_select(query)) == []


def test_federated_query_sees_the_builders_new_data(world: World) -> None:
    def long_names() -> set[str]:
        rows = select_rows(world.renovator_select(world.federated_join()))
        return {row[2] for row in rows if row[1] == "A102"}

    assert long_names() == {"Living Room"}
    changed = world.root / "duplex-v2.ifc"
    text = DUPLEX_IFC.read_text(encoding="utf-8", errors="surrogateescape")
    old = "#67=IFCSPACE('0BTBFw6f90Nfh9rP1dlXr2',#33,'A102','',$,#53,#66,'Living Room',"
    assert text.count(old) == 1
    changed.write_text(
        text.replace(old, old.replace("'Living Room'", "'Renovated Lounge'")),
        encoding="utf-8",
        errors="surrogateescape",
    )
    try:
        dsgo("connect", "ifc", changed, "--dataset", "bim", "--config", world.builder)
        assert long_names() == {"Renovated Lounge"}
    finally:
        dsgo(
            "connect",
            "ifc",
            world.root / "duplex.ifc",
            "--dataset",
            "bim",
            "--config",
            world.builder,
        )
    assert long_names() == {"Living Room"}


def test_remote_node_down_is_a_per_source_error(world: World) -> None:
    endpoint = f"{world.builder_url}/sparql"
    world.builder_proc.stop()
    try:
        resp = world.renovator_select(world.federated_join())
        assert resp.status_code == 502, resp.text
        body = resp.json()
        assert body["error"] == "remote_source_failed"
        assert body["endpoint"] == endpoint
        assert body["error_description"]
        silent = JOIN.format(service=f"SERVICE SILENT <{endpoint}> {{", close="}")
        rows = select_rows(world.renovator_select(silent))
        # SILENT: the builder's part contributes one empty solution, so only local bindings remain.
        assert rows and all(row[1] is None and row[2] is None for row in rows)
        assert {row[0] for row in rows} == {
            f"{world.builder_url}/id/bim/space/{gid}" for gid in ROOM_SPACES.values()
        }
    finally:
        world.builder_proc = world.procs.serve(
            world.builder, world.builder_port, name="builder-restarted"
        )
    assert len(select_rows(world.renovator_select(world.federated_join()))) == 12


def test_renovator_store_holds_no_builder_triples(world: World) -> None:
    # Run a federated query once more so this check follows federated traffic in any test order.
    assert select_rows(world.renovator_select(world.federated_join()))
    query = f"""SELECT ?g ?s ?p ?o WHERE {{
      {{ ?s ?p ?o }} UNION {{ GRAPH ?g {{ ?s ?p ?o }} }}
      FILTER(STRSTARTS(STR(?s), "{world.builder_url}/")) }} LIMIT 5"""
    assert select_rows(world.owner_select(world.renovator, world.renovator_url, query)) == []
    graphs = select_rows(
        world.owner_select(
            world.renovator,
            world.renovator_url,
            "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }",
        )
    )
    names = {g for (g,) in graphs}
    assert names and all(g.startswith(f"{world.renovator_url}/dataset/") for g in names)
    assert f"{world.renovator_url}/dataset/measurements" in names
    # The builder's data stays at the builder, where its owner still reads it.
    (count,) = select_rows(
        world.owner_select(
            world.builder,
            world.builder_url,
            f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{world.builder_url}/dataset/bim> {{ ?s ?p ?o }} }}",
        )
    )
    assert int(count[0]) > 10_000
