"""Running connectors into the node: `dsgo connect`, and syncs that re-run the connectors whose
sources changed since the last successful run (checksums in a JSON state file)."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from connectors.base import ConnectorResult
from connectors.errors import ConnectorError
from connectors.fingerprints import file_sha256
from connectors.run import run_connector
from node.files import write_json_atomically
from node.publish import write_result
from node.store import Store


def connect(
    store: Store,
    *,
    kind: str,
    source: str,
    dataset: str,
    base_iri: str,
    party_id: str,
    workdir: Path,
    mapping: Path | None = None,
    options: dict | None = None,
    severity: str = "Violation",
) -> tuple[ConnectorResult, str]:
    """Run one connector and load its output (what `dsgo connect` does)."""
    result = run_connector(
        kind,
        source,
        base_iri=base_iri,
        dataset=dataset,
        party_id=party_id,
        mapping=mapping,
        workdir=workdir,
        options=options,
        severity=severity,
    )
    return result, write_result(store, base_iri, dataset, result)


def make_sync_runner(rt) -> Callable[[bool], list[dict]]:
    """A function that syncs every configured source of the node (used by the scheduler and admin API)."""
    settings = rt.settings
    sources = [
        SyncSource(
            s.kind,
            s.source,
            s.dataset,
            Path(s.mapping) if s.mapping else None,
            {k: str(v) for k, v in s.options.items()},
        )
        for s in settings.sources
    ]

    def run(force: bool = False) -> list[dict]:
        with tempfile.TemporaryDirectory(dir=settings.data_dir) as work:

            def run_one(src: SyncSource) -> ConnectorResult:
                return run_connector(
                    src.kind,
                    src.source,
                    base_iri=settings.base_iri,
                    dataset=src.dataset,
                    party_id=settings.party_id,
                    mapping=src.mapping,
                    workdir=Path(work) / src.dataset,
                    options=src.options,
                    severity=settings.shacl_severity,
                )

            def write(dataset: str, result: ConnectorResult) -> None:
                write_result(rt.store, settings.base_iri, dataset, result)

            outcomes = sync(sources, settings.data_dir / "sync-state.json", run_one, write, force)
        results = [asdict(o) for o in outcomes]
        if getattr(settings, "checks", ()):
            # [[checks]]: re-check every model whose dataset (or IDS files) changed
            from node.checks import run_configured_checks

            results += run_configured_checks(rt, force)
        return results

    return run


@dataclass(frozen=True)
class SyncSource:
    """One configured source: which connector, which file/URL, into which dataset."""

    kind: str
    source: str
    dataset: str
    mapping: Path | None = None
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SyncOutcome:
    """What happened to one source: 'updated', 'unchanged' or 'failed' (with the error)."""

    dataset: str
    status: str
    checksum: str | None = None
    triple_count: int = 0
    error: str | None = None


RunOne = Callable[[SyncSource], ConnectorResult]
Write = Callable[[str, ConnectorResult], None]


def sync(
    sources: list[SyncSource],
    state_path: Path,
    run_one: RunOne,
    write: Write,
    force: bool = False,
) -> list[SyncOutcome]:
    """Run changed sources and ``write`` their results; state is saved after each success."""
    state = _load_state(state_path)
    outcomes = []
    for src in sources:
        try:
            checksum = source_checksum(src)
        except (ConnectorError, OSError) as exc:
            outcomes.append(SyncOutcome(src.dataset, "failed", error=str(exc)))
            continue
        if not force and checksum is not None and state.get(src.dataset) == checksum:
            outcomes.append(SyncOutcome(src.dataset, "unchanged", checksum))
            continue
        try:
            result = run_one(src)
            if checksum is None:  # a database: its content digest is known only after reading
                checksum = f"{source_checksum(src, database=False)}:{result.prov.source_sha256}"
                if not force and state.get(src.dataset) == checksum:
                    outcomes.append(SyncOutcome(src.dataset, "unchanged", checksum))
                    continue
            write(src.dataset, result)
        except Exception as exc:  # report per source; one bad source must not stop the others
            outcomes.append(SyncOutcome(src.dataset, "failed", checksum, error=str(exc)))
            continue
        state[src.dataset] = checksum
        _save_state(state_path, state)
        outcomes.append(SyncOutcome(src.dataset, "updated", checksum, result.triple_count))
    return outcomes


def source_checksum(src: SyncSource, *, database: bool = True) -> str | None:
    """sha256 over the source file, its mapping and options; None for a database URL source."""
    if database and src.kind == "sql" and "://" in src.source:
        return None
    digest = hashlib.sha256()
    digest.update(f"{src.kind}\0{src.source}\0".encode())
    path = Path(src.source)
    if "://" not in src.source:
        digest.update(file_sha256(path).encode())
    if src.mapping is not None:
        digest.update(file_sha256(Path(src.mapping)).encode())
    digest.update(json.dumps(dict(src.options), sort_keys=True).encode())
    return digest.hexdigest()


def _load_state(path: Path) -> dict[str, str]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}  # unreadable state: treat every source as changed
    return {str(k): str(v) for k, v in data.get("checksums", {}).items()}


def _save_state(path: Path, state: dict[str, str]) -> None:
    write_json_atomically(path, {"checksums": dict(sorted(state.items()))})
