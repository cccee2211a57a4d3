"""Input an attacker sends: every malformed IRI, percent-encoding or parameter gets a 4xx with a
JSON error body, never a 5xx. In-process (Starlette TestClient over create_app); `build_node`
is shared with test_api_fuzz.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox
import pytest
from starlette.testclient import TestClient

from node.app import create_app
from node.config import Settings, load_settings
from node.init import init_node
from node.runtime import Runtime

OWNER = "EU.EORI.NL000000101"
READER = "EU.EORI.NL000000102"
BASE = "http://127.0.0.1:8101"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
BIM = f"""\
<{BASE}/id/building/b1> <{RDFS_LABEL}> "House" .
<{BASE}/id/building/b1> <https://w3id.org/bot#hasStorey> <{BASE}/id/storey/s1> .
<{BASE}/id/storey/s1> <{RDFS_LABEL}> "Ground floor" .
<{BASE}/id/a%20b> <{RDFS_LABEL}> "named with an encoded space" .
<{BASE}/id/caf\u00e9> <{RDFS_LABEL}> "stored with a non-ASCII IRI" .
"""
SECRET = f'<{BASE}/id/vault/v1> <{RDFS_LABEL}> "not for the reader" .\n'


@dataclass
class InProcessNode:
    """A node (also its own registry) built from `dsgo init` settings, served in-process."""

    app: object
    rt: Runtime
    settings: Settings

    def token(self, party_id: str) -> str:
        return self.rt.layer.issuer.issue(party_id, "iSHARE").response()["access_token"]

    def auth(self, party_id: str = OWNER) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(party_id)}"}


def build_node(root: Path) -> InProcessNode:
    """Owner's node with datasets `bim` (the reader may read it) and `secret` (it may not)."""
    config = init_node(
        root / "node",
        party_id=OWNER,
        name="Owner",
        host="127.0.0.1",
        port=8101,
        base_iri=BASE,
        roles=None,
        ca_dir=None,
        key=None,
        cert=None,
        pkcs12=None,
        registry_url=None,
        registry_id=None,
        trust_roots=[],
    )
    settings = load_settings(config)
    app = create_app(settings)
    rt: Runtime = app.state.runtime
    rt.store.replace_dataset("bim", BIM.encode(), ox.RdfFormat.N_TRIPLES)
    rt.store.replace_dataset("secret", SECRET.encode(), ox.RdfFormat.N_TRIPLES)
    rt.policies.grant(READER, dataset="bim")
    return InProcessNode(app, rt, settings)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> InProcessNode:
    return build_node(tmp_path_factory.mktemp("bad-input"))


@pytest.fixture(scope="module")
def http(node: InProcessNode) -> Iterator[TestClient]:
    with TestClient(node.app, base_url=BASE, raise_server_exceptions=False) as client:
        yield client


def json_error(resp, status: int, error: str | None = None) -> dict:
    """The response is `status` with an `{"error", "error_description"}` JSON body."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body.get("error"), str) and isinstance(body.get("error_description"), str)
    if error is not None:
        assert body["error"] == error, body
    return body


def raw_get(http: TestClient, raw_path: bytes, headers: dict[str, str]) -> tuple[int, dict, bytes]:
    """GET with exactly these path bytes (an HTTP client would percent-encode them first)."""
    messages: list[dict] = []
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": raw_path.decode("latin-1"),
        "raw_path": raw_path,
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8101),
    }
    assert http.portal is not None
    http.portal.call(http.app, scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    heads = {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}
    return start["status"], heads, body


# ---- GET /id/...: invalid IRIs and percent-encodings are 400, never 500 -----------------------


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/id/thing/%zz", "two hex digits"),
        ("/id/thing/%", "two hex digits"),
        ("/id/thing/%2", "two hex digits"),
        ("/id/%00", "control character"),
        ("/id/thing/%0A", "control character"),
        ("/id/thing/%7F", "control character"),
        ("/id/thing/%C0%AF", "not valid UTF-8"),  # overlong '/'
        ("/id/thing/%ED%A0%80", "not valid UTF-8"),  # a UTF-16 surrogate
        ("/id/thing/%FF", "not valid UTF-8"),
    ],
)
def test_invalid_percent_encoding_is_400(http, node, path, problem) -> None:
    body = json_error(http.get(path, headers=node.auth()), 400, "invalid_request")
    assert problem in body["error_description"] and path in body["error_description"]


@pytest.mark.parametrize(
    "raw",
    [b"/id/a b", b"/id/a<b>", b'/id/x"y', b"/id/x{y}", b"/id/x\\y", b"/id/\xff\xfe", b"/id/\x01"],
)
def test_raw_path_bytes_that_make_no_iri_are_400(http, node, raw) -> None:
    status, headers, body = raw_get(http, raw, node.auth())
    assert status == 400, body
    assert headers["content-type"].startswith("application/json")
    assert b'"invalid_request"' in body and b"not a valid resource IRI" in body


def test_encoded_space_is_a_name_not_an_error(http, node) -> None:
    """`%20` is valid in an IRI: a resource stored under it dereferences, an unknown one is 404."""
    assert http.get("/id/a%20b", headers=node.auth()).status_code == 200
    json_error(http.get("/id/c%20d", headers=node.auth()), 404, "not_found")
    json_error(http.get("/id/%3E%3C", headers=node.auth()), 404, "not_found")


def test_percent_encoded_utf8_finds_the_stored_iri(http, node) -> None:
    resp = http.get("/id/caf%C3%A9", headers=node.auth(), params={"format": "nt"})
    assert resp.status_code == 200 and "non-ASCII" in resp.text


def test_bad_path_without_token_is_401_not_500(http) -> None:
    json_error(http.get("/id/thing/%zz"), 401, "invalid_token")


@pytest.mark.parametrize("party", [OWNER, READER])
def test_bad_path_is_400_for_every_caller(http, node, party) -> None:
    json_error(http.get("/id/thing/%C0%AF", headers=node.auth(party)), 400, "invalid_request")


def test_unknown_format_is_406_json(http, node) -> None:
    body = json_error(
        http.get("/id/building/b1", params={"format": "nope"}, headers=node.auth()), 406
    )
    assert body["error"] == "not_acceptable"


# ---- /sparql: graph parameters that are not IRIs; 406 without an unsendable object ------------


@pytest.mark.parametrize(
    ("name", "value"),
    [("default-graph-uri", "urn:a> <urn:b"), ("named-graph-uri", "urn:a b")],
)
def test_graph_parameter_that_is_no_iri_is_400(http, node, name, value) -> None:
    resp = http.get(
        "/sparql",
        params={"query": "SELECT * WHERE { ?s ?p ?o }", name: value},
        headers=node.auth(),
    )
    assert "must be IRIs" in json_error(resp, 400)["error_description"]


@pytest.mark.parametrize(
    "query",
    [
        f"DESCRIBE <{BASE}/id/building/b1>",
        "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }",
    ],
)
def test_graph_query_asking_for_results_json_is_a_clean_406(
    http, node, query, caplog, capfd
) -> None:
    caplog.set_level(logging.DEBUG)
    resp = http.get(
        "/sparql",
        params={"query": query},
        headers={**node.auth(), "Accept": "application/sparql-results+json"},
    )
    assert json_error(resp, 406, "not_acceptable")["offered"]
    gc.collect()  # a pyo3 object dropped on the wrong thread would complain now
    captured = capfd.readouterr()
    assert "unsendable" not in captured.err + captured.out
    assert not [r for r in caplog.records if "unsendable" in r.getMessage()]


# ---- trust routes: /parties, the token endpoint's methods; the router's own refusals ----------


def test_parties_without_parameters_lists_the_first_page(http, node) -> None:
    from trust.ishare_jwt import verify_signed_response

    resp = http.get("/parties", headers=node.auth(READER))
    assert resp.status_code == 200, resp.text
    info = verify_signed_response(
        resp.json()["parties_token"],
        claim="parties_info",
        issuer=OWNER,
        audience=READER,
        trusted_sha256=node.rt.trusted_roots,
    ).claims["parties_info"]
    assert info["count"] == 1 and info["data"][0]["party_id"] == OWNER


@pytest.mark.parametrize(
    "params", [{"page": "0"}, {"page": "x"}, {"pageSize": "101"}, {"page": "9" * 5000}]
)
def test_parties_bad_paging_is_400(http, node, params) -> None:
    json_error(http.get("/parties", params=params, headers=node.auth()), 400, "invalid_request")


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"])
def test_token_endpoint_allows_only_post(http, method) -> None:
    resp = http.request(method, "/connect/token")
    assert resp.status_code == 405 and resp.headers["allow"] == "POST"
    if method != "HEAD":
        json_error(resp, 405, "invalid_request")


def test_405_allow_lists_every_route_of_the_path(http) -> None:
    resp = http.options("/admin/datasets/bim")
    assert resp.headers["allow"] == "DELETE, PUT"
    json_error(resp, 405, "method_not_allowed")
    assert http.request("PATCH", "/sparql").headers["allow"] == "GET, HEAD, POST"


def test_unknown_path_is_404_json(http) -> None:
    json_error(http.get("/no/such/route"), 404, "not_found")


# ---- charsets and encodings: bytes that are not what they claim are 4xx, never 5xx ------------


@pytest.mark.parametrize(
    ("method", "path", "ctype", "body", "status"),
    [
        ("POST", "/sparql", "application/x-www-form-urlencoded", b"query=\xff", 400),
        ("POST", "/sparql", "application/sparql-query; charset=latin-1", b"ASK {\xe9}", 415),
        ("POST", "/delegation", "application/json", b'{"a": "\xff"}', 400),
        (
            "PUT",
            "/admin/datasets/x",
            "text/turtle; charset=latin-1",
            b'<urn:a> <urn:b> "\xe9" .',
            400,
        ),
        ("PUT", "/admin/datasets/x", "image/png", b"\x89PNG", 400),
        ("POST", "/connect/token", "multipart/form-data; boundary=x", b"--x\r\n", 400),
    ],
)
def test_body_in_the_wrong_encoding_or_type_is_4xx_json(
    http, node, method, path, ctype, body, status
) -> None:
    resp = http.request(method, path, content=body, headers={**node.auth(), "Content-Type": ctype})
    json_error(resp, status)


@pytest.mark.parametrize("value", [b"Bearer \xe9\xe9", b"Bearer \x80abc.def.ghi"])
def test_authorization_with_non_ascii_bytes_is_401(http, value) -> None:
    json_error(http.get("/catalog", headers={"Authorization": value}), 401, "invalid_token")


def test_format_outside_ascii_is_406(http, node) -> None:
    resp = http.get("/dataset/bim", params={"format": "\u00e9"}, headers=node.auth())
    json_error(resp, 406, "not_acceptable")


def test_every_trust_error_code_has_its_http_status() -> None:
    """trust/ errors carry protocol codes only; the node's one table gives each its status."""
    import importlib
    import pkgutil

    import trust
    from node.errors import TRUST_STATUS
    from trust.errors import TrustError

    for info in pkgutil.iter_modules(trust.__path__):
        importlib.import_module(f"trust.{info.name}")
    seen, todo = set(), [TrustError]
    while todo:
        cls = todo.pop()
        seen.add(cls)
        todo.extend(c for c in cls.__subclasses__() if c not in seen)
    missing = {c.__name__: c.error for c in seen if c.error not in TRUST_STATUS}
    assert not missing, missing
    assert not [c.__name__ for c in seen if "status" in vars(c)], "trust errors name no HTTP status"
