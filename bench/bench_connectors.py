"""Connector throughput next to pyoxigraph's bulk load of the same N-Triples (same run), and
IFC ingest of the largest corpus model next to a plain ``ifcopenshell.open()`` of the same file."""

from __future__ import annotations

import json
import os
import subprocess
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
    out["ifc_ingest_vs_open"] = ifc_ingest_vs_open()
    return out


# One measurement per fresh interpreter, so that peak RSS is that step's own: VmHWM of the
# process (ru_maxrss would carry over the parent's peak across fork and exec).
_CHILD = """
import json, sys, tempfile, time
from pathlib import Path
import ifcopenshell
mode, path = sys.argv[1], sys.argv[2]
triples = None
if mode != "baseline":
    from connectors import get
    from connectors.run import run_connector
start = time.perf_counter()
if mode == "open":
    ifcopenshell.open(path)
elif mode in ("convert", "ingest"):
    with tempfile.TemporaryDirectory() as work:
        kw = dict(base_iri="http://127.0.0.1:8101", dataset="bench", party_id="bench",
                  workdir=Path(work), options={"progress": "0"})
        run = run_connector if mode == "ingest" else get("ifc").run
        result = run("ifc", path, **kw) if mode == "ingest" else run(path, **kw)
        triples = result.triple_count
seconds = time.perf_counter() - start
with open("/proc/self/status") as fh:
    peak = next(int(x.split()[1]) for x in fh if x.startswith("VmHWM:")) / 1024
print(json.dumps({"seconds": seconds, "peak_mib": peak, "triples": triples}))
"""


def _child(mode: str, path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=ROOT,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def largest_ifc_model() -> Path:
    """The largest corpus model IfcOpenShell reads (the IFC4X3_RC2 one it cannot is left out)."""
    models = [p for p in IFC.rglob("*.ifc") if "_RC" not in p.name.upper()]
    return max(models, key=lambda p: p.stat().st_size)


def ifc_ingest_vs_open() -> dict:
    """Seconds and peak memory: open() alone, the connector, and ingest (connector + SHACL)."""
    model = largest_ifc_model()
    baseline = _child("baseline", model)
    rows = {mode: _child(mode, model) for mode in ("open", "convert", "ingest")}
    base_mib = baseline["peak_mib"]
    out: dict = {
        "model": model.name,
        "size_mib": round(model.stat().st_size / 2**20, 2),
        "triples": rows["ingest"]["triples"],
        "interpreter_baseline_mib": round(base_mib, 1),
    }
    for mode, row in rows.items():
        out[mode] = {"seconds": round(row["seconds"], 3), "peak_mib": round(row["peak_mib"], 1)}
    opened = rows["open"]
    for mode in ("convert", "ingest"):
        row = rows[mode]
        out[f"{mode}_over_open"] = {
            "time_ratio": round(row["seconds"] / opened["seconds"], 2),
            "peak_memory_ratio": round(row["peak_mib"] / opened["peak_mib"], 2),
            "peak_memory_ratio_net_of_interpreter": round(
                (row["peak_mib"] - base_mib) / max(1e-9, opened["peak_mib"] - base_mib), 2
            ),
        }
    return out


if __name__ == "__main__":
    json.dump(run(), sys.stdout, indent=2)
    print()
