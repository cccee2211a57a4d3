"""PostgreSQL connections for the shared trust state: one schema, bounded statements, migrations.

Several hosts of one party share their replay cache, token signing keys, policies, registry and
audit log through one PostgreSQL database. Every connection made here:

- sets `search_path` to the state schema, so all tables (the audit log's too, when its DSN comes
  from `conninfo()`) live in that one schema;
- carries a `statement_timeout` and `lock_timeout`, so a hung or locked database fails a request
  with a 503 instead of holding it without bound, and TCP keepalives to notice a dead peer;
- comes from a small pool per process (a connection serves one thread at a time and never
  crosses a fork), autocommit, with explicit transactions where a change has several steps.

The schema is migrated at start-up: numbered steps applied once, in order, under a transaction
advisory lock, so hosts starting together never race on CREATE TABLE.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from trust.bounds import idle_socket_closed
from trust.errors import TrustError

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
MIGRATION_LOCK = 0x64736773  # "dsgs": serialises schema migrations across hosts

T = TypeVar("T")


class StateUnavailable(TrustError):
    """The shared state database could not be reached or did not answer in time (`temporarily_unavailable`)."""

    error = "temporarily_unavailable"


@dataclass(frozen=True)
class PgSettings:
    """Where the shared state lives and how long a statement may take."""

    dsn: str
    schema: str = "dsgo"
    statement_timeout: float = 5.0  # seconds
    connect_timeout: float = 5.0  # seconds
    pool_size: int = 8  # connections per process

    def __post_init__(self) -> None:
        if not _SCHEMA_NAME.fullmatch(self.schema):
            raise ValueError(f"schema name {self.schema!r}: lowercase letters, digits and _ only")
        if not self.dsn.startswith(("postgresql://", "postgres://")):
            raise ValueError("dsn must be a postgresql:// URL")
        if not 1 <= self.pool_size <= 256:
            raise ValueError("pool_size must be from 1 to 256")

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
    """A bounded pool of connections to the state schema (per process); migrated on first use.

    At most `pool_size` connections per process, so N hosts x W workers stay within the
    server's max_connections; a caller that finds them all busy waits at most the statement
    timeout, then gets StateUnavailable (503) like any other bounded wait.
    """

    def __init__(self, settings: PgSettings, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        self.settings = settings
        self.migrations = list(migrations)
        self._available = threading.Condition(threading.Lock())
        self._idle: list[Any] = []
        self._open = 0
        self._pid = os.getpid()

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

        with self._lease() as conn:
            version = run(conn)
        with _migrated_lock:
            _migrated.add(key)
        return version

    def run(self, work: Callable[[Any], T]) -> T:
        """`work(connection)`; a database failure becomes StateUnavailable (the connection is dropped)."""
        self.migrate()
        with self._lease() as conn:
            return work(conn)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A connection inside one transaction (for read-modify-write steps)."""
        self.migrate()
        with self._lease() as conn, conn.transaction():
            yield conn

    def close(self) -> None:
        """Close the idle connections (busy ones close when they are handed back)."""
        with self._available:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
        for conn in idle:
            _close(conn)

    @contextmanager
    def _lease(self) -> Iterator[Any]:
        conn = self._acquire()
        broken = True
        try:
            yield conn
            broken = False
        except Exception as exc:
            if _is_db_error(exc):
                raise StateUnavailable("state_database", _describe(exc)) from exc
            broken = False  # an error of the caller's (e.g. PolicyNotFound): the connection is fine
            raise
        finally:
            self._release(conn, broken)

    def _acquire(self) -> Any:
        deadline = time.monotonic() + max(self.settings.statement_timeout, 0.1)
        with self._available:
            if self._pid != os.getpid():  # a forked child: the parent's connections are not ours
                self._idle, self._open, self._pid = [], 0, os.getpid()
            while True:
                while self._idle:
                    conn = self._idle.pop()
                    if not server_closed(conn):
                        return conn
                    self._open -= 1  # the server ended it while idle (a restart): not reused
                    _close(conn)
                if self._open < self.settings.pool_size:
                    self._open += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StateUnavailable(
                        "state_pool",
                        f"all {self.settings.pool_size} connections to the state database are busy",
                    )
                self._available.wait(remaining)
        import psycopg

        try:
            return psycopg.connect(self.settings.dsn, autocommit=True, **self.settings._params())
        except BaseException as exc:
            with self._available:
                self._open -= 1
                self._available.notify()
            if isinstance(exc, psycopg.Error):
                raise StateUnavailable(
                    "state_database", f"cannot connect: {_describe(exc)}"
                ) from exc
            raise

    def _release(self, conn: Any, broken: bool) -> None:
        from psycopg.pq import TransactionStatus

        reusable = (
            not broken
            and not conn.closed
            and conn.info.transaction_status == TransactionStatus.IDLE
        )
        with self._available:
            if self._pid != os.getpid():
                return
            if reusable:
                self._idle.append(conn)
            else:
                self._open -= 1
            self._available.notify()
        if not reusable:
            _close(conn)


def server_closed(conn: Any) -> bool:
    """True when a psycopg connection is closed or the server ended its session while idle."""
    try:
        return bool(conn.closed) or idle_socket_closed(conn.pgconn.socket)
    except Exception:  # noqa: BLE001 - a connection too broken to report its socket
        return True


def _close(conn: Any) -> None:
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
