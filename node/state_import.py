"""`dsgo state import`: move a node's SQLite registry and policies into the shared state.

A node that grows from one host to several keeps what it built up on the first one: the
registry's parties and trusted CAs, and every policy (revoked ones too, under their own ids, so
evidence already handed out still names the right policy). It is idempotent: parties and CAs are
written again, a policy id already present is left alone. The replay cache and token keys are
not moved (their contents live for minutes and an hour; clients fetch a new token), nor the
audit log (a hash chain of its own: keep the file, `dsgo audit verify` it there).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import orjson

from node.config import ConfigError, Settings
from node.state import open_policies, open_registry
from trust.policy_store_pg import PostgresPolicyStore
from trust.registry import Party, TrustedCA


@dataclass(frozen=True)
class ImportReport:
    """What was copied (policies: newly stored, of those read)."""

    parties: int
    trusted_cas: int
    policies_new: int
    policies_read: int

    def line(self) -> str:
        kept = self.policies_read - self.policies_new
        return (
            f"imported {self.parties} parties, {self.trusted_cas} trusted CAs, "
            f"{self.policies_new} policies" + (f" ({kept} already there)" if kept else "")
        )


def import_sqlite_state(settings: Settings) -> ImportReport:
    """Copy data_dir's registry.sqlite and policies.sqlite into the `[state]` PostgreSQL store."""
    if settings.state_backend != "postgresql":
        raise ConfigError("state.backend: set it to 'postgresql' (with state.dsn) to import into")
    parties = cas = new = read = 0
    registry_file = settings.data_dir / "registry.sqlite"
    if "registry" in settings.roles and registry_file.is_file():
        registry = open_registry(settings)
        with _read_only(registry_file) as db:
            for (doc,) in _rows(db, "SELECT doc FROM party ORDER BY party_id"):
                registry.put_party(Party.from_info(orjson.loads(doc)))
                parties += 1
            query = "SELECT subject, fingerprint, validity, status FROM trusted_ca"
            for row in _rows(db, query):
                entry = TrustedCA(*row)
                registry.add_trusted_ca(
                    fingerprint=entry.certificate_fingerprint,
                    subject=entry.subject,
                    validity=entry.validity,
                    status=entry.status,
                )
                cas += 1
    policies_file = settings.data_dir / "policies.sqlite"
    if policies_file.is_file():
        store = open_policies(settings)
        assert isinstance(store, PostgresPolicyStore)
        with _read_only(policies_file) as db:
            query = "SELECT id, evidence, created, revoked FROM policies ORDER BY rowid"
            for policy_id, evidence, created, revoked in _rows(db, query):
                read += 1
                new += store.put(policy_id, json.loads(evidence), created, revoked)
    return ImportReport(parties, cas, new, read)


class _read_only:
    """A read-only SQLite connection, closed at the end of the block."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> sqlite3.Connection:
        self.db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        return self.db

    def __exit__(self, *exc: object) -> None:
        self.db.close()


def _rows(db: sqlite3.Connection, sql: str) -> list[tuple]:
    try:
        return db.execute(sql).fetchall()
    except sqlite3.OperationalError:  # a file without that table: nothing to move
        return []
