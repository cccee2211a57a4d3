"""The two routes most requests take (/sparql and /id/...) reached without the router's layers.

A request to them still passes every middleware of the node (admission, request log, signed
exchange, login sessions): this sits innermost among them. What it skips is the generic part
under them: FastAPI's exit-stack layer, Starlette's exception wrapper and the router's regex
walk, which together cost about a tenth of the event loop's time per request on these paths.
Errors are turned into responses by the app's own handler table (node.app), looked up by the
exception's type as Starlette's ExceptionMiddleware does, so the answers are the same. Every
other path, method or a mounted root_path goes on to the router unchanged (405s, redirects).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["FastPaths"]

Handler = Callable[[Request, Exception], Any]


class FastPaths:
    """ASGI middleware: GET/POST /sparql and GET/HEAD /id/... go straight to their endpoints."""

    def __init__(
        self,
        app: ASGIApp,
        sparql: ASGIApp,
        resources: ASGIApp,
        handlers: Mapping[type[BaseException], Handler],
    ) -> None:
        self.app = app
        self.sparql = sparql
        self.resources = resources
        self.handlers = dict(handlers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            path, method = scope["path"], scope["method"]
            if path == "/sparql":
                if method == "GET" or method == "POST":
                    await self._serve(self.sparql, scope, receive, send)
                    return
            elif path.startswith("/id/") and (method == "GET" or method == "HEAD"):
                await self._serve(self.resources, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _serve(self, endpoint: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def sender(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await endpoint(scope, receive, sender)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None or started:
                raise  # as under the router: the outermost error middleware answers
            response = handler(Request(scope, receive), exc)
            if inspect.isawaitable(response):
                response = await response
            await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Handler | None:
        for cls in type(exc).__mro__:
            handler = self.handlers.get(cls)
            if handler is not None:
                return handler
        return None
