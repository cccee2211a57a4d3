"""Describing one resource for one caller: read it from the store, let the enforcement point
filter it, serialise or render it. Store reads (and full-view serialisations) are cached per
store version; the decision and its audit entry are made on every request."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

import pyoxigraph as ox

from node.enforcement import Caller
from node.negotiation import HTML, serialise_triples
from node.runtime import Runtime
from node.store import UnknownDataset

__all__ = [
    "DescriptionCache",
    "Described",
    "UnknownResource",
    "describe",
    "describe_cached",
    "etag_of",
]

# Description cache budget, in quads over all entries (a quad plus its share of the cached
# serialisations is a few hundred bytes); larger descriptions are not cached at all.
CACHE_QUADS = 50_000
CACHE_MAX_QUADS_PER_ENTRY = 512


# The HTML renderer of one resource (node.web.resource_page.render), handed in by the HTTP layer
# so that this use case does not import presentation: (rt, caller, iri, quads, graphs, labels).
PageRenderer = Callable[..., bytes]


class UnknownResource(UnknownDataset):
    """No dataset of this node says anything about the IRI (HTTP 404)."""


def describe(
    rt: Runtime, caller: Caller | str, iri: str, media: str, page: PageRenderer | None = None
) -> bytes:
    """The caller's view of one resource in `media`; 404 if unknown, 403 if nothing is permitted."""
    graphs = dataset_graphs(rt)
    found = _read(rt, iri, graphs)
    if media == HTML:
        return _page(rt, caller, found, graphs, page)
    triples = _filter(rt, caller, found, graphs)
    return serialise_triples(triples, media)


def _page(
    rt: Runtime,
    caller: Caller | str,
    found: Described,
    graphs: list[str],
    page: PageRenderer | None,
) -> bytes:
    """The page a person sees, rendered by `page`, with labels from readable datasets."""
    if page is None:
        raise ValueError("an HTML view needs a page renderer")
    return page(
        rt, caller, found.iri, found.quads, graphs, lambda t: _labels(rt, _party(caller), t, graphs)
    )


def describe_cached(
    rt: Runtime,
    cache: DescriptionCache,
    caller: Caller | str,
    iri: str,
    media: str,
    page: PageRenderer | None = None,
) -> tuple[bytes, str]:
    """`describe` with the store read (and full-view serialisations) cached per store version."""
    version = rt.store.version()
    graphs = rt.enforcer.dataset_graphs(rt.store, version)
    found = cache.get(version, iri)
    if found is None:
        found = _read(rt, iri, graphs)
        cache.put(version, iri, found)
    if media == HTML:
        body = _page(rt, caller, found, graphs, page)
        return body, etag_of(body)
    triples = _filter(rt, caller, found, graphs)
    if len(triples) != len(found.triples):  # a partial view: serialise for this caller only
        body = serialise_triples(triples, media)
        return body, etag_of(body)
    hit = found.bodies.get(media)
    if hit is None:
        body = serialise_triples(triples, media)
        hit = found.bodies[media] = (body, etag_of(body))
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


def _filter(
    rt: Runtime, caller: Caller | str, found: Described, graphs: list[str]
) -> list[ox.Triple]:
    """The enforcer's decision (audited) and the permitted triples; AccessDenied if none."""
    if len(found.holding) == 1:
        # Every triple is in the one holding graph: plain triples say the same, more cheaply.
        return rt.enforcer.permitted_triples(caller, found.triples, found.iri, found.holding)
    return rt.enforcer.permitted_triples(caller, found.quads, found.iri, graphs)


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


def etag_of(body: bytes) -> str:
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


def _party(caller: Caller | str) -> str:
    return caller.party_id if isinstance(caller, Caller) else caller
