"""Issue 16 part 5 end to end: JAdES-signed exchanges between real node processes, receipts.

A registry, a builder (the duplex IFC) and a renovator (measurements) run as `dsgo serve`
processes. The renovator's federated query and derive sign their requests; the builder verifies
them and signs its answers; the renovator verifies those, keeps them as receipts, and
`dsgo audit receipts --for` re-verifies them offline. Tampering with one byte of a kept
answer or of its signature makes verification fail, naming the receipt.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
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

from node.config import load_settings
from node.runtime import load_identity, trusted_fingerprints
from trust.jades import ExchangeSignatureError, HttpMessage, sign_message, verify_message

REGISTRY = "EU.EORI.NL000000100"
BUILDER = "EU.EORI.NL000000101"
RENOVATOR = "EU.EORI.NL000000102"
RESULTS_JSON = "application/sparql-results+json"
PREFIXES = """PREFIX sosa: <http://www.w3.org/ns/sosa/> PREFIX qudt: <http://qudt.org/schema/qudt/>
PREFIX dsgo: <https://w3id.org/dsgo-node/def#> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX props: <https://w3id.org/props#>
"""


@dataclass
class World:
    root: Path
    procs: ProcessGroup
    configs: dict[str, Path]
    urls: dict[str, str]
    ports: dict[str, int]
    nodes: dict[str, Proc]

    def join(self) -> str:
        return (
            PREFIXES
            + f"""SELECT ?space ?code ?co2 WHERE {{
          ?obs sosa:observedProperty dsgo:CO2Concentration ; sosa:hasFeatureOfInterest ?space ;
               sosa:hasResult/qudt:numericValue ?co2 .
          SERVICE <{self.urls[BUILDER]}/sparql> {{ ?space rdfs:label ?code }} }}"""
        )

    def renovator_select(self, query: str) -> httpx.Response:
        client = trust_client(self.configs[RENOVATOR])
        try:
            return client.request(
                "POST",
                self.urls[RENOVATOR],
                "/sparql",
                data={"query": query},
                headers={"Accept": RESULTS_JSON},
                timeout=60,
            )
        finally:
            client.close()

    def audit(self, party: str, kind: str) -> list[dict]:
        out = dsgo("audit", "tail", "-n", "100000", "--config", self.configs[party]).stdout
        return [e for e in map(json.loads, out.splitlines()) if e["kind"] == kind]

    def restart(self, party: str, env: dict[str, str] | None = None) -> None:
        self.nodes[party].stop()
        name = "builder" if party == BUILDER else "renovator"
        self.nodes[party] = self.procs.serve(
            self.configs[party], self.ports[party], env=env, name=name
        )

    def roots(self) -> set[str]:
        return trusted_fingerprints(load_settings(self.configs[RENOVATOR]))


@pytest.fixture(scope="module")
def world(
    module_procs: ProcessGroup, dev_ca: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    root = tmp_path_factory.mktemp("signed-exchange")
    names = {REGISTRY: "Registry", BUILDER: "Builder", RENOVATOR: "Renovator"}
    ports = {party: free_port() for party in names}
    urls = {party: f"http://127.0.0.1:{port}" for party, port in ports.items()}
    registry_cfg = init_node(root / "registry", REGISTRY, "Registry", ports[REGISTRY], ca=dev_ca)
    module_procs.serve(registry_cfg, ports[REGISTRY], name="registry")
    configs = {REGISTRY: registry_cfg}
    for party in (BUILDER, RENOVATOR):
        directory = root / names[party].lower()
        configs[party] = init_node(
            directory,
            party,
            names[party],
            ports[party],
            ca=dev_ca,
            registry_url=urls[REGISTRY],
            registry_id=REGISTRY,
        )
        dsgo(
            *("registry", "add", "--config", registry_cfg, "--party-id", party),
            *("--name", names[party], "--cert", directory / "keys" / "node.cert.pem"),
            *("--capability-url", f"{base_of(configs[party])}/capabilities"),
        )
    ifc = root / "duplex.ifc"
    shutil.copyfile(DUPLEX_IFC, ifc)
    dsgo("connect", "ifc", ifc, "--dataset", "bim", "--config", configs[BUILDER])
    csv_path, mapping = write_measurements(root / "sensors")
    dsgo(
        *("connect", "measurements", csv_path, "--dataset", "measurements"),
        *("--mapping", mapping, "--option", f"feature_base={urls[BUILDER]}"),
        *("--config", configs[RENOVATOR]),
    )
    dsgo("policy", "grant", "--config", configs[BUILDER], "--to", RENOVATOR, "--dataset", "bim")
    nodes = {
        party: module_procs.serve(configs[party], ports[party], name=names[party].lower())
        for party in (BUILDER, RENOVATOR)
    }
    yield World(root, module_procs, configs, urls, ports, nodes)


def test_federated_query_is_signed_both_ways_and_kept_as_receipts(world: World) -> None:
    before_r = len(world.audit(RENOVATOR, "receipt"))
    before_b = len(world.audit(BUILDER, "receipt"))
    resp = world.renovator_select(world.join())
    assert resp.status_code == 200, resp.text
    assert {row[1] for row in select_rows(resp)} == {"A102", "B102", "A103"}
    answers = world.audit(RENOVATOR, "receipt")[before_r:]
    assert answers, "the renovator kept no receipt of the builder's answer"
    for entry in answers:
        assert entry["party"] == BUILDER and entry["action"] == "response"
        assert entry["detail"]["status"] == "verified"
        assert entry["detail"]["signer"] == BUILDER
        assert entry["detail"]["digest"].startswith("SHA-256=")
        assert entry["target"] == f"{world.urls[BUILDER]}/sparql"
    requests = world.audit(BUILDER, "receipt")[before_b:]
    assert requests and all(e["action"] == "request" for e in requests)
    assert {e["detail"]["signer"] for e in requests} == {RENOVATOR}


def test_a_response_to_another_party_carries_a_verifiable_signature(world: World) -> None:
    token = token_for(world.configs[RENOVATOR], world.urls[BUILDER])
    query = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
    headers = {"Authorization": f"Bearer {token}", "Accept": RESULTS_JSON}
    # A plain client of another party that does not ask gets the answer unsealed.
    unasked = httpx.post(
        f"{world.urls[BUILDER]}/sparql", data={"query": query}, headers=headers, timeout=60
    )
    assert unasked.status_code == 200 and "x-jws-signature" not in unasked.headers
    resp = httpx.post(
        f"{world.urls[BUILDER]}/sparql",
        data={"query": query},
        headers={**headers, "Accept-Signature": "jades"},
        timeout=60,
    )
    assert resp.status_code == 200
    assert resp.json() == unasked.json()
    host = world.urls[BUILDER].removeprefix("http://")
    message = HttpMessage(
        "POST", "/sparql", host, {k.lower(): v for k, v in resp.headers.items()}, resp.content
    )
    signed = verify_message(
        resp.headers["x-jws-signature"], message, world.roots(), expected_party=BUILDER
    )
    assert signed.signer == BUILDER
    # Signed over the request it answers: the same answer for another target does not verify.
    other = HttpMessage("POST", "/other", host, message.headers, message.body)
    with pytest.raises(ExchangeSignatureError) as err:
        verify_message(resp.headers["x-jws-signature"], other, world.roots())
    assert err.value.check == "signature_invalid"
    # An anonymous caller is nobody's party: nothing to seal, even when it asks.
    anonymous = httpx.get(
        f"{world.urls[BUILDER]}/catalog", headers={"Accept-Signature": "jades"}, timeout=30
    )
    assert "x-jws-signature" not in anonymous.headers


def test_link_following_is_signed_and_kept(world: World) -> None:
    space = f"{world.urls[BUILDER]}/id/bim/space/{ROOM_SPACES['917810']}"
    before = len(world.audit(RENOVATOR, "receipt"))
    token = token_for(world.configs[RENOVATOR], world.urls[RENOVATOR])
    resp = httpx.get(
        f"{world.urls[RENOVATOR]}/follow",
        params={"iri": space},
        headers={"Authorization": f"Bearer {token}", "Accept": "text/turtle"},
        timeout=60,
    )
    assert resp.status_code == 200, resp.text
    # The renovator's own party asked its own node: that answer is not sealed; the builder's is.
    assert "x-jws-signature" not in resp.headers
    [entry] = world.audit(RENOVATOR, "receipt")[before:]
    assert entry["target"] == space and entry["action"] == "response"
    assert entry["detail"]["status"] == "verified" and entry["detail"]["signer"] == BUILDER


def _signed_post(world: World, signer_config: Path, token_party_config: Path, body: bytes):
    identity = load_identity(load_settings(signer_config))
    token = token_for(token_party_config, world.urls[BUILDER])
    host = world.urls[BUILDER].removeprefix("http://")
    headers = {"content-type": "application/x-www-form-urlencoded"}
    sealed = sign_message(HttpMessage("POST", "/sparql", host, headers, body), identity)
    return headers, sealed, token


def test_a_bad_request_signature_is_refused_naming_the_check(world: World) -> None:
    body = urlencode({"query": "ASK { ?s ?p ?o }"}).encode()
    headers, sealed, token = _signed_post(
        world, world.configs[RENOVATOR], world.configs[RENOVATOR], body
    )
    send = {**headers, **sealed, "Authorization": f"Bearer {token}", "Accept": RESULTS_JSON}
    ok = httpx.post(f"{world.urls[BUILDER]}/sparql", content=body, headers=send, timeout=30)
    assert ok.status_code == 200, ok.text
    tampered = body.replace(b"ASK", b"ASk")
    bad = httpx.post(f"{world.urls[BUILDER]}/sparql", content=tampered, headers=send, timeout=30)
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_signature"
    assert bad.json()["check"] == "digest_mismatch"
    # Sealed by the builder's key but sent with the renovator's token: not the caller's seal.
    headers, sealed, token = _signed_post(
        world, world.configs[BUILDER], world.configs[RENOVATOR], body
    )
    send = {**headers, **sealed, "Authorization": f"Bearer {token}"}
    other = httpx.post(f"{world.urls[BUILDER]}/sparql", content=body, headers=send, timeout=30)
    assert other.status_code == 401 and other.json()["check"] == "signer_mismatch"
    # A malformed signature header.
    send = {**send, "x-jws-signature": "not-a-jws"}
    junk = httpx.post(f"{world.urls[BUILDER]}/sparql", content=body, headers=send, timeout=30)
    assert junk.status_code == 401 and junk.json()["check"] == "signature_malformed"
    refused = world.audit(BUILDER, "receipt_refused")
    assert {e["detail"]["check"] for e in refused} >= {
        "digest_mismatch",
        "signer_mismatch",
        "signature_malformed",
    }


def test_an_oversized_signed_request_is_413_and_an_unwritable_log_503(world: World) -> None:
    body = urlencode({"query": "ASK { ?s ?p ?o }"}).encode()
    headers, sealed, token = _signed_post(
        world, world.configs[RENOVATOR], world.configs[RENOVATOR], body
    )
    send = {**headers, **sealed, "Authorization": f"Bearer {token}", "Accept": RESULTS_JSON}
    huge = b"query=" + b"A" * (17 * 1024 * 1024)
    big = httpx.post(f"{world.urls[BUILDER]}/sparql", content=huge, headers=send, timeout=60)
    assert big.status_code == 413 and big.json()["error"] == "too_large"
    if shutil.which("chattr") is None:
        pytest.skip("chattr not available")
    data = load_settings(world.configs[BUILDER]).data_dir
    files = [p for p in (data / "audit.sqlite", data / "audit.sqlite-wal") if p.exists()]
    locked: list[Path] = []
    try:
        for path in files:
            done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
            if done.returncode != 0:
                pytest.skip(f"chattr unsupported here: {done.stderr.strip()}")
            locked.append(path)
        resp = httpx.post(f"{world.urls[BUILDER]}/sparql", content=body, headers=send, timeout=30)
        assert resp.status_code == 503, resp.text
        assert resp.json()["error"] == "audit_unavailable"
    finally:
        for path in locked:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    headers, sealed, token = _signed_post(
        world, world.configs[RENOVATOR], world.configs[RENOVATOR], body
    )
    send = {**headers, **sealed, "Authorization": f"Bearer {token}", "Accept": RESULTS_JSON}
    again = httpx.post(f"{world.urls[BUILDER]}/sparql", content=body, headers=send, timeout=30)
    assert again.status_code == 200, again.text


def _derive(world: World) -> str:
    builder, renovator = world.urls[BUILDER], world.urls[RENOVATOR]
    construct = (
        PREFIXES
        + f"""CONSTRUCT {{ ?summary a dsgo:RoomSummary ; rdfs:label ?code ; dsgo:aboutSpace ?space ;
                   dsgo:averageCO2 ?avg }}
        WHERE {{
          {{ SELECT ?space (AVG(?co2) AS ?avg) WHERE {{
               ?obs sosa:observedProperty dsgo:CO2Concentration ; sosa:hasFeatureOfInterest ?space ;
                    sosa:hasResult/qudt:numericValue ?co2 }} GROUP BY ?space }}
          SERVICE <{builder}/sparql> {{ ?space rdfs:label ?code }}
          BIND(IRI(CONCAT("{renovator}/id/co2-summary/", ?code)) AS ?summary)
        }}"""
    )
    dsgo("derive", construct, "--dataset", "co2-summary", "--config", world.configs[RENOVATOR])
    return f"{renovator}/dataset/co2-summary"


def _receipts(world: World, iri: str, *flags: str):
    return dsgo(
        "audit", "receipts", "--for", iri, *flags, "--config", world.configs[RENOVATOR], check=False
    )


def test_receipts_of_a_derived_dataset_verify_offline_and_tampering_names_the_receipt(
    world: World,
) -> None:
    dataset = _derive(world)
    out = _receipts(world, dataset)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [json.loads(line) for line in _receipts(world, dataset, "--json").stdout.splitlines()]
    # The SERVICE answer(s) and the link checks of the three spaces' ETags, all signed by the builder.
    assert len(rows) >= 4
    assert all(r["verified"] and r["signer"] == BUILDER and r["signed_at"] for r in rows)
    assert any(r["method"] == "POST" and r["url"].endswith("/sparql") for r in rows)
    assert sum(r["method"] == "GET" and "/id/bim/space/" in r["url"] for r in rows) == 3
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"{dataset}/version/1: built from {len(rows)}")
    assert all(f"signed by {BUILDER} at " in line for line in lines[1:-1])
    assert lines[-1] == f"{len(rows)} receipts: {len(rows)} verified, 0 failed, 0 unsigned"

    db = load_settings(world.configs[RENOVATOR]).data_dir / "receipts.sqlite"
    victim = rows[0]["receipt"]
    with sqlite3.connect(db) as conn:
        body, signature = conn.execute(
            "SELECT body, signature FROM receipts WHERE id = ?", (victim,)
        ).fetchone()
    flipped = bytearray(body)
    flipped[len(flipped) // 2] ^= 0x01
    at = len(signature) - 20
    forged = signature[:at] + ("B" if signature[at] == "A" else "A") + signature[at + 1 :]
    for column, value, check in (
        ("body", bytes(flipped), "digest_mismatch"),
        ("signature", forged, "signature_invalid"),
    ):
        original = body if column == "body" else signature
        with sqlite3.connect(db) as conn:
            conn.execute(f"UPDATE receipts SET {column} = ? WHERE id = ?", (value, victim))
        try:
            bad = _receipts(world, dataset)
        finally:
            with sqlite3.connect(db) as conn:
                conn.execute(f"UPDATE receipts SET {column} = ? WHERE id = ?", (original, victim))
        assert bad.returncode == 1, bad.stdout
        failing = [line for line in bad.stdout.splitlines() if line.startswith("FAIL")]
        assert len(failing) == 1 and failing[0].startswith(f"FAIL {victim}: ")
        assert check in failing[0]
        assert bad.stdout.splitlines()[-1].endswith(
            f"{len(rows) - 1} verified, 1 failed, 0 unsigned"
        )
    assert _receipts(world, dataset).returncode == 0

    # The audit log commits to each receipt (its id and fingerprint), under the hash chain.
    kept = {e["detail"]["receipt"] for e in world.audit(RENOVATOR, "receipt")}
    assert {r["receipt"] for r in rows} <= kept


def test_receipts_usage_errors_exit_2_without_traceback(world: World) -> None:
    for iri in (
        f"{world.urls[RENOVATOR]}/dataset/measurements",  # loaded, not derived
        f"{world.urls[RENOVATOR]}/dataset/co2-summary/version/99",
        "not an iri",
    ):
        out = _receipts(world, iri)
        assert out.returncode == 2, out.stdout
        assert out.stderr.startswith("dsgo: error: ") and "Traceback" not in out.stderr


def test_unsigned_answers_are_accepted_and_recorded_unless_configured_otherwise(
    world: World,
) -> None:
    world.restart(BUILDER, env={"DSGO_EXCHANGE_SIGN": "false"})
    try:
        before = len(world.audit(RENOVATOR, "receipt"))
        resp = world.renovator_select(world.join())
        assert resp.status_code == 200, resp.text
        new = world.audit(RENOVATOR, "receipt")[before:]
        assert new and all(e["detail"]["status"] == "unsigned" for e in new)
        world.restart(RENOVATOR, env={"DSGO_EXCHANGE_ACCEPT_UNSIGNED": "false"})
        try:
            refused = world.renovator_select(world.join())
            assert refused.status_code == 502, refused.text
            text = json.dumps(refused.json())
            assert f"{world.urls[BUILDER]}/sparql" in text and "unsigned" in text
        finally:
            world.restart(RENOVATOR)
    finally:
        world.restart(BUILDER)
    assert world.renovator_select(world.join()).status_code == 200
