"""SPARQL 1.1 result serialisers (JSON, XML, CSV, TSV) that stop at a row cap and a deadline.

Two ways, one contract: `serialise_solutions` runs pyoxigraph's own writer (Rust, GIL released)
on a query whose text already bounds its rows (`sparql.rewrite.with_limit`), checking the deadline
on every chunk; `read_solutions` + `write` handle any other solutions (remote, merged, mapped)
row by row.
"""

from __future__ import annotations

import re
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar
from xml.sax.saxutils import escape, quoteattr

import orjson
import pyoxigraph as ox

from node.errors import QueryTimeout

XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
RDF_LANGSTRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"
CHECK_EVERY = 256


@dataclass
class Table:
    """Solutions read so far, and whether the row cap cut them off."""

    variables: list[str]
    rows: list[list[ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple | None]]
    truncated: bool


def serialise_solutions(
    solutions: ox.QuerySolutions, media: str, max_rows: int, deadline: float
) -> tuple[bytes, int, bool]:
    """(body, rows, truncated): pyoxigraph writes the results; more than `max_rows` are cut off.

    Only for solutions whose query was limited to a few more than `max_rows` rows: the whole
    answer is written before it is counted. QueryTimeout once a chunk arrives after `deadline`.
    """
    sink = _DeadlineSink(deadline)
    solutions.serialize(sink, _NATIVE[media])
    if time.monotonic() > deadline:
        raise QueryTimeout("query cancelled: it ran past the configured timeout")
    body = b"".join(sink.parts)
    return _cap_rows(body, media, max_rows)


def read_solutions(solutions: ox.QuerySolutions, max_rows: int, deadline: float) -> Table:
    """Pull at most `max_rows` solutions, raising QueryTimeout once `deadline` has passed."""
    variables = [v.value for v in solutions.variables]
    width = len(variables)
    rows = []
    truncated = False
    for n, solution in enumerate(solutions):
        if n >= max_rows:
            truncated = True
            break
        if n % CHECK_EVERY == 0 and time.monotonic() > deadline:
            raise QueryTimeout("query cancelled: it ran past the configured timeout")
        rows.append([solution[i] for i in range(width)])
    if time.monotonic() > deadline:
        raise QueryTimeout("query cancelled: it ran past the configured timeout")
    return Table(variables, rows, truncated)


T = TypeVar("T")


def release_results(exc: BaseException) -> None:
    """Drop the locals of the finished frames behind `exc` (and its causes) in this thread.

    pyoxigraph's query results may only be freed by the thread that made them: freed elsewhere
    they are leaked, with an "unsendable ... dropped on another thread" error. An exception
    raised after a result existed (a timeout while writing it) holds it in its traceback's
    frames, and a future hands that exception to another thread. Call this before re-raising
    in the thread that evaluated.
    """
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        stack += (current.__cause__, current.__context__)


def in_this_thread(work: Callable[[], T]) -> T:
    """`work()`, with release_results on whatever it raises (for work handed to a thread)."""
    try:
        return work()
    except BaseException as exc:
        release_results(exc)
        raise


class _DeadlineSink:
    """A binary sink for pyoxigraph's writers that stops the writing once the deadline passes."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.parts: list[bytes] = []

    def write(self, chunk: bytes) -> int:
        if time.monotonic() > self.deadline:
            raise QueryTimeout("query cancelled: it ran past the configured timeout")
        self.parts.append(chunk)
        return len(chunk)

    def flush(self) -> None:
        pass


_NATIVE = {
    "application/sparql-results+json": ox.QueryResultsFormat.JSON,
    "application/sparql-results+xml": ox.QueryResultsFormat.XML,
    "text/csv": ox.QueryResultsFormat.CSV,
    "text/tab-separated-values": ox.QueryResultsFormat.TSV,
}


def _cap_rows(body: bytes, media: str, max_rows: int) -> tuple[bytes, int, bool]:
    """Count the rows of a written result and cut it to `max_rows` rows when it has more."""
    if media == "application/sparql-results+json":
        rows = _json_rows(body)
        if rows is not None and rows <= max_rows:
            return body, rows, False
        doc = orjson.loads(body)
        bindings = doc["results"]["bindings"]
        if len(bindings) <= max_rows:
            return body, len(bindings), False
        doc["results"]["bindings"] = bindings[:max_rows]
        return orjson.dumps(doc), max_rows, True
    if media == "application/sparql-results+xml":
        # '<' is always escaped in text and attribute values, so this tag is only ever markup
        rows = body.count(b"<result>")
        if rows <= max_rows:
            return body, rows, False
        cut = -1
        for _ in range(max_rows + 1):
            cut = body.index(b"<result>", cut + 1)
        return body[:cut] + b"</results></sparql>", max_rows, True
    # CSV quotes a value holding a line break, TSV escapes it: a record ends at an end of line
    # outside quotes (CSV doubles a quote inside a quoted value, so parity tells inside from out).
    csv = media == "text/csv"
    eol = b"\r\n" if csv else b"\n"
    if not csv or b'"' not in body:
        rows = body.count(eol) - 1
        if rows <= max_rows:
            return body, rows, False
    records, quotes, offset, cut = 0, 0, 0, 0
    for piece in body.split(eol)[:-1]:
        offset += len(piece) + len(eol)
        quotes += piece.count(b'"') if csv else 0
        if quotes % 2 == 0:
            records += 1
            if records == max_rows + 1:  # the header and max_rows rows end here
                cut = offset
    rows = records - 1
    if rows <= max_rows:
        return body, rows, False
    return body[:cut], max_rows, True


def _json_rows(body: bytes) -> int | None:
    """Rows of pyoxigraph's compact SPARQL JSON, counted in the bytes; None when unsure.

    A row after the first starts with `,{"` and a variable name. Inside a string a quote is
    escaped, so those bytes there can only end a string, and then `}`, `,` or `]` follows: the
    pattern skips them. `,{}` is an empty row or a literal's text: unsure, the caller parses.
    """
    first = body.find(b'"bindings":[')
    if first < 0:
        return None
    head = body[first + 12 : first + 14]
    if head == b"]}":
        return 0
    if head != b'{"':
        return None
    starts = _ROW_STARTS.findall(body, first + 14)
    if b",{}" in starts:
        return None
    return 1 + len(starts)


_ROW_STARTS = re.compile(rb',\{(?:"(?![},\]])|\})')


def write(table: Table, media: str) -> bytes:
    """The table in one of the four SPARQL results formats."""
    if media == "application/sparql-results+json":
        return _json(table)
    if media == "application/sparql-results+xml":
        return _xml(table)
    if media == "text/csv":
        return _csv(table)
    if media == "text/tab-separated-values":
        return _tsv(table)
    raise ValueError(f"not a SPARQL results type: {media}")


def write_boolean(value: bool, media: str) -> bytes:
    """An ASK answer; CSV/TSV carry it as a one-cell table, as common engines do."""
    if media == "application/sparql-results+json":
        return orjson.dumps({"head": {}, "boolean": value})
    if media == "application/sparql-results+xml":
        return (
            '<?xml version="1.0"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#">'
            f"<head/><boolean>{'true' if value else 'false'}</boolean></sparql>\n"
        ).encode()
    return b"_askResult\r\n" + (b"true" if value else b"false") + b"\r\n"


def _json_term(term: object) -> dict[str, object]:
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    if isinstance(term, ox.Literal):
        out: dict[str, object] = {"type": "literal", "value": term.value}
        if term.language:
            out["xml:lang"] = term.language
        elif term.datatype.value != XSD_STRING:
            out["datatype"] = term.datatype.value
        return out
    if isinstance(term, ox.Triple):
        return {
            "type": "triple",
            "value": {
                "subject": _json_term(term.subject),
                "predicate": _json_term(term.predicate),
                "object": _json_term(term.object),
            },
        }
    raise TypeError(f"unexpected term {term!r}")


def _json(table: Table) -> bytes:
    names = table.variables
    cache: dict[object, dict[str, object]] = {}
    bindings = []
    for row in table.rows:
        binding = {}
        for name, term in zip(names, row, strict=True):
            if term is None:
                continue
            converted = cache.get(term)
            if converted is None:
                converted = _json_term(term)
                if len(cache) < 100_000:
                    cache[term] = converted
            binding[name] = converted
        bindings.append(binding)
    return orjson.dumps({"head": {"vars": names}, "results": {"bindings": bindings}})


def _xml_term(term: object) -> str:
    if isinstance(term, ox.NamedNode):
        return f"<uri>{escape(term.value)}</uri>"
    if isinstance(term, ox.BlankNode):
        return f"<bnode>{escape(term.value)}</bnode>"
    if isinstance(term, ox.Literal):
        if term.language:
            return f"<literal xml:lang={quoteattr(term.language)}>{escape(term.value)}</literal>"
        if term.datatype.value != XSD_STRING:
            return (
                f"<literal datatype={quoteattr(term.datatype.value)}>{escape(term.value)}</literal>"
            )
        return f"<literal>{escape(term.value)}</literal>"
    if isinstance(term, ox.Triple):
        return (
            f"<triple><subject>{_xml_term(term.subject)}</subject>"
            f"<predicate>{_xml_term(term.predicate)}</predicate>"
            f"<object>{_xml_term(term.object)}</object></triple>"
        )
    raise TypeError(f"unexpected term {term!r}")


def _xml(table: Table) -> bytes:
    parts = [
        '<?xml version="1.0"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#"><head>',
        *(f"<variable name={quoteattr(v)}/>" for v in table.variables),
        "</head><results>",
    ]
    for row in table.rows:
        parts.append("<result>")
        for name, term in zip(table.variables, row, strict=True):
            if term is not None:
                parts.append(f"<binding name={quoteattr(name)}>{_xml_term(term)}</binding>")
        parts.append("</result>")
    parts.append("</results></sparql>\n")
    return "".join(parts).encode()


def _csv_cell(term: object) -> str:
    if term is None:
        return ""
    value = term.value if not isinstance(term, ox.Triple) else str(term)
    if isinstance(term, ox.BlankNode):
        value = f"_:{value}"
    if any(c in value for c in ',"\r\n'):
        value = '"' + value.replace('"', '""') + '"'
    return value


def _csv(table: Table) -> bytes:
    lines = [",".join(_csv_cell(ox.Literal(v)) for v in table.variables)]
    lines.extend(",".join(_csv_cell(t) for t in row) for row in table.rows)
    return ("\r\n".join(lines) + "\r\n").encode()


def _tsv(table: Table) -> bytes:
    lines = ["\t".join(f"?{v}" for v in table.variables)]
    lines.extend("\t".join("" if t is None else str(t) for t in row) for row in table.rows)
    return ("\n".join(lines) + "\n").encode()


def collect_triples(
    triples: Iterable[ox.Triple], max_rows: int, deadline: float
) -> tuple[list[ox.Triple], bool]:
    """CONSTRUCT/DESCRIBE output up to the cap, checking the deadline as it goes."""
    out: list[ox.Triple] = []
    for n, triple in enumerate(triples):
        if n >= max_rows:
            return out, True
        if n % CHECK_EVERY == 0 and time.monotonic() > deadline:
            raise QueryTimeout("query cancelled: it ran past the configured timeout")
        out.append(triple)
    if time.monotonic() > deadline:
        raise QueryTimeout("query cancelled: it ran past the configured timeout")
    return out, False
