"""Issue 3 end to end: a registry node and data nodes A and B, real processes sharing one dev CA."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from nodeproc import ProcessGroup, base_of, dsgo, free_port, init_node, trust_client

from trust.ishare_jwt import verify_signed_response

REGISTRY = "EU.EORI.NL000000100"
A = "EU.EORI.NL000000101"
B = "EU.EORI.NL000000102"
D = "EU.EORI.NL000000103"  # registered, then revoked
C = "EU.EORI.NL000000104"  # same CA, never registered
DATA = '@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n<building/b1> rdfs:label "B1" .\n'


@dataclass
class World:
    """Registry node, data nodes A and B (B caches registry answers 1 s), spare identities."""

    root: Path
    registry_config: Path
    registry_url: str
    configs: dict[str, Path]
    urls: dict[str, str]

    def token_form(self, party: str, audience: str) -> dict[str, str]:
        client = trust_client(self.configs[party])
        try:
            return client.token_form(audience)
        finally:
            client.close()

    def token_request(self, party: str, node: str) -> httpx.Response:
        """POST /connect/token at `node` as `party` (a fresh client assertion)."""
        audience = {A: A, B: B}[node]
        return httpx.post(f"{self.urls[node]}/connect/token", data=self.token_form(party, audience))

    def token(self, party: str, node: str) -> str:
        resp = self.token_request(party, node)
        assert resp.status_code == 200, resp.text
        return resp.json()["access_token"]


@pytest.fixture(scope="module")
def world(
    module_procs: ProcessGroup, dev_ca: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    root = tmp_path_factory.mktemp("trust-world")
    reg_port = free_port()
    registry_config = init_node(root / "registry", REGISTRY, "Registry", reg_port, ca=dev_ca)
    registry = module_procs.serve(registry_config, reg_port, name="registry")
    ports = {A: free_port(), B: free_port(), D: free_port(), C: free_port()}
    configs = {}
    for party, name in ((A, "Alpha"), (B, "Beta"), (D, "Delta"), (C, "Charlie")):
        configs[party] = init_node(
            root / name.lower(),
            party,
            name,
            ports[party],
            ca=dev_ca,
            registry_url=registry.base_url,
            registry_id=REGISTRY,
        )
    for party, name in ((A, "Alpha"), (B, "Beta"), (D, "Delta")):
        cert = configs[party].parent / "keys" / "node.cert.pem"
        dsgo(
            *("registry", "add", "--config", registry_config, "--party-id", party),
            *("--name", name, "--cert", cert),
            *("--capability-url", f"{base_of(configs[party])}/capabilities"),
        )
    data = root / "b.ttl"
    data.write_text(DATA)
    dsgo("load", data, "--dataset", "bim", "--config", configs[B])
    urls = {}
    urls[A] = module_procs.serve(configs[A], ports[A], name="A").base_url
    urls[B] = module_procs.serve(
        configs[B], ports[B], env={"DSGO_TRUST_REGISTRY_CACHE_SECONDS": "1"}, name="B"
    ).base_url
    yield World(root, registry_config, registry.base_url, configs, urls)


def get(world: World, node: str, path: str, token: str | None, **params: str) -> httpx.Response:
    headers = {"Accept": "text/turtle"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.get(f"{world.urls[node]}{path}", params=params, headers=headers)


def test_registry_lists_registered_parties(world: World) -> None:
    listed = dsgo("registry", "list", "--config", world.registry_config).stdout
    for party in (REGISTRY, A, B, D):
        assert f"{party}\tActive" in listed
    assert C not in listed


def test_a_reads_b_only_after_b_grants(world: World) -> None:
    """A's token at B works, but data needs B's policy; after `dsgo policy grant` A reads it."""
    token = world.token(A, B)
    resource = get(world, B, "/id/building/b1", token)
    assert resource.status_code == 403
    query = get(world, B, "/sparql", token, query="SELECT * WHERE { ?s ?p ?o }")
    assert query.status_code == 403
    policy = dsgo("policy", "grant", "--config", world.configs[B], "--to", A, "--dataset", "bim")
    policy_id = policy.stdout.strip()
    try:
        resource = get(world, B, "/id/building/b1", token)
        assert resource.status_code == 200, resource.text
        assert '"B1"' in resource.text
        rows = httpx.get(
            f"{world.urls[B]}/sparql",
            params={"query": "SELECT ?o WHERE { ?s ?p ?o }"},
            headers={"Authorization": f"Bearer {token}"},
        ).json()["results"]["bindings"]
        assert [r["o"]["value"] for r in rows] == ["B1"]
    finally:
        dsgo("policy", "revoke", "--config", world.configs[B], policy_id)


def test_trust_client_reads_b_through_cli_token(world: World) -> None:
    """`dsgo token --for B` (as A) gives a token B accepts (200 or 403 — never 401)."""
    token = dsgo("token", "--for", world.urls[B], "--config", world.configs[A]).stdout.strip()
    resp = get(world, B, "/sparql", token, query="ASK {}")
    assert resp.status_code == 403
    assert resp.json()["error"] == "access_denied"


def test_token_of_another_node_is_refused(world: World) -> None:
    """A token node A issued (to A itself, or to B's party) is not accepted by node B."""
    for party in (A, B):
        foreign = world.token(party, A)
        assert get(world, A, "/healthz", foreign).status_code == 200
        resp = get(world, B, "/id/building/b1", foreign)
        assert resp.status_code == 401, party
        assert resp.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    own = world.token(B, B)
    assert get(world, B, "/id/building/b1", own).status_code == 200


def test_assertion_for_another_audience_is_refused(world: World) -> None:
    """A client assertion made out to node A cannot buy a token at node B."""
    resp = httpx.post(f"{world.urls[B]}/connect/token", data=world.token_form(A, A))
    assert resp.status_code in (400, 401)
    assert resp.json()["error"] in ("invalid_client", "invalid_request")


def test_unregistered_party_is_refused(world: World) -> None:
    """C has a certificate from the scheme CA but is not in the registry: invalid_client."""
    resp = world.token_request(C, B)
    assert resp.status_code == 400  # iSHARE: token endpoint errors are 400 (trust/errors.py)
    assert resp.json()["error"] == "invalid_client"
    assert "party_unknown" in resp.json()["error_description"]


def test_capabilities_without_token(world: World) -> None:
    resp = httpx.get(f"{world.urls[B]}/capabilities")
    assert resp.status_code == 200
    client = trust_client(world.configs[A])
    verified = verify_signed_response(
        resp.json()["capabilities_token"],
        claim="capabilities_info",
        issuer=None,
        audience=None,
        trusted_sha256=client.trusted_sha256,
        now=time.time(),
    )
    client.close()
    assert verified.issuer == B


def test_revoked_party_is_refused_within_cache_time(world: World) -> None:
    """After the registry revokes D, D's next token requests at B fail once B's 1 s cache ends."""
    assert world.token_request(D, B).status_code == 200
    dsgo("registry", "status", "--config", world.registry_config, D, "Revoked")
    deadline = time.monotonic() + 15
    resp = world.token_request(D, B)
    while resp.status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.25)
        resp = world.token_request(D, B)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "invalid_client"
    assert "party_not_active" in resp.json()["error_description"]
    time.sleep(1.5)
    assert world.token_request(D, B).status_code == 400
    assert world.token_request(A, B).status_code == 200
