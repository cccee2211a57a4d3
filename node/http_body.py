"""Reading a request body inside ASGI code, with a size cap, and handing it on unread.

Middlewares that must look at a body before the app does (the signed-exchange check, the
login CSRF check) and the SPARQL endpoint read it the same way: chunk by chunk, stopping as
soon as the cap is passed, and the app downstream gets the buffered body as if it came first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["BodyTooLarge", "ClientGone", "read_body", "replay"]

Receive = Callable[[], Awaitable[dict[str, Any]]]


class BodyTooLarge(Exception):
    """The body grew past the cap; the rest was not read."""


class ClientGone(Exception):
    """The client disconnected before sending the whole body."""


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole body, at most `limit` bytes; BodyTooLarge or ClientGone otherwise."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, original: Receive) -> Receive:
    """A receive that gives the buffered body once, then the connection's own events."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive
