"""Issue 17 pieces on their own: disk-full detection, spool cleanup, the breaker, one record."""

from __future__ import annotations

import dataclasses
import errno
import sqlite3
import tempfile
from pathlib import Path

import pytest

from node.disk import DiskFull, is_disk_full, lock_spool, remove_bulk_files, remove_spools
from node.enforcement import request_record
from trust.audit import AuditEvent
from trust.bounds import Breaker, BreakerOpen
from trust.delegation import Decision


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EFBIG, "File too large"),
        OSError("IO error: No space left on device: While appending to file: bulk-1.sst"),
        sqlite3.OperationalError("database or disk is full"),
    ],
)
def test_disk_full_is_recognised(exc: BaseException) -> None:
    assert is_disk_full(exc)
    wrapped = RuntimeError("load failed")
    wrapped.__cause__ = exc
    assert is_disk_full(wrapped)


@pytest.mark.parametrize(
    "exc", [OSError(errno.EACCES, "Permission denied"), sqlite3.OperationalError("locked")]
)
def test_other_errors_are_not_disk_full(exc: BaseException) -> None:
    assert not is_disk_full(exc)


def test_disk_full_is_a_507_with_retry_after() -> None:
    err = DiskFull("loading x.nt", OSError(errno.ENOSPC, "No space left on device"))
    assert err.status == 507 and err.to_json()["error"] == "insufficient_storage"
    assert err.headers["Retry-After"]


def test_spool_in_use_is_kept_and_leftovers_go(tmp_path: Path) -> None:
    (tmp_path / "left.upload").write_bytes(b"x")
    store = tmp_path / "store"
    store.mkdir()
    (store / "bulk-1.sst").write_bytes(b"x")
    (store / "000001.sst").write_bytes(b"x")  # the store's own files are not touched
    with tempfile.NamedTemporaryFile(dir=tmp_path, suffix=".upload") as busy:
        lock_spool(busy.fileno())
        removed = remove_spools(tmp_path)
        assert [p.name for p in removed] == ["left.upload"]
        assert Path(busy.name).exists()
    assert [p.name for p in remove_bulk_files(store)] == ["bulk-1.sst"]
    assert (store / "000001.sst").exists()


def test_breaker_opens_refuses_then_lets_one_probe() -> None:
    now = [0.0]
    b = Breaker("db", cool_down=1.0, clock=lambda: now[0])
    b.before()
    b.failed("hung")
    with pytest.raises(BreakerOpen) as e:
        b.before()
    assert e.value.retry_after == pytest.approx(1.0)
    now[0] = 1.5
    b.before()  # the probe
    with pytest.raises(BreakerOpen):
        b.before()  # others wait while it probes
    b.succeeded()
    b.before()
    assert b.state().ok


def _decision(effect: str, action: str = "dsgo:query", policies: tuple[str, ...] = ("p1",)):
    return Decision(effect, "EU.EORI.NL000000179", action, "sparql", list(policies), "why", {}, "j")


def test_request_record_carries_the_decision_or_is_the_deny() -> None:
    query = AuditEvent(kind="query", party="EU.EORI.NL000000179", target="sparql", result_size=3)
    one = request_record([_decision("Permit")], query)
    assert one.kind == "query" and one.policy_ids == ("p1",) and one.result_size == 3
    assert one.detail["effect"] == "Permit"
    both = request_record([_decision("Permit"), _decision("Deny", "dsgo:federate", ())], query)
    assert both.kind == "deny" and len(both.detail["decisions"]) == 2
    assert request_record([], query) is query


def test_request_record_keeps_every_field_of_the_use_record() -> None:
    """Built field by field (not dataclasses.replace): a field added to AuditEvent must not be
    dropped on the way, so every field is set here and compared."""
    values: dict = {
        "kind": "query",
        "party": "EU.EORI.NL000000179",
        "target": "sparql",
        "action": "dsgo:query",
        "policy_ids": ("p0",),
        "token_jti": "jti-1",
        "query_hash": "ab" * 32,
        "datasets": ("bim",),
        "result_size": 7,
        "detail": {"person": "ann"},
    }
    assert set(values) == {f.name for f in dataclasses.fields(AuditEvent)}
    merged = request_record([_decision("Permit")], AuditEvent(**values))
    for name, value in values.items():
        if name not in ("policy_ids", "detail"):
            assert getattr(merged, name) == value, name
    assert merged.policy_ids == ("p0", "p1")
    assert merged.detail == {"person": "ann", "effect": "Permit", "reason": "why"}
