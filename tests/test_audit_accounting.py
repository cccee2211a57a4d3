"""Issue 17 part 6: audit accounting over a mix, counted request by request.

Each request below is sent alone and the audit entries it added are counted: exactly one for
every request that reaches a protected resource (SPARQL of every form, resource GETs including
a 304, whole datasets, the catalog and VoID in the caller's scope, refusals of each kind), the
decision and the query in one record; none for what reaches nothing protected (anonymous
catalog and VoID, no or a bad token, a query text refused before any decision).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from nodeproc import ProcessGroup, dsgo, free_port, init_owner_and_guest, token_for

OWNER = "EU.EORI.NL000000193"
GUEST = "EU.EORI.NL000000194"
BIM = """\
@prefix bot: <https://w3id.org/bot#> .
<building/b1> a bot:Building ; bot:hasStorey <storey/s1> .
<storey/s1> a bot:Storey .
"""
SELECT = "SELECT * WHERE { ?s ?p ?o }"


@dataclass
class World:
    owner: Path
    http: httpx.Client
    auth: dict[str, str]
    base: str

    def entries(self) -> list[dict]:
        tail = dsgo("audit", "tail", "--config", self.owner, "-n", "100000").stdout
        return [json.loads(line) for line in tail.splitlines()]

    def added_by(self, method: str, path: str, **kw: object) -> tuple[httpx.Response, list[dict]]:
        before = len(self.entries())
        resp = self.http.request(method, path, **kw)  # type: ignore[arg-type]
        return resp, self.entries()[before:]


@pytest.fixture(scope="module")
def world(module_procs: ProcessGroup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("accounting")
    port = free_port()
    owner, guest = init_owner_and_guest(root, OWNER, GUEST, port)
    for name in ("bim", "bag"):
        path = root / f"{name}.ttl"
        path.write_text(BIM, encoding="utf-8")
        dsgo("load", path, "--dataset", name, "--config", owner)
    dsgo("policy", "grant", "--config", owner, "--to", GUEST, "--dataset", "bim")
    proc = module_procs.serve(owner, port)
    auth = {"Authorization": f"Bearer {token_for(guest, proc.base_url)}"}
    with httpx.Client(base_url=proc.base_url, timeout=30) as http:
        yield World(owner, http, auth, proc.base_url)


def _one(entries: list[dict], kind: str) -> dict:
    assert [e["kind"] for e in entries] == [kind], [(e["kind"], e["target"]) for e in entries]
    assert entries[0]["party"] == GUEST
    return entries[0]


SPARQL_CASES = [
    ("GET", {"params": {"query": SELECT}}, 200),
    ("POST", {"data": {"query": "ASK { ?s ?p ?o }"}}, 200),
    ("POST", {"data": {"query": "CONSTRUCT WHERE { ?s ?p ?o }"}}, 200),
    (
        "POST",
        {"content": "DESCRIBE <urn:x>", "headers": {"Content-Type": "application/sparql-query"}},
        200,
    ),
    ("GET", {"params": {"query": SELECT}, "headers": {"Accept": "image/png"}}, 406),
]


@pytest.mark.parametrize("method,kw,status", SPARQL_CASES)
def test_sparql_is_one_query_record_with_its_decision(
    world: World, method: str, kw: dict, status: int
) -> None:
    headers = {**world.auth, **kw.pop("headers", {})}  # type: ignore[arg-type]
    resp, added = world.added_by(method, "/sparql", headers=headers, **kw)
    assert resp.status_code == status, resp.text
    record = _one(added, "query")
    assert record["detail"]["effect"] == "Permit" and record["policies"]
    assert record["query_hash"]
    if status == 200:
        assert record["datasets"] == ["bim"] and record["result_size"] is not None
    else:
        assert record["detail"]["error"] == "not_acceptable"


def test_sparql_refused_is_one_deny(world: World) -> None:
    """A SERVICE without a federate grant: refused before any call, one deny entry."""
    query = f"SELECT * WHERE {{ SERVICE <http://127.0.0.1:{free_port()}/sparql> {{ ?s ?p ?o }} }}"
    resp, added = world.added_by("POST", "/sparql", data={"query": query}, headers=world.auth)
    assert resp.status_code == 403, resp.text
    deny = _one(added, "deny")
    assert deny["action"] == "dsgo:federate"


@pytest.mark.parametrize(
    "path,status,kind",
    [
        ("/id/building/b1", 200, "permit"),
        ("/dataset/bim", 200, "permit"),
        ("/dataset/bag", 403, "deny"),
        ("/audit/entries", 403, "deny"),
        ("/catalog", 200, "permit"),
        ("/.well-known/void", 200, "permit"),
        ("/dataset/bim/void", 200, "permit"),
    ],
)
def test_reads_are_one_entry(world: World, path: str, status: int, kind: str) -> None:
    headers = {**world.auth, "Accept": "text/turtle"}
    resp, added = world.added_by("GET", path, headers=headers)
    assert resp.status_code == status, resp.text
    _one(added, kind)


def test_not_modified_resource_is_still_one_permit(world: World) -> None:
    headers = {**world.auth, "Accept": "text/turtle"}
    etag = world.http.get("/id/building/b1", headers=headers).headers["etag"]
    resp, added = world.added_by(
        "GET", "/id/building/b1", headers={**headers, "If-None-Match": etag}
    )
    assert resp.status_code == 304
    _one(added, "permit")


def test_catalog_and_void_permits_name_what_they_listed(world: World) -> None:
    for path in ("/catalog", "/.well-known/void", "/dataset/bim/void"):
        _, added = world.added_by("GET", path, headers={**world.auth, "Accept": "text/turtle"})
        entry = _one(added, "permit")
        assert entry["action"] == "dsgo:readCatalog"
        assert entry["datasets"] == [f"{world.base}/dataset/bim"], entry


@pytest.mark.parametrize(
    "method,path,kw,status",
    [
        ("GET", "/catalog", {}, 200),  # anonymous: the node and its services only
        ("GET", "/.well-known/void", {}, 200),  # anonymous: no dataset
        ("GET", "/sparql", {"params": {"query": SELECT}}, 401),  # no token
        (
            "GET",
            "/sparql",
            {"params": {"query": SELECT}, "headers": {"Authorization": "Bearer not-a-token"}},
            401,
        ),
        ("GET", "/id/building/b1", {"headers": {"Authorization": "Bearer x.y.z"}}, 401),
    ],
)
def test_what_reaches_nothing_protected_writes_nothing(
    world: World, method: str, path: str, kw: dict, status: int
) -> None:
    resp, added = world.added_by(method, path, **kw)
    assert resp.status_code == status, resp.text
    assert added == [], [(e["kind"], e["target"]) for e in added]


def test_query_over_the_limits_writes_nothing(world: World) -> None:
    """A text over the [query] limits is the caller's 400 before the enforcement point is asked
    (the guard reads it first): nothing protected was reached."""
    deep = "SELECT * WHERE " + "{" * 80 + " ?s ?p ?o " + "}" * 80
    resp, added = world.added_by("POST", "/sparql", data={"query": deep}, headers=world.auth)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]
    assert added == [], [(e["kind"], e["target"]) for e in added]


def test_query_the_engine_refuses_is_one_record_with_the_error(world: World) -> None:
    """Text the engine cannot parse (after the decision): the decision and the error, one record."""
    resp, added = world.added_by(
        "POST", "/sparql", data={"query": "SELECT * WHERE { ?s "}, headers=world.auth
    )
    assert resp.status_code == 400, resp.text
    record = _one(added, "query")
    assert record["detail"]["effect"] == "Permit" and record["detail"]["error"]


def test_void_of_a_dataset_outside_the_scope_is_one_deny(world: World) -> None:
    for name in ("bag", "nosuch"):  # not granted / not there: the same answer, one deny each
        resp, added = world.added_by("GET", f"/dataset/{name}/void", headers=world.auth)
        assert resp.status_code == 404, resp.text
        deny = _one(added, "deny")
        assert deny["target"] == f"{world.base}/dataset/{name}/void"
