"""Re-run the connectors whose sources changed since the last successful run (state in JSON)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from connectors.base import ConnectorResult
from connectors.errors import ConnectorError
from connectors.provenance import file_sha256
from connectors.state_file import write_json_atomically


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
