"""An external engine reached over the SPARQL 1.1 Protocol and Graph Store Protocol."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import httpx
import pyoxigraph as ox

from node.iri import META_GRAPH, STAGING_PREFIX, check_dataset_name, dataset_iri, sparql_iri
from node.sparql.outline import QueryOutline
from node.store._records import (
    DATASETS_QUERY,
    append_update,
    info_from_row,
    meta_update,
)
from node.store.base import (
    DatasetInfo,
    LoadError,
    QueryResult,
    QuerySyntaxError,
    StoreError,
    StoreTimeout,
    UnknownDataset,
)
from node.store.engine_profile import (
    NO_GRAPH,
    EngineProfile,
    profile_from_server,
    profile_named,
)
from node.store.inputs import Progress, _line_of, _open_input, _reason_of
from node.store.merge import GraphKey, merge_update

VERSION_POLL = 1.0  # seconds between looks at an external engine's datasets (see version())


class MergeUnavailable(StoreError):
    """The engine cannot hold the hidden graph an RDF merge needs (HTTP 503, names why)."""

    status = 503


class SparqlProtocolStore:
    """An external engine reached over the SPARQL 1.1 Protocol and Graph Store Protocol."""

    def __init__(
        self,
        base_iri: str,
        *,
        query_url: str | None,
        update_url: str | None,
        store_url: str | None,
        timeout: float = 30.0,
        engine: str = "auto",
    ):
        if not query_url:
            raise StoreError("store.query_url is required for the external SPARQL backend")
        self.base_iri = base_iri
        self.query_url = query_url
        self.update_url = update_url
        self.store_url = store_url
        self._client = httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0))
        self._timeout = timeout
        self._lock = threading.Lock()
        self._version = 0
        self._remote: tuple[float, int] = (-VERSION_POLL, 0)  # (checked at, fingerprint)
        self._records: tuple[int | None, dict[str, DatasetInfo]] = (None, {})
        self._profile: EngineProfile | None = profile_named(engine)  # None: detect on first use

    def version(self) -> int:
        """Changes with every write, this process's at once, another's within VERSION_POLL s.

        Other processes (dsgo load, other workers) write to the engine directly: their changes
        show in the meta graph, whose dataset rows are fingerprinted, at most once per poll.
        """
        checked, fingerprint = self._remote
        now = time.monotonic()
        if now - checked >= VERSION_POLL:
            try:
                rows = self.datasets()
            except (StoreError, httpx.HTTPError):
                rows = None  # the engine is unreachable: requests report that themselves
            if rows is not None:
                fingerprint = hash(tuple((d.graph, d.triples, d.modified) for d in rows))
            self._remote = (now, fingerprint)
        return hash((self._version, fingerprint))

    def datasets(self) -> list[DatasetInfo]:
        result = self.query(DATASETS_QUERY)
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
        """Validate by parsing locally into N-Triples, then PUT the graph (atomic on the server)."""
        check_dataset_name(name)
        if not self.store_url or not self.update_url:
            raise StoreError("store.store_url and store.update_url are required to load data")
        graph = dataset_iri(self.base_iri, name)
        file_label = label or (str(source) if isinstance(source, Path) else "<input>")
        spool = io.BytesIO()
        count = 0
        try:
            with _open_input(source, progress) as fh:
                for quad in ox.parse(fh, fmt, base_iri=base_iri or f"{self.base_iri}/id/"):
                    spool.write(str(quad.triple).encode() + b" .\n")
                    count += 1
        except SyntaxError as exc:
            raise LoadError(file_label, _line_of(exc), _reason_of(exc)) from None
        except (OSError, ValueError) as exc:
            raise LoadError(file_label, None, str(exc)) from None
        with self._lock:
            resp = self._client.put(
                self.store_url,
                params={"graph": graph},
                content=spool.getvalue(),
                headers={"Content-Type": "application/n-triples"},
            )
            _check(resp, "graph store PUT")
            self._update(meta_update(graph, name, count))
            self._version += 1
        return DatasetInfo(name, graph, count, datetime.now(UTC))

    def append(self, name: str, triples: list[ox.Triple]) -> DatasetInfo:
        graph = dataset_iri(self.base_iri, name)
        with self._lock:
            self._update(append_update(graph, triples))
            (row,) = self.query(
                f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}"
            )
            count = int(row["n"].value)
            self._update(meta_update(graph, name, count))
            self._version += 1
        return DatasetInfo(name, graph, count, datetime.now(UTC))

    def drop_dataset(self, name: str) -> None:
        graph = dataset_iri(self.base_iri, name)
        if not any(d.name == name for d in self.datasets()):
            raise UnknownDataset(f"no dataset named {name!r}")
        self._update(
            f"DROP SILENT GRAPH <{graph}> ; "
            f"DELETE WHERE {{ GRAPH <{META_GRAPH}> {{ <{graph}> ?p ?o }} }}"
        )
        self._version += 1

    def query(
        self,
        sparql: str | QueryOutline,
        *,
        default_graph: list[str] | None = None,
        named_graphs: list[str] | None = None,
        union_default: bool = False,
        timeout: float | None = None,
    ) -> QueryResult:
        params: list[tuple[str, str]] = []
        if union_default and default_graph is None:
            default_graph = [d.graph for d in self.datasets()]
        # An empty list must mean "no graphs", which the protocol cannot say: use a graph that
        # never holds data so the engine does not fall back to its whole default graph.
        for g in default_graph if default_graph is not None else []:
            params.append(("default-graph-uri", g))
        if default_graph == []:
            params.append(("default-graph-uri", "urn:dsgo:empty"))
        for g in named_graphs if named_graphs is not None else []:
            params.append(("named-graph-uri", g))
        if named_graphs == []:
            params.append(("named-graph-uri", "urn:dsgo:empty"))
        # The read timeout is per chunk and the engine streams, so bound the whole answer too:
        # closing the stream stops the download (and the engine) instead of reading on forever.
        budget = timeout or self._timeout
        deadline = time.monotonic() + budget
        profile = self.profile()
        text = profile.query_text(sparql, bool(params), named_graphs)
        if named_graphs and profile.query_dataset_wins:
            # the graph GRAPH <iri> outside the caller's graphs was turned into: in the dataset,
            # empty (else Virtuoso's COUNT(*) over it is 1)
            params.append(("named-graph-uri", NO_GRAPH))
        content, content_type = profile.query_request(text)
        try:
            with self._client.stream(
                "POST",
                self.query_url,
                params=params,
                timeout=timeout if timeout else httpx.USE_CLIENT_DEFAULT,
                content=content,
                headers={
                    "Content-Type": content_type,
                    "Accept": profile.accept(sparql),
                },
            ) as resp:
                chunks = []
                for chunk in resp.iter_bytes():
                    chunks.append(chunk)
                    if time.monotonic() > deadline:
                        raise StoreTimeout(
                            f"external store: no complete answer within {budget:g} s"
                        )
                body = b"".join(chunks)
        except httpx.TimeoutException:
            # the engine took longer than the read timeout: a named 503, never a 500
            raise StoreTimeout(f"external store: no answer within {budget:g} s") from None
        if resp.status_code == 400:
            raise QuerySyntaxError(body.decode("utf-8", errors="replace").strip()[:2000])
        if resp.status_code >= 400:
            raise StoreError(
                f"external store: SPARQL query failed with HTTP {resp.status_code}: "
                f"{body[:500].decode('utf-8', errors='replace')}"
            )
        media = resp.headers.get("content-type", "").split(";")[0].strip()
        if media == "application/n-triples":
            return iter([q.triple for q in ox.parse(body, ox.RdfFormat.N_TRIPLES)])
        return ox.parse_query_results(profile.json_results(body), ox.QueryResultsFormat.JSON)

    def profile(self) -> EngineProfile:
        """The engine's profile (node.store.engine_profile), read from its Server header once."""
        if self._profile is None:
            try:
                # an ASK: a GET with no query makes some engines (oxigraph) dump the store
                answer = self._client.get(self.query_url, params={"query": "ASK {}"}, timeout=5.0)
                server = answer.headers.get("server")
            except httpx.HTTPError:
                return profile_from_server(None)  # unreachable now: the query reports it
            self._profile = profile_from_server(server)
        return self._profile

    def quads(
        self,
        subject: str | None = None,
        predicate: str | None = None,
        object: ox.NamedNode | ox.Literal | ox.BlankNode | None = None,
        graphs: list[str] | None = None,
    ) -> Iterator[ox.Quad]:
        s = sparql_iri(subject) if subject else "?s"
        p = sparql_iri(predicate) if predicate else "?p"
        o = str(object) if object is not None else "?o"
        graph_filter = (
            "VALUES ?g { " + " ".join(sparql_iri(g) for g in graphs) + " }"
            if graphs is not None
            else f'FILTER(?g != <{META_GRAPH}> && !STRSTARTS(STR(?g), "{STAGING_PREFIX}")'
            + self.profile().graph_filter("g")
            + ")"
        )
        if graphs == []:
            return
        rows = self.query(f"SELECT * WHERE {{ {graph_filter} GRAPH ?g {{ {s} {p} {o} }} }}")
        for row in rows:
            yield ox.Quad(
                row["s"] if subject is None else ox.NamedNode(subject),
                row["p"] if predicate is None else ox.NamedNode(predicate),
                row["o"] if object is None else object,
                row["g"],
            )

    def physical_graph(self, graph: str) -> str | None:
        """None: the engine holds each dataset in its own graph, replaced in place."""
        return None

    def graph_keys(self, graphs: list[str]) -> dict[str, GraphKey]:
        """Each graph's content key from its dataset record (triples, modified), read once per
        store version; a graph that is no dataset changes with every version."""
        version = self.version()
        cached = self._records
        if cached[0] != version:
            cached = (version, {d.graph: d for d in self.datasets()})
            self._records = cached
        keys = {}
        for g in graphs:
            info = cached[1].get(g)
            if info is None:
                keys[g] = GraphKey(g, self, ("raw", version))
            else:
                keys[g] = GraphKey(g, self, (info.triples, info.modified), info.triples)
        return keys

    def merge_graph(self, name: str, anchor: str, others: list[str]) -> int:
        """Fill hidden graph `name` in the engine with the triples of `others` not in `anchor`."""
        try:
            self._update(merge_update(name, anchor, others))
        except httpx.TimeoutException:
            raise StoreTimeout(
                f"external store: forming the RDF merge of {len(others) + 1} datasets that share "
                f"triples took longer than {self._timeout:g} s"
            ) from None
        except (StoreError, httpx.HTTPError) as exc:
            raise MergeUnavailable(
                "the default graph spans datasets that share triples; forming their RDF merge "
                f"needs store.update_url: {exc}"
            ) from None
        (row,) = self.query(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{name}> {{ ?s ?p ?o }} }}")
        return int(row["n"].value)

    def drop_merge(self, name: str) -> None:
        self._update(f"DROP SILENT GRAPH <{name}>")

    def compact(self) -> None:
        """The engine compacts on its own."""

    def close(self) -> None:
        self._client.close()

    def _update(self, sparql: str) -> None:
        if not self.update_url:
            raise StoreError("store.update_url is required to change data")
        resp = self._client.post(
            self.update_url,
            content=self.profile().update_text(sparql).encode(),
            headers={"Content-Type": "application/sparql-update"},
        )
        _check(resp, "SPARQL update")


def _check(resp: httpx.Response, what: str) -> None:
    if resp.status_code >= 400:
        raise StoreError(
            f"external store: {what} failed with HTTP {resp.status_code}: {resp.text[:500]}"
        )
