"""SPARQL 1.1 Protocol at /sparql: read-only, scoped to what the caller may read, with a timeout."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

import pyoxigraph as ox
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node import federation
from node.auth import authenticate
from node.evidence import evidence_from
from node.negotiation import RDF_TYPES, RESULTS_TYPES, choose, content_type, serialise_triples
from node.runtime import Runtime
from node.sparql_results import QueryTimeout, collect_triples, read_solutions, write, write_boolean
from trust.audit import AuditEvent
from trust.delegation import DSGO_QUERY
from trust.errors import TrustError

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

    async def sparql(request: Request) -> Response:
        caller = authenticate(request, rt.layer)
        req = await _parse(request)
        evidence = evidence_from(request, rt, caller.party_id)
        accept = request.headers.get("accept")
        fmt = request.query_params.get("format")
        timeout = rt.settings.query_timeout
        deadline = time.monotonic() + timeout
        future = rt.queries.submit(_run, rt, caller.party_id, req, accept, fmt, deadline, evidence)
        try:
            answer = await asyncio.wait_for(asyncio.wrap_future(future), timeout + 0.5)
        except (TimeoutError, QueryTimeout):
            future.cancel()
            return JSONResponse(
                {
                    "error": "query_timeout",
                    "error_description": f"query cancelled after the configured timeout of {timeout:g} s",
                },
                status_code=503,
                headers={"Retry-After": "5"},
            )
        rt.record(
            AuditEvent(
                kind="query",
                party=caller.party_id,
                target="sparql",
                action="dsgo:query",
                token_jti=caller.jti,
                query_hash=hashlib.sha256(req.query.encode()).hexdigest(),
                datasets=touched_datasets(rt, caller.party_id),
                result_size=answer.size,
            )
        )
        headers = {"Vary": "Accept, Authorization", "Cache-Control": "private, no-cache"}
        if answer.truncated:
            headers["DSGO-Result-Truncated"] = f"max_results={rt.settings.max_results}"
        return Response(answer.body, media_type=content_type(answer.media), headers=headers)

    return [Route("/sparql", sparql, methods=["GET", "POST"])]


def _run(
    rt: Runtime,
    caller: str,
    req: SparqlRequest,
    accept: str | None,
    fmt: str | None,
    deadline: float,
    evidence: list | tuple = (),
) -> Answer:
    """Evaluate (scoped by policy), then serialise in the negotiated format, within the deadline."""
    result = evaluate(rt, caller, _with_protocol_dataset(req), evidence)
    cap = rt.settings.max_results
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
):
    """Run a query for `caller`: policy-scoped locally, SERVICE parts at the remote nodes.

    Remote parts are asked by this node with its own token; each remote node enforces its own
    policies for this node's party. Nothing fetched is written to the store. `for_datasets`
    names the datasets the answer is computed for (a derivation), recorded with each remote call.
    """

    def local(text: str):
        return rt.enforcer.query(
            rt.store, caller, text, data_version=rt.store.version(), evidence=evidence
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


async def _parse(request: Request) -> SparqlRequest:
    """Read the query and dataset parameters from GET, form POST or direct POST."""
    params = parse_qsl(request.url.query, keep_blank_values=True)
    if request.method == "POST":
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if len(body) > MAX_QUERY_BYTES:
            raise ProtocolError(f"request body over {MAX_QUERY_BYTES} bytes", 413)
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
