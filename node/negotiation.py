"""Accept header -> one of the formats a route offers, and RDF serialisation with pyoxigraph."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import pyoxigraph as ox

from node.errors import NodeError
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
