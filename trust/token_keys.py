"""Access-token signing keys with rotation: stored once per party, shared by all its hosts.

Every key has a generation number, a `kid` (its RFC 7638 JWK thumbprint) and a creation time.
The newest generation signs; when it is older than `rotate_after`, the first host to notice
creates the next generation with `INSERT … ON CONFLICT DO NOTHING` on the generation number and
then reads back whichever key won, so hosts that rotate at the same moment agree on one key.
A key stays available for verification (and in the JWKS) until every token it can have signed
has expired: `token_lifetime` after the next generation took over, plus a margin; after that it
is deleted. Tokens carry the `kid`, so a verifier looks the key up by it in the shared store.

The keys are stored as unencrypted PKCS#8 PEM: the state store must be protected like the key
files of the data directory it replaces.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from trust.ishare_jwt import b64url_encode
from trust.pg import PgState

ROTATE_AFTER = 7 * 24 * 3600.0  # a week
TOKEN_LIFETIME = 3600.0  # trust.access_token.EXPIRES_IN
RETAIN_MARGIN = 300.0  # clock differences between hosts, verifier leeway


@dataclass(frozen=True)
class KeyRow:
    """One stored key; `private_pem` is empty when only the public half was read."""

    generation: int
    kid: str
    private_pem: str
    public_pem: str
    created: float


def rsa_jwk(public: rsa.RSAPublicKey) -> dict[str, str]:
    """The RSA public key as a JWK (kty, n, e)."""
    nums = public.public_numbers()

    def b64int(value: int) -> str:
        return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    return {"kty": "RSA", "n": b64int(nums.n), "e": b64int(nums.e)}


def thumbprint(public: rsa.RSAPublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): the key's kid."""
    jwk = rsa_jwk(public)
    canonical = f'{{"e":"{jwk["e"]}","kty":"RSA","n":"{jwk["n"]}"}}'
    return b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())


def new_key_row(generation: int, created: float) -> KeyRow:
    """A fresh RSA-2048 key for `generation` (RS256; see trust.access_token for why RSA)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    return KeyRow(generation, thumbprint(key.public_key()), private_pem, public_pem, created)


class TokenKeys:
    """The rotation rules over a storage of KeyRows (`_newest`, `_insert`, `_public`, ...)."""

    def __init__(
        self,
        *,
        rotate_after: float = ROTATE_AFTER,
        token_lifetime: float = TOKEN_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if rotate_after <= 0:
            raise ValueError("rotate_after must be positive")
        self.rotate_after = float(rotate_after)
        self.token_lifetime = float(token_lifetime)
        self._clock = clock
        self._lock = threading.Lock()
        self._current: tuple[KeyRow, rsa.RSAPrivateKey] | None = None
        self._public: dict[str, rsa.RSAPublicKey] = {}

    def signing_key(self, now: float | None = None) -> tuple[str, rsa.RSAPrivateKey]:
        """(kid, key) of the newest generation, creating the next one when it is due."""
        now = self._clock() if now is None else now
        with self._lock:
            current = self._current
            if current is not None and now < current[0].created + self.rotate_after:
                return current[0].kid, current[1]
            row = self._newest()
            if row is None or now >= row.created + self.rotate_after:
                generation = 1 if row is None else row.generation + 1
                self._insert(new_key_row(generation, now))
                row = self._newest()
                assert row is not None
                self._delete_expired(now)
                self._public.clear()
            key = serialization.load_pem_private_key(row.private_pem.encode(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError("the stored token key is not an RSA key")
            self._current = (row, key)
            self._public[row.kid] = key.public_key()
            return row.kid, key

    def public_key(self, kid: str) -> rsa.RSAPublicKey | None:
        """The key with this kid (cached; a kid never changes its key), None if unknown."""
        cached = self._public.get(kid)
        if cached is not None:
            return cached
        pem = self._public_pem(kid)
        if pem is None:
            return None
        public = serialization.load_pem_public_key(pem.encode())
        if not isinstance(public, rsa.RSAPublicKey):
            return None
        with self._lock:
            self._public[kid] = public
        return public

    def jwks(self, now: float | None = None) -> dict[str, Any]:
        """Every key whose tokens may still be valid, newest first, as a JWK Set."""
        now = self._clock() if now is None else now
        rows = sorted(self._all_public(), key=lambda r: -r.generation)
        keys = []
        for i, row in enumerate(rows):
            successor = rows[i - 1] if i > 0 else None
            if successor is not None and self._expired(row, successor, now):
                continue
            public = serialization.load_pem_public_key(row.public_pem.encode())
            assert isinstance(public, rsa.RSAPublicKey)
            keys.append({**rsa_jwk(public), "kid": row.kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def _expired(self, row: KeyRow, successor: KeyRow, now: float) -> bool:
        """No token signed by `row` can still be valid once its successor took over long enough."""
        return now >= successor.created + self.token_lifetime + RETAIN_MARGIN

    def _delete_expired(self, now: float) -> None:
        """Delete every generation none of whose tokens can still be valid."""
        rows = sorted(self._all_public(), key=lambda r: r.generation)
        last_expired = None
        for row, successor in zip(rows, rows[1:], strict=False):
            if self._expired(row, successor, now):
                last_expired = row.generation
        if last_expired is not None:
            self._delete_older_than(last_expired + 1)

    # storage, implemented per backend ----------------------------------------------------------

    def _newest(self) -> KeyRow | None:
        raise NotImplementedError

    def _insert(self, row: KeyRow) -> None:
        """Store `row` unless its generation exists already (then another host won)."""
        raise NotImplementedError

    def _public_pem(self, kid: str) -> str | None:
        raise NotImplementedError

    def _all_public(self) -> list[KeyRow]:
        raise NotImplementedError

    def _delete_older_than(self, generation: int) -> None:
        """Delete generations below `generation` (their tokens have all expired)."""
        raise NotImplementedError


_SQLITE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS token_keys (generation INTEGER PRIMARY KEY, kid TEXT NOT NULL"
    " UNIQUE, private_pem TEXT NOT NULL, public_pem TEXT NOT NULL, created REAL NOT NULL)"
)


class SqliteTokenKeys(TokenKeys):
    """Token keys in one SQLite file of the data directory (every worker process shares it)."""

    def __init__(self, path: Path | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = str(path)
        self._local = threading.local()
        with self._db() as db:
            db.execute(_SQLITE_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    def _newest(self) -> KeyRow | None:
        found = (
            self._db()
            .execute(
                "SELECT generation, kid, private_pem, public_pem, created FROM token_keys"
                " ORDER BY generation DESC LIMIT 1"
            )
            .fetchone()
        )
        return KeyRow(*found) if found else None

    def _insert(self, row: KeyRow) -> None:
        with self._db() as db:
            db.execute(
                "INSERT OR IGNORE INTO token_keys VALUES (?, ?, ?, ?, ?)",
                (row.generation, row.kid, row.private_pem, row.public_pem, row.created),
            )

    def _public_pem(self, kid: str) -> str | None:
        found = (
            self._db().execute("SELECT public_pem FROM token_keys WHERE kid = ?", (kid,)).fetchone()
        )
        return found[0] if found else None

    def _all_public(self) -> list[KeyRow]:
        rows = self._db().execute("SELECT generation, kid, '', public_pem, created FROM token_keys")
        return [KeyRow(*r) for r in rows.fetchall()]

    def _delete_older_than(self, generation: int) -> None:
        with self._db() as db:
            db.execute("DELETE FROM token_keys WHERE generation < ?", (generation,))


class PostgresTokenKeys(TokenKeys):
    """Token keys in the shared state schema: every host signs with and verifies the same keys."""

    def __init__(self, state: PgState, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state = state
        state.migrate()

    def _newest(self) -> KeyRow | None:
        found = self.state.run(
            lambda c: c.execute(
                "SELECT generation, kid, private_pem, public_pem, created FROM token_keys"
                " ORDER BY generation DESC LIMIT 1"
            ).fetchone()
        )
        return KeyRow(int(found[0]), *found[1:]) if found else None

    def _insert(self, row: KeyRow) -> None:
        self.state.run(
            lambda c: c.execute(
                "INSERT INTO token_keys VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (row.generation, row.kid, row.private_pem, row.public_pem, row.created),
            )
        )

    def _public_pem(self, kid: str) -> str | None:
        found = self.state.run(
            lambda c: c.execute(
                "SELECT public_pem FROM token_keys WHERE kid = %s", (kid,)
            ).fetchone()
        )
        return found[0] if found else None

    def _all_public(self) -> list[KeyRow]:
        rows = self.state.run(
            lambda c: c.execute(
                "SELECT generation, kid, '', public_pem, created FROM token_keys"
            ).fetchall()
        )
        return [KeyRow(int(r[0]), *r[1:]) for r in rows]

    def _delete_older_than(self, generation: int) -> None:
        self.state.run(
            lambda c: c.execute("DELETE FROM token_keys WHERE generation < %s", (generation,))
        )
