"""The SPARQL use case: guard the text, decide (the enforcement point), evaluate, serialise, audit.

Order matters for security: the text is checked against the [query] limits before anything
parses it deeply; the caller's query grant is decided before any SERVICE is called; every
SERVICE endpoint passes `Enforcer.outbound` (registry-vouched peer, caller allowed to make the
node call out) before any network I/O; a SERVICE to this node itself is evaluated locally
under the caller's own scope.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyoxigraph as ox

from node.enforcement import Caller, request_record
from node.errors import ProtocolError, QueryTimeout
from node.exchange import exchange_for
from node.negotiation import (
    RDF_TYPES,
    RESULTS_TYPES,
    NotAcceptable,
    choose_sparql,
    serialise_triples,
)
from node.outbound import REMOTE_SHARE, post_sparql
from node.runtime import Runtime
from node.sparql import federation
from node.sparql.outline import QueryOutline, check_length, guard, outline, text_of
from node.sparql.results import (
    collect_triples,
    read_solutions,
    release_results,
    serialise_solutions,
    write,
    write_boolean,
)
from node.sparql.rewrite import splice, with_dataset, with_limit
from node.sparql.text import SparqlSyntaxError
from node.store.merge import NotPlanned
from trust.audit import AuditEvent
from trust.delegation import DSGO_QUERY, Decision, Policy, Scope

__all__ = [
    "INLINE_ROWS",
    "Answer",
    "NotHere",
    "SparqlRequest",
    "answer_query",
    "evaluate",
    "query_form",
]

INLINE_ROWS = 256  # the row budget of a lookup answered where it arrives (answer_query's doc)

_IRI_OK = re.compile(r'[^<>"{}|^`\\\x00-\x20]+')


@dataclass(frozen=True)
class SparqlRequest:
    """A parsed SPARQL Protocol request: the query and the protocol's dataset parameters."""

    query: str
    default_graphs: list[str]
    named_graphs: list[str]
    formats: tuple[str, ...] = ()  # `format` parameters (URL or form body), in order


@dataclass
class Answer:
    body: bytes
    media: str
    size: int
    truncated: bool
    # With answer_query(defer_audit=True) while others wait for a slot: the request's audit
    # entries, not yet written. The caller must have them committed before it gives the answer
    # (node/routes/sparql.py does, group-committed with concurrent requests' entries).
    unwritten: list[AuditEvent] = field(default_factory=list)


class NotHere(Exception):
    """answer_query(inline=True) cannot answer cheaply: nothing was written (no audit entry, no
    merge or view built), and the request goes to the query pool (node/service/dispatch.py)."""


def query_form(query: str) -> str | None:
    """SELECT, ASK, CONSTRUCT or DESCRIBE after the prologue (None when it cannot be seen)."""
    return outline(query).form


def answer_query(
    rt: Runtime,
    caller: Caller,
    req: SparqlRequest,
    accept: str | None,
    fmt: str | Sequence[str] | None,
    deadline: float,
    evidence: Sequence[Policy],
    slot: Slot | None = None,
    defer_audit: bool = False,
    inline: bool = False,
) -> Answer:
    """The query thread's whole job: run, then audit the decision and the query in one write.

    Fails closed: if the audit write fails, the answer is not given. A query that fails or runs
    out of time still has its policy decisions recorded. With `slot`, this thread is not an
    engine slot: engine work is handed to `slot` and remote answers are awaited here
    (node/service/dispatch.py). With `defer_audit`, while other work waits for an engine slot,
    an answered query's entries are returned in `Answer.unwritten` for the caller to commit
    before answering (a failure is still written here): the slot is then not held for the
    audit write. With no one waiting they are written here, which is faster for one request.

    With `inline`, only a lookup (QueryOutline.lookup) over what is ready is answered, within
    INLINE_ROWS rows: anything else raises NotHere before any decision is recorded, so the
    caller can run it in the pool instead (the event loop is never held by a long query).
    """
    decisions: list[Decision] = []
    calls: list[AuditEvent] = []
    scope_seen: list[Scope] = []
    detail: dict[str, Any] = {"person": caller.person} if caller.person else {}

    def record(size: int | None, more: dict[str, Any]) -> AuditEvent:
        # One entry per request (issue 17): the decision and the query in one record.
        query = AuditEvent(
            kind="query",
            party=caller.party_id,
            target="sparql",
            action=DSGO_QUERY,
            token_jti=caller.jti,
            query_hash=hashlib.sha256(req.query.encode()).hexdigest(),
            datasets=touched_datasets(rt, scope_seen[0]) if scope_seen else (),
            result_size=size,
            detail={**detail, **more},
        )
        return request_record(decisions, query)

    try:
        answer = _run(
            rt,
            *(caller, req, accept, fmt, deadline, evidence, decisions, calls, scope_seen, slot),
            inline=inline,
        )
    except (NotHere, NotPlanned):
        raise NotHere() from None  # nothing is recorded: the pool answers it, and audits it
    except BaseException as exc:
        release_results(exc)  # the caller may be another thread: no engine result goes along
        if decisions or calls:
            code = "query_timeout" if isinstance(exc, QueryTimeout) else None
            failed = {"error": code or getattr(exc, "code", None) or type(exc).__name__}
            rt.audit.append_all([record(None, failed), *calls])
        raise
    if inline and answer.truncated and answer.size < rt.settings.max_results:
        raise NotHere()  # over the row budget (not the node's cap): the pool answers it
    events = [record(answer.size, {}), *calls]
    if defer_audit and rt.queries.waiting():
        answer.unwritten = events  # others wait for a slot: the commit is made off it
    else:
        rt.audit.append_all(events)  # nobody waits: one write here beats two thread hops
    return answer


def _run(
    rt: Runtime,
    caller: Caller,
    req: SparqlRequest,
    accept: str | None,
    fmt: str | Sequence[str] | None,
    deadline: float,
    evidence: Sequence[Policy],
    decisions: list[Decision],
    calls: list[AuditEvent],
    scope_seen: list[Scope],
    slot: Slot | None = None,
    inline: bool = False,
) -> Answer:
    """Evaluate (scoped by policy), then serialise in the negotiated format, within the deadline.

    The format is negotiated before evaluation, so a 406 never leaves an engine result behind.
    A local SELECT gets a LIMIT of one row over the cap, so pyoxigraph's own writer can write it.
    """
    check_length(req.query, rt.settings.limits)
    read = rt.outlines.outline(req.query, caller.party_id)  # the one read of the text
    if inline and not (read.lookup and not req.default_graphs and not req.named_graphs):
        raise NotHere()
    query = with_protocol_dataset(req, read)
    guard(query, rt.settings.limits)
    form = query.form
    try:
        media = choose_sparql(
            accept, RDF_TYPES if form in ("CONSTRUCT", "DESCRIBE") else RESULTS_TYPES, fmt
        )
    except NotAcceptable:
        rt.enforcer.query_scope(caller, evidence, decisions)  # a refusal still comes first
        raise
    cap = min(rt.settings.max_results, INLINE_ROWS) if inline else rt.settings.max_results
    limited = None if query.has_service else with_limit(query, cap + 1)

    def finish(result: Any) -> Answer:  # in the thread that evaluated (results stay there)
        return _serialise(result, limited is not None, accept, fmt, media, cap, deadline)

    return evaluate(
        rt,
        caller,
        limited or query,
        evidence,
        decisions=decisions,
        calls=calls,
        scope_seen=scope_seen,
        guarded=True,
        slot=slot,
        deadline=deadline,
        finish=finish,
        build=not inline,
    )


def _serialise(
    result: Any,
    limited: bool,
    accept: str | None,
    fmt: str | Sequence[str] | None,
    media: str,
    cap: int,
    deadline: float,
) -> Answer:
    """The engine's result in the negotiated format, cut to `cap` rows, within the deadline."""
    if limited and isinstance(result, ox.QuerySolutions):
        body, rows, truncated = serialise_solutions(result, media, cap, deadline)
        return Answer(body, media, rows, truncated)
    if isinstance(result, ox.QueryBoolean | bool):
        media = choose_sparql(accept, RESULTS_TYPES, fmt)
        return Answer(write_boolean(bool(result), media), media, 1, False)
    if hasattr(result, "variables"):  # solutions (possibly with graph names mapped back)
        media = choose_sparql(accept, RESULTS_TYPES, fmt)
        table = read_solutions(result, cap, deadline)
        return Answer(write(table, media), media, len(table.rows), table.truncated)
    media = choose_sparql(accept, RDF_TYPES, fmt)
    triples, truncated = collect_triples(result, cap, deadline)
    return Answer(serialise_triples(triples, media), media, len(triples), truncated)


def evaluate(
    rt: Runtime,
    caller: Caller,
    query: str | QueryOutline,
    evidence: Sequence[Policy] = (),
    for_datasets: tuple[str, ...] = (),
    decisions: list[Decision] | None = None,
    calls: list[AuditEvent] | None = None,
    scope_seen: list[Scope] | None = None,
    guarded: bool = False,
    receipts: list[str] | None = None,
    slot: Slot | None = None,
    deadline: float | None = None,
    finish: Callable[[Any], Any] | None = None,
    build: bool = True,
) -> Any:
    """Run a query for `caller`: policy-scoped locally, SERVICE parts at vouched peer nodes.

    Remote parts are asked by this node with its own token, only after the enforcement point
    allowed the caller to make this node call out; each remote node enforces its own policies
    for this node's party. Nothing fetched is written to the store. `for_datasets` names the
    datasets the answer is computed for (a derivation), recorded with each remote call. With
    `decisions` / `calls`, audit entries are collected for the caller to write in one go.
    Each remote answer is verified and kept as a receipt (node/exchange.py); `receipts` collects
    their ids. With `finish`, the engine's result goes through it in the evaluating thread and
    its value is returned. With `slot`, engine work runs in slots and remote answers are
    awaited in this thread; `deadline` bounds the remote calls below the query's own deadline.
    With `build=False`, NotPlanned instead of building a view or merge first (scoped_query).
    """
    finish = finish or _as_is
    if not guarded:
        check_length(text_of(query), rt.settings.limits)
    query = outline(query)
    if not guarded:
        guard(query, rt.settings.limits)
    enforcer = rt.enforcer
    plan = _plan(query) if query.has_service else None
    if plan is not None and any(enforcer.is_self_endpoint(s.endpoint) for s in plan.services):
        query = outline(_inline_self(query.text, plan, enforcer.is_self_endpoint))
        plan = _plan(query) if query.has_service else None
    if plan is None or not plan.services:
        scope = enforcer.query_scope(caller, evidence, decisions)
        if scope_seen is not None:
            scope_seen.append(scope)
        local_only = query

        def run() -> Any:
            return finish(
                enforcer.run_scoped(
                    rt.store,
                    local_only,
                    scope,
                    data_version=rt.store.version(),
                    timeout=None,
                    build=build,
                )
            )

        return run() if slot is None else slot(run)
    scope = enforcer.query_scope(caller, evidence, decisions)  # the grant first, then any I/O
    if scope_seen is not None:
        scope_seen.append(scope)
    peers = {
        s.endpoint: enforcer.outbound(caller, s.endpoint, endpoint=True, collect=decisions)
        for s in plan.services
    }
    client = rt.layer.client()
    exchange = exchange_for(rt)

    def local(text: str) -> Any:
        return enforcer.run_scoped(rt.store, text, scope, data_version=rt.store.version())

    def in_slot(text: str) -> Any:  # the local bindings, read in the slot
        return slot(lambda: federation.materialise(local(text)))  # type: ignore[misc]

    def final(text: str) -> Any:
        if slot is None:
            return finish(local(text))
        return slot(lambda: finish(local(text)))

    def fetch(endpoint: str, text: str, timeout: float) -> federation.RemoteSolutions:
        return post_sparql(
            client,
            peers[endpoint],
            text,
            timeout,
            exchange=exchange,
            datasets=for_datasets,
            receipts=receipts,
        )

    reports: list[federation.SourceReport] = []
    budget = remote_budget(rt, deadline)
    try:
        result = federation.evaluate_federated(
            query.text,
            local=local if slot is None else in_slot,
            fetch=fetch,
            timeout=budget,
            endpoint_allowed=peers.__contains__,
            reports=reports,
            plan=plan,
            deadline=time.monotonic() + budget,  # all remote calls together
            final=final,
        )
    finally:
        events = [_call_event(rt, caller, peers, r, for_datasets) for r in reports]
        if calls is not None:
            calls.extend(events)
        elif events:
            rt.audit.append_all(events)
    return result.result


Slot = Callable[[Callable[[], Any]], Any]
"""slot(work) -> work() run in an engine slot (node/service/dispatch.py EngineSlot)."""


def remote_budget(rt: Runtime, deadline: float | None) -> float:
    """How long this query's remote calls may take: federation.read_timeout, kept below the
    query timeout and below REMOTE_SHARE of what is left before `deadline`."""
    budget = rt.settings.query_timeout or rt.settings.bounds.remote_read_timeout
    budget = min(rt.settings.bounds.remote_read_timeout, REMOTE_SHARE * budget)
    if deadline is not None:
        budget = min(budget, REMOTE_SHARE * max(deadline - time.monotonic(), 0.0))
    return budget


def _as_is(result: Any) -> Any:
    return result


def _plan(query: QueryOutline) -> federation.Plan:
    try:
        return federation.plan_query(query)
    except SparqlSyntaxError as exc:
        raise federation.InvalidQuery(f"cannot read the query: {exc}") from None


def _inline_self(query: str, plan: federation.Plan, is_self: Any) -> str:
    """SERVICE <this node's own /sparql> { P } becomes { P }: evaluated here, in the caller's scope."""
    return splice(
        query,
        [(s.start, s.end, "{ " + s.body + " }") for s in plan.services if is_self(s.endpoint)],
    )


def _call_event(
    rt: Runtime,
    caller: Caller,
    peers: dict[str, Any],
    source: federation.SourceReport,
    for_datasets: tuple[str, ...],
) -> AuditEvent:
    peer = peers.get(source.endpoint)
    detail: dict[str, Any] = {
        "requests": source.requests,
        "error": source.error,
        "silent": source.silent,
        "on_behalf_of": caller.party_id,
        "as": rt.settings.party_id,
        "peer": peer.party_id if peer is not None else None,
        "elapsed_ms": source.elapsed_ms,
    }
    if caller.person:
        detail["person"] = caller.person
    return AuditEvent(
        kind="federated_call",
        party=caller.party_id,
        target=source.endpoint,
        action=DSGO_QUERY,
        token_jti=caller.jti,
        datasets=for_datasets,
        result_size=source.rows,
        detail=detail,
    )


def touched_datasets(rt: Runtime, scope: Scope) -> tuple[str, ...]:
    """Names of the datasets a query in `scope` could read (recorded in the audit log)."""
    graphs = rt.enforcer.dataset_graphs(rt.store, rt.store.version())
    if "*" in scope.whole_datasets:
        readable = graphs
    else:
        partial = set()
        for grant in scope.partial:
            partial |= set(graphs) if grant.datasets is None else set(grant.datasets)
        readable = [g for g in graphs if g in scope.whole_datasets or g in partial]
    prefix = f"{rt.settings.base_iri}/dataset/"
    return tuple(g[len(prefix) :] for g in readable if g.startswith(prefix))


def with_protocol_dataset(req: SparqlRequest, query: QueryOutline) -> QueryOutline:
    """Protocol dataset parameters become FROM / FROM NAMED, which enforcement intersects with the scope.

    The protocol says they override the query's own dataset clause; the enforcer reads the clause,
    so the outline is rebuilt with the protocol's graphs and any FROM in the text is dropped.
    """
    if not req.default_graphs and not req.named_graphs:
        return query
    for iri in [*req.default_graphs, *req.named_graphs]:
        if not _IRI_OK.fullmatch(iri):
            raise ProtocolError(
                f"default-graph-uri / named-graph-uri must be IRIs, got {iri[:200]!r}"
            )
    return with_dataset(query, req.default_graphs, req.named_graphs)
