"""Audit log on SQLite: chain, tamper detection at the exact entry, checkpoints, fail-closed."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import shutil
import sqlite3
import subprocess

import orjson
import pyoxigraph as ox
import pytest

from trust.audit import (
    AuditEvent,
    AuditLog,
    AuditUnavailable,
    as_prov,
    canonical_json,
    sign_checkpoint,
    verify,
)
from trust.audit_store import GENESIS_HASH, SqliteAuditStore
from trust.pki import create_dev_ca, issue_party_certificate

BASE = "http://127.0.0.1:8101"


@pytest.fixture(scope="module")
def ca():
    return create_dev_ca("Audit Test")


@pytest.fixture(scope="module")
def node_identity(ca):
    return issue_party_certificate(ca, "EU.EORI.NL000000001", "Builder BV")


@pytest.fixture(scope="module")
def trusted(ca):
    return {ca.root_fingerprint}


def _event(i: int) -> AuditEvent:
    kinds = ["token_issued", "permit", "query", "deny", "federated_call", "token_refused"]
    return AuditEvent(
        kind=kinds[i % len(kinds)],
        party=f"EU.EORI.NL00000000{i % 3 + 2}",
        target=f"{BASE}/id/space/{i}",
        action="read",
        policy_ids=(f"policy-{i % 2}",),
        token_jti=f"jti-{i}",
        query_hash=f"{i:064x}",
        datasets=("duplex",) if i % 2 else ("duplex", "bag"),
        result_size=i * 10,
        detail={"i": i, "note": "ä"},
    )


def _filled(tmp_path, signer=None, n: int = 10, every: int | None = 4):
    store = SqliteAuditStore(tmp_path / "audit.db")
    log = AuditLog(store, signer, checkpoint_every=every, checkpoint_seconds=None)
    for i in range(n):
        log.append(_event(i))
    return store, log


def _db(tmp_path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "audit.db", isolation_level=None)


def test_append_chains_entries(tmp_path, trusted) -> None:
    store, log = _filled(tmp_path)
    entries = log.entries()
    assert [e.seq for e in entries] == list(range(1, 11))
    assert entries[0].prev == GENESIS_HASH
    for before, after in zip(entries, entries[1:], strict=False):
        assert after.prev == before.hash
    raw = _db(tmp_path).execute("SELECT body, hash FROM audit_log WHERE seq = 3").fetchone()
    import hashlib

    assert hashlib.sha256(raw[0].encode()).hexdigest() == raw[1]
    assert orjson.loads(raw[0])["detail"] == {"i": 2, "note": "ä"}
    report = verify(store, trusted)
    assert report.ok and report.entries == 10 and report.first_broken is None


def test_canonical_json_is_sorted_and_compact() -> None:
    assert (
        canonical_json({"b": 1, "a": [True, None, "é"]}) == '{"a":[true,null,"é"],"b":1}'.encode()
    )


def test_unknown_kind_refused(tmp_path) -> None:
    log = AuditLog(SqliteAuditStore(tmp_path / "a.db"))
    with pytest.raises(ValueError):
        log.append(AuditEvent(kind="coffee"))


def _edit_body(tmp_path, seq: int, **changes) -> None:
    conn = _db(tmp_path)
    body = orjson.loads(
        conn.execute("SELECT body FROM audit_log WHERE seq=?", (seq,)).fetchone()[0]
    )
    body.update(changes)
    conn.execute("UPDATE audit_log SET body=? WHERE seq=?", (canonical_json(body).decode(), seq))


def test_edit_detected_at_entry(tmp_path, trusted) -> None:
    store, _log = _filled(tmp_path)
    _edit_body(tmp_path, 5, party="EU.EORI.NL000000009")
    report = verify(store, trusted)
    assert not report.ok and report.first_broken == 5
    assert "hash" in report.reason


def test_column_edit_detected_at_entry(tmp_path, trusted) -> None:
    store, _log = _filled(tmp_path)
    _db(tmp_path).execute("UPDATE audit_log SET party='EU.EORI.NL000000009' WHERE seq=7")
    report = verify(store, trusted)
    assert report.first_broken == 7 and "party" in report.reason


def test_non_canonical_body_detected(tmp_path, trusted) -> None:
    store, _log = _filled(tmp_path)
    conn = _db(tmp_path)
    body = conn.execute("SELECT body FROM audit_log WHERE seq=2").fetchone()[0]
    conn.execute("UPDATE audit_log SET body=? WHERE seq=2", (body.replace(",", ", ", 1),))
    assert verify(store, trusted).first_broken == 2


def test_edit_with_rehash_breaks_next_link_and_checkpoint(tmp_path, node_identity, trusted) -> None:
    """Rewriting entry 3 and its hash: the link into entry 4 breaks; the checkpoint at 4 too."""
    import hashlib

    store, _log = _filled(tmp_path, node_identity)
    conn = _db(tmp_path)
    body = orjson.loads(conn.execute("SELECT body FROM audit_log WHERE seq=3").fetchone()[0])
    body["result_size"] = 0
    text = canonical_json(body).decode()
    new_hash = hashlib.sha256(text.encode()).hexdigest()
    conn.execute("UPDATE audit_log SET body=?, hash=? WHERE seq=3", (text, new_hash))
    report = verify(store, trusted)
    assert report.first_broken == 4 and "chain" in report.reason


def test_delete_detected_at_entry(tmp_path, trusted) -> None:
    store, _log = _filled(tmp_path)
    _db(tmp_path).execute("DELETE FROM audit_log WHERE seq=5")
    report = verify(store, trusted)
    assert report.first_broken == 5 and "gap" in report.reason


def test_insert_detected_at_entry(tmp_path, trusted) -> None:
    store, _log = _filled(tmp_path)
    conn = _db(tmp_path)
    conn.execute("UPDATE audit_log SET seq = -seq WHERE seq >= 6")
    conn.execute("UPDATE audit_log SET seq = 1 - seq WHERE seq <= -6")
    prev = conn.execute("SELECT hash FROM audit_log WHERE seq=5").fetchone()[0]
    forged = canonical_json({"seq": 6, "prev": prev, "kind": "permit", "time": "x"}).decode()
    conn.execute("INSERT INTO audit_log VALUES (6, 'x', 'permit', NULL, ?, ?)", ("0" * 64, forged))
    assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 11
    report = verify(store, trusted)
    assert report.first_broken == 6


def test_row_before_first_detected(tmp_path, trusted) -> None:
    store, _log = _filled(tmp_path)
    _db(tmp_path).execute(
        "INSERT INTO audit_log VALUES (0, 'x', 'permit', NULL, ?, '{}')", ("0" * 64,)
    )
    assert verify(store, trusted).first_broken == 1


def test_verify_pages_through_the_log(tmp_path, trusted, monkeypatch) -> None:
    import trust.audit

    monkeypatch.setattr(trust.audit, "VERIFY_PAGE", 3)
    store, _log = _filled(tmp_path, n=10)
    assert verify(store, trusted).entries == 10
    _db(tmp_path).execute("DELETE FROM audit_log WHERE seq=7")
    assert verify(store, trusted).first_broken == 7


def test_reorder_detected_at_entry(tmp_path, trusted) -> None:
    store, _log = _filled(tmp_path)
    conn = _db(tmp_path)
    conn.execute("UPDATE audit_log SET seq = 100 WHERE seq = 6")
    conn.execute("UPDATE audit_log SET seq = 6 WHERE seq = 7")
    conn.execute("UPDATE audit_log SET seq = 7 WHERE seq = 100")
    report = verify(store, trusted)
    assert report.first_broken == 6 and "moved" in report.reason


def test_checkpoints_written_and_verified(tmp_path, node_identity, trusted) -> None:
    store, _log = _filled(tmp_path, node_identity, n=10, every=4)
    assert [s for s, _ in store.checkpoints()] == [4, 8]
    report = verify(store, trusted, checkpoint_every=4)
    assert report.ok and report.checkpoints == 2


def test_checkpoint_untrusted_signer_detected(tmp_path, node_identity, trusted) -> None:
    store, _log = _filled(tmp_path, node_identity)
    rogue = issue_party_certificate(create_dev_ca("Rogue"), "EU.EORI.NL000000001", "Builder BV")
    head = store.head()
    store.add_checkpoint(10, sign_checkpoint(10, head.hash, rogue))
    report = verify(store, trusted)
    assert not report.ok and report.broken_checkpoint == 10
    assert "untrusted_root" in report.checkpoint_reason


def test_checkpoint_by_other_trusted_party_detected(tmp_path, ca, node_identity, trusted) -> None:
    store, _log = _filled(tmp_path, node_identity, n=4, every=None)
    other = issue_party_certificate(ca, "EU.EORI.NL000000005", "Other BV")
    store.add_checkpoint(4, sign_checkpoint(4, store.head().hash, other))
    assert verify(store, trusted).ok
    report = verify(store, trusted, node_party=node_identity.party_id)
    assert report.broken_checkpoint == 4 and "not by the node" in report.checkpoint_reason


def test_checkpoint_hash_tamper_detected(tmp_path, node_identity, trusted) -> None:
    store, _log = _filled(tmp_path, node_identity)
    # a validly signed checkpoint for a hash that is not in the chain
    store.add_checkpoint(9, sign_checkpoint(9, "f" * 64, node_identity))
    report = verify(store, trusted)
    assert report.broken_checkpoint == 9 and "differs" in report.checkpoint_reason
    assert report.first_broken is None


def test_checkpoint_payload_edit_breaks_signature(tmp_path, node_identity, trusted) -> None:
    store, _log = _filled(tmp_path, node_identity)
    conn = _db(tmp_path)
    jws = conn.execute("SELECT jws FROM audit_checkpoint WHERE seq=4").fetchone()[0]
    head, payload, sig = jws.split(".")
    import base64

    data = orjson.loads(base64.urlsafe_b64decode(payload + "=="))
    data["hash"] = "0" * 64
    new_payload = base64.urlsafe_b64encode(canonical_json(data)).rstrip(b"=").decode()
    conn.execute("UPDATE audit_checkpoint SET jws=? WHERE seq=4", (f"{head}.{new_payload}.{sig}",))
    report = verify(store, trusted)
    assert report.broken_checkpoint == 4 and "signature" in report.checkpoint_reason


def test_checkpoint_deleted_detected(tmp_path, node_identity, trusted) -> None:
    store, _log = _filled(tmp_path, node_identity)
    _db(tmp_path).execute("DELETE FROM audit_checkpoint WHERE seq=4")
    assert verify(store, trusted).ok  # without the expected period it cannot tell
    report = verify(store, trusted, checkpoint_every=4)
    assert report.broken_checkpoint == 4 and report.checkpoint_reason == "checkpoint missing"


def test_truncation_detected_by_checkpoint(tmp_path, node_identity, trusted) -> None:
    store, _log = _filled(tmp_path, node_identity, n=8, every=4)
    _db(tmp_path).execute("DELETE FROM audit_log WHERE seq >= 7")
    report = verify(store, trusted)
    assert not report.ok and report.first_broken == 7 and report.broken_checkpoint == 8


def test_time_based_checkpoint_and_manual_checkpoint(tmp_path, node_identity, trusted) -> None:
    store = SqliteAuditStore(tmp_path / "t.db")
    log = AuditLog(store, node_identity, checkpoint_every=None, checkpoint_seconds=0)
    log.append(_event(1))
    log.append(_event(2))
    assert [s for s, _ in store.checkpoints()] == [1, 2]
    quiet = AuditLog(store, node_identity, checkpoint_every=None, checkpoint_seconds=None)
    quiet.append(_event(3))
    assert quiet.checkpoint() == 3
    assert verify(store, trusted).checkpoints == 3


def test_read_only_store_fails_closed(tmp_path) -> None:
    _filled(tmp_path)
    ro = AuditLog(SqliteAuditStore(tmp_path / "audit.db", read_only=True))
    assert len(ro.entries()) == 10
    with pytest.raises(AuditUnavailable) as err:
        ro.append(_event(99))
    assert err.value.error == "temporarily_unavailable"
    assert len(ro.entries()) == 10


def test_full_disk_fails_closed(tmp_path) -> None:
    store, log = _filled(tmp_path, n=1)
    pages = _db(tmp_path).execute("PRAGMA page_count").fetchone()[0]
    store._connection().execute(f"PRAGMA max_page_count={pages}")
    big = AuditEvent(kind="query", party="EU.EORI.NL000000002", detail={"x": "y" * 200_000})
    with pytest.raises(AuditUnavailable):
        log.append(big)
    assert [e.seq for e in log.entries()] == [1]


def test_unopenable_store_fails_closed(tmp_path) -> None:
    (tmp_path / "dir.db").mkdir()
    log = AuditLog(SqliteAuditStore(tmp_path / "dir.db"))
    with pytest.raises(AuditUnavailable):
        log.append(_event(1))


def test_immutable_file_fails_closed(tmp_path) -> None:
    """chattr +i stops root too: the running log's next append must raise."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr not available")
    store, log = _filled(tmp_path, n=2)
    store.close()
    db = tmp_path / "audit.db"
    done = subprocess.run(["chattr", "+i", str(db)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"chattr unsupported here: {done.stderr.decode().strip()}")
    try:
        with pytest.raises(AuditUnavailable):
            log.append(_event(3))
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)
    assert [e.seq for e in log.entries()] == [1, 2]


def test_entries_filters(tmp_path) -> None:
    clock = iter(dt.datetime(2025, 1, 1, 12, 0, i, tzinfo=dt.UTC) for i in range(50))
    log = AuditLog(SqliteAuditStore(tmp_path / "f.db"), clock=lambda: next(clock))
    for i in range(12):
        log.append(_event(i))
    party = "EU.EORI.NL000000003"
    assert [e.seq for e in log.entries(party=party)] == [2, 5, 8, 11]
    assert [e.seq for e in log.entries(kind="permit")] == [2, 8]
    since = dt.datetime(2025, 1, 1, 12, 0, 3, tzinfo=dt.UTC)
    until = dt.datetime(2025, 1, 1, 12, 0, 6, tzinfo=dt.UTC)
    assert [e.seq for e in log.entries(since=since, until=until)] == [4, 5, 6]
    assert [e.seq for e in log.entries(limit=2)] == [1, 2]
    assert [e.seq for e in log.entries(limit=2, after_seq=2)] == [3, 4]
    denied = log.entries(party="EU.EORI.NL000000002", kind="deny")
    assert [e.seq for e in denied] == [4, 10]
    assert denied[0].datasets == ("duplex",) and denied[0].result_size == 30


def test_as_prov(tmp_path) -> None:
    _store, log = _filled(tmp_path, n=3)
    store = ox.Store()
    store.extend(ox.Quad(t.subject, t.predicate, t.object) for t in as_prov(log.entries(), BASE))
    rows = list(
        store.query(
            """PREFIX prov: <http://www.w3.org/ns/prov#>
            SELECT ?a ?who ?used ?t WHERE { ?a a prov:Activity ; prov:wasAssociatedWith ?who ;
              prov:used ?used ; prov:startedAtTime ?t } ORDER BY ?a ?used"""
        )
    )
    used = {(r["a"].value, r["used"].value) for r in rows}
    assert (f"{BASE}/audit/entry/1", f"{BASE}/dataset/bag") in used
    assert (f"{BASE}/audit/entry/2", f"{BASE}/dataset/duplex") in used
    assert (f"{BASE}/audit/entry/2", f"{BASE}/dataset/bag") not in used
    assert rows[0]["who"].value == "urn:ishare:EU.EORI.NL000000002"


def _worker(path: str, start: int, n: int) -> None:
    log = AuditLog(SqliteAuditStore(path), checkpoint_every=None, checkpoint_seconds=None)
    for i in range(start, start + n):
        log.append(_event(i))


def test_concurrent_processes_keep_one_chain(tmp_path, trusted) -> None:
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
    report = verify(store, trusted)
    assert report.ok and report.entries == 600
    jtis = {e.token_jti for e in AuditLog(store).entries(limit=None)}
    assert len(jtis) == 600


def test_party_iri_forms() -> None:
    from trust.audit import party_iri

    assert party_iri("EU.EORI.NL000000001").value == "urn:ishare:EU.EORI.NL000000001"
    did = "did:ishare:EU.NL.NTRNL-12345678"
    assert party_iri(did).value == did
