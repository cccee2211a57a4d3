"""Issue 11, cases 7 and 8: scope values, refused-token records, and an audit log nobody can
shorten or rewrite unseen (checkpoints of the head, and a witness on another node)."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from pathlib import Path

import httpx
import orjson
import pytest
from nodeproc import (
    base_of,
    dsgo,
    edit_config,
    free_port,
    init_owner_and_guest,
    trust_client,
)

from trust.audit import canonical_json

OWNER = "EU.EORI.NL000000201"
GUEST = "EU.EORI.NL000000202"


@pytest.fixture(scope="module")
def pair(tmp_path_factory, module_procs):
    """The owner's node (registry, witness) and a guest node that files checkpoints there."""
    root = tmp_path_factory.mktemp("composition")
    port = free_port()
    owner, guest = init_owner_and_guest(root, OWNER, GUEST, port)
    edit_config(
        guest,
        {
            "audit": {
                "checkpoint_seconds": 0.2,
                "witness_url": base_of(owner),
                "witness_party_id": OWNER,
            }
        },
    )
    edit_config(owner, {"audit": {"checkpoint_seconds": 0.2}})
    owner_proc = module_procs.serve(owner, port, name="owner")
    guest_proc = module_procs.serve(guest, int(base_of(guest).rsplit(":", 1)[1]), name="guest")
    return owner, guest, owner_proc, guest_proc


def _token_form(config: Path, target: str, **override: str) -> dict[str, str]:
    client = trust_client(config)
    form = client.token_form(target)
    form.update(override)
    return form


def test_unknown_scope_values_are_refused(pair) -> None:
    owner, guest, owner_proc, _ = pair
    for scope in ("iSHARE openid", "iSHARE admin", "iSHARE iSHARE.superuser"):
        resp = httpx.post(
            f"{owner_proc.base_url}/connect/token", data=_token_form(guest, OWNER, scope=scope)
        )
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"] == "invalid_scope"
    ok = httpx.post(f"{owner_proc.base_url}/connect/token", data=_token_form(guest, OWNER))
    assert ok.status_code == 200
    assert "scope" not in ok.json() or ok.json()["scope"] == "iSHARE"


def test_refused_token_is_recorded_as_claimed_not_as_the_party(pair) -> None:
    """Anyone can post client_id=<owner>; the refusal must not be filed under the owner."""
    owner, guest, owner_proc, _ = pair
    form = _token_form(guest, OWNER, client_id=OWNER)  # the guest's assertion, owner's name
    resp = httpx.post(f"{owner_proc.base_url}/connect/token", data=form)
    assert resp.status_code == 400
    entries = _entries(owner, owner_proc.base_url, kind="token_refused")
    claimed = [e for e in entries if (e.get("detail") or {}).get("claimed_client_id") == OWNER]
    assert claimed, entries
    assert all(e["party"] is None for e in claimed)


def _entries(config: Path, base: str, **params: str) -> list[dict]:
    client = trust_client(config)
    resp = client.request("GET", base, "/audit/entries", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()["entries"]


def _activity(guest: Path, guest_url: str, n: int = 5) -> None:
    for _ in range(n):
        httpx.post(f"{guest_url}/connect/token", data={"grant_type": "password"})


def _wait_checkpointed(db: Path, timeout: float = 10.0) -> int:
    """The seq of the head once a checkpoint covers it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(db) as conn:
            head = conn.execute("SELECT MAX(seq) FROM audit_log").fetchone()[0]
            cp = conn.execute("SELECT MAX(seq) FROM audit_checkpoint").fetchone()[0]
        if head and cp == head:
            return head
        time.sleep(0.1)
    raise AssertionError("no checkpoint of the head")


def _wait_witnessed(owner: Path, owner_url: str, seq: int) -> None:
    client = trust_client(owner)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        heads = client.request("GET", owner_url, f"/audit/witness/{GUEST}").json()["heads"]
        if heads and heads[-1]["seq"] >= seq:
            return
        time.sleep(0.1)
    raise AssertionError("the witness never saw the head")


def test_truncation_and_rewrite_are_reported_with_their_range(pair) -> None:
    owner, guest, owner_proc, guest_proc = pair
    db = guest.parent / "data" / "audit.sqlite"
    _activity(guest, guest_proc.base_url)
    head = _wait_checkpointed(db)
    _wait_witnessed(owner, owner_proc.base_url, head)
    guest_proc.stop()  # tamper with a stopped node's database, as an operator could
    assert dsgo("audit", "verify", "--config", guest).returncode == 0

    # A rewrite of entry head-2 with the chain after it recomputed: the hashes all match,
    # the checkpoint of the head does not.
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT seq, body FROM audit_log WHERE seq >= ? ORDER BY seq", (head - 2,)
        ).fetchall()
        prev = conn.execute("SELECT hash FROM audit_log WHERE seq = ?", (head - 3,)).fetchone()[0]
        for seq, body in rows:
            doc = orjson.loads(body)
            if seq == head - 2:
                doc["detail"] = {"reason": "nothing to see"}
            doc["prev"] = prev
            text = canonical_json(doc).decode()
            prev = hashlib.sha256(text.encode()).hexdigest()
            conn.execute("UPDATE audit_log SET body = ?, hash = ? WHERE seq = ?", (text, prev, seq))
    out = dsgo("audit", "verify", "--config", guest, check=False)
    assert out.returncode == 1
    assert "rewritten" in out.stdout, out.stdout
    first, last = map(int, re.search(r"\(entries (\d+)-(\d+)\)", out.stdout).groups())
    assert first <= head - 2 <= last, out.stdout  # the range holds the rewritten entry

    # Now the operator also drops the checkpoints and the newest entries: only the witness
    # still knows.
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM audit_checkpoint")
        conn.execute("DELETE FROM audit_log WHERE seq > ?", (head - 3,))
    local = dsgo("audit", "verify", "--config", guest, check=False)
    assert local.returncode == 0, local.stdout  # the local log alone looks intact
    witnessed = dsgo(
        "audit", "verify", "--config", guest, "--witness", owner_proc.base_url, check=False
    )
    assert witnessed.returncode == 1, witnessed.stdout
    assert "truncated" in witnessed.stdout
    assert f"(entries {head - 2}-" in witnessed.stdout, witnessed.stdout


def test_witness_refuses_someone_elses_checkpoint_and_a_rollback(pair) -> None:
    owner, guest, owner_proc, _ = pair
    db = owner.parent / "data" / "audit.sqlite"
    _wait_checkpointed(db)
    with sqlite3.connect(db) as conn:
        owners_cp = conn.execute(
            "SELECT jws FROM audit_checkpoint ORDER BY seq DESC LIMIT 1"
        ).fetchone()[0]
    client = trust_client(guest)  # the guest files the owner's checkpoint as its own
    resp = client.request(
        "POST", owner_proc.base_url, "/audit/witness", json={"checkpoint": owners_cp}
    )
    assert resp.status_code == 400, resp.text
    assert "own checkpoints" in resp.json()["error_description"]
    garbage = client.request(
        "POST", owner_proc.base_url, "/audit/witness", json={"checkpoint": "a.b.c"}
    )
    assert garbage.status_code == 400
