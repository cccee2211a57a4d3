"""Accept header -> one of the formats a route offers, and RDF serialisation with pyoxigraph."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import pyoxigraph as ox

from node.errors import NodeError, ProtocolError
from node.jsonld import compact, load_context

HTML = "text/html"
JSONLD = "application/ld+json"
TURTLE = "text/turtle"
NTRIPLES = "application/n-triples"
RDFXML = "application/rdf+xml"
NQUADS = "application/n-quads"
TRIG = "application/trig"

RDF_TYPES: tuple[str, ...] = (JSONLD, TURTLE, NTRIPLES, RDFXML)
RESOURCE_TYPES: tuple[str, ...] = (JSONLD, TURTLE, NTRIPLES, RDFXML, HTML)
RESULTS_TYPES: tuple[str, ...] = (
    "application/sparql-results+json",
    "application/sparql-results+xml",
    "text/csv",
    "text/tab-separated-values",
)
# Short names for ?format= (handy in browsers and shell scripts).
FORMAT_ALIASES = {
    "json": "application/sparql-results+json",
    "xml": "application/sparql-results+xml",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "jsonld": JSONLD,
    "ttl": TURTLE,
    "turtle": TURTLE,
    "nt": NTRIPLES,
    "ntriples": NTRIPLES,
    "rdf": RDFXML,
    "rdfxml": RDFXML,
    "html": HTML,
}
_CHARSET = {
    JSONLD: JSONLD,
    TURTLE: "text/turtle; charset=utf-8",
    NTRIPLES: "application/n-triples; charset=utf-8",
    RDFXML: "application/rdf+xml; charset=utf-8",
    HTML: "text/html; charset=utf-8",
    "text/csv": "text/csv; charset=utf-8",
    "text/tab-separated-values": "text/tab-separated-values; charset=utf-8",
}


class NotAcceptable(NodeError):
    """No offered type matches the Accept header (HTTP 406; the body lists what is offered)."""

    status = 406
    code = "not_acceptable"

    def __init__(self, accept: str, offered: Sequence[str]):
        self.accept, self.offered = accept, list(offered)
        super().__init__(
            f"cannot produce any of {accept!r}; offered: {', '.join(offered)}",
            offered=list(offered),
        )


@dataclass(frozen=True)
class _Range:
    type: str
    subtype: str
    q: float
    order: int


def choose(accept: str | None, offered: Sequence[str], format_param: str | None = None) -> str:
    """The best offered media type for an Accept header; `?format=` wins when given."""
    if format_param:
        wanted = FORMAT_ALIASES.get(format_param.lower(), format_param.lower())
        if wanted in offered:
            return wanted
        raise NotAcceptable(f"format={format_param}", offered)
    if not accept or accept.strip() in ("*/*", ""):
        return offered[0]
    return _choose_cached(accept, tuple(offered))


@lru_cache(maxsize=512)
def _choose_cached(accept: str, offered: tuple[str, ...]) -> str:
    ranges = _parse(accept)
    best: tuple[float, int, int, int] | None = None
    chosen = None
    for index, media in enumerate(offered):
        mtype, _, msub = media.partition("/")
        for r in ranges:
            if r.type == "*" or (r.type == mtype and r.subtype in ("*", msub)):
                specificity = (r.type != "*") + (r.subtype != "*")
                # Higher q wins, then the more specific range, then the client's order, then ours.
                key = (r.q, specificity, -r.order, -index)
                if r.q > 0 and (best is None or key > best):
                    best, chosen = key, media
                break
    if chosen is None:
        raise NotAcceptable(accept, offered)
    return chosen


def _parse(accept: str) -> list[_Range]:
    ranges = []
    for order, part in enumerate(accept.split(",")):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if "/" not in media:
            continue
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(value)))
                except ValueError:
                    q = 0.0
        mtype, _, sub = media.partition("/")
        ranges.append(_Range(mtype, sub, q, order))
    # Most specific first so that "text/turtle;q=0" beats "text/*".
    ranges.sort(key=lambda r: (r.type == "*") + (r.subtype == "*"))
    return ranges


def content_type(media: str) -> str:
    """The Content-Type header value (with charset for text formats)."""
    return _CHARSET.get(media, media)


def serialise_triples(triples: Iterable[ox.Triple], media: str) -> bytes:
    """RDF bytes in `media` (JSON-LD compacted with the node context; the rest by pyoxigraph)."""
    if media == JSONLD:
        return compact(triples, load_context())
    fmt = ox.RdfFormat.from_media_type(media)
    if fmt is None:
        raise NotAcceptable(media, RDF_TYPES)
    if fmt in (ox.RdfFormat.TURTLE, ox.RdfFormat.RDF_XML):
        return ox.serialize(triples, format=fmt, prefixes=_prefixes())
    return ox.serialize(triples, format=fmt)


@lru_cache(maxsize=1)
def _prefixes() -> dict[str, str]:
    return dict(load_context().prefixes)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Does an If-None-Match header match `etag`? Weak comparison, as RFC 9110 asks."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return etag in tags


# --- SPARQL 1.1 Protocol: `format` parameters and request charsets ------------------------------

# A `format` value names a media type in the terms of the query form: `xml` is SPARQL results XML
# for SELECT/ASK but RDF/XML for CONSTRUCT/DESCRIBE (as SPARQLWrapper and most engines mean it).
_RESULTS_FORMATS = {
    "json": "application/sparql-results+json",
    "srj": "application/sparql-results+json",
    "application/json": "application/sparql-results+json",
    "xml": "application/sparql-results+xml",
    "srx": "application/sparql-results+xml",
    "application/xml": "application/sparql-results+xml",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
}
_GRAPH_FORMATS = {
    "xml": RDFXML,
    "rdf": RDFXML,
    "rdfxml": RDFXML,
    "rdf+xml": RDFXML,
    "application/xml": RDFXML,
    "json": JSONLD,
    "json-ld": JSONLD,
    "jsonld": JSONLD,
    "application/json": JSONLD,
    "ttl": TURTLE,
    "turtle": TURTLE,
    "application/turtle": TURTLE,
    # Turtle is N3 (every Turtle document is an N3 document), so an N3 reader reads it.
    "n3": TURTLE,
    "text/n3": TURTLE,
    "text/rdf+n3": TURTLE,
    "application/n3": TURTLE,
    "nt": NTRIPLES,
    "ntriples": NTRIPLES,
    "n-triples": NTRIPLES,
}


def choose_sparql(
    accept: str | None, offered: Sequence[str], formats: str | Sequence[str] | None = None
) -> str:
    """The SPARQL answer's media type: the first `format` value that names an offered type, else Accept.

    Clients send `format` for whichever engine they meet (SPARQLWrapper sends `format=xml` for a
    CONSTRUCT, `format=n3`, `format=json-ld`, and repeats TSV as a media type), so a value this
    node cannot produce for this query form is ignored rather than refused: the Accept header
    then decides, and only a failed Accept is a 406.
    """
    values = [formats] if isinstance(formats, str) else list(formats or ())
    graph = JSONLD in offered
    table = _GRAPH_FORMATS if graph else _RESULTS_FORMATS
    for value in values:
        key = value.strip().lower()
        media = table.get(key, FORMAT_ALIASES.get(key, key))
        if media in offered:
            return media
    return choose(accept, offered)


_CHARSET_PARAM = re.compile(r';\s*charset\s*=\s*"?([^";\s]*)"?', re.I)
UTF8_NAMES = frozenset({"utf-8", "utf8"})
ASCII_NAMES = frozenset({"us-ascii", "ascii", "iso646-us"})


def decode_request_body(body: bytes, ctype: str, what: str) -> str:
    """A SPARQL request body as text: UTF-8, as the SPARQL 1.1 Protocol requires.

    Rule: no charset or `charset=utf-8` is read as UTF-8; `charset=us-ascii` is accepted when the
    body is ASCII (ASCII is a subset of UTF-8, so the body really is in the declared charset and
    reads the same). Any other declared charset is 415, whatever the bytes: the node does not
    transcode, and a body that is valid in both (an ASCII body declared ISO-8859-1, the W3C
    protocol case) is still declared as something the protocol does not allow.
    """
    match = _CHARSET_PARAM.search(ctype)
    charset = match.group(1).lower() if match else None
    if charset is not None and charset not in UTF8_NAMES | ASCII_NAMES:
        raise ProtocolError(
            f"{what} declared charset={match.group(1) if match else ''}: the SPARQL 1.1 Protocol "
            "requires UTF-8; send charset=utf-8 (or no charset)",
            415,
            charset=charset,
        )
    if charset in ASCII_NAMES and not body.isascii():
        raise ProtocolError(f"{what} declared charset={charset} but is not ASCII", 415)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(f"{what} is not UTF-8") from None
