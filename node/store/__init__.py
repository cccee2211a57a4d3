"""Where the node's RDF lives: one `Store` protocol, two engines (embedded pyoxigraph, any
SPARQL 1.1 Protocol + Graph Store server) and an in-memory adapter for materialised views."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The names below are loaded on first use (PEP 562), so that a light importer (the CLI's
# settings, a store-free command) does not pay for pyoxigraph, httpx and the SPARQL reader.
_EXPORTS = {
    "DatasetInfo": "node.store.base",
    "LoadError": "node.store.base",
    "QueryResult": "node.store.base",
    "QuerySyntaxError": "node.store.base",
    "Store": "node.store.base",
    "StoreError": "node.store.base",
    "StoreLocked": "node.store.base",
    "StoreTimeout": "node.store.base",
    "UnknownDataset": "node.store.base",
    "Progress": "node.store.inputs",
    "format_for": "node.store.inputs",
    "MemoryStore": "node.store.memory",
    "PHYSICAL_PREFIX": "node.store.oxigraph",
    "OxigraphStore": "node.store.oxigraph",
    "map_triples": "node.store.oxigraph",
    "physical_iri": "node.store.oxigraph",
    "rewrite_query": "node.store.oxigraph",
    "SparqlProtocolStore": "node.store.sparql_protocol",
}

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'node.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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


def open_store(settings: Any) -> Store:  # noqa: F821 (a lazy name)
    """The store the settings ask for (embedded on disk, the supervised engine, or an external
    SPARQL engine)."""
    if settings.store_backend == "engine":
        from node.store.engine_store import open_engine_store

        return open_engine_store(settings)
    if settings.store_backend == "sparql":
        from node.store.sparql_protocol import SparqlProtocolStore

        return SparqlProtocolStore(
            settings.base_iri,
            query_url=settings.sparql_query_url,
            update_url=settings.sparql_update_url,
            store_url=settings.sparql_store_url,
            timeout=settings.query_timeout,
            engine=settings.sparql_engine,
        )
    from node.store.oxigraph import OxigraphStore

    return OxigraphStore(settings.base_iri, settings.store_dir)
