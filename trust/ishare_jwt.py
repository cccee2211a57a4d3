"""Create and verify iSHARE JWTs (RS256, typ JWT, x5c only; exp = iat + 30; single aud).

JWS is done with `cryptography` directly: the iSHARE profile allows exactly one algorithm and three
header parameters, so a strict hand-written compact parser is clearer than configuring a generic one.
Token kinds are mutually exclusive (RFC 8725 section 3.11): a client assertion carries none of the
signed-response payload claims, a signed response must carry exactly its expected claim, and access
tokens (typ at+jwt, trust/access_token.py) never pass the typ JWT check here.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import re
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from trust.errors import CertificateError, JwtError
from trust.pki import PartyIdentity, certificate_matches_party, validate_chain

LIFETIME = 30
DEFAULT_LEEWAY = 5.0
MAX_TOKEN_BYTES = 16 * 1024
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
ALLOWED_HEADER = frozenset({"alg", "typ", "x5c"})
RESPONSE_CLAIMS = frozenset(
    {
        "parties_info",
        "party_info",
        "trusted_list",
        "capabilities_info",
        "delegationEvidence",
        "dataspace_info",
        "versions_info",
    }
)
ACCESS_TOKEN_CLAIMS = frozenset({"client_id", "scope"})
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


class TokenKind(enum.Enum):
    CLIENT_ASSERTION = "client_assertion"
    SIGNED_RESPONSE = "signed_response"


@dataclass(frozen=True)
class VerifiedJwt:
    """A verified iSHARE JWT: its claims, the signing certificate and chain."""

    header: dict[str, Any]
    claims: dict[str, Any]
    chain: list[x509.Certificate]

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def issuer(self) -> str:
        return self.claims["iss"]


def create_jwt(
    identity: PartyIdentity,
    audience: str | None,
    extra: dict[str, Any] | None = None,
    *,
    now: float | None = None,
    jti: str | None = None,
) -> str:
    """Sign an iSHARE JWT as `identity` (iss = sub = party id, exp = iat + 30)."""
    iat = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": identity.party_id,
        "sub": identity.party_id,
        "jti": jti or uuid.uuid4().hex,
        "iat": iat,
        "nbf": iat,
        "exp": iat + LIFETIME,
    }
    if audience is not None:
        claims["aud"] = audience
    if extra:
        claims.update(extra)
    header = {"alg": "RS256", "typ": "JWT", "x5c": identity.x5c}
    return sign_compact(header, claims, identity.private_key)


def create_client_assertion(
    identity: PartyIdentity, audience: str, *, now: float | None = None, jti: str | None = None
) -> str:
    """A client assertion for POST /connect/token at the party `audience`."""
    return create_jwt(identity, audience, now=now, jti=jti)


def create_signed_response(
    identity: PartyIdentity,
    claim: str,
    value: Any,
    audience: str | None,
    *,
    now: float | None = None,
) -> str:
    """A signed response JWT carrying `claim` (e.g. parties_info); no aud when anonymous."""
    return create_jwt(identity, audience, {claim: value}, now=now)


def verify_client_assertion(
    token: str,
    *,
    audience: str,
    trusted_sha256: set[str],
    now: float | None = None,
    leeway: float = DEFAULT_LEEWAY,
) -> VerifiedJwt:
    """Verify a client assertion addressed to `audience`; does NOT check replay or the registry."""
    return verify_jwt(
        token,
        kind=TokenKind.CLIENT_ASSERTION,
        audience=audience,
        trusted_sha256=trusted_sha256,
        now=now,
        leeway=leeway,
    )


def verify_signed_response(
    token: str,
    *,
    claim: str,
    issuer: str | None,
    audience: str | None,
    trusted_sha256: set[str],
    now: float | None = None,
    leeway: float = DEFAULT_LEEWAY,
) -> VerifiedJwt:
    """Verify a signed response from `issuer` (None: any trusted party) carrying `claim`."""
    verified = verify_jwt(
        token,
        kind=TokenKind.SIGNED_RESPONSE,
        audience=audience,
        trusted_sha256=trusted_sha256,
        issuer=issuer,
        response_claim=claim,
        now=now,
        leeway=leeway,
    )
    return verified


def verify_jwt(
    token: str,
    *,
    kind: TokenKind,
    audience: str | None,
    trusted_sha256: set[str],
    issuer: str | None = None,
    response_claim: str | None = None,
    now: float | None = None,
    leeway: float = DEFAULT_LEEWAY,
) -> VerifiedJwt:
    """Full iSHARE JWT verification for one token kind; raises JwtError/CertificateError."""
    now = time.time() if now is None else now
    limit = MAX_TOKEN_BYTES if kind is TokenKind.CLIENT_ASSERTION else MAX_RESPONSE_BYTES
    header, claims, signing_input, signature = parse_compact(token, limit)
    _check_header(header)
    _check_claims(claims, kind, audience, issuer, response_claim, now, leeway)
    chain = [_parse_x5c(item) for item in header["x5c"]]
    leaf_key = chain[0].public_key()
    if not isinstance(leaf_key, rsa.RSAPublicKey):
        raise CertificateError("key_type", "leaf key is not RSA")
    try:
        leaf_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise JwtError("signature", "signature does not verify with the x5c leaf") from exc
    validate_chain(chain, trusted_sha256, dt.datetime.fromtimestamp(now, dt.UTC))
    if not certificate_matches_party(chain[0], claims["iss"]):
        raise JwtError("cert_party", "signing certificate does not name the iss party")
    return VerifiedJwt(header, claims, chain)


def parse_compact(
    token: str, max_bytes: int = MAX_TOKEN_BYTES
) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Split and decode a compact JWS; raise JwtError('malformed') on any syntax problem."""
    if not isinstance(token, str) or not token:
        raise JwtError("malformed", "empty token")
    if len(token) > max_bytes:
        raise JwtError("oversized", f"token larger than {max_bytes} bytes")
    parts = token.split(".")
    if len(parts) != 3 or not all(_B64URL.match(p) for p in parts):
        raise JwtError("malformed", "not a compact JWS with three base64url parts")
    try:
        header = orjson.loads(b64url_decode(parts[0]))
        claims = orjson.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise JwtError("malformed", "undecodable header, payload or signature") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JwtError("malformed", "header and payload must be JSON objects")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def sign_compact(header: dict[str, Any], claims: dict[str, Any], key: rsa.RSAPrivateKey) -> str:
    """RS256 compact serialisation."""
    signing_input = f"{b64url_encode(orjson.dumps(header))}.{b64url_encode(orjson.dumps(claims))}"
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url_encode(signature)}"


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _check_header(header: dict[str, Any]) -> None:
    alg = header.get("alg")
    if alg != "RS256":
        raise JwtError("header_alg", f"alg must be RS256, got {alg!r}")
    if header.get("typ") != "JWT":
        raise JwtError("header_typ", f"typ must be JWT, got {header.get('typ')!r}")
    extra = set(header) - ALLOWED_HEADER
    if extra:
        raise JwtError("header_params", f"header parameters not allowed: {sorted(extra)}")
    x5c = header.get("x5c")
    if (
        not isinstance(x5c, list)
        or not 1 <= len(x5c) <= 10
        or not all(isinstance(c, str) for c in x5c)
    ):
        raise JwtError("header_x5c", "x5c must be a list of 1-10 base64 certificates")


def _check_claims(
    claims: dict[str, Any],
    kind: TokenKind,
    audience: str | None,
    issuer: str | None,
    response_claim: str | None,
    now: float,
    leeway: float,
) -> None:
    for name in ("iss", "sub", "jti"):
        if not isinstance(claims.get(name), str) or not claims[name]:
            raise JwtError(f"claim_{name}", f"{name} missing or not a string")
    if claims["iss"] != claims["sub"]:
        raise JwtError("iss_sub", "iss and sub differ")
    if issuer is not None and claims["iss"] != issuer:
        raise JwtError("iss", f"issuer {claims['iss']!r} is not {issuer!r}")
    aud = claims.get("aud")
    if isinstance(aud, list):
        raise JwtError("aud_list", "aud must be a single string")
    if audience is not None or kind is TokenKind.CLIENT_ASSERTION:
        if not isinstance(aud, str):
            raise JwtError("aud", "aud missing")
        if aud != audience:
            raise JwtError("aud", f"aud {aud!r} is not this party")
    elif aud is not None:
        raise JwtError("aud", "anonymous response must not carry aud")
    iat, exp = claims.get("iat"), claims.get("exp")
    if not _is_number(iat) or not _is_number(exp):
        raise JwtError("iat_exp", "iat and exp must be NumericDates")
    if abs((exp - iat) - LIFETIME) > 1e-3:
        raise JwtError("exp_iat_30", "exp must equal iat + 30 seconds")
    if iat > now + leeway:
        raise JwtError("iat_future", "iat is in the future")
    if exp + leeway <= now:
        raise JwtError("expired", "token expired")
    nbf = claims.get("nbf")
    if nbf is not None and (not _is_number(nbf) or nbf > now + leeway):
        raise JwtError("nbf", "token not yet valid")
    present = RESPONSE_CLAIMS.intersection(claims)
    if kind is TokenKind.CLIENT_ASSERTION:
        if present or ACCESS_TOKEN_CLAIMS.intersection(claims):
            raise JwtError("token_kind", "a signed response/access token is not a client assertion")
    else:
        if response_claim not in claims:
            raise JwtError("token_kind", f"response lacks {response_claim!r}")
        if present - {response_claim}:
            raise JwtError("token_kind", "response carries another response claim")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@lru_cache(maxsize=256)
def _parse_x5c(item: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(base64.b64decode(item, validate=True))
    except (ValueError, binascii.Error) as exc:
        raise JwtError("header_x5c", "x5c element is not a base64 DER certificate") from exc
