"""GET /id/...: every IRI under the node's base dereferences to its description, per caller."""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, unquote_to_bytes

import pyoxigraph as ox
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Route

from node.auth import caller_from_header
from node.errors import BadRequest
from node.negotiation import (
    HTML,
    RESOURCE_TYPES,
    choose,
    content_type,
    etag_matches,
    serialise_triples,
)
from node.runtime import Runtime
from node.store import UnknownDataset
from node.web import resource_page
from trust.errors import InvalidToken

ALTERNATES = resource_page.ALTERNATES
OFFERED = ", ".join(RESOURCE_TYPES)
# Description cache budget, in quads over all entries (a quad plus its share of the cached
# serialisations is a few hundred bytes); larger descriptions are not cached at all.
CACHE_QUADS = 50_000
CACHE_MAX_QUADS_PER_ENTRY = 512


_HEADERS = {"Vary": "Accept, Authorization", "Cache-Control": "private, no-cache"}
_RAW_HEADERS = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in _HEADERS.items()]


class DescriptionResponse(Response):
    """A 200 description: the same headers Response(...) would send, built without its checks."""

    def __init__(self, body: bytes, media_type: str, etag: str) -> None:
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"etag", etag.encode("latin-1")),
            *_RAW_HEADERS,
            (b"content-length", str(len(body)).encode("latin-1")),
            (b"content-type", media_type.encode("latin-1")),
        ]


class UnknownResource(UnknownDataset):
    """No dataset of this node says anything about the IRI (HTTP 404)."""


def resource_routes(rt: Runtime) -> list[Route]:
    """The dereferencing route; runs inline for the embedded store (it is fast), in a thread otherwise.

    With the embedded store, store reads are cached per store version (the store owns every
    write and bumps its version after each, so an entry never outlives the data it was read
    from). The policy decision, its audit entry and the filtering run on every request; only
    the bytes of a description the caller may read in full are reused.
    """
    return [Route("/id/{path:path}", ResourceEndpoint(rt), methods=["GET", "HEAD"])]


class ResourceEndpoint:
    """GET /id/... as a plain ASGI app: no Request object or per-route exception wrapper (errors
    propagate to the app's exception handlers as before); the headers are read in one pass."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.inline = rt.settings.store_backend == "oxigraph"
        self.cache = DescriptionCache() if self.inline else None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        rt = self.rt
        authorization = accept = if_none_match = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is None:
                    authorization = value.decode("latin-1")
            elif name == b"accept":
                if accept is None:
                    accept = value.decode("latin-1")
            elif name == b"if-none-match" and if_none_match is None:
                if_none_match = value.decode("latin-1")
        if authorization is None:
            raise InvalidToken("token_missing", "Authorization: Bearer token required")
        caller = caller_from_header(authorization, rt.layer).party_id
        fmt = _format_param(scope.get("query_string", b""))
        media = choose(accept, RESOURCE_TYPES, fmt)
        iri = resource_iri(rt.settings.base_iri, scope)
        cache = self.cache
        if cache is not None:
            # The decision's audit entry is group-committed with concurrent requests' entries;
            # nothing is answered (not even a 403/404) before it is committed.
            with rt.audit.deferred() as pending:
                try:
                    body, etag = describe_cached(rt, cache, caller, iri, media)
                except BaseException:
                    await pending.wait()  # an unwritable audit log answers 503 instead
                    raise
            await pending.wait()
        else:
            body = await run_in_threadpool(describe, rt, caller, iri, media)
            etag = _etag(body)
        if etag_matches(if_none_match, etag):
            response: Response = Response(status_code=304, headers={"ETag": etag, **_HEADERS})
        else:
            response = DescriptionResponse(body, content_type(media), etag)
        await response(scope, receive, send)


_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def resource_iri(base_iri: str, scope: dict) -> str:
    """The IRI a request names: the base plus the path as sent (percent-encoding kept).

    BadRequest (400 invalid_request) for a path that names no IRI: raw bytes that are not UTF-8,
    a '%' not followed by two hex digits, percent-encoded bytes that are not UTF-8 (overlong
    forms, surrogates) or that decode to a control character, or anything else that makes the
    whole string an invalid IRI (RFC 3987).
    """
    raw = scope.get("raw_path") or scope["path"].encode("utf-8")
    raw = raw.split(b"?", 1)[0]
    shown = raw[:120].decode("latin-1")
    if _PERCENT.search(raw):
        raise _bad_path(shown, "'%' must be followed by two hex digits")
    try:
        path = raw.decode("utf-8")
        decoded = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise _bad_path(shown, "the path (after percent-decoding) is not valid UTF-8") from None
    if _CONTROL.search(decoded):
        raise _bad_path(shown, "the path encodes a control character")
    iri = base_iri + path
    try:
        ox.NamedNode(iri)
    except ValueError as exc:
        raise _bad_path(shown, str(exc)) from None
    return iri


def _bad_path(path: str, problem: str) -> BadRequest:
    return BadRequest(f"not a valid resource IRI: {path!r}: {problem}", code="invalid_request")


def _format_param(query_string: bytes) -> str | None:
    """`?format=` (the last one, as Starlette's query_params.get)."""
    if not query_string:
        return None
    found = None
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if key == "format":
            found = value
    return found


def describe(rt: Runtime, caller: str, iri: str, media: str) -> bytes:
    """The caller's view of one resource in `media`; 404 if unknown, 403 if nothing is permitted."""
    graphs = dataset_graphs(rt)
    found = _read(rt, iri, graphs)
    if media == HTML:
        return _page(rt, caller, found, graphs)
    triples = _filter(rt, caller, found, graphs)
    return serialise_triples(triples, media)


def _page(rt: Runtime, caller: str, found: Described, graphs: list[str]) -> bytes:
    """The page a person sees (node.web.resource_page), with labels from readable datasets."""
    return resource_page.render(
        rt, caller, found.iri, found.quads, graphs, lambda t: _labels(rt, caller, t, graphs)
    )


def describe_cached(
    rt: Runtime, cache: DescriptionCache, caller: str, iri: str, media: str
) -> tuple[bytes, str]:
    """`describe` with the store read (and full-view serialisations) cached per store version."""
    version = rt.store.version()
    graphs = rt.enforcer.dataset_graphs(rt.store, version)
    found = cache.get(version, iri)
    if found is None:
        found = _read(rt, iri, graphs)
        cache.put(version, iri, found)
    if media == HTML:
        body = _page(rt, caller, found, graphs)
        return body, _etag(body)
    triples = _filter(rt, caller, found, graphs)
    if len(triples) != len(found.triples):  # a partial view: serialise for this caller only
        body = serialise_triples(triples, media)
        return body, _etag(body)
    hit = found.bodies.get(media)
    if hit is None:
        body = serialise_triples(triples, media)
        hit = found.bodies[media] = (body, _etag(body))
    return hit


@dataclass
class Described:
    """One resource as read from the store: its quads, de-duplicated triples, holding graphs."""

    iri: str
    quads: list[ox.Quad]
    triples: list[ox.Triple]
    holding: list[str]
    bodies: dict[str, tuple[bytes, str]] = field(default_factory=dict)


def _read(rt: Runtime, iri: str, graphs: list[str]) -> Described:
    quads = list(rt.store.quads(subject=iri, graphs=graphs))
    if not quads:
        # The path may be percent-encoded differently from the stored IRI; try the decoded form
        # (resource_iri checked that it is UTF-8), when that is an IRI at all ('%20' -> ' ' is not).
        decoded = unquote(iri)
        if decoded != iri and _is_iri(decoded):
            quads = list(rt.store.quads(subject=decoded, graphs=graphs))
            iri = decoded
    if not quads:
        raise UnknownResource(f"no resource {iri} on this node")
    holding = sorted({q.graph_name.value for q in quads})
    triples = [q.triple for q in quads]
    if len(holding) > 1:
        triples = list(dict.fromkeys(triples))
    return Described(iri, quads, triples, holding)


def _filter(rt: Runtime, caller: str, found: Described, graphs: list[str]) -> list[ox.Triple]:
    """The enforcer's decision (audited) and the permitted triples; AccessDenied if none."""
    if len(found.holding) == 1:
        # Every triple is in the one holding graph: plain triples say the same, more cheaply.
        return rt.enforcer.describe(caller, found.triples, found.iri, found.holding)
    return rt.enforcer.describe(caller, found.quads, found.iri, graphs)


def _is_iri(text: str) -> bool:
    try:
        ox.NamedNode(text)
    except ValueError:
        return False
    return True


class DescriptionCache:
    """LRU of store reads keyed by IRI, emptied whenever the store version changes."""

    def __init__(
        self, budget: int = CACHE_QUADS, max_entry: int = CACHE_MAX_QUADS_PER_ENTRY
    ) -> None:
        self.budget, self.max_entry = budget, max_entry
        self._version: int | None = None
        self._items: OrderedDict[str, Described] = OrderedDict()
        self._weight = 0
        self._lock = threading.Lock()

    def get(self, version: int, iri: str) -> Described | None:
        with self._lock:
            if version != self._version:
                return None
            found = self._items.get(iri)
            if found is not None:
                self._items.move_to_end(iri)
            return found

    def put(self, version: int, iri: str, found: Described) -> None:
        if len(found.quads) > self.max_entry:
            return
        with self._lock:
            if version != self._version:
                self._items.clear()
                self._version, self._weight = version, 0
            old = self._items.pop(iri, None)
            if old is not None:
                self._weight -= len(old.quads)
            self._items[iri] = found
            self._weight += len(found.quads)
            while self._weight > self.budget:
                _, evicted = self._items.popitem(last=False)
                self._weight -= len(evicted.quads)


def dataset_graphs(rt: Runtime) -> list[str]:
    """This node's dataset graphs, cached until the store changes."""
    return rt.enforcer.dataset_graphs(rt.store, rt.store.version())


def _etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _labels(
    rt: Runtime, caller: str, triples: list[ox.Triple], graphs: list[str]
) -> dict[str, str]:
    """Labels of linked resources, taken only from datasets the caller may read as a whole."""
    scope = rt.enforcer.scope_for(caller)
    if "*" in scope.whole_datasets:
        readable = graphs
    else:
        readable = [g for g in graphs if g in scope.whole_datasets]
    labels: dict[str, str] = {}
    for t in triples:
        o = t.object
        if isinstance(o, ox.NamedNode) and o.value not in labels and readable:
            for q in rt.store.quads(
                subject=o.value,
                predicate="http://www.w3.org/2000/01/rdf-schema#label",
                graphs=readable,
            ):
                labels[o.value] = q.object.value
                break
    return labels
