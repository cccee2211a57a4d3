"""HTTP: POST /delegation, GET /delegation/explain and the policy admin API (real bearer auth)."""

from __future__ import annotations

import datetime as dt
import time

import pyoxigraph as ox
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from node.enforcement import Enforcer
from node.routes.delegation import delegation_routes
from node.store import MemoryStore
from trust.authorization_register import AuthorizationRegister
from trust.delegation import Decision
from trust.ishare_jwt import create_client_assertion, verify_signed_response
from trust.layer import TrustLayer
from trust.pki import create_dev_ca, issue_party_certificate
from trust.policy_store import PolicyStore
from trust.registry import Registry

BASE = "http://127.0.0.1:8101"
ABC = "EU.EORI.NL000000001"
AWESOME = "EU.EORI.NL000000002"
OWNER = "EU.EORI.NL000000003"
BUILDING = "https://w3id.org/bot#Building"
IFC = f"{BASE}/dataset/ifc"
AT = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)


@pytest.fixture(scope="module")
def pki():
    ca = create_dev_ca(now=AT)
    ids = {pid: issue_party_certificate(ca, pid, pid, now=AT) for pid in (ABC, AWESOME, OWNER)}
    return ca, ids


@pytest.fixture()
def node(tmp_path, pki):
    ca, ids = pki
    registry = Registry(tmp_path / "registry.db")
    for pid in (ABC, AWESOME):
        registry.add_party(pid, pid, certificates=[ids[pid].certificate], start_date=AT)
    layer = TrustLayer(
        ids[OWNER],
        {ca.root_fingerprint},
        registry,
        tmp_path / "replay.db",
        tmp_path / "token.key",
        BASE,
    )
    policies = PolicyStore(tmp_path / "policies.db", issuer=OWNER, base_iri=BASE)
    register = AuthorizationRegister(
        ids[OWNER], policies, trusted_sha256={ca.root_fingerprint}, directory=registry
    )
    decisions: list[Decision] = []
    enforcer = Enforcer(policies, node_party_id=OWNER, base_iri=BASE, on_decision=decisions.append)
    data = ox.Store()
    data.add(
        ox.Quad(
            ox.NamedNode(f"{BASE}/id/building/1"),
            ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type"),
            ox.NamedNode(BUILDING),
            ox.NamedNode(IFC),
        )
    )
    routes = delegation_routes(
        layer, policies, register, enforcer, store=MemoryStore(data), on_decision=decisions.append
    )
    client = TestClient(Starlette(routes=routes))

    def bearer(party: str) -> dict[str, str]:
        token = layer.issuer.issue(party, "iSHARE").response()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    return client, bearer, policies, decisions, ca, ids


def _mask(identifiers: list[str]) -> dict:
    return {
        "delegationRequest": {
            "policyIssuer": OWNER,
            "target": {"accessSubject": ABC},
            "policySets": [
                {
                    "policies": [
                        {
                            "target": {
                                "resource": {"type": BUILDING, "identifiers": identifiers},
                                "actions": ["ISHARE.READ"],
                            },
                            "rules": [{"effect": "Permit"}],
                        }
                    ]
                }
            ],
        }
    }


def _effect(token: str, ca, audience: str) -> str:
    claims = verify_signed_response(
        token,
        claim="delegationEvidence",
        issuer=OWNER,
        audience=audience,
        trusted_sha256={ca.root_fingerprint},
    ).claims
    return claims["delegationEvidence"]["policySets"][0]["policies"][0]["rules"][0]["effect"]


def test_admin_grant_then_delegation_permit_and_deny(node) -> None:
    client, bearer, policies, decisions, ca, _ = node
    created = client.post(
        "/delegation/policies",
        json={
            "grant": {
                "to": ABC,
                "type": BUILDING,
                "deny": [{"resource": {"type": BUILDING, "identifiers": [f"{BASE}/id/b/9"]}}],
            }
        },
        headers=bearer(OWNER),
    )
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    permit = client.post("/delegation", json=_mask([f"{BASE}/id/b/1"]), headers=bearer(ABC))
    assert permit.status_code == 200 and permit.headers["cache-control"] == "no-store"
    assert _effect(permit.json()["delegation_token"], ca, ABC) == "Permit"
    deny = client.post("/delegation", json=_mask([f"{BASE}/id/b/9"]), headers=bearer(ABC))
    assert _effect(deny.json()["delegation_token"], ca, ABC) == "Deny"
    assert [(d.action, d.effect, d.policy_ids) for d in decisions] == [
        ("dsgo:admin", "Permit", ("owner",)),  # the owner's policy change, audited
        ("delegation", "Permit", (pid,)),
        ("delegation", "Deny", (pid,)),
    ]


def test_delegation_for_sp_with_previous_steps(node) -> None:
    client, bearer, policies, _, ca, ids = node
    policies.grant(ABC, type=BUILDING)
    mask = _mask(["*"])
    refused = client.post("/delegation", json=mask, headers=bearer(AWESOME))
    assert refused.status_code == 403
    mask["previous_steps"] = [create_client_assertion(ids[ABC], AWESOME)]
    ok = client.post("/delegation", json=mask, headers=bearer(AWESOME))
    assert ok.status_code == 200, ok.text
    assert _effect(ok.json()["delegation_token"], ca, AWESOME) == "Permit"


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, _mask(["*"]), 401),
        ({"Authorization": "Bearer forged.token.value"}, _mask(["*"]), 401),
        ("abc", {"delegationRequest": {"policyIssuer": OWNER}}, 400),
        ("abc", "not json", 400),
    ],
)
def test_delegation_rejections(node, headers, body, status) -> None:
    client, bearer, policies, *_ = node
    policies.grant(ABC, type=BUILDING)
    if headers == "abc":
        headers = bearer(ABC)
    if isinstance(body, str):
        response = client.post(
            "/delegation", content=body, headers={**headers, "Content-Type": "application/json"}
        )
    else:
        response = client.post("/delegation", json=body, headers=headers)
    assert response.status_code == status
    assert "error" in response.json()


def test_only_the_owner_administers_policies(node) -> None:
    client, bearer, policies, *_ = node
    pid = policies.grant(ABC, dataset="ifc")
    for method, path, kwargs in [
        ("GET", "/delegation/policies", {}),
        ("POST", "/delegation/policies", {"json": {"grant": {"to": ABC, "dataset": "*"}}}),
        ("GET", f"/delegation/policies/{pid}", {}),
        ("DELETE", f"/delegation/policies/{pid}", {}),
    ]:
        response = client.request(method, path, headers=bearer(ABC), **kwargs)
        assert response.status_code == 403, (method, path)
        assert client.request(method, path, **kwargs).status_code == 401
    assert [p.id for p in policies.list()] == [pid]


def test_admin_list_get_odrl_and_revoke(node) -> None:
    client, bearer, policies, *_ = node
    owner = bearer(OWNER)
    pid = client.post(
        "/delegation/policies", json={"grant": {"to": ABC, "dataset": "ifc"}}, headers=owner
    ).json()["id"]
    listed = client.get("/delegation/policies", headers=owner).json()
    assert [p["id"] for p in listed] == [pid]
    odrl = client.get("/delegation/policies?format=odrl", headers=owner).json()
    assert odrl[0]["uid"] == f"{BASE}/policy/{pid}" and odrl[0]["type"] == "Set"
    one = client.get(
        f"/delegation/policies/{pid}", headers={**owner, "Accept": "application/ld+json"}
    )
    assert one.headers["content-type"].startswith("application/ld+json")
    assert client.delete(f"/delegation/policies/{pid}", headers=owner).status_code == 204
    assert client.delete(f"/delegation/policies/{pid}", headers=owner).status_code == 404
    assert client.get(f"/delegation/policies/{pid}", headers=owner).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"grant": {"to": ABC}},
        {"grant": {"to": ABC, "dataset": "ifc", "sudo": True}},
        {"grant": "everything"},
        {"delegationEvidence": {"policyIssuer": ABC}},
    ],
)
def test_admin_rejects_bad_policies(node, body) -> None:
    client, bearer, policies, *_ = node
    response = client.post("/delegation/policies", json=body, headers=bearer(OWNER))
    assert response.status_code == 400
    assert policies.list() == []


def test_explain_shows_only_the_callers_policies(node) -> None:
    client, bearer, policies, *_ = node
    others = policies.grant(AWESOME, dataset="*")
    mine = policies.grant(
        ABC,
        type=BUILDING,
        deny=[{"resource": {"type": BUILDING, "identifiers": [f"{BASE}/id/building/1"]}}],
    )
    body = client.get(
        "/delegation/explain",
        params={"resource": f"{BASE}/id/building/1"},
        headers=bearer(ABC),
    ).json()
    assert body["decision"] == "Deny" and body["rule"] == f"policy {mine}: Deny rule"
    assert others not in str(body)
    other_view = client.get(
        "/delegation/explain", params={"dataset": "ifc"}, headers=bearer(AWESOME)
    ).json()
    assert other_view["decision"] == "Permit" and mine not in str(other_view)
    assert client.get("/delegation/explain", params={"dataset": "ifc"}).status_code == 401
    bad = client.get(
        "/delegation/explain", params={"resource": "not an iri <>"}, headers=bearer(ABC)
    )
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"
    assert "Invalid IRI" in bad.json()["error_description"]


def test_revocation_applies_to_the_next_delegation_request(node) -> None:
    client, bearer, policies, _, ca, _ = node
    pid = policies.grant(ABC, type=BUILDING)
    first = client.post("/delegation", json=_mask(["*"]), headers=bearer(ABC)).json()
    assert _effect(first["delegation_token"], ca, ABC) == "Permit"
    policies.revoke(pid)
    time.sleep(0)  # no clock dependence: the version counter decides
    second = client.post("/delegation", json=_mask(["*"]), headers=bearer(ABC))
    assert second.status_code == 404
