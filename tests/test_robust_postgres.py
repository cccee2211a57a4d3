"""Issue 17: a hung PostgreSQL (postmaster and backends SIGSTOPped) gives a fast JSON 503 with
Retry-After on audited requests, never a hang; /readyz names the audit backend; SIGCONT resumes.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from nodeproc import (
    ProcessGroup,
    dsgo,
    edit_config,
    free_port,
    init_node,
    token_for,
    trust_client,
)
from pgproc import Postgres

from trust.audit_store import AuditStoreError, PostgresAuditStore

OWNER = "EU.EORI.NL000000171"
CLIENT_BOUND = 20.0  # a request still open after this is a hang (the node's bound is ~2 s)


def test_store_call_on_a_frozen_server_fails_within_its_deadline(pg: Postgres) -> None:
    store = PostgresAuditStore(pg.url, timeout=0.5, connect_timeout=1, cool_down=0.5)
    store.ping()
    pg.freeze()
    try:
        with pytest.raises(AuditStoreError, match="no answer within 0.5 s"):
            store.ping()  # an established connection: the client's own deadline
        with pytest.raises(AuditStoreError, match="refused"):
            store.ping()  # the breaker: refused at once, the database is not asked
        time.sleep(0.6)
        with pytest.raises(AuditStoreError):
            store.ping()  # the probe after the cool-down: connecting times out
        assert not store.breaker.state().ok
    finally:
        pg.thaw()
    time.sleep(0.6)
    store.ping()
    assert store.breaker.state().ok
    store.close()


def test_hung_database_is_a_fast_503_then_resumes(
    pg: Postgres, procs: ProcessGroup, tmp_path: Path
) -> None:
    port = free_port()
    config = init_node(tmp_path / "node", OWNER, "Owner", port)
    edit_config(config, {"audit": {"backend": "postgresql", "dsn": pg.url, "timeout": 1}})
    data = tmp_path / "bim.ttl"
    data.write_text("<building/b1> a <https://w3id.org/bot#Building> .\n", encoding="utf-8")
    dsgo("load", data, "--dataset", "bim", "--config", config)
    proc = procs.serve(config, port)
    http = httpx.Client(base_url=proc.base_url, timeout=CLIENT_BOUND)
    auth = {"Authorization": f"Bearer {token_for(config, proc.base_url)}"}
    query = {"query": "ASK { ?s ?p ?o }"}
    assert http.get("/sparql", params=query, headers=auth).status_code == 200
    assert http.get("/readyz").status_code == 200
    assert http.get("/id/building/b1", headers=auth).status_code == 200

    pg.freeze()
    try:
        client = trust_client(config)
        token_form = client.token_form(OWNER)
        for method, path, params in (
            ("GET", "/sparql", query),  # the query thread's one write
            ("GET", "/catalog", None),
            ("GET", "/id/building/b1", None),  # the group-committed write
            ("POST", "/connect/token", None),  # token_issued
            ("GET", "/sparql", query),
        ):
            started = time.monotonic()
            if method == "POST":
                resp = http.post(path, data=token_form)
            else:
                resp = http.get(path, params=params, headers=auth)
            took = time.monotonic() - started
            assert resp.status_code == 503, resp.text
            # The token endpoint answers in OAuth's error shape (RFC 6749 section 5.2).
            expected = "temporarily_unavailable" if method == "POST" else "audit_unavailable"
            assert resp.json()["error"] == expected
            assert int(resp.headers["retry-after"]) >= 1
            print(f"{path} with PostgreSQL stopped: 503 in {took * 1000:.0f} ms")
        ready = http.get("/readyz")
        assert ready.status_code == 503 and "retry-after" in ready.headers
        checks = ready.json()["checks"]
        assert checks["audit"]["ok"] is False and checks["store"]["ok"] is True
        assert http.get("/healthz").status_code == 200  # liveness stays
    finally:
        pg.thaw()

    for _ in range(100):  # the breaker lets a probe through within a second or two
        resp = http.get("/sparql", params=query, headers=auth)
        if resp.status_code == 200:
            break
        assert resp.status_code == 503
        time.sleep(0.1)
    assert resp.status_code == 200
    assert http.get("/readyz").json()["checks"]["audit"]["ok"] is True
