"""Delegation policies in PostgreSQL, shared by every host of a party.

Same behaviour as the SQLite `PolicyStore` (grant, list, revoke, the version counter), in the
shared state schema: a grant or revocation made through any host applies on every host at the
next request, because the version counter changes in the same transaction as the policy and
every host reads it per decision.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from trust.delegation import Policy, validate_evidence
from trust.pg import PgState
from trust.policy_store import PolicyNotFound, PolicyStore

_BUMP = "UPDATE policy_meta SET value = value + 1 WHERE key = 'version'"


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

    def add(self, evidence: Mapping[str, Any]) -> str:
        """Store a full delegationEvidence document (validated) and return its new id."""
        doc = validate_evidence(evidence)
        policy_id = str(uuid.uuid4())
        with self.state.transaction() as conn:
            conn.execute(
                "INSERT INTO policies (id, issuer, subject, not_before, not_on_or_after,"
                " evidence, created, revoked) VALUES (%s, %s, %s, %s, %s, %s, %s, NULL)",
                (
                    policy_id,
                    doc["policyIssuer"],
                    doc["target"]["accessSubject"],
                    doc["notBefore"],
                    doc["notOnOrAfter"],
                    json.dumps(doc, separators=(",", ":")),
                    int(self._clock()),
                ),
            )
            conn.execute(_BUMP)
        return policy_id

    def put(
        self, policy_id: str, evidence: Mapping[str, Any], created: int, revoked: int | None
    ) -> bool:
        """Store a policy under its existing id (moving a register); False if the id exists."""
        doc = validate_evidence(evidence)
        with self.state.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO policies (id, issuer, subject, not_before, not_on_or_after,"
                " evidence, created, revoked) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (id) DO NOTHING",
                (
                    policy_id,
                    doc["policyIssuer"],
                    doc["target"]["accessSubject"],
                    doc["notBefore"],
                    doc["notOnOrAfter"],
                    json.dumps(doc, separators=(",", ":")),
                    int(created),
                    revoked,
                ),
            )
            if cur.rowcount == 1:
                conn.execute(_BUMP)
        return cur.rowcount == 1

    def revoke(self, policy_id: str) -> None:
        """Revoke a policy; it stops applying on the next request. PolicyNotFound if unknown."""
        with self.state.transaction() as conn:
            cur = conn.execute(
                "UPDATE policies SET revoked = %s WHERE id = %s AND revoked IS NULL",
                (int(self._clock()), policy_id),
            )
            if cur.rowcount != 1:
                raise PolicyNotFound(f"no policy {policy_id}")
            conn.execute(_BUMP)

    def list(self, *, subject: str | None = None, issuer: str | None = None) -> list[Policy]:
        """Unrevoked policies, optionally only those for one subject and/or issuer."""
        sql = "SELECT id, evidence FROM policies WHERE revoked IS NULL"
        args: list[str] = []
        if subject is not None:
            sql += " AND subject = %s"
            args.append(subject)
        if issuer is not None:
            sql += " AND issuer = %s"
            args.append(issuer)
        rows = self.state.run(lambda c: c.execute(sql + " ORDER BY seq", args).fetchall())
        return [Policy(pid, json.loads(doc)) for pid, doc in rows]

    def involving(self, party: str) -> list[Policy]:
        """Policies a party issued or that apply to it: all it may see (iSHARE access rule)."""
        rows = self.state.run(
            lambda c: c.execute(
                "SELECT id, evidence FROM policies WHERE revoked IS NULL"
                " AND (subject = %s OR issuer = %s) ORDER BY seq",
                (party, party),
            ).fetchall()
        )
        return [Policy(pid, json.loads(doc)) for pid, doc in rows]

    def get(self, policy_id: str) -> Policy:
        """One unrevoked policy; PolicyNotFound otherwise."""
        row = self.state.run(
            lambda c: c.execute(
                "SELECT evidence FROM policies WHERE id = %s AND revoked IS NULL", (policy_id,)
            ).fetchone()
        )
        if row is None:
            raise PolicyNotFound(f"no policy {policy_id}")
        return Policy(policy_id, json.loads(row[0]))

    def version(self) -> int:
        """A number that changes whenever any host grants or revokes a policy."""
        row = self.state.run(
            lambda c: c.execute("SELECT value FROM policy_meta WHERE key = 'version'").fetchone()
        )
        return int(row[0])

    def close(self) -> None:
        self.state.close()
