"""store.backend = "engine": a supervised `oxigraph serve` child, stopped and restarted to cancel.

Real processes throughout: `dsgo serve` with two workers on the engine, and an EngineStore
with its own supervisor in this process. Facts asserted, not speeds: the engine's CPU time
stops growing after a deadline, a small ASK gets 200 after two timed-out heavy queries, reads
in flight during a restart are answered, a write under a restart is a named 503, no engine
outlives a SIGKILLed node.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from node.config import ConfigError, load_settings
from node.engine import (
    EngineError,
    EngineSupervisor,
    cpu_seconds,
    kill_engine,
    pid_alive,
    read_info,
    wait_ready,
)
from node.store.base import StoreTimeout
from node.store.engine_store import EngineRestarting, EngineStore, EngineUnavailable
from tests.nodeproc import (
    DSGO,
    OXIGRAPH,
    ProcessGroup,
    clean_env,
    dsgo,
    edit_config,
    free_port,
    init_node,
    token_for,
)

TRIPLES = 100_000
HEAVY = (
    "SELECT (COUNT(*) AS ?n) WHERE { ?a <http://example.org/p> ?b . "
    "?c <http://example.org/p> ?d . ?e <http://example.org/p> ?f }"
)
JSON = "application/sparql-results+json"
TIMEOUT = 2.0


def write_triples(path: Path, n: int) -> None:
    with path.open("w", encoding="ascii") as fh:
        for i in range(n):
            fh.write(f'<http://example.org/s{i}> <http://example.org/p> "v{i}" .\n')


@pytest.fixture(scope="module")
def engine_node(tmp_path_factory: pytest.TempPathFactory):
    """One node on the engine backend, two workers, 100k triples, query_timeout 2 s."""
    root = tmp_path_factory.mktemp("engine-node")
    port = free_port()
    config = init_node(root / "node", "EU.EORI.NL000000101", "Engine", port)
    edit_config(
        config,
        {"store": {"backend": "engine", "query_timeout": TIMEOUT}, "server": {"workers": 2}},
    )
    data = root / "data.nt"
    write_triples(data, TRIPLES)
    dsgo("load", data, "--dataset", "big", "--config", config)  # starts and stops its own engine
    group = ProcessGroup(root / "logs")
    try:
        proc = group.serve(config, port)
        token = token_for(config, proc.base_url)
        yield proc, config, token
    finally:
        group.stop_all()


def _engine(config: Path):
    info = read_info(load_settings(config).data_dir / "engine.json")
    assert info is not None, "dsgo serve publishes engine.json"
    return info


def _query(base: str, token: str, text: str, timeout: float = 30.0) -> httpx.Response:
    return httpx.post(
        f"{base}/sparql",
        content=text,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/sparql-query",
            "Accept": JSON,
        },
        timeout=timeout,
    )


def _idle(pid: int, window: float = 1.0) -> bool:
    """The process is gone or used (almost) no CPU over `window` seconds."""
    before = cpu_seconds(pid)
    time.sleep(window)
    after = cpu_seconds(pid)
    return before is None or after is None or after - before < 0.1 * window


def test_point_query_through_engine(engine_node) -> None:
    proc, config, token = engine_node
    resp = _query(proc.base_url, token, "SELECT ?o WHERE { <http://example.org/s42> ?p ?o }")
    assert resp.status_code == 200, resp.text
    assert [b["o"]["value"] for b in resp.json()["results"]["bindings"]] == ["v42"]
    resp = _query(proc.base_url, token, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
    assert resp.json()["results"]["bindings"][0]["n"]["value"] == str(TRIPLES)


def test_timed_out_queries_stop_the_engine_and_free_it(engine_node) -> None:
    proc, config, token = engine_node
    first = _engine(config)
    assert cpu_seconds(first.pid) is not None
    answers: list[httpx.Response] = []

    def heavy() -> None:
        answers.append(_query(proc.base_url, token, HEAVY))

    threads = [threading.Thread(target=heavy) for _ in range(2)]
    sent = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(TIMEOUT / 2)
    busy_before = cpu_seconds(first.pid)
    time.sleep(0.5)
    busy_after = cpu_seconds(first.pid)
    assert busy_before is not None and busy_after is not None
    assert busy_after > busy_before, "the heavy queries do keep the engine busy"
    for t in threads:
        t.join(timeout=30)
    assert [a.status_code for a in answers] == [503, 503]
    for a in answers:
        assert a.json()["error"] == "query_timeout"
        assert "Retry-After" in a.headers
    # Within 2 s after the deadline the engine that ran them is gone or idle...
    time.sleep(max(0.0, sent + TIMEOUT + 2.0 - time.monotonic()))
    assert not pid_alive(first.pid) or _idle(first.pid, 0.5)
    # ... and the engine serving now (restarted) does not compute them either.
    now = wait_ready(load_settings(config).data_dir / "engine.json", 10.0)
    assert now.generation > first.generation and now.pid != first.pid
    assert _idle(now.pid, 1.0)
    resp = _query(proc.base_url, token, "ASK { <http://example.org/s7> ?p ?o }", timeout=1.0)
    assert resp.status_code == 200 and resp.json()["boolean"] is True


def test_engine_killed_by_anyone_is_restarted_and_reads_answer(engine_node) -> None:
    proc, config, token = engine_node
    before = _engine(config)
    os.kill(before.pid, signal.SIGKILL)
    resp = _query(proc.base_url, token, "SELECT ?o WHERE { <http://example.org/s9> ?p ?o }")
    assert resp.status_code == 200, resp.text
    assert resp.json()["results"]["bindings"][0]["o"]["value"] == "v9"
    assert _engine(config).generation > before.generation


def test_no_engine_outlives_a_killed_node(tmp_path: Path) -> None:
    port = free_port()
    config = init_node(tmp_path / "node", "EU.EORI.NL000000101", "Engine", port)
    edit_config(config, {"store": {"backend": "engine"}, "server": {"workers": 2}})
    group = ProcessGroup(tmp_path / "logs")
    try:
        node = group.serve(config, port)
        info = _engine(config)
        assert info.supervisor == node.popen.pid and pid_alive(info.pid)
        children = _children(node.popen.pid)
        assert info.pid in children and len(children) >= 3  # the engine and two workers
        node.popen.kill()  # SIGKILL the master only: no chance to clean up
        node.popen.wait(timeout=10)
        end = time.monotonic() + 15
        while any(pid_alive(p) for p in children) and time.monotonic() < end:
            time.sleep(0.05)
        assert not pid_alive(info.pid), "the engine died with the node (PR_SET_PDEATHSIG)"
        left = {p: Path(f"/proc/{p}/cmdline").read_bytes()[:120] for p in children if pid_alive(p)}
        assert not left, f"so did the workers (SIGTERM): {left}"
        # The next start finds the store free and a stale engine.json does not confuse it.
        node = group.serve(config, port)
        assert _engine(config).pid != info.pid
    finally:
        group.stop_all()
    assert read_info(tmp_path / "node" / "data" / "engine.json") is None, "removed on stop"


def _children(parent: int) -> set[int]:
    """Pids whose parent is `parent` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found.add(int(stat.parent.name))
    return found


# --- in this process: an EngineStore with its own supervisor -------------------------------


@pytest.fixture
def store(tmp_path: Path):
    supervisor = EngineSupervisor(tmp_path / "engine", tmp_path / "engine.json", OXIGRAPH)
    supervisor.start()
    s = EngineStore(
        "http://127.0.0.1:1", tmp_path / "engine.json", timeout=30.0, supervisor=supervisor
    )
    data = tmp_path / "d.nt"
    write_triples(data, 20_000)
    import pyoxigraph as ox

    s.replace_dataset("d", data, ox.RdfFormat.N_TRIPLES)
    try:
        yield s
    finally:
        last = read_info(tmp_path / "engine.json")
        s.close()
    assert last is not None and not pid_alive(last.pid), "close() stops the engine it owns"
    assert read_info(tmp_path / "engine.json") is None


def test_read_in_flight_during_a_restart_is_retried_once(store: EngineStore) -> None:
    info = store.info
    assert kill_engine(store.info_file, info.pid)
    end = time.monotonic() + 5
    while pid_alive(info.pid) and time.monotonic() < end:
        time.sleep(0.01)
    rows = list(store.query("SELECT ?o WHERE { GRAPH ?g { <http://example.org/s5> ?p ?o } }"))
    assert [r["o"].value for r in rows] == ["v5"]
    assert store.retried == 1 and store.info.generation == info.generation + 1


def test_write_under_a_restart_is_a_named_503_not_retried(store: EngineStore) -> None:
    info = store.info
    heavy_update = (
        "INSERT { GRAPH <urn:x> { ?a <urn:q> ?c } } WHERE { GRAPH ?g { ?a <http://example.org/p> "
        "?b . ?c <http://example.org/p> ?d } }"
    )
    killer = threading.Timer(0.5, kill_engine, (store.info_file, info.pid))
    killer.start()
    with pytest.raises(EngineRestarting) as caught:
        store._update(heavy_update)
    killer.join()
    assert caught.value.status == 503 and caught.value.code == "engine_restarting"
    assert caught.value.headers["Retry-After"]
    (row,) = store.query("SELECT (COUNT(*) AS ?n) WHERE { GRAPH <urn:x> { ?s ?p ?o } }")
    assert row["n"].value == "0", "the killed write left nothing behind"


def test_query_past_its_deadline_raises_and_restarts(store: EngineStore) -> None:
    info = store.info
    with pytest.raises(StoreTimeout):
        store.query(HEAVY, union_default=True, timeout=1.0)
    assert store.cancelled == 1
    wait_ready(store.info_file, 10.0, newer_than=info.generation)
    assert _idle(info.pid, 0.3)


# --- rejections ----------------------------------------------------------------------------


def test_engine_binary_that_does_not_exist_is_a_config_error(tmp_path: Path) -> None:
    config = init_node(tmp_path / "node", "EU.EORI.NL000000101", "Engine", free_port())
    edit_config(config, {"store": {"backend": "engine", "engine_binary": "/nonexistent/oxigraph"}})
    with pytest.raises(ConfigError, match="store.engine_binary"):
        load_settings(config)
    edit_config(
        config, {"store": {"backend": "engine", "engine_binary": None, "engine_start_timeout": 0}}
    )
    with pytest.raises(ConfigError, match="engine_start_timeout"):
        load_settings(config)


def test_workers_still_refused_on_the_embedded_store(tmp_path: Path) -> None:
    config = init_node(tmp_path / "node", "EU.EORI.NL000000101", "Embedded", free_port())
    edit_config(config, {"server": {"workers": 2}})
    with pytest.raises(ConfigError, match="'engine'"):
        load_settings(config)


def test_engine_on_a_locked_store_is_a_clear_cli_error(tmp_path: Path) -> None:
    """Another process holds the engine's RocksDB directory: the CLI says so, no traceback."""
    config = init_node(tmp_path / "node", "EU.EORI.NL000000101", "Engine", free_port())
    edit_config(config, {"store": {"backend": "engine", "engine_start_timeout": 5}})
    location = tmp_path / "node" / "data" / "engine"
    location.mkdir(parents=True)
    holder = subprocess.Popen(
        [OXIGRAPH, "serve", "--location", str(location), "--bind", f"127.0.0.1:{free_port()}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.0)
        proc = subprocess.run(
            [DSGO, "datasets", "--config", str(config)],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
        )
    finally:
        holder.terminate()
        holder.wait(timeout=10)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "engine" in proc.stderr


def test_supervisor_with_a_missing_binary_fails_clearly(tmp_path: Path) -> None:
    sup = EngineSupervisor(tmp_path / "e", tmp_path / "engine.json", "/nonexistent/oxigraph")
    with pytest.raises(EngineError, match="cannot start"):
        sup.start()


def test_engine_gone_for_good_is_a_named_503(tmp_path: Path) -> None:
    """No engine comes back (its supervisor stopped): a query is a 503 naming the engine."""
    supervisor = EngineSupervisor(tmp_path / "engine", tmp_path / "engine.json", OXIGRAPH)
    supervisor.start()
    store = EngineStore(
        "http://127.0.0.1:1", tmp_path / "engine.json", timeout=10.0, start_timeout=1.0
    )
    try:
        assert bool(store.query("ASK {}")) is True
        supervisor.stop()
        with pytest.raises(EngineUnavailable) as caught:
            store.query("SELECT * WHERE { ?s ?p ?o }")
        assert caught.value.status == 503 and caught.value.code == "engine_unavailable"
        assert caught.value.headers["Retry-After"]
    finally:
        store.close()
