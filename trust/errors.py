"""Trust-layer exceptions; each carries the HTTP status and OAuth error code it maps to."""

from __future__ import annotations


class TrustError(Exception):
    """Base class: `check` names the failed check, `status`/`error` give the HTTP mapping."""

    status: int = 400
    error: str = "invalid_request"

    def __init__(self, check: str, description: str | None = None) -> None:
        self.check = check
        self.description = description or check
        super().__init__(f"{check}: {self.description}" if description else check)

    def to_json(self) -> dict[str, str]:
        """RFC 6749 section 5.2 error body."""
        return {"error": self.error, "error_description": f"{self.check}: {self.description}"}


class InvalidRequest(TrustError):
    """A missing, repeated or malformed request parameter."""

    status = 400
    error = "invalid_request"


class InvalidClient(TrustError):
    """Client authentication failed (assertion, certificate, party status)."""

    status = 400
    error = "invalid_client"


class InvalidGrant(TrustError):
    """The grant itself is unacceptable."""

    status = 400
    error = "invalid_grant"


class UnsupportedGrantType(TrustError):
    """grant_type other than client_credentials."""

    status = 400
    error = "unsupported_grant_type"


class InvalidScope(TrustError):
    """scope does not contain the iSHARE scope."""

    status = 400
    error = "invalid_scope"


class CertificateError(InvalidClient):
    """An x5c chain or certificate failed validation."""


class JwtError(InvalidClient):
    """An iSHARE JWT failed validation (header, claims, signature)."""


class ReplayError(InvalidClient):
    """A jti was presented a second time."""


class IdentifierError(InvalidRequest, ValueError):
    """A party identifier does not have an accepted format."""


class InvalidToken(TrustError):
    """RFC 6750: missing, expired, forged or foreign access token."""

    status = 401
    error = "invalid_token"


class InsufficientScope(TrustError):
    """RFC 6750: token valid but lacks the needed scope."""

    status = 403
    error = "insufficient_scope"


class MethodNotAllowed(TrustError):
    """An endpoint was called with a method it refuses (GET on /connect/token)."""

    status = 405
    error = "invalid_request"
    allow = "POST"  # the methods the endpoint takes (the only one refusing others is the token endpoint)


class NotFound(TrustError):
    """A registry lookup found no party."""

    status = 404
    error = "not_found"


class RegistryUnavailable(TrustError):
    """The participant registry could not be reached or answered badly."""

    status = 503
    error = "temporarily_unavailable"


class UpstreamError(TrustError):
    """Another node refused or failed a trust call we made (token, capabilities)."""

    status = 502
    error = "upstream_error"
