"""The three-party federation on one machine: a scheme registry, a builder, a renovator, an auditor.

Run with `make demo`. Every node is a real `dsgo serve` process on 127.0.0.1; every step uses the
same CLI and HTTP APIs a participant would. `DEMO_EXIT=1` exits after the stories; otherwise the
nodes keep serving until Ctrl+C. `DEMO_DIR` chooses the working directory (default ./demo-data).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data"
DSGO = [sys.executable, "-m", "node.cli"]
REGISTRY_ID = "EU.EORI.NL000000000"
BUILDER_ID = "EU.EORI.NL000000101"
RENOVATOR_ID = "EU.EORI.NL000000102"
AUDITOR_ID = "EU.EORI.NL000000103"
DUPLEX_PAND = "0221100000323434"  # a BAG pand id the demo links the duplex to


@dataclass
class Party:
    key: str
    party_id: str
    name: str
    port: int
    directory: Path
    serve: bool = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config(self) -> str:
        return str(self.directory / "node.toml")


def main() -> int:
    work = Path(os.environ.get("DEMO_DIR", ROOT / "demo-data")).resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ports = _free_ports(4)
    registry = Party("registry", REGISTRY_ID, "DSGO scheme operator", ports[0], work / "registry")
    builder = Party("builder", BUILDER_ID, "Bouwbedrijf De Bouwer", ports[1], work / "builder")
    renovator = Party("renovator", RENOVATOR_ID, "Renovatie Nu", ports[2], work / "renovator")
    auditor = Party("auditor", AUDITOR_ID, "Audit & Co", ports[3], work / "auditor", serve=False)
    parties = [registry, builder, renovator, auditor]
    processes: list[subprocess.Popen] = []
    try:
        _setup(work, registry, builder, renovator, auditor)
        for party in parties:
            if party.serve:
                processes.append(_start(party, work))
        for party in parties:
            if party.serve:
                _wait_healthy(party)
        _grant(builder, renovator, auditor)
        _stories(builder, renovator, auditor, registry)
        _banner("The nodes")
        for party in parties:
            if party.serve:
                print(
                    f"  {party.key:<10} {party.url}   ({party.party_id}, logs: {work / (party.key + '.log')})"
                )
        print(f"  {'auditor':<10} (no node; config {auditor.config})")
        if os.environ.get("DEMO_EXIT"):
            return 0
        print("\nServing until Ctrl+C. Try: curl " + builder.url + "/capabilities")
        signal.pause()
        return 0
    except KeyboardInterrupt:
        return 0
    except DemoError as exc:
        print(f"\ndemo: error: {exc}", file=sys.stderr)
        return 1
    finally:
        for proc in processes:
            _stop(proc)


class DemoError(Exception):
    """A step of the demo failed; the message says which."""


def _setup(work: Path, registry: Party, builder: Party, renovator: Party, auditor: Party) -> None:
    _banner("Setting up: a development PKI, a registry and three parties")
    ca = work / "ca"
    _dsgo("trust", "ca", str(ca), "--name", "DSGO Demo")
    _dsgo(
        "init",
        str(registry.directory),
        "--party-id",
        registry.party_id,
        "--name",
        registry.name,
        "--port",
        str(registry.port),
        "--roles",
        "node,registry",
        "--ca",
        str(ca),
    )
    for party in (builder, renovator, auditor):
        _dsgo(
            "init",
            str(party.directory),
            "--party-id",
            party.party_id,
            "--name",
            party.name,
            "--port",
            str(party.port),
            "--ca",
            str(ca),
            "--registry-url",
            registry.url,
            "--registry-id",
            registry.party_id,
        )
        _dsgo(
            "registry",
            "add",
            "--config",
            registry.config,
            "--party-id",
            party.party_id,
            "--name",
            party.name,
            "--cert",
            str(party.directory / "keys" / "node.cert.pem"),
            "--capability-url",
            f"http://127.0.0.1:{party.port}/capabilities",
        )
    _banner("Builder: the duplex IFC model and the BAG extract become linked data")
    _dsgo(
        "connect",
        "ifc",
        str(DATA / "duplex.ifc"),
        "--dataset",
        "bim",
        "--option",
        f"bag_pand={DUPLEX_PAND}",
        "--config",
        builder.config,
    )
    _dsgo(
        "connect", "bag", str(DATA / "0221PND.xml"), "--dataset", "bag", "--config", builder.config
    )
    _banner("Renovator: 386k real sensor readings, rooms linked to the builder's IFC spaces")
    _dsgo(
        "connect",
        "measurements",
        str(DATA / "b4b_raw_measurements.csv.gz"),
        "--dataset",
        "measurements",
        "--mapping",
        str(ROOT / "examples" / "demo-mapping.toml"),
        "--option",
        f"feature_base={builder.url}",
        "--config",
        renovator.config,
    )


def _grant(builder: Party, renovator: Party, auditor: Party) -> None:
    _banner("Builder grants the renovator read access to the model (not to the BAG dataset)")
    policy = _dsgo(
        "policy",
        "grant",
        "--config",
        builder.config,
        "--to",
        renovator.party_id,
        "--dataset",
        "bim",
    )
    print(f"  policy {policy.strip()}")
    for node in (builder, renovator):
        for dataset in ("audit", "provenance"):
            _dsgo(
                "policy",
                "grant",
                "--config",
                node.config,
                "--to",
                auditor.party_id,
                "--dataset",
                dataset,
            )
    print("  builder and renovator let the auditor read their audit log and provenance")


def _stories(builder: Party, renovator: Party, auditor: Party, registry: Party) -> None:
    from node.config import load_settings
    from node.runtime import load_identity, trusted_fingerprints
    from trust.client import TrustClient

    def client_for(party: Party) -> TrustClient:
        settings = load_settings(party.config)
        return TrustClient(load_identity(settings), trusted_fingerprints(settings), timeout=60)

    builder_client, renovator_client = client_for(builder), client_for(renovator)

    _banner("Story 1 — the builder's building, storeys and external walls")
    rows = _select(
        builder_client,
        builder.url,
        """PREFIX bot: <https://w3id.org/bot#> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
        SELECT ?building (COUNT(DISTINCT ?storey) AS ?storeys) WHERE {
          ?building a bot:Building ; bot:hasStorey ?storey } GROUP BY ?building""",
    )
    for row in rows:
        print(f"  building {row['building']} with {row['storeys']} storeys")
    rows = _select(
        builder_client,
        builder.url,
        """PREFIX bot: <https://w3id.org/bot#> PREFIX beo: <https://pi.pauwel.be/voc/buildingelement#>
        PREFIX props: <https://w3id.org/props#> PREFIX qudt: <http://qudt.org/schema/qudt/>
        PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
        SELECT ?name ?area WHERE {
          ?wall a beo:Wall ; props:isExternal/<http://www.w3.org/1999/02/22-rdf-syntax-ns#value> true ;
                rdfs:label ?name .
          OPTIONAL { ?wall props:area/qudt:numericValue ?area }
        } ORDER BY DESC(?area) LIMIT 6""",
    )
    (count,) = _select(
        builder_client,
        builder.url,
        """PREFIX beo: <https://pi.pauwel.be/voc/buildingelement#> PREFIX props: <https://w3id.org/props#>
        SELECT (COUNT(?w) AS ?n) WHERE {
          ?w a beo:Wall ; props:isExternal/<http://www.w3.org/1999/02/22-rdf-syntax-ns#value> true }""",
    )
    print(f"  {count['n']} external walls; the largest ({len(rows)} shown):")
    for row in rows:
        print(f"    {row['name']:<45} {_num(row.get('area'))} m2")

    _banner(
        "Story 2 — the renovator's federated query: CO2 per room, with the room's size from the model"
    )
    query = f"""PREFIX sosa: <http://www.w3.org/ns/sosa/> PREFIX qudt: <http://qudt.org/schema/qudt/>
        PREFIX dsgo: <https://w3id.org/dsgo-node/def#> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
        PREFIX props: <https://w3id.org/props#>
        SELECT ?space ?name ?area ?volume (COUNT(?obs) AS ?readings) (AVG(?co2) AS ?avg_co2) WHERE {{
          ?obs sosa:observedProperty dsgo:CO2Concentration ; sosa:hasFeatureOfInterest ?space ;
               sosa:hasResult/qudt:numericValue ?co2 .
          SERVICE <{builder.url}/sparql> {{
            ?space rdfs:label ?code ; props:longName ?long .
            OPTIONAL {{ ?space props:area/qudt:numericValue ?area }}
            OPTIONAL {{ ?space props:volume/qudt:numericValue ?volume }}
            BIND(CONCAT(?code, " ", ?long) AS ?name)
          }}
        }} GROUP BY ?space ?name ?area ?volume ORDER BY ?name"""
    started = time.perf_counter()
    rows = _select(renovator_client, renovator.url, query)
    took = time.perf_counter() - started
    for row in rows:
        print(
            f"  {row['name']:<18} area {_num(row.get('area'))} m2, volume {_num(row.get('volume'))} m3: "
            f"{row['readings']} CO2 readings, average {_num(row['avg_co2'])} ppm"
        )
    print(
        f"  ({took:.2f} s; the builder's data was read at its node with the renovator node's token)"
    )
    if not rows:
        raise DemoError("story 2 returned no rows")

    _banner("Story 3 — the renovator asks for the BAG dataset it was not granted")
    resp = renovator_client.request(
        "POST",
        builder.url,
        "/sparql",
        data={
            "query": "SELECT * WHERE { GRAPH <"
            + builder.url
            + "/dataset/bag> { ?s ?p ?o } } LIMIT 1"
        },
        headers={"Accept": "application/sparql-results+json"},
    )
    bag_rows = resp.json().get("results", {}).get("bindings", []) if resp.status_code == 200 else []
    print(
        f"  SPARQL over the bag graph: HTTP {resp.status_code}, {len(bag_rows)} rows (the graph is outside the grant)"
    )
    pand = f"{builder.url}/dataset/bag"
    (row,) = _select(
        builder_client,
        builder.url,
        f"SELECT ?s WHERE {{ GRAPH <{pand}> {{ ?s a ?type }} }} ORDER BY ?s LIMIT 1",
    )
    resp = renovator_client.request("GET", builder.url, row["s"][len(builder.url) :])
    body = resp.json()
    print(
        f"  GET {row['s']}: HTTP {resp.status_code} {body.get('error')}: {body.get('error_description')}"
    )
    print(f"    rule that decided: {body.get('explanation', {}).get('rule')}")
    if resp.status_code != 403:
        raise DemoError("story 3: the renovator could read a BAG resource")
    resp = renovator_client.request(
        "GET", builder.url, "/delegation/explain", params={"dataset": "bag"}
    )
    print(f"  explanation for {pand}: HTTP {resp.status_code}")
    print("  " + json.dumps(resp.json(), indent=2).replace("\n", "\n  "))
    if bag_rows:
        raise DemoError("story 3: the renovator could read the bag dataset")

    _story4(builder, renovator, auditor, renovator_client, rows)


def _story4(builder: Party, renovator: Party, auditor: Party, renovator_client, rows) -> None:
    _banner("Story 4 — the renovator saves its answer; the auditor traces it back to the IFC file")
    construct = f"""PREFIX sosa: <http://www.w3.org/ns/sosa/> PREFIX qudt: <http://qudt.org/schema/qudt/>
        PREFIX dsgo: <https://w3id.org/dsgo-node/def#> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
        PREFIX props: <https://w3id.org/props#> PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>
        CONSTRUCT {{ ?summary a dsgo:RoomSummary ; rdfs:label ?code ; dsgo:aboutSpace ?space ;
                       dsgo:averageCO2 ?avg ; dsgo:floorArea ?area }}
        WHERE {{
          {{ SELECT ?space (AVG(?co2) AS ?avg) WHERE {{
               ?obs sosa:observedProperty dsgo:CO2Concentration ; sosa:hasFeatureOfInterest ?space ;
                    sosa:hasResult/qudt:numericValue ?co2 }} GROUP BY ?space }}
          SERVICE <{builder.url}/sparql> {{
            ?space rdfs:label ?code . OPTIONAL {{ ?space props:area/qudt:numericValue ?area }} }}
          BIND(IRI(CONCAT("{renovator.url}/id/co2-summary/", ?code)) AS ?summary)
        }}"""
    out = _dsgo("derive", construct, "--dataset", "co2-summary", "--config", renovator.config)
    print("  renovator: " + out.strip())
    code = rows[0]["name"].split()[0]
    value = f"{renovator.url}/id/co2-summary/{code}"
    print(f"  auditor: dsgo audit trace {value}")
    out = _dsgo("audit", "trace", value, "--config", auditor.config)
    print("  " + out.strip().replace("\n", "\n  "))
    if "source sha256" not in out or "duplex.ifc" not in out:
        raise DemoError("story 4: the trace did not reach the builder's IFC file")


# --- helpers ------------------------------------------------------------------------------------


def _select(client, base_url: str, query: str) -> list[dict[str, str]]:
    resp = client.request(
        "POST",
        base_url,
        "/sparql",
        data={"query": query},
        headers={"Accept": "application/sparql-results+json"},
        timeout=120,
    )
    if resp.status_code != 200:
        raise DemoError(f"query at {base_url} failed: HTTP {resp.status_code} {resp.text[:400]}")
    body = resp.json()
    return [{k: v["value"] for k, v in b.items()} for b in body["results"]["bindings"]]


def _num(value: str | None) -> str:
    if value is None:
        return "?"
    try:
        return f"{float(value):.2f}"
    except ValueError:
        return value


def _dsgo(*args: str, check: bool = True) -> str:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    proc = subprocess.run([*DSGO, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    shown = " ".join(a if len(a) < 60 else "…" + " ".join(a.split())[-40:] for a in args[:6])
    if proc.returncode != 0 and check:
        raise DemoError(f"`dsgo {shown}` failed: {proc.stderr.strip() or proc.stdout.strip()}")
    if took > 1.0 or args[0] in ("connect", "load"):
        print(
            f"  dsgo {shown}  ({took:.1f} s) {proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ''}"
        )
    return proc.stdout if proc.returncode == 0 else proc.stdout + proc.stderr


def _start(party: Party, work: Path) -> subprocess.Popen:
    log = open(work / f"{party.key}.log", "w")  # noqa: SIM115 - closed with the process
    # Story 2 aggregates 78k real CO2 readings: allow more than the default 10 s per query.
    env = {**os.environ, "DSGO_STORE_QUERY_TIMEOUT": os.environ.get("DEMO_QUERY_TIMEOUT", "120")}
    return subprocess.Popen(
        [*DSGO, "serve", "--config", party.config],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_healthy(party: Party, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{party.url}/healthz", timeout=1).status_code == 200:
                print(f"  {party.key} is up at {party.url}")
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise DemoError(f"{party.key} did not start at {party.url} (see its log)")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _free_ports(n: int) -> list[int]:
    base = int(os.environ.get("DEMO_BASE_PORT", "8300"))
    ports: list[int] = []
    candidate = base
    while len(ports) < n and candidate < base + 500:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
                ports.append(candidate)
            except OSError:
                pass
        candidate += 1
    return ports


def _banner(text: str) -> None:
    print(f"\n== {text}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
