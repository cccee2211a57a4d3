"""One JSON line per request (method, path, status, duration) as a pure ASGI middleware."""

from __future__ import annotations

import asyncio
import atexit
import sys
import time
from typing import Any

import orjson

FLUSH_LINES = 64  # write out once this many lines are waiting ...
FLUSH_SECONDS = 0.25  # ... or this long after the first waiting line, whichever comes first


class RequestLog:
    """Writes `{"method","path","status","ms"}` lines to stderr; cheaper than BaseHTTPMiddleware.

    Lines are buffered and written in batches (one write per FLUSH_LINES lines, or FLUSH_SECONDS
    after the first waiting line), at shutdown, and at exit: a write per request cost a system
    call per request on the hot path.
    """

    def __init__(self, app: Any, stream: Any = None) -> None:
        self.app = app
        self.stream = stream or sys.stderr
        self._lines: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None
        atexit.register(self.flush)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            try:
                await self.app(scope, receive, send)
            finally:
                if scope["type"] == "lifespan":
                    self.flush()
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
            end = time.perf_counter()
            self._lines.append(
                orjson.dumps(
                    {
                        "t": round(time.time(), 3),
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "ms": round((end - start) * 1000, 3),
                    }
                )
            )
            if len(self._lines) >= FLUSH_LINES:
                self.flush()
            elif self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Write the waiting lines now (one write)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        try:
            self.stream.write(b"\n".join(lines).decode() + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed stream at exit: nothing left to do
            pass
