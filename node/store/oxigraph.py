"""The embedded store: pyoxigraph on disk (RocksDB), one owning process, versioned datasets.

Stable dataset graph IRIs over versioned physical graphs, so a dataset swap is one tiny transaction.

Each version of a dataset is bulk-loaded into its own internal graph `urn:dsgo:data:{name}:{n}`;
the meta graph says which one is current. Queries and quad lookups name the stable graph
`{base}/dataset/{name}`; this module translates to physical graphs on the way in (dataset
arguments, and GRAPH / FROM / FROM NAMED IRIs in the query text) and back on the way out
(bindings of `GRAPH ?g` variables). pyoxigraph deletes slowly (measured: 54 s for 300k quads),
so replaced versions are removed later, off the request path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pyoxigraph as ox

from node.disk import DiskFull, is_disk_full, remove_bulk_files
from node.iri import META_GRAPH, check_dataset_name, dataset_iri
from node.sparql.outline import QueryOutline, outline
from node.sparql.rewrite import with_physical_graphs
from node.store._records import (
    DATASETS_QUERY,
    append_update,
    count_triples,
    info_from_row,
    meta_update,
)
from node.store.base import (
    DatasetInfo,
    LoadError,
    QueryResult,
    QuerySyntaxError,
    StoreError,
    StoreLocked,
    UnknownDataset,
)
from node.store.inputs import Progress, _line_of, _open_input, _reason_of
from node.store.merge import MERGE_PREFIX, GraphKey, merge_update

_log = logging.getLogger("dsgo.store")

GC_DELAY = 2.0  # seconds before a replaced version is removed

# Above this many dataset graphs a subject lookup scans all graphs once instead of seeking each.
_SCAN_ALL_GRAPHS = 4


class OxigraphStore:
    """Embedded pyoxigraph store on disk (RocksDB); one process owns it.

    Datasets are versioned internally (see node.graph_versions): a replacement loads into a new
    graph and switches the dataset's pointer in one small transaction, so readers see the old
    version or the new one, never a mix, and a failed load leaves the old version served.
    """

    def __init__(self, base_iri: str, path: Path | None):
        self.base_iri = base_iri
        self.path = path
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)
        try:
            self._store = ox.Store(str(path)) if path is not None else ox.Store()
        except OSError as exc:
            if "lock" in str(exc).lower():
                raise StoreLocked(
                    f"the store at {path} is in use by another process (a running node?); "
                    "send changes through the node's admin API instead (dsgo load does this)"
                ) from None
            raise StoreError(f"cannot open the store at {path}: {exc}") from None
        self._write_lock = threading.Lock()
        self._closed = False
        self._stopping = threading.Event()  # wakes the collector's wait when the store closes
        self._version = 0
        self._to_physical: dict[str, str] = {}
        self._to_stable: dict[str, str] = {}
        self._counts: tuple[int, dict[str, int]] = (-1, {})
        self._load_pointers()
        self._drop_old_merges()
        self._collector: threading.Thread | None = None
        self._gc_lock = threading.Lock()
        self._gc_wanted = False
        self._compacting = False
        self._compact_due = False  # set by loads
        self._collect_garbage()

    @property
    def raw(self) -> ox.Store:
        return self._store

    def version(self) -> int:
        return self._version

    def datasets(self) -> list[DatasetInfo]:
        result = self._store.query(DATASETS_QUERY)
        return [info_from_row(row) for row in result]

    def replace_dataset(
        self,
        name: str,
        source: Path | bytes | IO[bytes],
        fmt: ox.RdfFormat,
        *,
        base_iri: str | None = None,
        label: str | None = None,
        progress: Progress | None = None,
    ) -> DatasetInfo:
        check_dataset_name(name)
        graph = dataset_iri(self.base_iri, name)
        file_label = label or (str(source) if isinstance(source, Path) else "<input>")
        with self._write_lock:
            physical = self._next_physical(name)
            try:
                with _open_input(source, progress) as fh:
                    self._store.bulk_load(
                        fh,
                        fmt,
                        base_iri=base_iri or f"{self.base_iri}/id/",
                        to_graph=ox.NamedNode(physical),
                    )
                count = count_triples(self._store, physical)
            except SyntaxError as exc:
                self._discard(physical)
                raise LoadError(file_label, _line_of(exc), _reason_of(exc)) from None
            except (OSError, ValueError) as exc:
                self._failed_load(physical)
                if is_disk_full(exc):  # the disk's fault, not the client's: 507, not 400
                    raise DiskFull(f"loading {file_label}", exc) from None
                raise LoadError(file_label, None, str(exc)) from None
            except BaseException:
                self._failed_load(physical)
                raise
            self._switch(name, graph, physical, count)
            self._compact_due = True
        self._collect_garbage()
        return DatasetInfo(name, graph, count, datetime.now(UTC))

    def _failed_load(self, physical: str) -> None:
        """A failed bulk load: drop its graph and the `bulk-*.sst` files it left (write lock held)."""
        try:
            self._discard(physical)
        except (OSError, RuntimeError) as exc:  # a full disk may refuse the marker too
            _log.warning("could not mark the failed load %s for removal: %s", physical, exc)
        finally:
            if self.path is not None:
                remove_bulk_files(self.path)

    def append(self, name: str, triples: list[ox.Triple]) -> DatasetInfo:
        """Add triples to a dataset (creating it), e.g. a new provenance record; one transaction."""
        check_dataset_name(name)
        graph = dataset_iri(self.base_iri, name)
        with self._write_lock:
            physical = self._to_physical.get(graph) or self._next_physical(name)
            self._store.update(append_update(physical, triples))
            count = count_triples(self._store, physical)
            self._switch(name, graph, physical, count)
        return DatasetInfo(name, graph, count, datetime.now(UTC))

    def drop_dataset(self, name: str) -> None:
        graph = dataset_iri(self.base_iri, name)
        with self._write_lock:
            physical = self._to_physical.get(graph)
            if physical is None:
                raise UnknownDataset(f"no dataset named {name!r}")
            self._store.update(
                f"DELETE WHERE {{ GRAPH <{META_GRAPH}> {{ <{graph}> ?p ?o }} }} ; "
                f"INSERT DATA {{ GRAPH <{META_GRAPH}> {{ <{physical}> <urn:dsgo:garbage> true }} }}"
            )
            self._forget(graph)
            self._version += 1
        self._collect_garbage()

    def query(
        self,
        sparql: str | QueryOutline,
        *,
        default_graph: list[str] | None = None,
        named_graphs: list[str] | None = None,
        union_default: bool = False,
        timeout: float | None = None,
    ) -> QueryResult:
        to_physical, to_stable = self._to_physical, self._to_stable
        kwargs: dict[str, Any] = {}
        if default_graph is not None:
            kwargs["default_graph"] = [ox.NamedNode(to_physical.get(g, g)) for g in default_graph]
        if named_graphs is not None:
            kwargs["named_graphs"] = [ox.NamedNode(to_physical.get(g, g)) for g in named_graphs]
        else:  # only the current dataset versions: never the meta graph or replaced versions
            kwargs["named_graphs"] = [ox.NamedNode(p) for p in to_physical.values()]
        if union_default:
            kwargs["use_default_graph_as_union"] = True
        text, binds_graph = with_physical_graphs(outline(sparql), to_physical)
        try:
            result = self._store.query(text, **kwargs)
        except SyntaxError as exc:
            raise QuerySyntaxError(str(exc)) from None
        if binds_graph:
            if isinstance(result, ox.QuerySolutions):
                return MappedSolutions(result, to_stable)  # type: ignore[return-value]
            if isinstance(result, ox.QueryTriples):
                return map_triples(result, to_stable)
        return result

    def quads(
        self,
        subject: str | None = None,
        predicate: str | None = None,
        object: ox.NamedNode | ox.Literal | ox.BlankNode | None = None,
        graphs: list[str] | None = None,
    ) -> Iterator[ox.Quad]:
        s = ox.NamedNode(subject) if subject else None
        p = ox.NamedNode(predicate) if predicate else None
        to_physical, to_stable = self._to_physical, self._to_stable
        if graphs is None:
            for q in self._store.quads_for_pattern(s, p, object, None):
                g = q.graph_name
                if isinstance(g, ox.NamedNode) and g.value in to_stable:
                    yield ox.Quad(
                        q.subject, q.predicate, q.object, ox.NamedNode(to_stable[g.value])
                    )
            return
        wanted = {to_physical[g]: g for g in graphs if g in to_physical}
        if s is not None and len(wanted) > _SCAN_ALL_GRAPHS:
            # One index scan over every graph beats a seek per graph once there are many graphs
            # (each seek costs about as much as decoding a quad); keep the wanted graphs' quads.
            stables: dict[str, ox.NamedNode] = {}
            for q in self._store.quads_for_pattern(s, p, object, None):
                g = q.graph_name
                name = g.value if isinstance(g, ox.NamedNode) else None
                if name in wanted:
                    stable = stables.get(name)  # type: ignore[arg-type]
                    if stable is None:
                        stable = stables[name] = ox.NamedNode(wanted[name])  # type: ignore[index]
                    yield ox.Quad(q.subject, q.predicate, q.object, stable)
            return
        for physical, g in wanted.items():
            stable = ox.NamedNode(g)
            for q in self._store.quads_for_pattern(s, p, object, ox.NamedNode(physical)):
                yield ox.Quad(q.subject, q.predicate, q.object, stable)

    def close(self) -> None:
        """Flush and release the RocksDB handle (and its lock) so the store can be reopened."""
        self._closed = True
        self._stopping.set()
        collector = self._collector
        if (
            collector is not None
            and collector.is_alive()
            and collector is not threading.current_thread()
        ):
            # Removal resumes at the next start if cut short. Wait for the step in flight: while
            # it runs it holds the RocksDB handle, and another process (the next `dsgo sync`)
            # would find the store locked. The wait between steps is cut short by _stopping.
            collector.join()
        store = getattr(self, "_store", None)
        if store is None:
            return
        try:
            self.compact()  # after a load in a short-lived process (dsgo load, dsgo connect)
            store.flush()
        except OSError:
            pass
        del self._store

    def physical_graph(self, graph: str) -> str | None:
        """The internal graph holding the current version of a dataset (new for every version)."""
        return self._to_physical.get(graph)

    # --- RDF merge of several datasets (node.store.merge) ---------------------------------------

    def graph_keys(self, graphs: list[str]) -> dict[str, GraphKey]:
        """Each graph's content key: its version's physical graph and triple count (an append
        keeps the graph and adds triples, so the count tells); a graph that is no dataset
        changes with every write."""
        version, counts = self._counts
        if version != self._version:
            version = self._version
            counts = {d.graph: d.triples for d in self.datasets()}
            self._counts = (version, counts)
        keys = {}
        for g in graphs:
            physical = self._to_physical.get(g)
            if physical is None:
                keys[g] = GraphKey(g, self, ("raw", version))
            else:
                keys[g] = GraphKey(g, self, (physical, counts.get(g)), counts.get(g))
        return keys

    def merge_graph(self, name: str, anchor: str, others: list[str]) -> int:
        """Fill hidden graph `name` with the triples of `others` not in `anchor` (one transaction)."""
        to_physical = self._to_physical
        self._store.update(
            merge_update(
                name, to_physical.get(anchor, anchor), [to_physical.get(g, g) for g in others]
            )
        )
        return count_triples(self._store, name)

    def _drop_old_merges(self) -> None:
        """Merge graphs of an earlier run: no query uses them now (one process owns the store)."""
        for g in list(self._store.named_graphs()):
            if isinstance(g, ox.NamedNode) and g.value.startswith(MERGE_PREFIX):
                self._discard(g.value)

    def drop_merge(self, name: str) -> None:
        """Remove a merge graph no query needs any more (in the background, like old versions)."""
        self._discard(name)
        self._collect_garbage()

    # --- versions -----------------------------------------------------------------------------

    def _load_pointers(self) -> None:
        rows = self._store.query(
            f"SELECT ?g ?p WHERE {{ GRAPH <{META_GRAPH}> {{ ?g <urn:dsgo:physical> ?p }} }}"
        )
        for row in rows:
            self._to_physical[row["g"].value] = row["p"].value
            self._to_stable[row["p"].value] = row["g"].value

    def _next_physical(self, name: str) -> str:
        rows = list(
            self._store.query(
                f"SELECT ?n WHERE {{ GRAPH <{META_GRAPH}> {{ <urn:dsgo:seq> <urn:dsgo:next> ?n }} }}"
            )
        )
        seq = int(rows[0]["n"].value) if rows else 1
        self._store.update(
            f"DELETE WHERE {{ GRAPH <{META_GRAPH}> {{ <urn:dsgo:seq> <urn:dsgo:next> ?n }} }} ; "
            f"INSERT DATA {{ GRAPH <{META_GRAPH}> {{ <urn:dsgo:seq> <urn:dsgo:next> {seq + 1} }} }}"
        )
        return physical_iri(name, seq)

    def _switch(self, name: str, graph: str, physical: str, count: int) -> None:
        """Point the dataset at `physical` (one transaction) and mark the old version for removal."""
        old = self._to_physical.get(graph)
        garbage = old if old is not None and old != physical else None
        self._store.update(meta_update(graph, name, count, physical=physical, garbage=garbage))
        # Swap the maps as whole objects: readers holding the old ones keep a consistent view.
        to_physical = dict(self._to_physical)
        to_stable = {p: g for p, g in self._to_stable.items() if p != old}
        to_physical[graph] = physical
        to_stable[physical] = graph
        self._to_physical, self._to_stable = to_physical, to_stable
        self._version += 1

    def _forget(self, graph: str) -> None:
        physical = self._to_physical.get(graph)
        self._to_physical = {g: p for g, p in self._to_physical.items() if g != graph}
        self._to_stable = {p: g for p, g in self._to_stable.items() if p != physical}

    def _discard(self, physical: str) -> None:
        """A failed load's partial graph: mark it for removal in the background."""
        self._store.update(
            f"INSERT DATA {{ GRAPH <{META_GRAPH}> {{ <{physical}> <urn:dsgo:garbage> true }} }}"
        )

    def _collect_garbage(self) -> None:
        """Remove replaced and failed versions, then compact after a load, in a background thread.

        Deletes are slow, and a bulk load leaves many small files: compacting them made queries
        15-20% faster on the 1M-triple benchmark store. A request while the thread runs makes
        it go round once more (the flag and the thread's exit share a lock, so none is lost).
        """
        with self._gc_lock:
            self._gc_wanted = True
            if self._collector is not None:
                return
            self._collector = threading.Thread(target=self._collect, name="dsgo-gc", daemon=True)
            self._collector.start()

    def _collect(self) -> None:
        while not self._closed:
            with self._gc_lock:
                if not self._gc_wanted:
                    self._collector = None
                    return
                self._gc_wanted = False
            if not self._remove_garbage():
                return
            self._compact()

    def _remove_garbage(self) -> bool:
        """Remove every version marked as garbage; False once the store is closed."""
        while not self._closed:
            rows = list(
                self._store.query(
                    f"SELECT ?p WHERE {{ GRAPH <{META_GRAPH}> {{ ?p <urn:dsgo:garbage> true }} }} LIMIT 1"
                )
            )
            if not rows:
                return True
            physical = rows[0]["p"]
            try:
                # Give queries that started on the old version time to finish first.
                if self._stopping.wait(GC_DELAY) or self._closed:
                    return False
                self._store.remove_graph(physical)
                self._store.update(
                    f"DELETE DATA {{ GRAPH <{META_GRAPH}> {{ <{physical.value}> <urn:dsgo:garbage> true }} }}"
                )
            except (OSError, RuntimeError, AttributeError):
                return False  # the store was closed; the marker stays and removal resumes next time
        return False

    def compact(self) -> None:
        """Merge the files loads left behind; a no-op when nothing was loaded since the last time."""
        if not self._compact_due:
            return
        self._compact_due = False
        self._store.optimize()

    def _compact(self) -> None:
        self._compacting = True
        try:
            if not self._closed:  # close() sets this first, then waits while _compacting
                self.compact()
        except (OSError, RuntimeError, AttributeError):
            pass  # the store was closed meanwhile
        finally:
            self._compacting = False


# --- stable dataset IRIs <-> versioned physical graphs ----------------------------------------

PHYSICAL_PREFIX = "urn:dsgo:data:"


def physical_iri(name: str, seq: int) -> str:
    """The internal graph holding version `seq` of dataset `name`."""
    return f"{PHYSICAL_PREFIX}{name}:{seq}"


def rewrite_query(query: str, to_physical: Mapping[str, str]) -> tuple[str, bool]:
    """Text form of `with_physical_graphs` (dataset IRIs after GRAPH / FROM made physical)."""
    return with_physical_graphs(outline(query), to_physical)


class MappedSolutions:
    """Query solutions whose physical graph names are shown as the stable dataset IRIs."""

    def __init__(self, inner: ox.QuerySolutions, to_stable: Mapping[str, str]):
        self._inner = inner
        self._to_stable = to_stable
        self.variables = inner.variables

    def __iter__(self) -> Iterator[MappedSolution]:
        for solution in self._inner:
            yield MappedSolution(solution, self._to_stable, len(self.variables))


class MappedSolution:
    """One solution; indexing by position, name or Variable maps graph terms back."""

    __slots__ = ("_inner", "_to_stable", "_width")

    def __init__(self, inner: ox.QuerySolution, to_stable: Mapping[str, str], width: int):
        self._inner, self._to_stable, self._width = inner, to_stable, width

    def __getitem__(self, key: Any) -> Any:
        term = self._inner[key]
        if isinstance(term, ox.NamedNode):
            stable = self._to_stable.get(term.value)
            if stable is not None:
                return ox.NamedNode(stable)
        return term

    def __iter__(self) -> Iterator[Any]:
        return (self[i] for i in range(self._width))

    def __len__(self) -> int:
        return self._width


def map_triples(triples: Any, to_stable: Mapping[str, str]) -> Iterator[ox.Triple]:
    """CONSTRUCT output with any physical graph names (from GRAPH ?g) shown as dataset IRIs."""
    for t in triples:
        s, o = t.subject, t.object
        if isinstance(s, ox.NamedNode) and s.value in to_stable:
            s = ox.NamedNode(to_stable[s.value])
        if isinstance(o, ox.NamedNode) and o.value in to_stable:
            o = ox.NamedNode(to_stable[o.value])
        yield ox.Triple(s, t.predicate, o)
