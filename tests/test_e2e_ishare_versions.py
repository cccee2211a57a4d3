"""Issue 16 end to end: a 3.0-speaking node and a 2.x-speaking node federate with each other.

Real `dsgo serve` processes: a registry (serving iSHARE 2.x at its root and 3.0 under `/v3`),
a builder whose registry client speaks 3.0 (`trust.registry_url = {registry}/v3`, version
found by discovery) with a `did:ishare` party id, and a renovator pinned to 2.1
(`trust.registry_version = "2.1"`). Each queries the other with SERVICE; each side checks the
other's token request, certificate and party at the registry in its own version. python-ishare,
the scheme's 2.x client, talks to the same registry.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from nodeproc import (
    Proc,
    ProcessGroup,
    base_of,
    dsgo,
    edit_config,
    free_port,
    init_node,
    select_rows,
    trust_client,
)

REGISTRY = "EU.EORI.NL000000100"
BUILDER = "did:ishare:EU.NL.NTRNL-10000101"  # a 3.0-style id
RENOVATOR = "EU.EORI.NL000000102"
ALIAS = "did:web:builder.example.com"
JSON = "application/sparql-results+json"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"


@dataclass
class World:
    registry: Proc
    registry_cfg: Path
    builder: Path
    renovator: Path
    builder_url: str
    renovator_url: str


def _load(config: Path, name: str, text: str, root: Path) -> None:
    path = root / f"{name}.ttl"
    path.write_text(text, encoding="utf-8")
    dsgo("load", path, "--dataset", name, "--config", config)


@pytest.fixture(scope="module")
def world(
    module_procs: ProcessGroup, dev_ca: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    root = tmp_path_factory.mktemp("ishare-versions")
    reg_port, b_port, r_port = free_port(), free_port(), free_port()
    registry_cfg = init_node(root / "registry", REGISTRY, "Registry", reg_port, ca=dev_ca)
    registry = module_procs.serve(registry_cfg, reg_port, name="registry")
    builder = init_node(
        root / "builder",
        BUILDER,
        "Builder",
        b_port,
        ca=dev_ca,
        registry_url=f"{registry.base_url}/v3",
        registry_id=REGISTRY,
    )
    renovator = init_node(
        root / "renovator",
        RENOVATOR,
        "Renovator",
        r_port,
        ca=dev_ca,
        registry_url=registry.base_url,
        registry_id=REGISTRY,
    )
    edit_config(renovator, {"trust": {"registry_version": "2.1"}})
    for party, name, config in ((BUILDER, "Builder", builder), (RENOVATOR, "Renovator", renovator)):
        more = ["--also-known-as", ALIAS, "--auth-registry", f"{REGISTRY};{BUILDER};sparql"]
        dsgo(
            *("registry", "add", "--config", registry_cfg, "--party-id", party, "--name", name),
            *("--cert", config.parent / "keys" / "node.cert.pem"),
            *("--capability-url", f"{base_of(config)}/capabilities"),
            *(more if party == BUILDER else []),
        )
    b_url, r_url = base_of(builder), base_of(renovator)
    _load(builder, "bim", f'<{b_url}/id/space/1> <{RDFS}label> "Space 1" .\n', root)
    _load(renovator, "sensors", f'<{b_url}/id/space/1> <{RDFS}comment> "CO2 612" .\n', root)
    module_procs.serve(builder, b_port, name="builder")
    module_procs.serve(renovator, r_port, name="renovator")
    dsgo("policy", "grant", "--config", builder, "--to", RENOVATOR, "--dataset", "bim")
    dsgo("policy", "grant", "--config", renovator, "--to", BUILDER, "--dataset", "sensors")
    yield World(registry, registry_cfg, builder, renovator, b_url, r_url)


def _select(config: Path, base: str, query: str) -> httpx.Response:
    client = trust_client(config)
    try:
        return client.request(
            "POST", base, "/sparql", data={"query": query}, headers={"Accept": JSON}, timeout=60
        )
    finally:
        client.close()


def _join(service: str) -> str:
    return (
        f"SELECT ?label ?comment WHERE {{ ?s <{RDFS}comment> ?comment . "
        f"SERVICE <{service}/sparql> {{ ?s <{RDFS}label> ?label }} }}"
    )


def _registry_paths(world: World) -> list[str]:
    paths = []
    for line in world.registry.stderr.splitlines():
        if line.startswith("{"):
            try:
                paths.append(json.loads(line)["path"])
            except (ValueError, KeyError):
                continue
    return paths


def test_2x_node_queries_the_3x_node(world: World) -> None:
    """The renovator (2.1) joins its readings with the builder's (3.0) spaces."""
    query = (
        f"SELECT ?label ?comment WHERE {{ GRAPH <{world.renovator_url}/dataset/sensors> "
        f"{{ ?s <{RDFS}comment> ?comment }} SERVICE <{world.builder_url}/sparql> "
        f"{{ ?s <{RDFS}label> ?label }} }}"
    )
    resp = _select(world.renovator, world.renovator_url, query)
    assert resp.status_code == 200, resp.text
    assert select_rows(resp) == [("Space 1", "CO2 612")]


def test_3x_node_queries_the_2x_node(world: World) -> None:
    """The builder (3.0, did:ishare id) reads the renovator's (2.1) readings by SERVICE."""
    query = (
        f"SELECT ?label ?comment WHERE {{ GRAPH <{world.builder_url}/dataset/bim> "
        f"{{ ?s <{RDFS}label> ?label }} SERVICE <{world.renovator_url}/sparql> "
        f"{{ ?s <{RDFS}comment> ?comment }} }}"
    )
    resp = _select(world.builder, world.builder_url, query)
    assert resp.status_code == 200, resp.text
    assert select_rows(resp) == [("Space 1", "CO2 612")]


def test_each_node_spoke_its_version_with_the_registry(world: World) -> None:
    """Both queries ran (the tests above); the registry saw 3.0 and 2.x lookups."""
    paths = _registry_paths(world)
    v3 = [p for p in paths if p.startswith("/v3/")]
    v2 = [p for p in paths if not p.startswith("/v3/")]
    assert "/v3/trustedList" in v3, paths  # the builder's discovery and its trusted list
    assert any(p.startswith("/v3/parties") for p in v3), paths
    assert "/trusted_list" in v2 and any(p.startswith("/parties") for p in v2), paths


def test_python_ishare_against_the_registry(world: World) -> None:
    """python-ishare's ISHARESatelliteClient: token, capabilities, parties, trusted list,
    verify_party and verify_ca_certificate against the node's 2.x registry API."""
    python_ishare = pytest.importorskip("python_ishare")
    from node.config import load_settings
    from node.runtime import load_identity
    from trust.ishare_jwt import create_client_assertion

    identity = load_identity(load_settings(world.renovator))
    registry_cert = x509.load_pem_x509_certificate(
        (world.registry_cfg.parent / "keys" / "node.cert.pem").read_bytes()
    )
    client = python_ishare.ISHARESatelliteClient(
        target_domain=world.registry.base_url,
        target_public_key=[registry_cert],
        client_eori=RENOVATOR,
        json_web_token=lambda: create_client_assertion(identity, REGISTRY),
    )
    caps = client.get_capabilities(use_token=False)
    assert caps["iss"] == REGISTRY and caps["capabilities_info"]["publicServices"]
    caps = client.get_capabilities()
    assert caps["aud"] == RENOVATOR and caps["capabilities_info"]["restrictedServices"]
    verified = client.verify_party(party_eori=RENOVATOR)
    assert verified["parties_info"]["data"][0]["adherence"]["status"] == "Active"
    trusted = client.get_trusted_list()["trusted_list"]
    assert trusted and all("certificate_fingerprint" in t for t in trusted)
    client.verify_ca_certificate(json_web_token=create_client_assertion(identity, REGISTRY))
    with pytest.raises(python_ishare.clients.ISHAREPartyStatusInvalid):
        client.verify_party(party_eori="EU.EORI.NL000000999")


def test_registry_finds_the_builder_by_its_alias(world: World) -> None:
    """`dsgo registry add --also-known-as --auth-registry`, read back through the 3.0 API."""
    client = trust_client(world.renovator)
    try:
        resp = client.request(
            "GET", f"{world.registry.base_url}/v3", f"/parties/{ALIAS}", party_id=REGISTRY
        )
    finally:
        client.close()
    assert resp.status_code == 200, resp.text
    token = resp.json()["partyToken"]
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    info = payload["partyInfo"]
    assert info["id"] == BUILDER and info["alsoKnownAs"] == [ALIAS]
    [register] = [c for c in info["claims"] if c["type"] == "authRegistry"]
    assert (register["authRegistryId"], register["serviceProviderPartyId"]) == (REGISTRY, BUILDER)
    assert register["serviceIdentifier"] == "sparql"


@pytest.mark.parametrize(
    "flag,value,message",
    [
        ("--also-known-as", "did:web:x", "did:web"),
        ("--auth-registry", "EU.EORI.NL000000100;a;b;c", "ID[;SERVICE_PROVIDER[;SERVICE]]"),
        ("--auth-registry", "EU.EORI.NL000000100;not-an-id", "not an EORI"),
    ],
)
def test_registry_add_refuses_bad_ids(world: World, flag: str, value: str, message: str) -> None:
    proc = dsgo(
        *("registry", "add", "--config", world.registry_cfg, "--party-id", "EU.EORI.NL000000109"),
        *("--name", "X", "--cert", world.renovator.parent / "keys" / "node.cert.pem"),
        flag,
        value,
        check=False,
    )
    assert proc.returncode != 0
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
