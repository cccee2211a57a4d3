"""create_app(settings): the node's ASGI app — plain Starlette routes on the hot paths, docs at /docs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sqlite3
from collections.abc import AsyncIterator

import orjson
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route

from connectors.errors import ConnectorError, ShaclValidationError
from node.admission import Admission
from node.auth import error_response
from node.config import Settings
from node.disk import DiskFull, clean_at_start, is_disk_full
from node.enforcement import AccessDenied
from node.errors import NodeError
from node.exchange import SignedExchangeMiddleware
from node.fast_paths import FastPaths
from node.login.routes import install_login
from node.openapi import openapi_schema
from node.readiness import readiness_routes
from node.request_log import RequestLog
from node.routes.admin import admin_routes
from node.routes.audit import audit_routes
from node.routes.catalog import catalog_routes
from node.routes.datasets import dataset_routes
from node.routes.delegation import delegation_routes
from node.routes.follow import follow_routes
from node.routes.ishare3 import ishare3_routes
from node.routes.resources import resource_routes
from node.routes.sparql import sparql_routes
from node.routes.trust import trust_routes
from node.routes.void import void_routes
from node.routes.witness import witness_routes
from node.runtime import Runtime, build_runtime
from node.service.warm import Warmer
from node.sync import make_sync_runner
from node.web.common import html_response, prefers_html
from node.web.pages import home_page, web_routes
from trust.audit import AuditEvent, AuditUnavailable
from trust.errors import TrustError

log = logging.getLogger("dsgo.node")

NO_TELEMETRY = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """The node app for these settings; the runtime (store, keys, policies) opens at start-up."""
    rt = runtime or build_runtime(settings)
    run_sync = make_sync_runner(rt) if settings.sources else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        clean_at_start(
            settings.data_dir, settings.store_dir if settings.store_backend == "oxigraph" else None
        )
        rt.audit.start_keeper(_witness_push(rt))
        warmer = Warmer(rt).start() if settings.warm_up else None
        app.state.warmer = warmer
        task = None
        if run_sync is not None and settings.sync_interval > 0:
            task = asyncio.create_task(_sync_loop(run_sync, settings.sync_interval))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
            readiness.close()
            if warmer is not None:
                warmer.stop()
            rt.close()

    app = FastAPI(
        title=f"dsgo-node — {settings.party_name}",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # /docs is node.web's: Swagger UI served by the node itself
        redoc_url=None,
        # FastAPI's own OpenTelemetry would export every request's path and query (SPARQL text,
        # IRIs) to whatever provider the process has, outside the enforcement point; it also
        # costs a provider lookup per request. The node's request log is its telemetry.
        telemetry=NO_TELEMETRY,
    )
    app.state.runtime = rt
    ready_routes, readiness = readiness_routes(rt)
    trust = trust_routes(rt.layer, on_token=_token_recorder(rt), pool=rt.lookups)
    token_route = next(r for r in trust if r.path == "/connect/token")
    # The router tries routes in order, each a regex match: the data paths most requests take
    # come first (no other route matches /id/... or /sparql, so the order decides nothing else).
    routes: list[Route] = [
        *resource_routes(rt),
        *sparql_routes(rt),
        Route("/healthz", _health(rt), methods=["GET"]),
        *ready_routes,
        Route("/", _home(rt), methods=["GET"]),
        *trust,
        *ishare3_routes(rt.layer, rt.register, rt.enforcer, token_route),
        *catalog_routes(rt),
        *delegation_routes(rt.layer, rt.policies, rt.register, rt.enforcer, store=rt.store),
        *admin_routes(rt, run_sync),
        *audit_routes(rt),
        *void_routes(rt),
        *dataset_routes(rt),
        *follow_routes(rt),
        *witness_routes(rt),
        *web_routes(rt),
    ]
    app.router.routes.extend(routes)
    # Innermost of the node's middlewares: /sparql and /id/... skip the router's layers (the
    # same endpoints, the same error handlers; node/fast_paths.py).
    app.add_middleware(
        FastPaths,
        sparql=_endpoint(routes, "/sparql"),
        resources=_endpoint(routes, "/id/{path:path}"),
        handlers=_HANDLERS,
    )
    install_login(app, rt)  # /login, sessions, CSRF: only with [[login.providers]]
    app.openapi = lambda: openapi_schema(app, settings)  # type: ignore[method-assign]
    for exc_type, handler in _HANDLERS.items():
        app.add_exception_handler(exc_type, handler)
    app.add_middleware(SignedExchangeMiddleware, rt=rt)  # JAdES: verify in, sign out
    if settings.log_requests:
        app.add_middleware(RequestLog)
    # Outermost: a refused request costs no routing, no logging (server.max_in_flight).
    app.add_middleware(
        Admission, limit=settings.bounds.max_in_flight, retry_after=settings.bounds.retry_after
    )
    return app


def _endpoint(routes: list[Route], path: str):
    """The endpoint the router would call for `path` (the same object, with its caches)."""
    return next(r.endpoint for r in routes if r.path == path)


async def _sync_loop(run_sync, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(run_sync, False)
        except Exception as exc:  # a failed sync keeps the old data and is retried next time
            log.warning("scheduled sync failed: %s", exc)


def _witness_push(rt: Runtime):
    """Hand each new audit checkpoint to the configured witness (audit.witness_url)."""
    url, party = rt.settings.audit_witness_url, rt.settings.audit_witness_party_id
    if not url or not party:
        return None
    client = rt.layer.client()

    def push(checkpoint: str) -> None:
        resp = client.request(
            "POST", url, "/audit/witness", party_id=party, json={"checkpoint": checkpoint}
        )
        if resp.status_code != 200:
            log.warning("audit witness %s refused a checkpoint: HTTP %s", url, resp.status_code)

    return push


def _token_recorder(rt: Runtime):
    def record(outcome: str, client_id: str | None, jti: str | None, reason: str | None) -> None:
        # A refused request's client_id was never verified: it is kept as claimed, not as the
        # party, so nobody can file refusals under another party's name.
        issued = outcome == "token_issued"
        detail: dict[str, object] = {"reason": reason} if reason else {}
        if not issued and client_id is not None:
            detail["claimed_client_id"] = client_id[:200]
        rt.record(
            AuditEvent(
                kind=outcome,
                party=client_id if issued else None,
                target="/connect/token",
                action="token",
                token_jti=jti,
                detail=detail,
            )
        )

    return record


def _health(rt: Runtime):
    async def health(request: Request) -> Response:
        return Response(
            orjson.dumps(
                {"status": "ok", "party_id": rt.settings.party_id, "base_iri": rt.settings.base_iri}
            ),
            media_type="application/json",
        )

    return health


def _home(rt: Runtime):
    async def home(request: Request) -> Response:
        if prefers_html(request):
            return html_response(home_page(rt))
        base = rt.settings.base_iri
        return JSONResponse(
            {
                "party_id": rt.settings.party_id,
                "name": rt.settings.party_name,
                "catalog": f"{base}/catalog",
                "sparql": f"{base}/sparql",
                "token_endpoint": f"{base}/connect/token",
                "capabilities": f"{base}/capabilities",
                "docs": f"{base}/docs",
            }
        )

    return home


def _json_error(status: int, error: str, description: str, **extra: object) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description, **extra}, status_code=status
    )


async def _access_denied(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AccessDenied)
    extra = dict(exc.extra)
    if exc.explanation:
        extra["explanation"] = exc.explanation
    return _json_error(403, exc.error, exc.description, **extra)


async def _node_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NodeError)
    return JSONResponse(exc.to_json(), status_code=exc.status, headers=exc.headers or None)


_CONNECTOR_STATUS = {
    "unknown_connector": 400,
    "source_unreadable": 400,
    "unsupported_source": 415,
    "shacl_violation": 422,
}


async def _connector_error(request: Request, exc: Exception) -> Response:
    """The same message as the CLI prints with the node stopped, with a 4xx status."""
    assert isinstance(exc, ConnectorError)
    extra: dict[str, object] = {"source": exc.source, "position": exc.position}
    if isinstance(exc, ShaclValidationError):
        extra["violations"] = exc.results[:10]
        extra["total"] = exc.total
    return _json_error(_CONNECTOR_STATUS.get(exc.code, 422), exc.code, str(exc), **extra)


async def _trust_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TrustError)
    return error_response(exc)


async def _audit_unavailable(request: Request, exc: Exception) -> Response:
    log.error("audit log unavailable, refusing the request: %s", exc)
    rt = request.app.state.runtime
    breaker = getattr(rt.audit.store, "breaker", None)
    wait = breaker.state().retry_after if breaker is not None else 0.0
    retry = max(rt.settings.bounds.retry_after, math.ceil(wait))
    response = _json_error(
        503, "audit_unavailable", "the audit log cannot be written; the request was not performed"
    )
    response.headers["Retry-After"] = str(retry)
    return response


async def _os_error(request: Request, exc: Exception) -> Response:
    """A full disk is a named 507 wherever it happens (token replay cache, spool, store)."""
    if is_disk_full(exc):
        log.error("disk full: %s %s: %s", request.method, request.url.path, exc)
        return await _node_error(request, DiskFull(f"{request.method} {request.url.path}", exc))
    log.exception("internal error: %s %s", request.method, request.url.path, exc_info=exc)
    return _json_error(500, "internal_error", "the node failed to answer; see its log")


async def _http_error(request: Request, exc: Exception) -> Response:
    """The router's own refusals (no such path, method not allowed) in the node's error shape.

    A 405's `Allow` lists the methods of every route at this path: the router names only the
    first route that matched the path, so a path served by one route per method (PUT and
    DELETE /admin/datasets/{name}) would otherwise advertise just one of them.
    """
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
    return JSONResponse(
        {"error": error, "error_description": str(exc.detail)},
        status_code=exc.status_code,
        headers=headers,
    )


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(request.scope)
            if match != Match.NONE:
                methods |= route.methods
    return sorted(methods)


_HANDLERS = {
    HTTPException: _http_error,
    AccessDenied: _access_denied,
    AuditUnavailable: _audit_unavailable,
    TrustError: _trust_error,
    NodeError: _node_error,
    ConnectorError: _connector_error,
    OSError: _os_error,
    sqlite3.Error: _os_error,
}
