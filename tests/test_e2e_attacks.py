"""Attacks on the trust layer and the SPARQL endpoint, end to end on real nodes.

A registry, an OWNER node (datasets `public` and `secret`), a READER party with its own node
(granted `public` only), a STRANGER party (no grant), an unrelated authorisation register (AR),
and two hostile listeners: EVIL (not registered) and EVIL2 (registered under the ATTACKER's own
party id). Both serve the owner's real capabilities token, relay every client assertion they get
to the owner's real /connect/token and record what came back, and count every connection.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from nodeproc import (
    ProcessGroup,
    base_of,
    dsgo,
    free_port,
    init_node,
    select_rows,
    token_for,
    trust_client,
)

REGISTRY = "EU.EORI.NL000000300"
OWNER = "EU.EORI.NL000000301"
READER = "EU.EORI.NL000000302"
STRANGER = "EU.EORI.NL000000303"
AR = "EU.EORI.NL000000304"
ATTACKER = "EU.EORI.NL000000305"
RESULTS_JSON = "application/sparql-results+json"
MARKER = "HOSTILE-LISTENER-MARKER-7f3a"
SECRET = "secret-value-91c4"
PUBLIC = "public-value-5d20"
NOTE = "reader-note-2b77"
LABEL = "http://www.w3.org/2000/01/rdf-schema#label"


# --- the hostile listener ---------------------------------------------------------------------


@dataclass
class Hostile:
    """A real HTTP server on 127.0.0.1 that plays a node to steal the caller's identity."""

    owner_url: str
    server: ThreadingHTTPServer | None = None
    capabilities: bytes = b"{}"
    connections: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)
    relayed: list[dict[str, Any]] = field(default_factory=list)
    sparql_mode: str = "error"  # "error": 500 with MARKER; "redirect": 302 to `redirect_to`
    redirect_to: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fresh_capabilities(self) -> bytes:
        try:
            return httpx.get(f"{self.owner_url}/capabilities", timeout=10).content
        except httpx.HTTPError:
            return self.capabilities

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self.lock:
            self.connections = 0
            self.requests.clear()
            self.relayed.clear()

    def untouched(self) -> bool:
        return self.connections == 0 and not self.requests and not self.relayed

    def start(self) -> None:
        hostile = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request: Any, client_address: Any) -> bool:
                with hostile.lock:
                    hostile.connections += 1
                return True

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes, ctype: str, **headers: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                with hostile.lock:
                    hostile.requests.append((self.command, self.path))
                if self.command == "GET" and path == "/capabilities":
                    # the owner's token, fetched anew as an attacker would (it lives 30 s, and
                    # one fetched at set-up may have expired on a slow machine)
                    self._reply(200, hostile.fresh_capabilities(), "application/json")
                elif self.command == "POST" and path == "/connect/token":
                    self._reply(200, hostile.relay(body), "application/json")
                elif path == "/sparql" and hostile.sparql_mode == "redirect":
                    self._reply(302, b"", "text/plain", Location=hostile.redirect_to)
                else:
                    text = json.dumps({"error": MARKER, "error_description": MARKER})
                    self._reply(500, text.encode(), "application/json")

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def relay(self, body: bytes) -> bytes:
        """Hand the client assertion to the owner's real token endpoint; answer with a fake token
        so the caller goes on to /sparql (short-lived: never cached, each call asks again)."""
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        record: dict[str, Any] = {"claims": jwt_claims(form.get("client_assertion", ""))}
        try:
            resp = httpx.post(f"{self.owner_url}/connect/token", data=form, timeout=10)
            record["status"] = resp.status_code
            try:
                record["access_token"] = resp.json().get("access_token")
            except ValueError:
                record["access_token"] = None
        except httpx.HTTPError as exc:
            record["status"], record["access_token"] = repr(exc), None
        with self.lock:
            self.relayed.append(record)
        fake = {"access_token": f"fake-{MARKER}", "token_type": "Bearer", "expires_in": 1}
        return json.dumps(fake).encode()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a compact JWT, unverified (what the listener can read)."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


# --- the world --------------------------------------------------------------------------------


@dataclass
class World:
    root: Path
    procs: ProcessGroup
    configs: dict[str, Path]
    owner_url: str
    reader_url: str
    evil: Hostile
    evil2: Hostile
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    def token(self, party: str, node: str) -> str:
        key = (party, node)
        if key not in self.tokens:
            self.tokens[key] = token_for(self.configs[party], node)
        return self.tokens[key]

    def query(
        self, party: str, node: str, text: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """POST /sparql at `node` as `party`."""
        return httpx.post(
            f"{node}/sparql",
            data={"query": text},
            headers={
                "Authorization": f"Bearer {self.token(party, node)}",
                "Accept": RESULTS_JSON,
                **(headers or {}),
            },
            timeout=60,
        )

    def owner_api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(OWNER, self.owner_url)}"}
        return httpx.request(method, f"{self.owner_url}{path}", headers=headers, **kwargs)

    def grant(self, body: dict[str, Any]) -> str:
        resp = self.owner_api("POST", "/delegation/policies", json={"grant": body})
        assert resp.status_code == 201, resp.text
        return resp.json()["id"]

    def revoke(self, policy_id: str) -> None:
        assert self.owner_api("DELETE", f"/delegation/policies/{policy_id}").status_code == 204

    def audit_seq(self) -> int:
        entries = self.audit_after(0, limit=10_000)
        return max((e["seq"] for e in entries), default=0)

    def audit_after(self, seq: int, limit: int = 1000) -> list[dict[str, Any]]:
        resp = self.owner_api(
            "GET", "/audit/entries", params={"after_seq": str(seq), "limit": str(limit)}
        )
        assert resp.status_code == 200, resp.text
        return resp.json()["entries"]

    def healthy(self, node: str) -> bool:
        try:
            return httpx.get(f"{node}/healthz", timeout=10).status_code == 200
        except httpx.HTTPError:
            return False

    def dataset(self, name: str) -> str:
        return f"{self.owner_url}/dataset/{name}"


def _turtle(path: Path, value: str) -> Path:
    path.write_text(
        f'@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n<thing/{path.stem}> rdfs:label "{value}" .\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def world(
    module_procs: ProcessGroup, dev_ca: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    root = tmp_path_factory.mktemp("attacks")
    reg_port, owner_port, reader_port = free_port(), free_port(), free_port()
    registry_cfg = init_node(root / "registry", REGISTRY, "Registry", reg_port, ca=dev_ca)
    registry = module_procs.serve(registry_cfg, reg_port, name="registry")
    owner_url = f"http://127.0.0.1:{owner_port}"
    evil, evil2 = Hostile(owner_url), Hostile(owner_url)
    evil.start()
    evil2.start()
    ports = {OWNER: owner_port, READER: reader_port}
    names = {
        OWNER: "Owner",
        READER: "Reader",
        STRANGER: "Stranger",
        AR: "Other Register",
        ATTACKER: "Attacker",
    }
    configs: dict[str, Path] = {}
    for party, name in names.items():
        configs[party] = init_node(
            root / name.lower().replace(" ", "-"),
            party,
            name,
            ports.get(party) or free_port(),
            ca=dev_ca,
            registry_url=registry.base_url,
            registry_id=REGISTRY,
        )
    capability = {party: f"{base_of(cfg)}/capabilities" for party, cfg in configs.items()}
    capability[ATTACKER] = f"{evil2.url}/capabilities"  # the attacker's listener is its "node"
    roles = {OWNER: ["AuthorisationRegistry"], AR: ["AuthorisationRegistry"]}
    for party, cfg in configs.items():
        role_args: list[str] = []
        for role in ["ServiceConsumer", "ServiceProvider", *roles.get(party, [])]:
            role_args += ["--role", role]
        dsgo(
            *("registry", "add", "--config", registry_cfg, "--party-id", party),
            *("--name", names[party], "--cert", cfg.parent / "keys" / "node.cert.pem"),
            *("--capability-url", capability[party], *role_args),
        )
    owner, reader = configs[OWNER], configs[READER]
    dsgo("load", _turtle(root / "public.ttl", PUBLIC), "--dataset", "public", "--config", owner)
    dsgo("load", _turtle(root / "secret.ttl", SECRET), "--dataset", "secret", "--config", owner)
    dsgo("load", _turtle(root / "notes.ttl", NOTE), "--dataset", "notes", "--config", reader)
    module_procs.serve(owner, owner_port, name="owner")
    reader_url = module_procs.serve(reader, reader_port, name="reader").base_url
    dsgo("policy", "grant", "--config", owner, "--to", READER, "--dataset", "public")
    dsgo("policy", "grant", "--config", reader, "--to", OWNER, "--dataset", "notes")
    capabilities = httpx.get(f"{owner_url}/capabilities", timeout=10)
    assert capabilities.status_code == 200
    evil.capabilities = evil2.capabilities = capabilities.content
    try:
        yield World(root, module_procs, configs, owner_url, reader_url, evil, evil2)
    finally:
        evil.stop()
        evil2.stop()


def assert_no_owner_token(*listeners: Hostile) -> None:
    """No relayed assertion ever bought a token at the owner's node."""
    for listener in listeners:
        for record in listener.relayed:
            assert record["status"] != 200 and not record["access_token"], record


def refused(resp: httpx.Response, *errors: str) -> dict[str, Any]:
    assert resp.status_code == 403, f"HTTP {resp.status_code}: {resp.text[:500]}"
    body = resp.json()
    if errors:
        assert body["error"] in errors, body
    assert MARKER not in resp.text and SECRET not in resp.text
    return body


def service(endpoint: str, silent: bool = False) -> str:
    return f"SELECT * WHERE {{ SERVICE {'SILENT ' if silent else ''}<{endpoint}> {{ ?s ?p ?o }} }}"


# --- 1. relaying the node's client assertion ----------------------------------------------------


def test_service_to_unregistered_listener_is_refused_before_any_request(world: World) -> None:
    world.evil.reset()
    evil = f"{world.evil.url}/sparql"
    cases = [
        # (party, node, errors): the node's own party may federate, so only the URL check is left
        (READER, world.owner_url, ("service_not_allowed", "federation_not_allowed")),
        (READER, world.reader_url, ("service_not_allowed",)),
        (OWNER, world.owner_url, ("service_not_allowed",)),
        (STRANGER, world.owner_url, ()),
    ]
    for party, node, errors in cases:
        for silent in (False, True):
            body = refused(world.query(party, node, service(evil, silent)), *errors)
            if errors == ("service_not_allowed",):
                assert body["endpoint"] == evil
    assert world.evil.untouched(), (world.evil.connections, world.evil.requests)
    assert_no_owner_token(world.evil)


def test_listener_registered_under_the_attackers_id_gets_assertions_addressed_to_it(
    world: World,
) -> None:
    """A registered peer is called, but its party comes from the registry: the assertion names
    the attacker, so relaying it to the owner's /connect/token buys nothing."""
    world.evil2.reset()
    evil2 = f"{world.evil2.url}/sparql"
    for party, node in ((OWNER, world.owner_url), (READER, world.reader_url)):
        resp = world.query(party, node, service(evil2))
        assert resp.status_code == 502, resp.text
        assert MARKER not in resp.text  # the remote error body is not passed back
        assert "HTTP 500" in resp.json()["error_description"]
    assert ("GET", "/capabilities") not in world.evil2.requests  # the registry says who it is
    assert len(world.evil2.relayed) == 2, world.evil2.requests
    issuers = set()
    for record in world.evil2.relayed:
        assert record["claims"]["aud"] == ATTACKER, record
        issuers.add(record["claims"]["iss"])
    assert issuers == {OWNER, READER}
    assert_no_owner_token(world.evil2)


def test_federate_grant_for_the_attackers_endpoint_still_addresses_the_attacker(
    world: World,
) -> None:
    world.evil2.reset()
    evil2 = f"{world.evil2.url}/sparql"
    refused(world.query(READER, world.owner_url, service(evil2)), "federation_not_allowed")
    assert world.evil2.untouched()
    policy = world.grant({"to": READER, "federate": True, "ids": [evil2]})
    try:
        resp = world.query(READER, world.owner_url, service(evil2))
    finally:
        world.revoke(policy)
    assert resp.status_code == 502, resp.text
    assert MARKER not in resp.text
    (record,) = world.evil2.relayed
    assert record["claims"]["aud"] == ATTACKER and record["claims"]["iss"] == OWNER
    assert_no_owner_token(world.evil2)


def test_cli_and_trust_client_do_not_hand_assertions_to_the_listener(world: World) -> None:
    world.evil.reset()
    reader = world.configs[READER]
    got = dsgo("get", f"{world.evil.url}/id/thing/x", "--config", reader, check=False)
    assert got.returncode != 0 and MARKER not in got.stdout + got.stderr
    token = dsgo("token", "--for", world.evil.url, "--config", reader, check=False)
    assert token.returncode != 0
    assert world.evil.untouched(), world.evil.requests
    # A client that does discover parties from capabilities refuses the replayed token: the
    # capabilities served at EVIL name the owner's token endpoint, not EVIL's.
    from trust.errors import UpstreamError

    client = trust_client(reader)
    try:
        with pytest.raises(UpstreamError, match="another node's"):
            client.get_token(world.evil.url)
    finally:
        client.close()
    assert ("POST", "/connect/token") not in world.evil.requests
    assert not world.evil.relayed


# --- 2. SERVICE to the node itself ---------------------------------------------------------


def test_service_to_the_nodes_own_endpoint_runs_in_the_callers_scope(world: World) -> None:
    own = f"{world.owner_url}/sparql"
    seq = world.audit_seq()
    graph_all = f"SELECT ?g ?o WHERE {{ SERVICE <{own}> {{ GRAPH ?g {{ ?s ?p ?o }} }} }}"
    rows = select_rows(world.query(READER, world.owner_url, graph_all))
    assert {g for g, _ in rows} == {world.dataset("public")}
    assert PUBLIC in {o for _, o in rows}
    secret = f"SELECT ?o WHERE {{ SERVICE <{own}> {{ GRAPH <{world.dataset('secret')}> {{ ?s ?p ?o }} }} }}"
    assert select_rows(world.query(READER, world.owner_url, secret)) == []
    nested = f"SELECT ?o WHERE {{ SERVICE <{own}> {{ SERVICE <{own}> {{ ?s ?p ?o }} }} }}"
    assert SECRET not in world.query(READER, world.owner_url, nested).text
    entries = world.audit_after(seq)
    reads = [e for e in entries if e["action"] == "dsgo:query" or e["kind"] == "federated_call"]
    assert reads and {e["party"] for e in reads} == {READER}, reads
    assert any(e["kind"] == "query" and e["party"] == READER for e in reads)
    assert not any(e["kind"] == "federated_call" for e in reads)
    # Other spellings of the node's own endpoint are not "self": they are refused, not called.
    for alias in (
        own.replace("127.0.0.1", "localhost"),
        own + "/",
        own.replace("/sparql", "/./sparql"),
    ):
        refused(world.query(READER, world.owner_url, service(alias)))


# --- 3. delegation evidence from a register that is not the owner's -----------------------


def _evidence(signer: str, world: World) -> str:
    from node.config import load_settings
    from node.runtime import load_identity
    from trust.delegation import DSGO_DATASET, ISHARE_READ, build_policy
    from trust.ishare_jwt import create_signed_response

    now = int(time.time())
    evidence = build_policy(
        issuer=OWNER,
        subject=READER,
        resource_type=DSGO_DATASET,
        identifiers=[world.dataset("secret")],
        actions=[ISHARE_READ],
        not_before=now - 60,
        not_on_or_after=now + 3600,
    )
    identity = load_identity(load_settings(world.configs[signer]))
    return create_signed_response(identity, "delegationEvidence", evidence, READER)


def test_evidence_signed_by_an_unrelated_register_is_refused(world: World) -> None:
    query = f"SELECT ?o WHERE {{ GRAPH <{world.dataset('secret')}> {{ ?s ?p ?o }} }}"
    assert select_rows(world.query(READER, world.owner_url, query)) == []
    seq = world.audit_seq()
    forged = _evidence(AR, world)
    resp = world.query(READER, world.owner_url, query, {"Delegation-Evidence": forged})
    assert resp.status_code in (401, 403), resp.text
    assert SECRET not in resp.text
    assert "register" in resp.json()["error_description"]
    denies = [
        e
        for e in world.audit_after(seq)
        if e["kind"] == "deny" and e["party"] == READER and e["action"] == "delegation_evidence"
    ]
    assert denies, world.audit_after(seq)
    # The same evidence signed by the owner itself (its own register) does count.
    genuine = _evidence(OWNER, world)
    rows = select_rows(
        world.query(READER, world.owner_url, query, {"Delegation-Evidence": genuine})
    )
    assert rows == [(SECRET,)]


# --- 4. SSRF: endpoints the node must not call ------------------------------------------------


def _ssrf_targets(world: World) -> list[str]:
    evil, evil2 = world.evil.url, world.evil2.url
    port = world.evil.port
    return [
        f"{evil}/any/path?x=/sparql",
        f"{evil}/sparql#x",
        f"http://user:pw@127.0.0.1:{port}/sparql",
        f"http://127.0.0.1:{port}@127.0.0.1:{world.evil2.port}/sparql",
        "file:///etc/passwd",
        f"ftp://127.0.0.1:{port}/sparql",
        f"gopher://127.0.0.1:{port}/_sparql",
        f"{world.reader_url}/other/sparql",
        f"{world.reader_url}/sparql/",
        f"{world.reader_url}/sparql?x=1",
        f"{world.reader_url.replace('127.0.0.1', 'localhost')}/sparql",
        f"http://127.0.0.1:{port}/sparql",
        f"http://localhost:{port}/sparql",
        f"http://[::1]:{port}/sparql",
        f"http://2130706433:{port}/sparql",
        f"{evil2}/other/sparql",
        f"{evil2}/sparql?x=1",
        f"{evil2}/sparql/",
    ]


def test_ssrf_endpoints_are_refused_before_io(world: World) -> None:
    world.evil.reset()
    world.evil2.reset()
    callers = [
        (OWNER, ("service_not_allowed",)),
        (READER, ("service_not_allowed", "federation_not_allowed")),
        (STRANGER, ()),
    ]
    failures = []

    def check(who: str, party: str, target: str, errors: tuple[str, ...]) -> None:
        resp = world.query(party, world.owner_url, service(target))
        if not target.startswith("http"):  # not a SERVICE the planner evaluates at all
            status, errors = 400, ("invalid_query",)
        else:
            status = 403
        ok = (
            resp.status_code == status
            and (not errors or resp.json().get("error") in errors)
            and MARKER not in resp.text
            and "root:" not in resp.text
        )
        if not ok:
            failures.append((who, target, resp.status_code, resp.text[:200]))

    for target in _ssrf_targets(world):
        for party, errors in callers:
            check(party, party, target, errors)
    # A federate grant for every endpoint lets READER past the grant check, not the URL check.
    policy = world.grant({"to": READER, "federate": True})
    try:
        for target in _ssrf_targets(world):
            check("READER+federate", READER, target, ("service_not_allowed",))
    finally:
        world.revoke(policy)
    assert not failures, "\n".join(map(str, failures))
    assert world.evil.untouched(), world.evil.requests
    assert world.evil2.untouched(), world.evil2.requests


def test_vouched_peer_redirect_is_not_followed(world: World) -> None:
    world.evil.reset()
    world.evil2.reset()
    world.evil2.sparql_mode, world.evil2.redirect_to = "redirect", f"{world.evil.url}/sparql"
    try:
        resp = world.query(OWNER, world.owner_url, service(f"{world.evil2.url}/sparql"))
    finally:
        world.evil2.sparql_mode = "error"
    assert resp.status_code == 502, resp.text
    assert "HTTP 302" in resp.json()["error_description"]
    assert ("POST", "/sparql") in world.evil2.requests
    assert world.evil.untouched(), world.evil.requests


# --- 5. queries that would crash the engine ---------------------------------------------------


def _crashers() -> dict[str, tuple[str, str]]:
    nested = "SELECT * WHERE " + "{" * 8000 + " ?s ?p ?o " + "}" * 8000
    optionals = "SELECT * WHERE { ?s ?p ?o " + "OPTIONAL { ?s ?p ?o } " * 1500 + "}"
    path = "SELECT * WHERE { ?s " + "/".join(["<http://e/p>"] * 1500) + " ?o }"
    services = (
        "SELECT * WHERE "
        + "{ SERVICE <http://127.0.0.1:9/sparql> " * 2000
        + "{ ?s ?p ?o }"
        + " }" * 2000
    )
    return {
        "nested groups": (nested, "query.max_depth"),
        "chained OPTIONALs": (optionals, "query.max_operators"),
        "property path": (path, "query.max_operators"),
        "nested SERVICE": (services, ""),
    }


def test_engine_crashing_queries_are_refused_naming_the_limit(world: World) -> None:
    for name, (text, setting) in _crashers().items():
        resp = world.query(READER, world.owner_url, text)
        assert resp.status_code == 400, (name, resp.status_code, resp.text[:300])
        body = resp.json()
        assert body["error"] == "invalid_query", (name, body)
        assert body["setting"].startswith("query.max_") and body["limit"], (name, body)
        if setting:
            assert body["setting"] == setting, (name, body)
        assert world.healthy(world.owner_url), name
    assert select_rows(world.query(READER, world.owner_url, "SELECT ?o WHERE { ?s ?p ?o }"))


# --- 8. federation that is allowed still works --------------------------------------------------


def test_owner_federates_with_a_registered_peer(world: World) -> None:
    query = f"SELECT ?o WHERE {{ SERVICE <{world.reader_url}/sparql> {{ ?s ?p ?o }} }}"
    assert select_rows(world.query(OWNER, world.owner_url, query)) == [(NOTE,)]


def test_reader_federates_only_with_a_federate_grant(world: World) -> None:
    endpoint = f"{world.reader_url}/sparql"
    query = f"SELECT ?o WHERE {{ SERVICE <{endpoint}> {{ ?s ?p ?o }} }}"
    body = refused(world.query(READER, world.owner_url, query), "federation_not_allowed")
    assert body["explanation"]["decision"] == "Deny"
    assert body["explanation"]["party"] == READER
    assert "federate" in body["error_description"]
    policy = world.grant({"to": READER, "federate": True, "ids": [endpoint]})
    try:
        assert select_rows(world.query(READER, world.owner_url, query)) == [(NOTE,)]
        other = f"SELECT * WHERE {{ SERVICE <{world.evil2.url}/sparql> {{ ?s ?p ?o }} }}"
        refused(world.query(READER, world.owner_url, other), "federation_not_allowed")
    finally:
        world.revoke(policy)
    refused(world.query(READER, world.owner_url, query), "federation_not_allowed")


# --- text the node's tokenizer reads differently from the engine ------------------------------
# pyoxigraph evaluates SERVICE itself (with its own HTTP client, no outbound check) and parses
# recursively, so a SERVICE or nesting the node's tokenizer does not see must never reach it.
# Each trigger below makes the tokenizer see a comment or a string where the engine sees syntax.


def _hiding(tail: str) -> dict[str, str]:
    """Queries whose `tail` (a group pattern's contents) is hidden from the node's tokenizer."""
    ex = "PREFIX ex: <http://e/>\n"
    return {
        "escaped # in a prefixed name": f"{ex}SELECT * WHERE {{ BIND(ex:a\\#b AS ?z) {tail} }}",
        "escaped ' in a prefixed name": (
            f"{ex}SELECT * WHERE {{ BIND(ex:a\\'b AS ?z) {tail} FILTER(?z != \"'\") }}"
        ),
        "\\u escape in an IRI": f"SELECT * WHERE {{ BIND(<http://e/\\u0041#> AS ?z) {tail} }}",
        "'<' read as an IRI": (
            f"SELECT * WHERE {{ BIND(1 AS ?a) BIND(2 AS ?b) FILTER(?a<?b#> '''\n) {tail} # '''\n}}"
        ),
    }


def test_service_hidden_from_the_planner_is_not_run_by_the_engine(world: World) -> None:
    world.evil.reset()
    tail = f"SERVICE <{world.evil.url}/anything> {{ ?s ?p ?o }}"
    failures = []
    for name, text in _hiding(tail).items():
        resp = world.query(READER, world.owner_url, text)
        if resp.status_code not in (400, 403) or MARKER in resp.text:
            failures.append((name, resp.status_code, resp.text[:300]))
    assert not failures, failures
    assert world.evil.untouched(), world.evil.requests
    # The check does not get in the way of text that merely mentions services.
    mention = (
        "PREFIX dsgo: <https://w3id.org/dsgo-node/def#>\n"
        "SELECT ?o WHERE { ?s ?p ?o FILTER(?o != dsgo:Service && ?o != 'service') } # SERVICE"
    )
    assert select_rows(world.query(READER, world.owner_url, mention)) == [(PUBLIC,)]


def test_nesting_hidden_from_the_guard_does_not_crash_the_node(world: World) -> None:
    deep = "{" * 40_000 + " ?s ?p ?o " + "}" * 40_000
    cases = dict(_hiding(deep))
    parens = "(" * 40_000 + "1" + ")" * 40_000
    cases["brackets inside '<…>'"] = (
        f"SELECT * WHERE {{ BIND(1 AS ?a) BIND(2 AS ?b) FILTER(?a<{parens}&&?b>0) }}"
    )
    for name, text in cases.items():
        resp = world.query(READER, world.owner_url, text)
        assert resp.status_code == 400, (name, resp.status_code, resp.text[:300])
        assert resp.json()["error"] == "invalid_query", (name, resp.text[:300])
        assert world.healthy(world.owner_url), name
