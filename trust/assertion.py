"""Validate a POST /connect/token request (iSHARE client assertion); every check is named in errors."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from trust.errors import InvalidClient, InvalidRequest, InvalidScope, UnsupportedGrantType
from trust.ishare_jwt import MAX_TOKEN_BYTES, verify_client_assertion
from trust.pki import fingerprint_sha256
from trust.registry import PartyDirectory
from trust.state import ReplayStore

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
KNOWN_SCOPES = frozenset({"iSHARE", "ishare"})
REQUIRED = ("grant_type", "scope", "client_id", "client_assertion_type", "client_assertion")
REPLAY_NAMESPACE = "token"


@dataclass(frozen=True)
class AuthenticatedClient:
    """A client that passed every check: who, which assertion, which certificate."""

    party_id: str
    jti: str
    scope: str
    certificate_sha256: str


def validate_token_request(
    fields: Mapping[str, str] | Iterable[tuple[str, str]],
    *,
    server_party_id: str,
    directory: PartyDirectory,
    replay: ReplayStore,
    require_dataspace: str | None = None,
    now: float | None = None,
) -> AuthenticatedClient:
    """Run all iSHARE section 1.3 checks; raise a TrustError subclass naming the failed check."""
    now = time.time() if now is None else now
    form = _single_values(fields)
    for name in REQUIRED:
        if not form.get(name):
            raise InvalidRequest(f"missing_{name}", f"parameter {name} is required")
    if form["grant_type"] != "client_credentials":
        raise UnsupportedGrantType("grant_type", "only client_credentials is supported")
    scopes = form["scope"].split()
    if "iSHARE" not in scopes and "ishare" not in scopes:
        raise InvalidScope("scope", "scope must contain iSHARE")
    unknown = sorted(set(scopes) - KNOWN_SCOPES)
    if unknown:  # nothing reads other scope values, so none is carried in a token
        raise InvalidScope("scope", f"unknown scope value(s) {unknown}; only iSHARE is defined")
    if form["client_assertion_type"] != ASSERTION_TYPE:
        raise InvalidRequest("client_assertion_type", f"must be {ASSERTION_TYPE}")
    assertion = form["client_assertion"]
    if len(assertion) > MAX_TOKEN_BYTES:
        raise InvalidRequest(
            "assertion_oversized", f"client_assertion over {MAX_TOKEN_BYTES} bytes"
        )
    trusted = directory.trusted_fingerprints()
    verified = verify_client_assertion(
        assertion, audience=server_party_id, trusted_sha256=trusted, now=now
    )
    client_id = form["client_id"]
    if verified.issuer != client_id:
        raise InvalidClient("client_id_iss", "client_id does not equal the assertion iss/sub")
    party = directory.get_party(client_id)
    if party is None:
        raise InvalidClient("party_unknown", "client is not in the participant registry")
    at = dt.datetime.fromtimestamp(now, dt.UTC)
    if not party.is_active(at):
        raise InvalidClient("party_not_active", f"adherence status {party.adherence.status}")
    if require_dataspace and not party.is_member(require_dataspace, at):
        raise InvalidClient("dataspace_membership", f"no active membership of {require_dataspace}")
    if not party.has_certificate(verified.leaf):
        raise InvalidClient("certificate_not_registered", "signing certificate not registered")
    replay.check_and_store(
        REPLAY_NAMESPACE, verified.issuer, verified.claims["jti"], verified.claims["exp"], now
    )
    return AuthenticatedClient(
        party_id=party.party_id,  # the registered id, also when the client used an alsoKnownAs id
        jti=verified.claims["jti"],
        scope=" ".join(scopes),
        certificate_sha256=fingerprint_sha256(verified.leaf),
    )


def _single_values(fields: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    items = fields.items() if isinstance(fields, Mapping) else fields
    form: dict[str, str] = {}
    for key, value in items:
        if key in form:
            raise InvalidRequest(f"repeated_{key}", f"parameter {key} given more than once")
        if not isinstance(value, str):
            raise InvalidRequest(f"malformed_{key}", f"parameter {key} is not a string")
        form[key] = value
    return form
