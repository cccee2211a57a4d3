"""Input for loads: the RDF format of a file, and a binary stream (gzip aware, with progress)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pyoxigraph as ox

Progress = Callable[[int], None]  # called with the number of bytes read so far


def format_for(path: str | Path, explicit: str | None = None) -> ox.RdfFormat:
    """The RDF format from an explicit media type/extension, or from the file name."""
    if explicit:
        fmt = ox.RdfFormat.from_media_type(explicit) or ox.RdfFormat.from_extension(explicit)
        if fmt is None:
            raise _load_error(str(path), None, f"unknown RDF format {explicit!r}")
        return fmt
    name = str(path).removesuffix(".gz")
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    fmt = ox.RdfFormat.from_extension(ext) or {"jsonld": ox.RdfFormat.JSON_LD}.get(ext)
    if fmt is None:
        raise _load_error(
            str(path),
            None,
            "cannot tell the RDF format from the file name; use .ttl, .nt, .nq, .trig, .jsonld "
            "or .rdf, or pass --format",
        )
    return fmt


def _line_of(exc: SyntaxError) -> int | None:
    return exc.lineno if isinstance(exc.lineno, int) else None


def _reason_of(exc: SyntaxError) -> str:
    return str(exc.msg if exc.msg else exc)


class _ProgressReader(io.RawIOBase):
    """Wraps a binary stream and reports bytes read, for progress bars on big loads."""

    def __init__(self, inner: IO[bytes], progress: Progress):
        self._inner, self._progress, self._done = inner, progress, 0
        self._last = time.monotonic()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._done += n
        self._progress(self._done)
        return n


class _open_input:
    """Context manager giving a binary stream for a path (gzip aware), bytes, or an open stream."""

    def __init__(self, source: Path | bytes | IO[bytes], progress: Progress | None):
        self._source, self._progress = source, progress
        self._close: Callable[[], None] | None = None

    def __enter__(self) -> IO[bytes]:
        src = self._source
        if isinstance(src, bytes):
            fh: IO[bytes] = io.BytesIO(src)
        elif isinstance(src, Path):
            if str(src).endswith(".gz"):
                import gzip

                fh = gzip.open(src, "rb")
            else:
                fh = open(src, "rb")  # noqa: SIM115 - closed in __exit__
            self._close = fh.close
        else:
            fh = src
        if self._progress is not None:
            return io.BufferedReader(_ProgressReader(fh, self._progress), 1 << 20)  # type: ignore[return-value]
        return fh

    def __exit__(self, *exc: object) -> None:
        if self._close:
            self._close()


def _load_error(file: str, line: int | None, reason: str) -> Exception:
    from node.store.base import LoadError

    return LoadError(file, line, reason)
