"""The federation on one machine: a scheme registry, a builder, a renovator, an auditor, a municipality.

Story 5 is the permit check: the municipality reads the builder's signed ILS check report,
verifies it, reads the failed spaces; the builder fixes its model, syncs, and the check reruns.

Run with `make demo`. Every node is a real `dsgo serve` process on 127.0.0.1; every step uses the
same CLI and HTTP APIs a participant would. `DEMO_EXIT=1` exits after the stories; otherwise the
nodes keep serving until Ctrl+C. `DEMO_DIR` chooses the working directory (default ./demo-data).
"""

from __future__ import annotations

import contextlib
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
MUNICIPALITY_ID = "EU.EORI.NL000000104"
ILS_IDS = ROOT / "tests" / "data" / "ids" / "dsgo-ils"  # the ILS Omgevingsvergunning, as published
MAKE_ILS_MODEL = ROOT / "examples" / "make_ils_model.py"
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
    ports = _free_ports(6)
    op_port = ports[5]
    registry = Party("registry", REGISTRY_ID, "DSGO scheme operator", ports[0], work / "registry")
    builder = Party("builder", BUILDER_ID, "Bouwbedrijf De Bouwer", ports[1], work / "builder")
    renovator = Party("renovator", RENOVATOR_ID, "Renovatie Nu", ports[2], work / "renovator")
    auditor = Party("auditor", AUDITOR_ID, "Audit & Co", ports[3], work / "auditor", serve=False)
    municipality = Party(
        "municipality", MUNICIPALITY_ID, "Gemeente Voorbeeldstad", ports[4], work / "municipality"
    )
    parties = [registry, builder, renovator, auditor, municipality]
    processes: list[subprocess.Popen] = []
    try:
        _setup(work, registry, builder, renovator, auditor, municipality, op_port)
        op = _dev_login(work, [builder, renovator, municipality], auditor, op_port)
        processes.append(op)
        for party in parties:
            if party.serve:
                processes.append(_start(party, work))
        for party in parties:
            if party.serve:
                _wait_healthy(party)
        _grant(builder, renovator, auditor)
        _grant_municipality(builder, municipality)
        _stories(builder, renovator, auditor, registry)
        _story5(builder, municipality)
        _banner("The nodes")
        for party in parties:
            if party.serve:
                print(
                    f"  {party.key:<12} {party.url}   ({party.party_id}, logs: {work / (party.key + '.log')})"
                )
        print(f"  {'auditor':<12} (no node; config {auditor.config})")
        print(
            f"\n  Pages: {builder.url}/ui/building/bim,"
            f" {renovator.url}/ui/sparql, {builder.url}/ui/policies, {renovator.url}/ui/audit,"
            f" {builder.url}/docs"
        )
        _banner("People: log in with a browser (development OpenID Provider)")
        print(f"  open {builder.url}/login   (or any node's /login)")
        for user, who in DEMO_USERS.items():
            print(f"  user {user:<8} password {DEMO_PASSWORD}   {who}")
        print(f"  the provider: http://127.0.0.1:{op_port} (log: {work / 'dev-op.log'})")
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
        _stop_all(processes)


DEMO_PASSWORD = "demo"
DEMO_USERS = {
    "bouwer": "Bob de Bouwer, steward of Bouwbedrijf De Bouwer (policies at the builder's node)",
    "rita": "Rita Jansen, Renovatie Nu: reads the builder's model under her party's policy",
    "aude": "Aude Dit, Audit & Co: reads the audit logs and traces it was granted",
    "gemma": "Gemma Gemeente, Gemeente Voorbeeldstad: reads the permit check",
}


def _dev_login(
    work: Path, nodes: list[Party], auditor: Party, op_port: int
) -> subprocess.Popen[bytes]:
    """One development OpenID Provider for every node: each node a client (private_key_jwt with
    its party key, from the dev-op.json `dsgo init --dev-login` wrote), and the demo's people."""
    from node.login.devop import TOOLS, DevUser, ensure_installed, write_config

    builder, renovator, municipality = nodes
    clients = []
    for party in nodes:
        clients += json.loads((party.directory / "dev-op.json").read_text())["clients"]
    users = [
        DevUser("bouwer", "Bob de Bouwer", builder.party_id, builder.name, ("steward",)),
        DevUser("rita", "Rita Jansen", renovator.party_id, renovator.name, ("steward",)),
        DevUser("aude", "Aude Dit", auditor.party_id, auditor.name, ("auditor",)),
        DevUser("gemma", "Gemma Gemeente", municipality.party_id, municipality.name),
    ]
    config = work / "dev-op.json"
    write_config(config, op_port, clients, users)
    ensure_installed()
    log = open(work / "dev-op.log", "wb")  # noqa: SIM115 - the process writes it until the end
    proc = subprocess.Popen(
        ["node", str(TOOLS / "start.mjs"), str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # stopped with its process group, like the nodes
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{op_port}/.well-known/openid-configuration").is_success:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    _stop_all([proc])
    raise DemoError(f"the development OpenID Provider did not start: see {work / 'dev-op.log'}")


class DemoError(Exception):
    """A step of the demo failed; the message says which."""


def _setup(
    work: Path,
    registry: Party,
    builder: Party,
    renovator: Party,
    auditor: Party,
    municipality: Party,
    op_port: int,
) -> None:
    _banner("Setting up: a development PKI, a registry and four parties")
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
    for party in (builder, renovator, auditor, municipality):
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
            *(("--dev-login", "--dev-login-port", str(op_port)) if party.serve else ()),
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
    _catalog_settings(builder)
    _banner("Builder: the duplex IFC model (as an ILS-ready IFC4 model) and the BAG extract")
    model = _builder_model(builder)
    _dsgo(
        "connect",
        "ifc",
        str(model),
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
    _banner("Builder: the permit check of its model against the ILS Omgevingsvergunning (IDS)")
    code, out, err = _run(
        *("check", "ids", "--dataset", "bim", "--ids", str(ILS_IDS), "--report", "permit-check"),
        *("--config", builder.config),
    )
    if code not in (0, 1):
        raise DemoError(f"`dsgo check ids` failed: {err.strip()}")
    print(
        f"  dsgo check ids --dataset bim --ids {ILS_IDS.relative_to(ROOT)}/ --report permit-check"
    )
    print(f"  exit {code}: {out.strip()}")
    for line in err.splitlines():
        print(f"  {line}")
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


BUILDER_CATALOG = """[catalog]
advertise = ["bag"]
description = "Building data of Bouwbedrijf De Bouwer: its IFC models and a BAG extract."
license = "http://creativecommons.org/licenses/by/4.0/"
access_rights = "restricted"
contact_email = "data@bouwer.example"
language = "nl"

[catalog.datasets.bim]
title = "Duplex, IFC model for the building permit"
description = "The duplex as an IFC4 model made ready for the ILS Omgevingsvergunning, as BOT linked data."
keywords = ["BIM", "IFC", "BOT"]

[catalog.datasets.bag]
title = "BAG extract"
description = "Buildings (panden) from the Basisregistratie Adressen en Gebouwen (Kadaster)."
license = "https://creativecommons.org/publicdomain/zero/1.0/"
access_rights = "public"
"""


def _catalog_settings(builder: Party) -> None:
    """The builder's statements for its DCAT-AP catalog: licences, access rights, descriptions."""
    config = Path(builder.config)
    text = config.read_text(encoding="utf-8")
    start = text.index("[catalog]")
    end = text.index("\n[", start + 1) + 1
    config.write_text(text[:start] + BUILDER_CATALOG + text[end:], encoding="utf-8")


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
    receipts_before = _verified_receipts(renovator)
    started = time.perf_counter()
    rows = _select(renovator_client, renovator.url, query)
    took = time.perf_counter() - started
    receipts = _verified_receipts(renovator) - receipts_before
    for row in rows:
        print(
            f"  {row['name']:<18} area {_num(row.get('area'))} m2, volume {_num(row.get('volume'))} m3: "
            f"{row['readings']} CO2 readings, average {_num(row['avg_co2'])} ppm"
        )
    print(
        f"  ({took:.2f} s; the builder's data was read at its node with the renovator node's token)"
    )
    print(
        f"  {receipts} verified receipt(s): each of the builder's answers was JAdES-signed "
        "(ETSI TS 119 182-1 HTTP headers) and is kept in the renovator's audit log"
    )
    if not rows:
        raise DemoError("story 2 returned no rows")
    if receipts < 1:
        raise DemoError("story 2: no verified receipt of the builder's answers")

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
    dataset = f"{renovator.url}/dataset/co2-summary"
    out = _dsgo("audit", "receipts", "--for", dataset, "--config", renovator.config)
    lines = out.strip().splitlines()
    print(f"  renovator: dsgo audit receipts --for {dataset}")
    for line in [lines[1], "…", lines[-1]] if len(lines) > 4 else lines[1:]:
        print(f"    {line}")
    if not lines or " 0 failed" not in lines[-1]:
        raise DemoError("story 4: a receipt of the derived dataset did not verify")
    code = rows[0]["name"].split()[0]
    value = f"{renovator.url}/id/co2-summary/{code}"
    print(f"  auditor: dsgo audit trace {value}")
    out = _dsgo("audit", "trace", value, "--config", auditor.config)
    print("  " + out.strip().replace("\n", "\n  "))
    if "source sha256" not in out or "duplex-ils.ifc" not in out:
        raise DemoError("story 4: the trace did not reach the builder's IFC file")


# --- the permit check (issue 14) ----------------------------------------------------------------

PERMIT_REPORT = "permit-check"
SH = "http://www.w3.org/ns/shacl#"
PROV = "http://www.w3.org/ns/prov#"
DSGO_NS = "https://w3id.org/dsgo-node/def#"


def _builder_model(builder: Party) -> Path:
    """The duplex as the builder would submit it: IFC4 with the ILS's information (and mistakes).

    The model is a [[sources]] entry of the builder's node and checked by a [[checks]] entry, so
    every `dsgo sync` that changes it reruns the check (the node reads this config at start-up).
    """
    model = builder.directory / "model" / "duplex-ils.ifc"
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(MAKE_ILS_MODEL), "build", str(model), "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise DemoError(f"make_ils_model.py build failed: {proc.stderr.strip()[-400:]}")
    print(
        f"  examples/make_ils_model.py build {model.relative_to(builder.directory.parent)}  "
        f"({time.perf_counter() - started:.1f} s): the duplex migrated to IFC4, with the ILS's "
        "object types, classifications and georeferencing, and a few mistakes"
    )
    with open(builder.config, "a", encoding="utf-8") as fh:
        fh.write(
            f"""
[[sources]]
kind = "ifc"
source = "model/duplex-ils.ifc"
dataset = "bim"
bag_pand = "{DUPLEX_PAND}"

[[checks]]
kind = "ids"
dataset = "bim"
ids = ["{ILS_IDS}"]
report = "{PERMIT_REPORT}"
"""
        )
    return model


def _grant_municipality(builder: Party, municipality: Party) -> None:
    _banner(
        "Builder grants the municipality the permit check, and of the model its spaces and storeys"
    )
    for args in (
        ("--dataset", PERMIT_REPORT),
        ("--type", "bot:Space"),
        ("--type", "bot:Storey"),
    ):
        policy = _dsgo(
            "policy", "grant", "--config", builder.config, "--to", municipality.party_id, *args
        )
        print(f"  policy {policy.strip()}: {' '.join(args)}")


def _story5(builder: Party, municipality: Party) -> None:
    from node.config import load_settings
    from node.runtime import load_identity, trusted_fingerprints
    from trust.client import TrustClient

    settings = load_settings(municipality.config)
    client = TrustClient(load_identity(settings), trusted_fingerprints(settings), timeout=60)
    report_iri = f"{builder.url}/dataset/{PERMIT_REPORT}"

    _banner("Story 5 — the municipality reads the builder's permit check and verifies it")
    before = _read_report(client, builder, "municipality reads")
    _verify(report_iri, municipality)
    rows = _failed_spaces(client, builder)
    print(
        f"  failed spaces and storeys, their attributes read at the builder's node ({len(rows)}):"
    )
    for row in rows:
        print(
            f"    {row['spec']:<28} {row['kind']:<6} {row['name']:<8} {row.get('long', ''):<12} "
            f"found {row.get('found', '-')!r}"
        )
    if not rows:
        raise DemoError("story 5: no failed space or storey was readable")
    wall = _select(
        _owner_client(builder),
        builder.url,
        "PREFIX beo: <https://pi.pauwel.be/voc/buildingelement#> SELECT ?w WHERE { ?w a beo:Wall } "
        "ORDER BY ?w LIMIT 1",
    )[0]["w"]
    resp = client.request("GET", builder.url, wall[len(builder.url) :])
    print(
        f"  a wall of the model, {wall.rsplit('/', 1)[-1]}: HTTP {resp.status_code} "
        f"{resp.json().get('error')} (walls are not granted)"
    )
    if resp.status_code != 403:
        raise DemoError("story 5: the municipality could read a wall")

    _banner("Story 5, continued — the builder fixes the model and syncs; the check reruns")
    model = builder.directory / "model" / "duplex-ils.ifc"
    copy = builder.directory / "model" / "duplex-ils.submitted.ifc"
    fixed = builder.directory / "model" / "duplex-ils.fixed.ifc"
    shutil.copyfile(model, copy)
    print(
        "  builder: fixing the model programmatically (no hand edits): "
        f"examples/make_ils_model.py fix on a copy, {copy.name} -> {fixed.name}:"
    )
    proc = subprocess.run(
        [sys.executable, str(MAKE_ILS_MODEL), "fix", str(copy), str(fixed)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise DemoError(f"make_ils_model.py fix failed: {proc.stderr.strip()[-400:]}")
    for line in proc.stdout.splitlines():
        if line.strip().startswith(("[F", "[--")):
            print(f"  {line}")
    os.replace(fixed, model)  # the source the node syncs from
    print(f"  builder: {fixed.name} replaces {model.name}; dsgo sync")
    code, out, err = _run("sync", "--config", builder.config)
    if code != 0:
        raise DemoError(f"story 5: `dsgo sync` failed: {err.strip() or out.strip()}")
    print("  " + out.strip().replace("\n", "\n  "))
    after = _read_report(client, builder, "municipality reads again")
    _verify(report_iri, municipality)
    revises = after.get("revision_of")
    print(f"  {after['report']} prov:wasRevisionOf {revises}")
    print(
        f"    before (that version): {before['passed']} passed, {before['failed']} failed "
        f"of {before['applicable']} applicable"
    )
    print(
        f"    after  (this version): {after['passed']} passed, {after['failed']} failed "
        f"of {after['applicable']} applicable"
    )
    if after.get("previous_passed") != before["passed"] or not revises:
        raise DemoError("story 5: the new report does not link the previous one")
    if int(after["passed"]) <= int(before["passed"]):
        raise DemoError("story 5: the fix did not change the verdict")
    rows = _failed_spaces(client, builder)
    print(f"  failed spaces and storeys now ({len(rows)}):")
    for row in rows:
        print(
            f"    {row['spec']:<28} {row['kind']:<6} {row['name']:<8} found {row.get('found', '-')!r}"
        )


def _verify(report_iri: str, municipality: Party) -> None:
    code, out, err = _run("verify", report_iri, "--config", municipality.config)
    print(f"  municipality: dsgo verify {report_iri}\n    {(out or err).strip()}")
    if code != 0 or not out.startswith("OK"):
        raise DemoError("story 5: the report's signature did not verify")


def _owner_client(party: Party):
    from node.config import load_settings
    from node.runtime import load_identity, trusted_fingerprints
    from trust.client import TrustClient

    settings = load_settings(party.config)
    return TrustClient(load_identity(settings), trusted_fingerprints(settings), timeout=60)


def _read_report(client, builder: Party, who: str) -> dict[str, str]:
    """GET the report dataset with the municipality's token; its verdict, as the RDF says."""
    import pyoxigraph as ox

    path = f"/dataset/{PERMIT_REPORT}"
    resp = client.request(
        "GET", builder.url, path, headers={"Accept": "application/n-triples"}, timeout=120
    )
    if resp.status_code != 200:
        raise DemoError(f"story 5: GET {path}: HTTP {resp.status_code} {resp.text[:300]}")
    store = ox.Store()
    store.load(resp.content, format=ox.RdfFormat.N_TRIPLES)
    report = f"{builder.url}/id/report/{PERMIT_REPORT}"
    values: dict[str, str] = {"report": report}
    for row in store.query(f"SELECT ?p ?o WHERE {{ <{report}> ?p ?o }}"):
        values.setdefault(row["p"].value.rsplit("#", 1)[-1], row["o"].value)
    counts = {
        "applicable": values["applicableSpecificationCount"],
        "passed": values["passedSpecificationCount"],
        "failed": values["failedSpecificationCount"],
        "missing": values["missingSpecificationCount"],
    }
    failed = sorted(
        r["name"].value
        for r in store.query(
            f"SELECT ?name WHERE {{ <{report}> <{DSGO_NS}specificationResult> ?s . "
            f"?s <{DSGO_NS}verdict> <{DSGO_NS}Failed> ; <http://www.w3.org/2000/01/rdf-schema#label> ?name }}"
        )
    )
    model = next(
        iter(
            store.query(
                f"SELECT ?m WHERE {{ <{report}> <{PROV}wasDerivedFrom> ?m . "
                f"?m <{PROV}specializationOf> ?d }}"
            )
        ),
        None,
    )
    print(
        f"  {who} {builder.url}{path} with its own token: HTTP 200, {len(store)} triples, "
        f"sh:conforms {values['conforms']}, dsgo:applicableConforms {values['applicableConforms']}"
    )
    print(
        f"    {counts['applicable']} applicable specifications: {counts['passed']} passed, "
        f"{counts['failed']} failed ({', '.join(failed)}); {counts['missing']} required but absent"
    )
    if model is not None:
        print(f"    about {model['m'].value}")
    revision = next(
        iter(
            store.query(
                f"SELECT ?prev ?n WHERE {{ <{report}> <{PROV}wasRevisionOf> ?prev . "
                f"OPTIONAL {{ ?prev <{DSGO_NS}passedSpecificationCount> ?n }} }}"
            )
        ),
        None,
    )
    result = {**counts, "report": report}
    if revision is not None:
        result["revision_of"] = revision["prev"].value
        if revision["n"] is not None:
            result["previous_passed"] = revision["n"].value
    return result


def _failed_spaces(client, builder: Party) -> list[dict[str, str]]:
    """The report's failed spaces and storeys, with attributes from the model (one query)."""
    query = f"""PREFIX sh: <{SH}> PREFIX bot: <https://w3id.org/bot#> PREFIX dsgo: <{DSGO_NS}>
        PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> PREFIX props: <https://w3id.org/props#>
        SELECT ?spec ?kind ?name ?long ?found WHERE {{
          GRAPH <{builder.url}/dataset/{PERMIT_REPORT}> {{
            ?result a sh:ValidationResult ; sh:focusNode ?x ; sh:sourceShape ?s .
            ?s rdfs:label ?spec . OPTIONAL {{ ?result sh:value ?found }} }}
          GRAPH <{builder.url}/dataset/bim> {{
            {{ ?x a bot:Space BIND("space" AS ?kind) }} UNION {{ ?x a bot:Storey BIND("storey" AS ?kind) }}
            ?x rdfs:label ?name . OPTIONAL {{ ?x props:longName ?long }} }}
        }} ORDER BY ?spec ?name"""
    return _select(client, builder.url, query)


def _run(*args: str) -> tuple[int, str, str]:
    """Run `dsgo` and return its exit code and output (a check's verdict is its exit code)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([*DSGO, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


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


def _verified_receipts(party: Party) -> int:
    """How many signed answers the node has verified and kept (audit entries of kind receipt)."""
    args = ["audit", "tail", "-n", "1000000", "--config", party.config]
    proc = subprocess.run([*DSGO, *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise DemoError(f"`dsgo audit tail` failed: {proc.stderr.strip()}")
    entries = (json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{"))
    return sum(
        1 for e in entries if e["kind"] == "receipt" and e["detail"].get("status") == "verified"
    )


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


def _stop_all(procs: list[subprocess.Popen], grace: float = 15.0) -> None:
    """SIGTERM every process at once, then wait for all of them within one grace period (one
    slow node no longer delays the others' stop); what is left then gets SIGKILL."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    for proc in procs:  # a killed process busy with disk I/O may take a moment to go
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=2)


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
