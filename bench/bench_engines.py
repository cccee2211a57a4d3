"""Benchmark: the node on two external engines, `oxigraph serve` and Virtuoso 7.

The same synthetic buildings (bench/synth.py) go into each engine through `dsgo load`; a node
(`store.backend = "sparql"`) serves each. Two queries are timed through the node, as the
owner with a token, and against the engine directly (a form POST with the dataset's graph as
default-graph-uri, what the node sends), alternating node and engine within each round:

- a point query (one space's properties, rotating over 200 spaces);
- the GROUP BY over every space (spaces and floor area per building).

Ratios are medians of node time over the same engine's own time, measured in this run, plus
Virtuoso's direct time over oxigraph's (which engine the node sits on matters more than the
node). The GROUP BY answers must be equal through both nodes. Virtuoso is started the way the
tests start it (tests/virtuoso.py, free loopback ports, its own database directory).
Run: `python -m bench.bench_engines [--triples N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import synth

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from nodeproc import (  # noqa: E402
    ProcessGroup,
    dsgo,
    edit_config,
    free_port,
    init_node,
    sparql_backend,
    token_for,
)
from virtuoso import ISQL, VIRTUOSO_T, start_virtuoso  # noqa: E402

PARTY = "EU.EORI.NL000000001"
DATA_BASE = "http://127.0.0.1:8101"
RESULTS_JSON = "application/sparql-results+json"
PREFIXES = "PREFIX bot: <https://w3id.org/bot#> PREFIX props: <https://w3id.org/props#> "
GROUP_BY = (
    PREFIXES + "SELECT ?b (COUNT(?space) AS ?spaces) (SUM(?area) AS ?area) WHERE { "
    "?b bot:hasStorey/bot:hasSpace ?space . ?space props:netFloorArea ?area } GROUP BY ?b"
)


def _timed_post(client: httpx.Client, url: str, data: dict[str, str], headers: dict) -> float:
    start = time.perf_counter()
    resp = client.post(url, data=data, headers=headers)
    elapsed = time.perf_counter() - start
    if resp.status_code != 200:
        raise RuntimeError(f"{url}: HTTP {resp.status_code}: {resp.text[:500]}")
    return elapsed


def _rows(resp: httpx.Response) -> list[tuple[str, ...]]:
    doc = resp.json()
    names = doc["head"]["vars"]
    return sorted(tuple(b[v]["value"] for v in names if v in b) for b in doc["results"]["bindings"])


def run(triples: int | None = None, rounds: int = 5, points: int = 100) -> dict[str, Any]:
    """Load the same data into both engines, then time node against engine per query."""
    if not (os.path.exists(VIRTUOSO_T) and os.path.exists(ISQL)):
        return {"error": "Virtuoso is not installed (apt-get install virtuoso-opensource)"}
    triples = triples or int(os.environ.get("BENCH_ENGINES_TRIPLES", 100_000))
    out: dict[str, Any] = {"triples_target": triples}
    with tempfile.TemporaryDirectory(prefix="dsgo-bench-engines-") as tmp:
        work = Path(tmp)
        group = ProcessGroup(work / "logs")
        try:
            summary = synth.generate(work / "synth.nt", DATA_BASE, triples, 42)
            out["triples"] = summary.triples
            rng = random.Random(7)
            spaces = rng.sample(summary.spaces, min(points, len(summary.spaces)))
            engines: dict[str, dict[str, Any]] = {}
            ox = group.oxigraph(work / "oxigraph", free_port())
            virt = start_virtuoso(group, work / "virtuoso", buffers=50_000)
            settings = {
                "oxigraph": {**sparql_backend(ox.base_url), "sparql_engine": "oxigraph"},
                "virtuoso": virt.store_settings(),
            }
            direct = {"oxigraph": f"{ox.base_url}/query", "virtuoso": f"{virt.base_url}/sparql"}
            for name, store in settings.items():
                port = free_port()
                config = init_node(work / name, PARTY, "Bench", port)
                edit_config(config, {"store": {**store, "query_timeout": 120.0}})
                start = time.perf_counter()
                dsgo("load", work / "synth.nt", "--dataset", "bench", "--config", config)
                load_s = time.perf_counter() - start
                proc = group.serve(config, port, name=f"node-{name}")
                engines[name] = {
                    "node": f"{proc.base_url}/sparql",
                    "engine": direct[name],
                    "graph": f"{proc.base_url}/dataset/bench",
                    "auth": {"Authorization": f"Bearer {token_for(config, proc.base_url)}"},
                    "load_s": round(load_s, 2),
                }
            client = httpx.Client(timeout=300.0)
            answers = {}
            for name, e in engines.items():
                resp = client.post(
                    e["node"],
                    data={"query": GROUP_BY},
                    headers={**e["auth"], "Accept": RESULTS_JSON},
                )
                answers[name] = _rows(resp)
            out["group_by_rows"] = len(answers["oxigraph"])
            out["same_answers"] = answers["oxigraph"] == answers["virtuoso"]
            times: dict[str, dict[str, list[float]]] = {
                n: {"point_node": [], "point_engine": [], "group_node": [], "group_engine": []}
                for n in engines
            }
            for _ in range(rounds):
                for name, e in engines.items():
                    t = times[name]
                    node_h = {**e["auth"], "Accept": RESULTS_JSON}
                    eng_h = {"Accept": RESULTS_JSON}
                    for s in spaces:
                        q = f"SELECT ?p ?o WHERE {{ <{s}> ?p ?o }}"
                        t["point_node"].append(_timed_post(client, e["node"], {"query": q}, node_h))
                        t["point_engine"].append(
                            _timed_post(
                                client,
                                e["engine"],
                                {"query": q, "default-graph-uri": e["graph"]},
                                eng_h,
                            )
                        )
                    t["group_node"].append(
                        _timed_post(client, e["node"], {"query": GROUP_BY}, node_h)
                    )
                    t["group_engine"].append(
                        _timed_post(
                            client,
                            e["engine"],
                            {"query": GROUP_BY, "default-graph-uri": e["graph"]},
                            eng_h,
                        )
                    )
            client.close()
            for name, t in times.items():
                med = {k: statistics.median(v) for k, v in t.items()}
                out[name] = {
                    "load_s": engines[name]["load_s"],
                    "point_node_ms": round(med["point_node"] * 1e3, 2),
                    "point_engine_ms": round(med["point_engine"] * 1e3, 2),
                    "point_ratio_node_vs_engine": round(med["point_node"] / med["point_engine"], 2),
                    "group_by_node_ms": round(med["group_node"] * 1e3, 1),
                    "group_by_engine_ms": round(med["group_engine"] * 1e3, 1),
                    "group_by_ratio_node_vs_engine": round(
                        med["group_node"] / med["group_engine"], 2
                    ),
                }
            out["group_by_virtuoso_vs_oxigraph_engine"] = round(
                out["virtuoso"]["group_by_engine_ms"] / out["oxigraph"]["group_by_engine_ms"], 3
            )
            out["group_by_virtuoso_vs_oxigraph_node"] = round(
                out["virtuoso"]["group_by_node_ms"] / out["oxigraph"]["group_by_node_ms"], 3
            )
        finally:
            group.stop_all()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--triples", type=int, default=None)
    args = p.parse_args(argv)
    print(json.dumps(run(args.triples), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
