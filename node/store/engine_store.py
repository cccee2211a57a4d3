"""store.backend = "engine": the SPARQL-protocol store on a supervised `oxigraph serve` child.

Reads that overrun the query timeout are stopped by SIGKILLing the engine (node/engine.py
restarts it); reads that were merely in flight when that happened are retried once after the
restart (a read is idempotent). Writes are not retried: they answer a named 503 with
Retry-After, so the client decides.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

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
from node.sparql.outline import QueryOutline
from node.store.base import DatasetInfo, QueryResult, StoreError, StoreTimeout
from node.store.inputs import Progress
from node.store.sparql_protocol import SparqlProtocolStore

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
        for attempt in (0, 1):
            info = self.info
            try:
                return super().query(
                    sparql,
                    default_graph=default_graph,
                    named_graphs=named_graphs,
                    union_default=union_default,
                    timeout=budget,
                )
            except (httpx.ReadTimeout, StoreTimeout):
                # Past the deadline: the engine cannot stop one query, so stop them all.
                self.cancel(info)
                raise StoreTimeout(
                    f"query stopped after the configured timeout of {budget:g} s "
                    "(the store engine was restarted to stop it)"
                ) from None
            except httpx.TransportError as exc:
                if attempt:
                    raise EngineUnavailable(
                        f"the store engine failed twice on this query: {type(exc).__name__}"
                    ) from None
                self.retried += 1
                self._await_restart(info)
        raise AssertionError("unreachable")

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
