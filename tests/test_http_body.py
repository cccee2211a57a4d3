"""The one ASGI body reader: the cap, a client that goes away, and the replay downstream."""

from __future__ import annotations

import asyncio

import pytest

from node.http_body import BodyTooLarge, ClientGone, read_body, replay


def _receive(*messages: dict):
    queue = list(messages)

    async def receive() -> dict:
        return queue.pop(0)

    return receive


def _chunk(body: bytes, more: bool) -> dict:
    return {"type": "http.request", "body": body, "more_body": more}


def test_chunks_are_joined_and_replayed_before_the_connection_s_own_events() -> None:
    async def go() -> tuple[bytes, list[dict]]:
        original = _receive(_chunk(b"ab", True), _chunk(b"cd", False), {"type": "http.disconnect"})
        body = await read_body(original, 4)
        again = replay(body, original)
        return body, [await again(), await again()]

    body, events = asyncio.run(go())
    assert body == b"abcd"
    assert events == [_chunk(b"abcd", False), {"type": "http.disconnect"}]


def test_a_body_over_the_cap_stops_the_reading() -> None:
    original = _receive(_chunk(b"abc", True), _chunk(b"de", True), _chunk(b"never read", False))
    with pytest.raises(BodyTooLarge):
        asyncio.run(read_body(original, 4))


def test_a_client_that_goes_away_mid_body() -> None:
    original = _receive(_chunk(b"ab", True), {"type": "http.disconnect"})
    with pytest.raises(ClientGone):
        asyncio.run(read_body(original, 100))
