"""Session cookie -> session, once per request, and CSRF on every state-changing request.

A request with its own Authorization header is left alone (tokens are not CSRF-prone: a browser
never adds them by itself). Otherwise a session cookie is resolved and the request gets the
internal `Authorization: DSGO-Session <handle>` header that node.auth resolves to the Caller.
POST/PUT/PATCH/DELETE from a session must carry the session's CSRF token, in the X-CSRF-Token
header or a `csrf_token` form field; without it the request is refused (403) before any route.
A cookie that is tampered with or expired is refused (401 from the auth dependency) and cleared.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from node.http_body import BodyTooLarge, ClientGone, read_body, replay
from node.login.service import LoginService
from node.login.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    SCOPE_ERROR,
    SCOPE_SESSION,
    SESSION_SCHEME,
    csrf_ok,
    register,
    release,
)
from node.login.store import Session

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
MAX_FORM = 16 * 1024 * 1024  # bytes of a form body read to find its csrf_token


class LoginMiddleware:
    """ASGI middleware; see the module docstring."""

    def __init__(self, app: Any, service: LoginService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        cookie = None
        for name, value in headers:
            if name == b"authorization":
                if value.decode("latin-1").partition(" ")[0] == SESSION_SCHEME:
                    return await _refuse(send, 400, "authorization_header", "reserved scheme")
                return await self.app(scope, receive, send)
            if name == b"cookie" and cookie is None:
                cookie = _cookie(value, self.service.cookie_name)
        if cookie is None:
            return await self.app(scope, receive, send)
        result: Session | str = await run_in_threadpool(self.service.resolve, cookie)
        handle = register(result)
        scope = dict(scope)
        scope["headers"] = [*headers, (b"authorization", f"{SESSION_SCHEME} {handle}".encode())]
        scope[SCOPE_SESSION if isinstance(result, Session) else SCOPE_ERROR] = result
        if isinstance(result, Session):
            # the pages' own form check (node/web/csrf.py on main) reads the token from here
            scope["dsgo.csrf_token"] = result.csrf
        try:
            if isinstance(result, Session) and scope["method"] in UNSAFE:
                ok, receive = await _check_csrf(scope, receive, result)
                if not ok:
                    return await _refuse(
                        send,
                        403,
                        "csrf_refused",
                        "a state-changing request from a login session needs the session's "
                        "CSRF token (header X-CSRF-Token or form field csrf_token)",
                    )
            if isinstance(result, str):  # clear a cookie that will never be accepted
                send = _clearing(send, self.service)
            await self.app(scope, receive, send)
        finally:
            release(handle)


def _cookie(raw: bytes, name: str) -> str | None:
    """The value of cookie `name` in a Cookie header (other cookies are not our business)."""
    for part in raw.decode("latin-1").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return None


async def _check_csrf(scope: dict, receive: Any, session: Session) -> tuple[bool, Any]:
    """(token ok, receive to pass on): the header, or the form field of a buffered form body."""
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    if csrf_ok(session, headers.get(CSRF_HEADER)):
        return True, receive
    ctype = headers.get("content-type", "").lower()
    if not ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return False, receive
    try:
        body = await read_body(receive, MAX_FORM)
    except (BodyTooLarge, ClientGone):
        return False, receive
    again = replay(body, receive)
    if ctype.startswith("application/x-www-form-urlencoded"):
        fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        value = next((v for k, v in fields if k == CSRF_FIELD), None)
    else:
        try:
            form = await Request(scope, replay(body, receive)).form()
            value = form.get(CSRF_FIELD)
        except Exception:  # a malformed multipart body has no token we can find
            value = None
    return csrf_ok(session, value), again


def _clearing(send: Any, service: LoginService) -> Any:
    async def wrapped(message: dict) -> None:
        if message["type"] == "http.response.start":
            clear = f"{service.cookie_name}=; {service.cookie_attributes(0)}"
            message = {**message, "headers": [*message["headers"], (b"set-cookie", clear.encode())]}
        await send(message)

    return wrapped


async def _refuse(send: Any, status: int, error: str, description: str) -> None:
    body = orjson.dumps({"error": error, "error_description": description})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
