"""An audit witness: another party keeps the heads of a node's audit log, countersigned.

A node's operator can rewrite its own audit database, checkpoints included. A witness (the
registry, or any peer node) accepts a node's signed checkpoints, keeps every head it was shown
and countersigns it; `dsgo audit verify --witness URL` then checks the local log against what
the witness holds. A head that is no longer in the log, or an entry whose hash differs from a
witnessed head, is reported with the range of entries affected.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from trust.audit import CHECKPOINT_TYP, canonical_json
from trust.audit_store import AuditStore
from trust.errors import InvalidRequest, TrustError
from trust.pki import PartyIdentity, certificate_matches_party
from trust.signing import SignatureError, sign_jws, verify_jws

__all__ = [
    "WITNESS_TYP",
    "WitnessConflict",
    "WitnessStore",
    "WitnessedHead",
    "check_against_witness",
    "verify_witness_receipt",
]

WITNESS_TYP = "dsgo-audit-witness+jws"
MAX_HEADS = 10_000


class WitnessConflict(TrustError):
    """A checkpoint contradicts a head already witnessed (a rewrite, or a rollback)."""

    error = "witness_conflict"


@dataclass(frozen=True)
class WitnessedHead:
    party: str
    seq: int
    hash: str
    received: str
    receipt: str  # the witness's countersignature (compact JWS)


class WitnessStore:
    """Heads per party (SQLite); a head is only ever added, never replaced."""

    def __init__(self, path: Path | str, identity: PartyIdentity, trusted: set[str]) -> None:
        self.path = str(path)
        self.identity = identity
        self.trusted = set(trusted)
        self._lock = threading.Lock()
        with self._conn() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS witnessed (party TEXT, seq INTEGER, hash TEXT,"
                " received TEXT, checkpoint TEXT, receipt TEXT, PRIMARY KEY (party, seq))"
            )

    def witness(self, checkpoint: str, caller: str) -> WitnessedHead:
        """Verify `caller`'s checkpoint, keep it, countersign it; WitnessConflict if it
        contradicts what was witnessed before."""
        payload = _verified_checkpoint(checkpoint, self.trusted, caller)
        seq, head = payload["seq"], payload["hash"]
        with self._lock, self._conn() as conn:
            same = conn.execute(
                "SELECT hash FROM witnessed WHERE party = ? AND seq = ?", (caller, seq)
            ).fetchone()
            if same is not None and same[0] != head:
                raise WitnessConflict(
                    "checkpoint", f"entry {seq} was witnessed with another hash: a rewrite"
                )
            newest = conn.execute(
                "SELECT MAX(seq) FROM witnessed WHERE party = ?", (caller,)
            ).fetchone()[0]
            if same is None and newest is not None and seq < newest:
                raise WitnessConflict(
                    "checkpoint", f"entry {newest} was witnessed already; {seq} goes back"
                )
            if same is not None:
                row = conn.execute(
                    "SELECT received, receipt FROM witnessed WHERE party = ? AND seq = ?",
                    (caller, seq),
                ).fetchone()
                return WitnessedHead(caller, seq, head, row[0], row[1])
            received = _now()
            receipt = sign_jws(
                {"alg": "RS256", "typ": WITNESS_TYP, "x5c": list(self.identity.x5c)},
                canonical_json(
                    {
                        "party": caller,
                        "seq": seq,
                        "hash": head,
                        "received": received,
                        "witness": self.identity.party_id,
                    }
                ),
                self.identity.private_key,
            )
            conn.execute(
                "INSERT INTO witnessed VALUES (?, ?, ?, ?, ?, ?)",
                (caller, seq, head, received, checkpoint, receipt),
            )
            conn.execute(
                "DELETE FROM witnessed WHERE party = ? AND seq NOT IN (SELECT seq FROM witnessed"
                " WHERE party = ? ORDER BY seq DESC LIMIT ?)",
                (caller, caller, MAX_HEADS),
            )
        return WitnessedHead(caller, seq, head, received, receipt)

    def heads(self, party: str) -> list[WitnessedHead]:
        with self._lock, self._conn() as conn:
            rows = conn.execute(
                "SELECT party, seq, hash, received, receipt FROM witnessed WHERE party = ?"
                " ORDER BY seq",
                (party,),
            ).fetchall()
        return [WitnessedHead(*r) for r in rows]

    def _conn(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10.0)
        conn.execute("PRAGMA busy_timeout=10000")
        return conn


def verify_witness_receipt(
    receipt: str, trusted: set[str], witness_party: str, party: str
) -> dict[str, Any]:
    """The head a witness countersigned (payload), after checking its signature and parties."""
    try:
        head = orjson.loads(_b64(receipt.split(".")[0]))
        if head.get("typ") != WITNESS_TYP:
            raise SignatureError("typ", "not a witness receipt")
        verified = verify_jws(receipt, trusted, dt.datetime.now(dt.UTC))
        payload = orjson.loads(verified.payload)
    except (ValueError, IndexError, orjson.JSONDecodeError) as exc:
        raise InvalidRequest("witness_receipt", f"malformed receipt: {exc}") from None
    if payload.get("witness") != witness_party or not certificate_matches_party(
        verified.leaf, witness_party
    ):
        raise InvalidRequest("witness_receipt", f"receipt not signed by {witness_party}")
    if payload.get("party") != party:
        raise InvalidRequest("witness_receipt", f"receipt is about {payload.get('party')}")
    return payload


def check_against_witness(
    store: AuditStore, heads: Sequence[tuple[int, str]]
) -> tuple[str, tuple[int, int]] | None:
    """Compare the log with witnessed (seq, hash) heads: None if every one is in it, else the
    problem and the range of entries it concerns."""
    good = 0
    last = store.head()
    length = last.seq if last is not None else 0
    for seq, head in sorted(heads):
        if seq > length:
            return (
                f"truncated: entry {seq} was witnessed but the log ends at {length}",
                (length + 1, seq),
            )
        row = next(iter(store.rows(after_seq=seq - 1, limit=1)), None)
        if row is None or row.seq != seq:
            return f"entry {seq} was witnessed but is missing", (good + 1, seq)
        if row.hash != head:
            return (
                f"rewritten: entry {seq} differs from the head the witness countersigned",
                (good + 1, seq),
            )
        good = seq
    return None


def _verified_checkpoint(jws: str, trusted: set[str], caller: str) -> dict[str, Any]:
    if not isinstance(jws, str) or len(jws) > 64 * 1024:
        raise InvalidRequest("checkpoint", "send a checkpoint JWS")
    try:
        head = orjson.loads(_b64(jws.split(".")[0]))
        if head.get("typ") != CHECKPOINT_TYP:
            raise InvalidRequest("checkpoint", "not an audit checkpoint")
        payload = orjson.loads(_b64(jws.split(".")[1]))
        at = dt.datetime.fromtimestamp(int(payload["iat"]), dt.UTC)
        verified = verify_jws(jws, trusted, at)
        payload = orjson.loads(verified.payload)
    except TrustError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, orjson.JSONDecodeError):
        raise InvalidRequest("checkpoint", "malformed checkpoint") from None
    if payload.get("iss") != caller or not certificate_matches_party(verified.leaf, caller):
        raise InvalidRequest("checkpoint", "a party may only file its own checkpoints")
    if not isinstance(payload.get("seq"), int) or not isinstance(payload.get("hash"), str):
        raise InvalidRequest("checkpoint", "checkpoint lacks seq or hash")
    return payload


def _b64(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
