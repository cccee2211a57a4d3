"""Disk space: "no space left" as a named 507, leftovers of failed loads removed, free space.

A full disk is nobody's input error and no bug: the client is told 507 `insufficient_storage`
(RFC 4918) with what failed, and may retry once the operator made room. Failed loads leave
spool files (`*.upload`) and RocksDB `bulk-*.sst` files; they are removed when the load fails
and, for a process that was killed, when the node starts.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from node.errors import NodeError

log = logging.getLogger("dsgo.node")

_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_FULL_TEXT = (
    "no space left on device",
    "database or disk is full",
    "file too large",
    "disk quota exceeded",
)


class DiskFull(NodeError):
    """The node's disk (or a file-size limit) ran out while writing (HTTP 507)."""

    status = 507
    code = "insufficient_storage"

    def __init__(self, what: str, cause: BaseException | None = None) -> None:
        reason = f": {cause}" if cause is not None else ""
        super().__init__(
            f"{what}: the node's disk is full{reason}; nothing was changed, retry later",
            headers={"Retry-After": "60"},
        )


def is_disk_full(exc: BaseException | None) -> bool:
    """True when `exc` (or what caused it) says the disk or a file-size limit is exhausted."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            return True
        text = str(exc).lower()
        if any(t in text for t in _FULL_TEXT):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def lock_spool(fileno: int) -> None:
    """Mark a spool file as in use, so start-up cleanup of another worker leaves it alone."""
    fcntl.flock(fileno, fcntl.LOCK_EX | fcntl.LOCK_NB)


def remove_spools(data_dir: Path) -> list[Path]:
    """Delete `*.upload` spool files nobody holds (left by a killed upload)."""
    removed = []
    for path in sorted(data_dir.glob("*.upload")):
        try:
            with open(path, "rb") as fh:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # an upload in progress (another worker)
                path.unlink()
                removed.append(path)
        except OSError:
            continue
    return removed


def remove_bulk_files(store_dir: Path) -> list[Path]:
    """Delete RocksDB `bulk-*.sst` files of a bulk load that failed; only the store's owner
    (holding the write lock, or at start-up holding the RocksDB lock) may call this."""
    removed = []
    for path in sorted(store_dir.glob("bulk-*.sst")):
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed


@dataclass(frozen=True)
class DiskSpace:
    """Free space where the node writes, against node.min_free_mb."""

    path: str
    free_mb: int
    min_free_mb: int

    @property
    def ok(self) -> bool:
        return self.free_mb >= self.min_free_mb


def disk_space(path: Path, min_free_mb: int) -> DiskSpace:
    usage = shutil.disk_usage(path)
    return DiskSpace(str(path), usage.free // (1024 * 1024), min_free_mb)


def clean_at_start(data_dir: Path, store_dir: Path | None) -> list[Path]:
    """Start-up: remove what killed loads left behind; logged, never fatal."""
    removed = remove_spools(data_dir)
    if store_dir is not None and store_dir.is_dir():
        removed += remove_bulk_files(store_dir)
    for path in removed:
        log.warning("removed a leftover of a failed load: %s", path)
    return removed
