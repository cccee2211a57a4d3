"""Admission control (issue 17): its cost on the hot path, and what 1,000 connections see.

1. Hot path: the same trivial ASGI endpoint called in-process with and without the `Admission`
   middleware, alternating rounds: the added nanoseconds per request, as a ratio to the trivial
   endpoint (info) and as a share of a protected SPARQL request's median latency measured in
   the same run at 8 connections (target <= 0.02).
2. Overload: a real node (`dsgo serve`, 1 worker) driven by 1,000 keep-alive connections sending
   protected SPARQL point queries back to back (a refused connection waits its Retry-After, as
   the README tells clients to), once with `server.max_in_flight` = 64 and once
   with admission off (a limit no load reaches), same run, alternating. Reported: throughput,
   p50/p99 of the admitted (200) answers, how many were refused (503 + Retry-After) and their
   p99, other statuses (must be 0). Target: admitted p99 < 1 s with admission on; the ratio of
   the admitted p99 against the p99 without admission shows what the bound buys.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.bench_node import free_port, request_bytes, server, take_response

PARTY = "EU.EORI.NL000000190"
CONNECTIONS = 1000
LIMIT = 64


# --- 1. the hot path --------------------------------------------------------------------------


async def _bare(scope: dict, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def hot_path(calls: int = 200_000, rounds: int = 5) -> dict[str, Any]:
    from node.admission import Admission

    admitted = Admission(_bare, limit=256)
    scope = {"type": "http", "path": "/sparql", "method": "GET"}

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        return None

    async def drive(app: Any) -> float:
        start = time.perf_counter()
        for _ in range(calls):
            await app(scope, receive, send)
        return time.perf_counter() - start

    bare_t, adm_t = [], []
    for _ in range(rounds):  # alternating, so drift hits both
        bare_t.append(asyncio.run(drive(_bare)))
        adm_t.append(asyncio.run(drive(admitted)))
    bare, adm = min(bare_t), min(adm_t)
    return {
        "calls": calls,
        "bare_ns_per_call": round(bare / calls * 1e9, 1),
        "admission_ns_per_call": round(adm / calls * 1e9, 1),
        "added_ns_per_request": round((adm - bare) / calls * 1e9, 1),
        "ratio_vs_trivial_endpoint": round(adm / bare, 3),
    }


# --- 2. overload against a real node ------------------------------------------------------------


@dataclass
class _Stats:
    ok: list[float] = field(default_factory=list)
    refused: list[float] = field(default_factory=list)
    other: dict[int, int] = field(default_factory=dict)
    retry_after: int = 0
    count_from: float = 0.0


class _Conn(asyncio.Protocol):
    """A keep-alive connection sending one request after another; latency per status."""

    def __init__(self, request: bytes, stop_at: float, stats: _Stats) -> None:
        self.request, self.stop_at, self.stats = request, stop_at, stats
        self.buf = b""
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self._send()

    def _send(self) -> None:
        self.sent = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            taken = take_response(self.buf)
            if taken is None:
                return
            status, head, self.buf = taken
            now = time.perf_counter()
            latency = now - self.sent
            if self.sent < self.stats.count_from:  # the first second's burst is warm-up
                pass
            elif status == 200:
                self.stats.ok.append(latency)
            elif status == 503:
                self.stats.refused.append(latency)
                self.stats.retry_after += b"retry-after:" in head
            else:
                self.stats.other[status] = self.stats.other.get(status, 0) + 1
            # A well-behaved client waits Retry-After, with jitter so that refused clients do
            # not all come back in the same instant.
            wait = _retry_after(head) * random.uniform(0.5, 1.5) if status == 503 else 0.0
            if now + wait < self.stop_at:
                if wait:  # a well-behaved client comes back when it was told to
                    asyncio.get_running_loop().call_later(wait, self._send)
                else:
                    self._send()
            else:
                self.transport.close()
                return

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


def _retry_after(head: bytes) -> float:
    pos = head.find(b"retry-after:")
    if pos < 0:
        return 0.0
    eol = head.find(b"\r\n", pos)
    return float(head[pos + 12 : eol if eol >= 0 else len(head)].strip() or 0)


async def _drive(port: int, request: bytes, connections: int, seconds: float) -> _Stats:
    loop = asyncio.get_running_loop()
    stats = _Stats(count_from=time.perf_counter() + min(1.0, seconds / 4))
    stop_at = time.perf_counter() + seconds
    conns = []
    for _ in range(connections):
        _, proto = await loop.create_connection(
            lambda: _Conn(request, stop_at, stats), "127.0.0.1", port
        )
        conns.append(proto)
    await asyncio.wait_for(asyncio.gather(*(c.done for c in conns)), seconds + 120)
    return stats


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


def _row(stats: _Stats, seconds: float) -> dict[str, Any]:
    counted = seconds - min(1.0, seconds / 4)
    return {
        "admitted_rps": round(len(stats.ok) / counted, 1),
        "admitted_p50_ms": _pct(stats.ok, 0.50),
        "admitted_p99_ms": _pct(stats.ok, 0.99),
        "refused_503": len(stats.refused),
        "refused_with_retry_after": stats.retry_after,
        "refused_p99_ms": _pct(stats.refused, 0.99),
        "other_statuses": stats.other,
    }


def _node(root: Path, limit: int) -> tuple[Path, int]:
    import subprocess
    import sys

    port = free_port()
    dsgo = str(Path(sys.executable).parent / "dsgo")
    subprocess.run(
        [dsgo, "init", str(root), "--party-id", PARTY, "--name", "Bench", "--port", str(port)],
        check=True,
        capture_output=True,
    )
    config = root / "node.toml"
    text = config.read_text()
    text = text.replace("[server]", f"[server]\nmax_in_flight = {limit}", 1)
    if "[log]" not in text:
        text += "\n[log]\nrequests = false\n"
    config.write_text(text)
    return config, port


def run_overload(
    seconds: float = 10.0, connections: int = CONNECTIONS, limit: int = LIMIT
) -> dict[str, Any]:
    import resource
    import sys

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < connections + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, connections * 2 + 200), hard))
    out: dict[str, Any] = {
        "connections": connections,
        "seconds": seconds,
        "limit": limit,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory(prefix="bench-admission-") as tmp:
        for name, cap in (("with_admission", limit), ("without_admission", 1_000_000)):
            config, port = _node(Path(tmp) / name, cap)
            dsgo = str(Path(sys.executable).parent / "dsgo")
            argv = [dsgo, "serve", "--config", str(config), "--port", str(port)]
            with server(argv, port, Path(tmp) / f"{name}.log"):
                token = _token(config, port)
                query = quote("SELECT * WHERE { <urn:x> ?p ?o } LIMIT 5")
                request = request_bytes(
                    "127.0.0.1",
                    port,
                    f"/sparql?query={query}",
                    {
                        "Authorization": f"Bearer {token}",
                        "Accept": "application/sparql-results+json",
                    },
                )
                light = asyncio.run(_drive(port, request, 8, 2.0))  # warm-up, and the baseline
                stats = asyncio.run(_drive(port, request, connections, seconds))
                out[name] = _row(stats, seconds)
                out[name]["light_load_8_connections_p50_ms"] = _pct(light.ok, 0.50)
    with_p99 = out["with_admission"]["admitted_p99_ms"]
    without_p99 = out["without_admission"]["admitted_p99_ms"]
    if with_p99 and without_p99:
        out["ratio_admitted_p99_vs_without"] = round(with_p99 / without_p99, 3)
    out["admitted_p99_under_1s"] = bool(with_p99 is not None and with_p99 < 1000)
    return out


def _token(config: Path, port: int) -> str:
    from node.config import load_settings
    from node.runtime import load_identity, trusted_fingerprints
    from trust.client import TrustClient

    settings = load_settings(config)
    client = TrustClient(load_identity(settings), trusted_fingerprints(settings))
    try:
        return client.get_token(f"http://127.0.0.1:{port}", fresh=True)
    finally:
        client.close()


def run(
    seconds: float = 10.0, connections: int = CONNECTIONS, limit: int = LIMIT
) -> dict[str, Any]:
    """Both parts; the hot-path cost is also put against a protected request of the same run."""
    hot = hot_path()
    over = run_overload(seconds, connections, limit)
    p50 = over.get("with_admission", {}).get("light_load_8_connections_p50_ms")
    if p50:
        hot["share_of_protected_request"] = round(hot["added_ns_per_request"] / (p50 * 1e6), 5)
        hot["target_share"] = 0.02
    return {"hot_path": hot, "overload": over}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--limit", type=int, default=LIMIT, help="server.max_in_flight")
    args = parser.parse_args(argv)
    result = run(args.seconds, args.connections, args.limit)
    import json

    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
