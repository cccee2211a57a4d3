"""Issue 17: audit accounting. Exactly one audit entry per request that reaches a protected
resource (catalog included), with the decision and the query in one record; refused requests
are one deny entry each; requests that reach nothing (anonymous catalog, no token) none.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from nodeproc import (
    ProcessGroup,
    dsgo,
    free_port,
    init_owner_and_guest,
    token_for,
)

OWNER = "EU.EORI.NL000000178"
GUEST = "EU.EORI.NL000000179"
BIM = """\
@prefix bot: <https://w3id.org/bot#> .
<building/b1> a bot:Building ; bot:hasStorey <storey/s1> .
<storey/s1> a bot:Storey .
"""


def _entries(config: Path) -> list[dict]:
    tail = dsgo("audit", "tail", "--config", config, "-n", "100000").stdout
    return [json.loads(line) for line in tail.splitlines()]


def test_one_entry_per_request(procs: ProcessGroup, tmp_path: Path) -> None:
    port = free_port()
    owner, guest = init_owner_and_guest(tmp_path, OWNER, GUEST, port)
    for name in ("bim", "bag"):
        path = tmp_path / f"{name}.ttl"
        path.write_text(BIM, encoding="utf-8")
        dsgo("load", path, "--dataset", name, "--config", owner)
    dsgo("policy", "grant", "--config", owner, "--to", GUEST, "--dataset", "bim")
    proc = procs.serve(owner, port)
    token = token_for(guest, proc.base_url)
    http = httpx.Client(base_url=proc.base_url, timeout=30)
    auth = {"Authorization": f"Bearer {token}"}
    before = len(_entries(owner))

    protected = [
        ("GET", "/catalog", {}),
        ("GET", "/catalog", {"Accept": "text/turtle"}),
        ("GET", "/sparql?query=SELECT%20*%20WHERE%20%7B%3Fs%20%3Fp%20%3Fo%7D", {}),
        ("GET", "/sparql?query=ASK%20%7B%7D", {}),
        ("GET", "/id/building/b1", {"Accept": "text/turtle"}),
        ("GET", "/dataset/bim", {"Accept": "application/n-triples"}),
        ("GET", "/dataset/bag", {}),  # refused: one deny entry
        ("GET", "/audit/entries", {}),  # refused: one deny entry
    ]
    statuses = []
    for method, path, headers in protected:
        statuses.append(http.request(method, path, headers={**auth, **headers}).status_code)
    assert statuses == [200, 200, 200, 200, 200, 200, 403, 403], statuses
    # Reaching nothing protected: an anonymous catalog, a query without a token.
    assert http.get("/catalog").status_code == 200
    assert http.get("/sparql", params={"query": "ASK {}"}).status_code == 401

    new = _entries(owner)[before:]
    assert len(new) == len(protected), [(e["kind"], e["target"]) for e in new]
    kinds = [e["kind"] for e in new]
    assert kinds == ["permit", "permit", "query", "query", "permit", "permit", "deny", "deny"]
    assert all(e["party"] == GUEST for e in new)
    catalog = new[0]
    assert catalog["action"] == "dsgo:readCatalog"
    assert catalog["datasets"] == [f"{proc.base_url}/dataset/bim"]
    query = new[2]  # the decision and the query in one record
    assert query["detail"]["effect"] == "Permit" and query["policies"]
    assert query["query_hash"] and query["result_size"] == 3
    http.close()
