"""`make bench`: every benchmark in one run, a table each, a target summary, bench/out/results.json."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"
MODULES = (
    "bench_trust",
    "bench_jsonld",
    "bench_audit",
    "bench_state",
    "bench_enforcement",
    "bench_connectors",
    "bench_ids",
    "bench_admission",
    "bench_void",
    "bench_merge",
    "bench_exchange",
    "bench_cores",
    "bench_engines",
)


def flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts as (dotted key, value) rows."""
    if not isinstance(data, dict):
        return [(prefix, data)]
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        rows.extend(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return rows


def table(title: str, data: dict[str, Any]) -> str:
    """A two-column text table of a result dict."""
    rows = flatten(data)
    width = max((len(k) for k, _ in rows), default=10)
    lines = [
        f"\n== {title} " + "=" * max(0, 70 - len(title)),
        *(f"  {k:<{width}}  {v}" for k, v in rows),
    ]
    return "\n".join(lines)


def _section(name: str, fn: Any, results: dict[str, Any]) -> None:
    start = time.perf_counter()
    try:
        results[name] = fn()
    except Exception as exc:  # one broken section must not hide the others
        traceback.print_exc()
        results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    results[name]["section_seconds"] = round(time.perf_counter() - start, 1)
    print(table(name, results[name]), flush=True)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per target: what is compared, the measured ratio, the target and PASS/MISS."""
    rows: list[dict[str, Any]] = []

    def add(name: str, ratio: float | None, target: float, higher: bool, note: str = "") -> None:
        if ratio is None:
            rows.append({"target": name, "ratio": None, "goal": "", "result": "n/a", "note": note})
            return
        ok = ratio >= target if higher else ratio <= target
        goal = f"{'>=' if higher else '<='} {target}"
        rows.append(
            {
                "target": name,
                "ratio": ratio,
                "goal": goal,
                "result": "PASS" if ok else "MISS",
                "note": note,
            }
        )

    node = results.get("bench_node", {})
    ratios = node.get("ratios", {})
    size = f"{node.get('triples', '?')} triples"
    add(
        "resource GET turtle rps / bare FastAPI rps",
        ratios.get("resource_get_turtle_vs_bare"),
        0.5,
        True,
        size,
    )
    add(
        "resource GET JSON-LD rps / bare FastAPI rps",
        ratios.get("resource_get_jsonld_vs_bare"),
        0.5,
        True,
        size,
    )
    for name, row in node.get("sparql", {}).items():
        ratio = row.get("ratio_http_over_inprocess")
        overhead = f"HTTP adds {row.get('http_overhead_ms')} ms per query"
        if row.get("target_applies"):
            add(f"SPARQL {name}: HTTP / in-process latency", ratio, 1.3, False, overhead)
        else:
            note = (
                f"in-process {row.get('inprocess_median_ms')} ms < 10 ms; ratio {ratio} (info); "
                + overhead
            )
            add(f"SPARQL {name}: HTTP / in-process latency", None, 1.3, False, note)
    audit = node.get("audit_http", {})
    add("protected GET, audit SQLite / no-op (HTTP)", audit.get("ratio"), 0.8, True)
    enf = results.get("bench_enforcement", {})
    add(
        "enforcement: 1,000 policies / 1 wildcard",
        enf.get("ratio"),
        enf.get("target_ratio", 1.2),
        False,
    )
    meas = results.get("bench_connectors", {}).get("measurements", {})
    add(
        "measurements connector / bulk load speed",
        meas.get("ratio_vs_bulk_load"),
        meas.get("target_ratio", 0.5),
        True,
    )
    ids = results.get("bench_ids", {})
    add(
        "IDS permit check: check_model / ifctester (ILS model)",
        ids.get("ratio"),
        ids.get("target_ratio", 1.3),
        False,
        f"vs ifctester without its reporter: {ids.get('ratio_vs_validate_only')}",
    )
    adm = results.get("bench_admission", {})
    hot = adm.get("hot_path", {})
    add(
        "admission middleware: added cost / protected request",
        hot.get("share_of_protected_request"),
        hot.get("target_share", 0.02),
        False,
        f"{hot.get('added_ns_per_request')} ns per request",
    )
    over = adm.get("overload", {})
    with_adm = over.get("with_admission", {})
    p99 = with_adm.get("admitted_p99_ms")
    add(
        "1,000 connections: admitted p99 / 1 s",
        round(p99 / 1000, 3) if p99 is not None else None,
        1.0,
        False,
        f"refused {with_adm.get('refused_503')} with Retry-After; p99 without admission "
        f"{over.get('without_admission', {}).get('admitted_p99_ms')} ms",
    )
    void = results.get("bench_void", {})
    add(
        "VoID + service description served / point query",
        void.get("ratio"),
        void.get("target_ratio", 1.0),
        False,
        f"first computation {void.get('cold_ms')} ms for {void.get('triples')} triples",
    )
    merge = results.get("bench_merge", {})
    point, agg = merge.get("point", {}), merge.get("aggregate", {})
    single_goal = merge.get("target_single_vs_engine", 1.1)
    for case, row in (("point", point), ("aggregate", agg)):
        add(
            f"merge: 1-dataset scope / the same path without the planner ({case})",
            row.get("ratio_single_vs_before"),
            single_goal,
            False,
            f"vs the engine alone {row.get('ratio_single_vs_engine')}",
        )
    point_goal = merge.get("target_point_vs_single", 1.5)
    add(
        "merge: 2 disjoint datasets / 1 dataset (point)",
        point.get("ratio_disjoint_vs_single"),
        point_goal,
        False,
    )
    add(
        "merge: 2 overlapping datasets / 1 dataset (point)",
        point.get("ratio_overlap_vs_single"),
        point_goal,
        False,
    )
    add(
        "merge: 2 overlapping datasets / 1 dataset (aggregate)",
        None,
        0,
        False,
        f"ratio {agg.get('ratio_overlap_vs_single')} (info); vs the engine's doubled bag union "
        f"of the same datasets {agg.get('ratio_overlap_vs_engine_bag')}; one-off: "
        f"{merge.get('one_off', {}).get('merge_build_ms')} ms to build the rest graph, "
        f"{merge.get('one_off', {}).get('pair_check_disjoint_ms')} ms per disjoint pair check",
    )
    exchange = results.get("bench_exchange", {})
    add(
        "signed exchanges: federated query signed / unsigned (JAdES)",
        exchange.get("ratio_signed_over_unsigned"),
        exchange.get("target_ratio", 1.5),
        False,
        f"{exchange.get('signed', {}).get('verified_receipts_per_query')} receipts per query",
    )
    load = results.get("bench_load", {})
    if "answered" in load:
        rows.append(
            {
                "target": "load, 200 connections 60 s: audit entries / requests answered",
                "ratio": round(load["audit_entries_written"] / max(load["answered"], 1), 3),
                "goal": "== 1",
                "result": "PASS" if load.get("ok") else "MISS",
                "note": f"{load.get('rps')} req/s (x{load.get('ratio_vs_open_healthz')} of open "
                f"/healthz), p50 {load.get('p50_ms')} ms, p99 {load.get('p99_ms')} ms, "
                f"{load.get('count_5xx')} 5xx",
            }
        )
    cores = results.get("bench_cores", {})
    for name, row in cores.get("peer", {}).items():
        add(
            f"peer ratio ({name}): node / oxigraph serve, point queries",
            row.get("ratio"),
            cores.get("peer_target_ratio", 0.3),
            True,
            f"{row.get('node_rps')} vs {row.get('oxigraph_rps')} req/s, node p99 "
            f"{row.get('node_p99_ms')} ms, {cores.get('subjects')} subjects",
        )
    mix = cores.get("cores", {})
    add(
        "scale on cores: engine, 2 workers / 1 worker (same mix)",
        mix.get("ratio"),
        mix.get("target_ratio", 1.6),
        True,
        f"{mix.get('workers_2_rps')} vs {mix.get('workers_1_rps')} req/s, p99 "
        f"{mix.get('workers_2_p99_ms')} / {mix.get('workers_1_p99_ms')} ms",
    )
    fed = results.get("bench_federation", {})
    for key, value in flatten(fed):
        if key.endswith("within_target") and isinstance(value, bool):
            stem = key[: -len("within_target")]
            ratio = dict(flatten(fed)).get(stem + "ratio")
            target = dict(flatten(fed)).get(stem + "target_ratio")
            rows.append(
                {
                    "target": f"federation {stem.rstrip('.') or 'ratio'}",
                    "ratio": ratio,
                    "goal": str(target),
                    "result": "PASS" if value else "MISS",
                    "note": "",
                }
            )
    return rows


def summary_table(rows: list[dict[str, Any]]) -> str:
    """The final table: target, measured ratio, goal, PASS/MISS."""
    width = max(len(r["target"]) for r in rows)
    lines = [
        f"\n== summary {'=' * 66}",
        f"  {'target':<{width}}  {'ratio':>7}  {'goal':<7}  result",
    ]
    for r in rows:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.3f}"
        note = f"  ({r['note']})" if r["note"] else ""
        lines.append(f"  {r['target']:<{width}}  {ratio:>7}  {r['goal']:<7}  {r['result']}{note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the sections, print the tables and the summary, write bench/out/results.json."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--triples", type=int, default=int(os.environ.get("BENCH_TRIPLES", 1_000_000)))
    p.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 3.0)))
    p.add_argument("--skip", nargs="*", default=[], help="section names to leave out")
    p.add_argument(
        "--no-load",
        action="store_true",
        default=os.environ.get("BENCH_LOAD", "1") == "0",
        help="leave out the ~90 s load test (bench_load; env BENCH_LOAD=0)",
    )
    args = p.parse_args(argv)
    if args.no_load:
        args.skip.append("bench_load")
    started = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    }
    if "bench_node" not in args.skip:
        from bench import bench_node

        _section("bench_node", lambda: bench_node.run(args.triples, args.seconds), results)
    for name in (*MODULES, "bench_federation"):
        if name in args.skip:
            continue
        try:
            module = importlib.import_module(f"bench.{name}")
        except ImportError as exc:
            if name == "bench_federation" and exc.name in ("bench.bench_federation", None):
                print(f"\n== {name}: not present, skipped")
                continue
            results[name] = {"error": f"import failed: {exc}"}
            print(table(name, results[name]))
            continue
        _section(name, module.run, results)
    if "bench_load" not in args.skip:
        from bench import bench_load

        _section("bench_load", lambda: bench_load.run(triples=args.triples), results)
    rows = targets(results)
    results["summary"] = rows
    results["meta"]["total_seconds"] = round(time.perf_counter() - started, 1)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(summary_table(rows))
    print(f"\ntotal {results['meta']['total_seconds']} s; results in {OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
