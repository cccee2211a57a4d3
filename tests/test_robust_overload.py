"""Issue 17: admission control per worker. Past server.max_in_flight requests the node answers a
JSON 503 with Retry-After at once instead of queueing; admitted requests are served (and audited,
one entry each); probes are always admitted. The p99 under 1,000 connections is in bench/.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
from nodeproc import ProcessGroup, dsgo, edit_config, free_port, init_node, token_for

OWNER = "EU.EORI.NL000000176"
CONNECTIONS = 300


async def _burst(base: str, token: str) -> tuple[list[httpx.Response], list[httpx.Response]]:
    limits = httpx.Limits(max_connections=CONNECTIONS + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        auth = {"Authorization": f"Bearer {token}"}
        # Not a lookup (a lookup on an idle node is answered as it arrives, never in flight
        # for long enough to overlap): each waits for a query slot.
        query = {"query": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"}
        work = [http.get("/sparql", params=query, headers=auth) for _ in range(CONNECTIONS)]
        probes = [http.get("/healthz") for _ in range(5)]
        answers = await asyncio.gather(*work, *probes)
    return list(answers[:CONNECTIONS]), list(answers[CONNECTIONS:])


def test_past_max_in_flight_is_a_json_503_with_retry_after(
    procs: ProcessGroup, tmp_path: Path
) -> None:
    port = free_port()
    config = init_node(tmp_path / "node", OWNER, "Owner", port)
    edit_config(config, {"server": {"max_in_flight": 4, "retry_after": 2}})
    proc = procs.serve(config, port)
    token = token_for(config, proc.base_url)
    before = _query_entries(config)
    answers, probes = asyncio.run(_burst(proc.base_url, token))
    statuses = [r.status_code for r in answers]
    assert set(statuses) <= {200, 503}, set(statuses)
    refused = [r for r in answers if r.status_code == 503]
    admitted = statuses.count(200)
    assert refused and admitted, statuses
    for r in refused:
        assert r.headers["retry-after"] == "2"
        assert r.json()["error"] == "overloaded" and r.json()["limit"] == 4
    assert all(p.status_code == 200 for p in probes)
    # Only admitted requests reached the protected resource: one audit entry each.
    assert _query_entries(config) - before == admitted


def test_bad_max_in_flight_is_refused_naming_the_key(tmp_path: Path) -> None:
    config = init_node(tmp_path / "n", OWNER, "Owner", free_port())
    edit_config(config, {"server": {"max_in_flight": 0}})
    out = dsgo("datasets", "--config", config, check=False)
    assert out.returncode != 0 and "server.max_in_flight" in out.stderr
    assert "Traceback" not in out.stderr


def _query_entries(config: Path) -> int:
    tail = dsgo("audit", "tail", "--config", config, "-n", "100000").stdout
    return sum(1 for line in tail.splitlines() if json.loads(line)["target"] == "sparql")
