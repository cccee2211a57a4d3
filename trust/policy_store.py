"""SQLite register of delegation policies, shared by all worker processes.

A version counter changes in the same transaction as every grant or revoke, so caches keyed on
`version()` see a revocation on the very next request, in every process.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from trust.delegation import (
    DSGO_DATASET,
    ISHARE_READ,
    WILDCARD,
    DelegationError,
    Policy,
    build_policy,
    validate_evidence,
)
from vocab.iris import DATASET_PATH, dataset_iri

FAR_FUTURE = 2147483647
_DATASET_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS policies (
  id TEXT PRIMARY KEY,
  issuer TEXT NOT NULL,
  subject TEXT NOT NULL,
  not_before INTEGER NOT NULL,
  not_on_or_after INTEGER NOT NULL,
  evidence TEXT NOT NULL,
  created INTEGER NOT NULL,
  revoked INTEGER
);
CREATE INDEX IF NOT EXISTS policies_subject ON policies(subject) WHERE revoked IS NULL;
CREATE INDEX IF NOT EXISTS policies_issuer ON policies(issuer) WHERE revoked IS NULL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES ('version', 0);
"""


class PolicyNotFound(DelegationError):
    """No (unrevoked) policy with that id (`not_found`)."""

    error = "not_found"


class PolicyStore:
    """Grant, list and revoke policies; `version()` changes on every change."""

    def __init__(
        self,
        path: str | Path,
        *,
        issuer: str,
        base_iri: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = str(path)
        self.issuer = issuer
        self.base_iri = base_iri.rstrip("/")
        self._clock = clock
        self._local = threading.local()
        self._db().executescript(_SCHEMA)

    def grant(
        self,
        to: str,
        *,
        dataset: str | None = None,
        type: str | None = None,
        ids: Sequence[str] | None = None,
        attributes: Sequence[str] | None = None,
        until: int | None = None,
        not_before: int | None = None,
        actions: Sequence[str] = (ISHARE_READ,),
        deny: Sequence[Mapping[str, Any]] = (),
    ) -> str:
        """Let party `to` read a dataset (name or '*') or resources of a class; return the id."""
        if (dataset is None) == (type is None):
            raise DelegationError("give exactly one of dataset or type")
        if dataset is not None:
            if ids is not None:
                raise DelegationError("ids are only for a type grant")
            identifiers = [self.dataset_iri(dataset)]
            resource_type = DSGO_DATASET
        else:
            identifiers = list(ids) if ids else [WILDCARD]
            resource_type = type
        now = int(self._clock())
        evidence = build_policy(
            issuer=self.issuer,
            subject=to,
            resource_type=resource_type,
            identifiers=identifiers,
            attributes=list(attributes) if attributes else None,
            actions=actions,
            not_before=now if not_before is None else not_before,
            not_on_or_after=FAR_FUTURE if until is None else until,
            deny=deny,
        )
        return self.add(evidence)

    def add(self, evidence: Mapping[str, Any]) -> str:
        """Store a full delegationEvidence document (validated) and return its new id."""
        doc = validate_evidence(evidence)
        policy_id = str(uuid.uuid4())
        with self._tx() as db:
            db.execute(self._sql(_INSERT + ", NULL)"), _row_values(policy_id, doc, self._clock()))
            self._bump(db)
        return policy_id

    def revoke(self, policy_id: str) -> None:
        """Revoke a policy; it stops applying on the next request. PolicyNotFound if unknown."""
        with self._tx() as db:
            cur = db.execute(
                self._sql("UPDATE policies SET revoked = ? WHERE id = ? AND revoked IS NULL"),
                (int(self._clock()), policy_id),
            )
            if cur.rowcount != 1:
                raise PolicyNotFound(f"no policy {policy_id}")
            self._bump(db)

    def list(self, *, subject: str | None = None, issuer: str | None = None) -> list[Policy]:
        """Unrevoked policies, optionally only those for one subject and/or issuer."""
        sql = "SELECT id, evidence FROM policies WHERE revoked IS NULL"
        args: list[str] = []
        if subject is not None:
            sql += " AND subject = ?"
            args.append(subject)
        if issuer is not None:
            sql += " AND issuer = ?"
            args.append(issuer)
        rows = self._rows(f"{sql} ORDER BY {self._ORDER}", args)
        return [Policy(pid, json.loads(doc)) for pid, doc in rows]

    def involving(self, party: str) -> list[Policy]:
        """Policies a party issued or that apply to it: all it may see (iSHARE access rule)."""
        rows = self._rows(
            "SELECT id, evidence FROM policies WHERE revoked IS NULL "
            f"AND (subject = ? OR issuer = ?) ORDER BY {self._ORDER}",
            (party, party),
        )
        return [Policy(pid, json.loads(doc)) for pid, doc in rows]

    def get(self, policy_id: str) -> Policy:
        """One unrevoked policy; PolicyNotFound otherwise."""
        rows = self._rows(
            "SELECT evidence FROM policies WHERE id = ? AND revoked IS NULL", (policy_id,)
        )
        if not rows:
            raise PolicyNotFound(f"no policy {policy_id}")
        return Policy(policy_id, json.loads(rows[0][0]))

    def version(self) -> int:
        """A number that changes whenever any process (or host) grants or revokes a policy."""
        return int(self._rows(f"SELECT value FROM {self._META} WHERE key = 'version'")[0][0])

    def dataset_iri(self, name: str) -> str:
        """Dataset name -> named graph IRI; '*' stays the wildcard."""
        if name == WILDCARD:
            return WILDCARD
        if name.startswith(self.base_iri + DATASET_PATH):
            name = name[len(self.base_iri + DATASET_PATH) :]
        if not _DATASET_NAME.fullmatch(name):
            raise DelegationError(f"invalid dataset name {name!r}")
        return dataset_iri(self.base_iri, name)

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # --- helpers: the SQL is written once, with '?' placeholders; a subclass for another
    # database changes only these (trust/policy_store_pg.py) --------------------------------

    _ORDER = "rowid"  # insertion order
    _META = "meta"  # the table holding the version counter

    def _sql(self, text: str) -> str:
        return text

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db().execute(sql, args).fetchall()

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    def _tx(self) -> Any:
        return _Transaction(self._db())

    def _bump(self, db: Any) -> None:
        db.execute(f"UPDATE {self._META} SET value = value + 1 WHERE key = 'version'")


_INSERT = (
    "INSERT INTO policies (id, issuer, subject, not_before, not_on_or_after, evidence, created,"
    " revoked) VALUES (?, ?, ?, ?, ?, ?, ?"
)


def _row_values(policy_id: str, doc: Mapping[str, Any], created: float) -> tuple[Any, ...]:
    """A policy's columns up to `created` (the order of `_INSERT`)."""
    return (
        policy_id,
        doc["policyIssuer"],
        doc["target"]["accessSubject"],
        doc["notBefore"],
        doc["notOnOrAfter"],
        json.dumps(doc, separators=(",", ":")),
        int(created),
    )


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT/ROLLBACK on one connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
