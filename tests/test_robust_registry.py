"""Issue 17: a hung registry (a real listener that accepts and never answers) is bounded.

Lookups time out, concurrent lookups of one party share one call, a failure is remembered for a
short while, and token requests wait on their own pool: /catalog and /healthz keep answering
while dozens of token requests are stuck on the registry.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from nodeproc import ProcessGroup, edit_config, free_port, init_node, trust_client
from robustproc import HungListener, hung_listener

from trust import pki
from trust.errors import RegistryUnavailable
from trust.registry import RegistryClient
from trust.single_flight import SingleFlight

REG_ID = "EU.EORI.NL000000170"
NODE_ID = "EU.EORI.NL000000172"


@pytest.fixture
def hung():
    with hung_listener() as listener:
        yield listener


def _client(hung: HungListener, **kw) -> RegistryClient:
    ca = pki.create_dev_ca("Hung registry test")
    me = pki.issue_party_certificate(ca, NODE_ID, "Node")
    return RegistryClient(hung.url, REG_ID, {ca.root_fingerprint}, me, **kw)


def test_hung_registry_lookups_time_out_share_one_call_and_are_cached(hung) -> None:
    rc = _client(hung, timeout=0.5, negative_seconds=30)
    errors: list[BaseException] = []
    start = threading.Barrier(16)

    def lookup() -> None:
        start.wait()
        try:
            rc.get_party("EU.EORI.NL000000601")
        except BaseException as exc:  # noqa: BLE001 - collected for the assertions
            errors.append(exc)

    threads = [threading.Thread(target=lookup) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(errors) == 16 and all(isinstance(e, RegistryUnavailable) for e in errors)
    assert {e.check for e in errors} == {"registry_timeout"}
    assert hung.accepted == 1  # sixteen lookups, one call to the registry
    # Within negative_seconds the failure is answered from memory: no new connection.
    with pytest.raises(RegistryUnavailable):
        rc.get_party("EU.EORI.NL000000601")
    assert hung.accepted == 1
    assert "party/EU.EORI.NL000000601" in rc.failing()
    # Another key is a call of its own; invalidate() forgets the remembered failure.
    with pytest.raises(RegistryUnavailable):
        rc.trusted_list()
    assert hung.accepted == 2
    rc.invalidate()
    with pytest.raises(RegistryUnavailable):
        rc.get_party("EU.EORI.NL000000601")
    assert hung.accepted == 3


def test_single_flight_shares_a_success_and_forgets_after_the_window() -> None:
    now = [0.0]
    flight = SingleFlight(5.0, clock=lambda: now[0])
    gate = threading.Event()
    calls = []

    def slow() -> int:
        calls.append(1)
        gate.wait(5)
        return 42

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(flight.do, "k", slow) for _ in range(8)]
        while flight.calls == 0:
            pass
        gate.set()
        assert [f.result(10) for f in futures] == [42] * 8
    assert len(calls) <= 8 and flight.calls == len(calls)

    def boom() -> int:
        raise ValueError("down")

    with pytest.raises(ValueError):
        flight.do("j", boom)
    with pytest.raises(ValueError):
        flight.do("j", lambda: 1)  # remembered
    now[0] = 6.0
    assert flight.do("j", lambda: 1) == 1  # the window is over


def test_hung_registry_does_not_delay_other_routes(
    procs: ProcessGroup, tmp_path: Path, dev_ca: Path, hung
) -> None:
    port = free_port()
    config = init_node(
        tmp_path / "node",
        NODE_ID,
        "Node",
        port,
        ca=dev_ca,
        registry_url=hung.url,
        registry_id=REG_ID,
    )
    edit_config(config, {"trust": {"registry_timeout": 3, "registry_threads": 2}})
    proc = procs.serve(config, port)
    client = trust_client(config)
    forms = [client.token_form(NODE_ID) for _ in range(60)]
    finished: list[int] = []
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    # One client for all (building one per request would take the test's own CPU).
    tokens = httpx.Client(base_url=proc.base_url, timeout=60, limits=limits)
    http = httpx.Client(base_url=proc.base_url, timeout=30)
    http.get("/healthz")

    def token(form: dict[str, str]) -> httpx.Response:
        resp = tokens.post("/connect/token", data=form)
        finished.append(resp.status_code)
        return resp

    with ThreadPoolExecutor(60) as pool:
        futures = [pool.submit(token, f) for f in forms]
        while hung.accepted == 0:  # the node is waiting on the registry now
            threading.Event().wait(0.01)
        catalog = http.get("/catalog")
        health = http.get("/healthz")
        answered_before = len(finished)
        ready = http.get("/readyz")
        answers = [f.result(60) for f in futures]
    tokens.close()
    http.close()
    assert catalog.status_code == 200 and health.status_code == 200
    assert answered_before == 0  # /catalog answered while every token request still waited
    assert ready.status_code == 503
    assert ready.json()["checks"]["registry"]["ok"] is False
    statuses = {r.status_code for r in answers}
    assert statuses == {503}, [r.text for r in answers[:3]]
    assert all(r.json()["error"] == "temporarily_unavailable" for r in answers)
    assert hung.accepted <= 4  # single-flight and the failure cache: not one call per request
