"""The `[login]` section of node.toml: OpenID Providers people log in with, sessions, local people."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

PARTY_ID = re.compile(
    r"^(EU\.EORI\.[A-Z]{2}[A-Za-z0-9]{1,15}|did:ishare:EU\.[A-Z]{2}\.NTR[A-Z]{2}-\d{8})$"
)
STEWARD = "steward"
AUDITOR = "auditor"
ROLES = (STEWARD, AUDITOR)
PROFILES = ("oidc", "ishare")
ALGORITHMS = ("RS256", "PS256", "ES256")  # never "none" or HMAC: the OP's key is asymmetric
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_PROVIDER_KEYS = {
    "name",
    "label",
    "issuer",
    "client_id",
    "discovery",
    "profile",
    "scopes",
    "party_claim",
    "role_claim",
    "allowed_parties",
    "request_object",
    "algorithms",
    "party_id",
    "userinfo",
}
_PERSON_KEYS = {"provider", "subject", "party_id", "role", "name"}


class LoginConfigError(ValueError):
    """A wrong [login] setting; the message names the key."""


@dataclass(frozen=True)
class ProviderConfig:
    """One `[[login.providers]]` entry: an OpenID Provider this node is a relying party of."""

    name: str  # in URLs (/login/start?provider=NAME) and in person ids (NAME:sub)
    issuer: str  # must equal the `iss` of its ID tokens and its discovery document
    client_id: str  # this node at the provider (default: the node's party id, as in iSHARE)
    discovery: str  # the OpenID configuration document URL
    label: str = ""
    profile: str = "oidc"  # "ishare": signed request object, scope iSHARE, JWT userinfo
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    party_claim: str = "party_id"  # the claim naming the person's party
    role_claim: str = "roles"  # the claim listing the person's roles (steward, auditor)
    allowed_parties: tuple[str, ...] = ()  # parties this provider may vouch for; () = any
    request_object: bool = False  # send the authorisation request as a signed JWT (RFC 9101)
    algorithms: tuple[str, ...] = ALGORITHMS  # accepted ID token signature algorithms
    party_id: str | None = None  # the provider's own iSHARE party id (audience of assertions)
    userinfo: bool = True  # also read the userinfo endpoint (claims the ID token leaves out)


@dataclass(frozen=True)
class PersonMapping:
    """A `[[login.people]]` entry: this node decides a person's party and role itself."""

    provider: str
    subject: str
    party_id: str
    role: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class LoginConfig:
    """Everything about people logging in; no providers means no login (tokens only)."""

    providers: tuple[ProviderConfig, ...] = ()
    people: tuple[PersonMapping, ...] = ()
    session_idle_seconds: float = 1800.0
    session_max_seconds: float = 28800.0
    cookie_secure: bool | None = None  # None: Secure when node.base_iri is https
    cookie_samesite: str = "Lax"
    pending_seconds: float = 600.0  # how long a started login may take at the provider

    @property
    def enabled(self) -> bool:
        return bool(self.providers)

    def provider(self, name: str) -> ProviderConfig | None:
        return next((p for p in self.providers if p.name == name), None)

    def person(self, provider: str, subject: str) -> PersonMapping | None:
        return next(
            (m for m in self.people if m.provider == provider and m.subject == subject), None
        )


def parse_login(raw: Any, node_party_id: str) -> LoginConfig:
    """The [login] table (may be absent); LoginConfigError naming the key on anything wrong."""
    if raw is None:
        return LoginConfig()
    if not isinstance(raw, dict):
        raise LoginConfigError("[login]: must be a table")
    known = {
        "providers",
        "people",
        "session_idle_seconds",
        "session_max_seconds",
        "cookie_secure",
        "cookie_samesite",
        "pending_seconds",
    }
    if unknown := sorted(set(raw) - known):
        raise LoginConfigError(f"login: unknown key(s) {unknown}; known: {sorted(known)}")
    providers = _providers(raw.get("providers", []), node_party_id)
    names = {p.name for p in providers}
    people = _people(raw.get("people", []), names)
    samesite = raw.get("cookie_samesite", "Lax")
    if samesite not in ("Lax", "Strict"):
        raise LoginConfigError("login.cookie_samesite: must be 'Lax' or 'Strict'")
    secure = raw.get("cookie_secure")
    if secure is not None and not isinstance(secure, bool):
        raise LoginConfigError("login.cookie_secure: must be true or false")
    idle = _seconds(raw, "session_idle_seconds", 1800.0)
    most = _seconds(raw, "session_max_seconds", 28800.0)
    if idle > most:
        raise LoginConfigError("login.session_idle_seconds: must not exceed session_max_seconds")
    return LoginConfig(
        providers=providers,
        people=people,
        session_idle_seconds=idle,
        session_max_seconds=most,
        cookie_secure=secure,
        cookie_samesite=samesite,
        pending_seconds=_seconds(raw, "pending_seconds", 600.0),
    )


def _providers(items: Any, node_party_id: str) -> tuple[ProviderConfig, ...]:
    if not isinstance(items, list):
        raise LoginConfigError("login.providers: use [[login.providers]] tables")
    out: list[ProviderConfig] = []
    for i, item in enumerate(items):
        where = f"login.providers[{i}]"
        if not isinstance(item, dict):
            raise LoginConfigError(f"{where}: must be a table")
        if unknown := sorted(set(item) - _PROVIDER_KEYS):
            raise LoginConfigError(
                f"{where}: unknown key(s) {unknown}; known: {sorted(_PROVIDER_KEYS)}"
            )
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise LoginConfigError(
                f"{where}.name: required, lowercase letters, digits, - or _, got {name!r}"
            )
        if name in {p.name for p in out}:
            raise LoginConfigError(f"{where}.name: {name!r} is used twice")
        issuer = _url(item.get("issuer"), f"{where}.issuer").rstrip("/")
        discovery = item.get("discovery") or f"{issuer}/.well-known/openid-configuration"
        _url(discovery, f"{where}.discovery")
        profile = item.get("profile", "oidc")
        if profile not in PROFILES:
            raise LoginConfigError(f"{where}.profile: must be one of {list(PROFILES)}")
        default_scopes = ["openid", "iSHARE"] if profile == "ishare" else ["openid", "profile"]
        scopes = _strings(item, "scopes", where, default_scopes)
        if "openid" not in scopes:
            raise LoginConfigError(f"{where}.scopes: must contain 'openid'")
        algorithms = _strings(item, "algorithms", where, list(ALGORITHMS))
        if bad := [a for a in algorithms if a not in ALGORITHMS]:
            raise LoginConfigError(f"{where}.algorithms: not allowed {bad}; use {list(ALGORITHMS)}")
        parties = _strings(item, "allowed_parties", where, [])
        if bad := [p for p in parties if not PARTY_ID.match(p)]:
            raise LoginConfigError(f"{where}.allowed_parties: not party ids: {bad}")
        party_id = item.get("party_id")
        if party_id is not None and (not isinstance(party_id, str) or not PARTY_ID.match(party_id)):
            raise LoginConfigError(f"{where}.party_id: not a party id: {party_id!r}")
        client_id = item.get("client_id", node_party_id)
        if not isinstance(client_id, str) or not client_id:
            raise LoginConfigError(f"{where}.client_id: must be a non-empty string")
        flags = {}
        for key, default in (("request_object", profile == "ishare"), ("userinfo", True)):
            value = item.get(key, default)
            if not isinstance(value, bool):
                raise LoginConfigError(f"{where}.{key}: must be true or false")
            flags[key] = value
        out.append(
            ProviderConfig(
                name=name,
                issuer=issuer,
                client_id=client_id,
                discovery=discovery,
                label=str(item.get("label") or name),
                profile=profile,
                scopes=tuple(scopes),
                party_claim=str(item.get("party_claim", "party_id")),
                role_claim=str(item.get("role_claim", "roles")),
                allowed_parties=tuple(parties),
                request_object=flags["request_object"],
                algorithms=tuple(algorithms),
                party_id=party_id,
                userinfo=flags["userinfo"],
            )
        )
    return tuple(out)


def _people(items: Any, providers: set[str]) -> tuple[PersonMapping, ...]:
    if not isinstance(items, list):
        raise LoginConfigError("login.people: use [[login.people]] tables")
    out: list[PersonMapping] = []
    for i, item in enumerate(items):
        where = f"login.people[{i}]"
        if not isinstance(item, dict):
            raise LoginConfigError(f"{where}: must be a table")
        if unknown := sorted(set(item) - _PERSON_KEYS):
            raise LoginConfigError(
                f"{where}: unknown key(s) {unknown}; known: {sorted(_PERSON_KEYS)}"
            )
        for key in ("provider", "subject", "party_id"):
            if not isinstance(item.get(key), str) or not item[key]:
                raise LoginConfigError(f"{where}.{key}: required (a non-empty string)")
        if item["provider"] not in providers:
            raise LoginConfigError(
                f"{where}.provider: no [[login.providers]] named {item['provider']!r}"
            )
        if not PARTY_ID.match(item["party_id"]):
            raise LoginConfigError(f"{where}.party_id: not a party id: {item['party_id']!r}")
        role = item.get("role")
        if role is not None and role not in ROLES:
            raise LoginConfigError(f"{where}.role: must be one of {list(ROLES)}")
        out.append(
            PersonMapping(
                item["provider"], item["subject"], item["party_id"], role, item.get("name")
            )
        )
    return tuple(out)


def _url(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise LoginConfigError(f"{name}: required (an http(s) URL)")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        raise LoginConfigError(f"{name}: not an http(s) URL: {value!r}")
    return value


def _strings(item: dict[str, Any], key: str, where: str, default: list[str]) -> list[str]:
    value = item.get(key, default)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise LoginConfigError(f"{where}.{key}: must be a list of strings")
    return value


def _seconds(raw: dict[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise LoginConfigError(f"login.{key}: must be a positive number of seconds, got {value!r}")
    return float(value)
