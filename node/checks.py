"""Permit checks on the node: an IFC model against IDS files, kept as a signed, versioned report.

One path for `dsgo check ids` (store opened directly), `POST /admin/check` (the running node)
and `[[checks]]` after a sync: resolve the model (a dataset's recorded source file, or a file),
run `connectors.ids_check.check_model`, store the report as a dataset version with provenance
(`node.sync.write_result`), link the report to the version it replaces, and sign it.

The report's own resource (`{base}/id/report/{name}`) says which version it revises:
``prov:wasRevisionOf {base}/dataset/{name}/version/{n-1}``, and that previous version's verdict
and counts are repeated in the new report, so a reader of the report dataset alone sees the
before and after without access to the node's provenance dataset.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors import ntriples as nt
from connectors.errors import ConnectorError
from connectors.fingerprints import file_sha256
from connectors.ids_check import NAME
from node.errors import NodeError
from node.files import write_json_atomically
from node.iri import check_dataset_name, sparql_iri
from node.publish import PROVENANCE_DATASET, latest_version, write_result
from node.store import Store
from vocab.iris import dataset_iri
from vocab.namespaces import DSGO, PROV, SH

RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
RESERVED = frozenset({PROVENANCE_DATASET, "audit"})
CHECK_STATE = "check-state.json"
_WRITING = (
    threading.Lock()
)  # one check at a time reads the report's last version and writes the next
# The report's counts repeated for the version it replaces (see the module docstring).
_SNAPSHOT = (
    f"{SH}conforms",
    f"{DSGO}applicableConforms",
    f"{DSGO}specificationCount",
    f"{DSGO}applicableSpecificationCount",
    f"{DSGO}passedSpecificationCount",
    f"{DSGO}failedSpecificationCount",
    f"{DSGO}missingSpecificationCount",
    f"{DSGO}notApplicableSpecificationCount",
    f"{PROV}generatedAtTime",
)


class CheckError(NodeError):
    """The check could not be run on these inputs (HTTP 4xx; `dsgo check` exits 2)."""

    status = 422
    code = "check_failed"


@dataclass(frozen=True)
class ModelSource:
    """The IFC file a check reads, and which dataset version it is (if it is one)."""

    path: Path
    sha256: str | None = None  # as recorded when the dataset version was loaded
    dataset: str | None = None
    version_iri: str | None = None


@dataclass(frozen=True)
class CheckOutcome:
    """What one check did: the report version stored and signed, and the verdict."""

    report: str
    report_iri: str
    version_iri: str
    previous_iri: str | None
    model: ModelSource
    ids: tuple[str, ...]
    summary: dict[str, Any]
    failed: tuple[str, ...]
    missing: tuple[str, ...]
    triples: int
    signed_by: str | None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "report": self.report,
            "report_iri": self.report_iri,
            "version": self.version_iri,
            "previous": self.previous_iri,
            "model": {
                "path": str(self.model.path),
                "sha256": self.model.sha256,
                "dataset": self.model.dataset,
                "version": self.model.version_iri,
            },
            "ids": list(self.ids),
            "summary": self.summary,
            "failed": list(self.failed),
            "missing": list(self.missing),
            "triples": self.triples,
            "signed_by": self.signed_by,
        }


# ---------------------------------------------------------------- inputs


def resolve_ids(paths: Sequence[str | Path]) -> list[Path]:
    """IDS files: each path a file, or a directory meaning every *.ids in it (sorted)."""
    if not paths:
        raise CheckError("give at least one IDS file (--ids FILE.ids ...)", status=400)
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser().resolve()
        if path.is_dir():
            found = sorted(path.glob("*.ids"))
            if not found:
                raise CheckError(f"{path}: no .ids files in this directory", status=400)
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise CheckError(f"{path}: IDS file not found", status=400)
    return files


def model_source(store: Store, base_iri: str, dataset: str) -> ModelSource:
    """The source file of the newest version of `dataset`, as its provenance records it.

    CheckError when the dataset has no recorded version, was not made from an IFC file by the IFC
    connector, or the file is gone or has changed since (its SHA-256 differs from the record).
    """
    check_dataset_name(dataset)
    version, _ = latest_version(store, base_iri, dataset)
    if version is None:
        raise CheckError(
            f"dataset {dataset!r} has no recorded version (load it with `dsgo connect ifc` or a "
            "[[sources]] entry), or check a file with --model",
            status=404,
            code="not_found",
        )
    graph = sparql_iri(dataset_iri(base_iri, PROVENANCE_DATASET))
    rows = list(
        store.query(
            f"SELECT ?connector ?location ?sha ?versionSha WHERE {{ GRAPH {graph} {{ "
            f"{sparql_iri(version)} <{PROV}wasGeneratedBy> ?run . "
            f"OPTIONAL {{ {sparql_iri(version)} <{DSGO}sourceSha256> ?versionSha }} "
            f"?run <{DSGO}connector> ?connector ; <{PROV}used> ?src . "
            f"?src <{DSGO}sourceLocation> ?location ; <{DSGO}sha256> ?sha }} }}",
            default_graph=[graph[1:-1]],
            named_graphs=[graph[1:-1]],
        )
    )
    if not rows:
        raise CheckError(
            f"dataset {dataset!r} version {version} records no source file; check a file with "
            "--model",
            status=409,
            code="no_source",
        )
    row = rows[0]
    connector, location = row["connector"].value, row["location"].value
    # The source entity is shared by all versions read from one path, so it may carry several
    # digests; the version's own dsgo:sourceSha256 says which one it was made from.
    if row["versionSha"] is not None:
        recorded = row["versionSha"].value
    elif len({r["sha"].value for r in rows}) == 1:
        recorded = row["sha"].value
    else:
        raise CheckError(
            f"dataset {dataset!r} version {version} does not record which version of its source "
            "it was made from; reload it (`dsgo sync --force`) or check the file with --model",
            status=409,
            code="no_source",
        )
    if connector != "ifc":
        raise CheckError(
            f"dataset {dataset!r} was made by the {connector!r} connector, not from an IFC model",
            status=409,
            code="not_an_ifc_model",
        )
    if "://" in location:
        raise CheckError(
            f"dataset {dataset!r} was loaded from {location}, not a local file; check a file "
            "with --model",
            status=409,
            code="no_source",
        )
    path = Path(location)
    if not path.is_file():
        raise CheckError(
            f"the source model of dataset {dataset!r} ({path}) is gone; check a file with --model",
            status=409,
            code="model_changed",
        )
    now = file_sha256(path)
    if now != recorded:
        raise CheckError(
            f"the source model of dataset {dataset!r} ({path}) changed since version {version} "
            f"was loaded (sha256 {recorded[:12]}... recorded, {now[:12]}... now): sync or "
            "connect it first, or check the file itself with --model",
            status=409,
            code="model_changed",
        )
    return ModelSource(path=path, sha256=recorded, dataset=dataset, version_iri=version)


def _require_report_dataset(store: Store, base_iri: str, report: str) -> None:
    """The report may only replace an earlier report: never a dataset made another way."""
    if not any(d.name == report for d in store.datasets()):
        return
    version, _ = latest_version(store, base_iri, report)
    made_by = _connector_of(store, base_iri, version) if version else None
    if made_by != NAME:
        how = f"made by the {made_by!r} connector" if made_by else "loaded without provenance"
        raise CheckError(
            f"dataset {report!r} exists and is not a check report ({how}); give the report a "
            "dataset of its own",
            status=409,
            code="not_a_report",
        )


def _connector_of(store: Store, base_iri: str, version: str) -> str | None:
    graph = dataset_iri(base_iri, PROVENANCE_DATASET)
    rows = list(
        store.query(
            f"SELECT ?c WHERE {{ GRAPH {sparql_iri(graph)} {{ {sparql_iri(version)} "
            f"<{PROV}wasGeneratedBy>/<{DSGO}connector> ?c }} }}",
            default_graph=[graph],
            named_graphs=[graph],
        )
    )
    return rows[0]["c"].value if rows else None


# ---------------------------------------------------------------- the check


def run_check(
    store: Store,
    identity: Any,
    data_dir: Path,
    *,
    base_iri: str,
    party_id: str,
    report: str,
    ids: Sequence[str | Path],
    dataset: str | None = None,
    model: str | Path | None = None,
    sign: bool = True,
) -> CheckOutcome:
    """Check the model of `dataset` (or the file `model`), store the report as `report`, sign it."""
    from connectors.ids_check import check_model
    from node.signatures import sign_stored_dataset

    check_dataset_name(report)
    if (dataset is None) == (model is None):
        raise CheckError("give either a dataset or a model file", status=400, code="bad_request")
    if report in RESERVED:
        raise CheckError(f"{report!r} is a reserved dataset name", status=400, code="bad_request")
    if dataset is not None and report == dataset:
        raise CheckError(
            "the report cannot replace the model's own dataset", status=400, code="bad_request"
        )
    _require_report_dataset(store, base_iri, report)
    ids_files = resolve_ids(ids)
    if dataset is not None:
        source = model_source(store, base_iri, dataset)
    else:
        path = Path(model).expanduser().resolve()  # type: ignore[arg-type]
        if not path.is_file():
            raise CheckError(f"{path}: model file not found", status=400, code="bad_request")
        source = ModelSource(path=path)
    data_dir.mkdir(parents=True, exist_ok=True)
    with _WRITING, tempfile.TemporaryDirectory(dir=data_dir) as work:
        previous, _ = latest_version(store, base_iri, report)
        try:
            result = check_model(
                source.path,
                ids_files,
                base_iri=base_iri,
                report_dataset=report,
                party_id=party_id,
                model_dataset=source.dataset,
                model_version_iri=source.version_iri,
                workdir=Path(work),
            )
        except ConnectorError as exc:
            raise CheckError(str(exc), status=422, code="check_failed") from None
        if source.sha256 is not None and result.model_sha256 != source.sha256:
            raise CheckError(
                f"the source model of dataset {dataset!r} changed while it was checked",
                status=409,
                code="model_changed",
            )
        if previous is not None:
            _link_revision(result, store, base_iri, report, previous)
        version = write_result(store, base_iri, report, result.connector_result())
    signed = sign_stored_dataset(store, identity, data_dir, report) if sign else None
    s = result.summary
    names = {spec.index: spec.name for spec in s.specifications}
    return CheckOutcome(
        report=report,
        report_iri=result.report_iri,
        version_iri=version,
        previous_iri=previous,
        model=source
        if source.sha256
        else ModelSource(path=source.path, sha256=result.model_sha256),
        ids=tuple(str(p) for p in ids_files),
        summary={
            "total": s.total,
            "applicable": s.applicable,
            "passed": s.passed,
            "failed": s.failed,
            "missing": s.missing,
            "not_applicable": s.not_applicable,
            "conforms": s.conforms,
            "applicable_pass": s.applicable_pass,
        },
        failed=tuple(names[x.index] for x in s.specifications if x.verdict == "fail"),
        missing=tuple(names[x.index] for x in s.specifications if x.verdict == "missing"),
        triples=result.triple_count,
        signed_by=signed.party if signed else None,
    )


def _link_revision(result: Any, store: Store, base_iri: str, report: str, previous: str) -> None:
    """Add `report prov:wasRevisionOf previous` and the previous version's verdict and counts."""
    graph = dataset_iri(base_iri, report)
    r, p = nt.iri(result.report_iri), nt.iri(previous)
    lines = [
        f"{r} <{PROV}wasRevisionOf> {p} .\n",
        f"{p} {RDF_TYPE} <{PROV}Entity> .\n",
        f"{p} <{PROV}specializationOf> {nt.iri(graph)} .\n",
    ]
    wanted = " ".join(f"<{x}>" for x in _SNAPSHOT)
    rows = store.query(
        f"SELECT ?p ?o WHERE {{ GRAPH {sparql_iri(graph)} {{ {sparql_iri(result.report_iri)} ?p ?o "
        f"VALUES ?p {{ {wanted} }} }} }}",
        default_graph=[graph],
        named_graphs=[graph],
    )
    for row in rows:
        lines.append(f"{p} <{row['p'].value}> {row['o']} .\n")
    # the model version the previous report was about
    rows = store.query(
        f"SELECT ?m WHERE {{ GRAPH {sparql_iri(graph)} {{ {sparql_iri(result.report_iri)} "
        f"<{PROV}wasDerivedFrom> ?m . ?m <{DSGO}sha256> ?sha . "
        f"FILTER NOT EXISTS {{ ?m a <{DSGO}IdsDocument> }} }} }}",
        default_graph=[graph],
        named_graphs=[graph],
    )
    for row in rows:
        lines.append(f"{p} <{PROV}wasDerivedFrom> {row['m']} .\n")
    result.lines = sorted(set(result.lines) | set(lines))
    if result.ntriples_path is not None:
        Path(result.ntriples_path).write_bytes(result.ntriples())


# ---------------------------------------------------------------- verdicts and text


def exit_code(summary: dict[str, Any], strict: bool = False) -> int:
    """0 when every applicable specification passes (with `strict`: the IDS 1.0 verdict), else 1."""
    ok = summary["conforms"] if strict else summary["applicable_pass"]
    return 0 if ok else 1


def summary_line(body: dict[str, Any]) -> str:
    """One line: the report version, applicable / passed / failed, and the rest."""
    s = body["summary"]
    verdict = "PASS" if s["applicable_pass"] else "FAIL"
    version = body["version"].rsplit("/", 1)[-1]
    text = (
        f"{body['report']} (version {version}): {s['applicable']} applicable "
        f"specification{'' if s['applicable'] == 1 else 's'}, "
        f"{s['passed']} passed, {s['failed']} failed; {s['missing']} required but absent, "
        f"{s['not_applicable']} not applicable, of {s['total']}: {verdict}"
    )
    if body.get("signed_by"):
        text += f", signed by {body['signed_by']}"
    return text


# ---------------------------------------------------------------- [[checks]] after a sync


def run_configured_checks(rt: Any, force: bool = False) -> list[dict[str, Any]]:
    """Run each `[[checks]]` entry whose model version or IDS files changed since its last run.

    Returns one outcome per check, like a sync source's: status 'checked' (with the verdict),
    'unchanged' or 'failed' (with the error). The last inputs are kept in `check-state.json`.
    """
    settings = rt.settings
    state_path = settings.data_dir / CHECK_STATE
    state = _load_state(state_path)
    results: list[dict[str, Any]] = []
    for check in settings.checks:
        entry: dict[str, Any] = {"dataset": check.report, "check": check.kind}
        try:
            version, _ = latest_version(rt.store, settings.base_iri, check.dataset)
            files = resolve_ids(check.ids)
            fingerprint = hashlib.sha256(
                json.dumps(
                    [check.dataset, version, [(str(f), file_sha256(f)) for f in files]]
                ).encode()
            ).hexdigest()
            if not force and state.get(check.report) == fingerprint:
                results.append({**entry, "status": "unchanged"})
                continue
            done = run_check(
                rt.store,
                rt.identity,
                settings.data_dir,
                base_iri=settings.base_iri,
                party_id=settings.party_id,
                report=check.report,
                ids=files,
                dataset=check.dataset,
            )
        except (NodeError, ConnectorError, OSError, ValueError) as exc:
            results.append({**entry, "status": "failed", "error": str(exc)})
            continue
        state[check.report] = fingerprint
        write_json_atomically(state_path, {"fingerprints": dict(sorted(state.items()))})
        body = done.to_json()
        results.append(
            {
                **entry,
                "status": "checked",
                "triple_count": done.triples,
                "summary": summary_line(body),
                "verdict": "pass" if exit_code(done.summary, check.strict) == 0 else "fail",
                "result": body,
            }
        )
    return results


def _load_state(path: Path) -> dict[str, str]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in raw.get("fingerprints", {}).items()}
