"""VoID statistics of each dataset as one caller may see it, cached per dataset version.

Federation engines (FedX, Comunica) and portals pick sources by these numbers, and a caller with
a partial grant must not learn more about a dataset than it may read, so the statistics are
computed inside the caller's scope (the enforcement point's decision; nothing is decided here).
They are computed once per (dataset version, scope) and then served from memory: a dataset's
version changes with every load or append, so a stale entry is never hit.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import pyoxigraph as ox

from node.runtime import Runtime
from node.store import DatasetInfo
from trust.delegation import WILDCARD, Scope
from vocab.iris import dataset_iri
from vocab.namespaces import DSGO, GEO, RDF_TYPE, SOSA, VOID, XSD

CACHE_SIZE = 512
MAX_LOCATIONS = 10


@dataclass(frozen=True)
class Location:
    """Where a dataset's data lies: a point as WKT with its CRS (RD New for IFC sites)."""

    crs: str  # CRS IRI
    x: float  # easting / longitude
    y: float  # northing / latitude

    def wkt(self) -> str:
        """GeoSPARQL WKT literal text, the CRS IRI first (omitted for CRS84, the default)."""
        point = f"POINT({_num(self.x)} {_num(self.y)})"
        if self.crs == CRS84:
            return point
        return f"<{self.crs}> {point}"


CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


@dataclass(frozen=True)
class DatasetStats:
    """VoID numbers of one dataset within one scope, and its coverage where the data has it."""

    graph: str
    triples: int
    subjects: int
    classes: tuple[tuple[str, int], ...]  # (class IRI, distinct instances), sorted by IRI
    properties: tuple[tuple[str, int], ...]  # (property IRI, triples), sorted by IRI
    locations: tuple[Location, ...] = ()
    period: tuple[ox.Literal, ox.Literal] | None = None  # earliest and latest observation time


@dataclass(frozen=True)
class DatasetView:
    """A dataset a caller may read (at least in part) with its statistics in the caller's scope."""

    info: DatasetInfo
    stats: DatasetStats
    whole: bool  # the caller may read the whole dataset (then /dataset/{name} is theirs too)
    key: Hashable = None  # the statistics' cache key: equal keys, equal descriptions


class StatsCache:
    """LRU of DatasetStats keyed by (graph, dataset version, the part of the scope over it);
    also the store's dataset list at its current version, and serialised descriptions."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._datasets: tuple[Hashable, list[DatasetInfo]] | None = None
        self.hits = 0
        self.misses = 0

    def datasets(self, rt: Runtime) -> list[DatasetInfo]:
        """`rt.store.datasets()`, asked again only when the store's version changes."""
        version = rt.store.version()
        cached = self._datasets
        if cached is not None and cached[0] == version:
            return cached[1]
        found = rt.store.datasets()
        self._datasets = (version, found)
        return found

    def get(self, key: Hashable) -> Any:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
            return found

    def put(self, key: Hashable, stats: Any) -> None:
        with self._lock:
            self._items[key] = stats
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


_CACHES: dict[int, tuple[Runtime, StatsCache]] = {}
_CACHES_LOCK = threading.Lock()


def stats_cache(rt: Runtime) -> StatsCache:
    """The runtime's one statistics cache (shared by the catalog, VoID and service description)."""
    with _CACHES_LOCK:
        entry = _CACHES.get(id(rt))
        if entry is None or entry[0] is not rt:
            entry = (rt, StatsCache())
            _CACHES[id(rt)] = entry
        return entry[1]


def visible(rt: Runtime, party: str | None, only: str | None = None) -> list[DatasetView]:
    """The datasets `party` may read at least in part (or just `only`), with statistics in its scope.

    Anonymous callers see none (as the catalog). The scope is the enforcement point's.
    """
    if party is None:
        return []
    scope = rt.enforcer.scope_for(party)
    out = []
    for info in stats_cache(rt).datasets(rt):
        if only is not None and info.name != only:
            continue
        whole = WILDCARD in scope.whole_datasets or info.graph in scope.whole_datasets
        grants = _grants_over(scope, info.graph)
        if not whole and not grants:
            continue
        key = (version_key(rt, info), "whole" if whole else grants)
        stats = dataset_stats(rt, info, OWNER_WHOLE if whole else scope, key)
        if whole or stats.triples:  # a partial grant that reaches nothing here: not shown
            out.append(DatasetView(info, stats, whole, key))
    return out


def _grants_over(scope: Scope, graph: str) -> tuple[Any, ...]:
    return tuple(
        g
        for g in scope.partial
        if g.datasets is None or WILDCARD in g.datasets or graph in g.datasets
    )


def version_key(rt: Runtime, info: DatasetInfo) -> Hashable:
    """What changes whenever the dataset does: its physical graph, size and modification time."""
    return (info.graph, rt.store.physical_graph(info.graph), info.triples, info.modified)


def dataset_stats(rt: Runtime, info: DatasetInfo, scope: Scope, key: Hashable) -> DatasetStats:
    """The statistics of `info` in `scope`, from the cache under `key` or computed (then cached).

    For a whole-dataset reader `scope` is OWNER_WHOLE: the query names only this dataset, which
    the caller may read in full, and every such reader then shares one cache entry.
    """
    cache = stats_cache(rt)
    found = cache.get(key)
    if found is not None:
        return found
    stats = compute_stats(rt, info.graph, scope)
    cache.put(key, stats)
    return stats


OWNER_WHOLE = Scope(whole_datasets=frozenset({WILDCARD}), policy_ids=("void",))


def compute_stats(rt: Runtime, graph: str, scope: Scope) -> DatasetStats:
    """Count triples, subjects, classes and properties of `graph` within `scope` (one pass each)."""

    def rows(query: str) -> list[Any]:
        """Rows of `query` (its `@FROM@` replaced by the dataset), evaluated in the scope."""
        text = query.replace("@FROM@", f"FROM <{graph}>")
        return list(rt.enforcer.run_scoped(rt.store, text, scope, data_version=rt.store.version()))

    (totals,) = rows("SELECT (COUNT(*) AS ?t) (COUNT(DISTINCT ?s) AS ?n) @FROM@ WHERE { ?s ?p ?o }")
    classes = rows(
        f"SELECT ?c (COUNT(DISTINCT ?s) AS ?n) @FROM@ WHERE {{ ?s <{RDF_TYPE}> ?c . FILTER(isIRI(?c)) }} GROUP BY ?c"
    )
    properties = rows("SELECT ?p (COUNT(*) AS ?n) @FROM@ WHERE { ?s ?p ?o } GROUP BY ?p")
    return DatasetStats(
        graph=graph,
        triples=_int(totals["t"]),
        subjects=_int(totals["n"]),
        classes=tuple(sorted((r["c"].value, _int(r["n"])) for r in classes)),
        properties=tuple(sorted((r["p"].value, _int(r["n"])) for r in properties)),
        locations=_locations(rows),
        period=_period(rows),
    )


def _locations(rows: Any) -> tuple[Location, ...]:
    """IFC sites' map positions (`dsgo:eastings/northings` in `dsgo:crs`), else WGS 84 lat/long."""
    found: list[Location] = []
    mapped = rows(
        f"SELECT ?x ?y ?crs @FROM@ WHERE {{ ?site <{DSGO}eastings> ?x ; <{DSGO}northings> ?y ; "
        f"<{DSGO}crs> ?crs }} ORDER BY ?site LIMIT {MAX_LOCATIONS}"
    )
    for r in mapped:
        found.append(Location(r["crs"].value, float(r["x"].value), float(r["y"].value)))
    if found:
        return tuple(found)
    wgs = rows(
        f"SELECT ?lat ?long @FROM@ WHERE {{ ?site <{GEO}lat> ?lat ; <{GEO}long> ?long }} "
        f"ORDER BY ?site LIMIT {MAX_LOCATIONS}"
    )
    for r in wgs:
        found.append(Location(CRS84, float(r["long"].value), float(r["lat"].value)))
    return tuple(found)


def _period(rows: Any) -> tuple[ox.Literal, ox.Literal] | None:
    """The measurement period: the first and last `sosa:resultTime` (or phenomenon time)."""
    (r,) = rows(
        f"SELECT (MIN(?t) AS ?start) (MAX(?t) AS ?end) @FROM@ WHERE {{ ?obs <{SOSA}resultTime> ?t }}"
    )
    start, end = r["start"], r["end"]
    if not isinstance(start, ox.Literal) or not isinstance(end, ox.Literal):
        return None
    return start, end


def _int(term: Any) -> int:
    return int(term.value) if term is not None else 0


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def cached_body(rt: Runtime, kind: str, media: str, views: list[DatasetView], build: Any) -> bytes:
    """A serialised description of `views`, built once per (kind, media type, their keys)."""
    cache = stats_cache(rt)
    key = ("body", kind, media, tuple(v.key for v in views))
    found = cache.get(key)
    if found is None:
        found = build()
        cache.put(key, found)
    return found


# --- RDF ---------------------------------------------------------------------------------------


def void_iri(rt: Runtime, name: str) -> str:
    """Where one dataset's VoID description is served."""
    return dataset_iri(rt.settings.base_iri, name) + "/void"


def void_triples(rt: Runtime, views: list[DatasetView]) -> list[ox.Triple]:
    """void:Dataset per view: size, subjects, class and property partitions, endpoint and dump."""
    t, n = ox.Triple, ox.NamedNode
    base = rt.settings.base_iri
    out: list[ox.Triple] = []
    for view in views:
        ds = n(view.info.graph)
        s = view.stats
        out += [
            t(ds, n(RDF_TYPE), n(VOID + "Dataset")),
            t(ds, n(VOID + "sparqlEndpoint"), n(f"{base}/sparql")),
            t(ds, n(VOID + "triples"), _integer(s.triples)),
            t(ds, n(VOID + "distinctSubjects"), _integer(s.subjects)),
            t(ds, n(VOID + "classes"), _integer(len(s.classes))),
            t(ds, n(VOID + "properties"), _integer(len(s.properties))),
        ]
        if view.whole:
            out.append(t(ds, n(VOID + "dataDump"), ds))
        for cls, count in s.classes:
            part = n(f"{void_iri(rt, view.info.name)}#class-{_short(cls)}")
            out += [
                t(ds, n(VOID + "classPartition"), part),
                t(part, n(VOID + "class"), n(cls)),
                t(part, n(VOID + "entities"), _integer(count)),
            ]
        for prop, count in s.properties:
            part = n(f"{void_iri(rt, view.info.name)}#property-{_short(prop)}")
            out += [
                t(ds, n(VOID + "propertyPartition"), part),
                t(part, n(VOID + "property"), n(prop)),
                t(part, n(VOID + "triples"), _integer(count)),
            ]
    return out


def _integer(value: int) -> ox.Literal:
    return ox.Literal(str(value), datatype=ox.NamedNode(XSD + "integer"))


def _short(iri: str) -> str:
    return hashlib.sha256(iri.encode()).hexdigest()[:16]
