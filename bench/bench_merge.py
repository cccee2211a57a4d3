"""Benchmark: the cost of the RDF merge for a default graph that spans several datasets.

One embedded store (RocksDB, on disk) holds three synthetic datasets of N triples each:
`a`, `b` (other buildings, shares no triple with `a`) and `copy` (the file of `a` loaded again:
every IRI triple shared, its blank nodes its own). Through `node.enforcement.scoped_query`,
as the node runs every SPARQL query, a point query (one space, ~10 rows, rotating over 200
spaces) and an aggregate (spaces and area per building) are timed over:

- `{a}`: one dataset, the fast path (baseline);
- `{a, b}`: two disjoint datasets (the engine gets both graphs as they are);
- `{a, copy}`: two overlapping datasets (the largest plus the hidden rest graph);
- `{a}` as the node ran it before the planner existed (`single_before`: the no-extra-cost check);
- the engine alone over `{a}` (what the fast path costs on top of pyoxigraph), over `{a, b}`
  (the planner's own cost) and over `{a, copy}` as its bag union (same data, doubled answer).

Rounds alternate the scopes; ratios are medians against `{a}` in the same run. The one-off
costs (checking a pair of dataset versions, building the rest graph) are timed separately.
Run: `python -m bench.bench_merge [--triples N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import synth
from node.enforcement import scoped_query
from node.store import OxigraphStore, format_for
from node.store.merge import MergePlanner
from trust.delegation import Scope

BASE = "http://127.0.0.1:8101"
PREFIXES = "PREFIX bot: <https://w3id.org/bot#> PREFIX props: <https://w3id.org/props#> "
AGGREGATE = (
    PREFIXES + "SELECT ?b (COUNT(?space) AS ?spaces) (SUM(?area) AS ?area) WHERE { "
    "?b bot:hasStorey/bot:hasSpace ?space . ?space props:netFloorArea ?area } GROUP BY ?b"
)
AGGREGATES = 3  # aggregate runs per round
TARGET_SINGLE = 1.1  # the single-dataset path against the same path without the planner
TARGET_POINT = 1.5  # a multi-dataset point query against the single-dataset one


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(triples: int | None = None, rounds: int = 7, per_round: int = 200) -> dict[str, Any]:
    """Load the three datasets, time the one-off merge costs, then the queries per scope."""
    triples = triples or int(os.environ.get("BENCH_MERGE_TRIPLES", 200_000))
    nt = format_for("x.nt")
    with tempfile.TemporaryDirectory(prefix="bench-merge-") as tmp:
        root = Path(tmp)
        summary = synth.generate(root / "a.nt", BASE, triples=triples, seed=42)
        synth.generate(root / "b.nt", BASE + "/other", triples=triples, seed=43)
        store = OxigraphStore(BASE, root / "store")
        try:
            for name, file in (("a", "a.nt"), ("b", "b.nt"), ("copy", "a.nt")):
                store.replace_dataset(name, root / file, nt)
            store.compact()
            sizes = {d.name: d.triples for d in store.datasets()}
            graphs = {name: f"{BASE}/dataset/{name}" for name in sizes}
            planner = MergePlanner()
            a, b, copy = graphs["a"], graphs["b"], graphs["copy"]
            pair_check = _timed(lambda: planner.default_graphs(store, [a, b]))
            merge_build = _timed(lambda: planner.default_graphs(store, [a, copy]))
            rest = planner.default_graphs(store, [a, copy])
            rest_triples = (
                sum(1 for _ in store.raw.quads_for_pattern(None, None, None, _node(rest[1])))
                if len(rest) > 1
                else 0
            )
            scopes = {
                "single": Scope(whole_datasets=frozenset({a})),
                "disjoint": Scope(whole_datasets=frozenset({a, b})),
                "overlap": Scope(whole_datasets=frozenset({a, copy})),
            }
            rng = random.Random(7)
            points = [
                f"SELECT ?p ?o WHERE {{ <{s}> ?p ?o }}"
                for s in rng.sample(summary.spaces, min(per_round, len(summary.spaces)))
            ]

            def scoped(
                name: str, queries: list[str], merges: MergePlanner = planner
            ) -> Callable[[], None]:
                graph_list = sorted(graphs.values())

                def go() -> None:
                    for q in queries:
                        list(
                            scoped_query(
                                store,
                                q,
                                scopes[name],
                                dataset_graphs=graph_list,
                                data_version=store.version(),
                                merges=merges,
                            )
                        )

                return go

            def engine(queries: list[str], default: list[str]) -> Callable[[], None]:
                def go() -> None:
                    for q in queries:
                        list(store.query(q, default_graph=default, named_graphs=default))

                return go

            cases: dict[str, dict[str, Callable[[], None]]] = {
                case: {
                    "engine_single": engine(qs, [a]),
                    "engine_disjoint": engine(qs, [a, b]),
                    "engine_overlap_bag": engine(qs, [a, copy]),
                    "single_before": scoped("single", qs, _Unplanned()),
                    **{n: scoped(n, qs) for n in scopes},
                }
                for case, qs in (("point", points), ("aggregate", [AGGREGATE] * AGGREGATES))
            }
            times: dict[str, dict[str, list[float]]] = {
                c: {n: [] for n in fns} for c, fns in cases.items()
            }
            for fns in cases.values():  # warm caches once
                for fn in fns.values():
                    fn()
            for _ in range(rounds):
                for case, fns in cases.items():
                    for name, fn in fns.items():
                        times[case][name].append(_timed(fn))
        finally:
            store.close()
    result: dict[str, Any] = {
        "triples_per_dataset": sizes,
        "one_off": {
            "pair_check_disjoint_ms": round(pair_check * 1000, 1),
            "merge_build_ms": round(merge_build * 1000, 1),
            "rest_graph_triples": rest_triples,
        },
    }
    for case, by_name in times.items():
        n = len(points) if case == "point" else AGGREGATES
        med = {name: statistics.median(ts) / n * 1000 for name, ts in by_name.items()}
        result[case] = {
            **{f"{name}_ms": round(ms, 3) for name, ms in med.items()},
            "ratio_single_vs_engine": round(med["single"] / med["engine_single"], 3),
            # the one-dataset path with the planner against the same path without it
            "ratio_single_vs_before": round(med["single"] / med["single_before"], 3),
            "ratio_disjoint_vs_single": round(med["disjoint"] / med["single"], 3),
            "ratio_overlap_vs_single": round(med["overlap"] / med["single"], 3),
            # the planner's own cost: the same graphs given to the engine as they are
            "ratio_disjoint_vs_engine_disjoint": round(med["disjoint"] / med["engine_disjoint"], 3),
            # the merge against the engine's (wrong, doubled) bag union of the same datasets
            "ratio_overlap_vs_engine_bag": round(med["overlap"] / med["engine_overlap_bag"], 3),
        }
    result["target_single_vs_engine"] = TARGET_SINGLE
    result["target_point_vs_single"] = TARGET_POINT
    return result


class _Unplanned(MergePlanner):
    """The path before the merge: the scope's graphs go to the engine as they are."""

    def default_graphs(self, store: Any, graphs: Any, build: bool = True) -> list[str]:
        return list(graphs)


def _node(iri: str) -> Any:
    import pyoxigraph as ox

    return ox.NamedNode(iri)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--triples", type=int, default=None)
    args = p.parse_args(argv)
    print(json.dumps(run(args.triples), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
