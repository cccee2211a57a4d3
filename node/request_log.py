"""One JSON line per request (method, path, status, duration) as a pure ASGI middleware."""

from __future__ import annotations

import sys
import time
from typing import Any

import orjson


class RequestLog:
    """Writes `{"method","path","status","ms"}` to stderr; cheaper than BaseHTTPMiddleware."""

    def __init__(self, app: Any, stream: Any = None) -> None:
        self.app = app
        self.stream = stream or sys.stderr

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            line = orjson.dumps(
                {
                    "t": round(time.time(), 3),
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "ms": round((time.perf_counter() - start) * 1000, 3),
                }
            )
            self.stream.write(line.decode() + "\n")
