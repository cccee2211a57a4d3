"""Where the node keeps its trust state, picked by `[state]`: SQLite files or shared PostgreSQL.

`state.backend = "sqlite"` (the default) keeps the replay cache, token keys, policies and the
registry in the data directory, shared by the worker processes of one host. With
`state.backend = "postgresql"` they live in one schema of one PostgreSQL database (`state.dsn`,
`state.schema`), so several hosts of one party behave as one node; the audit log joins that
schema unless `[audit]` names its own backend. The implementations are in trust/ (see
trust/state.py); this module only chooses and opens them.
"""

from __future__ import annotations

import threading

from node.config import ConfigError, Settings
from trust.pg import PgSettings, PgState, StateUnavailable
from trust.policy_store import PolicyStore
from trust.registry import Registry
from trust.replay import ReplayCache
from trust.state import ReplayStore, TokenKeyStore
from trust.token_keys import SqliteTokenKeys

_states: dict[PgSettings, PgState] = {}
_states_lock = threading.Lock()


def pg_settings(settings: Settings) -> PgSettings:
    """The PostgreSQL connection settings of `[state]` (backend postgresql only)."""
    if settings.state_backend != "postgresql" or not settings.state_dsn:
        raise ConfigError("state.backend: not 'postgresql'")
    return PgSettings(
        settings.state_dsn,
        schema=settings.state_schema,
        statement_timeout=settings.state_statement_timeout,
        connect_timeout=min(10.0, max(1.0, settings.state_statement_timeout)),
        pool_size=settings.state_pool_size,
    )


def shared_state(settings: Settings) -> PgState | None:
    """The process's connections to the shared state (None for SQLite), migrated once.

    Start-up fails with one line naming `state.dsn` when the database cannot be used.
    """
    if settings.state_backend != "postgresql":
        return None
    pg = pg_settings(settings)
    with _states_lock:
        state = _states.get(pg)
        if state is None:
            state = _states[pg] = PgState(pg)
    try:
        import psycopg  # noqa: F401 - a clear message when the extra is not installed
    except ImportError:
        raise ConfigError(
            "state.backend: 'postgresql' needs psycopg (pip install 'dsgo-node[postgres]')"
        ) from None
    try:
        state.migrate()
    except StateUnavailable as exc:
        raise ConfigError(f"state.dsn: cannot use the state database: {exc.description}") from None
    return state


def open_replay(settings: Settings) -> ReplayStore:
    """The jti replay cache."""
    state = shared_state(settings)
    if state is None:
        return ReplayCache(settings.data_dir / "replay.sqlite")
    from trust.replay_pg import PostgresReplayCache

    return PostgresReplayCache(state)


def open_token_keys(settings: Settings) -> TokenKeyStore:
    """The access-token signing keys (rotated every `state.key_rotation` seconds)."""
    state = shared_state(settings)
    if state is None:
        return SqliteTokenKeys(
            settings.data_dir / "token-keys.sqlite", rotate_after=settings.state_key_rotation
        )
    from trust.token_keys import PostgresTokenKeys

    return PostgresTokenKeys(state, rotate_after=settings.state_key_rotation)


def open_policies(settings: Settings) -> PolicyStore:
    """The delegation policies this node is the register of."""
    state = shared_state(settings)
    if state is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return PolicyStore(
            settings.data_dir / "policies.sqlite",
            issuer=settings.party_id,
            base_iri=settings.base_iri,
        )
    from trust.policy_store_pg import PostgresPolicyStore

    return PostgresPolicyStore(state, issuer=settings.party_id, base_iri=settings.base_iri)


def open_registry(settings: Settings) -> Registry:
    """The participant registry's records (registry role)."""
    state = shared_state(settings)
    if state is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return Registry(settings.data_dir / "registry.sqlite")
    from trust.registry_pg import PostgresRegistry

    return PostgresRegistry(state)


def audit_url(settings: Settings) -> str:
    """What `open_audit_store` opens: `audit.dsn`, the state schema, or the SQLite file."""
    if settings.audit_backend == "postgresql":
        if settings.audit_dsn:
            return settings.audit_dsn
        shared_state(settings)  # the schema exists before the audit store creates its tables
        return pg_settings(settings).conninfo()
    return str(settings.data_dir / "audit.sqlite")
