"""The one place that makes and checks the CSRF token of every form on the node's pages.

A request authenticated by a bearer token cannot be forged by another site (a browser never adds
that header by itself), so it needs no token: `csrf_token` gives "" and `check_csrf` passes. A
login session (cookies) will bind a token to the session here, and nowhere else.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request

from node.errors import NodeError

FIELD = "csrf_token"


class CsrfRejected(NodeError):
    """A form post without the token its session was given (HTTP 403 csrf_failed)."""

    status = 403
    code = "csrf_failed"


def csrf_token(request: Request) -> str:
    """The value for the hidden `csrf_token` field of a form on this request's page."""
    if _bearer(request):
        return ""
    expected = request.scope.get("dsgo.csrf_token")
    return expected if isinstance(expected, str) else ""


def check_csrf(request: Request, value: str | None) -> None:
    """Refuse a form post whose token does not match (bearer-token requests always pass)."""
    if _bearer(request):
        return
    expected = request.scope.get("dsgo.csrf_token")
    if not isinstance(expected, str) or not expected or not value:
        raise CsrfRejected("the form has no valid csrf_token; reload the page and try again")
    if not hmac.compare_digest(expected.encode(), value.encode()):
        raise CsrfRejected("the form's csrf_token does not match; reload the page and try again")


def _bearer(request: Request) -> bool:
    header = request.headers.get("authorization", "")
    return header[:7].lower() == "bearer " and bool(header[7:].strip())
