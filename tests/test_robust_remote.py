"""Issue 17: a remote node that accepts and never answers, or refuses connections, is bounded by
federation.connect_timeout / read_timeout: the named 504 (timeout) or 502 (failure), each call
recorded as a `federated_call` audit entry with its error, and the node keeps answering.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from nodeproc import ProcessGroup, dsgo, edit_config, free_port, init_node, token_for
from robustproc import HungListener, hung_listener

OWNER = "EU.EORI.NL000000173"
HUNG = "EU.EORI.NL000000174"
CLOSED = "EU.EORI.NL000000175"


@dataclass
class World:
    config: Path
    http: httpx.Client
    hung: HungListener
    closed_url: str

    def audit(self, n: int = 40) -> list[dict]:
        tail = dsgo("audit", "tail", "--config", self.config, "-n", str(n)).stdout
        return [json.loads(line) for line in tail.splitlines()]


@pytest.fixture(scope="module")
def world(module_procs: ProcessGroup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("remote")
    port = free_port()
    config = init_node(root / "owner", OWNER, "Owner", port)
    edit_config(config, {"federation": {"connect_timeout": 1, "read_timeout": 1}})
    ca = root / "owner" / "keys" / "dev-ca"
    with hung_listener() as hung:
        closed_url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
        for party, url in ((HUNG, hung.url), (CLOSED, closed_url)):
            other = init_node(root / party, party, party, free_port(), ca=ca)
            dsgo(
                *("registry", "add", "--config", config, "--party-id", party, "--name", party),
                *("--cert", other.parent / "keys" / "node.cert.pem"),
                *("--capability-url", f"{url}/capabilities"),
            )
        proc = module_procs.serve(config, port)
        token = token_for(config, proc.base_url)
        with httpx.Client(
            base_url=proc.base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}
        ) as http:
            yield World(config, http, hung, closed_url)


def _service(endpoint: str) -> str:
    return f"SELECT * WHERE {{ SERVICE <{endpoint}/sparql> {{ ?s ?p ?o }} }}"


def test_hung_remote_is_the_named_504_and_audited(world: World) -> None:
    resp = world.http.post("/sparql", data={"query": _service(world.hung.url)})
    assert resp.status_code == 504, resp.text
    body = resp.json()
    assert body["error"] == "remote_source_timeout"
    assert world.hung.url in json.dumps(body)
    calls = [e for e in world.audit() if e["kind"] == "federated_call"]
    assert calls and calls[-1]["target"] == f"{world.hung.url}/sparql"
    assert calls[-1]["detail"]["error"] and calls[-1]["detail"]["peer"] == HUNG
    # The node still answers a local query.
    assert world.http.get("/sparql", params={"query": "ASK {}"}).status_code == 200


def test_refusing_remote_is_the_named_502_and_audited(world: World) -> None:
    resp = world.http.post("/sparql", data={"query": _service(world.closed_url)})
    assert resp.status_code == 502, resp.text
    assert resp.json()["error"] == "remote_source_failed"
    calls = [e for e in world.audit() if e["kind"] == "federated_call"]
    assert calls[-1]["target"] == f"{world.closed_url}/sparql" and calls[-1]["detail"]["error"]


def test_follow_to_a_hung_remote_is_504_and_audited(world: World) -> None:
    iri = f"{world.hung.url}/id/x"
    resp = world.http.get("/follow", params={"iri": iri})
    assert resp.status_code == 504, resp.text
    assert resp.json()["error"] == "remote_fetch_failed"
    calls = [e for e in world.audit() if e["kind"] == "federated_call"]
    assert calls[-1]["target"] == iri and calls[-1]["detail"]["error"]


@pytest.mark.parametrize(
    "section,key", [("federation", "read_timeout"), ("federation", "connect_timeout")]
)
def test_zero_remote_timeout_is_refused_naming_the_key(
    tmp_path: Path, section: str, key: str
) -> None:
    config = init_node(tmp_path / "n", OWNER, "Owner", free_port())
    edit_config(config, {section: {key: 0}})
    out = dsgo("datasets", "--config", config, check=False)
    assert out.returncode != 0 and f"{section}.{key}" in out.stderr
    assert "Traceback" not in out.stderr
