"""Which threads a SPARQL request runs on: remote waits never hold an engine slot.

`store.query_slots` threads (`Runtime.queries`) evaluate queries on the engine. A query with
SERVICE spends most of its time waiting on other nodes; if it waited in a slot, a few queries
to a hung remote would take every slot and starve plain local queries (issue 17: 503 after
10.5 s). So a text that may hold SERVICE runs on `Runtime.federated` instead: it decides,
plans and waits on the remote answers there, and takes a slot only for each piece of engine
work (the local bindings, then the rewritten query with its serialisation). Other texts go
straight to a slot, as before: no extra thread hop on the common path.

A lookup (one triple pattern, QueryOutline.lookup) that arrives while the pool is idle is
answered on the event loop itself (`answer_here`), as a resource GET is: its cost is bounded
by the rows it returns, and the two thread wake-ups of a pool round trip (about 0.1 ms here)
are most of what it would cost. Only with the embedded store and the SQLite audit log, whose
reads and commits take microseconds; anything over the row budget, that would first build a
merge or a partial view, or whose default graph spans more than QUICK_GRAPHS graphs, goes to
the pool.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TypeVar

from node.enforcement import Caller
from node.errors import QueryTimeout
from node.runtime import Runtime
from node.service.query import Answer, NotHere, SparqlRequest, answer_query
from node.sparql.outline import LOOKUP_MAX_CHARS
from node.sparql.results import in_this_thread
from node.sparql.text import mentions_service
from trust.delegation import Policy

__all__ = ["Asked", "EngineSlot", "answer_here", "submit_query"]

T = TypeVar("T")


@dataclass(frozen=True)
class EngineSlot:
    """Runs one piece of engine work in a query slot and waits for it until the deadline."""

    rt: Runtime
    deadline: float

    def __call__(self, work: Callable[[], T]) -> T:
        """`work()` in a slot thread; QueryTimeout if no slot finished it before the deadline.

        The work must read its results itself (pyoxigraph results stay in their thread).
        """
        future = self.rt.queries.submit(in_this_thread, work)  # its results die there too
        try:
            return future.result(timeout=max(self.deadline - time.monotonic(), 0.0))
        except FutureTimeout:
            future.cancel()
            raise QueryTimeout(
                f"query cancelled after the configured timeout of {self.rt.settings.query_timeout:g} s"
            ) from None


@dataclass(frozen=True)
class Asked:
    """One SPARQL request as the route read it: who asks, what, in which format, until when."""

    caller: Caller
    req: SparqlRequest
    accept: str | None
    fmt: Sequence[str] | None
    deadline: float
    evidence: Sequence[Policy]

    def args(self) -> tuple:
        """answer_query's arguments after `rt`, in its order."""
        return (self.caller, self.req, self.accept, self.fmt, self.deadline, self.evidence)


def submit_query(rt: Runtime, asked: Asked, defer_audit: bool = False) -> Future[Answer]:
    """Start answering a SPARQL request; the future holds the Answer (audited) or the error.

    With `defer_audit`, an answer's entries come back unwritten (answer_query's doc)."""
    if mentions_service(asked.req.query):  # a false positive costs one thread hop, no decision
        slot = EngineSlot(rt, asked.deadline)
        return rt.federated.submit(
            answer_query, rt, *asked.args(), slot=slot, defer_audit=defer_audit
        )
    return rt.queries.submit(answer_query, rt, *asked.args(), defer_audit=defer_audit)


def answer_here(rt: Runtime, asked: Asked) -> Answer | None:
    """The answer (audited) of a lookup, computed on the calling thread; None: use submit_query.

    Errors of the request itself (400, 403, 406, 503 on an unwritable log) are raised as they
    would be from the pool.
    """
    settings = rt.settings
    if (
        settings.store_backend != "oxigraph"
        or settings.audit_backend != "sqlite"
        or not rt.queries.idle()
        or len(asked.req.query) > LOOKUP_MAX_CHARS  # not read on the loop: it cannot be a lookup
    ):
        return None
    try:
        return answer_query(rt, *asked.args(), inline=True)
    except NotHere:
        return None
