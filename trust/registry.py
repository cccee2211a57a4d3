"""Participant registry role (parties, trusted list in SQLite, signed responses) and its clients.

`LocalDirectory` (node is the registry) and `RegistryClient` (remote registry over HTTP, verified
signed responses, cached `cache_seconds`) share the `PartyDirectory` interface the token endpoint uses.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import math
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson
from cryptography import x509

from trust.client import TrustClient
from trust.errors import (
    InvalidClient,
    InvalidRequest,
    NotFound,
    RegistryUnavailable,
    TrustError,
    UpstreamError,
)
from trust.ishare_jwt import create_signed_response, verify_signed_response
from trust.pki import (
    PartyIdentity,
    cert_to_x5c,
    fingerprint_sha256,
    normalise_fingerprint,
    validate_party_id,
    x5t_s256,
)
from trust.single_flight import SingleFlight

DSGO_DATASPACE = "EU.DS.NL.DSGO"
STATUSES = ("Active", "Pending", "NotActive", "Revoked")
PAGE_SIZE = 10
MAX_LIST_PAGES = 100


@dataclass
class Adherence:
    status: str
    start_date: str | None = None
    end_date: str | None = None


@dataclass
class Role:
    role: str
    start_date: str | None = None
    end_date: str | None = None
    loa: str = "High"


@dataclass
class PartyCertificate:
    subject_name: str
    x5c: str
    x5t_s256: str
    certificate_type: str = "eSEAL"
    enabled_from: str | None = None

    @classmethod
    def from_cert(cls, cert: x509.Certificate) -> PartyCertificate:
        return cls(
            subject_name=cert.subject.rfc4514_string(),
            x5c=cert_to_x5c(cert),
            x5t_s256=x5t_s256(cert),
            enabled_from=_iso(cert.not_valid_before_utc),
        )


@dataclass
class DataspaceMembership:
    dataspace_id: str
    start_date: str | None = None
    end_date: str | None = None


@dataclass
class AuthRegistry:
    """An authorisation register the party uses (iSHARE party_info `auth_registries`)."""

    id: str
    name: str = ""
    url: str = ""
    dataspace_id: str = ""
    dataspace_name: str = ""
    # iSHARE 3.0: a register may hold the party's policies for one service provider / service
    # only ("" = any).
    service_provider: str = ""
    service: str = ""

    def serves(self, service_provider: str, service: str | None = None) -> bool:
        """True when this register counts for evidence used at `service_provider` (`service`)."""
        if self.service_provider and self.service_provider != service_provider:
            return False
        return not (self.service and service is not None and self.service != service)


@dataclass
class Party:
    """A registry record (iSHARE party_info plus DSGO dataspace membership)."""

    party_id: str
    name: str
    adherence: Adherence
    roles: list[Role] = field(default_factory=list)
    certificates: list[PartyCertificate] = field(default_factory=list)
    dataspaces: list[DataspaceMembership] = field(default_factory=list)
    capability_url: str | None = None
    auth_registries: list[AuthRegistry] = field(default_factory=list)
    also_known_as: list[str] = field(default_factory=list)  # iSHARE 3.0 alsoKnownAs (did:web, ...)

    def known_as(self, party_id: str) -> bool:
        """True when `party_id` is this party's id or one of its alsoKnownAs ids."""
        return party_id == self.party_id or party_id in self.also_known_as

    def is_active(self, at: dt.datetime) -> bool:
        """Adherence Active and `at` inside its date window."""
        a = self.adherence
        return a.status == "Active" and _within(at, a.start_date, a.end_date)

    def is_member(self, dataspace_id: str, at: dt.datetime) -> bool:
        return any(
            m.dataspace_id == dataspace_id and _within(at, m.start_date, m.end_date)
            for m in self.dataspaces
        )

    def has_certificate(self, cert: x509.Certificate) -> bool:
        """True if the certificate's SHA-256 is registered for this party (`x5t#s256`)."""
        thumb = x5t_s256(cert)
        return any(c.x5t_s256.lower() == thumb for c in self.certificates)

    def to_info(self) -> dict[str, Any]:
        """The iSHARE party_info object."""
        return {
            "party_id": self.party_id,
            "party_name": self.name,
            "capability_url": self.capability_url,
            "adherence": asdict(self.adherence),
            "roles": [asdict(r) for r in self.roles],
            "certificates": [
                {
                    "subject_name": c.subject_name,
                    "certificate_type": c.certificate_type,
                    "enabled_from": c.enabled_from,
                    "x5c": c.x5c,
                    "x5t#s256": c.x5t_s256,
                }
                for c in self.certificates
            ],
            "dataspaces": [asdict(m) for m in self.dataspaces],
            "auth_registries": [asdict(a) for a in self.auth_registries],
            **({"alsoKnownAs": list(self.also_known_as)} if self.also_known_as else {}),
        }

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> Party:
        """Parse a party_info object (as produced by to_info / an iSHARE registry)."""
        try:
            return cls(
                party_id=info["party_id"],
                name=info.get("party_name") or "",
                adherence=Adherence(**_pick(info["adherence"], Adherence)),
                roles=[Role(**_pick(r, Role)) for r in info.get("roles") or []],
                certificates=[
                    PartyCertificate(
                        subject_name=c.get("subject_name", ""),
                        x5c=c.get("x5c", ""),
                        x5t_s256=c["x5t#s256"],
                        certificate_type=c.get("certificate_type", ""),
                        enabled_from=c.get("enabled_from"),
                    )
                    for c in info.get("certificates") or []
                ],
                dataspaces=[
                    DataspaceMembership(**_pick(m, DataspaceMembership))
                    for m in info.get("dataspaces") or []
                ],
                capability_url=info.get("capability_url"),
                auth_registries=[
                    AuthRegistry(**_pick(a, AuthRegistry))
                    for a in info.get("auth_registries") or []
                    if isinstance(a, dict) and isinstance(a.get("id"), str)
                ],
                also_known_as=[a for a in info.get("alsoKnownAs") or [] if isinstance(a, str)],
            )
        except (KeyError, TypeError) as exc:
            raise RegistryUnavailable("party_info", f"malformed party_info: {exc}") from exc


@dataclass
class TrustedCA:
    """A trusted-list entry (SHA-256 fingerprint uppercase hex)."""

    subject: str
    certificate_fingerprint: str
    validity: str = "valid"
    status: str = "granted"

    @property
    def usable(self) -> bool:
        return self.validity == "valid" and self.status == "granted"


class PartyDirectory(Protocol):
    """What the token endpoint needs from a registry, local or remote."""

    def get_party(self, party_id: str) -> Party | None: ...

    def list_parties(self) -> list[Party]: ...

    def trusted_fingerprints(self) -> set[str]: ...


class Registry:
    """SQLite-backed party records and trusted list (the registry role's data)."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._local = threading.local()
        conn = self._conn()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS party (party_id TEXT PRIMARY KEY, doc BLOB)")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS trusted_ca (fingerprint TEXT PRIMARY KEY, subject TEXT,"
            " validity TEXT NOT NULL, status TEXT NOT NULL)"
        )
        conn.commit()

    def put_party(self, party: Party) -> Party:
        """Insert or replace a party record."""
        validate_party_id(party.party_id)
        for alias in party.also_known_as:
            validate_party_id(alias)
        if party.adherence.status not in STATUSES:
            raise InvalidRequest("adherence_status", f"status must be one of {STATUSES}")
        with self._conn() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO party (party_id, doc) VALUES (?, ?)",
                (party.party_id, orjson.dumps(party.to_info())),
            )
        return party

    def add_party(
        self,
        party_id: str,
        name: str,
        *,
        certificates: list[x509.Certificate] = (),  # type: ignore[assignment]
        status: str = "Active",
        roles: list[str] = ("ServiceConsumer",),  # type: ignore[assignment]
        dataspaces: list[str] = (DSGO_DATASPACE,),  # type: ignore[assignment]
        start_date: dt.datetime | None = None,
        end_date: dt.datetime | None = None,
        capability_url: str | None = None,
        auth_registries: list[str | AuthRegistry] = (),  # type: ignore[assignment]
        also_known_as: list[str] = (),  # type: ignore[assignment]
    ) -> Party:
        """Create (or overwrite) a party from plain arguments."""
        start = _iso(start_date or dt.datetime.now(dt.UTC))
        end = _iso(end_date) if end_date else None
        return self.put_party(
            Party(
                party_id=party_id,
                name=name,
                adherence=Adherence(status, start, end),
                roles=[Role(r, start, end) for r in roles],
                certificates=[PartyCertificate.from_cert(c) for c in certificates],
                dataspaces=[DataspaceMembership(d, start, end) for d in dataspaces],
                capability_url=capability_url,
                auth_registries=[
                    a if isinstance(a, AuthRegistry) else AuthRegistry(a) for a in auth_registries
                ],
                also_known_as=list(also_known_as),
            )
        )

    def get_party(self, party_id: str) -> Party | None:
        """The party with this id, or (iSHARE 3.0) the one that lists it in alsoKnownAs."""
        row = self._conn().execute("SELECT doc FROM party WHERE party_id = ?", (party_id,))
        found = row.fetchone()
        if found:
            return Party.from_info(orjson.loads(found[0]))
        return next((p for p in self.find_parties(also_known_as=party_id)), None)

    def require_party(self, party_id: str) -> Party:
        party = self.get_party(party_id)
        if party is None:
            raise NotFound("party_unknown", f"no party {party_id!r}")
        return party

    def set_status(self, party_id: str, status: str, end_date: dt.datetime | None = None) -> Party:
        """Change adherence status (e.g. Revoked); optional end date."""
        party = self.require_party(party_id)
        party.adherence.status = status
        if end_date is not None:
            party.adherence.end_date = _iso(end_date)
        return self.put_party(party)

    def add_certificate(self, party_id: str, cert: x509.Certificate) -> Party:
        party = self.require_party(party_id)
        if not party.has_certificate(cert):
            party.certificates.append(PartyCertificate.from_cert(cert))
        return self.put_party(party)

    def remove_certificate(self, party_id: str, x5t: str) -> Party:
        party = self.require_party(party_id)
        party.certificates = [c for c in party.certificates if c.x5t_s256.lower() != x5t.lower()]
        return self.put_party(party)

    def find_parties(
        self,
        *,
        party_id: str | None = None,
        name: str | None = None,
        active_only: bool = False,
        also_known_as: str | None = None,
    ) -> list[Party]:
        """Parties matching id / name patterns (`*` wildcard) and an alsoKnownAs id, by id."""
        now = dt.datetime.now(dt.UTC)
        out = []
        for doc in self._party_docs():
            p = Party.from_info(orjson.loads(doc))
            if party_id and not fnmatch.fnmatchcase(p.party_id, party_id):
                continue
            if name and not fnmatch.fnmatch(p.name.lower(), name.lower()):
                continue
            if also_known_as and also_known_as not in p.also_known_as:
                continue
            if active_only and not p.is_active(now):
                continue
            out.append(p)
        return out

    def _party_docs(self) -> list[str]:
        """Every party record as stored (JSON), in party-id order: the one storage-specific step
        of find_parties."""
        return [doc for (doc,) in self._conn().execute("SELECT doc FROM party ORDER BY party_id")]

    def add_trusted_ca(
        self,
        cert: x509.Certificate | None = None,
        *,
        fingerprint: str | None = None,
        subject: str | None = None,
        validity: str = "valid",
        status: str = "granted",
    ) -> TrustedCA:
        """Put a CA (certificate or bare SHA-256 fingerprint) on the trusted list."""
        if cert is not None:
            fingerprint, subject = fingerprint_sha256(cert), cert.subject.rfc4514_string()
        if not fingerprint:
            raise InvalidRequest("fingerprint", "a certificate or fingerprint is required")
        entry = TrustedCA(subject or "", normalise_fingerprint(fingerprint), validity, status)
        with self._conn() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO trusted_ca VALUES (?, ?, ?, ?)",
                (entry.certificate_fingerprint, entry.subject, entry.validity, entry.status),
            )
        return entry

    def set_trusted_ca_status(self, fingerprint: str, status: str, validity: str) -> None:
        with self._conn() as conn:
            cur = conn.execute(
                "UPDATE trusted_ca SET status = ?, validity = ? WHERE fingerprint = ?",
                (status, validity, normalise_fingerprint(fingerprint)),
            )
        if cur.rowcount == 0:
            raise NotFound("trusted_ca_unknown", f"no trusted CA {fingerprint}")

    def trusted_list(self) -> list[TrustedCA]:
        rows = self._conn().execute(
            "SELECT subject, fingerprint, validity, status FROM trusted_ca ORDER BY fingerprint"
        )
        return [TrustedCA(*row) for row in rows.fetchall()]

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10.0)
            conn.execute("PRAGMA busy_timeout=10000")
            self._local.conn = conn
        return conn


def parties_response(
    identity: PartyIdentity,
    parties: list[Party],
    audience: str | None,
    *,
    page: int = 1,
    page_size: int = PAGE_SIZE,
    now: float | None = None,
) -> dict[str, str]:
    """`{"parties_token": JWT}` with parties_info {count, data[]} (one page)."""
    start = (page - 1) * page_size
    info = {
        "count": len(parties),
        "pageCount": max(1, math.ceil(len(parties) / page_size)),
        "data": [v21_party_info(p, identity.party_id) for p in parties[start : start + page_size]],
    }
    return {
        "parties_token": create_signed_response(identity, "parties_info", info, audience, now=now)
    }


def party_response(
    identity: PartyIdentity, party: Party, audience: str | None, *, now: float | None = None
) -> dict[str, str]:
    """`{"party_token": JWT}` with party_info."""
    info = v21_party_info(party, identity.party_id)
    token = create_signed_response(identity, "party_info", info, audience, now=now)
    return {"party_token": token}


OPEN_END = "9999-12-31T23:59:59Z"


def v21_party_info(party: Party, registrar: str) -> dict[str, Any]:
    """party_info as iSHARE 2.1 requires it: the stored record plus `registrar_id`,
    `agreements`, role compliance flags, and an end date (OPEN_END when there is none).

    `party_id` stays a string: 2.1's document makes it an array, but deployed 2.x clients
    (python-ishare's `verify_party`) compare it with a string.
    """
    info = party.to_info()
    info["registrar_id"] = registrar
    info["agreements"] = []
    if info["adherence"].get("end_date") is None:
        info["adherence"]["end_date"] = OPEN_END
    for role in info["roles"]:
        role["end_date"] = role.get("end_date") or OPEN_END
        role.setdefault("compliancy_verified", True)
        role.setdefault("legal_adherence", True)
    return info


def trusted_list_response(
    identity: PartyIdentity,
    entries: list[TrustedCA],
    audience: str | None,
    *,
    now: float | None = None,
) -> dict[str, str]:
    """`{"trusted_list_token": JWT}` with trusted_list[]."""
    items = [asdict(e) for e in entries]
    token = create_signed_response(identity, "trusted_list", items, audience, now=now)
    return {"trusted_list_token": token}


class LocalDirectory:
    """PartyDirectory over an in-process Registry (no cache: changes apply at once)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def get_party(self, party_id: str) -> Party | None:
        return self.registry.get_party(party_id)

    def list_parties(self) -> list[Party]:
        return self.registry.find_parties(active_only=True)

    def trusted_list(self) -> list[TrustedCA]:
        return self.registry.trusted_list()

    def trusted_fingerprints(self) -> set[str]:
        return {e.certificate_fingerprint for e in self.registry.trusted_list() if e.usable}

    def invalidate(self, party_id: str | None = None) -> None:
        """Nothing cached."""


class RegistryClient:
    """PartyDirectory over a remote registry; verifies its signed responses, caches cache_seconds.

    `clock` only drives cache expiry (tests inject one); JWTs are always checked at real time.
    """

    def __init__(
        self,
        url: str,
        registry_party_id: str,
        trusted_sha256: set[str],
        identity: PartyIdentity,
        cache_seconds: float = 60,
        *,
        http: httpx.Client | None = None,
        clock: Any = time.time,
        timeout: float = 3.0,
        negative_seconds: float = 5.0,
    ) -> None:
        self.url = url.rstrip("/")
        # Bounds (issue 17): each call connects and reads within `timeout`; concurrent lookups of
        # one key share one call; unknown parties and failures are remembered `negative_seconds`.
        self.timeout = timeout
        self.negative_seconds = negative_seconds
        self._flight = SingleFlight(
            negative_seconds,
            clock=clock,
            copy_error=lambda e: (
                RegistryUnavailable(e.check, e.description)
                if isinstance(e, RegistryUnavailable)
                else e
            ),
        )
        self.registry_party_id = registry_party_id
        self.trusted_sha256 = set(trusted_sha256)
        self.identity = identity
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._client = TrustClient(identity, self.trusted_sha256, http=http, timeout=timeout)
        self._parties: dict[str, tuple[float, Party | None]] = {}
        self._trusted: tuple[float, list[TrustedCA]] | None = None
        self._lock = threading.Lock()

    def get_party(self, party_id: str) -> Party | None:
        """The party record (None if unknown), at most cache_seconds old."""
        now = self._clock()
        with self._lock:
            hit = self._parties.get(party_id)
        if hit and hit[0] > now:
            return hit[1]
        return self._flight.do(("party", party_id), lambda: self._fetch_party(party_id, now))

    def _fetch_party(self, party_id: str, now: float) -> Party | None:
        resp = self._get(f"/parties/{party_id}")
        party = None
        if resp.status_code != 404:
            info = self._verified(resp, "party_token", "party_info")
            party = Party.from_info(info)
            if not party.known_as(party_id):
                raise RegistryUnavailable("party_info", "registry answered for another party")
        # An unknown party is asked again soon (it may be registered any moment).
        ttl = (
            self.cache_seconds
            if party is not None
            else min(self.negative_seconds, self.cache_seconds)
        )
        with self._lock:
            self._parties[party_id] = (now + ttl, party)
        return party

    def list_parties(self) -> list[Party]:
        """Every Active party the registry lists (all pages); callers cache the result."""
        return self._flight.do(("parties",), self._fetch_parties)

    def _fetch_parties(self) -> list[Party]:
        out: list[Party] = []
        page = 1
        while page <= MAX_LIST_PAGES:
            resp = self._get(f"/parties?eori=*&active_only=true&pageSize=100&page={page}")
            info = self._verified(resp, "parties_token", "parties_info")
            try:
                out += [Party.from_info(p) for p in info["data"]]
                pages = int(info.get("pageCount", 1))
            except (KeyError, TypeError, ValueError) as exc:
                raise RegistryUnavailable("parties_info", f"malformed parties_info: {exc}") from exc
            if page >= pages:
                break
            page += 1
        return out

    def trusted_list(self) -> list[TrustedCA]:
        """The registry's trusted list, at most cache_seconds old."""
        now = self._clock()
        if self._trusted and self._trusted[0] > now:
            return self._trusted[1]
        return self._flight.do(("trusted_list",), lambda: self._fetch_trusted(now))

    def _fetch_trusted(self, now: float) -> list[TrustedCA]:
        items = self._verified(self._get("/trusted_list"), "trusted_list_token", "trusted_list")
        try:
            entries = [TrustedCA(**_pick(i, TrustedCA)) for i in items]
        except TypeError as exc:
            raise RegistryUnavailable("trusted_list", "malformed trusted list") from exc
        self._trusted = (now + self.cache_seconds, entries)
        return entries

    def trusted_fingerprints(self) -> set[str]:
        return {
            normalise_fingerprint(e.certificate_fingerprint)
            for e in self.trusted_list()
            if e.usable
        }

    def invalidate(self, party_id: str | None = None) -> None:
        """Drop cached records (one party, or everything)."""
        with self._lock:
            if party_id is None:
                self._parties.clear()
                self._trusted = None
            else:
                self._parties.pop(party_id, None)
        self._flight.forget(None if party_id is None else ("party", party_id))

    def failing(self) -> dict[str, str]:
        """Lookups that failed within negative_seconds (for /readyz)."""
        return {"/".join(k): reason for k, reason in self._flight.failing().items()}

    def _get(self, path: str) -> httpx.Response:
        try:
            return self._client.request("GET", self.url, path, party_id=self.registry_party_id)
        except (httpx.TimeoutException, UpstreamError) as exc:
            if isinstance(exc, UpstreamError) and not isinstance(
                exc.__cause__, httpx.TimeoutException
            ):
                raise RegistryUnavailable("registry_request", str(exc)) from exc
            raise RegistryUnavailable(
                "registry_timeout", f"{self.url} did not answer within {self.timeout:g} s"
            ) from exc
        except (httpx.HTTPError, TrustError) as exc:
            raise RegistryUnavailable("registry_request", str(exc)) from exc

    def _verified(self, resp: httpx.Response, key: str, claim: str) -> Any:
        if resp.status_code != 200:
            raise RegistryUnavailable("registry_status", f"HTTP {resp.status_code}")
        try:
            token = resp.json()[key]
            verified = verify_signed_response(
                token,
                claim=claim,
                issuer=self.registry_party_id,
                audience=self.identity.party_id,
                trusted_sha256=self.trusted_sha256,
            )
        except (ValueError, KeyError, TypeError, InvalidClient) as exc:
            raise RegistryUnavailable("registry_signature", f"unverifiable {key}: {exc}") from exc
        return verified.claims[claim]


def _within(at: dt.datetime, start: str | None, end: str | None) -> bool:
    if start and at < _parse(start):
        return False
    return not (end and at >= _parse(end))


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _pick(data: dict[str, Any], cls: type) -> dict[str, Any]:
    names = cls.__dataclass_fields__.keys()
    return {k: v for k, v in data.items() if k in names}
