"""Receipts: signed exchanges kept so they can be verified offline, years later.

Why keep the body and not only its digest: a digest proves nothing about content nobody kept.
A receipt holds everything the check needs and nothing it must fetch: the compact JWS (its x5c
carries the signer's certificate chain), the signed header values, the body exactly as received,
and the request line it answered. Offline verification needs only the scheme's root
certificates: the chain is validated at the signing time (`sigT`), so an expired certificate
does not void an old receipt. Whether the signer was Active in the registry can only be asked at
the time; that check's outcome is recorded (`registry_checked`) when the receipt is made.

Receipts made while a derived dataset is computed are tagged with its version, so
`dsgo audit receipts --for IRI` lists the signed responses the dataset was built from. The audit
log's `receipt` entry of each names the receipt id and the SHA-256 of its body and signature,
which puts the receipt under the log's hash chain as well.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from trust.errors import TrustError
from trust.jades import HttpMessage, verify_message

__all__ = ["OfflineVerdict", "Receipt", "ReceiptStore", "verify_offline"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS receipts (
    id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    direction TEXT NOT NULL,          -- 'response' (we called) or 'request' (we were called)
    peer TEXT,                        -- the party the message came from, as we knew it
    url TEXT NOT NULL,
    method TEXT NOT NULL,
    target TEXT NOT NULL,
    host TEXT NOT NULL,
    status INTEGER,
    signer TEXT,
    signed_at TEXT,
    signature TEXT,                   -- NULL: the message was not signed (accepted by config)
    signed_headers TEXT NOT NULL,     -- JSON [[name, value], ...] as signed
    digest TEXT,
    body BLOB NOT NULL,
    registry_checked TEXT,
    dataset TEXT,
    version TEXT
);
CREATE INDEX IF NOT EXISTS receipts_version ON receipts(dataset, version);
CREATE TABLE IF NOT EXISTS derivations (
    version TEXT PRIMARY KEY,
    dataset TEXT NOT NULL,
    created TEXT NOT NULL,
    receipts INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class Receipt:
    """One kept exchange (a response we received, or a signed request we were sent)."""

    id: str
    created: str
    direction: str
    peer: str | None
    url: str
    method: str
    target: str
    host: str
    status: int | None
    signer: str | None
    signed_at: str | None
    signature: str | None
    signed_headers: tuple[tuple[str, str], ...]
    digest: str | None
    body: bytes
    registry_checked: str | None = None
    dataset: str | None = None
    version: str | None = None

    @property
    def signed(self) -> bool:
        return self.signature is not None

    def fingerprint(self) -> str:
        """SHA-256 over the signature and the body: what the audit entry commits to."""
        h = hashlib.sha256((self.signature or "").encode("ascii"))
        h.update(b"\0")
        h.update(self.body)
        return h.hexdigest()


@dataclass(frozen=True)
class OfflineVerdict:
    """The outcome of verifying a kept receipt: ok, or the failed check and why."""

    receipt: str
    ok: bool
    signer: str | None
    signed_at: str | None
    check: str = ""
    description: str = ""


def verify_offline(receipt: Receipt, trusted_sha256: set[str]) -> OfflineVerdict:
    """Re-verify a receipt from what it holds and the trusted roots alone (no network)."""
    if not receipt.signed:
        return OfflineVerdict(
            receipt.id, False, None, None, "unsigned", "the message was not signed"
        )
    headers = {name: value for name, value in receipt.signed_headers if not name.startswith("(")}
    message = HttpMessage(receipt.method, receipt.target, receipt.host, headers, receipt.body)
    try:
        signed = verify_message(
            receipt.signature,
            message,
            trusted_sha256,
            max_skew=None,
            expected_party=receipt.signer,
        )
    except TrustError as exc:
        return OfflineVerdict(
            receipt.id, False, receipt.signer, receipt.signed_at, exc.check, exc.description
        )
    if tuple(signed.signed_headers) != tuple(receipt.signed_headers):
        return OfflineVerdict(
            receipt.id,
            False,
            receipt.signer,
            receipt.signed_at,
            "header_value",
            "the kept header values are not the signed ones",
        )
    if signed.signed_at != receipt.signed_at:
        return OfflineVerdict(
            receipt.id,
            False,
            receipt.signer,
            receipt.signed_at,
            "header_sigt",
            f"the kept signing time {receipt.signed_at} is not the signed {signed.signed_at}",
        )
    return OfflineVerdict(receipt.id, True, signed.signer, signed.signed_at)


class ReceiptStore:
    """SQLite file of receipts (in the node's data directory; WAL, so the CLI reads it live)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
        finally:
            conn.close()

    def add(
        self,
        *,
        direction: str,
        peer: str | None,
        url: str,
        method: str,
        target: str,
        host: str,
        status: int | None,
        signer: str | None,
        signed_at: str | None,
        signature: str | None,
        signed_headers: Sequence[tuple[str, str]],
        digest: str | None,
        body: bytes,
        registry_checked: str | None = None,
        dataset: str | None = None,
    ) -> Receipt:
        """Keep one exchange; its id is derived from the signature (or random when unsigned)."""
        if signature is not None:
            rid = "r-" + hashlib.sha256(signature.encode("ascii")).hexdigest()[:20]
        else:
            rid = "u-" + uuid.uuid4().hex[:20]
        receipt = Receipt(
            id=rid,
            created=_now(),
            direction=direction,
            peer=peer,
            url=url,
            method=method,
            target=target,
            host=host,
            status=status,
            signer=signer,
            signed_at=signed_at,
            signature=signature,
            signed_headers=tuple((n, v) for n, v in signed_headers),
            digest=digest,
            body=body,
            registry_checked=registry_checked,
            dataset=dataset,
        )
        with self._conn() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO receipts VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                (
                    receipt.id,
                    receipt.created,
                    direction,
                    peer,
                    url,
                    method,
                    target,
                    host,
                    status,
                    signer,
                    signed_at,
                    signature,
                    orjson.dumps([list(p) for p in receipt.signed_headers]).decode(),
                    digest,
                    body,
                    registry_checked,
                    dataset,
                ),
            )
        return receipt

    def attach(self, receipt_ids: Sequence[str], dataset: str, version: str) -> None:
        """Tag receipts as inputs of a derived dataset version (also when there are none)."""
        with self._conn() as conn:
            conn.executemany(
                "UPDATE receipts SET dataset = ?, version = ? WHERE id = ?",
                [(dataset, version, rid) for rid in receipt_ids],
            )
            conn.execute(
                "INSERT OR REPLACE INTO derivations VALUES (?, ?, ?, ?)",
                (version, dataset, _now(), len(set(receipt_ids))),
            )

    def latest_version(self, dataset: str) -> str | None:
        """The newest derived version of `dataset` recorded here."""
        row = (
            self._conn()
            .execute(
                "SELECT version FROM derivations WHERE dataset = ? ORDER BY created DESC, "
                "rowid DESC LIMIT 1",
                (dataset,),
            )
            .fetchone()
        )
        return row[0] if row else None

    def has_version(self, version: str) -> bool:
        row = self._conn().execute("SELECT 1 FROM derivations WHERE version = ?", (version,))
        return row.fetchone() is not None

    def for_version(self, version: str) -> list[Receipt]:
        """The receipts a derived version was built from, oldest first."""
        rows = (
            self._conn()
            .execute("SELECT * FROM receipts WHERE version = ? ORDER BY created, id", (version,))
            .fetchall()
        )
        return [_receipt(r) for r in rows]

    def get(self, receipt_id: str) -> Receipt | None:
        row = self._conn().execute("SELECT * FROM receipts WHERE id = ?", (receipt_id,)).fetchone()
        return _receipt(row) if row else None

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "PRAGMA synchronous=NORMAL"
            )  # as the audit log: no fsync per commit in WAL
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return _Tx(conn)  # type: ignore[return-value]


class _Tx:
    """A connection whose `with` block is one transaction (autocommit outside it)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")

    def execute(self, *args: object) -> sqlite3.Cursor:
        return self.conn.execute(*args)  # type: ignore[arg-type]


def _receipt(row: tuple) -> Receipt:
    return Receipt(
        id=row[0],
        created=row[1],
        direction=row[2],
        peer=row[3],
        url=row[4],
        method=row[5],
        target=row[6],
        host=row[7],
        status=row[8],
        signer=row[9],
        signed_at=row[10],
        signature=row[11],
        signed_headers=tuple((str(n), str(v)) for n, v in orjson.loads(row[12])),
        digest=row[13],
        body=bytes(row[14]),
        registry_checked=row[15],
        dataset=row[16],
        version=row[17],
    )


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
