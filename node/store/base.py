"""The store protocol every backend implements, the dataset record and the store's errors.

Callers depend on `Store` only: every method a caller needs is here (dataset versions, physical
graphs, maintenance), so nobody probes a backend for optional methods.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Protocol

import pyoxigraph as ox

from node.errors import NodeError, QueryTimeout
from node.sparql.outline import QueryOutline
from node.store.inputs import Progress
from node.store.merge import GraphKey

QueryResult = ox.QuerySolutions | ox.QueryTriples | ox.QueryBoolean | Iterator[ox.Triple]


class StoreError(NodeError):
    """A store failure that is not the caller's fault (HTTP 500/503)."""

    status = 500
    code = "store_error"


class StoreLocked(StoreError):
    """The embedded store is open in another process."""

    status = 503
    code = "unavailable"


class LoadError(StoreError):
    """Input that could not be loaded; names the file, line and reason (HTTP 400)."""

    status = 400
    code = "bad_request"

    def __init__(self, file: str, line: int | None, reason: str):
        self.file, self.line, self.reason = file, line, reason
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {reason}", file=file, line=line, reason=reason)


class QuerySyntaxError(StoreError):
    """The SPARQL text does not parse (HTTP 400 with the parser's message)."""

    status = 400
    code = "bad_request"


class StoreTimeout(StoreError, QueryTimeout):
    """The external engine's answer took longer than the query timeout (HTTP 503)."""

    status = 503
    code = "unavailable"


class UnknownDataset(StoreError):
    """No dataset by that name (HTTP 404)."""

    status = 404
    code = "not_found"


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset as the catalog shows it."""

    name: str
    graph: str
    triples: int
    modified: datetime | None


class Store(Protocol):
    """What the node needs from an RDF store, whichever engine holds the data."""

    base_iri: str

    def datasets(self) -> list[DatasetInfo]: ...

    def replace_dataset(
        self,
        name: str,
        source: Path | bytes | IO[bytes],
        fmt: ox.RdfFormat,
        *,
        base_iri: str | None = None,
        label: str | None = None,
        progress: Progress | None = None,
    ) -> DatasetInfo: ...

    def drop_dataset(self, name: str) -> None: ...

    def append(self, name: str, triples: list[ox.Triple]) -> DatasetInfo: ...

    def query(
        self,
        sparql: str | QueryOutline,
        *,
        default_graph: list[str] | None = None,
        named_graphs: list[str] | None = None,
        union_default: bool = False,
        timeout: float | None = None,
    ) -> QueryResult: ...

    def quads(
        self,
        subject: str | None = None,
        predicate: str | None = None,
        object: ox.NamedNode | ox.Literal | ox.BlankNode | None = None,
        graphs: list[str] | None = None,
    ) -> Iterator[ox.Quad]: ...

    def version(self) -> int: ...

    def physical_graph(self, graph: str) -> str | None:
        """The graph that holds a dataset's current version (new for every load), if any."""
        ...

    def graph_keys(self, graphs: list[str]) -> dict[str, GraphKey]:
        """Per graph, what its content is now (node.store.merge: the default graph's RDF merge)."""
        ...

    def merge_graph(self, name: str, anchor: str, others: list[str]) -> int:
        """Fill hidden graph `name` with the triples of `others` that `anchor` lacks; its size."""
        ...

    def drop_merge(self, name: str) -> None:
        """Remove a hidden merge graph that no scope needs any more."""
        ...

    def compact(self) -> None:
        """Maintenance after loads (merging files); a no-op where the engine does it itself."""
        ...

    def close(self) -> None: ...
