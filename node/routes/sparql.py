"""SPARQL 1.1 Protocol at /sparql: read-only, scoped to what the caller may read, with a timeout."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import pyoxigraph as ox
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node import federation
from node.auth import Caller, caller_from_header
from node.evidence import HEADER as EVIDENCE_HEADER
from node.evidence import evidence_from
from node.negotiation import RDF_TYPES, RESULTS_TYPES, choose, content_type, serialise_triples
from node.runtime import Runtime
from node.sparql_results import (
    QueryTimeout,
    collect_triples,
    read_solutions,
    serialise_solutions,
    write,
    write_boolean,
)
from node.sparql_text import limit_select
from trust.audit import AuditEvent, decision_event
from trust.delegation import DSGO_QUERY, Decision
from trust.errors import InvalidToken, TrustError

MAX_QUERY_BYTES = 256 * 1024
FORM = "application/x-www-form-urlencoded"


class ProtocolError(Exception):
    """A request the SPARQL protocol does not allow (HTTP 400 unless said otherwise)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SparqlRequest:
    query: str
    default_graphs: list[str]
    named_graphs: list[str]


@dataclass
class Answer:
    body: bytes
    media: str
    size: int
    truncated: bool


def sparql_routes(rt: Runtime) -> list[Route]:
    """GET and POST /sparql; updates are refused (data changes through loads and connectors)."""
    return [Route("/sparql", SparqlEndpoint(rt), methods=["GET", "POST"])]


class SparqlEndpoint:
    """/sparql as a plain ASGI app (no Request object or per-route wrapper: errors propagate to
    the app's exception handlers); the query runs in the query pool, audited there."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        rt = self.rt
        headers = _headers(scope)
        authorization = headers.get("authorization")
        if authorization is None:
            raise InvalidToken("token_missing", "Authorization: Bearer token required")
        caller = caller_from_header(authorization, rt.layer)
        params = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        body = await _read_body(receive) if scope["method"] == "POST" else None
        req = _parse(params, headers.get("content-type", ""), body)
        evidence = evidence_from(headers.get(EVIDENCE_HEADER), rt, caller.party_id)
        fmt = next((v for k, v in params if k == "format"), None)
        timeout = rt.settings.query_timeout
        deadline = time.monotonic() + timeout
        future = rt.queries.submit(
            _answer, rt, caller, req, headers.get("accept"), fmt, deadline, evidence
        )
        try:
            answer = await asyncio.wait_for(asyncio.wrap_future(future), timeout + 0.5)
        except (TimeoutError, QueryTimeout):
            future.cancel()
            response: Response = JSONResponse(
                {
                    "error": "query_timeout",
                    "error_description": f"query cancelled after the configured timeout of {timeout:g} s",
                },
                status_code=503,
                headers={"Retry-After": "5"},
            )
        else:
            extra = {"Vary": "Accept, Authorization", "Cache-Control": "private, no-cache"}
            if answer.truncated:
                extra["DSGO-Result-Truncated"] = f"max_results={rt.settings.max_results}"
            response = Response(answer.body, media_type=content_type(answer.media), headers=extra)
        await response(scope, receive, send)


def _headers(scope: dict) -> dict[str, str]:
    """The request headers this endpoint reads (the first of each), in one pass."""
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = _READ.get(name)
        if key is not None and key not in found:
            found[key] = value.decode("latin-1")
    return found


_READ = {
    name.encode(): name for name in ("authorization", "accept", "content-type", EVIDENCE_HEADER)
}


async def _read_body(receive: Any) -> bytes:
    """The request body; 413 as soon as it grows over MAX_QUERY_BYTES (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ProtocolError("the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_QUERY_BYTES:
            raise ProtocolError(f"request body over {MAX_QUERY_BYTES} bytes", 413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _answer(
    rt: Runtime,
    caller: Caller,
    req: SparqlRequest,
    accept: str | None,
    fmt: str | None,
    deadline: float,
    evidence: list | tuple,
) -> Answer:
    """The query thread's whole job: run, then audit the decision and the query in one write.

    Fails closed: if the audit write fails, the answer is not given. A query that fails or runs
    out of time still has its policy decision recorded.
    """
    decisions: list[Decision] = []
    try:
        answer = _run(rt, caller.party_id, req, accept, fmt, deadline, evidence, decisions)
    except BaseException:
        if decisions:
            rt.audit.append_all([decision_event(d) for d in decisions])
        raise
    query = AuditEvent(
        kind="query",
        party=caller.party_id,
        target="sparql",
        action=DSGO_QUERY,
        token_jti=caller.jti,
        query_hash=hashlib.sha256(req.query.encode()).hexdigest(),
        datasets=touched_datasets(rt, caller.party_id),
        result_size=answer.size,
    )
    rt.audit.append_all([*(decision_event(d) for d in decisions), query])
    return answer


def _run(
    rt: Runtime,
    caller: str,
    req: SparqlRequest,
    accept: str | None,
    fmt: str | None,
    deadline: float,
    evidence: list | tuple = (),
    decisions: list[Decision] | None = None,
) -> Answer:
    """Evaluate (scoped by policy), then serialise in the negotiated format, within the deadline.

    A local SELECT gets a LIMIT of one row over the cap, so pyoxigraph's own writer can write it.
    """
    cap = rt.settings.max_results
    query = _with_protocol_dataset(req)
    limited = None if federation.has_service(query) else limit_select(query, cap + 1)
    result = evaluate(rt, caller, limited or query, evidence, decisions=decisions)
    if limited is not None and isinstance(result, ox.QuerySolutions):
        media = choose(accept, RESULTS_TYPES, fmt)
        body, rows, truncated = serialise_solutions(result, media, cap, deadline)
        return Answer(body, media, rows, truncated)
    if isinstance(result, ox.QueryBoolean) or isinstance(result, bool):
        media = choose(accept, RESULTS_TYPES, fmt)
        return Answer(write_boolean(bool(result), media), media, 1, False)
    if hasattr(result, "variables"):  # solutions (possibly with graph names mapped back)
        media = choose(accept, RESULTS_TYPES, fmt)
        table = read_solutions(result, cap, deadline)
        return Answer(write(table, media), media, len(table.rows), table.truncated)
    media = choose(accept, RDF_TYPES, fmt)
    triples, truncated = collect_triples(result, cap, deadline)
    return Answer(serialise_triples(triples, media), media, len(triples), truncated)


def evaluate(
    rt: Runtime,
    caller: str,
    query: str,
    evidence: list | tuple = (),
    for_datasets: tuple[str, ...] = (),
    decisions: list[Decision] | None = None,
):
    """Run a query for `caller`: policy-scoped locally, SERVICE parts at the remote nodes.

    Remote parts are asked by this node with its own token; each remote node enforces its own
    policies for this node's party. Nothing fetched is written to the store. `for_datasets`
    names the datasets the answer is computed for (a derivation), recorded with each remote call.
    With `decisions`, policy decisions are collected there for the caller to audit.
    """

    def local(text: str):
        return rt.enforcer.query(
            rt.store,
            caller,
            text,
            data_version=rt.store.version(),
            evidence=evidence,
            decisions=decisions,
        )

    if not federation.has_service(query):
        return local(query)
    result = federation.evaluate(
        query,
        local=local,
        fetch=node_fetch(rt),
        timeout=rt.settings.query_timeout,
        endpoint_allowed=_is_node_endpoint,
    )
    for source in result.sources:
        rt.record(
            AuditEvent(
                kind="federated_call",
                party=caller,
                target=source.endpoint,
                action="dsgo:query",
                datasets=for_datasets,
                result_size=source.rows,
                detail={
                    "requests": source.requests,
                    "error": source.error,
                    "silent": source.silent,
                },
            )
        )
    return result.result


def node_fetch(rt: Runtime) -> federation.Fetch:
    """Ask another node's /sparql with a token this node obtains there (cached until expiry)."""
    client = rt.layer.client()

    def fetch(endpoint: str, query: str, timeout: float) -> federation.RemoteSolutions:
        base = endpoint[: -len("/sparql")]
        try:
            resp = client.request(
                "POST",
                base,
                "/sparql",
                data={"query": query},
                headers={"Accept": federation.RESULTS_JSON},
                timeout=timeout,
            )
        except TrustError as exc:
            raise federation.RemoteCallError(
                f"no access token from {base}: {exc.description}"
            ) from None
        return federation.check_response(resp.status_code, resp.headers, resp.content)

    return fetch


def _is_node_endpoint(endpoint: str) -> bool:
    """Only other nodes' SPARQL endpoints; the token handshake then proves the node is a participant."""
    return endpoint.startswith(("http://", "https://")) and endpoint.endswith("/sparql")


def touched_datasets(rt: Runtime, caller: str) -> tuple[str, ...]:
    """Names of the datasets a query by `caller` could read (recorded in the audit log)."""
    scope = rt.enforcer.scope_for(caller, DSGO_QUERY)
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


def _parse(params: list[tuple[str, str]], ctype: str, body: bytes | None) -> SparqlRequest:
    """The query and dataset parameters from the URL, a form body or a direct query body."""
    params = list(params)
    if body is not None:  # POST
        ctype = ctype.split(";")[0].strip().lower()
        if ctype == "application/sparql-update":
            raise ProtocolError("SPARQL update is not allowed: this endpoint is read-only", 403)
        if ctype == FORM:
            try:
                params += parse_qsl(
                    body.decode("utf-8"), keep_blank_values=True, strict_parsing=False
                )
            except UnicodeDecodeError:
                raise ProtocolError("form body is not UTF-8") from None
        elif ctype == "application/sparql-query":
            try:
                params.append(("query", body.decode("utf-8")))
            except UnicodeDecodeError:
                raise ProtocolError("query body is not UTF-8") from None
        else:
            raise ProtocolError(
                "POST needs Content-Type application/x-www-form-urlencoded or application/sparql-query",
                415,
            )
    if any(k in ("update", "using-graph-uri", "using-named-graph-uri") for k, _ in params):
        raise ProtocolError("SPARQL update is not allowed: this endpoint is read-only", 403)
    queries = [v for k, v in params if k == "query"]
    if not queries:
        raise ProtocolError("missing 'query' parameter")
    if len(queries) > 1:
        raise ProtocolError("more than one 'query' parameter")
    if len(queries[0].encode()) > MAX_QUERY_BYTES:
        raise ProtocolError(f"query over {MAX_QUERY_BYTES} bytes", 413)
    return SparqlRequest(
        queries[0],
        [v for k, v in params if k == "default-graph-uri"],
        [v for k, v in params if k == "named-graph-uri"],
    )


def _with_protocol_dataset(req: SparqlRequest) -> str:
    """Protocol dataset parameters become FROM / FROM NAMED, which enforcement intersects with the scope.

    The protocol says they override the query's own dataset clause; the enforcer reads the clause,
    so the text is rebuilt with the protocol's graphs and any FROM in the text is dropped.
    """
    if not req.default_graphs and not req.named_graphs:
        return req.query
    from node.enforcement import replace_dataset_clause

    return replace_dataset_clause(req.query, req.default_graphs, req.named_graphs)
