"""Load test (issue 17): 200 connections for 60 s, the SPARQL / resource GET / catalog mix.

A real node (`dsgo serve`, its default worker count) over the synthetic bench dataset
(bench/synth.py), read by another party with a grant on that dataset (token, policy, audit on
every request). Keep-alive connections send, back to back, a rotation of:

- SPARQL point queries (`SELECT ?p ?o WHERE { <s> ?p ?o }`) over thousands of distinct subjects,
- resource GETs (`/id/...`, Turtle) over the same kind of IRIs,
- authenticated catalog reads (`/catalog`, Turtle),

in the proportions of MIX. Reported: throughput, p50/p99 overall and per kind, the statuses
(5xx must be 0) and the audit entries written during the run against the requests answered
(must be equal: one entry per protected request). The baseline, measured in the same run with
the same client and connections: the node's open `/healthz`, so the throughput is also a ratio. The client stops gracefully: after the
deadline a connection sends nothing more and closes once its last answer is in, so every
request sent is answered and counted. The client is an asyncio/uvloop process of its own
(wrk stops mid-request, which would leave audited requests that no client counted).

`python -m bench.bench_load [--seconds 60 --connections 200 --triples 1000000]`; in
`make bench` (bench/run.py) unless `--skip bench_load`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench import synth
from bench.bench_node import free_port, request_bytes, server, take_response

VENV_BIN = Path(sys.executable).parent
OWNER = "EU.EORI.NL000000195"
READER = "EU.EORI.NL000000196"
DATASET = "synth"
MIX = {"sparql": 9, "resource": 9, "catalog": 2}  # out of 20 requests
SUBJECTS = 6000  # distinct subjects per kind (point queries and resource GETs)
RESULTS_JSON = "application/sparql-results+json"


@dataclass
class _Stats:
    latency: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    sent: int = 0


class _Conn(asyncio.Protocol):
    """A keep-alive connection: one request after another, latency and status per kind."""

    def __init__(
        self, requests: list[tuple[str, bytes]], start: int, stop_at: float, stats: _Stats
    ) -> None:
        self.requests, self.i, self.stop_at, self.stats = requests, start, stop_at, stats
        self.buf = b""
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self._send()

    def _send(self) -> None:
        self.kind, req = self.requests[self.i % len(self.requests)]
        self.i += 1
        self.stats.sent += 1
        self.sent_at = time.perf_counter()
        self.transport.write(req)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        taken = take_response(self.buf)
        if taken is None:
            return
        status, _head, self.buf = taken
        now = time.perf_counter()
        self.stats.latency.setdefault(self.kind, []).append(now - self.sent_at)
        by_status = self.stats.statuses.setdefault(self.kind, {})
        by_status[status] = by_status.get(status, 0) + 1
        if now < self.stop_at:
            self._send()
        else:  # graceful: nothing in flight is left behind
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _drive(
    port: int, requests: list[tuple[str, bytes]], connections: int, seconds: float
) -> tuple[_Stats, float]:
    loop = asyncio.get_running_loop()
    stats = _Stats()
    stop_at = time.perf_counter() + seconds
    step = max(1, len(requests) // connections)
    conns = []
    started = time.perf_counter()
    for c in range(connections):
        _, proto = await loop.create_connection(
            lambda c=c: _Conn(requests, c * step, stop_at, stats), "127.0.0.1", port
        )
        conns.append(proto)
    await asyncio.wait_for(asyncio.gather(*(p.done for p in conns)), seconds + 300)
    return stats, time.perf_counter() - started


def drive(
    port: int, requests: list[tuple[str, bytes]], connections: int, seconds: float
) -> tuple[_Stats, float]:
    """Run the connections (uvloop when installed) and return their stats and the elapsed time."""
    try:
        import uvloop

        return uvloop.run(_drive(port, requests, connections, seconds))
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.run(_drive(port, requests, connections, seconds))


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


def _dsgo(*args: str | Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSGO_")}
    proc = subprocess.run(
        [str(VENV_BIN / "dsgo"), *map(str, args)], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise RuntimeError(f"dsgo {args[0]} failed: {proc.stdout}{proc.stderr}")
    return proc.stdout


def audit_entries(data_dir: Path) -> int:
    """Rows in the node's SQLite audit log (checkpoints are a table of their own)."""
    with sqlite3.connect(data_dir / "audit.sqlite") as conn:
        return conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]


def mix(
    summary: synth.Summary, base: str, port: int, token: str, seed: int = 17
) -> list[tuple[str, bytes]]:
    """The request rotation: MIX's proportions, interleaved, over distinct subjects."""
    rng = random.Random(seed)
    pool = summary.spaces + summary.walls
    subjects = rng.sample(pool, min(SUBJECTS, len(pool)))
    auth = {"Authorization": f"Bearer {token}"}
    sparql = [
        request_bytes(
            "127.0.0.1",
            port,
            "/sparql?query=" + quote(f"SELECT ?p ?o WHERE {{ <{s}> ?p ?o }}", safe=""),
            {**auth, "Accept": RESULTS_JSON},
        )
        for s in subjects
    ]
    rng.shuffle(subjects)
    resources = [
        request_bytes("127.0.0.1", port, s[len(base) :], {**auth, "Accept": "text/turtle"})
        for s in subjects
    ]
    catalog = request_bytes("127.0.0.1", port, "/catalog", {**auth, "Accept": "text/turtle"})
    pattern = [k for k, n in MIX.items() for _ in range(n)]
    rng.shuffle(pattern)
    out: list[tuple[str, bytes]] = []
    si = ri = 0
    while si < len(sparql) or ri < len(resources):
        for kind in pattern:
            if kind == "sparql":
                out.append((kind, sparql[si % len(sparql)]))
                si += 1
            elif kind == "resource":
                out.append((kind, resources[ri % len(resources)]))
                ri += 1
            else:
                out.append((kind, catalog))
    return out


def _nodes(work: Path, port: int) -> tuple[Path, Path]:
    """The owner's node (its own registry) and the reader, registered there with a grant."""
    owner_dir, reader_dir = work / "owner", work / "reader"
    _dsgo("init", owner_dir, "--party-id", OWNER, "--name", "Owner", "--port", str(port))
    reader_port = free_port()
    _dsgo(
        *("init", reader_dir, "--party-id", READER, "--name", "Reader", "--port", str(reader_port)),
        *("--ca", owner_dir / "keys" / "dev-ca"),
        *("--registry-url", f"http://127.0.0.1:{port}", "--registry-id", OWNER),
    )
    owner = owner_dir / "node.toml"
    _dsgo(
        *("registry", "add", "--config", owner, "--party-id", READER, "--name", "Reader"),
        *("--cert", reader_dir / "keys" / "node.cert.pem"),
        *("--capability-url", f"http://127.0.0.1:{reader_port}/capabilities"),
    )
    text = owner.read_text()
    if "[log]" not in text:  # the request log costs the same in every run; keep it out
        owner.write_text(text + "\n[log]\nrequests = false\n")
    return owner, reader_dir / "node.toml"


def _token(reader: Path, base: str) -> str:
    from node.config import load_settings
    from node.runtime import load_identity, trusted_fingerprints
    from trust.client import TrustClient

    settings = load_settings(reader)
    client = TrustClient(load_identity(settings), trusted_fingerprints(settings))
    try:
        return client.get_token(base, OWNER, fresh=True)
    finally:
        client.close()


def run(
    seconds: float = 60.0,
    connections: int = 200,
    triples: int = 1_000_000,
    warmup: float = 5.0,
    seed: int = 42,
) -> dict[str, Any]:
    """Set up, warm up, then one measured run; every figure comes from this run."""
    from node.config import load_settings

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < connections * 2 + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, connections * 2 + 200), hard))
    out: dict[str, Any] = {
        "connections": connections,
        "seconds": seconds,
        "mix_per_20": MIX,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory(prefix="dsgo-bench-load-") as tmp:
        work = Path(tmp)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        owner, reader = _nodes(work, port)
        summary = synth.generate(work / "synth.nt", base, triples, seed)
        out["triples"] = summary.triples
        _dsgo("load", work / "synth.nt", "--dataset", DATASET, "--config", owner)
        _dsgo("policy", "grant", "--config", owner, "--to", READER, "--dataset", DATASET)
        settings = load_settings(owner)
        out["workers"] = settings.workers
        out["query_slots"] = settings.query_slots
        out["max_in_flight"] = settings.bounds.max_in_flight
        data_dir = settings.data_dir
        argv = [str(VENV_BIN / "dsgo"), "serve", "--config", str(owner), "--port", str(port)]
        with server(argv, port, work / "node.log"):
            token = _token(reader, base)
            requests = mix(summary, base, port, token)
            out["distinct_requests"] = len({r for _, r in requests})
            healthz = [("healthz", request_bytes("127.0.0.1", port, "/healthz"))]
            base_stats, base_elapsed = drive(port, healthz, connections, min(10.0, seconds / 4))
            if warmup > 0:
                drive(port, requests, connections, warmup)
            before = audit_entries(data_dir)
            stats, elapsed = drive(port, requests, connections, seconds)
            written = audit_entries(data_dir) - before
        every = [x for values in stats.latency.values() for x in values]
        answered = len(every)
        fivexx = sum(n for by in stats.statuses.values() for s, n in by.items() if s >= 500)
        out.update(
            {
                "elapsed_s": round(elapsed, 2),
                "answered": answered,
                "sent": stats.sent,
                "rps": round(answered / elapsed, 1),
                "baseline_open_healthz_rps": round(
                    len(base_stats.latency.get("healthz", [])) / base_elapsed, 1
                ),
                "p50_ms": _pct(every, 0.50),
                "p99_ms": _pct(every, 0.99),
                "statuses": {
                    kind: {str(s): n for s, n in sorted(by.items())}
                    for kind, by in sorted(stats.statuses.items())
                },
                "per_kind": {
                    kind: {
                        "answered": len(values),
                        "p50_ms": _pct(values, 0.50),
                        "p99_ms": _pct(values, 0.99),
                    }
                    for kind, values in sorted(stats.latency.items())
                },
                "count_5xx": fivexx,
                "audit_entries_written": written,
                "audit_equals_answered": written == answered,
                "ok": fivexx == 0 and written == answered and answered == stats.sent,
            }
        )
    if out["baseline_open_healthz_rps"]:
        out["ratio_vs_open_healthz"] = round(out["rps"] / out["baseline_open_healthz_rps"], 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--triples", type=int, default=1_000_000)
    parser.add_argument("--warmup", type=float, default=5.0)
    args = parser.parse_args(argv)
    result = run(args.seconds, args.connections, args.triples, args.warmup)
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
