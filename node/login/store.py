"""Server-side login state in SQLite (the data dir, like the node's other state): sessions and
started logins. Only a hash of the session id is stored, so a copy of the file opens no session."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS login_session (
  sid_hash TEXT PRIMARY KEY, party_id TEXT NOT NULL, person TEXT NOT NULL, name TEXT NOT NULL,
  role TEXT, provider TEXT NOT NULL, csrf TEXT NOT NULL, created REAL NOT NULL,
  last_seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS login_pending (
  state TEXT PRIMARY KEY, provider TEXT NOT NULL, nonce TEXT NOT NULL, verifier TEXT NOT NULL,
  next TEXT NOT NULL, created REAL NOT NULL
);
"""
_TOUCH_EVERY = 15.0  # seconds: last_seen is written at most this often per session


@dataclass(frozen=True)
class Session:
    """A logged-in person: who, for which party, in which role, and the session's CSRF token."""

    sid_hash: str
    party_id: str
    person: str  # provider:subject, as audit entries name the person
    name: str  # for display
    role: str | None  # steward / auditor for the node's own staff, None otherwise
    provider: str
    csrf: str
    created: float
    last_seen: float


@dataclass(frozen=True)
class Pending:
    """A login sent to a provider and not yet back: what the callback must match."""

    state: str
    provider: str
    nonce: str
    verifier: str  # the PKCE code_verifier
    next: str
    created: float


def sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class LoginStore:
    """Sessions with idle and absolute expiry, and one-time started logins."""

    def __init__(
        self,
        path: Path | str,
        *,
        idle_seconds: float,
        max_seconds: float,
        pending_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = str(path)
        self.idle = idle_seconds
        self.max = max_seconds
        self.pending_seconds = pending_seconds
        self.clock = clock
        self._lock = threading.Lock()
        with self._connect() as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    # --- started logins -------------------------------------------------------------------

    def start(self, provider: str, nonce: str, verifier: str, next_path: str) -> str:
        """Record a login going to `provider`; returns its state."""
        state = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock, self._connect() as db:
            db.execute("DELETE FROM login_pending WHERE created < ?", (now - self.pending_seconds,))
            db.execute(
                "INSERT INTO login_pending VALUES (?, ?, ?, ?, ?, ?)",
                (state, provider, nonce, verifier, next_path, now),
            )
        return state

    def take(self, state: str) -> Pending | None:
        """The started login with this state, removed so it is used once; None if unknown/old."""
        with self._lock, self._connect() as db:
            row = db.execute(
                "DELETE FROM login_pending WHERE state = ? RETURNING *", (state,)
            ).fetchone()
        if row is None:
            return None
        pending = Pending(*row)
        if pending.created < self.clock() - self.pending_seconds:
            return None
        return pending

    # --- sessions ---------------------------------------------------------------------------

    def create(self, party_id: str, person: str, name: str, role: str | None, provider: str) -> str:
        """A new session; returns the session id (only its hash is stored)."""
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock, self._connect() as db:
            db.execute(  # sessions nobody came back to are removed here, not kept forever
                "DELETE FROM login_session WHERE last_seen < ? OR created < ?",
                (now - self.idle, now - self.max),
            )
            db.execute(
                "INSERT INTO login_session VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sid_hash(sid),
                    party_id,
                    person,
                    name,
                    role,
                    provider,
                    secrets.token_urlsafe(32),
                    now,
                    now,
                ),
            )
        return sid

    def get(self, sid: str) -> Session | str | None:
        """The live session; "session_expired" (and removed) past its idle or absolute limit; None."""
        key = sid_hash(sid)
        with self._connect() as db:
            row = db.execute("SELECT * FROM login_session WHERE sid_hash = ?", (key,)).fetchone()
        if row is None:
            return None
        session = Session(*row)
        now = self.clock()
        if now - session.last_seen > self.idle or now - session.created > self.max:
            self.delete_hash(key)
            return "session_expired"
        if now - session.last_seen > min(_TOUCH_EVERY, self.idle / 4):
            with self._lock, self._connect() as db:
                db.execute("UPDATE login_session SET last_seen = ? WHERE sid_hash = ?", (now, key))
        return session

    def delete_hash(self, key: str) -> None:
        with self._lock, self._connect() as db:
            db.execute("DELETE FROM login_session WHERE sid_hash = ?", (key,))

    def count(self) -> int:
        """Live and not yet purged sessions (for tests and health)."""
        with self._connect() as db:
            return int(db.execute("SELECT count(*) FROM login_session").fetchone()[0])
