"""SPARQL 1.1 Protocol at /sparql: read-only, scoped to what the caller may read, with a timeout."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node import self_description
from node.auth import caller_from_header
from node.errors import ProtocolError, QueryTimeout
from node.evidence import HEADER as EVIDENCE_HEADER
from node.evidence import evidence_from
from node.http_body import BodyTooLarge, ClientGone, read_body
from node.negotiation import content_type, decode_request_body
from node.runtime import Runtime
from node.service.dispatch import Asked, answer_here, submit_query
from node.service.query import Answer, SparqlRequest
from trust.errors import InvalidToken

log = logging.getLogger("dsgo.node")

MAX_QUERY_BYTES = 256 * 1024
FORM = "application/x-www-form-urlencoded"


def sparql_routes(rt: Runtime) -> list[Route]:
    """GET and POST /sparql; updates are refused (data changes through loads and connectors)."""
    return [Route("/sparql", SparqlEndpoint(rt), methods=["GET", "POST"])]


class SparqlEndpoint:
    """/sparql as a plain ASGI app (no Request object or per-route wrapper: errors propagate to
    the app's exception handlers); the query is answered and audited in the query pool, or
    here when it is a lookup on an idle node (node/service/dispatch.py)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        rt = self.rt
        headers = _headers(scope)
        params = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        if scope["method"] == "GET" and _wants_description(params):
            await self_description.serve(rt, scope, receive, send, headers)
            return
        authorization = headers.get("authorization")
        if authorization is None:
            raise InvalidToken("token_missing", "Authorization: Bearer token required")
        caller = caller_from_header(authorization, rt.layer)
        body = await _read_body(receive) if scope["method"] == "POST" else None
        req = _parse(params, headers.get("content-type", ""), body)
        evidence = evidence_from(headers.get(EVIDENCE_HEADER), rt, caller)
        timeout = rt.settings.query_timeout
        deadline = time.monotonic() + timeout
        asked = Asked(caller, req, headers.get("accept"), req.formats, deadline, evidence)
        answer = answer_here(rt, asked)  # a lookup on an idle node: no thread hop
        if answer is None:
            future = submit_query(rt, asked, defer_audit=True)
            try:
                answer = await asyncio.wait_for(asyncio.wrap_future(future), timeout + 0.5)
                if answer.unwritten:
                    # Group-committed with concurrent requests' entries, after the engine slot
                    # is free; nothing is answered before the commit (a failed one answers 503).
                    with rt.audit.deferred() as pending:
                        for event in answer.unwritten:
                            rt.audit.append(event)
                    await pending.wait()
            except (TimeoutError, QueryTimeout):
                if not future.cancel():
                    future.add_done_callback(_write_late(rt))  # answered after all: audited
                late = QueryTimeout(
                    f"query cancelled after the configured timeout of {timeout:g} s"
                )
                refused = JSONResponse(
                    late.to_json(), status_code=late.status, headers=late.headers
                )
                await refused(scope, receive, send)
                return
        extra = {"Vary": "Accept, Authorization", "Cache-Control": "private, no-cache"}
        if answer.truncated:
            extra["DSGO-Result-Truncated"] = f"max_results={rt.settings.max_results}"
        response = Response(answer.body, media_type=content_type(answer.media), headers=extra)
        await response(scope, receive, send)


def _write_late(rt: Runtime) -> Callable[[Future[Answer]], None]:
    """A done-callback for a query given up on: an answer that came after all is audited."""

    def write(future: Future[Answer]) -> None:
        if future.cancelled() or future.exception() is not None:
            return  # a failure was audited by the query thread itself
        events = future.result().unwritten
        if events:
            try:
                rt.audit.append_all(events)
            except Exception as exc:  # noqa: BLE001 - nobody is waiting for this answer
                log.warning("audit entry of a query answered after its timeout: %s", exc)

    return write


def _wants_description(params: list[tuple[str, str]]) -> bool:
    """A GET with no protocol parameter (at most `format`) asks for the service description
    (SPARQL 1.1 Service Description, section 2); any other parameter is a protocol request."""
    return all(k == "format" for k, _ in params)


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
    try:
        return await read_body(receive, MAX_QUERY_BYTES)
    except BodyTooLarge:
        raise ProtocolError(f"request body over {MAX_QUERY_BYTES} bytes", 413) from None
    except ClientGone:
        raise ProtocolError("the client went away before sending the whole body") from None


def _parse(params: list[tuple[str, str]], ctype: str, body: bytes | None) -> SparqlRequest:
    """The query and dataset parameters from the URL, a form body or a direct query body."""
    params = list(params)
    if body is not None:  # POST
        media = ctype.split(";")[0].strip().lower()
        if media == "application/sparql-update":
            raise ProtocolError("SPARQL update is not allowed: this endpoint is read-only", 403)
        if media == FORM:
            text = decode_request_body(body, ctype, "form body")
            params += parse_qsl(text, keep_blank_values=True, strict_parsing=False)
        elif media == "application/sparql-query":
            params.append(("query", decode_request_body(body, ctype, "query body")))
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
        tuple(v for k, v in params if k == "format"),
    )
