"""Audit group commit: deferred appends from concurrent tasks, one chain, fail closed per batch."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import sqlite3

import pytest

from trust.audit import AuditEvent, AuditLog, AuditUnavailable, verify
from trust.audit_store import NullAuditStore, PostgresAuditStore, SqliteAuditStore
from trust.pki import create_dev_ca, issue_party_certificate


@pytest.fixture(scope="module")
def ca():
    return create_dev_ca("Group Commit Test")


@pytest.fixture(scope="module")
def identity(ca):
    return issue_party_certificate(ca, "EU.EORI.NL000000001", "Builder BV")


def _event(i: int) -> AuditEvent:
    return AuditEvent(kind="permit", party="EU.EORI.NL000000002", target=f"t{i}", token_jti=f"{i}")


async def _request(log: AuditLog, i: int) -> None:
    with log.deferred() as pending:
        assert log.append(_event(i)) is None  # queued, not yet written
    await pending.wait()


def test_deferred_appends_are_committed_before_wait_returns(tmp_path, ca, identity) -> None:
    store = SqliteAuditStore(tmp_path / "audit.db")
    log = AuditLog(store, identity, checkpoint_every=10, checkpoint_seconds=None)
    log.append(_event(-1))  # synchronous appends and batches share one chain

    async def main() -> None:
        await asyncio.gather(*(_request(log, i) for i in range(95)))

    asyncio.run(main())
    log.append(_event(-2))
    report = verify(store, {ca.root_fingerprint}, checkpoint_every=10)
    assert report.ok and report.entries == 97 and report.checkpoints == 9
    jtis = [e.token_jti for e in log.entries(limit=None)]
    assert jtis[0] == "-1" and jtis[-1] == "-2" and set(jtis[1:-1]) == {str(i) for i in range(95)}


def test_failed_batch_fails_every_waiting_request(tmp_path) -> None:
    store = SqliteAuditStore(tmp_path / "audit.db")
    log = AuditLog(store, checkpoint_every=None, checkpoint_seconds=None)
    log.append(_event(0))
    blocker = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    store._connection().execute("PRAGMA busy_timeout=50")
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock: the batch cannot commit

    async def main() -> list[BaseException | None]:
        return await asyncio.gather(
            *(_request(log, i) for i in range(1, 6)), return_exceptions=True
        )

    try:
        results = asyncio.run(main())
    finally:
        blocker.execute("ROLLBACK")
    assert all(
        isinstance(r, AuditUnavailable) and r.error == "temporarily_unavailable" for r in results
    )
    assert [e.seq for e in log.entries()] == [1]
    asyncio.run(_request(log, 7))  # the log recovers once the lock is free
    assert [e.token_jti for e in log.entries()] == ["0", "7"]


def test_unwritable_store_fails_closed_in_a_deferred_scope(tmp_path) -> None:
    (tmp_path / "dir.db").mkdir()
    log = AuditLog(SqliteAuditStore(tmp_path / "dir.db"))
    with pytest.raises(AuditUnavailable):
        asyncio.run(_request(log, 1))


def test_null_store_appends_synchronously_in_a_deferred_scope() -> None:
    log = AuditLog(NullAuditStore())

    async def main() -> None:
        with log.deferred() as pending:
            assert log.append(_event(1)) is not None
        await pending.wait()

    asyncio.run(main())


def _worker(path: str, start: int, n: int) -> None:
    log = AuditLog(SqliteAuditStore(path), checkpoint_every=None, checkpoint_seconds=None)

    async def main() -> None:
        for k in range(start, start + n, 10):
            await asyncio.gather(*(_request(log, i) for i in range(k, k + 10)))

    asyncio.run(main())


def test_batches_from_several_processes_keep_one_chain(tmp_path, ca) -> None:
    path = str(tmp_path / "audit.db")
    SqliteAuditStore(path).close()
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(path, k * 1000, 150)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = SqliteAuditStore(path)
    report = verify(store, {ca.root_fingerprint})
    assert report.ok and report.entries == 600


def test_postgres_batches_keep_one_chain(pg_url, ca) -> None:  # noqa: F811
    store = PostgresAuditStore(pg_url)
    store._connection().execute("TRUNCATE audit_log, audit_checkpoint")
    log = AuditLog(store, checkpoint_every=None, checkpoint_seconds=None)
    log.append(_event(-1))

    async def main() -> None:
        await asyncio.gather(*(_request(log, i) for i in range(40)))

    asyncio.run(main())
    report = verify(store, {ca.root_fingerprint})
    assert report.ok and report.entries == 41
    store.close()


# --- append_all: one request's entries in one write, from a worker thread -----------------------


def test_append_all_writes_the_entries_in_one_chain(tmp_path, ca, identity) -> None:
    store = SqliteAuditStore(tmp_path / "audit.db")
    log = AuditLog(store, identity, checkpoint_every=4, checkpoint_seconds=None)
    log.append(_event(0))
    log.append_all([_event(1), _event(2), _event(3)])  # seq 4 is due a checkpoint
    log.append_all([_event(4)])
    report = verify(store, {ca.root_fingerprint}, checkpoint_every=4)
    assert report.ok and report.entries == 5 and report.checkpoints == 1
    assert [e.token_jti for e in log.entries(limit=None)] == ["0", "1", "2", "3", "4"]


def test_append_all_is_all_or_nothing(tmp_path) -> None:
    store = SqliteAuditStore(tmp_path / "audit.db")
    log = AuditLog(store, checkpoint_every=None, checkpoint_seconds=None)
    log.append(_event(0))
    blocker = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    store._connection().execute("PRAGMA busy_timeout=50")
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(AuditUnavailable) as err:
            log.append_all([_event(1), _event(2)])
    finally:
        blocker.execute("ROLLBACK")
    assert err.value.error == "temporarily_unavailable"
    assert [e.token_jti for e in log.entries()] == ["0"]
    with pytest.raises(ValueError):
        log.append_all([_event(3), AuditEvent(kind="no-such-kind")])
    assert [e.token_jti for e in log.entries()] == ["0"]


def test_append_all_unwritable_store_fails_closed(tmp_path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(AuditUnavailable):
        AuditLog(SqliteAuditStore(tmp_path / "dir.db")).append_all([_event(1)])


def test_append_all_without_batching_store() -> None:
    log = AuditLog(NullAuditStore())
    log.append_all([_event(1), _event(2)])  # one by one: the null store has no append_many
    with pytest.raises(ValueError):
        log.append_all([AuditEvent(kind="no-such-kind")])
