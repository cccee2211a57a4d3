"""The meta graph's dataset records, written and read the same way by every backend."""

from __future__ import annotations

from datetime import UTC, datetime

import pyoxigraph as ox

from node.iri import META_GRAPH
from node.store.base import DatasetInfo
from vocab.namespaces import DCT, XSD

DATASETS_QUERY = (
    f"SELECT ?g ?name ?n ?mod WHERE {{ GRAPH <{META_GRAPH}> {{ ?g <{DCT}identifier> ?name ; "
    f"<urn:dsgo:triples> ?n . OPTIONAL {{ ?g <{DCT}modified> ?mod }} }} }} ORDER BY ?name"
)


def info_from_row(row: ox.QuerySolution) -> DatasetInfo:
    mod = row["mod"]
    modified = None
    if mod is not None:
        try:
            modified = datetime.fromisoformat(mod.value)
        except ValueError:
            modified = None
    return DatasetInfo(row["name"].value, row["g"].value, int(row["n"].value), modified)


def append_update(graph: str, triples: list[ox.Triple]) -> str:
    body = " ".join(f"{t} ." for t in triples)
    return f"INSERT DATA {{ GRAPH <{graph}> {{ {body} }} }}"


def meta_update(
    graph: str, name: str, count: int, *, physical: str | None = None, garbage: str | None = None
) -> str:
    """Replace a dataset's record in the meta graph (with its current version's graph, and a
    replaced version to remove, for the embedded store)."""
    pointer = f" ; <urn:dsgo:physical> <{physical}>" if physical else ""
    marker = f" <{garbage}> <urn:dsgo:garbage> true ." if garbage else ""
    return (
        f"DELETE WHERE {{ GRAPH <{META_GRAPH}> {{ <{graph}> ?p ?o }} }} ; "
        f"INSERT DATA {{ GRAPH <{META_GRAPH}> {{ <{graph}> <{DCT}identifier> "
        f'"{name}" ; <urn:dsgo:triples> {count} ; <{DCT}modified> {now_literal()}{pointer} .'
        f"{marker} }} }}"
    )


def count_triples(store: ox.Store, graph: str) -> int:
    (row,) = store.query(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}")
    return int(row["n"].value)


def now_literal() -> str:
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return f'"{stamp}"^^<{XSD}dateTime>'
