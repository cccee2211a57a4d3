"""Bearer authentication of incoming requests against the node's own access tokens (RFC 6750)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from node.enforcement import Caller
from node.errors import NodeError, trust_status
from node.login.session import SESSION_SCHEME, session_caller
from trust.conditions import InvalidCondition, parse_context
from trust.errors import InvalidRequest, InvalidToken, TrustError
from trust.layer import TrustLayer

CONTEXT_HEADER = "Delegation-Context"
MAX_CONTEXT_BYTES = 8 * 1024

__all__ = ["Caller", "authenticate", "caller_from_header", "error_response", "optional_caller"]


def authenticate(request: Request, layer: TrustLayer) -> Caller:
    """Caller from `Authorization: Bearer <token>`; InvalidToken (401) if missing or invalid."""
    caller = optional_caller(request, layer)
    if caller is None:
        raise InvalidToken("token_missing", "Authorization: Bearer token required")
    return caller


def optional_caller(request: Request, layer: TrustLayer) -> Caller | None:
    """None without an Authorization header; 400 if malformed, 401 if invalid/expired."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    caller = caller_from_header(header, layer)
    context = request_context(request.headers.get(CONTEXT_HEADER))
    return replace(caller, context=tuple(sorted(context.items()))) if context else caller


def request_context(value: str | None) -> dict[str, str]:
    """The iSHARE 3.0 request context a caller sends in `Delegation-Context` (a JSON object).

    Policies with conditions are evaluated against it; 400 if it is not a key-value object.
    """
    if not value:
        return {}
    if len(value) > MAX_CONTEXT_BYTES:
        raise InvalidRequest(
            "delegation_context", f"{CONTEXT_HEADER} over {MAX_CONTEXT_BYTES} bytes"
        )
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise InvalidRequest("delegation_context", f"{CONTEXT_HEADER} is not JSON") from None
    try:
        return parse_context(data, CONTEXT_HEADER)
    except InvalidCondition as exc:
        raise InvalidRequest("delegation_context", exc.description) from None


def caller_from_header(header: str, layer: TrustLayer) -> Caller:
    """The caller an `Authorization` header value names; 400 if malformed, 401 if invalid."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme == SESSION_SCHEME:  # set by node.login.middleware from the session cookie
        return session_caller(token)
    if scheme.lower() != "bearer" or not token or " " in token:
        raise InvalidRequest("authorization_header", "expected Authorization: Bearer <token>")
    claims = layer.verify_access_token(token)
    return Caller(party_id=claims.party_id, jti=claims.jti, scope=claims.scope)


def error_response(exc: TrustError) -> JSONResponse:
    """JSON error body with the status the error carries; 401 adds WWW-Authenticate."""
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    status = trust_status(exc)
    if status == 401:
        headers["WWW-Authenticate"] = (
            f'Bearer error="{exc.error}", error_description="{_quote(exc.description)}"'
        )
    elif status == 403:
        headers["WWW-Authenticate"] = f'Bearer error="{exc.error}"'
    elif status == 503:  # the registry or the audit log is down: say when to come back
        headers["Retry-After"] = str(getattr(exc, "retry_after", 1))
    return JSONResponse(exc.to_json(), status_code=status, headers=headers)


def guarded(
    endpoint: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """TrustErrors become their JSON error responses, ValueError from bad parameters a 400.

    For route lists that also run outside the node app (and its exception handlers).
    """

    async def wrapper(request: Request) -> Response:
        try:
            return await endpoint(request)
        except TrustError as exc:
            return error_response(exc)
        except NodeError as exc:
            return JSONResponse(exc.to_json(), status_code=exc.status, headers=exc.headers or None)
        except ValueError as exc:
            return error_response(InvalidRequest("invalid_parameter", str(exc)[:200]))

    wrapper.__name__ = endpoint.__name__
    return wrapper


def _quote(text: str) -> str:
    return "".join(c for c in text if c not in '"\\' and 0x20 <= ord(c) < 0x7F)
