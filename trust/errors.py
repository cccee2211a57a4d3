"""Trust-layer exceptions. Each carries the OAuth / iSHARE error code (`error`) and the check
that failed; never an HTTP status: the application that embeds trust/ maps codes to its
transport (node.errors.trust_status for the node)."""

from __future__ import annotations


class TrustError(Exception):
    """Base class: `check` names the failed check, `error` is the protocol's error code."""

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

    error = "invalid_request"


class InvalidClient(TrustError):
    """Client authentication failed (assertion, certificate, party status)."""

    error = "invalid_client"


class InvalidGrant(TrustError):
    """The grant itself is unacceptable."""

    error = "invalid_grant"


class UnsupportedGrantType(TrustError):
    """grant_type other than client_credentials."""

    error = "unsupported_grant_type"


class InvalidScope(TrustError):
    """scope does not contain the iSHARE scope."""

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

    error = "invalid_token"


class InsufficientScope(TrustError):
    """RFC 6750: token valid but lacks the needed scope."""

    error = "insufficient_scope"


class NotFound(TrustError):
    """A registry lookup found no party."""

    error = "not_found"


class RegistryUnavailable(TrustError):
    """The participant registry could not be reached or answered badly."""

    error = "temporarily_unavailable"


class UpstreamError(TrustError):
    """Another node refused or failed a trust call we made (token, capabilities)."""

    error = "upstream_error"
