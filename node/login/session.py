"""What pages and the node's auth dependency need from a login session.

The middleware (node/login/middleware.py) resolves the session cookie once per request and puts
the session in the ASGI scope; requests without an Authorization header then carry an internal
`DSGO-Session <handle>` header that `node.auth.caller_from_header` turns into the same `Caller` a
bearer token gives (party_id, jti, scope, person, role). Pages use:

- `current_session(request)` / `current_person(request)`: who is logged in (for templates);
- `csrf_token(request)`: the session's token, for a hidden `csrf_token` field or the
  `X-CSRF-Token` header of a fetch();
- `require_csrf(request, form_value)`: refuse (403) a form whose token is missing or wrong
  (the middleware already refuses every unsafe request without it; this is for forms a page
  parses itself);
- `login_url(request)`: where to send a person who must log in first.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import HTTPConnection

from node.enforcement import Caller
from node.errors import NodeError
from node.login.store import Session
from trust.errors import InvalidToken

SESSION_SCHEME = "DSGO-Session"  # internal Authorization scheme, set only by the middleware
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SCOPE_SESSION = "dsgo.session"  # ASGI scope key: the Session of this request
SCOPE_ERROR = "dsgo.session_error"  # ASGI scope key: why a session cookie was not accepted

# handle -> the request's Session, or the code of why its cookie was refused; a handle lives
# for one request (set and removed by the middleware), so it cannot be replayed from outside.
_ACTIVE: dict[str, Session | str] = {}

_REFUSALS = {
    "invalid_session": "the session cookie is not one this node issued (tampered or foreign)",
    "session_expired": "the login session has expired; log in again",
    "unknown_session": "the login session has ended (logged out or removed); log in again",
}


class CsrfRefused(NodeError):
    """A state-changing request from a session without its CSRF token (HTTP 403)."""

    status = 403
    code = "csrf_refused"


@dataclass(frozen=True)
class Person:
    """The logged-in person as templates show them."""

    person: str
    name: str
    party_id: str
    role: str | None
    provider: str


def register(value: Session | str) -> str:
    """A one-request handle for a session (or a refusal code); see `release`."""
    handle = secrets.token_urlsafe(24)
    _ACTIVE[handle] = value
    return handle


def release(handle: str) -> None:
    _ACTIVE.pop(handle, None)


def session_caller(handle: str) -> Caller:
    """The Caller of a request authenticated by its session (node.auth's session branch)."""
    value = _ACTIVE.get(handle)
    if value is None:
        raise InvalidToken("invalid_session", _REFUSALS["invalid_session"])
    if isinstance(value, str):
        raise InvalidToken(value, _REFUSALS.get(value, "the session is not valid"))
    return caller_of(value)


def caller_of(session: Session) -> Caller:
    """The same Caller a bearer token resolves to, plus the person and their role."""
    return Caller(
        party_id=session.party_id,
        jti=f"session:{session.sid_hash[:16]}",
        scope="iSHARE",
        person=session.person,
        role=session.role,
    )


def current_session(request: HTTPConnection) -> Session | None:
    return request.scope.get(SCOPE_SESSION)


def current_person(request: HTTPConnection) -> Person | None:
    """Who is logged in, for a page header ("Rita Jansen, Renovator BV"); None if nobody."""
    s = current_session(request)
    if s is None:
        return None
    return Person(s.person, s.name, s.party_id, s.role, s.provider)


def csrf_token(request: HTTPConnection) -> str | None:
    """The CSRF token forms of this session must send; None without a session."""
    s = current_session(request)
    return s.csrf if s is not None else None


def require_csrf(request: HTTPConnection, form_value: str | None) -> None:
    """CsrfRefused (403) unless `form_value` is this session's CSRF token."""
    if not csrf_ok(current_session(request), form_value):
        raise CsrfRefused(
            "this form needs the session's CSRF token (field csrf_token or header "
            "X-CSRF-Token); reload the page and submit it again"
        )


def csrf_ok(session: Session | None, value: Any) -> bool:
    return (
        session is not None
        and isinstance(value, str)
        and bool(value)
        and secrets.compare_digest(value.encode(), session.csrf.encode())
    )


def login_url(request: HTTPConnection) -> str:
    """/login?next=<this page>: where a page sends a person who is not logged in."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/login?next={quote(target, safe='')}"
