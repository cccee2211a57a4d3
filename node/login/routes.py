"""/login, /login/start, /login/callback, /logout, /login/me, /login/jwks: people logging in.

`install_login(app, rt)` adds these routes and the session middleware when node.toml has
`[[login.providers]]`; without providers the node takes bearer tokens only, as before.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from node.login.middleware import LoginMiddleware
from node.login.oidc import LoginFailed, node_jwk
from node.login.service import LoginService, safe_next
from node.login.session import CSRF_FIELD, SCOPE_ERROR, current_session
from node.runtime import Runtime

_NO_STORE = {"Cache-Control": "no-store"}


def install_login(app: FastAPI, rt: Runtime) -> LoginService | None:
    """Add the login routes and middleware if login providers are configured."""
    if not rt.settings.login.enabled:
        return None
    service = LoginService(rt.settings, rt.identity, rt.enforcer.login_outbound, rt.record)
    app.router.routes.extend(login_routes(rt, service))
    app.add_middleware(LoginMiddleware, service=service)
    app.state.login = service
    return service


def login_routes(rt: Runtime, service: LoginService) -> list[Route]:
    name = rt.settings.party_name

    async def login_page(request: Request) -> Response:
        next_path = safe_next(request.query_params.get("next"))
        session = current_session(request)
        if session is not None:
            body = (
                f"<p>Logged in as <strong data-person>{_e(session.name)}</strong> for "
                f"<strong data-party>{_e(session.party_id)}</strong>"
                + (f" ({_e(session.role)})" if session.role else "")
                + f'.</p><p><a href="{_e(next_path)}">Continue</a></p>'
                + _logout_form(session.csrf)
            )
        else:
            note = ""
            if request.scope.get(SCOPE_ERROR) == "session_expired":
                note = '<p role="status">Your session has expired. Log in again.</p>'
            links = "".join(
                f'<li><a class="provider" href="/login/start?provider={_e(p.name)}&amp;next='
                f'{_e(_quote(next_path))}">Log in with {_e(p.label)}</a></li>'
                for p in rt.settings.login.providers
            )
            body = f"{note}<ul>{links}</ul>"
        return _page(f"{name}: logged in" if session else f"Log in to {name}", body)

    async def start(request: Request) -> Response:
        provider = request.query_params.get("provider", "")
        try:
            started = await run_in_threadpool(
                service.start, provider, request.query_params.get("next")
            )
        except LoginFailed as exc:
            return _failure(request, exc)
        resp = RedirectResponse(started.redirect, status_code=302, headers=_NO_STORE)
        resp.headers.append(
            "set-cookie",
            f"{service.binding_cookie}={service.binding(started.state)}; "
            f"{service.cookie_attributes(int(rt.settings.login.pending_seconds))}",
        )
        return resp

    async def callback(request: Request) -> Response:
        params = dict(request.query_params)
        binding = request.cookies.get(service.binding_cookie)
        try:
            done = await run_in_threadpool(service.finish, params, binding)
        except LoginFailed as exc:
            await run_in_threadpool(service.audit_refusal, exc, None)
            return _failure(request, exc)
        resp = RedirectResponse(done.next, status_code=303, headers=_NO_STORE)
        resp.headers.append(
            "set-cookie",
            f"{service.cookie_name}={service.cookie_value(done.sid)}; "
            f"{service.cookie_attributes(int(rt.settings.login.session_max_seconds))}",
        )
        resp.headers.append(
            "set-cookie", f"{service.binding_cookie}=; {service.cookie_attributes(0)}"
        )
        return resp

    async def logout(request: Request) -> Response:
        # The middleware has checked the CSRF token of a request with a live session.
        session = current_session(request)
        if session is not None:
            await run_in_threadpool(service.logout, session)
        resp = RedirectResponse("/login", status_code=303, headers=_NO_STORE)
        resp.headers.append("set-cookie", f"{service.cookie_name}=; {service.cookie_attributes(0)}")
        return resp

    async def me(request: Request) -> Response:
        session = current_session(request)
        if session is None:
            why = request.scope.get(SCOPE_ERROR) or "not_logged_in"
            return JSONResponse(
                {"error": why, "error_description": "no login session", "login": "/login"},
                status_code=401,
                headers=_NO_STORE,
            )
        return JSONResponse(
            {
                "person": session.person,
                "name": session.name,
                "party_id": session.party_id,
                "role": session.role,
                "provider": session.provider,
                "csrf_token": session.csrf,
            },
            headers=_NO_STORE,
        )

    async def jwks(request: Request) -> Response:
        return JSONResponse({"keys": [node_jwk(rt.identity)]})

    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login/start", start, methods=["GET"]),
        Route("/login/callback", callback, methods=["GET"]),
        Route("/login/me", me, methods=["GET"]),
        Route("/login/jwks", jwks, methods=["GET"]),
        Route("/logout", logout, methods=["POST"]),
    ]


def _logout_form(csrf: str) -> str:
    return (
        '<form method="post" action="/logout">'
        f'<input type="hidden" name="{CSRF_FIELD}" value="{_e(csrf)}">'
        '<button type="submit">Log out</button></form>'
    )


def _failure(request: Request, exc: LoginFailed) -> Response:
    """JSON naming the failed check, or the same as a page for a browser."""
    body: dict[str, Any] = {"error": exc.code, "error_description": str(exc), "login": "/login"}
    if "text/html" in request.headers.get("accept", ""):
        page = _page(
            "Login failed",
            f'<p role="alert"><code>{_e(exc.code)}</code>: {_e(str(exc))}</p>'
            '<p><a href="/login">Log in again</a></p>',
        )
        page.status_code = exc.status
        return page
    return JSONResponse(body, status_code=exc.status, headers=_NO_STORE)


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        '<meta name="viewport" content="width=device-width"></head>'
        f"<body><main><h1>{_e(title)}</h1>{body}</main></body></html>",
        headers={**_NO_STORE, "Content-Security-Policy": "default-src 'self'"},
    )


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="/")


def openapi_paths(op: Any, param: Any) -> dict[str, Any]:
    """The login routes for /openapi.json (node/openapi.py's `op` and `_string_param`)."""
    html_page = {"text/html": {"type": "string"}}
    error = {"application/json": {"type": "object"}}
    return {
        "/login": {
            "get": op(
                "the login page: the configured providers, or who is logged in",
                {"200": ("page", html_page)},
                secure=False,
                params=[param("next", description="a path on this node to go to after login")],
            )
        },
        "/login/start": {
            "get": op(
                "start a login at a provider (code flow, PKCE S256, state, nonce)",
                {"302": ("to the provider's authorization endpoint", None)},
                {"400": "unknown provider", "502": "the provider cannot be reached"},
                secure=False,
                params=[param("provider", description="a [[login.providers]] name"), param("next")],
            )
        },
        "/login/callback": {
            "get": op(
                "the provider's redirect back: checks state, iss, code, ID token; sets the session",
                {"303": ("to the page asked for, with the session cookie", None)},
                {
                    "400": "wrong or used state, nonce mismatch, code refused, bad ID token",
                    "403": "the person has no party, or no role at the node's own party",
                    "502": "the provider cannot be reached",
                },
                secure=False,
                params=[param("code"), param("state"), param("iss")],
            )
        },
        "/login/me": {
            "get": op(
                "who is logged in (person, name, party, role, csrf_token)",
                {"200": ("the session", error)},
                {"401": "no session, or an expired or tampered one"},
                secure=False,
            )
        },
        "/login/jwks": {
            "get": op(
                "the node's public party key as a JWKS (its private_key_jwt client key)",
                {"200": ("JWKS", error)},
                secure=False,
            )
        },
        "/logout": {
            "post": op(
                "end the session (needs its CSRF token)",
                {"303": ("to /login, the cookie cleared", None)},
                {"403": "no CSRF token"},
                secure=False,
            )
        },
    }
