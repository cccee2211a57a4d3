"""The audit log's WAL is checkpointed off the append path, and stays bounded under steady appends."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from trust import audit_store
from trust.audit import AuditEvent, AuditLog, verify
from trust.audit_store import SqliteAuditStore


@pytest.fixture
def small_wal(monkeypatch):
    """Thresholds small enough for a test to cross them many times."""
    monkeypatch.setattr(audit_store._WalCheckpointer, "wake_after", 20)
    monkeypatch.setattr(audit_store._WalCheckpointer, "restart_frames", 100)


def _append(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.append(AuditEvent(kind="query", party="EU.EORI.NL000000001", detail={"i": i}))


def _wal_frames(path: Path) -> tuple[int, int]:
    """(frames in the WAL, frames already copied), without copying any."""
    with sqlite3.connect(path) as conn:
        _, frames, done = conn.execute("PRAGMA wal_checkpoint(NOOP)").fetchone()
    return frames, done


def test_appends_do_not_checkpoint_and_the_thread_does(tmp_path, small_wal) -> None:
    store = SqliteAuditStore(tmp_path / "audit.db")
    log = AuditLog(store, checkpoint_every=None)
    _append(log, 1)
    (auto,) = store._conn.execute("PRAGMA wal_autocheckpoint").fetchone()
    assert auto == 0  # the writer leaves it to the thread
    _append(log, 60)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        frames, done = _wal_frames(tmp_path / "audit.db")
        if frames and done == frames:
            break
        time.sleep(0.02)
    assert frames and done == frames  # copied into the database by the checkpointer
    store.close()


def test_the_wal_starts_over_under_steady_appends(tmp_path, small_wal) -> None:
    """Without the locked step a PASSIVE checkpoint never completes under back-to-back appends,
    and the WAL keeps every frame (about 58 MB for these 6,000 appends; 1.6 MB with it)."""
    store = SqliteAuditStore(tmp_path / "audit.db")
    log = AuditLog(store, checkpoint_every=None)
    biggest = 0
    for i in range(6000):
        log.append(AuditEvent(kind="query", party="EU.EORI.NL000000001", detail={"i": i}))
        if i % 100 == 0:
            biggest = max(biggest, os.path.getsize(tmp_path / "audit.db-wal"))
    assert biggest < 8_000_000
    store.close()
    assert verify(SqliteAuditStore(tmp_path / "audit.db", read_only=True), set()).entries == 6000


def test_close_stops_the_checkpointer(tmp_path) -> None:
    store = SqliteAuditStore(tmp_path / "audit.db")
    _append(AuditLog(store, checkpoint_every=None), 3)
    thread = store._wal._thread
    assert thread.is_alive() and thread.name == "audit-wal"
    store.close()
    assert not thread.is_alive()  # joined by close(), not left to its next wake-up


def test_a_store_dropped_without_close_ends_its_checkpointer(tmp_path, monkeypatch) -> None:
    import gc

    monkeypatch.setattr(audit_store._WalCheckpointer, "idle_seconds", 0.05)
    store = SqliteAuditStore(tmp_path / "audit.db")
    _append(AuditLog(store, checkpoint_every=None), 3)
    thread = store._wal._thread
    assert thread.is_alive()
    del store
    gc.collect()
    thread.join(5)
    assert not thread.is_alive()  # the thread held no strong reference to the store


def test_a_read_only_store_starts_no_checkpointer(tmp_path) -> None:
    writer = SqliteAuditStore(tmp_path / "audit.db")
    _append(AuditLog(writer, checkpoint_every=None), 2)
    writer.close()
    reader = SqliteAuditStore(tmp_path / "audit.db", read_only=True)
    assert len(list(reader.rows())) == 2
    assert reader._wal is None
    reader.close()


def test_a_failing_checkpointer_hands_checkpoints_back_to_the_writer(
    tmp_path, monkeypatch, capfd
) -> None:
    real_connect = sqlite3.connect

    def no_checkpoint_connection(*args, **kwargs):
        if threading.current_thread().name == "audit-wal":
            raise sqlite3.OperationalError("unable to open database file")
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(audit_store.sqlite3, "connect", no_checkpoint_connection)
    store = SqliteAuditStore(tmp_path / "audit.db")
    log = AuditLog(store, checkpoint_every=None)
    _append(log, 1)
    deadline = time.monotonic() + 10
    while store._wal is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store._wal is None
    (auto,) = store._conn.execute("PRAGMA wal_autocheckpoint").fetchone()
    assert auto == 1000
    _append(log, 5)  # appends carry on
    assert "audit WAL checkpointer" in capfd.readouterr().err
    store.close()
