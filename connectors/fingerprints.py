"""Source fingerprints and ProvRecord construction shared by every connector."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from connectors.base import ProvRecord
from connectors.errors import SourceUnreadable


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise SourceUnreadable(str(path), "", f"cannot read source: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def file_modified(path: Path) -> datetime:
    """The file's modification time in UTC."""
    return datetime.fromtimestamp(Path(path).stat().st_mtime, tz=UTC)


def utc_now() -> datetime:
    """The current time in UTC (run start/end stamps)."""
    return datetime.now(tz=UTC)


def file_prov(
    source: Path,
    *,
    connector: str,
    version: str,
    started: datetime,
    party_id: str,
    extra: dict[str, str] | None = None,
) -> ProvRecord:
    """A ProvRecord for a file source, stamped with the end time now."""
    return ProvRecord(
        source=str(source),
        source_sha256=file_sha256(source),
        source_modified=file_modified(source),
        connector=connector,
        connector_version=version,
        started=started,
        ended=utc_now(),
        party_id=party_id,
        extra=dict(extra or {}),
    )


def require_file(source: str) -> Path:
    """The source as an existing file path, or a ConnectorError saying it is missing."""
    path = Path(source)
    if not path.is_file():
        raise SourceUnreadable(source, "", "source file not found")
    return path
