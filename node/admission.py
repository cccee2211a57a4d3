"""Admission control per worker: past `limit` requests in flight, answer 503 at once.

Queueing without bound makes every request slow once the node is saturated (at 1,000
connections every answer waited); refusing the excess with `Retry-After` keeps the admitted
requests fast and tells clients and load balancers when to come back. One counter on the
worker's event loop (no lock: the loop is single-threaded), so the hot path costs an add and a
compare. Liveness and readiness probes are always admitted.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALWAYS_ADMITTED = frozenset({"/healthz", "/readyz"})


class Admission:
    """ASGI middleware: at most `limit` HTTP requests of this worker are being served at once."""

    def __init__(self, app: ASGIApp, limit: int, retry_after: int = 1) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0
        self.refused = 0
        self._body = (
            b'{"error":"overloaded","error_description":"this node is serving '
            + str(limit).encode()
            + b' requests already; retry after the Retry-After seconds","limit":'
            + str(limit).encode()
            + b"}"
        )
        self._start: Message = {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(self._body)).encode()),
                (b"retry-after", str(retry_after).encode()),
                (b"cache-control", b"no-store"),
            ],
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit and scope["path"] not in ALWAYS_ADMITTED:
            self.refused += 1
            await send(self._start)
            await send({"type": "http.response.body", "body": self._body})
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
