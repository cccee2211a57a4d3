"""Participant registry (trust/registry.py): records, signed responses, RegistryClient over HTTP."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from node.routes.trust import trust_routes
from trust import pki
from trust.client import TrustClient
from trust.errors import IdentifierError, InvalidRequest, NotFound, RegistryUnavailable
from trust.ishare_jwt import create_signed_response
from trust.layer import TrustLayer
from trust.registry import (
    DSGO_DATASPACE,
    LocalDirectory,
    Party,
    Registry,
    RegistryClient,
)

REG_ID = "EU.EORI.NL000000000"
NODE_ID = "EU.EORI.NL000000600"


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def _serve(app, port: int | None = None) -> tuple[str, uvicorn.Server, threading.Thread]:
    if port is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    srv = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(500):
        if srv.started:
            break
        time.sleep(0.01)
    assert srv.started
    return f"http://127.0.0.1:{port}", srv, thread


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("registry")
    ca = pki.create_dev_ca("Registry test")
    reg_identity = pki.issue_party_certificate(ca, REG_ID, "Registry")
    node = pki.issue_party_certificate(ca, NODE_ID, "Node", key=reg_identity.private_key)
    client = pki.issue_party_certificate(
        ca, "EU.EORI.NL000000601", "Client", key=reg_identity.private_key
    )
    registry = Registry(tmp / "registry.db")
    registry.add_trusted_ca(ca.root_cert)
    for ident in (reg_identity, node, client):
        registry.add_party(ident.party_id, ident.party_id, certificates=[ident.certificate])
    layer = TrustLayer(
        reg_identity,
        {ca.root_fingerprint},
        LocalDirectory(registry),
        tmp / "replay.db",
        tmp / "key.pem",
        "http://127.0.0.1",
        registry=registry,
    )
    url, srv, thread = _serve(Starlette(routes=trust_routes(layer)))
    yield {
        "ca": ca,
        "registry": registry,
        "url": url,
        "node": node,
        "client": client,
        "reg": reg_identity,
        "tmp": tmp,
    }
    srv.should_exit = True
    thread.join(10)


def test_party_record_roundtrip(tmp_path):
    ca = pki.create_dev_ca("r")
    ident = pki.issue_party_certificate(ca, "did:ishare:EU.NL.NTRNL-12345678", "Bouwer")
    reg = Registry(tmp_path / "r.db")
    reg.add_party(
        ident.party_id, "Bouwer BV", certificates=[ident.certificate], roles=["ServiceProvider"]
    )
    party = reg.get_party(ident.party_id)
    assert party is not None and party.name == "Bouwer BV"
    assert party.has_certificate(ident.certificate)
    now = dt.datetime.now(dt.UTC)
    assert party.is_active(now) and party.is_member(DSGO_DATASPACE, now)
    info = party.to_info()
    assert info["certificates"][0]["x5t#s256"] == pki.x5t_s256(ident.certificate)
    assert Party.from_info(info) == party
    reg.set_status(ident.party_id, "Revoked")
    assert not reg.get_party(ident.party_id).is_active(now)
    reg.remove_certificate(ident.party_id, pki.x5t_s256(ident.certificate))
    assert not reg.get_party(ident.party_id).has_certificate(ident.certificate)


def test_adherence_window(tmp_path):
    reg = Registry(tmp_path / "r.db")
    now = dt.datetime.now(dt.UTC)
    reg.add_party("EU.EORI.NL000000700", "Later", start_date=now + dt.timedelta(days=1))
    reg.add_party(
        "EU.EORI.NL000000701",
        "Ended",
        start_date=now - dt.timedelta(days=2),
        end_date=now - dt.timedelta(days=1),
    )
    assert not reg.get_party("EU.EORI.NL000000700").is_active(now)
    assert not reg.get_party("EU.EORI.NL000000701").is_active(now)
    assert [p.party_id for p in reg.find_parties(name="*", active_only=True)] == []


def test_registry_admin_rejections(tmp_path):
    reg = Registry(tmp_path / "r.db")
    with pytest.raises(IdentifierError):
        reg.add_party("bogus", "x")
    with pytest.raises(InvalidRequest):
        reg.add_party("EU.EORI.NL000000702", "x", status="Maybe")
    with pytest.raises(NotFound):
        reg.set_status("EU.EORI.NL000000703", "Revoked")
    with pytest.raises(NotFound):
        reg.set_trusted_ca_status("AB" * 32, "withdrawn", "invalid")


def test_trusted_list_status(tmp_path):
    reg = Registry(tmp_path / "r.db")
    reg.add_trusted_ca(fingerprint="ab:cd", subject="CN=x")
    directory = LocalDirectory(reg)
    assert directory.trusted_fingerprints() == {"ABCD"}
    reg.set_trusted_ca_status("ABCD", "withdrawn", "valid")
    assert directory.trusted_fingerprints() == set()


def test_remote_client_lookups_and_revocation_cache(world):
    clock = Clock()
    rc = RegistryClient(
        world["url"],
        REG_ID,
        {world["ca"].root_fingerprint},
        world["node"],
        cache_seconds=60,
        clock=clock,
    )
    assert rc.trusted_fingerprints() == {world["ca"].root_fingerprint}
    party = rc.get_party(world["client"].party_id)
    assert party is not None and party.is_active(dt.datetime.now(dt.UTC))
    assert rc.get_party("EU.EORI.NL000000699") is None
    world["registry"].set_status(world["client"].party_id, "Revoked")
    try:
        assert rc.get_party(world["client"].party_id).adherence.status == "Active"  # still cached
        clock.offset = 61
        assert rc.get_party(world["client"].party_id).adherence.status == "Revoked"
    finally:
        world["registry"].set_status(world["client"].party_id, "Active")


def test_remote_client_rejects_untrusted_registry(world):
    rc = RegistryClient(world["url"], REG_ID, {"00" * 32}, world["node"])
    with pytest.raises(RegistryUnavailable):
        rc.get_party(world["client"].party_id)


def test_remote_client_rejects_response_from_wrong_signer(world):
    """A registry answer signed by another (trusted) party is refused."""
    impostor = world["client"]

    async def party(request):
        info = Party.from_info(
            world["registry"].get_party(world["client"].party_id).to_info()
        ).to_info()
        return JSONResponse(
            {"party_token": create_signed_response(impostor, "party_info", info, NODE_ID)}
        )

    async def token(request):
        return JSONResponse({"access_token": "x", "token_type": "Bearer", "expires_in": 3600})

    app = Starlette(
        routes=[
            Route("/parties/{pid:path}", party),
            Route("/connect/token", token, methods=["POST"]),
        ]
    )
    url, srv, thread = _serve(app)
    try:
        rc = RegistryClient(url, REG_ID, {world["ca"].root_fingerprint}, world["node"])
        with pytest.raises(RegistryUnavailable) as e:
            rc.get_party(world["client"].party_id)
        assert e.value.check == "registry_signature"
    finally:
        srv.should_exit = True
        thread.join(10)


def test_unreachable_registry(world):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc = RegistryClient(
        f"http://127.0.0.1:{port}", REG_ID, {world["ca"].root_fingerprint}, world["node"]
    )
    with pytest.raises(RegistryUnavailable):
        rc.get_party(world["client"].party_id)


def test_node_with_remote_registry_issues_tokens(world):
    """A service node that is not the registry: its token endpoint consults the registry over HTTP."""
    tmp = world["tmp"]
    rc = RegistryClient(world["url"], REG_ID, {world["ca"].root_fingerprint}, world["node"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    layer = TrustLayer(
        world["node"],
        {world["ca"].root_fingerprint},
        rc,
        tmp / "n-replay.db",
        tmp / "n-key.pem",
        f"http://127.0.0.1:{port}",  # capabilities name the node's own token endpoint
    )
    url, srv, thread = _serve(Starlette(routes=trust_routes(layer)), port)
    try:
        client = TrustClient(world["client"], {world["ca"].root_fingerprint})
        resp = client.request("GET", url, "/capabilities")
        assert resp.status_code == 200
        assert layer.verify_access_token(client.get_token(url)).party_id == world["client"].party_id
        assert httpx.get(f"{url}/parties").status_code == 404  # no registry role on this node
    finally:
        srv.should_exit = True
        thread.join(10)
