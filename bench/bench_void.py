"""Benchmark: serving VoID and the service description from the per-version cache vs a point query.

Federation engines ask for a node's self-description before they plan, often once per query, so
it must cost no more than the cheapest real query. In one run, on the synthetic building dataset
(bench/synth.py) loaded into a real node runtime (embedded store, owner's scope):

- `cold`: the first VoID of the dataset (counts, class and property partitions, coverage);
- `served`: what GET /dataset/{name}/void and GET /sparql do afterwards: the caller's visible
  datasets with their cached statistics, serialised as Turtle (VoID) and as the service
  description;
- `point`: the baseline, a point lookup (`SELECT ?p ?o WHERE { <space> ?p ?o }`) through the
  same enforcement point, its rows read.

Target: served / point <= 1.0 (cached self-description no dearer than a point query).
Run: `python -m bench.bench_void [--triples N]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import synth

TARGET_RATIO = 1.0
OWNER = "EU.EORI.NL000000001"


def run(triples: int = 200_000, requests: int = 200, rounds: int = 5) -> dict[str, Any]:
    """Medians of cold, served and point in one runtime; their ratios."""
    import pyoxigraph as ox

    from node.config import load_settings
    from node.init import init_node
    from node.negotiation import TURTLE, serialise_triples
    from node.runtime import build_runtime
    from node.self_description import service_description, void_document
    from node.void import cached_body, stats_cache, visible, void_iri

    with tempfile.TemporaryDirectory(prefix="bench-void-") as tmp:
        root = Path(tmp)
        config = init_node(
            root / "node",
            party_id=OWNER,
            name="Bench",
            host="127.0.0.1",
            port=8199,
            base_iri="http://127.0.0.1:8199",
            roles=None,
            ca_dir=None,
            key=None,
            cert=None,
            pkcs12=None,
            registry_url=None,
            registry_id=None,
            trust_roots=[],
        )
        settings = load_settings(config)
        data = root / "synth.nt"
        summary = synth.generate(data, settings.base_iri, triples=triples)
        rt = build_runtime(settings)
        try:
            rt.store.replace_dataset("building", data, ox.RdfFormat.N_TRIPLES)
            point_query = f"SELECT ?p ?o WHERE {{ <{summary.spaces[0]}> ?p ?o }}"
            scope = rt.enforcer.scope_for(OWNER)

            start = time.perf_counter()
            (view,) = visible(rt, OWNER)
            cold_ms = (time.perf_counter() - start) * 1000

            iri = void_iri(rt, "building")

            def served() -> None:  # what the two routes do per request
                views = visible(rt, OWNER)
                cached_body(
                    rt,
                    iri,
                    TURTLE,
                    views,
                    lambda: serialise_triples(void_document(rt, views, iri), TURTLE),
                )
                cached_body(
                    rt,
                    "sd",
                    TURTLE,
                    views,
                    lambda: serialise_triples(service_description(rt, views), TURTLE),
                )

            def point() -> None:
                result = rt.enforcer.run_scoped(
                    rt.store, point_query, scope, data_version=rt.store.version()
                )
                rows = list(result)
                assert rows, "the point query found nothing"

            timings: dict[str, list[float]] = {"served": [], "point": []}
            for _ in range(rounds):
                for name, fn in (("served", served), ("point", point)):
                    timings[name].append(_per_call_ms(fn, requests))
            cache = stats_cache(rt)
            hits, misses = cache.hits, cache.misses
        finally:
            rt.close()
    served_ms = statistics.median(timings["served"])
    point_ms = statistics.median(timings["point"])
    ratio = served_ms / point_ms
    return {
        "triples": summary.triples,
        "void": {
            "triples": view.stats.triples,
            "classes": len(view.stats.classes),
            "properties": len(view.stats.properties),
        },
        "cold_ms": round(cold_ms, 1),
        "served_ms": round(served_ms, 3),
        "point_query_ms": round(point_ms, 3),
        "cold_over_served": round(cold_ms / served_ms, 1),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "within_target": ratio <= TARGET_RATIO,
        "cache": {"hits": hits, "misses": misses},
    }


def _per_call_ms(fn: Any, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) * 1000 / n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--triples", type=int, default=200_000)
    args = p.parse_args(argv)
    print(json.dumps(run(args.triples), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
