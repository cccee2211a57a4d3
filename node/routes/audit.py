"""Auditor access: the audit log (JSON or PROV-O) and one-hop provenance traces, when a policy grants it.

An auditor reads these when the node's owner granted it the pseudo-dataset `audit`
(`dsgo policy grant --to AUDITOR --dataset audit`); the owner always may.
"""

from __future__ import annotations

import datetime as dt

import pyoxigraph as ox
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.auth import authenticate
from node.enforcement import READ_AUDIT
from node.errors import BadRequest
from node.negotiation import RDF_TYPES, choose, content_type, serialise_triples
from node.runtime import Runtime
from node.trace import trace
from trust.audit import as_prov

AUDIT_DATASET = "audit"
JSON = "application/json"


def audit_routes(rt: Runtime) -> list[Route]:
    """GET /audit/entries and GET /audit/trace?iri=..."""

    def _auditor(request: Request) -> str:
        caller = authenticate(request, rt.layer)
        rt.enforcer.authorize(caller, READ_AUDIT, AUDIT_DATASET)
        return caller.party_id

    async def entries(request: Request) -> Response:
        _auditor(request)
        params = request.query_params
        media = choose(request.headers.get("accept"), (JSON, *RDF_TYPES), params.get("format"))
        rows = await run_in_threadpool(
            rt.audit.entries,
            _time(params.get("since"), "since"),
            _time(params.get("until"), "until"),
            params.get("party"),
            params.get("kind"),
            _count(params.get("limit", "1000"), "limit", 1, 10_000),
            _count(params.get("after_seq", "0"), "after_seq", 0, 2**62),
        )
        if media != JSON:
            body = serialise_triples(as_prov(rows, rt.settings.base_iri), media)
            return Response(body, media_type=content_type(media))
        return JSONResponse(
            {
                "entries": [
                    {
                        "seq": e.seq,
                        "time": e.time,
                        "kind": e.kind,
                        "party": e.party,
                        "person": e.detail.get("person"),  # who, in a login session
                        "target": e.target,
                        "action": e.action,
                        "policy_ids": list(e.policy_ids),
                        "token_jti": e.token_jti,
                        "query_hash": e.query_hash,
                        "datasets": list(e.datasets),
                        "result_size": e.result_size,
                        "detail": e.detail,
                        "hash": e.hash,
                        "prev": e.prev,
                    }
                    for e in rows
                ]
            }
        )

    async def trace_route(request: Request) -> Response:
        _auditor(request)
        iri = request.query_params.get("iri")
        if not iri:
            raise BadRequest("missing 'iri' parameter", code="invalid_request")
        try:
            ox.NamedNode(iri)
        except ValueError:
            raise BadRequest(f"iri: not an IRI: {iri[:200]!r}", code="invalid_request") from None
        return JSONResponse(await run_in_threadpool(trace, rt, iri))

    return [
        Route("/audit/entries", entries, methods=["GET"]),
        Route("/audit/trace", trace_route, methods=["GET"]),
    ]


def _time(value: str | None, name: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name}: not an ISO 8601 time: {value[:60]!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _count(value: str, name: str, lo: int, hi: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"{name}: not a whole number: {value[:60]!r}") from None
    if number < lo:
        raise BadRequest(f"{name}: must be at least {lo}")
    return min(number, hi)
