"""Connector throughput next to pyoxigraph's bulk load of the same N-Triples (same run)."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import pyoxigraph as ox

import connectors

ROOT = Path(__file__).resolve().parent.parent
MEASUREMENTS = ROOT / "tests" / "data" / "measurements"
IFC = ROOT / "tests" / "data" / "ifc"
BASE = "http://127.0.0.1:8101"


def run() -> dict:
    """Readings/s and triples/s of the measurements connector, seconds per IFC model, bulk-load ratio."""
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="dsgo-bench-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        result = connectors.get("measurements").run(
            str(MEASUREMENTS / "b4b_raw_measurements.csv.gz"),
            base_iri=BASE,
            dataset="bench",
            party_id="bench",
            mapping=MEASUREMENTS / "b4b-mapping.toml",
            workdir=work,
        )
        seconds = time.perf_counter() - start
        readings = int(result.prov.extra["readings"])
        start = time.perf_counter()
        ox.Store().bulk_load(path=str(result.ntriples_path), format=ox.RdfFormat.N_TRIPLES)
        load_seconds = time.perf_counter() - start
        out["measurements"] = {
            "readings": readings,
            "triples": result.triple_count,
            "seconds": round(seconds, 3),
            "readings_per_s": round(readings / seconds),
            "triples_per_s": round(result.triple_count / seconds),
            "bulk_load_seconds": round(load_seconds, 3),
            "bulk_load_triples_per_s": round(result.triple_count / load_seconds),
            "ratio_vs_bulk_load": round(load_seconds / seconds, 3),
            "target_ratio": 0.5,
        }
        out["ifc"] = {}
        for model in ("duplex.ifc", "IfcOpenHouse_IFC4.ifc"):
            start = time.perf_counter()
            res = connectors.get("ifc").run(
                str(IFC / model),
                base_iri=BASE,
                dataset=model.split(".")[0],
                party_id="bench",
                workdir=work,
                options={"progress": "0"},
            )
            out["ifc"][model] = {
                "seconds": round(time.perf_counter() - start, 3),
                "triples": res.triple_count,
            }
    return out


if __name__ == "__main__":
    json.dump(run(), sys.stdout, indent=2)
    print()
