"""Where the node's RDF lives: one `Store` protocol, two engines (embedded pyoxigraph, any
SPARQL 1.1 Protocol + Graph Store server) and an in-memory adapter for materialised views."""

from __future__ import annotations

from typing import Any

from node.store.base import (
    DatasetInfo,
    LoadError,
    QueryResult,
    QuerySyntaxError,
    Store,
    StoreError,
    StoreLocked,
    StoreTimeout,
    UnknownDataset,
)
from node.store.inputs import Progress, format_for
from node.store.memory import MemoryStore
from node.store.oxigraph import (
    PHYSICAL_PREFIX,
    OxigraphStore,
    map_triples,
    physical_iri,
    rewrite_query,
)
from node.store.sparql_protocol import SparqlProtocolStore

__all__ = [
    "PHYSICAL_PREFIX",
    "DatasetInfo",
    "LoadError",
    "MemoryStore",
    "OxigraphStore",
    "Progress",
    "QueryResult",
    "QuerySyntaxError",
    "SparqlProtocolStore",
    "Store",
    "StoreError",
    "StoreLocked",
    "StoreTimeout",
    "UnknownDataset",
    "format_for",
    "map_triples",
    "open_store",
    "physical_iri",
    "rewrite_query",
]


def open_store(settings: Any) -> Store:
    """The store the settings ask for (embedded on disk, the supervised engine, or an external
    SPARQL engine)."""
    if settings.store_backend == "engine":
        from node.store.engine_store import open_engine_store

        return open_engine_store(settings)
    if settings.store_backend == "sparql":
        return SparqlProtocolStore(
            settings.base_iri,
            query_url=settings.sparql_query_url,
            update_url=settings.sparql_update_url,
            store_url=settings.sparql_store_url,
            timeout=settings.query_timeout,
            engine=settings.sparql_engine,
        )
    return OxigraphStore(settings.base_iri, settings.store_dir)
