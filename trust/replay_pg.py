"""jti replay cache in PostgreSQL, shared by every host of a party.

The check and the store are one statement: `INSERT … ON CONFLICT DO UPDATE … WHERE expired`.
A jti nobody has seen is inserted; a jti seen before and still within exp + skew is neither
inserted nor updated, so the statement returns no row and the caller is refused. PostgreSQL
decides the conflict under the row's lock, so two hosts that submit the same assertion at the
same moment get exactly one acceptance (no check-then-insert race). An expired leftover with
the same key is reclaimed by the same statement, as the SQLite cache does.
"""

from __future__ import annotations

import time
from typing import Any

from trust.errors import ReplayError
from trust.pg import PgState
from trust.replay import DEFAULT_SKEW

_PURGE_EVERY = 1000
_CHECK_AND_STORE = (
    "INSERT INTO seen_jti (ns, key, expires) VALUES (%s, %s, %s)"
    " ON CONFLICT (ns, key) DO UPDATE SET expires = EXCLUDED.expires"
    " WHERE seen_jti.expires < %s RETURNING 1"
)


class PostgresReplayCache:
    """`ReplayStore` over the shared state schema (table seen_jti)."""

    def __init__(self, state: PgState, skew: float = DEFAULT_SKEW) -> None:
        self.state = state
        self.skew = skew
        self._inserts = 0
        state.migrate()

    def check_and_store(
        self, namespace: str, issuer: str, jti: str, exp: float, now: float | None = None
    ) -> None:
        """Record (namespace, issuer, jti) until exp + skew; ReplayError if already recorded."""
        now = time.time() if now is None else now
        key = f"{issuer}\x1f{jti}"
        expires = float(exp) + self.skew

        def run(conn: Any) -> bool:
            return conn.execute(_CHECK_AND_STORE, (namespace, key, expires, now)).fetchone()

        if self.state.run(run) is None:
            raise ReplayError("jti_replayed", "this jti was already used")
        self._inserts += 1
        if self._inserts % _PURGE_EVERY == 0:
            self.purge(now)

    def purge(self, now: float | None = None) -> int:
        """Delete expired entries; returns how many."""
        now = time.time() if now is None else now
        return self.state.run(
            lambda conn: conn.execute("DELETE FROM seen_jti WHERE expires < %s", (now,)).rowcount
        )
