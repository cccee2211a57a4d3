"""The node as an OpenID Connect relying party: discovery, the authorisation request (PKCE S256,
state, nonce, optionally a signed request object), the code exchange with `private_key_jwt`
signed by the node's party key, and full ID token validation against the provider's JWKS.

Every call to a provider goes through `Enforcer.login_outbound` first (configured origins only).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

from node.login.config import ProviderConfig
from trust.ishare_jwt import sign_compact
from trust.pki import PartyIdentity

CLOCK_SKEW = 60  # seconds allowed between the provider's clock and ours
ASSERTION_LIFETIME = 30  # iSHARE: exp = iat + 30 for client assertions and request objects
_JWKS_REFETCH = 10.0  # seconds: an unknown kid makes us refetch the JWKS at most this often


class LoginFailed(Exception):
    """A login step refused; `code` names the check, the message says why (no secrets)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class Identity:
    """Who the provider says logged in: its validated claims, ID token and userinfo merged."""

    provider: str
    subject: str
    claims: dict[str, Any]


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge), RFC 7636."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def node_jwk(identity: PartyIdentity) -> dict[str, Any]:
    """The node's public party key as a JWK (kid = RFC 7638 thumbprint, x5c = its chain)."""
    key = RSAKey.import_key(identity.certificate.public_key())
    data = key.as_dict(private=False)
    data.update(kid=key.thumbprint(), use="sig", alg="RS256", x5c=list(identity.x5c))
    return data


class RelyingParty:
    """One configured provider, as this node talks to it."""

    def __init__(
        self,
        provider: ProviderConfig,
        identity: PartyIdentity,
        redirect_uri: str,
        gate: Callable[[str], None],
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
    ) -> None:
        self.provider = provider
        self.identity = identity
        self.redirect_uri = redirect_uri
        self.gate = gate  # Enforcer.login_outbound bound to this provider's origins
        self.clock = clock
        self.timeout = timeout
        self.kid = node_jwk(identity)["kid"]
        self._meta: dict[str, Any] | None = None
        self._jwks: KeySet | None = None
        self._jwks_at = 0.0
        self._lock = threading.Lock()

    # --- provider metadata ------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """The provider's OpenID configuration (fetched once); its issuer must be ours."""
        if self._meta is None:
            meta = self._get_json(self.provider.discovery)
            if meta.get("issuer", "").rstrip("/") != self.provider.issuer:
                raise LoginFailed(
                    "provider_mismatch",
                    f"the provider's discovery document names issuer {meta.get('issuer')!r}, "
                    f"not {self.provider.issuer!r}",
                    502,
                )
            for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(meta.get(key), str):
                    raise LoginFailed("provider_metadata", f"discovery document lacks {key}", 502)
            methods = meta.get("code_challenge_methods_supported")
            if isinstance(methods, list) and "S256" not in methods:
                raise LoginFailed("provider_metadata", "the provider does not offer PKCE S256", 502)
            self._meta = meta
        return self._meta

    def _keys(self, refresh: bool = False) -> KeySet:
        with self._lock:
            now = time.monotonic()
            if self._jwks is None or (refresh and now - self._jwks_at > _JWKS_REFETCH):
                data = self._get_json(self.metadata()["jwks_uri"])
                try:
                    self._jwks = KeySet.import_key_set(data)  # type: ignore[arg-type]
                except (JoseError, ValueError, TypeError, KeyError):
                    raise LoginFailed(
                        "provider_jwks", "the provider's JWKS is not valid", 502
                    ) from None
                self._jwks_at = now
            return self._jwks

    # --- the authorisation request ----------------------------------------------------------

    def authorization_url(self, state: str, nonce: str, challenge: str) -> str:
        """Where the browser goes to log in (code flow, PKCE S256, state and nonce)."""
        params = {
            "response_type": "code",
            "client_id": self.provider.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(self.provider.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if self.provider.request_object:
            now = int(self.clock())
            claims = {
                **params,
                "iss": self.provider.client_id,
                "aud": self.provider.party_id or self.provider.issuer,
                "jti": uuid.uuid4().hex,
                "iat": now,
                "nbf": now,
                "exp": now + ASSERTION_LIFETIME,
            }
            params = {k: params[k] for k in ("response_type", "client_id", "scope")}
            params["request"] = self._sign(claims)
        endpoint = self.metadata()["authorization_endpoint"]
        sep = "&" if urlsplit(endpoint).query else "?"
        return f"{endpoint}{sep}{urlencode(params)}"

    def _sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid, "x5c": self.identity.x5c}
        return sign_compact(header, claims, self.identity.private_key)

    def client_assertion(self) -> str:
        """private_key_jwt (RFC 7523) signed with the node's party key, iSHARE-shaped."""
        now = int(self.clock())
        audience = (
            self.provider.party_id
            if self.provider.profile == "ishare" and self.provider.party_id
            else self.provider.issuer
        )
        return self._sign(
            {
                "iss": self.provider.client_id,
                "sub": self.provider.client_id,
                "aud": audience,
                "jti": uuid.uuid4().hex,
                "iat": now,
                "nbf": now,
                "exp": now + ASSERTION_LIFETIME,
            }
        )

    # --- the callback -----------------------------------------------------------------------

    def redeem(self, code: str, verifier: str, nonce: str) -> Identity:
        """Exchange the code, validate the ID token, read userinfo: who logged in."""
        meta = self.metadata()
        url = meta["token_endpoint"]
        self.gate(url)
        try:
            resp = httpx.post(
                url,
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": self.redirect_uri,
                    "code_verifier": verifier,
                    "client_id": self.provider.client_id,
                    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    "client_assertion": self.client_assertion(),
                },
                headers={"Accept": "application/json"},
                timeout=self.timeout,
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            raise LoginFailed(
                "provider_unreachable", f"token endpoint: {type(exc).__name__}", 502
            ) from None
        body = _json_or_none(resp)
        if resp.status_code != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            raise LoginFailed(
                "code_rejected",
                f"the provider refused the code ({error or 'HTTP ' + str(resp.status_code)}); "
                "it may have been used already or have expired",
            )
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            raise LoginFailed("id_token_missing", "the token response has no id_token", 502)
        claims = self.validate_id_token(id_token, nonce)
        access_token = body.get("access_token")
        if (
            self.provider.userinfo
            and meta.get("userinfo_endpoint")
            and isinstance(access_token, str)
        ):
            info = self.userinfo(meta["userinfo_endpoint"], access_token)
            if info.get("sub") != claims["sub"]:
                raise LoginFailed(
                    "userinfo_subject", "userinfo names another subject than the ID token"
                )
            claims = {**info, **claims}
        return Identity(self.provider.name, claims["sub"], claims)

    def validate_id_token(self, token: str, nonce: str) -> dict[str, Any]:
        """OIDC Core 3.1.3.7: alg allow-list, signature by the provider's key, iss, aud, azp,
        exp, iat, nonce. LoginFailed naming the first check that fails."""
        claims = self._verify_jwt(token, "id_token")
        if claims.get("iss") != self.provider.issuer:
            raise LoginFailed("id_token_issuer", "the ID token is from another issuer")
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self.provider.client_id not in audiences:
            raise LoginFailed("id_token_audience", "the ID token is not for this node")
        if len(audiences) > 1 and claims.get("azp") != self.provider.client_id:
            raise LoginFailed("id_token_audience", "the ID token's azp is not this node")
        now = self.clock()
        exp, iat = claims.get("exp"), claims.get("iat")
        if not _number(exp) or exp < now - CLOCK_SKEW:
            raise LoginFailed("id_token_expired", "the ID token has expired")
        if not _number(iat) or iat > now + CLOCK_SKEW:
            raise LoginFailed("id_token_iat", "the ID token's iat is missing or in the future")
        if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(
            claims["nonce"], nonce
        ):
            raise LoginFailed(
                "nonce_mismatch", "the ID token's nonce is not the one this login sent"
            )
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise LoginFailed("id_token_subject", "the ID token has no subject")
        return claims

    def userinfo(self, url: str, access_token: str) -> dict[str, Any]:
        """Userinfo as JSON, or as a signed JWT (iSHARE) checked like the ID token's signature."""
        self.gate(url)
        try:
            resp = httpx.get(
                url,
                headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
                timeout=self.timeout,
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            raise LoginFailed(
                "provider_unreachable", f"userinfo: {type(exc).__name__}", 502
            ) from None
        if resp.status_code != 200:
            raise LoginFailed("userinfo_refused", f"userinfo answered HTTP {resp.status_code}", 502)
        if resp.headers.get("content-type", "").startswith("application/jwt"):
            info = self._verify_jwt(resp.text.strip(), "userinfo")
            if info.get("iss") not in (None, self.provider.issuer):
                raise LoginFailed("userinfo_issuer", "the userinfo JWT is from another issuer")
            return info
        body = _json_or_none(resp)
        if not isinstance(body, dict):
            raise LoginFailed("userinfo_invalid", "userinfo is not a JSON object", 502)
        return body

    def _verify_jwt(self, token: str, what: str) -> dict[str, Any]:
        try:
            header = json.loads(_b64decode(token.split(".")[0]))
        except (ValueError, IndexError):
            raise LoginFailed(f"{what}_malformed", f"the {what} is not a JWT") from None
        alg = header.get("alg") if isinstance(header, dict) else None
        if alg not in self.provider.algorithms:
            raise LoginFailed(
                f"{what}_alg", f"the {what} is signed with {alg!r}, not an allowed algorithm"
            )
        kid = header.get("kid")
        keys = self._keys()
        if kid is not None and not any(k.kid == kid for k in keys.keys):
            keys = self._keys(refresh=True)
        try:
            token_obj = jwt.decode(token, keys, algorithms=[alg])
        except (JoseError, ValueError):
            raise LoginFailed(
                f"{what}_signature", f"the {what} is not signed by the provider's key"
            ) from None
        return dict(token_obj.claims)

    def _get_json(self, url: str) -> dict[str, Any]:
        self.gate(url)
        try:
            resp = httpx.get(url, timeout=self.timeout, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise LoginFailed(
                "provider_unreachable", f"{self.provider.name}: {type(exc).__name__} at {url}", 502
            ) from None
        body = _json_or_none(resp)
        if resp.status_code != 200 or not isinstance(body, dict):
            raise LoginFailed(
                "provider_unreachable", f"{url} answered HTTP {resp.status_code}", 502
            )
        return body


def _json_or_none(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
