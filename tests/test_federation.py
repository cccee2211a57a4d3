"""Federated SERVICE evaluation against real `oxigraph serve` endpoints."""

from __future__ import annotations

import math
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest

from node.sparql.federation import (
    RemoteSourceError,
    RemoteTimeout,
    ServiceNotAllowed,
    UnsupportedService,
    evaluate_federated,
    http_fetch,
)

OXIGRAPH = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "oxigraph"
PREFIXES = """PREFIX sosa: <http://www.w3.org/ns/sosa/>
PREFIX qudt: <http://qudt.org/schema/qudt/>
PREFIX props: <https://w3id.org/props#>
PREFIX bot: <https://w3id.org/bot#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX ex: <http://127.0.0.1/id/>
"""
SPACES = 240  # spaces in the building model
MEASURED = 180  # spaces with sensors (some of them unknown to the building model)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OxigraphServer:
    """A real `oxigraph serve` process over a directory loaded with one Turtle file."""

    def __init__(self, tmp: Path, turtle: str):
        self.dir = tmp
        data = tmp / "data.ttl"
        data.write_text(turtle)
        subprocess.run(
            [OXIGRAPH, "load", "--location", str(tmp / "db"), "--file", str(data)],
            check=True,
            capture_output=True,
        )
        self.port = free_port()
        self.proc = subprocess.Popen(
            [OXIGRAPH, "serve", "--location", str(tmp / "db"), "--bind", f"127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.endpoint = f"http://127.0.0.1:{self.port}/query"
        for _ in range(200):
            try:
                httpx.get(self.endpoint, params={"query": "ASK {}"}, timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("oxigraph serve did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def building_ttl() -> str:
    lines = [PREFIXES.replace("PREFIX", "@prefix").replace(">\n", "> .\n")]
    for n in range(SPACES):
        lines.append(
            f"ex:space{n} a bot:Space ; props:area [ qudt:numericValue {10 + n % 37}.5 ] ;"
            f" bot:storey ex:storey{n % 4} ."
        )
        if n % 3 == 0:
            lines.append(f'ex:space{n} rdfs:label "Room {n}" .')
    return "\n".join(lines)


def bag_ttl() -> str:
    lines = [PREFIXES.replace("PREFIX", "@prefix").replace(">\n", "> .\n")]
    for k in range(4):
        lines.append(f'ex:storey{k} rdfs:label "Storey {k}" ; ex:level {k} .')
    return "\n".join(lines)


def measurements_ttl() -> str:
    lines = [PREFIXES.replace("PREFIX", "@prefix").replace(">\n", "> .\n")]
    for n in range(MEASURED):
        space = n * 2 % (SPACES + 40)  # every other space, and some the model does not know
        for k in range(3):
            lines.append(
                f"ex:obs{n}_{k} sosa:hasFeatureOfInterest ex:space{space} ;"
                f" sosa:observedProperty ex:co2 ;"
                f" sosa:hasResult [ qudt:numericValue {400 + (n * 7 + k * 13) % 600} ] ."
            )
    return "\n".join(lines)


@pytest.fixture(scope="module")
def remotes(tmp_path_factory):
    building = OxigraphServer(tmp_path_factory.mktemp("building"), building_ttl())
    try:
        bag = OxigraphServer(tmp_path_factory.mktemp("bag"), bag_ttl())
    except Exception:
        building.stop()
        raise
    yield {"building": building.endpoint, "bag": bag.endpoint}
    building.stop()
    bag.stop()


@pytest.fixture(scope="module")
def stores():
    local = ox.Store()
    local.load(measurements_ttl(), format=ox.RdfFormat.TURTLE)
    merged = ox.Store()
    merged.load(measurements_ttl(), format=ox.RdfFormat.TURTLE)
    merged.load(building_ttl(), format=ox.RdfFormat.TURTLE)
    merged.load(bag_ttl(), format=ox.RdfFormat.TURTLE)
    return local, merged


@pytest.fixture(scope="module")
def client():
    with httpx.Client() as c:
        yield c


class Recorder:
    """Wraps a fetch and keeps every query it sent."""

    def __init__(self, fetch):
        self.fetch = fetch
        self.sent: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, endpoint, query, timeout):
        with self.lock:
            self.sent.append((endpoint, query))
        return self.fetch(endpoint, query, timeout)


def rows(result) -> Counter:
    if isinstance(result, ox.QueryBoolean):
        return Counter([bool(result)])
    if isinstance(result, ox.QueryTriples):
        return Counter(str(t) for t in result)
    width = len(result.variables)
    return Counter(tuple(str(s[i]) for i in range(width)) for s in result)


FEDERATED = {
    "join_aggregate": """
SELECT ?space ?area (AVG(?co2) AS ?avg) (COUNT(*) AS ?n) WHERE {
  ?obs sosa:hasFeatureOfInterest ?space ; sosa:observedProperty ?prop ; sosa:hasResult/qudt:numericValue ?co2 .
  SERVICE <BUILDING> { ?space props:area/qudt:numericValue ?area }
} GROUP BY ?space ?area""",
    "optional_inside_service_and_filter": """
SELECT ?space ?label ?co2 WHERE {
  ?obs sosa:hasFeatureOfInterest ?space ; sosa:hasResult/qudt:numericValue ?co2 .
  FILTER(?co2 > 700)
  SERVICE <BUILDING> { ?space a bot:Space . OPTIONAL { ?space rdfs:label ?label } }
}""",
    "optional_service": """
SELECT ?space ?area WHERE {
  ?obs sosa:hasFeatureOfInterest ?space .
  OPTIONAL { SERVICE <BUILDING> { ?space props:area/qudt:numericValue ?area } }
}""",
    "filter_on_remote_value": """
SELECT ?space (MAX(?co2) AS ?max) WHERE {
  ?obs sosa:hasFeatureOfInterest ?space ; sosa:hasResult/qudt:numericValue ?co2 .
  SERVICE <BUILDING> { ?space props:area/qudt:numericValue ?area }
  FILTER(?area > 30)
} GROUP BY ?space HAVING (MAX(?co2) > 800) ORDER BY DESC(?max) ?space""",
    "two_endpoints": """
SELECT ?storeyLabel (COUNT(DISTINCT ?space) AS ?spaces) (SUM(?co2) AS ?total) WHERE {
  ?obs sosa:hasFeatureOfInterest ?space ; sosa:hasResult/qudt:numericValue ?co2 .
  SERVICE <BUILDING> { ?space bot:storey ?storey }
  SERVICE <BAG> { ?storey rdfs:label ?storeyLabel ; ex:level ?level FILTER(?level >= 1) }
} GROUP BY ?storeyLabel""",
    "union_branch": """
SELECT ?x WHERE {
  { ?obs sosa:hasFeatureOfInterest ?x }
  UNION
  { SERVICE <BAG> { ?x ex:level ?l } }
}""",
    "no_shared_variables": """
SELECT ?label WHERE { SERVICE <BAG> { ?s rdfs:label ?label ; ex:level ?l } }""",
    "minus_service": """
SELECT DISTINCT ?space WHERE {
  ?obs sosa:hasFeatureOfInterest ?space .
  MINUS { SERVICE <BUILDING> { ?space rdfs:label ?l } }
}""",
    "ask": """ASK { ?o sosa:hasFeatureOfInterest ?s . SERVICE <BUILDING> { ?s rdfs:label "Room 42" } }""",
    "construct": """
CONSTRUCT { ?space ex:area ?area } WHERE {
  ?obs sosa:hasFeatureOfInterest ?space .
  SERVICE <BUILDING> { ?space props:area/qudt:numericValue ?area }
}""",
}


def _texts(query: str, remotes: dict) -> tuple[str, str]:
    federated = PREFIXES + query.replace("BUILDING", remotes["building"]).replace(
        "BAG", remotes["bag"]
    )
    merged = PREFIXES + query.replace("SERVICE <BUILDING>", "").replace("SERVICE <BAG>", "")
    return federated, merged


@pytest.mark.parametrize("name", sorted(FEDERATED))
def test_federated_equals_merged_store(name, remotes, stores, client):
    local, merged = stores
    federated, single = _texts(FEDERATED[name], remotes)
    expected = rows(merged.query(single))
    assert expected and expected != Counter([False])  # each case has a non-trivial answer
    answer = evaluate_federated(
        federated, local=local.query, fetch=http_fetch(client), batch_size=50
    )
    assert rows(answer.result) == expected
    assert all(s.error is None for s in answer.sources)
    assert answer.requests >= len(answer.sources) > 0


def test_order_by_preserved(remotes, stores, client):
    local, merged = stores
    federated, single = _texts(FEDERATED["filter_on_remote_value"], remotes)
    answer = evaluate_federated(federated, local=local.query, fetch=http_fetch(client))
    got = [tuple(str(v) for v in s) for s in answer.result]
    assert got == [tuple(str(v) for v in s) for s in merged.query(single)]


def test_values_batches(remotes, stores, client):
    local, _ = stores
    federated, _ = _texts(FEDERATED["join_aggregate"], remotes)
    shared = len({str(s[0]) for s in local.query(PREFIXES + FEDERATED_SPACES)})
    assert shared > 60
    recorder = Recorder(http_fetch(client))
    answer = evaluate_federated(federated, local=local.query, fetch=recorder, batch_size=25)
    assert len(recorder.sent) == math.ceil(shared / 25) > 1
    assert answer.requests == len(recorder.sent)
    assert all("VALUES (?space)" in q for _, q in recorder.sent)
    sent = sum(q.count("(<http://127.0.0.1/id/space") for _, q in recorder.sent)
    assert sent == shared == answer.sources[0].bindings_sent
    assert answer.sources[0].rows < SPACES  # only the joined part of the model came back


FEDERATED_SPACES = "SELECT DISTINCT ?s WHERE { ?o sosa:hasFeatureOfInterest ?s ; sosa:observedProperty ?p ; sosa:hasResult/qudt:numericValue ?v }"


def test_batch_size_does_not_change_result(remotes, stores, client):
    local, _ = stores
    federated, _ = _texts(FEDERATED["two_endpoints"], remotes)
    results = [
        rows(
            evaluate_federated(
                federated, local=local.query, fetch=http_fetch(client), batch_size=b
            ).result
        )
        for b in (1, 7, 1000)
    ]
    assert results[0] == results[1] == results[2]


def test_remote_down_names_endpoint(stores, client):
    local, _ = stores
    endpoint = f"http://127.0.0.1:{free_port()}/query"
    query = (
        PREFIXES
        + f"SELECT * WHERE {{ ?o sosa:hasFeatureOfInterest ?s . SERVICE <{endpoint}> {{ ?s a bot:Space }} }}"
    )
    with pytest.raises(RemoteSourceError) as info:
        evaluate_federated(query, local=local.query, fetch=http_fetch(client))
    assert info.value.endpoint == endpoint
    assert info.value.status == 502
    body = info.value.to_json()
    assert body["endpoint"] == endpoint and "connect" in body["error_description"]


def test_remote_down_silent_yields_one_empty_solution(stores, client):
    local, _ = stores
    endpoint = f"http://127.0.0.1:{free_port()}/query"
    query = (
        PREFIXES
        + f"SELECT ?s ?kind WHERE {{ ?o sosa:hasFeatureOfInterest ?s . SERVICE SILENT <{endpoint}> {{ ?s a ?kind }} }}"
    )
    answer = evaluate_federated(query, local=local.query, fetch=http_fetch(client))
    got = rows(answer.result)
    expected = rows(
        local.query(PREFIXES + "SELECT ?s ?kind WHERE { ?o sosa:hasFeatureOfInterest ?s }")
    )
    assert got == expected and len(expected) > 0
    assert all(row[1] == "None" for row in got)
    (report,) = answer.sources
    assert report.endpoint == endpoint and report.silent and "connect" in report.error


def test_remote_http_error_is_reported(remotes, stores, client):
    local, _ = stores
    endpoint = remotes["building"].replace("/query", "/no-such-path")
    query = PREFIXES + f"SELECT * WHERE {{ SERVICE <{endpoint}> {{ ?s a bot:Space }} }}"
    with pytest.raises(RemoteSourceError) as info:
        evaluate_federated(query, local=local.query, fetch=http_fetch(client))
    assert info.value.endpoint == endpoint and "HTTP 404" in info.value.reason


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/sparql"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_timeout_names_endpoint(silent_server, stores, client):
    local, _ = stores
    query = PREFIXES + f"SELECT * WHERE {{ SERVICE <{silent_server}> {{ ?s a bot:Space }} }}"
    with pytest.raises(RemoteTimeout) as info:
        evaluate_federated(query, local=local.query, fetch=http_fetch(client), timeout=0.3)
    assert info.value.endpoint == silent_server
    assert info.value.status == 504
    assert info.value.to_json()["error"] == "remote_source_timeout"


def test_timeout_silent(silent_server, remotes, stores, client):
    local, merged = stores
    query = PREFIXES + (
        f"SELECT ?space ?area WHERE {{ ?o sosa:hasFeatureOfInterest ?space ."
        f" SERVICE <{remotes['building']}> {{ ?space props:area/qudt:numericValue ?area }}"
        f" SERVICE SILENT <{silent_server}> {{ ?space rdfs:comment ?c }} }}"
    )
    answer = evaluate_federated(query, local=local.query, fetch=http_fetch(client), timeout=0.3)
    expected = merged.query(
        PREFIXES
        + "SELECT ?space ?area WHERE { ?o sosa:hasFeatureOfInterest ?space . ?space props:area/qudt:numericValue ?area }"
    )
    assert rows(answer.result) == rows(expected)
    assert answer.sources[0].error is None
    assert "no answer within" in answer.sources[1].error


def test_nothing_written_to_local_store(remotes, stores, client):
    local, _ = stores
    before = len(local)
    for name in ("join_aggregate", "two_endpoints", "construct"):
        federated, _ = _texts(FEDERATED[name], remotes)
        result = evaluate_federated(federated, local=local.query, fetch=http_fetch(client)).result
        rows(result)
    assert len(local) == before
    assert not list(local.named_graphs())


@pytest.mark.parametrize(
    "query, error",
    [
        ("SELECT * WHERE { SERVICE ?ep { ?s ?p ?o } }", UnsupportedService),
        (
            "SELECT * WHERE { SERVICE <http://127.0.0.1:1/a> { SERVICE <http://127.0.0.1:1/b> { ?s ?p ?o } } }",
            UnsupportedService,
        ),
        ("SELECT * WHERE { SERVICE <ftp://127.0.0.1/x> { ?s ?p ?o } }", UnsupportedService),
        (
            "SELECT * WHERE { ?s ?p ?o FILTER EXISTS { SERVICE <http://127.0.0.1:1/x> { ?s ?p ?o } } }",
            None,
        ),
    ],
)
def test_rejections(query, error, stores, client):
    local, _ = stores
    if error is None:  # a SERVICE inside EXISTS is a normal pattern: it is evaluated
        with pytest.raises(RemoteSourceError):
            evaluate_federated(query, local=local.query, fetch=http_fetch(client), timeout=1)
        return
    with pytest.raises(error) as info:
        evaluate_federated(query, local=local.query, fetch=http_fetch(client))
    assert info.value.status == 400


def test_endpoint_allow_list(remotes, stores, client):
    local, _ = stores
    federated, _ = _texts(FEDERATED["two_endpoints"], remotes)
    recorder = Recorder(http_fetch(client))
    with pytest.raises(ServiceNotAllowed) as info:
        evaluate_federated(
            federated,
            local=local.query,
            fetch=recorder,
            endpoint_allowed=lambda ep: ep == remotes["building"],
        )
    assert info.value.status == 403 and info.value.endpoint == remotes["bag"]
    assert recorder.sent == []  # refused before any call


def test_query_without_service_runs_locally(stores, client):
    local, _ = stores
    recorder = Recorder(http_fetch(client))
    answer = evaluate_federated(
        PREFIXES + 'SELECT ?s WHERE { ?s sosa:observedProperty ?p FILTER(STR(?p) != "SERVICE") }',
        local=local.query,
        fetch=recorder,
    )
    assert len(rows(answer.result)) > 0 and recorder.sent == [] and answer.sources == []


def test_remote_blank_nodes_become_endpoint_scoped_iris(remotes, stores, client):
    local, merged = stores
    query = PREFIXES + (
        "SELECT ?space ?q WHERE { ?o sosa:hasFeatureOfInterest ?space ."
        f" SERVICE <{remotes['building']}> {{ ?space props:area ?q }} }}"
    )
    answer = evaluate_federated(query, local=local.query, fetch=http_fetch(client))
    got = [s["q"] for s in answer.result]
    expected = list(merged.query(query.replace(f"SERVICE <{remotes['building']}>", "")))
    assert len(got) == len(expected) > 0
    assert all(
        isinstance(q, ox.NamedNode) and q.value.startswith("urn:dsgo:federation:bnode:")
        for q in got
    )


def test_remote_row_cap(remotes, stores, client):
    local, _ = stores
    query = PREFIXES + f"SELECT * WHERE {{ SERVICE <{remotes['building']}> {{ ?s a bot:Space }} }}"
    with pytest.raises(RemoteSourceError) as info:
        evaluate_federated(query, local=local.query, fetch=http_fetch(client), max_remote_rows=10)
    assert "more than 10 rows" in info.value.reason and info.value.endpoint == remotes["building"]
