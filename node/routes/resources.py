"""GET /id/...: every IRI under the node's base dereferences to its description, per caller."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

import pyoxigraph as ox
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Route

from node.auth import caller_from_header
from node.errors import BadRequest
from node.negotiation import (
    RESOURCE_TYPES,
    choose,
    content_type,
    etag_matches,
)
from node.runtime import Runtime
from node.service.resources import DescriptionCache, describe, describe_cached, etag_of
from node.web import resource_page
from trust.errors import InvalidToken

OFFERED = ", ".join(RESOURCE_TYPES)


_HEADERS = {"Vary": "Accept, Authorization", "Cache-Control": "private, no-cache"}
_RAW_HEADERS = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in _HEADERS.items()]


class DescriptionResponse(Response):
    """A 200 description: the same headers Response(...) would send, built without its checks."""

    def __init__(self, body: bytes, media_type: str, etag: str) -> None:
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"etag", etag.encode("latin-1")),
            *_RAW_HEADERS,
            (b"content-length", str(len(body)).encode("latin-1")),
            (b"content-type", media_type.encode("latin-1")),
        ]


def resource_routes(rt: Runtime) -> list[Route]:
    """The dereferencing route; runs inline for the embedded store (it is fast), in a thread otherwise.

    With the embedded store, store reads are cached per store version (the store owns every
    write and bumps its version after each, so an entry never outlives the data it was read
    from). The policy decision, its audit entry and the filtering run on every request; only
    the bytes of a description the caller may read in full are reused.
    """
    return [Route("/id/{path:path}", ResourceEndpoint(rt), methods=["GET", "HEAD"])]


class ResourceEndpoint:
    """GET /id/... as a plain ASGI app: no Request object or per-route exception wrapper (errors
    propagate to the app's exception handlers as before); the headers are read in one pass."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.inline = rt.settings.store_backend == "oxigraph"
        self.cache = DescriptionCache() if self.inline else None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        rt = self.rt
        authorization = accept = if_none_match = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is None:
                    authorization = value.decode("latin-1")
            elif name == b"accept":
                if accept is None:
                    accept = value.decode("latin-1")
            elif name == b"if-none-match" and if_none_match is None:
                if_none_match = value.decode("latin-1")
        if authorization is None:
            raise InvalidToken("token_missing", "Authorization: Bearer token required")
        caller = caller_from_header(authorization, rt.layer)  # with the person of a session
        fmt = _format_param(scope.get("query_string", b""))
        media = choose(accept, RESOURCE_TYPES, fmt)
        iri = resource_iri(rt.settings.base_iri, scope)
        cache = self.cache
        if cache is not None:
            # The decision's audit entry is group-committed with concurrent requests' entries;
            # nothing is answered (not even a 403/404) before it is committed.
            with rt.audit.deferred() as pending:
                try:
                    body, etag = describe_cached(
                        rt, cache, caller, iri, media, resource_page.render
                    )
                except BaseException:
                    await pending.wait()  # an unwritable audit log answers 503 instead
                    raise
            await pending.wait()
        else:
            body = await run_in_threadpool(describe, rt, caller, iri, media, resource_page.render)
            etag = etag_of(body)
        if etag_matches(if_none_match, etag):
            response: Response = Response(status_code=304, headers={"ETag": etag, **_HEADERS})
        else:
            response = DescriptionResponse(body, content_type(media), etag)
        await response(scope, receive, send)


_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def resource_iri(base_iri: str, scope: dict) -> str:
    """The IRI a request names: the base plus the path as sent (percent-encoding kept).

    BadRequest (400 invalid_request) for a path that names no IRI: raw bytes that are not UTF-8,
    a '%' not followed by two hex digits, percent-encoded bytes that are not UTF-8 (overlong
    forms, surrogates) or that decode to a control character, or anything else that makes the
    whole string an invalid IRI (RFC 3987).
    """
    raw = scope.get("raw_path") or scope["path"].encode("utf-8")
    raw = raw.split(b"?", 1)[0]
    shown = raw[:120].decode("latin-1")
    if _PERCENT.search(raw):
        raise _bad_path(shown, "'%' must be followed by two hex digits")
    try:
        path = raw.decode("utf-8")
        decoded = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise _bad_path(shown, "the path (after percent-decoding) is not valid UTF-8") from None
    if _CONTROL.search(decoded):
        raise _bad_path(shown, "the path encodes a control character")
    iri = base_iri + path
    try:
        ox.NamedNode(iri)
    except ValueError as exc:
        raise _bad_path(shown, str(exc)) from None
    return iri


def _bad_path(path: str, problem: str) -> BadRequest:
    return BadRequest(f"not a valid resource IRI: {path!r}: {problem}", code="invalid_request")


def _format_param(query_string: bytes) -> str | None:
    """`?format=` (the last one, as Starlette's query_params.get)."""
    if not query_string:
        return None
    found = None
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if key == "format":
            found = value
    return found
