"""Issue 17: SERVICE calls do not hold engine slots.

A remote node that accepts connections and never answers is registered as an Active peer, so
the enforcement point lets the calls out. More federated queries than `store.query_slots` are
fired at it at once; a plain local query must still answer 200 while they all hang, and every
federated one must end as the named 504 (`remote_source_timeout`, naming the endpoint and the
timeout), never the unnamed `query_timeout`. Each failed call leaves a `federated_call` audit
entry naming the caller.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from nodeproc import (
    ProcessGroup,
    dsgo,
    edit_config,
    free_port,
    init_node,
    init_owner_and_guest,
    token_for,
)
from robustproc import HungListener, hung_listener

OWNER = "EU.EORI.NL000000190"
GUEST = "EU.EORI.NL000000191"
HUNG = "EU.EORI.NL000000192"
QUERY_TIMEOUT = 4.0
FEDERATED = 6  # three times store.query_slots (2)
BIM = """\
@prefix bot: <https://w3id.org/bot#> .
<building/b1> a bot:Building ; bot:hasStorey <storey/s1> .
<building/b2> a bot:Building .
<storey/s1> a bot:Storey .
"""


@dataclass
class World:
    owner: Path
    base_url: str
    token: str
    hung: HungListener

    def post(self, query: str) -> httpx.Response:
        with httpx.Client(base_url=self.base_url, timeout=60) as http:
            return http.post(
                "/sparql",
                data={"query": query},
                headers={"Authorization": f"Bearer {self.token}"},
            )

    def audit(self) -> list[dict]:
        tail = dsgo("audit", "tail", "--config", self.owner, "-n", "100000").stdout
        return [json.loads(line) for line in tail.splitlines()]


@pytest.fixture(scope="module")
def world(module_procs: ProcessGroup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("hung")
    port = free_port()
    owner, guest = init_owner_and_guest(root, OWNER, GUEST, port)
    # federation.read_timeout stays at its default (10 s), above the query timeout: the node
    # itself must keep the remote wait below the query's deadline.
    edit_config(owner, {"store": {"query_timeout": QUERY_TIMEOUT, "query_slots": 2}})
    data = root / "bim.ttl"
    data.write_text(BIM, encoding="utf-8")
    dsgo("load", data, "--dataset", "bim", "--config", owner)
    dsgo("policy", "grant", "--config", owner, "--to", GUEST, "--dataset", "bim")
    with hung_listener() as hung:
        other = init_node(root / "hung", HUNG, "Hung", free_port(), ca=root / "owner/keys/dev-ca")
        dsgo(
            *("registry", "add", "--config", owner, "--party-id", HUNG, "--name", "Hung"),
            *("--cert", other.parent / "keys" / "node.cert.pem"),
            *("--capability-url", f"{hung.url}/capabilities"),
        )
        endpoint = f"{hung.url}/sparql"
        dsgo("policy", "grant", "--config", owner, "--to", GUEST, "--federate", "--ids", endpoint)
        proc = module_procs.serve(owner, port)
        yield World(owner, proc.base_url, token_for(guest, proc.base_url), hung)


def _federated(world: World, i: int) -> str:
    endpoint = f"{world.hung.url}/sparql"
    if i % 2:  # no join variable: the remote part alone
        return f"SELECT * WHERE {{ SERVICE <{endpoint}> {{ ?s ?p ?o{i} }} }}"
    # a join: the local bindings are computed first (in an engine slot), then the remote call
    return (
        "PREFIX bot: <https://w3id.org/bot#>\n"
        f"SELECT * WHERE {{ ?b a bot:Building . SERVICE <{endpoint}> {{ ?b ?p{i} ?o }} }}"
    )


def test_hung_remote_does_not_starve_local_queries(world: World) -> None:
    before = len(world.audit())
    answers: dict[int, tuple[float, httpx.Response]] = {}

    def fire(i: int) -> None:
        resp = world.post(_federated(world, i))
        answers[i] = (time.monotonic(), resp)

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(FEDERATED)]
    for t in threads:
        t.start()
    # Give every federated query time to reach the hung remote (its token request or query).
    waited = time.monotonic() + QUERY_TIMEOUT / 2
    while world.hung.accepted < FEDERATED and time.monotonic() < waited:
        time.sleep(0.05)

    local = world.post("PREFIX bot: <https://w3id.org/bot#> SELECT ?b WHERE { ?b a bot:Building }")
    local_done = time.monotonic()
    for t in threads:
        t.join(timeout=60)

    assert local.status_code == 200, local.text
    assert len(local.json()["results"]["bindings"]) == 2
    assert len(answers) == FEDERATED
    # The local query was answered while every federated one was still waiting on the remote.
    assert all(local_done < done for done, _ in answers.values())
    for _, resp in answers.values():
        assert resp.status_code == 504, resp.text
        body = resp.json()
        assert body["error"] == "remote_source_timeout", body
        assert body["endpoint"] == f"{world.hung.url}/sparql"
        assert "no answer within" in body["error_description"], body

    new = world.audit()[before:]
    calls = [e for e in new if e["kind"] == "federated_call"]
    assert len(calls) == FEDERATED, [(e["kind"], e["target"]) for e in new]
    for call in calls:
        assert call["target"] == f"{world.hung.url}/sparql"
        assert call["party"] == GUEST and call["detail"]["on_behalf_of"] == GUEST
        assert call["detail"]["peer"] == HUNG and call["detail"]["error"]
    queries = [e for e in new if e["kind"] == "query"]
    failed = [q for q in queries if q["detail"].get("error") == "remote_source_timeout"]
    assert len(failed) == FEDERATED and all(q["party"] == GUEST for q in queries)


def test_remote_wait_stays_below_the_query_timeout(world: World) -> None:
    """One federated query alone: the 504 names a timeout shorter than the query's own."""
    resp = world.post(_federated(world, 1))
    assert resp.status_code == 504, resp.text
    within = resp.json()["error_description"].split("no answer within ")[1].split(" s")[0]
    assert float(within) < QUERY_TIMEOUT


def test_unregistered_endpoint_is_refused_before_any_call(world: World) -> None:
    """The negative path: an endpoint outside the caller's grant is a 403; nothing is dialled."""
    accepted = world.hung.accepted
    resp = world.post(
        f"SELECT * WHERE {{ SERVICE <http://127.0.0.1:{free_port()}/sparql> {{ ?s ?p ?o }} }}"
    )
    assert resp.status_code == 403, resp.text
    assert resp.json()["error"] == "federation_not_allowed"  # the grant names one endpoint
    assert world.hung.accepted == accepted
