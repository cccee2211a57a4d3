"""JAdES signatures over HTTP exchanges (ETSI TS 119 182-1, sigD mechanism HttpHeaders).

Why: DSGO's data-service guides ask for non-repudiation of every exchange between parties. A
party seals the headers of the message it sends, and a `Digest` of the body, with its eSeal
certificate; the receiver keeps the signature, the signed header values and the body, and can
show years later who said what, and when, without asking anyone.

The form (facts from TS 119 182-1 clause 5.2.8.2, RFC 7797 and RFC 3230; the code is our own):

- `Digest: SHA-256=<base64 of the SHA-256 of the body as sent>` (RFC 3230 instance digest).
- `x-jws-signature: <protected header>..<signature>`: a compact JWS with a detached, unencoded
  payload. The protected header holds `alg` (RS256), `b64: false`, `crit: ["sigT", "sigD",
  "b64"]`, `sigT` (signing time, `YYYY-MM-DDThh:mm:ssZ`), `sigD` = `{"mId":
  "http://uri.etsi.org/19182/HttpHeaders", "pars": [...]}`, the certificate chain in `x5c`
  and its leaf's `x5t#S256`.
- The JWS payload is the signed headers, one `name: value` line each (name lower-case, value
  trimmed), in the order of `pars`, joined by `\n`; `(request-target)` is the lower-case method,
  a space and the path with its query. The signing input is `BASE64URL(header) "." payload`.
- `pars` always holds `(request-target)`, `host` and `digest`, and `content-type` and
  `content-encoding` whenever the message has them. A response is signed over the
  `(request-target)` and `host` of the request it answers, which ties the answer to the question.

The header name is `x-jws-signature`, as other JAdES HTTP-header profiles use it; `Signature`
is RFC 9421's (a different format) and is left alone.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from trust.errors import TrustError
from trust.pki import (
    PartyIdentity,
    certificate_matches_party,
    certificate_party_ids,
    validate_chain,
    validate_party_id,
    x5t_s256,
)
from trust.registry import Party

__all__ = [
    "ACCEPT_SIGNATURE_HEADER",
    "DIGEST_HEADER",
    "HTTP_HEADERS_MID",
    "SIGNATURE_HEADER",
    "ExchangeSignatureError",
    "HttpMessage",
    "SignedExchange",
    "body_digest",
    "check_registered",
    "sign_message",
    "signing_payload",
    "verify_message",
]

HTTP_HEADERS_MID = "http://uri.etsi.org/19182/HttpHeaders"
SIGNATURE_HEADER = "x-jws-signature"
# A request that asks for a sealed answer without being signed itself (a party's client that
# keeps evidence). Named after RFC 9421's request for signatures; its value is not read.
ACCEPT_SIGNATURE_HEADER = "accept-signature"
DIGEST_HEADER = "digest"
REQUEST_TARGET = "(request-target)"
REQUIRED_PARS = (REQUEST_TARGET, "host", DIGEST_HEADER)
OPTIONAL_PARS = ("content-type", "content-encoding")
CRIT = ("sigT", "sigD", "b64")
MAX_SIGNATURE_BYTES = 32 * 1024
SIGT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_TOKEN = re.compile(r"^[a-z0-9!#$%&'*+.^_`|~-]+$")


class ExchangeSignatureError(TrustError):
    """A message's JAdES signature is missing, malformed, does not match it, or is not trusted.

    `check` names what failed (e.g. `digest_mismatch`, `header_value`, `party_not_active`).
    """

    error = "invalid_signature"


@dataclass(frozen=True)
class HttpMessage:
    """What a signature covers: the request line, host, the message's headers and its body.

    For a response, `method`, `target` and `host` are those of the request it answers; `headers`
    are the response's own (names lower-case).
    """

    method: str
    target: str
    host: str
    headers: Mapping[str, str]
    body: bytes

    def value(self, name: str) -> str | None:
        """The value a signed header name stands for in this message (None when absent)."""
        if name == REQUEST_TARGET:
            return f"{self.method.lower()} {self.target}"
        if name == "host":
            return self.host
        value = self.headers.get(name)
        return value.strip() if value is not None else None


@dataclass(frozen=True)
class SignedExchange:
    """A verified signature: who sealed which header values over which body digest, and when."""

    signer: str
    signed_at: str
    signature: str
    signed_headers: tuple[tuple[str, str], ...]
    digest: str
    leaf: x509.Certificate

    @property
    def certificate_sha256(self) -> str:
        return x5t_s256(self.leaf)


def body_digest(body: bytes) -> str:
    """The RFC 3230 `Digest` value of a body: `SHA-256=` and the standard base64 of its hash."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def signing_payload(signed_headers: Sequence[tuple[str, str]]) -> bytes:
    """The JWS payload of the HttpHeaders mechanism: `name: value` lines joined by newlines."""
    return "\n".join(f"{name}: {value}" for name, value in signed_headers).encode("latin-1")


def sign_message(
    message: HttpMessage, identity: PartyIdentity, *, at: dt.datetime | None = None
) -> dict[str, str]:
    """The `Digest` and `x-jws-signature` headers to add to `message` before it is sent.

    `message.headers` must already hold the content-type / content-encoding that will be sent.
    """
    digest = body_digest(message.body)
    headers = {**message.headers, DIGEST_HEADER: digest}
    sealed = HttpMessage(message.method, message.target, message.host, headers, message.body)
    pars = [REQUEST_TARGET, "host"]
    pars += [name for name in OPTIONAL_PARS if sealed.value(name) is not None]
    pars.append(DIGEST_HEADER)
    values = [(name, _header_value(sealed, name)) for name in pars]
    when = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    header = {
        "alg": "RS256",
        "b64": False,
        "crit": list(CRIT),
        "sigT": when.strftime(SIGT_FORMAT),
        "sigD": {"mId": HTTP_HEADERS_MID, "pars": pars},
        "x5c": list(identity.x5c),
        "x5t#S256": _b64url(identity.certificate.fingerprint(hashes.SHA256())),
    }
    head = _b64url(orjson.dumps(header))
    signing_input = head.encode("ascii") + b"." + signing_payload(values)
    signature = identity.private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return {"Digest": digest, "x-jws-signature": f"{head}..{_b64url(signature)}"}


def verify_message(
    signature: str | None,
    message: HttpMessage,
    trusted_sha256: set[str],
    *,
    now: dt.datetime | None = None,
    max_skew: float | None = 300.0,
    expected_party: str | None = None,
) -> SignedExchange:
    """Check a message's signature: form, signed header values, body digest, RS256 signature,
    and the x5c chain to a trusted root at the signing time; return who signed it and when.

    `max_skew`: how far `sigT` may be from `now` (None: not checked, for a kept receipt).
    `expected_party`: the party the message must come from (the peer called, the token's party).
    The registry (party Active, certificate registered) is `check_registered`'s job.
    """
    head, sig = _split(signature)
    header = _protected(head)
    pars, signed_at = _check_header(header)
    chain = _chain(header.get("x5c"))
    leaf = chain[0]
    thumb = header.get("x5t#S256")
    if thumb is not None and thumb != _b64url(leaf.fingerprint(hashes.SHA256())):
        raise ExchangeSignatureError("header_x5t", "x5t#S256 is not the x5c leaf's thumbprint")
    values: list[tuple[str, str]] = []
    for name in pars:
        value = message.value(name)
        if value is None:
            raise ExchangeSignatureError(
                "header_value", f"the signed header {name!r} is not in the message"
            )
        values.append((name, value))
    for name in OPTIONAL_PARS:
        if name not in pars and message.value(name) is not None:
            raise ExchangeSignatureError(
                "signed_header_missing", f"the message has {name} but the signature leaves it out"
            )
    digest = dict(values)[DIGEST_HEADER]
    if not _digest_matches(digest, message.body):
        raise ExchangeSignatureError(
            "digest_mismatch", "the body does not match the signed Digest (SHA-256)"
        )
    when = dt.datetime.strptime(signed_at, SIGT_FORMAT).replace(tzinfo=dt.UTC)
    current = now or dt.datetime.now(dt.UTC)
    if max_skew is not None and abs((current - when).total_seconds()) > max_skew:
        raise ExchangeSignatureError(
            "sigt_skew", f"signed at {signed_at}, more than {max_skew:g} s from now"
        )
    try:
        validate_chain(chain, trusted_sha256, when)
    except TrustError as exc:
        raise ExchangeSignatureError(f"certificate_{exc.check}", exc.description) from None
    signing_input = head.encode("ascii") + b"." + signing_payload(values)
    try:
        leaf.public_key().verify(_unb64url(sig), signing_input, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr,call-arg,arg-type]
    except (InvalidSignature, TypeError, ValueError):
        raise ExchangeSignatureError(
            "signature_invalid", "the signature does not verify over the signed headers"
        ) from None
    signer = _signer(leaf, expected_party)
    return SignedExchange(signer, signed_at, signature or "", tuple(values), digest, leaf)


def check_registered(
    signed: SignedExchange, get_party: Callable[[str], Party | None], at: dt.datetime
) -> Party:
    """The signer is a party Active in the registry with this certificate registered."""
    party = get_party(signed.signer)
    if party is None:
        raise ExchangeSignatureError("party_unknown", f"{signed.signer} is not in the registry")
    if not party.is_active(at):
        raise ExchangeSignatureError(
            "party_not_active", f"{signed.signer}: adherence status {party.adherence.status}"
        )
    if not party.has_certificate(signed.leaf):
        raise ExchangeSignatureError(
            "certificate_not_registered",
            f"the signing certificate is not registered for {signed.signer}",
        )
    return party


# --- helpers --------------------------------------------------------------------------------


def _header_value(message: HttpMessage, name: str) -> str:
    value = message.value(name)
    if value is None:
        raise ExchangeSignatureError("header_value", f"the message has no {name}")
    if "\n" in value or "\r" in value:
        raise ExchangeSignatureError("header_value", f"{name} holds a line break")
    return value


def _split(signature: str | None) -> tuple[str, str]:
    if not signature:
        raise ExchangeSignatureError("signature_missing", f"no {SIGNATURE_HEADER} header")
    if len(signature) > MAX_SIGNATURE_BYTES:
        raise ExchangeSignatureError("signature_malformed", "the signature is too large")
    parts = signature.strip().split(".")
    if len(parts) != 3 or parts[1] != "" or not all(_B64URL.match(p) for p in (parts[0], parts[2])):
        raise ExchangeSignatureError(
            "signature_malformed", "not a compact JWS with a detached payload (header..signature)"
        )
    return parts[0], parts[2]


def _protected(head: str) -> dict:
    try:
        header = orjson.loads(_unb64url(head))
    except orjson.JSONDecodeError:
        raise ExchangeSignatureError("signature_malformed", "the JWS header is not JSON") from None
    if not isinstance(header, dict):
        raise ExchangeSignatureError("signature_malformed", "the JWS header is not an object")
    return header


def _check_header(header: dict) -> tuple[list[str], str]:
    if header.get("alg") != "RS256":
        raise ExchangeSignatureError("header_alg", f"alg must be RS256, got {header.get('alg')!r}")
    if header.get("b64") is not False:
        raise ExchangeSignatureError("header_b64", "the HttpHeaders mechanism needs b64: false")
    crit = header.get("crit")
    if not isinstance(crit, list) or "b64" not in crit or not set(crit) <= set(CRIT):
        raise ExchangeSignatureError(
            "header_crit", f"crit must list b64 and no parameter beyond {list(CRIT)}"
        )
    sig_d = header.get("sigD")
    if not isinstance(sig_d, dict) or sig_d.get("mId") != HTTP_HEADERS_MID:
        raise ExchangeSignatureError("header_sigd", f"sigD.mId must be {HTTP_HEADERS_MID}")
    pars = sig_d.get("pars")
    if (
        not isinstance(pars, list)
        or not all(isinstance(p, str) and (p == REQUEST_TARGET or _TOKEN.match(p)) for p in pars)
        or len(set(pars)) != len(pars)
    ):
        raise ExchangeSignatureError(
            "header_sigd", "sigD.pars must list distinct lower-case header names"
        )
    if missing := [p for p in REQUIRED_PARS if p not in pars]:
        raise ExchangeSignatureError(
            "signed_header_missing", f"sigD.pars must include {', '.join(missing)}"
        )
    signed_at = header.get("sigT")
    try:
        dt.datetime.strptime(str(signed_at), SIGT_FORMAT)
    except ValueError:
        raise ExchangeSignatureError(
            "header_sigt", "sigT must be a UTC time YYYY-MM-DDThh:mm:ssZ"
        ) from None
    return pars, str(signed_at)


def _chain(x5c: object) -> list[x509.Certificate]:
    if not isinstance(x5c, list) or not 1 <= len(x5c) <= 10:
        raise ExchangeSignatureError("header_x5c", "x5c must list 1-10 certificates")
    try:
        return [x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in x5c]
    except (TypeError, ValueError, binascii.Error):
        raise ExchangeSignatureError(
            "header_x5c", "an x5c element is not a base64 DER certificate"
        ) from None


def _signer(leaf: x509.Certificate, expected: str | None) -> str:
    if expected is not None:
        if not certificate_matches_party(leaf, expected):
            raise ExchangeSignatureError(
                "signer_mismatch", f"the signing certificate is not {expected}'s"
            )
        return expected
    for candidate in sorted(certificate_party_ids(leaf)):
        try:
            return validate_party_id(candidate)
        except TrustError:
            continue
    raise ExchangeSignatureError("cert_party", "the signing certificate names no party id")


def _digest_matches(value: str, body: bytes) -> bool:
    want = body_digest(body).split("=", 1)[1]
    for item in value.split(","):
        algorithm, _, encoded = item.strip().partition("=")
        if algorithm.lower() == "sha-256" and encoded == want:
            return True
    return False


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(data: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except (ValueError, binascii.Error):
        raise ExchangeSignatureError("signature_malformed", "bad base64url") from None
