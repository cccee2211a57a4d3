"""The participant registry's records in PostgreSQL, shared by every host of a registry node.

Same behaviour as the SQLite `Registry`: a party marked Revoked through one host gets no token
from any host, at the next request (LocalDirectory caches nothing).
"""

from __future__ import annotations

import orjson
from cryptography import x509

from trust.errors import InvalidRequest, NotFound
from trust.pg import PgState
from trust.pki import fingerprint_sha256, normalise_fingerprint, validate_party_id
from trust.registry import STATUSES, Party, Registry, TrustedCA


class PostgresRegistry(Registry):
    """`Registry` over the shared state schema (tables party, trusted_ca)."""

    def __init__(self, state: PgState) -> None:
        # The SQLite registry's constructor opens a file; this one only needs the schema.
        self.path = ""
        self.state = state
        state.migrate()

    def put_party(self, party: Party) -> Party:
        """Insert or replace a party record."""
        validate_party_id(party.party_id)
        if party.adherence.status not in STATUSES:
            raise InvalidRequest("adherence_status", f"status must be one of {STATUSES}")
        doc = orjson.dumps(party.to_info()).decode()
        self.state.run(
            lambda c: c.execute(
                "INSERT INTO party (party_id, doc) VALUES (%s, %s)"
                " ON CONFLICT (party_id) DO UPDATE SET doc = EXCLUDED.doc",
                (party.party_id, doc),
            )
        )
        return party

    def get_party(self, party_id: str) -> Party | None:
        found = self.state.run(
            lambda c: c.execute("SELECT doc FROM party WHERE party_id = %s", (party_id,)).fetchone()
        )
        return Party.from_info(orjson.loads(found[0])) if found else None

    def _party_docs(self) -> list[str]:
        """Every party record as stored, in party-id order (byte order, as SQLite sorts)."""
        rows = self.state.run(
            lambda c: c.execute('SELECT doc FROM party ORDER BY party_id COLLATE "C"').fetchall()
        )
        return [doc for (doc,) in rows]

    def add_trusted_ca(
        self,
        cert: x509.Certificate | None = None,
        *,
        fingerprint: str | None = None,
        subject: str | None = None,
        validity: str = "valid",
        status: str = "granted",
    ) -> TrustedCA:
        """Put a CA (certificate or bare SHA-256 fingerprint) on the trusted list."""
        if cert is not None:
            fingerprint, subject = fingerprint_sha256(cert), cert.subject.rfc4514_string()
        if not fingerprint:
            raise InvalidRequest("fingerprint", "a certificate or fingerprint is required")
        entry = TrustedCA(subject or "", normalise_fingerprint(fingerprint), validity, status)
        self.state.run(
            lambda c: c.execute(
                "INSERT INTO trusted_ca VALUES (%s, %s, %s, %s) ON CONFLICT (fingerprint)"
                " DO UPDATE SET subject = EXCLUDED.subject, validity = EXCLUDED.validity,"
                " status = EXCLUDED.status",
                (entry.certificate_fingerprint, entry.subject, entry.validity, entry.status),
            )
        )
        return entry

    def set_trusted_ca_status(self, fingerprint: str, status: str, validity: str) -> None:
        cur = self.state.run(
            lambda c: c.execute(
                "UPDATE trusted_ca SET status = %s, validity = %s WHERE fingerprint = %s",
                (status, validity, normalise_fingerprint(fingerprint)),
            )
        )
        if cur.rowcount == 0:
            raise NotFound("trusted_ca_unknown", f"no trusted CA {fingerprint}")

    def trusted_list(self) -> list[TrustedCA]:
        rows = self.state.run(
            lambda c: c.execute(
                "SELECT subject, fingerprint, validity, status FROM trusted_ca"
                ' ORDER BY fingerprint COLLATE "C"'
            ).fetchall()
        )
        return [TrustedCA(*row) for row in rows]
