"""The permit check: `check_model` next to ifctester's own pipeline on the same model and IDS.

The model is the largest IFC4 model the tests use: the ILS example model that
`examples/make_ils_model.py build` makes from the duplex (38,900 entities, 2.4 MB), checked
against the 26 ILS Omgevingsvergunning IDS files (`tests/data/ids/dsgo-ils/`).

- ifctester: what its CLI does per IDS (`ids.open`, `validate`, the Json reporter's `report()`),
  with the model opened once, in this process (no interpreter start-up on either side);
- check_model: the same ifctester work, plus the SHA-256 of every file, the structured reason of
  every failure and the sorted N-Triples report with PROV-O.

Both run in alternating pairs after one warm-up each (the IDS XSD is loaded once per process);
reported: the medians and their ratio (target <= 1.3), and the median of the per-pair ratios;
for information also ifctester without its reporter (open + validate only) and that ratio.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ILS = ROOT / "tests" / "data" / "ids" / "dsgo-ils"
SOURCE = ROOT / "examples" / "data" / "duplex.ifc"
TARGET_RATIO = 1.3


def _build_model(out: Path) -> Path:
    spec = importlib.util.spec_from_file_location(
        "make_ils_model", ROOT / "examples" / "make_ils_model.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build(SOURCE, out, module.Log(quiet=True))
    return out


def ifctester_pipeline(model_path: Path, ids_paths: list[Path], report: bool = True) -> dict:
    """ifctester alone: open the model once, per IDS open + validate (+ Json report)."""
    import ifcopenshell
    from ifctester import ids, reporter

    model = ifcopenshell.open(str(model_path))
    failed = 0
    for path in ids_paths:
        specs = ids.open(str(path))
        specs.validate(model)
        if report:
            failed += reporter.Json(specs).report()["total_specifications_fail"]
        else:
            failed += sum(1 for s in specs.specifications if not s.status)
    return {"failed": failed}


def check_pipeline(model_path: Path, ids_paths: list[Path], workdir: Path) -> dict:
    from connectors.ids_check import check_model

    result = check_model(
        model_path,
        ids_paths,
        base_iri="http://127.0.0.1:8101",
        report_dataset="permit-check",
        model_dataset="bim",
        party_id="EU.EORI.NL000000001",
        workdir=workdir,
    )
    return {
        "failed": result.summary.failed + result.summary.missing,
        "triples": result.triple_count,
    }


def run(pairs: int = 7) -> dict:
    """Median seconds of both pipelines on the ILS model and the ratio check_model / ifctester."""
    ids_paths = sorted(ILS.glob("*.ids"))
    with tempfile.TemporaryDirectory(prefix="dsgo-bench-ids-") as tmp:
        work = Path(tmp)
        model = _build_model(work / "duplex-ils.ifc")
        base = ifctester_pipeline(model, ids_paths)  # warm-up (XSD load, imports)
        ours = check_pipeline(model, ids_paths, work)
        if base["failed"] != ours["failed"]:
            raise AssertionError(f"verdicts differ: ifctester {base}, check_model {ours}")
        t_base: list[float] = []
        t_ours: list[float] = []
        t_bare: list[float] = []
        for i in range(pairs):
            order = (0, 1, 2) if i % 2 == 0 else (2, 1, 0)
            for which in order:
                start = time.perf_counter()
                if which == 0:
                    ifctester_pipeline(model, ids_paths)
                    t_base.append(time.perf_counter() - start)
                elif which == 1:
                    check_pipeline(model, ids_paths, work)
                    t_ours.append(time.perf_counter() - start)
                else:
                    ifctester_pipeline(model, ids_paths, report=False)
                    t_bare.append(time.perf_counter() - start)
        size = model.stat().st_size
    base_median = statistics.median(t_base)
    ours_median = statistics.median(t_ours)
    return {
        "model": "ILS example model (duplex migrated to IFC4, examples/make_ils_model.py build)",
        "model_bytes": size,
        "ids_files": len(ids_paths),
        "failed_or_missing_specifications": ours["failed"],
        "report_triples": ours["triples"],
        "pairs": pairs,
        "ifctester_median_s": round(base_median, 4),
        "check_model_median_s": round(ours_median, 4),
        "ratio": round(ours_median / base_median, 3),
        "median_pair_ratio": round(
            statistics.median(o / b for o, b in zip(t_ours, t_base, strict=True)), 3
        ),
        "ifctester_validate_only_median_s": round(statistics.median(t_bare), 4),
        "ratio_vs_validate_only": round(ours_median / statistics.median(t_bare), 3),
        "target_ratio": TARGET_RATIO,
        "within_target": ours_median / base_median <= TARGET_RATIO,
    }


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    json.dump(run(), sys.stdout, indent=2)
    print()
