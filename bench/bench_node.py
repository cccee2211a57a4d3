"""HTTP benchmark of a real node over the synthetic dataset, with same-run baselines.

Resource GET and SPARQL through HTTP vs in-process pyoxigraph, vs a bare FastAPI endpoint, and
protected GET with the SQLite audit log vs a no-op audit writer (a benchmark-only launcher).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from bench import synth

VENV_BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
PARTY = "EU.EORI.NL000000101"
DATASET = "synth"
FIXED = b"@prefix bot: <https://w3id.org/bot#> .\n" + b"# fixed payload\n" * 60
PREFIXES = (
    "PREFIX bot: <https://w3id.org/bot#> PREFIX props: <https://w3id.org/props#> "
    "PREFIX sosa: <http://www.w3.org/ns/sosa/> "
)
RESULTS_JSON = "application/sparql-results+json"


# --- load generator ---------------------------------------------------------------------------


@dataclass
class Load:
    """One measurement: completed responses per second and per-request latency."""

    rps: float
    median_ms: float
    mean_ms: float
    requests: int
    errors: int
    connections: int
    seconds: float

    def row(self) -> dict[str, Any]:
        return {
            "rps": round(self.rps, 1),
            "median_ms": round(self.median_ms, 3),
            "mean_ms": round(self.mean_ms, 3),
            "requests": self.requests,
            "errors": self.errors,
            "connections": self.connections,
        }


@dataclass
class _Stats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


class _Conn(asyncio.Protocol):
    """One keep-alive connection sending requests back to back, parsing just enough HTTP/1.1."""

    def __init__(self, requests: list[bytes], start: int, stop_at: float, stats: _Stats):
        self.requests, self.i, self.stop_at, self.stats = requests, start, stop_at, stats
        self.buf = b""
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        req = self.requests[self.i % len(self.requests)]
        self.i += 1
        self.sent = time.perf_counter()
        self.transport.write(req)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].lower()
        length = content_length(head)
        if length is not None:
            if len(self.buf) < end + 4 + length:
                return
            rest = self.buf[end + 4 + length :]
        elif b"transfer-encoding: chunked" in head:
            tail = self.buf.find(b"\r\n0\r\n\r\n", end)
            if tail < 0 and not self.buf[end + 4 :].startswith(b"0\r\n\r\n"):
                return
            rest = b""
        else:
            rest = b""
        now = time.perf_counter()
        status = int(head[9:12])
        self.stats.statuses[status] = self.stats.statuses.get(status, 0) + 1
        if status >= 400:
            self.stats.errors += 1
        self.stats.latencies.append(now - self.sent)
        self.buf = rest
        if now < self.stop_at:
            self._send()
        else:
            self.transport.close()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


def content_length(head: bytes) -> int | None:
    """The Content-Length of a lower-cased response head (status line and headers), or None."""
    pos = head.find(b"content-length:")
    if pos < 0:
        return None
    eol = head.find(b"\r\n", pos)
    return int(head[pos + 15 : eol if eol >= 0 else len(head)])


def take_response(buf: bytes) -> tuple[int, bytes, bytes] | None:
    """(status, lower-cased head, what follows) once `buf` holds a whole Content-Length
    response; None before."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].lower()
    length = content_length(head)
    if length is None:
        raise RuntimeError("the benchmark needs responses with a Content-Length")
    if len(buf) < end + 4 + length:
        return None
    return int(head[9:12]), head, buf[end + 4 + length :]


def request_bytes(host: str, port: int, path: str, headers: dict[str, str] | None = None) -> bytes:
    """A keep-alive GET request, serialised once."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _load(
    host: str, port: int, requests: list[bytes], connections: int, seconds: float
) -> Load:
    loop = asyncio.get_running_loop()
    stats = _Stats()
    start = time.perf_counter()
    stop_at = start + seconds
    step = max(1, len(requests) // connections)
    conns = []
    for c in range(connections):
        _, proto = await loop.create_connection(
            lambda c=c: _Conn(requests, c * step, stop_at, stats), host, port
        )
        conns.append(proto)
    await asyncio.wait_for(asyncio.gather(*(p.done for p in conns)), seconds + 120)
    elapsed = time.perf_counter() - start
    lat = stats.latencies or [0.0]
    return Load(
        rps=len(stats.latencies) / elapsed,
        median_ms=statistics.median(lat) * 1000,
        mean_ms=statistics.fmean(lat) * 1000,
        requests=len(stats.latencies),
        errors=stats.errors,
        connections=connections,
        seconds=elapsed,
    )


def load(
    port: int,
    requests: list[bytes],
    connections: int = 8,
    seconds: float = 3.0,
    warmup: float = 0.5,
) -> Load:
    """Drive `requests` (rotating) over keep-alive connections; a short warm-up is discarded."""
    try:
        import uvloop

        runner: Callable[[Any], Any] = uvloop.run
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        runner = asyncio.run
    if warmup > 0:
        runner(_load("127.0.0.1", port, requests, connections, warmup))
    result = runner(_load("127.0.0.1", port, requests, connections, seconds))
    if result.errors:
        raise RuntimeError(f"{result.errors} error responses of {result.requests} during the load")
    return result


def prime(port: int, requests: list[bytes], connections: int) -> None:
    """Send every request once (warms the store's caches for the IRIs a measurement rotates over)."""
    per = -(-len(requests) // connections)
    chunks = [requests[i : i + per] for i in range(0, len(requests), per)]

    async def go() -> None:
        async def one(chunk: list[bytes]) -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for req in chunk:
                writer.write(req)
                head = await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(content_length(head[:-4].lower()) or 0)
            writer.close()

        await asyncio.gather(*(one(c) for c in chunks))

    asyncio.run(go())


# --- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DSGO_")}


@contextmanager
def server(
    args: list[str], port: int, log: Path, cwd: Path = ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server process, wait for GET /healthz (any answer), stop it (SIGINT) afterwards.

    `cwd` comes first on a `python -m` server's path: the checkout whose code it runs."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=out, env=_env(), cwd=cwd)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _launcher(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench.bench_node", *args]


def serve_app(config: Path, port: int, audit: str) -> None:
    """Benchmark-only launcher: the node app in-process, its audit writer kept or made a no-op."""
    from node.app import create_app
    from node.config import load_settings
    from node.runtime import build_runtime

    settings = load_settings(config)
    runtime = build_runtime(settings)
    if audit == "null":
        _null_audit(runtime)
    _uvicorn(create_app(settings, runtime), port)


def _null_audit(runtime: Any) -> None:
    """Replace the runtime's audit log (and the enforcer's decision hook) with a no-op writer."""
    from node.enforcement import decision_event
    from trust.audit import AuditLog
    from trust.audit_store import NullAuditStore

    null = AuditLog(NullAuditStore())
    runtime.audit = null

    def on_decision(decision: Any) -> None:
        null.append(decision_event(decision))

    runtime.enforcer.on_decision = on_decision


def serve_bare(port: int) -> None:
    """The baseline: a bare FastAPI endpoint returning fixed bytes (plus /healthz for start-up)."""
    from fastapi import FastAPI
    from fastapi.responses import Response

    app = FastAPI()

    @app.get("/fixed")
    async def fixed() -> Response:
        return Response(FIXED, media_type="text/turtle")

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b"ok")

    _uvicorn(app, port)


def _uvicorn(app: Any, port: int) -> None:
    """Serve like `dsgo serve`: uvloop, httptools, 1 worker, no access log."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        workers=1,
        access_log=False,
        log_level="warning",
    )
    uvicorn.Server(config).run()


# --- the benchmark ----------------------------------------------------------------------------


def queries(summary: synth.Summary, n: int = 200, seed: int = 7) -> dict[str, list[str]]:
    """Five representative queries, each as rotating variants over the generated IRIs."""
    rng = random.Random(seed)
    spaces = rng.sample(summary.spaces, min(n, len(summary.spaces)))
    buildings = [rng.choice(summary.buildings) for _ in range(min(n, 50))]
    return {
        "point_lookup": [f"SELECT ?p ?o WHERE {{ <{s}> ?p ?o }}" for s in spaces],
        "building_topology": [
            PREFIXES + "SELECT ?storey ?space ?wall WHERE { "
            f"<{b}> bot:hasStorey ?storey . ?storey bot:hasSpace ?space . "
            "?space bot:adjacentElement ?wall }"
            for b in buildings
        ],
        "property_path": [
            PREFIXES + "SELECT ?obs ?v WHERE { "
            f"<{b}> bot:hasStorey/bot:hasSpace/bot:containsElement/^sosa:madeBySensor ?obs . "
            "?obs sosa:hasSimpleResult ?v }"
            for b in buildings
        ],
        "group_by_all_spaces": [
            PREFIXES + "SELECT ?b (COUNT(?space) AS ?spaces) (SUM(?area) AS ?area) WHERE { "
            "?b bot:hasStorey/bot:hasSpace ?space . ?space props:netFloorArea ?area } GROUP BY ?b"
        ],
        "filter_range": [
            PREFIXES + "SELECT ?space ?area WHERE { ?space a bot:Space ; props:netFloorArea ?area "
            f". FILTER(?area >= {lo} && ?area < {lo + 1}) }}"
            for lo in range(6, 79, 3)
        ],
    }


@dataclass
class Paired:
    """The same query over HTTP and in-process, one of each in turn."""

    http_median_ms: float
    inprocess_median_ms: float
    pair_ratio_median: float  # median over the pairs of HTTP time / in-process time
    overhead_ms: float  # median over the pairs of HTTP time - in-process time
    pairs: int

    @property
    def ratio(self) -> float:
        """Median HTTP latency / median in-process latency (the target's ratio)."""
        return self.http_median_ms / max(self.inprocess_median_ms, 1e-9)


def paired(
    port: int,
    requests: list[bytes],
    store: Any,
    graphs: list[str],
    texts: list[str],
    seconds: float,
) -> Paired:
    """Time each query over HTTP and in-process back to back, in rotation, for `seconds`.

    Each pair runs under the same machine conditions: on a shared VM speed drifts between
    phases of a second or more, which separate runs would each catch on their own.
    """
    import pyoxigraph as ox

    nodes = [ox.NamedNode(g) for g in graphs]
    http_s: list[float] = []
    inp_s: list[float] = []
    deadline = time.perf_counter() + seconds
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def over_http(i: int) -> None:
            t0 = time.perf_counter()
            sock.sendall(requests[i % len(requests)])
            status, _ = _read_response(sock)
            http_s.append(time.perf_counter() - t0)
            if status != 200:
                raise RuntimeError(f"HTTP {status} for {texts[i % len(texts)]}")

        def in_process(i: int) -> None:
            t0 = time.perf_counter()
            result = store.query(texts[i % len(texts)], default_graph=nodes, named_graphs=nodes)
            for solution in result:
                for _term in solution:
                    pass
            inp_s.append(time.perf_counter() - t0)

        i = 0
        while i < len(texts) or time.perf_counter() < deadline:
            # whichever runs second finds the OS and CPU caches warmed by the first: take turns
            first, second = (over_http, in_process) if i % 2 == 0 else (in_process, over_http)
            first(i)
            second(i)
            i += 1
    return Paired(
        http_median_ms=statistics.median(http_s) * 1000,
        inprocess_median_ms=statistics.median(inp_s) * 1000,
        pair_ratio_median=statistics.median(h / i for h, i in zip(http_s, inp_s, strict=True)),
        overhead_ms=statistics.median(h - i for h, i in zip(http_s, inp_s, strict=True)) * 1000,
        pairs=len(http_s),
    )


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 response with a Content-Length, in as few reads as can be."""
    data = sock.recv(1 << 20)
    while (end := data.find(b"\r\n\r\n")) < 0:
        data += _recv(sock)
    head = data[:end].lower()
    length = content_length(head)
    if length is None:
        raise RuntimeError(f"response without Content-Length: {head[:200]!r}")
    body = data[end + 4 :]
    while len(body) < length:
        body += _recv(sock)
    return int(head[9:12]), body


def _recv(sock: socket.socket) -> bytes:
    chunk = sock.recv(1 << 20)
    if not chunk:
        raise RuntimeError("the server closed the connection mid-response")
    return chunk


def _audit_rows(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "audit.sqlite") as conn:
        return conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]


def run(
    triples: int = 1_000_000,
    seconds: float = 3.0,
    connections: int = 8,
    seed: int = 42,
    workdir: Path | None = None,
    audit_runs: int = 2,
) -> dict[str, Any]:
    """The whole node benchmark in one run; every ratio is against a baseline measured here.

    `audit_runs`: how many times each audit writer is started and measured (the best counts)."""
    from node.config import load_settings
    from node.runtime import load_identity, trusted_fingerprints
    from trust.client import TrustClient

    out: dict[str, Any] = {"triples_target": triples, "seconds_per_measurement": seconds}
    with tempfile.TemporaryDirectory(prefix="dsgo-bench-node-", dir=workdir) as tmp:
        work = Path(tmp)
        log = work / "servers.log"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        node_dir = work / "node"
        _dsgo("init", node_dir, "--party-id", PARTY, "--name", "Bench", "--port", str(port))
        config = node_dir / "node.toml"

        t0 = time.perf_counter()
        summary = synth.generate(work / "synth.nt", base, triples, seed)
        out["generate_s"] = round(time.perf_counter() - t0, 2)
        out["triples"] = summary.triples
        t0 = time.perf_counter()
        _dsgo("load", work / "synth.nt", "--dataset", DATASET, "--config", config)
        out["dsgo_load_s"] = round(time.perf_counter() - t0, 2)

        rng = random.Random(seed)
        iris = rng.sample(summary.spaces, min(1000, len(summary.spaces)))
        iris += rng.sample(summary.walls, min(1000, len(summary.walls)))
        rng.shuffle(iris)
        texts = queries(summary)

        def get(path: str, headers: dict[str, str] | None = None) -> bytes:
            return request_bytes("127.0.0.1", port, path, headers)

        # (d) baseline: bare FastAPI endpoint, same uvicorn settings
        with server(_launcher("serve-bare", "--port", str(port)), port, log):
            bare = load(port, [get("/fixed")], connections, seconds)
        out["bare_fastapi"] = bare.row()

        settings = load_settings(config)
        client = TrustClient(load_identity(settings), trusted_fingerprints(settings))
        http: dict[str, Any] = {}
        with server([str(VENV_BIN / "dsgo"), "serve", "--config", str(config)], port, log):
            token = client.get_token(base, PARTY)
            auth = {"Authorization": f"Bearer {token}"}
            out["warm_up_s"] = _await_warm_up(base, auth)
            http["open_get_healthz"] = load(port, [get("/healthz")], connections, seconds).row()
            for name, accept in (("turtle", "text/turtle"), ("jsonld", "application/ld+json")):
                reqs = [get(i[len(base) :], {**auth, "Accept": accept}) for i in iris]
                prime(port, reqs, connections)
                http[f"resource_get_{name}"] = load(port, reqs, connections, seconds).row()
            # (b) in-process on the same on-disk store, opened read-only beside the running node,
            # interleaved with the HTTP latency runs so load from other processes hits both alike
            import pyoxigraph as ox

            ro = ox.Store.read_only(str(settings.store_dir))
            # Datasets live in versioned physical graphs (node/store/oxigraph.py): query those,
            # as the node does, not the stable dataset IRIs (which hold no quads).
            graphs = sorted(
                row["p"].value
                for row in ro.query(
                    "SELECT ?g ?p WHERE { GRAPH <urn:dsgo:meta> { ?g <urn:dsgo:physical> ?p } }"
                )
                if row["g"].value.startswith(f"{base}/dataset/")
            )
            sparql: dict[str, Any] = {}
            for name, variants in texts.items():
                reqs = [
                    get("/sparql?query=" + quote(q, safe=""), {**auth, "Accept": RESULTS_JSON})
                    for q in variants
                ]
                throughput = load(port, reqs, connections, seconds)
                paired(port, reqs, ro, graphs, variants, 0.2)  # warm both
                latency = paired(port, reqs, ro, graphs, variants, seconds)
                sparql[name] = {
                    "rps": round(throughput.rps, 1),
                    "http_median_ms": round(latency.http_median_ms, 3),
                    "inprocess_median_ms": round(latency.inprocess_median_ms, 3),
                    "ratio_http_over_inprocess": round(latency.ratio, 3),
                    "pair_ratio_median": round(latency.pair_ratio_median, 3),
                    "http_overhead_ms": round(latency.overhead_ms, 3),
                    "pairs": latency.pairs,
                    "target_applies": latency.inprocess_median_ms >= 10.0,
                }
            del ro
        out["sparql"] = sparql
        out["http"] = http

        # audit: protected GET with the SQLite audit log vs a no-op writer (benchmark launcher)
        reqs = [get(i[len(base) :], {**auth, "Accept": "text/turtle"}) for i in iris]
        audit: dict[str, list[float]] = {"sqlite": [], "null": []}
        for _ in range(audit_runs):
            for mode in ("sqlite", "null"):
                before = _audit_rows(node_dir / "data")
                args = _launcher("serve-app", "--config", str(config), "--port", str(port))
                with server([*args, "--audit", mode], port, log):
                    prime(port, reqs, connections)
                    audit[mode].append(load(port, reqs, connections, seconds).rps)
                grew = _audit_rows(node_dir / "data") - before
                if (mode == "null") != (grew == 0):
                    raise RuntimeError(f"audit mode {mode}: {grew} rows written")
        sqlite_rps, null_rps = max(audit["sqlite"]), max(audit["null"])
        out["audit_http"] = {
            "protected_get_sqlite_rps": round(sqlite_rps, 1),
            "protected_get_noop_rps": round(null_rps, 1),
            "ratio": round(sqlite_rps / null_rps, 3),
            "target_ratio": 0.8,
            "runs_each": len(audit["sqlite"]),
        }

        ttl = http["resource_get_turtle"]["rps"]
        out["ratios"] = {
            "resource_get_turtle_vs_bare": round(ttl / bare.rps, 3),
            "resource_get_jsonld_vs_bare": round(http["resource_get_jsonld"]["rps"] / bare.rps, 3),
            "protected_get_vs_open_healthz": round(ttl / http["open_get_healthz"]["rps"], 3),
        }
    return out


def _await_warm_up(base: str, auth: dict[str, str]) -> float:
    """Wait for the work a new dataset version starts (node.service.warm: merge plans, VoID
    numbers) so that it does not take a core from the measurements: the figures are the steady
    state. The VoID request waits for those numbers; the seconds it took are reported."""
    import httpx

    t0 = time.perf_counter()
    httpx.get(f"{base}/.well-known/void", headers=auth, timeout=600)
    return round(time.perf_counter() - t0, 2)


def _dsgo(*args: str | Path) -> None:
    proc = subprocess.run(
        [str(VENV_BIN / "dsgo"), *map(str, args)], capture_output=True, text=True, env=_env()
    )
    if proc.returncode != 0:
        raise RuntimeError(f"dsgo {args[0]} failed: {proc.stdout}{proc.stderr}")


def main(argv: list[str] | None = None) -> int:
    """Launchers for the server processes (`serve-app`, `serve-bare`) and a standalone run."""
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd")
    a = sub.add_parser("serve-app")
    a.add_argument("--config", type=Path, required=True)
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--audit", choices=["sqlite", "null"], default="sqlite")
    b = sub.add_parser("serve-bare")
    b.add_argument("--port", type=int, required=True)
    r = sub.add_parser("run")
    r.add_argument("--triples", type=int, default=1_000_000)
    r.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args(argv)
    if args.cmd == "serve-app":
        serve_app(args.config, args.port, args.audit)
    elif args.cmd == "serve-bare":
        serve_bare(args.port)
    else:
        import json

        triples = getattr(args, "triples", 1_000_000)
        print(json.dumps(run(triples, getattr(args, "seconds", 3.0)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
