"""Delegation policies in PostgreSQL, shared by every host of a party.

Same behaviour as the SQLite `PolicyStore` (grant, list, revoke, the version counter), in the
shared state schema: a grant or revocation made through any host applies on every host at the
next request, because the version counter changes in the same transaction as the policy and
every host reads it per decision.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from trust.delegation import validate_evidence
from trust.pg import PgState
from trust.policy_store import _INSERT, PolicyStore, _row_values


class PostgresPolicyStore(PolicyStore):
    """`PolicyStore` over the shared state schema (tables policies, policy_meta)."""

    def __init__(
        self,
        state: PgState,
        *,
        issuer: str,
        base_iri: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # The SQLite store's constructor opens a file; this one only needs the schema.
        self.path = ""
        self.state = state
        self.issuer = issuer
        self.base_iri = base_iri.rstrip("/")
        self._clock = clock
        state.migrate()

    def put(
        self, policy_id: str, evidence: Mapping[str, Any], created: int, revoked: int | None
    ) -> bool:
        """Store a policy under its existing id (moving a register); False if the id exists."""
        doc = validate_evidence(evidence)
        with self._tx() as conn:
            cur = conn.execute(
                self._sql(_INSERT + ", ?) ON CONFLICT (id) DO NOTHING"),
                (*_row_values(policy_id, doc, created), revoked),
            )
            if cur.rowcount == 1:
                self._bump(conn)
        return cur.rowcount == 1

    def close(self) -> None:
        self.state.close()

    # --- the SQLite store's queries, run on PostgreSQL ------------------------------------

    _ORDER = "seq"
    _META = "policy_meta"

    def _sql(self, text: str) -> str:
        return text.replace("?", "%s")  # no '?' appears in these statements but as a parameter

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        text = self._sql(sql)
        return self.state.run(lambda c: c.execute(text, args).fetchall())

    def _tx(self) -> Any:
        return self.state.transaction()
