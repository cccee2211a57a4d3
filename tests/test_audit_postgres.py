"""Audit log on a real PostgreSQL started for this module (initdb + pg_ctl on a free port)."""

from __future__ import annotations

import multiprocessing as mp
import time

import orjson
import pytest

from tests import pgproc
from trust.audit import AuditEvent, AuditLog, AuditUnavailable, canonical_json, verify
from trust.audit_store import PostgresAuditStore, open_audit_store
from trust.pki import create_dev_ca, issue_party_certificate


@pytest.fixture
def store(pg_url):
    s = open_audit_store(pg_url)
    assert isinstance(s, PostgresAuditStore)
    conn = s._connection()
    conn.execute("TRUNCATE audit_log, audit_checkpoint")
    yield s
    s.close()


@pytest.fixture(scope="module")
def ca():
    return create_dev_ca("PG Audit")


def _event(i: int) -> AuditEvent:
    return AuditEvent(
        kind="query", party=f"EU.EORI.NL00000000{i % 3 + 2}", datasets=("duplex",), result_size=i
    )


def test_chain_and_checkpoints(store, ca) -> None:
    signer = issue_party_certificate(ca, "EU.EORI.NL000000001", "Builder BV")
    log = AuditLog(store, signer, checkpoint_every=5, checkpoint_seconds=None)
    for i in range(12):
        log.append(_event(i))
    report = verify(store, {ca.root_fingerprint}, checkpoint_every=5)
    assert report.ok and report.entries == 12 and report.checkpoints == 2
    assert [e.seq for e in log.entries(party="EU.EORI.NL000000003")] == [2, 5, 8, 11]


def test_edit_detected_at_entry(store, ca) -> None:
    log = AuditLog(store)
    for i in range(6):
        log.append(_event(i))
    conn = store._connection()
    body = orjson.loads(conn.execute("SELECT body FROM audit_log WHERE seq=4").fetchone()[0])
    body["result_size"] = 999
    conn.execute("UPDATE audit_log SET body=%s WHERE seq=4", (canonical_json(body).decode(),))
    report = verify(store, {ca.root_fingerprint})
    assert report.first_broken == 4


def test_unreachable_server_fails_closed() -> None:
    log = AuditLog(
        PostgresAuditStore(f"postgresql://postgres@127.0.0.1:{pgproc._free_port()}/postgres")
    )
    with pytest.raises(AuditUnavailable):
        log.append(_event(1))


def test_a_session_the_server_ended_while_idle_is_replaced(store, pg_url) -> None:
    log = AuditLog(store)
    log.append(_event(1))
    pid = store._connection().info.backend_pid
    other = open_audit_store(pg_url)._connection()
    other.execute("SELECT pg_terminate_backend(%s)", (pid,))
    while other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
        time.sleep(0.01)
    assert log.append(_event(2)).seq == 2  # no error: a new session
    assert store._connection().info.backend_pid != pid


def test_server_stopping_fails_closed(store, pg) -> None:
    log = AuditLog(store)
    log.append(_event(1))
    pg.stop()
    try:
        with pytest.raises(AuditUnavailable):
            log.append(_event(2))
    finally:
        pg.start()
    # the next append reconnects (once the breaker's cool-down has passed)
    time.sleep(store.breaker.cool_down)
    assert log.append(_event(3)).seq == 2


def _worker(url: str, start: int) -> None:
    log = AuditLog(open_audit_store(url), checkpoint_every=None, checkpoint_seconds=None)
    for i in range(start, start + 60):
        log.append(_event(i))


def test_concurrent_processes_keep_one_chain(store, pg_url, ca) -> None:
    store.close()
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(pg_url, k * 100)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    report = verify(store, {ca.root_fingerprint})
    assert report.ok and report.entries == 180
