"""Signed dataset versions: RDFC-1.0 canonical N-Quads, SHA-256, detached RS256 JWS with x5c.

Format (RFC 7515 appendix F, detached content): the JWS payload is the 32-byte SHA-256 digest of
the canonical N-Quads; it is left out of the compact form (`header..signature`) and recomputed by
the verifier from the data. The protected header is
`{"alg": "RS256", "typ": "dsgo-dataset+jws", "canon": "RDFC-1.0", "hash": "sha-256",
"party": <party id>, "iat": <unix time>, "x5c": [...]}`; `typ` keeps these apart from iSHARE JWTs.
The same helpers sign audit checkpoints (attached JSON payload, typ `dsgo-audit-checkpoint+jws`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import pyoxigraph as ox
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from trust.canon import canonical_nquads
from trust.errors import TrustError
from trust.pki import PartyIdentity, certificate_matches_party, validate_chain

DATASET_TYP = "dsgo-dataset+jws"
MAX_JWS_BYTES = 64 * 1024
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


class SignatureError(TrustError):
    """A dataset or checkpoint signature is malformed, does not match the data, or is forged."""

    error = "invalid_signature"


@dataclass(frozen=True)
class VerifiedJws:
    """A JWS whose signature and x5c chain checked out."""

    header: dict[str, Any]
    payload: bytes
    leaf: x509.Certificate


def sign_dataset(
    quads: Iterable[ox.Quad | ox.Triple], identity: PartyIdentity, *, at: dt.datetime | None = None
) -> str:
    """Detached compact JWS over the SHA-256 of the dataset's RDFC-1.0 canonical N-Quads."""
    digest = dataset_digest(quads)
    when = at or dt.datetime.now(dt.UTC)
    header = {
        "alg": "RS256",
        "typ": DATASET_TYP,
        "canon": "RDFC-1.0",
        "hash": "sha-256",
        "party": identity.party_id,
        "iat": int(when.timestamp()),
        "x5c": list(identity.x5c),
    }
    compact = sign_jws(header, digest, identity.private_key)
    head, _payload, sig = compact.split(".")
    return f"{head}..{sig}"


def verify_dataset(
    quads: Iterable[ox.Quad | ox.Triple],
    jws: str,
    trusted_sha256: set[str],
    at: dt.datetime,
) -> str:
    """Check a detached dataset JWS against the data and the trusted CAs; return the party id."""
    parts = _split(jws)
    if parts[1] != "":
        raise SignatureError("not_detached", "dataset JWS must have an empty payload part")
    header = _header(parts[0])
    for name, want in (("typ", DATASET_TYP), ("canon", "RDFC-1.0"), ("hash", "sha-256")):
        if header.get(name) != want:
            raise SignatureError(f"header_{name}", f"{name} must be {want!r}")
    party = header.get("party")
    if not isinstance(party, str) or not party:
        raise SignatureError("header_party", "party missing")
    digest = dataset_digest(quads)
    attached = f"{parts[0]}.{b64url_encode(digest)}.{parts[2]}"
    verified = verify_jws(attached, trusted_sha256, at)
    if not certificate_matches_party(verified.leaf, party):
        raise SignatureError("cert_party", "signing certificate does not name the party")
    return party


def dataset_digest(quads: Iterable[ox.Quad | ox.Triple]) -> bytes:
    """SHA-256 of the RDFC-1.0 canonical N-Quads (UTF-8)."""
    return hashlib.sha256(canonical_nquads(quads).encode("utf-8")).digest()


def sign_jws(header: dict[str, Any], payload: bytes, key: rsa.RSAPrivateKey) -> str:
    """RS256 compact JWS with an attached payload."""
    if header.get("alg") != "RS256":
        raise SignatureError("header_alg", "only RS256 is produced")
    signing_input = f"{b64url_encode(orjson.dumps(header))}.{b64url_encode(payload)}"
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url_encode(signature)}"


def verify_jws(jws: str, trusted_sha256: set[str], at: dt.datetime) -> VerifiedJws:
    """Verify an attached RS256 compact JWS whose x5c chain leads to a trusted CA at `at`."""
    head, payload_b64, sig_b64 = _split(jws)
    header = _header(head)
    if header.get("alg") != "RS256":
        raise SignatureError("header_alg", f"alg must be RS256, got {header.get('alg')!r}")
    if "crit" in header:
        raise SignatureError("header_crit", "no critical header extensions are understood")
    chain = _chain(header.get("x5c"))
    leaf = validate_chain(chain, trusted_sha256, at)
    try:
        leaf.public_key().verify(
            _b64(sig_b64),
            f"{head}.{payload_b64}".encode("ascii"),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, TypeError, ValueError) as exc:
        raise SignatureError("signature", "signature does not verify") from exc
    return VerifiedJws(header, _b64(payload_b64), leaf)


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64(data: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except (ValueError, binascii.Error) as exc:
        raise SignatureError("malformed", "bad base64url") from exc


def _split(jws: str) -> list[str]:
    if not isinstance(jws, str) or len(jws) > MAX_JWS_BYTES:
        raise SignatureError("malformed", "JWS missing or too large")
    parts = jws.split(".")
    if len(parts) != 3 or not all(_B64URL.match(p) for p in parts) or not parts[0]:
        raise SignatureError("malformed", "not a compact JWS")
    return parts


def _header(head: str) -> dict[str, Any]:
    try:
        header = orjson.loads(_b64(head))
    except orjson.JSONDecodeError as exc:
        raise SignatureError("malformed", "header is not JSON") from exc
    if not isinstance(header, dict):
        raise SignatureError("malformed", "header is not an object")
    return header


def _chain(x5c: Any) -> list[x509.Certificate]:
    if not isinstance(x5c, list) or not 1 <= len(x5c) <= 10:
        raise SignatureError("header_x5c", "x5c must list 1-10 certificates")
    try:
        return [x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in x5c]
    except (TypeError, ValueError, binascii.Error) as exc:
        raise SignatureError("header_x5c", "x5c element is not a base64 DER certificate") from exc
