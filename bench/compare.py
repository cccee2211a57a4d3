"""Two checkouts of dsgo-node, measured alternately: did a change make the node slower?

`make bench` reports ratios against a baseline measured in the same run, but on a shared or
virtual machine one burst of load from elsewhere during the baseline moves every ratio by 20% or
more. This runs the same HTTP measurements as bench_node (a bare FastAPI endpoint; protected
resource GETs in Turtle and JSON-LD; the open /healthz; the point-lookup and property-path SPARQL
queries; the protected GET with the SQLite audit log against a no-op writer) for each checkout in
turn, in rounds whose order alternates, and reports medians: req/s, the ratio to the bare
endpoint of the same round, the server's CPU time per request (user + system, from /proc), which
moves much less with outside load than throughput does, and each query's HTTP overhead (one
connection, HTTP and in-process timed back to back) with make bench's HTTP / in-process ratio.

    python -m bench.compare --base ../old-checkout --head . --rounds 5

Each checkout gets its own node directory and store (the same synthetic data), is started with
its own code on PYTHONPATH, and is measured as its owner with the same token flow.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench import bench_node as bn
from bench import synth

QUERIES = ("point_lookup", "property_path")
MEDIA = (("turtle", "text/turtle"), ("jsonld", "application/ld+json"))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _latency(
    port: int, reqs: list[bytes], store_dir: Path, base: str, texts: list[str]
) -> bn.Paired:
    """One query over HTTP and in-process on the running node's own store, timed in pairs."""
    import pyoxigraph as ox

    ro = ox.Store.read_only(str(store_dir))
    graphs = sorted(
        row["p"].value
        for row in ro.query(
            "SELECT ?g ?p WHERE { GRAPH <urn:dsgo:meta> { ?g <urn:dsgo:physical> ?p } }"
        )
        if row["g"].value.startswith(f"{base}/dataset/")
    )
    bn.paired(port, reqs, ro, graphs, texts, 0.2)  # warm both
    result = bn.paired(port, reqs, ro, graphs, texts, 2.0)
    del ro
    return result


def run(
    checkouts: dict[str, Path],
    rounds: int = 5,
    triples: int = 200_000,
    seconds: float = 3.0,
    connections: int = 8,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Every checkout, `rounds` times, alternating; medians per measurement."""
    from node.config import load_settings
    from node.runtime import load_identity, trusted_fingerprints
    from trust.client import TrustClient

    samples: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="dsgo-bench-compare-", dir=workdir) as tmp:
        work = Path(tmp)
        log = work / "servers.log"
        port = bn.free_port()
        base = f"http://127.0.0.1:{port}"
        summary = synth.generate(work / "synth.nt", base, triples, 42)
        for name, root in checkouts.items():
            os.environ["PYTHONPATH"] = str(root)
            print(f"compare: {name}: init and load {summary.triples} triples", file=sys.stderr)
            bn._dsgo("init", work / name, "--party-id", bn.PARTY, "--name", name, "--port", port)
            bn._dsgo(
                "load",
                work / "synth.nt",
                "--dataset",
                bn.DATASET,
                "--config",
                work / name / "node.toml",
            )
        rng = random.Random(42)
        iris = rng.sample(summary.spaces, min(1000, len(summary.spaces)))
        iris += rng.sample(summary.walls, min(1000, len(summary.walls)))
        rng.shuffle(iris)
        texts = bn.queries(summary)

        def get(path: str, headers: dict[str, str] | None = None) -> bytes:
            return bn.request_bytes("127.0.0.1", port, path, headers)

        def measure(key: str, pid: int, reqs: list[bytes]) -> None:
            bn.load(port, reqs, connections, 0.5)
            before = _cpu_seconds(pid)
            result = bn.load(port, reqs, connections, seconds, warmup=0.0)
            cpu = _cpu_seconds(pid) - before
            samples.setdefault(f"{key}_rps", []).append(result.rps)
            samples.setdefault(f"{key}_cpu_us", []).append(1e6 * cpu / max(result.requests, 1))

        names = list(checkouts)
        for r in range(rounds):
            os.environ["PYTHONPATH"] = str(next(iter(checkouts.values())))
            with bn.server(bn._launcher("serve-bare", "--port", str(port)), port, log):
                samples.setdefault("bare_rps", []).append(
                    bn.load(port, [get("/fixed")], connections, seconds).rps
                )
            for name in names if r % 2 == 0 else names[::-1]:
                os.environ["PYTHONPATH"] = str(checkouts[name])
                config = work / name / "node.toml"
                settings = load_settings(config)
                client = TrustClient(load_identity(settings), trusted_fingerprints(settings))
                argv = [str(bn.VENV_BIN / "dsgo"), "serve", "--config", str(config)]
                with bn.server(argv, port, log) as proc:
                    auth = {
                        "Authorization": f"Bearer {client.get_token(base, bn.PARTY, fresh=True)}"
                    }
                    bn._await_warm_up(base, auth)
                    measure(f"{name}_healthz", proc.pid, [get("/healthz")])
                    for media, accept in MEDIA:
                        reqs = [get(i[len(base) :], {**auth, "Accept": accept}) for i in iris]
                        bn.prime(port, reqs, connections)
                        measure(f"{name}_{media}", proc.pid, reqs)
                    for q in QUERIES:
                        reqs = [
                            get(
                                "/sparql?query=" + quote(t, safe=""),
                                {**auth, "Accept": bn.RESULTS_JSON},
                            )
                            for t in texts[q]
                        ]
                        measure(f"{name}_{q}", proc.pid, reqs)
                        paired = _latency(port, reqs, settings.store_dir, base, texts[q])
                        samples.setdefault(f"{name}_{q}_overhead_ms", []).append(paired.overhead_ms)
                        samples.setdefault(f"{name}_{q}_http_over_inprocess", []).append(
                            paired.ratio
                        )
                    audit_reqs = [
                        get(i[len(base) :], {**auth, "Accept": "text/turtle"}) for i in iris
                    ]
                client.close()
                for mode in ("sqlite", "null"):
                    launcher = [sys.executable, "-m", "bench.bench_node", "serve-app"]
                    launcher += ["--config", str(config), "--port", str(port), "--audit", mode]
                    with bn.server(launcher, port, log, cwd=checkouts[name]) as proc:
                        bn.prime(port, audit_reqs, connections)
                        measure(f"{name}_audit_{mode}", proc.pid, audit_reqs)
            print(f"compare: round {r + 1}/{rounds} done", file=sys.stderr)
    med = {k: statistics.median(v) for k, v in samples.items()}
    out: dict[str, Any] = {"rounds": rounds, "bare_rps": round(med["bare_rps"], 1)}
    for name in names:
        out[name] = {
            m: {
                "rps": round(med[f"{name}_{m}_rps"], 1),
                "vs_bare": round(med[f"{name}_{m}_rps"] / med["bare_rps"], 3),
                "cpu_us_per_request": round(med[f"{name}_{m}_cpu_us"]),
            }
            for m in ["healthz", *(k for k, _ in MEDIA), *QUERIES]
        }
        out[name]["turtle_vs_healthz"] = round(
            med[f"{name}_turtle_rps"] / med[f"{name}_healthz_rps"], 3
        )
        out[name]["audit_sqlite_vs_noop"] = round(
            statistics.median(
                a / b
                for a, b in zip(
                    samples[f"{name}_audit_sqlite_rps"],
                    samples[f"{name}_audit_null_rps"],
                    strict=True,
                )
            ),
            3,
        )
        out[name]["http_overhead_ms"] = {
            q: round(med[f"{name}_{q}_overhead_ms"], 3) for q in QUERIES
        }
        # make bench's SPARQL ratio: median HTTP latency / median in-process latency
        out[name]["http_over_inprocess"] = {
            q: round(med[f"{name}_{q}_http_over_inprocess"], 3) for q in QUERIES
        }
    first, *others = names
    for name in others:
        out[f"{name}_over_{first}"] = {
            m: {
                "rps": round(out[name][m]["rps"] / out[first][m]["rps"], 3),
                "cpu_per_request": round(
                    out[name][m]["cpu_us_per_request"] / out[first][m]["cpu_us_per_request"], 3
                ),
            }
            for m in out[first]
            if isinstance(out[first][m], dict) and "rps" in out[first][m]
        }
        out[f"{name}_over_{first}"]["audit_sqlite_vs_noop"] = round(
            out[name]["audit_sqlite_vs_noop"] / out[first]["audit_sqlite_vs_noop"], 3
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--base", type=Path, required=True, help="the checkout to compare against")
    p.add_argument("--head", type=Path, default=Path("."), help="the checkout measured (default .)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--triples", type=int, default=200_000)
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args(argv)
    for path in (args.base, args.head):
        if not (path / "node" / "app.py").is_file():
            print(f"compare: {path} is not a dsgo-node checkout", file=sys.stderr)
            return 2
    checkouts = {"base": args.base.resolve(), "head": args.head.resolve()}
    result = run(checkouts, args.rounds, args.triples, args.seconds)
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
