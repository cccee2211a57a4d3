"""The storage interfaces of the trust state, so one node or many hosts can hold it.

Each piece has a SQLite implementation (one data directory, the embedded default) and a
PostgreSQL one (`trust.pg`: one schema shared by every host of a party):

| state                 | interface           | SQLite                          | PostgreSQL                 |
|-----------------------|---------------------|---------------------------------|----------------------------|
| jti replay cache      | `ReplayStore`       | `trust.replay.ReplayCache`      | `trust.replay_pg`          |
| token signing keys    | `TokenKeyStore`     | `trust.token_keys.SqliteTokenKeys` | `trust.token_keys.PostgresTokenKeys` |
| delegation policies   | `trust.policy_store.PolicyStore` (its public methods) | itself | `trust.policy_store_pg` |
| participant registry  | `trust.registry.Registry` (its public methods) | itself | `trust.registry_pg`    |
| audit log             | `trust.audit_store.AuditStore` | `SqliteAuditStore`   | `PostgresAuditStore`       |

This package never imports node/; the node picks the implementations from its settings.
"""

from __future__ import annotations

from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import rsa


class ReplayStore(Protocol):
    """Seen jti values, kept until their expiry; the check and the store are one atomic step."""

    def check_and_store(
        self, namespace: str, issuer: str, jti: str, exp: float, now: float | None = None
    ) -> None:
        """Record (namespace, issuer, jti) until exp + skew; ReplayError if already recorded."""
        ...

    def purge(self, now: float | None = None) -> int:
        """Delete expired entries; returns how many."""
        ...


class TokenKeyStore(Protocol):
    """The access-token signing keys of a party: the current one signs, every unexpired one verifies."""

    def signing_key(self, now: float | None = None) -> tuple[str, rsa.RSAPrivateKey]:
        """(kid, key) to sign with now; rotates when the current key is older than its period."""
        ...

    def public_key(self, kid: str) -> rsa.RSAPublicKey | None:
        """The verification key with this kid, or None when no host has (or still keeps) it."""
        ...

    def jwks(self, now: float | None = None) -> dict[str, Any]:
        """RFC 7517 JWK Set of the keys whose tokens may still be valid."""
        ...
