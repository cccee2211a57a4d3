"""The node's one error hierarchy: each error carries a code, an HTTP status and a description.

Use-case code raises these (or trust/ errors, which carry protocol codes); `node.app` maps both
to JSON responses in one handler at the edge.
"""

from __future__ import annotations

from typing import Any

from trust.errors import TrustError

__all__ = [
    "TRUST_STATUS",
    "BadRequest",
    "NodeError",
    "NotFoundError",
    "ProtocolError",
    "QueryTimeout",
    "Unavailable",
    "trust_status",
]

# The HTTP status of each OAuth / iSHARE error code the trust layer raises (RFC 6749 section
# 5.2, RFC 6750 section 3.1, the iSHARE API specifications); a code not listed is a 400.
TRUST_STATUS: dict[str, int] = {
    "invalid_request": 400,
    "invalid_client": 400,
    "invalid_grant": 400,
    "unsupported_grant_type": 400,
    "invalid_scope": 400,
    "previous_steps_validation_error": 400,
    "invalid_delegation_assertion_pair": 400,
    "invalid_token": 401,
    "insufficient_scope": 403,
    "access_denied": 403,
    "service_not_allowed": 403,
    "federation_not_allowed": 403,
    "not_found": 404,
    "witness_conflict": 409,
    "poison_graph": 422,
    "invalid_signature": 422,
    "upstream_error": 502,
    "temporarily_unavailable": 503,
}


def trust_status(exc: TrustError) -> int:
    """The HTTP status for a trust-layer error, from its protocol code."""
    return TRUST_STATUS.get(exc.error, 400)


class NodeError(Exception):
    """Base: `code` is the JSON `error`, `status` the HTTP status, `extra` more JSON fields."""

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        description: str,
        *,
        status: int | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(description)
        self.description = description
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.headers = headers or {}
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {"error": self.code, "error_description": self.description, **self.extra}


class BadRequest(NodeError):
    """Input the node cannot use: a parameter, an IRI, a body (HTTP 400)."""


class ProtocolError(NodeError):
    """A request the SPARQL protocol does not allow (HTTP 400 unless said otherwise)."""

    def __init__(self, message: str, status: int = 400, **extra: Any):
        code = {403: "forbidden", 413: "too_large", 415: "unsupported_media_type"}.get(
            status, "bad_request"
        )
        super().__init__(message, status=status, code=code, **extra)


class NotFoundError(NodeError):
    """Nothing at this name (HTTP 404)."""

    status = 404
    code = "not_found"


class Unavailable(NodeError):
    """A dependency cannot serve the request now (HTTP 503, with Retry-After)."""

    status = 503
    code = "unavailable"


class QueryTimeout(NodeError):
    """A query ran past the configured timeout (HTTP 503 with Retry-After)."""

    status = 503
    code = "query_timeout"

    def __init__(
        self, description: str = "query cancelled after the configured timeout", **kw: Any
    ):
        kw.setdefault("headers", {"Retry-After": "5"})
        super().__init__(description, **kw)
