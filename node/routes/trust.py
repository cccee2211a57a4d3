"""Trust endpoints: POST /connect/token, GET /capabilities and the registry role's lookups."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, request_response
from starlette.types import Receive, Scope, Send

from node.auth import authenticate, guarded, optional_caller
from node.errors import NodeError
from trust.errors import InvalidRequest, TrustError
from trust.layer import TrustLayer

MAX_FORM_BYTES = 64 * 1024
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def _on(pool: Executor | None, fn: Callable[..., Any], *args: Any) -> Any:
    if pool is None:
        return await run_in_threadpool(fn, *args)
    return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)


class AnyMethod:
    """An endpoint that the router hands every HTTP method (it refuses the ones it does not take)."""

    def __init__(self, endpoint: Callable[[Request], Awaitable[Response]]) -> None:
        self.app = request_response(endpoint)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


TokenHook = Callable[[str, str | None, str | None, str | None], None]


def trust_routes(
    layer: TrustLayer, on_token: TokenHook | None = None, pool: Executor | None = None
) -> list[Route]:
    """Routes for the node's trust endpoints; registry routes only when `layer.registry` is set.

    `on_token(outcome, client_id, jti, reason)` records every token issued or refused; it may
    raise to stop the token from being handed out (the audit log fails closed). Token requests
    (which look parties up at the registry) run on `pool`, so a hung registry never takes the
    threads other routes share.
    """
    record = on_token or (lambda outcome, client_id, jti, reason: None)

    async def token(request: Request) -> Response:
        if request.method != "POST":
            raise NodeError(
                "use POST for /connect/token",
                status=405,
                code="invalid_request",
                headers={"Allow": "POST", "Cache-Control": "no-store"},
            )
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            raise InvalidRequest("content_type", "use application/x-www-form-urlencoded")
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise InvalidRequest("request_oversized", "request body too large")
        form = await request.form()
        fields = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        client_id = next((v for k, v in fields if k == "client_id"), None)
        try:
            result = await _on(pool, layer.token_response, fields)
        except TrustError as exc:
            await run_in_threadpool(record, "token_refused", client_id, None, exc.description)
            raise
        claims = layer.verify_access_token(result["access_token"])
        await run_in_threadpool(record, "token_issued", claims.party_id, claims.jti, None)
        return JSONResponse(result, headers=_NO_STORE)

    async def capabilities(request: Request) -> Response:
        caller = await run_in_threadpool(optional_caller, request, layer)
        body = layer.capabilities_response(caller.party_id if caller else None)
        return JSONResponse(body, headers=_NO_STORE)

    async def parties(request: Request) -> Response:
        caller = authenticate(request, layer)
        body = await run_in_threadpool(
            layer.parties_response, caller.party_id, request.query_params
        )
        return JSONResponse(body, headers=_NO_STORE)

    async def party(request: Request) -> Response:
        caller = authenticate(request, layer)
        pid = request.path_params["party_id"]
        body = await run_in_threadpool(layer.party_response, caller.party_id, pid)
        return JSONResponse(body, headers=_NO_STORE)

    async def trusted_list(request: Request) -> Response:
        caller = authenticate(request, layer)
        body = await run_in_threadpool(layer.trusted_list_response, caller.party_id)
        return JSONResponse(body, headers=_NO_STORE)

    async def jwks(request: Request) -> Response:
        body = await run_in_threadpool(layer.jwks)
        return JSONResponse(body, headers={"Cache-Control": "max-age=60"})

    routes = [
        Route("/.well-known/jwks.json", guarded(jwks), methods=["GET"]),
        # Every method reaches `token`, which answers all but POST with 405 and `Allow: POST`
        # (with a method list the router would answer OPTIONS itself, advertising that list).
        Route("/connect/token", AnyMethod(guarded(token))),
        Route("/capabilities", guarded(capabilities), methods=["GET"]),
    ]
    if layer.registry is not None:
        routes += [
            Route("/parties", guarded(parties), methods=["GET"]),
            Route("/parties/{party_id:path}", guarded(party), methods=["GET"]),
            Route("/trusted_list", guarded(trusted_list), methods=["GET"]),
        ]
    return routes
