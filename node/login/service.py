"""The login use cases: start a login, finish it at the callback, resolve and end sessions.

Who a person is comes from the provider (validated ID token and userinfo); which party they act
for and in which role comes from a `[[login.people]]` entry or, failing that, the provider's
claims (`party_claim`, `role_claim`). The resulting Caller goes to the enforcement point like
any other: routes decide nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from node.config import Settings
from node.login.config import AUDITOR, PARTY_ID, STEWARD, ProviderConfig
from node.login.oidc import Identity, LoginFailed, RelyingParty, pkce_pair
from node.login.store import LoginStore, Session
from trust.audit import AuditEvent
from trust.pki import PartyIdentity


@dataclass(frozen=True)
class Started:
    """A login on its way to the provider: where to send the browser and the binding cookie."""

    redirect: str
    state: str


@dataclass(frozen=True)
class Finished:
    """A finished login: the new session's id and where the person wanted to go."""

    sid: str
    session: Session
    next: str


class LoginService:
    """Everything the /login routes and the session middleware need, built once per node."""

    def __init__(
        self,
        settings: Settings,
        identity: PartyIdentity,
        gate: Callable[[str, set[str]], None],
        record: Callable[[AuditEvent], None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.config = settings.login
        self.record = record
        self.clock = clock
        self.store = LoginStore(
            settings.data_dir / "login.sqlite",
            idle_seconds=self.config.session_idle_seconds,
            max_seconds=self.config.session_max_seconds,
            pending_seconds=self.config.pending_seconds,
            clock=clock,
        )
        self.key = _load_or_create_key(settings.data_dir / "login-cookie.key")
        redirect = f"{settings.base_iri}/login/callback"
        self.parties: dict[str, RelyingParty] = {}
        for provider in self.config.providers:
            origins = {_origin(provider.issuer), _origin(provider.discovery)}
            self.parties[provider.name] = RelyingParty(
                provider,
                identity,
                redirect,
                lambda url, o=origins: gate(url, o),  # type: ignore[misc]
                clock=clock,
            )
        secure = self.config.cookie_secure
        self.secure = settings.base_iri.startswith("https://") if secure is None else secure
        tag = hashlib.sha256(settings.base_iri.encode()).hexdigest()[:8]
        # Cookies are per host, not per port: several nodes on one host need their own names.
        prefix = "__Host-" if self.secure else ""
        self.cookie_name = f"{prefix}dsgo_session_{tag}"
        self.binding_cookie = f"{prefix}dsgo_login_{tag}"

    # --- cookies ----------------------------------------------------------------------------

    def cookie_value(self, sid: str) -> str:
        return f"{sid}.{self._mac(sid)}"

    def sid_from_cookie(self, value: str) -> str | None:
        """The session id if the cookie carries this node's MAC; None if tampered or foreign."""
        sid, _, mac = value.rpartition(".")
        if not sid or not hmac.compare_digest(mac, self._mac(sid)):
            return None
        return sid

    def binding(self, state: str) -> str:
        return self._mac(f"login:{state}")

    def _mac(self, text: str) -> str:
        digest = hmac.new(self.key, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def cookie_attributes(self, max_age: int | None) -> str:
        parts = ["Path=/", "HttpOnly", f"SameSite={self.config.cookie_samesite}"]
        if self.secure:
            parts.append("Secure")
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        return "; ".join(parts)

    # --- sessions ---------------------------------------------------------------------------

    def resolve(self, cookie: str) -> Session | str:
        """The session a cookie names, or why not: invalid_session, session_expired, unknown_session."""
        sid = self.sid_from_cookie(cookie)
        if sid is None:
            return "invalid_session"
        found = self.store.get(sid)
        if found is None:
            return "unknown_session"
        return found  # a Session, or "session_expired"

    def logout(self, session: Session) -> None:
        self.store.delete_hash(session.sid_hash)
        self.record(
            AuditEvent(
                kind="logout",
                party=session.party_id,
                target="/logout",
                action="logout",
                detail={"person": session.person, "provider": session.provider},
            )
        )

    # --- the flow ---------------------------------------------------------------------------

    def start(self, provider_name: str, next_path: str | None) -> Started:
        rp = self.parties.get(provider_name)
        if rp is None:
            known = sorted(self.parties)
            raise LoginFailed("unknown_provider", f"no provider {provider_name!r}; known: {known}")
        verifier, challenge = pkce_pair()
        nonce = secrets.token_urlsafe(32)
        state = self.store.start(provider_name, nonce, verifier, safe_next(next_path))
        return Started(rp.authorization_url(state, nonce, challenge), state)

    def finish(self, params: dict[str, str], binding: str | None) -> Finished:
        """The callback: state (one-time, bound to this browser), issuer, code, ID token, person."""
        state = params.get("state", "")
        if not state:
            raise LoginFailed("invalid_state", "the callback has no state")
        if binding is None or not hmac.compare_digest(binding, self.binding(state)):
            raise LoginFailed(
                "invalid_state", "this login was not started in this browser (state mismatch)"
            )
        pending = self.store.take(state)
        if pending is None:
            raise LoginFailed("invalid_state", "unknown, used or expired state; log in again")
        rp = self.parties.get(pending.provider)
        if rp is None:
            raise LoginFailed("unknown_provider", "the provider of this login is not configured")
        if "error" in params:
            raise LoginFailed(
                "provider_error",
                f"the provider refused the login: {params['error'][:100]}"
                + (
                    f" ({params['error_description'][:200]})"
                    if params.get("error_description")
                    else ""
                ),
                403,
            )
        if "iss" in params and params["iss"].rstrip("/") != rp.provider.issuer:
            raise LoginFailed("issuer_mismatch", "the callback came from another issuer (RFC 9207)")
        code = params.get("code", "")
        if not code:
            raise LoginFailed("code_missing", "the callback has no code")
        who = rp.redeem(code, pending.verifier, pending.nonce)
        party, role, name = self.person_of(rp.provider, who)
        person = f"{rp.provider.name}:{who.subject}"
        sid = self.store.create(party, person, name, role, rp.provider.name)
        session = self.store.get(sid)
        assert isinstance(session, Session)
        self.record(
            AuditEvent(
                kind="login",
                party=party,
                target="/login/callback",
                action="login",
                detail={"person": person, "provider": rp.provider.name, "role": role},
            )
        )
        return Finished(sid, session, pending.next)

    def person_of(self, provider: ProviderConfig, who: Identity) -> tuple[str, str | None, str]:
        """(party id, role, display name) for a validated identity, or LoginFailed (403)."""
        claims = who.claims
        name = str(claims.get("name") or claims.get("email") or who.subject)[:200]
        mapping = self.config.person(provider.name, who.subject)
        if mapping is not None:
            party, roles = mapping.party_id, [mapping.role] if mapping.role else []
            name = mapping.name or name
        else:
            party = claims.get(provider.party_claim)
            if not isinstance(party, str) or not PARTY_ID.match(party):
                raise LoginFailed(
                    "no_party",
                    f"the provider names no party for this person (claim {provider.party_claim!r})"
                    " and node.toml maps none ([[login.people]])",
                    403,
                )
            if provider.allowed_parties and party not in provider.allowed_parties:
                raise LoginFailed(
                    "party_not_allowed",
                    f"provider {provider.name!r} may not vouch for {party}",
                    403,
                )
            roles = _roles(claims.get(provider.role_claim))
        if party != self.settings.party_id:
            return party, None, name
        for role in (STEWARD, AUDITOR):
            if role in roles:
                return party, role, name
        raise LoginFailed(
            "no_role",
            "people of this node's own party need the steward or auditor role",
            403,
        )

    def audit_refusal(self, exc: LoginFailed, provider: str | None) -> None:
        """A refused login step goes to the audit log (no session was made)."""
        detail: dict[str, Any] = {"reason": exc.code, "message": str(exc)[:300]}
        if provider:
            detail["provider"] = provider
        self.record(
            AuditEvent(
                kind="login_refused", target="/login/callback", action="login", detail=detail
            )
        )


def safe_next(value: str | None) -> str:
    """Only a path on this node (no scheme, no host, no //): never an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(c) < 0x20 for c in value):
        return "/"
    return value


def _roles(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.replace(",", " ").split()
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _load_or_create_key(path: Path) -> bytes:
    """The cookie MAC key, shared by the node's workers through the data dir (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another worker is writing it
            data = path.read_bytes()
            if len(data) == 32:
                return data
            time.sleep(0.02)
        raise RuntimeError(f"{path}: not a 32-byte key") from None
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key
