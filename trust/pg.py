"""PostgreSQL connections for the shared trust state: one schema, bounded statements, migrations.

Several hosts of one party share their replay cache, token signing keys, policies, registry and
audit log through one PostgreSQL database. Every connection made here:

- sets `search_path` to the state schema, so all tables (the audit log's too, when its DSN comes
  from `conninfo()`) live in that one schema;
- carries a `statement_timeout` and `lock_timeout`, so a hung or locked database fails a request
  with a 503 instead of holding it without bound, and TCP keepalives to notice a dead peer;
- is per thread and per process (psycopg connections must not be shared by concurrent threads
  nor survive a fork), autocommit, with explicit transactions where a change has several steps.

The schema is migrated at start-up: numbered steps applied once, in order, under a transaction
advisory lock, so hosts starting together never race on CREATE TABLE.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from trust.errors import TrustError

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
MIGRATION_LOCK = 0x64736773  # "dsgs": serialises schema migrations across hosts

T = TypeVar("T")


class StateUnavailable(TrustError):
    """The shared state database could not be reached or did not answer in time (HTTP 503)."""

    status = 503
    error = "temporarily_unavailable"


@dataclass(frozen=True)
class PgSettings:
    """Where the shared state lives and how long a statement may take."""

    dsn: str
    schema: str = "dsgo"
    statement_timeout: float = 5.0  # seconds
    connect_timeout: float = 5.0  # seconds

    def __post_init__(self) -> None:
        if not _SCHEMA_NAME.fullmatch(self.schema):
            raise ValueError(f"schema name {self.schema!r}: lowercase letters, digits and _ only")
        if not self.dsn.startswith(("postgresql://", "postgres://")):
            raise ValueError("dsn must be a postgresql:// URL")

    def options(self) -> str:
        """libpq `options`: the schema and the time bounds every session starts with."""
        ms = max(1, int(self.statement_timeout * 1000))
        return (
            f"-c search_path={self.schema} -c statement_timeout={ms} -c lock_timeout={ms}"
            f" -c idle_in_transaction_session_timeout={max(ms * 4, 10_000)}"
        )

    def conninfo(self) -> str:
        """The DSN as a URL with the options and keepalives added, for code that opens its own
        connections (the audit store): its tables land in the schema, its statements are bounded."""
        query = urlencode({k: str(v) for k, v in self._params().items()}, quote_via=quote)
        return f"{self.dsn}{'&' if '?' in self.dsn else '?'}{query}"

    def _params(self) -> dict[str, Any]:
        return {
            "options": self.options(),
            "connect_timeout": max(1, int(round(self.connect_timeout))),
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "application_name": "dsgo-node",
        }


# (version, statements). Append new steps; never change an applied one.
Migration = tuple[int, Sequence[str]]

MIGRATIONS: list[Migration] = [
    (
        1,
        (
            "CREATE TABLE IF NOT EXISTS seen_jti (ns TEXT NOT NULL, key TEXT NOT NULL,"
            " expires DOUBLE PRECISION NOT NULL, PRIMARY KEY (ns, key))",
            "CREATE INDEX IF NOT EXISTS seen_jti_expires ON seen_jti (expires)",
            "CREATE TABLE IF NOT EXISTS token_keys (generation BIGINT PRIMARY KEY,"
            " kid TEXT NOT NULL UNIQUE, private_pem TEXT NOT NULL, public_pem TEXT NOT NULL,"
            " created DOUBLE PRECISION NOT NULL)",
            "CREATE TABLE IF NOT EXISTS policies (seq BIGSERIAL UNIQUE, id TEXT PRIMARY KEY,"
            " issuer TEXT NOT NULL, subject TEXT NOT NULL, not_before BIGINT NOT NULL,"
            " not_on_or_after BIGINT NOT NULL, evidence TEXT NOT NULL, created BIGINT NOT NULL,"
            " revoked BIGINT)",
            "CREATE INDEX IF NOT EXISTS policies_subject ON policies (subject)"
            " WHERE revoked IS NULL",
            "CREATE INDEX IF NOT EXISTS policies_issuer ON policies (issuer) WHERE revoked IS NULL",
            "CREATE TABLE IF NOT EXISTS policy_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
            "INSERT INTO policy_meta (key, value) VALUES ('version', 0) ON CONFLICT DO NOTHING",
            "CREATE TABLE IF NOT EXISTS party (party_id TEXT PRIMARY KEY, doc TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS trusted_ca (fingerprint TEXT PRIMARY KEY, subject TEXT,"
            " validity TEXT NOT NULL, status TEXT NOT NULL)",
        ),
    ),
]

_migrated: set[tuple[str, str]] = set()
_migrated_lock = threading.Lock()


class PgState:
    """Thread- and process-local connections to the state schema; migrated on first use."""

    def __init__(self, settings: PgSettings, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        self.settings = settings
        self.migrations = list(migrations)
        self._local = threading.local()

    def migrate(self) -> int:
        """Create the schema and apply missing migrations (idempotent); the schema version."""
        key = (self.settings.dsn, self.settings.schema)
        with _migrated_lock:
            done = key in _migrated
        if done:
            return max(v for v, _ in self.migrations)
        schema = self.settings.schema

        def run(conn: Any) -> int:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                conn.execute(f"SET search_path TO {schema}")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                    " applied TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                applied = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
                for version, statements in sorted(self.migrations):
                    if version in applied:
                        continue
                    for stmt in statements:
                        conn.execute(stmt)
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            return max(v for v, _ in self.migrations)

        version = self._run(run, migrating=True)
        with _migrated_lock:
            _migrated.add(key)
        return version

    def run(self, work: Callable[[Any], T]) -> T:
        """`work(connection)`; a database failure becomes StateUnavailable and drops the connection."""
        return self._run(work)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A connection inside one transaction (for read-modify-write steps)."""
        conn = self._connection()
        try:
            with conn.transaction():
                yield conn
        except Exception as exc:
            if _is_db_error(exc):
                self._drop()
                raise StateUnavailable("state_database", _describe(exc)) from exc
            raise

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        self._drop()

    def _run(self, work: Callable[[Any], T], migrating: bool = False) -> T:
        try:
            return work(self._connection(migrating))
        except Exception as exc:
            if _is_db_error(exc):
                self._drop()
                raise StateUnavailable("state_database", _describe(exc)) from exc
            raise

    def _connection(self, migrating: bool = False) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid() and not conn.closed:
            return conn
        if not migrating:
            self.migrate()
        import psycopg

        try:
            conn = psycopg.connect(self.settings.dsn, autocommit=True, **self.settings._params())
        except psycopg.Error as exc:
            raise StateUnavailable("state_database", f"cannot connect: {_describe(exc)}") from exc
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None and self._local.pid == os.getpid():
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail again
                pass


def _is_db_error(exc: Exception) -> bool:
    import psycopg

    return isinstance(exc, psycopg.Error)


def _describe(exc: Exception) -> str:
    """One line, without the DSN (which may hold a password)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"postgres(?:ql)?://\S+", "postgresql://…", text)[:300]
