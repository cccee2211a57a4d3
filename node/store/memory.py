"""A plain in-memory pyoxigraph Store behind the Store protocol: the enforcement point's
materialised views of partial grants, and the tests and benchmarks that need no disk."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pyoxigraph as ox

from node.sparql.outline import QueryOutline, text_of
from node.store.base import DatasetInfo, QuerySyntaxError, StoreError
from node.store.merge import MERGE_PREFIX, GraphKey, merge_update


class MemoryStore:
    """A plain pyoxigraph Store behind the Store protocol (materialised views, tests, bench)."""

    def __init__(self, store: ox.Store) -> None:
        self.store = store

    def query(
        self,
        sparql: str | QueryOutline,
        *,
        default_graph: list[str] | None,
        named_graphs: list[str] | None,
        union_default: bool = False,
        timeout: float | None = None,
    ) -> Any:
        default = None if default_graph is None else [ox.NamedNode(g) for g in default_graph]
        named = None if named_graphs is None else [ox.NamedNode(g) for g in named_graphs]
        try:
            return self.store.query(
                text_of(sparql),
                default_graph=default,
                named_graphs=named,
                use_default_graph_as_union=union_default,
            )
        except SyntaxError as exc:  # raise what the node's own store raises
            raise QuerySyntaxError(str(exc)) from None

    def quads(
        self,
        subject: str | None = None,
        predicate: str | None = None,
        object: ox.NamedNode | ox.Literal | ox.BlankNode | None = None,
        graphs: Sequence[str] | None = None,
    ) -> Iterable[ox.Quad]:
        """Quads by pattern; subject and predicate are IRI strings, as in node.store."""
        s = ox.NamedNode(subject) if subject else None
        p = ox.NamedNode(predicate) if predicate else None
        for g in graphs if graphs is not None else [None]:
            yield from self.store.quads_for_pattern(
                s, p, object, None if g is None else ox.NamedNode(g)
            )

    def datasets(self) -> list[DatasetInfo]:
        """Every named graph, as a dataset record (name = the graph IRI)."""
        counts: dict[str, int] = {}
        for quad in self.store:
            if isinstance(quad.graph_name, ox.NamedNode) and not quad.graph_name.value.startswith(
                MERGE_PREFIX
            ):
                counts[quad.graph_name.value] = counts.get(quad.graph_name.value, 0) + 1
        return [DatasetInfo(g, g, n, None) for g, n in sorted(counts.items())]

    def physical_graph(self, name: str) -> str | None:
        return None

    def graph_keys(self, graphs: list[str]) -> dict[str, GraphKey]:
        """A view never changes once built: the in-memory store itself is the content key."""
        return {g: GraphKey(g, self.store, None) for g in graphs}

    def merge_graph(self, name: str, anchor: str, others: list[str]) -> int:
        """Fill hidden graph `name` (inside the view) with the triples of `others` not in `anchor`."""
        self.store.update(merge_update(name, anchor, others))
        return sum(1 for _ in self.store.quads_for_pattern(None, None, None, ox.NamedNode(name)))

    def drop_merge(self, name: str) -> None:
        self.store.remove_graph(ox.NamedNode(name))

    def version(self) -> int:
        return 0

    def compact(self) -> None:
        """Nothing to compact in memory."""

    def replace_dataset(self, name: str, source: Any, fmt: Any, **kwargs: Any) -> DatasetInfo:
        raise StoreError("the in-memory view is read-only")

    def drop_dataset(self, name: str) -> None:
        raise StoreError("the in-memory view is read-only")

    def append(self, name: str, triples: list[ox.Triple]) -> DatasetInfo:
        raise StoreError("the in-memory view is read-only")

    def close(self) -> None:
        """Nothing to release."""


__all__ = ["MemoryStore"]
