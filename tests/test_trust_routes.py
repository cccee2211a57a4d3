"""/connect/token, /capabilities and registry routes (node/routes/trust.py, node/auth.py, TrustLayer).

The rejection matrix runs through Starlette's TestClient; the end-to-end flows (TrustClient, real
iSHARE ABC Trucking material) run against a real uvicorn server on 127.0.0.1.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import threading
import time
import uuid
from pathlib import Path

import httpx
import orjson
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from starlette.testclient import TestClient

from node.routes.trust import trust_routes
from trust import pki
from trust.access_token import AccessTokenIssuer, load_or_create_signing_key
from trust.client import ASSERTION_TYPE, TrustClient
from trust.errors import UpstreamError
from trust.ishare_jwt import (
    b64url_encode,
    create_client_assertion,
    create_signed_response,
    sign_compact,
)
from trust.layer import TrustLayer
from trust.registry import LocalDirectory, Registry

DATA = Path(__file__).parent / "data" / "ishare"
ISHARE_ROOT = "8C39DD06E35DE8467004A542D0CA4B8FDC7D6F8F713F40A35BD9E65938A191CF"
NODE_ID = "EU.EORI.NL000000500"
ABC = "EU.EORI.NL000000001"


class World:
    """A node that is also the registry, plus client identities in every registry state."""

    def __init__(self, tmp: Path) -> None:
        self.ca = pki.create_dev_ca("Routes test")
        self.node = pki.issue_party_certificate(self.ca, NODE_ID, "Node")
        issue = lambda pid, name, **kw: pki.issue_party_certificate(self.ca, pid, name, **kw)  # noqa: E731
        self.client = issue("EU.EORI.NL000000501", "Client")
        self.revoked = issue("EU.EORI.NL000000502", "Revoked", key=self.client.private_key)
        self.inactive = issue("EU.EORI.NL000000503", "Inactive", key=self.client.private_key)
        self.unregistered = issue("EU.EORI.NL000000501", "Client2", key=self.client.private_key)
        self.stranger = issue("EU.EORI.NL000000504", "Stranger", key=self.client.private_key)
        self.no_dsgo = issue("EU.EORI.NL000000505", "NoDSGO", key=self.client.private_key)
        self.abc = pki.load_pem_identity(
            DATA / "ABCTrucking.key.pem", DATA / "ABCTrucking.cert.pem"
        )
        self.registry = Registry(tmp / "registry.db")
        self.registry.add_trusted_ca(self.ca.root_cert)
        self.registry.add_trusted_ca(
            fingerprint=ISHARE_ROOT, subject="CN=TEST iSHARE Foundation eIDAS"
        )
        self.registry.add_party(
            NODE_ID,
            "Node",
            certificates=[self.node.certificate],
            roles=["ServiceProvider", "ParticipantRegistry"],
        )
        self.registry.add_party(
            self.client.party_id, "Client", certificates=[self.client.certificate]
        )
        self.registry.add_party(
            self.revoked.party_id, "Revoked", certificates=[self.revoked.certificate]
        )
        self.registry.set_status(self.revoked.party_id, "Revoked")
        self.registry.add_party(
            self.inactive.party_id,
            "Inactive",
            certificates=[self.inactive.certificate],
            status="NotActive",
        )
        self.registry.add_party(
            self.no_dsgo.party_id, "NoDSGO", certificates=[self.no_dsgo.certificate], dataspaces=[]
        )
        self.registry.add_party(ABC, "ABC Trucking", certificates=[self.abc.certificate])
        self.key_path = tmp / "token-key.pem"
        self.layer = TrustLayer(
            self.node,
            {self.ca.root_fingerprint},
            LocalDirectory(self.registry),
            tmp / "replay.db",
            self.key_path,
            "http://127.0.0.1:0",
            registry=self.registry,
            require_dataspace="EU.DS.NL.DSGO",
        )
        self.app = Starlette(routes=trust_routes(self.layer))


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return World(tmp_path_factory.mktemp("routes"))


@pytest.fixture(scope="module")
def http(world) -> TestClient:
    return TestClient(world.app, raise_server_exceptions=True)


@pytest.fixture(scope="module")
def server(world):
    """A real uvicorn serving the routes on 127.0.0.1:<free port>; yields the base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    world.layer.base_url = f"http://127.0.0.1:{port}"  # its capabilities name where it serves
    config = uvicorn.Config(
        world.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(500):
        if srv.started:
            break
        time.sleep(0.01)
    assert srv.started
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def form(identity, **override) -> dict[str, str]:
    fields = {
        "grant_type": "client_credentials",
        "scope": "iSHARE",
        "client_id": identity.party_id,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": create_client_assertion(identity, NODE_ID),
    }
    fields.update(override)
    return {k: v for k, v in fields.items() if v is not None}


def forged(identity, header=None, claims=None, key=None) -> str:
    now = int(time.time())
    h = {"alg": "RS256", "typ": "JWT", "x5c": identity.x5c, **(header or {})}
    c = {
        "iss": identity.party_id,
        "sub": identity.party_id,
        "aud": NODE_ID,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 30,
        **(claims or {}),
    }
    return sign_compact(h, c, key or identity.private_key)


def rejected(resp: httpx.Response, status: int, error: str, check: str | None = None) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == error, body
    if check:
        assert body["error_description"].startswith(f"{check}:"), body


# ---- the happy path ---------------------------------------------------------------------------


def test_token_issued(http, world):
    resp = http.post("/connect/token", data=form(world.client))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert "refresh_token" not in body
    assert resp.headers["cache-control"] == "no-store"
    claims = world.layer.verify_access_token(body["access_token"])
    assert claims.party_id == world.client.party_id


def test_unread_scope_values_are_refused(http, world):
    """Nothing reads a scope value other than iSHARE, so none is carried in a token (issue 11)."""
    resp = http.post("/connect/token", data=form(world.client, scope="dsgo ishare"))
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_scope", resp.text
    ok = http.post("/connect/token", data=form(world.client, scope="ishare"))
    assert ok.status_code == 200, ok.text


# ---- rejection matrix: one test per path, status + error code, never 5xx -------------------


def test_get_token_endpoint_is_405(http):
    resp = http.get("/connect/token")
    assert resp.status_code == 405 and resp.headers["allow"] == "POST"
    assert resp.json()["error"] == "invalid_request"


def test_alg_none(http, world):
    good = forged(world.client).split(".")
    header = b64url_encode(orjson.dumps({"alg": "none", "typ": "JWT", "x5c": world.client.x5c}))
    rejected(
        http.post(
            "/connect/token", data=form(world.client, client_assertion=f"{header}.{good[1]}.")
        ),
        400,
        "invalid_client",
        "header_alg",
    )


def test_hs256_with_public_key(http, world):
    pub = world.client.certificate.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64url_encode(orjson.dumps({"alg": "HS256", "typ": "JWT", "x5c": world.client.x5c}))
    payload = forged(world.client).split(".")[1]
    sig = b64url_encode(hmac.new(pub, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    rejected(
        http.post(
            "/connect/token", data=form(world.client, client_assertion=f"{header}.{payload}.{sig}")
        ),
        400,
        "invalid_client",
        "header_alg",
    )


def test_extra_header_kid(http, world):
    token = forged(world.client, header={"kid": "1"})
    rejected(
        http.post("/connect/token", data=form(world.client, client_assertion=token)),
        400,
        "invalid_client",
        "header_params",
    )


def test_aud_as_list(http, world):
    token = forged(world.client, claims={"aud": [NODE_ID]})
    rejected(
        http.post("/connect/token", data=form(world.client, client_assertion=token)),
        400,
        "invalid_client",
        "aud_list",
    )


def test_wrong_aud(http, world):
    token = create_client_assertion(world.client, "EU.EORI.NL000000999")
    rejected(
        http.post("/connect/token", data=form(world.client, client_assertion=token)),
        400,
        "invalid_client",
        "aud",
    )


def test_exp_minus_iat_not_30(http, world):
    now = int(time.time())
    token = forged(world.client, claims={"iat": now, "exp": now + 3600})
    rejected(
        http.post("/connect/token", data=form(world.client, client_assertion=token)),
        400,
        "invalid_client",
        "exp_iat_30",
    )


def test_expired_assertion(http, world):
    past = int(time.time()) - 120
    token = forged(world.client, claims={"iat": past, "exp": past + 30})
    rejected(
        http.post("/connect/token", data=form(world.client, client_assertion=token)),
        400,
        "invalid_client",
        "expired",
    )


def test_future_iat(http, world):
    future = int(time.time()) + 120
    token = forged(world.client, claims={"iat": future, "exp": future + 30})
    rejected(
        http.post("/connect/token", data=form(world.client, client_assertion=token)),
        400,
        "invalid_client",
        "iat_future",
    )


def test_replayed_jti(http, world):
    fields = form(world.client)
    assert http.post("/connect/token", data=fields).status_code == 200
    rejected(http.post("/connect/token", data=fields), 400, "invalid_client", "jti_replayed")


def test_chain_to_untrusted_root(http, world):
    other_ca = pki.create_dev_ca("Untrusted")
    imposter = pki.issue_party_certificate(
        other_ca, world.client.party_id, "Client", key=world.client.private_key
    )
    rejected(
        http.post("/connect/token", data=form(imposter)), 400, "invalid_client", "untrusted_root"
    )


def test_self_signed_leaf(http, world):
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = world.client.private_key
    name = x509.Name([x509.NameAttribute(NameOID.SERIAL_NUMBER, world.client.party_id)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False), True
        )
        .sign(key, hashes.SHA256())
    )
    selfsigned = pki.PartyIdentity(world.client.party_id, key, [cert])
    rejected(
        http.post("/connect/token", data=form(selfsigned)),
        400,
        "invalid_client",
        "self_signed_leaf",
    )


def test_leaf_that_is_a_ca(http, world):
    bad = pki.issue_party_certificate(
        world.ca, world.client.party_id, "Client", key=world.client.private_key, ca_flag=True
    )
    rejected(http.post("/connect/token", data=form(bad)), 400, "invalid_client", "leaf_is_ca")


def test_wrong_key_usage(http, world):
    bad = pki.issue_party_certificate(
        world.ca,
        world.client.party_id,
        "Client",
        key=world.client.private_key,
        key_usage=("key_encipherment",),
    )
    rejected(http.post("/connect/token", data=form(bad)), 400, "invalid_client", "key_usage")


def test_revoked_party(http, world):
    rejected(
        http.post("/connect/token", data=form(world.revoked)),
        400,
        "invalid_client",
        "party_not_active",
    )


def test_not_active_party(http, world):
    rejected(
        http.post("/connect/token", data=form(world.inactive)),
        400,
        "invalid_client",
        "party_not_active",
    )


def test_unknown_party(http, world):
    rejected(
        http.post("/connect/token", data=form(world.stranger)),
        400,
        "invalid_client",
        "party_unknown",
    )


def test_no_dsgo_membership(http, world):
    rejected(
        http.post("/connect/token", data=form(world.no_dsgo)),
        400,
        "invalid_client",
        "dataspace_membership",
    )


def test_certificate_not_registered(http, world):
    rejected(
        http.post("/connect/token", data=form(world.unregistered)),
        400,
        "invalid_client",
        "certificate_not_registered",
    )


def test_client_id_differs_from_iss(http, world):
    rejected(
        http.post("/connect/token", data=form(world.client, client_id=ABC)),
        400,
        "invalid_client",
        "client_id_iss",
    )


@pytest.mark.parametrize(
    "missing", ["grant_type", "scope", "client_id", "client_assertion_type", "client_assertion"]
)
def test_missing_parameter(http, world, missing):
    rejected(
        http.post("/connect/token", data=form(world.client, **{missing: None})),
        400,
        "invalid_request",
        f"missing_{missing}",
    )


def test_repeated_parameter(http, world):
    body = "&".join(f"{k}={v}" for k, v in form(world.client).items()) + "&scope=iSHARE"
    resp = http.post(
        "/connect/token",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    rejected(resp, 400, "invalid_request", "repeated_scope")


def test_wrong_grant_type(http, world):
    rejected(
        http.post("/connect/token", data=form(world.client, grant_type="password")),
        400,
        "unsupported_grant_type",
    )


def test_wrong_scope(http, world):
    rejected(
        http.post("/connect/token", data=form(world.client, scope="openid")), 400, "invalid_scope"
    )


def test_wrong_assertion_type(http, world):
    rejected(
        http.post("/connect/token", data=form(world.client, client_assertion_type="saml")),
        400,
        "invalid_request",
        "client_assertion_type",
    )


def test_json_body_refused(http, world):
    resp = http.post("/connect/token", json=form(world.client))
    rejected(resp, 400, "invalid_request", "content_type")


def test_oversized_assertion(http, world):
    rejected(
        http.post("/connect/token", data=form(world.client, client_assertion="a" * 20000)),
        400,
        "invalid_request",
        "assertion_oversized",
    )


@pytest.mark.parametrize(
    "junk", ["not-a-jwt", "a.b", "W10.W10.AA", "....", "eyJhbGciOiJSUzI1NiJ9.%%%.x"]
)
def test_malformed_assertion(http, world, junk):
    rejected(
        http.post("/connect/token", data=form(world.client, client_assertion=junk)),
        400,
        "invalid_client",
        "malformed",
    )


def test_tampered_signature(http, world):
    h, p, s = forged(world.client).split(".")
    sig = bytearray(base64.urlsafe_b64decode(s + "=="))
    sig[10] ^= 0xFF
    token = f"{h}.{p}.{b64url_encode(bytes(sig))}"
    rejected(
        http.post("/connect/token", data=form(world.client, client_assertion=token)),
        400,
        "invalid_client",
        "signature",
    )


def test_signed_response_as_assertion(http, world):
    token = create_signed_response(world.client, "party_info", {}, NODE_ID)
    rejected(
        http.post("/connect/token", data=form(world.client, client_assertion=token)),
        400,
        "invalid_client",
        "token_kind",
    )


def test_access_token_of_another_node(http, world, tmp_path):
    other_key = load_or_create_signing_key(tmp_path / "other.pem")
    foreign = AccessTokenIssuer("EU.EORI.NL000000777", other_key).issue(
        world.client.party_id, "iSHARE"
    )
    resp = http.get("/trusted_list", headers={"Authorization": f"Bearer {foreign.access_token}"})
    rejected(resp, 401, "invalid_token")
    assert resp.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


def test_expired_access_token(http, world):
    key = load_or_create_signing_key(world.key_path)
    old = AccessTokenIssuer(NODE_ID, key).issue(
        world.client.party_id, "iSHARE", now=time.time() - 7200
    )
    resp = http.get(
        "/parties/EU.EORI.NL000000501", headers={"Authorization": f"Bearer {old.access_token}"}
    )
    rejected(resp, 401, "invalid_token", "token_expired")
    assert 'error="invalid_token"' in resp.headers["www-authenticate"]


def test_missing_access_token(http):
    resp = http.get("/trusted_list")
    rejected(resp, 401, "invalid_token", "token_missing")
    assert resp.headers["www-authenticate"].startswith("Bearer")


def test_malformed_authorization_header(http):
    rejected(
        http.get("/capabilities", headers={"Authorization": "Basic abc"}), 400, "invalid_request"
    )


# ---- capabilities and registry routes --------------------------------------------------------


def _token(http, world, identity=None) -> str:
    resp = http.post("/connect/token", data=form(identity or world.client))
    assert resp.status_code == 200, resp.text
    return resp.json()["access_token"]


def _claims(token: str) -> dict:
    return orjson.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def test_capabilities_public_and_restricted(http, world):
    anon = _claims(http.get("/capabilities").json()["capabilities_token"])
    assert "aud" not in anon and anon["iss"] == NODE_ID
    assert anon["capabilities_info"]["restrictedServices"] == []
    assert {s["identifier"] for s in anon["capabilities_info"]["publicServices"]} >= {
        "connect-token"
    }
    token = _token(http, world)
    authed = _claims(
        http.get("/capabilities", headers={"Authorization": f"Bearer {token}"}).json()[
            "capabilities_token"
        ]
    )
    assert authed["aud"] == world.client.party_id
    ids = {s["identifier"] for s in authed["capabilities_info"]["restrictedServices"]}
    assert {"sparql", "resources", "catalog"} <= ids


def test_capabilities_with_bad_token_is_401(http):
    rejected(
        http.get("/capabilities", headers={"Authorization": "Bearer x.y.z"}), 401, "invalid_token"
    )


def test_registry_lookups_signed(http, world):
    from trust.ishare_jwt import verify_signed_response

    auth = {"Authorization": f"Bearer {_token(http, world)}"}
    trusted = {world.ca.root_fingerprint}
    body = http.get(f"/parties/{ABC}", headers=auth).json()
    info = verify_signed_response(
        body["party_token"],
        claim="party_info",
        issuer=NODE_ID,
        audience=world.client.party_id,
        trusted_sha256=trusted,
    ).claims["party_info"]
    assert info["party_id"] == ABC and info["adherence"]["status"] == "Active"
    assert info["certificates"][0]["x5t#s256"].startswith("778e8858")
    body = http.get(
        "/parties", params={"eori": "EU.EORI.NL00000050*", "page": "1"}, headers=auth
    ).json()
    parties = verify_signed_response(
        body["parties_token"],
        claim="parties_info",
        issuer=NODE_ID,
        audience=world.client.party_id,
        trusted_sha256=trusted,
    ).claims["parties_info"]
    assert parties["count"] == 5 and [p["party_id"] for p in parties["data"]][0] == NODE_ID
    body = http.get("/trusted_list", headers=auth).json()
    items = verify_signed_response(
        body["trusted_list_token"],
        claim="trusted_list",
        issuer=NODE_ID,
        audience=world.client.party_id,
        trusted_sha256=trusted,
    ).claims["trusted_list"]
    assert ISHARE_ROOT in {i["certificate_fingerprint"] for i in items}
    assert http.get("/parties/EU.EORI.NL000000404", headers=auth).status_code == 404
    body = http.get("/parties", headers=auth).json()  # no filter: the first page of all parties
    parties = verify_signed_response(
        body["parties_token"],
        claim="parties_info",
        issuer=NODE_ID,
        audience=world.client.party_id,
        trusted_sha256=trusted,
    ).claims["parties_info"]
    assert parties["count"] == 6 and parties["data"][0]["party_id"] == ABC
    rejected(
        http.get("/parties", params={"name": "*", "page": "x"}, headers=auth),
        400,
        "invalid_request",
        "page",
    )


# ---- end to end over real HTTP -----------------------------------------------------------------


def test_real_ishare_abc_trucking_gets_token(server, world):
    """ABC Trucking's published test key + chain (TEST iSHARE root) authenticate at our node."""
    assertion = create_client_assertion(world.abc, NODE_ID)
    resp = httpx.post(f"{server}/connect/token", data=form(world.abc, client_assertion=assertion))
    assert resp.status_code == 200, resp.text
    assert world.layer.verify_access_token(resp.json()["access_token"]).party_id == ABC


def test_trust_client_discovers_and_calls(server, world):
    client = TrustClient(world.client, {world.ca.root_fingerprint})
    assert client.discover_party_id(server) == NODE_ID
    resp = client.request("GET", server, "/trusted_list")
    assert resp.status_code == 200 and "trusted_list_token" in resp.json()
    first = client.get_token(server)
    assert client.get_token(server) == first  # cached


def test_trust_client_async(server, world):
    import asyncio

    async def run():
        client = TrustClient(world.client, {world.ca.root_fingerprint})
        resp = await client.arequest("GET", server, f"/parties/{ABC}")
        return resp.status_code, await client.adiscover_party_id(server)

    assert asyncio.run(run()) == (200, NODE_ID)


def test_trust_client_rejects_untrusted_node(server, world):
    client = TrustClient(world.client, {ISHARE_ROOT})
    with pytest.raises(UpstreamError) as e:
        client.discover_party_id(server)
    assert e.value.check == "capabilities_token"


def test_trust_client_refused_token(server, world):
    client = TrustClient(world.revoked, {world.ca.root_fingerprint})
    with pytest.raises(UpstreamError) as e:
        client.get_token(server, NODE_ID)
    assert "party_not_active" in e.value.description
