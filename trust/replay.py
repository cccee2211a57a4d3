"""jti replay cache in one SQLite file (WAL) shared by all worker processes of a node.

Entries are keyed per use (namespace, e.g. "token" vs "previous_steps") and issuer, and kept until
exp + skew. The check-and-store is one INSERT that fails on the primary key, so it is atomic across
processes; an expired leftover row is reclaimed by a conditional UPDATE, equally atomic.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from trust.errors import ReplayError

DEFAULT_SKEW = 10.0
_PURGE_EVERY = 1000


class ReplayCache:
    """Persistent seen-jti store; `check_and_store` raises ReplayError on a second use."""

    def __init__(self, path: Path | str, skew: float = DEFAULT_SKEW) -> None:
        self.path = str(path)
        self.skew = skew
        self._local = threading.local()
        self._inserts = 0
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS seen_jti (ns TEXT NOT NULL, key TEXT NOT NULL,"
                " expires REAL NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID"
            )
            conn.commit()
        finally:
            conn.close()

    def check_and_store(
        self, namespace: str, issuer: str, jti: str, exp: float, now: float | None = None
    ) -> None:
        """Record (namespace, issuer, jti) until exp + skew; ReplayError if already recorded."""
        now = time.time() if now is None else now
        key = f"{issuer}\x1f{jti}"
        conn = self._conn()
        expires = float(exp) + self.skew
        try:
            with conn:
                conn.execute(
                    "INSERT INTO seen_jti (ns, key, expires) VALUES (?, ?, ?)",
                    (namespace, key, expires),
                )
        except sqlite3.IntegrityError:
            with conn:
                cur = conn.execute(
                    "UPDATE seen_jti SET expires = ? WHERE ns = ? AND key = ? AND expires < ?",
                    (expires, namespace, key, now),
                )
            if cur.rowcount != 1:
                raise ReplayError("jti_replayed", "this jti was already used") from None
        self._inserts += 1
        if self._inserts % _PURGE_EVERY == 0:
            self.purge(now)

    def purge(self, now: float | None = None) -> int:
        """Delete expired entries; returns how many."""
        now = time.time() if now is None else now
        with self._conn() as conn:
            return conn.execute("DELETE FROM seen_jti WHERE expires < ?", (now,)).rowcount

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = self._connect()
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.isolation_level = "DEFERRED"
        return conn
