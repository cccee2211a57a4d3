"""store.backend = "engine": the SPARQL-protocol store on a supervised `oxigraph serve` child.

Reads that overrun the query timeout are stopped by SIGKILLing the engine (node/engine.py
restarts it); reads that were merely in flight when that happened are retried once after the
restart (a read is idempotent). Writes are not retried: they answer a named 503 with
Retry-After, so the client decides.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

import httpx
import pyoxigraph as ox

from node.engine import (
    ENV_FILE,
    INFO_NAME,
    EngineError,
    EngineInfo,
    EngineSupervisor,
    kill_engine,
    pid_alive,
    read_info,
    wait_ready,
)
from node.sparql.outline import QueryOutline, text_of
from node.store.base import DatasetInfo, QueryResult, QuerySyntaxError, StoreError, StoreTimeout
from node.store.inputs import Progress
from node.store.sparql_protocol import SparqlProtocolStore

_QUERY_HEADERS = {
    "Content-Type": "application/sparql-query",
    "Accept": "application/sparql-results+json, application/n-triples;q=0.9",
}
_ACCEPT = {"Accept": _QUERY_HEADERS["Accept"]}
GET_LIMIT = 4096  # bytes of URL query string; longer queries are POSTed
WRITE_TIMEOUT = 600.0  # a bulk PUT of a large dataset: never cut by the query timeout


class EngineRestarting(StoreError):
    """The engine restarted under a write (to stop an overrunning query, or it crashed)."""

    status = 503
    code = "engine_restarting"

    def __init__(self, description: str) -> None:
        super().__init__(description, headers={"Retry-After": "2"})


class EngineUnavailable(StoreError):
    """The engine does not answer even after its restart."""

    status = 503
    code = "engine_unavailable"

    def __init__(self, description: str) -> None:
        super().__init__(description, headers={"Retry-After": "5"})


def dataset_params(
    default_graph: list[str] | None, named_graphs: list[str] | None
) -> list[tuple[str, str]]:
    """The protocol's dataset parameters; an empty list means "no graphs" (as in
    SparqlProtocolStore: a graph that never holds data, so the engine does not fall back)."""
    params = [("default-graph-uri", g) for g in default_graph or ()]
    if default_graph == []:
        params.append(("default-graph-uri", "urn:dsgo:empty"))
    params += [("named-graph-uri", g) for g in named_graphs or ()]
    if named_graphs == []:
        params.append(("named-graph-uri", "urn:dsgo:empty"))
    return params


class EngineStore(SparqlProtocolStore):
    """SparqlProtocolStore on the supervised engine, with deadline cancellation by restart."""

    def __init__(
        self,
        base_iri: str,
        info_file: Path,
        *,
        timeout: float,
        start_timeout: float = 30.0,
        max_connections: int = 32,
        supervisor: EngineSupervisor | None = None,
    ) -> None:
        self.info_file = info_file
        self.supervisor = supervisor  # set when this process owns the engine (stops it on close)
        self.start_timeout = start_timeout
        self.cancelled = 0  # queries stopped by a restart (this process)
        self.retried = 0
        self._local = threading.local()  # one keep-alive engine connection per query thread
        info = wait_ready(info_file, start_timeout)
        super().__init__(base_iri, query_url="x", update_url=None, store_url=None, timeout=timeout)
        self._client.close()
        # One pool of keep-alive connections; writes default to a long timeout, each query
        # passes the query timeout (see query()).
        self._client = httpx.Client(
            timeout=httpx.Timeout(WRITE_TIMEOUT, connect=5.0),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )
        self._use(info)

    def _use(self, info: EngineInfo) -> None:
        self.info = info
        self.query_url = f"{info.url}/query"
        self.update_url = f"{info.url}/update"
        self.store_url = f"{info.url}/store"

    def _await_restart(self, seen: EngineInfo) -> None:
        """Wait for the engine after `seen` (a restart) and point at it."""
        current = read_info(self.info_file)
        same_up = current is not None and current.pid == seen.pid and pid_alive(seen.pid)
        newer = seen.generation - 1 if same_up else seen.generation  # else: wait for the next
        try:
            self._use(wait_ready(self.info_file, self.start_timeout, newer_than=newer))
        except EngineError as exc:
            raise EngineUnavailable(f"the store engine is not answering: {exc}") from None

    def cancel(self, info: EngineInfo) -> bool:
        """Stop every query on engine `info` now (SIGKILL); the supervisor restarts it."""
        sent = kill_engine(self.info_file, info.pid)
        if sent:
            self.cancelled += 1
        return sent

    def query(
        self,
        sparql: str | QueryOutline,
        *,
        default_graph: list[str] | None = None,
        named_graphs: list[str] | None = None,
        union_default: bool = False,
        timeout: float | None = None,
    ) -> QueryResult:
        budget = timeout or self._timeout
        if union_default and default_graph is None:
            default_graph = [d.graph for d in self.datasets()]
        params = dataset_params(default_graph, named_graphs)
        text = text_of(sparql)
        # A short query goes as GET: one write, no request body held back by Nagle's algorithm.
        query = urlencode([("query", text), *params])
        if len(query) <= GET_LIMIT:
            target, body = f"/query?{query}", None
        else:
            target, body = "/query?" + urlencode(params), text.encode()
        deadline = time.monotonic() + budget
        for attempt in (0, 1):
            info = self.info
            left = deadline - time.monotonic()
            try:
                if left <= 0:  # a retry after a restart gets what is left of the deadline
                    raise TimeoutError
                status, media, data = self._post(info, target, body, left)
            except TimeoutError:
                # Past the deadline: the engine cannot stop one query, so stop them all.
                if left > 0:
                    self.cancel(info)
                raise StoreTimeout(
                    f"query stopped after the configured timeout of {budget:g} s "
                    "(the store engine was restarted to stop it)"
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                if attempt:
                    raise EngineUnavailable(
                        f"the store engine failed twice on this query: {type(exc).__name__}"
                    ) from None
                self.retried += 1
                self._await_restart(info)
                continue
            return self._result(status, media, data)
        raise AssertionError("unreachable")

    def _post(
        self, info: EngineInfo, target: str, body: bytes | None, budget: float
    ) -> tuple[int, str, bytes]:
        """Send a query on this thread's keep-alive connection; TimeoutError past `budget`.

        http.client on one connection per query thread, not the shared httpx pool: the hot
        path of every SPARQL request, and a fraction of httpx's per-request CPU.
        """
        local = self._local
        conn: http.client.HTTPConnection | None = getattr(local, "conn", None)
        if conn is None or local.port != info.port:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", info.port, timeout=budget)
            local.conn, local.port = conn, info.port
        deadline = time.monotonic() + budget
        try:
            if conn.sock is not None:
                conn.sock.settimeout(budget)
            else:
                conn.timeout = budget
            if body is None:
                conn.request("GET", target, headers=_ACCEPT)
            else:
                conn.request("POST", target, body, _QUERY_HEADERS)
            resp = conn.getresponse()
            chunks = []
            while chunk := resp.read1(1 << 16):
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise TimeoutError("no complete answer within the deadline")
            media = (resp.getheader("content-type") or "").split(";")[0].strip()
            if resp.will_close:
                conn.close()
            return resp.status, media, b"".join(chunks)
        except BaseException:
            conn.close()  # never reuse a connection in an unknown state
            local.conn = None
            raise

    def _result(self, status: int, media: str, data: bytes) -> QueryResult:
        if status == 400:
            raise QuerySyntaxError(data.decode("utf-8", errors="replace").strip()[:2000])
        if status >= 400:
            raise StoreError(
                f"store engine: SPARQL query failed with HTTP {status}: "
                f"{data[:500].decode('utf-8', errors='replace')}"
            )
        if media == "application/n-triples":
            return iter([q.triple for q in ox.parse(data, ox.RdfFormat.N_TRIPLES)])
        return ox.parse_query_results(data, ox.QueryResultsFormat.JSON)

    def _update(self, sparql: str) -> None:
        try:
            super()._update(sparql)
        except httpx.TransportError as exc:
            self._after_write_failure(exc)

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
        try:
            return super().replace_dataset(
                name, source, fmt, base_iri=base_iri, label=label, progress=progress
            )
        except httpx.TransportError as exc:
            self._after_write_failure(exc)
            raise AssertionError("unreachable") from None

    def _after_write_failure(self, exc: Exception) -> None:
        seen = self.info
        try:
            self._await_restart(seen)
        except EngineUnavailable:
            pass
        raise EngineRestarting(
            f"the store engine restarted during this write ({type(exc).__name__}); it was not "
            "retried: check the data and send it again"
        )

    def close(self) -> None:
        super().close()
        if self.supervisor is not None:
            self.supervisor.stop()
            self.supervisor = None


def open_engine_store(settings: Any) -> EngineStore:
    """Attach to the engine of a running `dsgo serve` (engine.json), or start one we own."""
    engine = settings.engine
    named = os.environ.get(ENV_FILE)
    info_file = Path(named) if named else settings.data_dir / INFO_NAME
    info = read_info(info_file)
    supervisor = None
    attach = named is not None or (
        info is not None and info.supervisor != os.getpid() and pid_alive(info.supervisor)
    )
    if not attach:
        supervisor = EngineSupervisor(
            engine.location, info_file, engine.binary, engine.start_timeout
        )
        try:
            supervisor.start()
        except EngineError as exc:
            raise StoreError(f"store.backend = 'engine': {exc}") from None
    try:
        return EngineStore(
            settings.base_iri,
            info_file,
            timeout=settings.query_timeout,
            start_timeout=engine.start_timeout,
            max_connections=engine.max_connections,
            supervisor=supervisor,
        )
    except EngineError as exc:
        if supervisor is not None:
            supervisor.stop()
        raise StoreError(f"store.backend = 'engine': {exc}") from None
