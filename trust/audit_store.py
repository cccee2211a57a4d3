"""Storage for the audit log: SQLite (default, WAL) or PostgreSQL; appends are serialised.

Each store keeps one connection per process (reopened after fork). An append reads the chain
head and inserts the next row in one write transaction (`BEGIN IMMEDIATE` on SQLite, a
transaction-scoped advisory lock on PostgreSQL), so several worker processes can append safely.
SQLite fast path: a process that appended last remembers the head and inserts `seq + 1` in a
single autocommit statement; `seq` is the primary key, so if another process got there first the
insert fails and the append falls back to the `BEGIN IMMEDIATE` path (one statement instead of
four per append when one worker is busy).
`append_many` writes a batch (group commit, used by the audit log's writer thread) in one such
transaction: the head is re-read under the write lock, so it is safe across processes too, and
either every row of the batch is committed or none is.
SQLite runs with `synchronous=NORMAL` by default: in WAL mode a commit is not fsynced, so an OS
crash or power loss may lose the last commits, but a process crash loses nothing; set
`synchronous="FULL"` to fsync every append.
The writer never checkpoints the WAL itself: SQLite's automatic checkpoint fsyncs the database
inside the append that crosses the threshold, holding every other append for milliseconds.
A thread per process (`_WalCheckpointer`) copies the WAL into the database off the request path,
and only briefly holds appends back, when the WAL has grown large, so that it can start over.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from trust.bounds import Breaker, BreakerOpen, socket_deadline
from trust.pg import server_closed

GENESIS_HASH = "0" * 64


class AuditStoreError(Exception):
    """The store could not read or write (the log turns this into AuditUnavailable)."""


@dataclass(frozen=True)
class Row:
    """One stored entry: indexed columns plus the canonical JSON body the hash covers."""

    seq: int
    time: str
    kind: str
    party: str | None
    hash: str
    body: str


# build(seq, prev_hash) -> Row; called inside the write transaction.
RowBuilder = Callable[[int, str], Row]


class AuditStore(Protocol):
    def append(self, build: RowBuilder) -> Row: ...

    # Optional (stores with it get group commit): all rows in one transaction, or none.
    # def append_many(self, builds: Sequence[RowBuilder]) -> list[Row]: ...

    def head(self) -> Row | None: ...

    def add_checkpoint(self, seq: int, jws: str) -> None: ...

    def checkpoints(self) -> list[tuple[int, str]]: ...

    def rows(
        self,
        *,
        since: str | None = None,
        until: str | None = None,
        party: str | None = None,
        kind: str | None = None,
        after_seq: int = 0,
        limit: int | None = None,
    ) -> Iterator[Row]: ...

    def close(self) -> None: ...


class NullAuditStore:
    """A writer that keeps nothing: the baseline for benchmarks, never for production."""

    def append(self, build: RowBuilder) -> Row:
        return build(1, GENESIS_HASH)

    def head(self) -> Row | None:
        return None

    def add_checkpoint(self, seq: int, jws: str) -> None:
        return None

    def checkpoints(self) -> list[tuple[int, str]]:
        return []

    def rows(self, **_filters) -> Iterator[Row]:
        return iter(())

    def close(self) -> None:
        return None


# Only the (monotonic, cheap to extend) time index: a second index halved append throughput;
# party/kind filters scan within the time window, which suits rare auditor reads.
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS audit_log (seq INTEGER PRIMARY KEY, time TEXT NOT NULL,"
    " kind TEXT NOT NULL, party TEXT, hash TEXT NOT NULL, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS audit_log_time ON audit_log (time)",
    "CREATE TABLE IF NOT EXISTS audit_checkpoint (seq INTEGER PRIMARY KEY, jws TEXT NOT NULL)",
)

_INSERT = "INSERT INTO audit_log (seq, time, kind, party, hash, body) VALUES (?, ?, ?, ?, ?, ?)"
_HEAD = "SELECT seq, time, kind, party, hash, body FROM audit_log ORDER BY seq DESC LIMIT 1"
_HEAD_LINK = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
# Largest batch written as one multi-row INSERT (each size is one cached prepared statement).
_MULTI_ROW_MAX = 64


def _multi_insert(n: int) -> str:
    return _INSERT + ", (?, ?, ?, ?, ?, ?)" * (n - 1)


class _WalCheckpointer:
    """Copies the audit WAL into the database in its own thread and connection.

    Woken every `wake_after` appends (or after `idle_seconds`), it runs a PASSIVE checkpoint,
    which never blocks a writer. Under steady appends such a checkpoint is never complete, so
    the WAL could grow without end; once it holds `restart_frames` frames, one more checkpoint
    runs with the store's lock held (only the frames added meanwhile are left to copy), and the
    next append starts the WAL over. If checkpointing fails, the writer checkpoints for itself
    again (SQLite's own automatic checkpoint) and this thread ends. It holds the store weakly:
    a store dropped without close() ends its thread at the next wake-up.
    """

    wake_after = 300  # appends (about 1,000 WAL frames, SQLite's own threshold)
    restart_frames = 4000  # about 16 MB of WAL before it starts over
    idle_seconds = 5.0

    def __init__(self, store: SqliteAuditStore) -> None:
        self._store = weakref.ref(store)
        self._path, self._lock = store.path, store._lock
        self.pending = 0  # appends since the last wake-up; counted under the store's lock
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="audit-wal", daemon=True)
        self._thread.start()

    def appended(self, n: int) -> None:
        """Called with the store's lock held, after `n` rows were committed."""
        self.pending += n
        if self.pending >= self.wake_after:
            self.pending = 0
            self._wake.set()

    def stop(self) -> None:
        self._stop = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(10)

    def _run(self) -> None:
        conn = None
        try:
            conn = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False, timeout=30
            )
            conn.execute("PRAGMA busy_timeout=30000")
            while True:
                self._wake.wait(self.idle_seconds)
                self._wake.clear()
                if self._stop or self._store() is None:
                    return
                _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if frames >= self.restart_frames:
                    with self._lock:
                        if self._stop:
                            return
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            print(
                f"audit WAL checkpointer: {exc}; appends checkpoint for themselves", file=sys.stderr
            )
            store = self._store()
            if store is not None:
                store._checkpoint_inline()
        finally:
            if conn is not None:
                conn.close()


class SqliteAuditStore:
    """SQLite in WAL mode; `read_only=True` opens the file for auditors (appends then fail)."""

    def __init__(
        self, path: str | Path, *, synchronous: str = "NORMAL", read_only: bool = False
    ) -> None:
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"bad synchronous mode {synchronous!r}")
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        self.read_only = read_only
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1  # connected lazily: an unopenable store fails the first append
        self._head: tuple[int, str] | None = None  # this process's last append (seq, hash)
        self._wal: _WalCheckpointer | None = None

    def append(self, build: RowBuilder) -> Row:
        with self._lock:
            try:
                conn = self._connection()
                if self._head is not None:
                    row = build(self._head[0] + 1, self._head[1])
                    try:
                        conn.execute(
                            _INSERT, (row.seq, row.time, row.kind, row.party, row.hash, row.body)
                        )
                        self._head = (row.seq, row.hash)
                        self._appended(1)
                        return row
                    except sqlite3.IntegrityError:
                        pass  # another process appended since: take the slow path
                row = self._append_locked(conn, build)
            except sqlite3.Error as exc:
                self._head = None
                raise AuditStoreError(f"sqlite append failed: {exc}") from exc
            self._head = (row.seq, row.hash)
            self._appended(1)
            return row

    def append_many(self, builds: Sequence[RowBuilder]) -> list[Row]:
        """Chain and insert a batch atomically: all rows or none.

        Fast path as for `append`: after this process's last append, one multi-row INSERT
        (one statement, so one implicit transaction, and one sqlite call for the whole batch)
        at the remembered head; a primary-key conflict means another process appended since,
        and the batch is re-chained under `BEGIN IMMEDIATE` from the re-read head.
        """
        with self._lock:
            try:
                conn = self._connection()
                if self._head is not None and len(builds) <= _MULTI_ROW_MAX:
                    seq, prev = self._head
                    rows = []
                    for build in builds:
                        row = build(seq + 1, prev)
                        rows.append(row)
                        seq, prev = row.seq, row.hash
                    try:
                        conn.execute(
                            _multi_insert(len(rows)),
                            [
                                v
                                for r in rows
                                for v in (r.seq, r.time, r.kind, r.party, r.hash, r.body)
                            ],
                        )
                        self._head = (seq, prev)
                        self._appended(len(rows))
                        return rows
                    except sqlite3.IntegrityError:
                        pass  # another process appended since: re-chain from the stored head
                conn.execute("BEGIN IMMEDIATE")
                try:
                    head = conn.execute(_HEAD_LINK).fetchone()
                    seq, prev = (head[0], head[1]) if head else (0, GENESIS_HASH)
                    rows = []
                    for build in builds:
                        row = build(seq + 1, prev)
                        rows.append(row)
                        seq, prev = row.seq, row.hash
                    conn.executemany(
                        _INSERT, [(r.seq, r.time, r.kind, r.party, r.hash, r.body) for r in rows]
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                self._head = None
                raise AuditStoreError(f"sqlite append failed: {exc}") from exc
            self._head = (seq, prev)
            self._appended(len(rows))
            return rows

    def _append_locked(self, conn: sqlite3.Connection, build: RowBuilder) -> Row:
        conn.execute("BEGIN IMMEDIATE")
        try:
            head = conn.execute(_HEAD_LINK).fetchone()
            row = build(head[0] + 1, head[1]) if head else build(1, GENESIS_HASH)
            conn.execute(_INSERT, (row.seq, row.time, row.kind, row.party, row.hash, row.body))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return row

    def head(self) -> Row | None:
        with self._lock:
            try:
                found = self._connection().execute(_HEAD).fetchone()
            except sqlite3.Error as exc:
                raise AuditStoreError(f"sqlite read failed: {exc}") from exc
        return Row(*found) if found else None

    def add_checkpoint(self, seq: int, jws: str) -> None:
        with self._lock:
            try:
                self._connection().execute(
                    "INSERT OR IGNORE INTO audit_checkpoint (seq, jws) VALUES (?, ?)", (seq, jws)
                )
            except sqlite3.Error as exc:
                raise AuditStoreError(f"sqlite checkpoint failed: {exc}") from exc

    def checkpoints(self) -> list[tuple[int, str]]:
        with self._lock:
            try:
                cur = self._connection().execute(
                    "SELECT seq, jws FROM audit_checkpoint ORDER BY seq"
                )
                return [(int(s), str(j)) for s, j in cur.fetchall()]
            except sqlite3.Error as exc:
                raise AuditStoreError(f"sqlite read failed: {exc}") from exc

    def rows(
        self,
        *,
        since: str | None = None,
        until: str | None = None,
        party: str | None = None,
        kind: str | None = None,
        after_seq: int = 0,
        limit: int | None = None,
    ) -> Iterator[Row]:
        sql, params = _select(since, until, party, kind, after_seq, limit, "?")
        with self._lock:
            try:
                fetched = self._connection().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise AuditStoreError(f"sqlite read failed: {exc}") from exc
        return iter([Row(*r) for r in fetched])

    def close(self) -> None:
        wal, self._wal = self._wal, None
        if wal is not None and self._pid == os.getpid():
            wal.stop()  # before the lock: its last step may be waiting for it
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn, self._head = None, None

    def _appended(self, n: int) -> None:
        if self._wal is not None:
            self._wal.appended(n)

    def _checkpoint_inline(self) -> None:
        """The checkpointer failed: let appends checkpoint the WAL themselves, as SQLite does."""
        with self._lock:
            self._wal = None
            if self._conn is not None and self._pid == os.getpid():
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA wal_autocheckpoint=1000")

    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        try:
            if self.read_only:
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                conn = sqlite3.connect(
                    uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30
                )
            else:
                conn = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False, timeout=30
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={self.synchronous}")
                for stmt in _SCHEMA:
                    conn.execute(stmt)
                conn.execute("PRAGMA wal_autocheckpoint=0")  # _WalCheckpointer does it
            conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.Error as exc:
            raise AuditStoreError(f"cannot open audit database {self.path}: {exc}") from exc
        self._conn, self._pid, self._head = conn, os.getpid(), None
        if not self.read_only:
            self._wal = _WalCheckpointer(self)  # a forked child starts its own
        return conn


class PostgresAuditStore:
    """PostgreSQL via psycopg 3; appends take `pg_advisory_xact_lock` to keep the chain linear.

    Every call is bounded (trust/bounds.py): `timeout` is the server's statement and lock
    timeout and also the client's own deadline (a stopped server never answers, so only the
    client can give up), `connect_timeout` bounds connecting, TCP keepalives find a dead peer,
    and after a failure the breaker refuses at once for `cool_down` seconds.
    """

    LOCK_KEY = 0x64736770  # "dsgp"

    def __init__(
        self,
        conninfo: str,
        *,
        timeout: float = 2.0,
        connect_timeout: float = 2.0,
        cool_down: float = 1.0,
    ) -> None:
        self.conninfo = conninfo
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.breaker = Breaker("audit database", cool_down)
        self._lock = threading.Lock()
        self._conn = None
        self._pid = -1  # connected lazily; the schema is created on first connect

    @contextlib.contextmanager
    def _bounded(self, what: str) -> Iterator[Any]:
        """The connection for one call, within the breaker, the lock and the deadline."""
        try:
            self.breaker.before()
        except BreakerOpen as exc:
            raise AuditStoreError(f"postgres {what} refused: {exc}") from None
        if not self._lock.acquire(timeout=self.timeout):
            self.breaker.failed("a previous call did not return")
            raise AuditStoreError(f"postgres {what}: busy for more than {self.timeout:g} s")
        fired = None
        started = time.monotonic()
        try:
            conn = self._connection()
            with socket_deadline(conn.pgconn.socket, self.timeout) as fired:
                yield conn
            self.breaker.succeeded()
        except AuditStoreError as exc:
            self._failed(started, str(exc))
            raise
        except Exception as exc:
            if not _is_db_error(exc):
                raise
            self._reset()
            reason = f"no answer within {self.timeout:g} s" if fired and fired.is_set() else exc
            self._failed(started, str(reason))
            raise AuditStoreError(f"postgres {what} failed: {reason}") from exc
        finally:
            self._lock.release()

    def _failed(self, started: float, reason: str) -> None:
        """Open the breaker when the failure cost time (a hang, a connect timeout); an error the
        server answered at once (a dropped backend, a refused connection) is retried next call."""
        if time.monotonic() - started >= self.timeout / 2:
            self.breaker.failed(reason)
        else:
            self.breaker.succeeded()

    def append(self, build: RowBuilder) -> Row:
        with self._bounded("append") as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.LOCK_KEY,))
            head = conn.execute(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            row = build(head[0] + 1, head[1]) if head else build(1, GENESIS_HASH)
            conn.execute(
                "INSERT INTO audit_log (seq, time, kind, party, hash, body)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (row.seq, row.time, row.kind, row.party, row.hash, row.body),
            )
        return row

    def append_many(self, builds: Sequence[RowBuilder]) -> list[Row]:
        """Chain and insert a batch in one transaction under the advisory lock."""
        with self._bounded("append") as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.LOCK_KEY,))
            head = conn.execute(_HEAD_LINK).fetchone()
            seq, prev = (int(head[0]), head[1]) if head else (0, GENESIS_HASH)
            rows = []
            for build in builds:
                row = build(seq + 1, prev)
                rows.append(row)
                seq, prev = row.seq, row.hash
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO audit_log (seq, time, kind, party, hash, body)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    [(r.seq, r.time, r.kind, r.party, r.hash, r.body) for r in rows],
                )
        return rows

    def head(self) -> Row | None:
        with self._bounded("read") as conn:
            found = conn.execute(_HEAD).fetchone()
        return Row(int(found[0]), *found[1:]) if found else None

    def ping(self) -> None:
        """One round trip (for /readyz); AuditStoreError if the database does not answer."""
        with self._bounded("ping") as conn:
            conn.execute("SELECT 1").fetchone()

    def add_checkpoint(self, seq: int, jws: str) -> None:
        with self._bounded("checkpoint") as conn, conn.transaction():
            conn.execute(
                "INSERT INTO audit_checkpoint (seq, jws) VALUES (%s, %s)"
                " ON CONFLICT (seq) DO NOTHING",
                (seq, jws),
            )

    def checkpoints(self) -> list[tuple[int, str]]:
        with self._bounded("read") as conn:
            cur = conn.execute("SELECT seq, jws FROM audit_checkpoint ORDER BY seq")
            return [(int(s), str(j)) for s, j in cur.fetchall()]

    def rows(
        self,
        *,
        since: str | None = None,
        until: str | None = None,
        party: str | None = None,
        kind: str | None = None,
        after_seq: int = 0,
        limit: int | None = None,
    ) -> Iterator[Row]:
        sql, params = _select(since, until, party, kind, after_seq, limit, "%s")
        with self._bounded("read") as conn:
            fetched = conn.execute(sql, params).fetchall()
        return iter([Row(int(r[0]), *r[1:]) for r in fetched])

    def close(self) -> None:
        with self._lock:
            self._reset()

    def _connection(self):
        if self._conn is not None and self._pid == os.getpid():
            if not server_closed(self._conn):
                return self._conn
            self._reset()  # the server ended the session while idle (a restart): reconnect
        import psycopg

        ms = max(int(self.timeout * 1000), 1)
        bounds: dict[str, Any] = {
            "connect_timeout": max(int(self.connect_timeout + 0.999), 1),
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 2,
        }
        if "options" not in self.conninfo:
            bounds["options"] = f"-c statement_timeout={ms} -c lock_timeout={ms}"
        conn = None
        try:
            conn = psycopg.connect(self.conninfo, autocommit=True, **bounds)
            with socket_deadline(conn.pgconn.socket, self.timeout), conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.LOCK_KEY,))
                for stmt in _SCHEMA:
                    conn.execute(stmt.replace("INTEGER PRIMARY KEY", "BIGINT PRIMARY KEY"))
        except psycopg.Error as exc:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            raise AuditStoreError(f"cannot connect to audit database: {exc}") from exc
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _reset(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail again
                pass
        self._conn = None


def open_audit_store(url: str, *, timeout: float = 2.0, connect_timeout: float = 2.0) -> AuditStore:
    """`sqlite:///path/to/audit.db` (or a bare path), `postgresql://...`, or `null:`.

    `timeout` / `connect_timeout` bound each PostgreSQL call (audit.timeout, audit.connect_timeout).
    """
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresAuditStore(url, timeout=timeout, connect_timeout=connect_timeout)
    if url == "null:":
        return NullAuditStore()
    return SqliteAuditStore(url.removeprefix("sqlite:///").removeprefix("sqlite://"))


def _select(
    since: str | None,
    until: str | None,
    party: str | None,
    kind: str | None,
    after_seq: int,
    limit: int | None,
    ph: str,
) -> tuple[str, list]:
    where, params = ["seq > " + ph], [after_seq]
    for cond, value in (
        (f"time >= {ph}", since),
        (f"time < {ph}", until),
        (f"party = {ph}", party),
        (f"kind = {ph}", kind),
    ):
        if value is not None:
            where.append(cond)
            params.append(value)
    sql = "SELECT seq, time, kind, party, hash, body FROM audit_log WHERE " + " AND ".join(where)
    sql += " ORDER BY seq"
    if limit is not None:
        sql += f" LIMIT {ph}"
        params.append(int(limit))
    return sql, params


def _is_db_error(exc: Exception) -> bool:
    import psycopg

    return isinstance(exc, psycopg.Error)
