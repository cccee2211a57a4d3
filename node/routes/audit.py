"""Auditor access: the audit log (JSON or PROV-O) and one-hop provenance traces, when a policy grants it.

An auditor reads these when the node's owner granted it the pseudo-dataset `audit`
(`dsgo policy grant --to AUDITOR --dataset audit`); the owner always may.
"""

from __future__ import annotations

import datetime as dt

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.auth import authenticate
from node.enforcement import AccessDenied
from node.negotiation import RDF_TYPES, choose, content_type, serialise_triples
from node.runtime import Runtime
from node.trace import trace
from trust.audit import AuditEvent, as_prov

AUDIT_DATASET = "audit"
JSON = "application/json"


def audit_routes(rt: Runtime) -> list[Route]:
    """GET /audit/entries and GET /audit/trace?iri=..."""

    def _auditor(request: Request) -> str:
        caller = authenticate(request, rt.layer)
        scope = rt.enforcer.scope_for(caller.party_id)
        graph = rt.settings.dataset_iri(AUDIT_DATASET)
        if "*" not in scope.whole_datasets and graph not in scope.whole_datasets:
            rt.record(
                AuditEvent(kind="deny", party=caller.party_id, target=graph, action="ISHARE.READ")
            )
            raise AccessDenied(
                "no policy lets you read this node's audit log",
                rt.enforcer.explain(caller.party_id, dataset=AUDIT_DATASET),
            )
        rt.record(
            AuditEvent(
                kind="permit",
                party=caller.party_id,
                target=graph,
                action="ISHARE.READ",
                policy_ids=tuple(scope.policy_ids),
                token_jti=caller.jti,
            )
        )
        return caller.party_id

    async def entries(request: Request) -> Response:
        _auditor(request)
        params = request.query_params
        media = choose(request.headers.get("accept"), (JSON, *RDF_TYPES), params.get("format"))
        rows = await run_in_threadpool(
            rt.audit.entries,
            _time(params.get("since")),
            _time(params.get("until")),
            params.get("party"),
            params.get("kind"),
            min(int(params.get("limit", "1000")), 10_000),
            int(params.get("after_seq", "0")),
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
                        "target": e.target,
                        "action": e.action,
                        "policy_ids": list(e.policy_ids),
                        "token_jti": e.token_jti,
                        "query_hash": e.query_hash,
                        "datasets": list(e.datasets),
                        "result_size": e.result_size,
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
            return JSONResponse(
                {"error": "invalid_request", "error_description": "missing 'iri' parameter"},
                status_code=400,
            )
        return JSONResponse(await run_in_threadpool(trace, rt, iri))

    return [
        Route("/audit/entries", entries, methods=["GET"]),
        Route("/audit/trace", trace_route, methods=["GET"]),
    ]


def _time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
