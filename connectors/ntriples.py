"""Writing N-Triples text directly: fast, streaming and byte-for-byte deterministic."""

from __future__ import annotations

import math
import unicodedata
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from vocab.namespaces import XSD

_FORBIDDEN_IRI_CHARS = frozenset('<>"{}|^`\\ \t\r\n')
_SEGMENT_DELIMS = frozenset("!$&'()*+,;=:@")


class InvalidIri(ValueError):
    """A string that cannot be written as an N-Triples IRI."""


def iri(value: str) -> str:
    """``<value>`` after checking the IRI has a scheme and no characters N-Triples forbids."""
    if ":" not in value or any(ch in _FORBIDDEN_IRI_CHARS or ord(ch) < 0x20 for ch in value):
        raise InvalidIri(f"not an absolute IRI: {value!r}")
    return f"<{value}>"


def segment(value: str) -> str:
    """Percent-encode a value for one IRI path segment (only unreserved characters stay)."""
    return quote(str(value), safe="-._~")


def iri_segment(value: str) -> str:
    """Percent-encode only what an IRI path segment cannot hold (RFC 3987 ``ipchar`` stays).

    Letters of any script, sub-delimiters, ':' and '@' are kept: 'Höhe (m)' becomes
    'Höhe%20(m)'; '/', '?', '#', '%', spaces and controls are encoded. The text is NFC-normalised
    first so that one name always gives one IRI.
    """
    text = unicodedata.normalize("NFC", str(value))
    if text.isascii() and text.replace("-", "").replace("_", "").replace(".", "").isalnum():
        return text
    return "".join(
        ch if ch in _SEGMENT_DELIMS or _iunreserved(ch) else quote(ch, safe="") for ch in text
    )


def _iunreserved(ch: str) -> bool:
    code = ord(ch)
    if code < 0x80:
        return ch.isalnum() or ch in "-._~"
    # RFC 3987 ucschar, minus the ranges it leaves out (surrogates, specials, non-characters)
    return (
        0xA0 <= code <= 0xD7FF
        or 0xF900 <= code <= 0xFDCF
        or 0xFDF0 <= code <= 0xFFEF
        or (0x10000 <= code <= 0xEFFFD and (code & 0xFFFF) < 0xFFFE)
    ) and not unicodedata.category(ch).startswith(("Z", "C"))


def literal(value: str, datatype: str | None = None, lang: str | None = None) -> str:
    """An N-Triples literal; ``datatype`` is a full IRI (``xsd:`` names may be given as 'xsd:x')."""
    text = escape(value)
    if lang:
        return f'"{text}"@{lang}'
    if datatype and datatype != XSD + "string" and datatype != "xsd:string":
        if datatype.startswith("xsd:"):
            datatype = XSD + datatype[4:]
        return f'"{text}"^^<{datatype}>'
    return f'"{text}"'


def double(value: float) -> str:
    """An xsd:double literal with the canonical spelling of NaN and infinities."""
    if math.isnan(value):
        lex = "NaN"
    elif math.isinf(value):
        lex = "INF" if value > 0 else "-INF"
    else:
        lex = repr(float(value))
    return f'"{lex}"^^<{XSD}double>'


def boolean(value: bool) -> str:
    """An xsd:boolean literal."""
    return f'"{"true" if value else "false"}"^^<{XSD}boolean>'


def integer(value: int) -> str:
    """An xsd:integer literal."""
    return f'"{int(value)}"^^<{XSD}integer>'


def escape(value: str) -> str:
    """Escape a string for the inside of an N-Triples literal."""
    if not any(ch in value for ch in '\\"\n\r'):
        return value
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")


class NTriplesWriter:
    """Buffered writer of already-formatted terms (see iri/literal); counts what it wrote."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.count = 0
        self._fh = open(self.path, "w", encoding="utf-8", newline="\n", buffering=1 << 20)

    def triple(self, s: str, p: str, o: str) -> None:
        """Write one triple line."""
        self._fh.write(f"{s} {p} {o} .\n")
        self.count += 1

    def lines(self, text: str, count: int) -> None:
        """Write pre-formatted triple lines (``count`` of them) in one call, for hot loops."""
        self._fh.write(text)
        self.count += count

    def close(self) -> None:
        """Flush and close the file."""
        self._fh.close()

    def __enter__(self) -> NTriplesWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
