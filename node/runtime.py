"""Everything a running node holds, built once from its settings: store, identity, trust, policies, audit."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from node.config import ConfigError, Settings
from node.enforcement import Enforcer, decision_event
from node.outbound import REMOTE_SHARE
from node.sparql.outline import OutlineCache
from node.state import audit_url, open_policies, open_registry, open_replay, open_token_keys
from node.store import Store, open_store
from trust.audit import AuditEvent, AuditLog
from trust.audit_store import open_audit_store
from trust.authorization_register import AuthorizationRegister
from trust.delegation import Decision
from trust.layer import TrustLayer
from trust.peers import PeerResolver
from trust.pki import (
    PartyIdentity,
    fingerprint_sha256,
    load_certificates_pem,
    load_pem_identity,
    load_pkcs12_identity,
)
from trust.policy_store import PolicyStore
from trust.registry import (
    DSGO_DATASPACE,
    LocalDirectory,
    PartyDirectory,
    Registry,
)
from trust.registry_v3 import VersionedRegistryClient
from trust.witness import WitnessStore


@dataclass
class Runtime:
    """The node's long-lived parts; routes receive this and nothing global."""

    settings: Settings
    store: Store
    identity: PartyIdentity
    trusted_roots: set[str]
    layer: TrustLayer
    policies: PolicyStore
    enforcer: Enforcer
    register: AuthorizationRegister
    audit: AuditLog
    registry: Registry | None
    queries: QueryPool
    peers: PeerResolver
    witness: WitnessStore
    closed: threading.Event = field(default_factory=threading.Event)
    # Token requests (registry lookups) run here, not in the shared thread pool: a hung
    # registry then fills this bounded pool only (trust.registry_threads).
    lookups: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(4, thread_name_prefix="lookup")
    )
    # Queries with SERVICE wait on other nodes here, not in a query slot (federation.threads;
    # node/service/dispatch.py).
    federated: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(32, thread_name_prefix="federated")
    )
    # Query texts read recently (node/sparql/outline.py): a repeated text is not read again.
    outlines: OutlineCache = field(default_factory=OutlineCache)

    def record(self, event: AuditEvent) -> None:
        """Append to the audit log; raises AuditUnavailable so the guarded action is not performed."""
        self.audit.append(event)

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        self.audit.stop_keeper()
        self.queries.shutdown(wait=False, cancel_futures=True)
        self.lookups.shutdown(wait=False, cancel_futures=True)
        self.federated.shutdown(wait=False, cancel_futures=True)
        self.store.close()


def load_identity(settings: Settings) -> PartyIdentity:
    """The node's party key and certificate chain, from PEM files or a PKCS#12 bundle."""
    try:
        if settings.pkcs12_file is not None:
            return load_pkcs12_identity(
                settings.pkcs12_file.read_bytes(),
                settings.key_passphrase.encode() if settings.key_passphrase else None,
            )
        if settings.key_file is None or settings.cert_file is None:
            raise ConfigError("identity.key and identity.cert (or identity.pkcs12): required")
        return load_pem_identity(
            settings.key_file.read_bytes(),
            settings.cert_file.read_bytes(),
            passphrase=settings.key_passphrase.encode() if settings.key_passphrase else None,
            party_id=settings.party_id,
        )
    except FileNotFoundError as exc:
        raise ConfigError(f"identity: file not found: {exc.filename}") from None
    except ConfigError:
        raise
    except Exception as exc:  # a wrong passphrase or a damaged file: say which setting
        raise ConfigError(f"identity: cannot load the node's key/certificate: {exc}") from None


def trusted_fingerprints(settings: Settings) -> set[str]:
    """SHA-256 fingerprints of the scheme roots this node trusts (trust.trusted_roots PEM files)."""
    fingerprints: set[str] = set()
    for path in settings.trusted_roots:
        try:
            certs = load_certificates_pem(Path(path).read_bytes())
        except FileNotFoundError:
            raise ConfigError(f"trust.trusted_roots: file not found: {path}") from None
        fingerprints.update(fingerprint_sha256(c) for c in certs)
    if not fingerprints:
        raise ConfigError("trust.trusted_roots: at least one trusted root certificate is required")
    return fingerprints


def build_directory(
    settings: Settings, identity: PartyIdentity, roots: set[str]
) -> tuple[PartyDirectory, Registry | None]:
    """The participant registry as this node sees it: its own (registry role) or a remote one."""
    if "registry" in settings.roles:
        registry = open_registry(settings)
        return LocalDirectory(registry), registry
    if not settings.registry_url or not settings.registry_party_id:
        raise ConfigError(
            "trust.registry_url and trust.registry_party_id: required unless node.roles "
            "includes 'registry'"
        )
    client = VersionedRegistryClient(
        settings.registry_url,
        settings.registry_party_id,
        roots,
        identity,
        cache_seconds=settings.registry_cache_seconds,
        timeout=settings.bounds.registry_timeout,
        negative_seconds=settings.bounds.registry_negative_seconds,
        version=settings.registry_version,
    )
    return client, None


def build_peers(settings: Settings, directory: PartyDirectory) -> PeerResolver:
    """Outbound URL -> registered party, from the registry's records and federation config."""
    return PeerResolver(
        directory.list_parties,
        directory.get_party,
        own_party=settings.party_id,
        own_base=settings.base_iri,
        configured=settings.federation_endpoints,
        cache_seconds=settings.registry_cache_seconds,
    )


def build_runtime(settings: Settings, store: Store | None = None) -> Runtime:
    """Open the store and wire the trust, policy and audit parts as the settings say."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    identity = load_identity(settings)
    roots = trusted_fingerprints(settings)
    directory, registry = build_directory(settings, identity, roots)
    peers = build_peers(settings, directory)
    layer = TrustLayer(
        identity,
        roots,
        directory,
        settings.data_dir / "replay.sqlite",
        settings.data_dir / "access-token.key.pem",
        settings.base_iri,
        registry=registry,
        require_dataspace=DSGO_DATASPACE,
        resolve_party=lambda base: peers.resolve(base).party_id,
        client_timeout=remote_timeout(settings),
        replay=open_replay(settings),
        token_keys=open_token_keys(settings),
    )
    audit = AuditLog(
        open_audit_store(
            audit_url(settings),
            timeout=settings.bounds.audit_timeout,
            connect_timeout=settings.bounds.audit_connect_timeout,
        ),
        identity,
        checkpoint_every=settings.audit_checkpoint_every,
        checkpoint_seconds=settings.audit_checkpoint_seconds,
    )
    policies = open_policies(settings)

    def on_decision(decision: Decision) -> None:
        audit.append(decision_event(decision))

    enforcer = Enforcer(
        policies,
        node_party_id=settings.party_id,
        base_iri=settings.base_iri,
        on_decision=on_decision,
        peers=peers,
    )
    register = AuthorizationRegister(identity, policies, directory=directory, trusted_sha256=roots)
    if store is None:
        store = open_store(settings)
    return Runtime(
        settings=settings,
        store=store,
        identity=identity,
        trusted_roots=roots,
        layer=layer,
        policies=policies,
        enforcer=enforcer,
        register=register,
        audit=audit,
        registry=registry,
        queries=_query_pool(settings.query_slots),
        peers=peers,
        witness=WitnessStore(settings.data_dir / "witness.sqlite", identity, roots),
        lookups=ThreadPoolExecutor(settings.bounds.registry_threads, thread_name_prefix="lookup"),
        federated=ThreadPoolExecutor(
            settings.bounds.federated_threads, thread_name_prefix="federated"
        ),
    )


def remote_timeout(settings: Settings) -> httpx.Timeout:
    """Connect and read timeouts for calls to other nodes (federation.connect/read_timeout)."""
    b = settings.bounds
    read = min(
        b.remote_read_timeout, REMOTE_SHARE * (settings.query_timeout or b.remote_read_timeout)
    )
    return httpx.Timeout(read, connect=b.remote_connect_timeout)


QUERY_THREAD_STACK = 64 * 1024 * 1024


class QueryPool(ThreadPoolExecutor):
    """The engine slots, counting work submitted and not yet finished: a query thread can then
    see whether others wait for a slot (node/service/query.py writes its audit entry itself
    when none does, and leaves it to the group commit off the slot when some do)."""

    def __init__(self, slots: int) -> None:
        super().__init__(slots, thread_name_prefix="sparql")
        self.slots = slots
        self._unfinished = 0
        self._count = threading.Lock()

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        with self._count:
            self._unfinished += 1
        try:
            future = super().submit(fn, *args, **kwargs)
        except BaseException:
            self._finished(None)
            raise
        future.add_done_callback(self._finished)
        return future

    def _finished(self, _future: object) -> None:
        with self._count:
            self._unfinished -= 1

    def idle(self) -> bool:
        """Whether no submission is running or waiting."""
        return self._unfinished == 0

    def waiting(self) -> int:
        """How many submissions wait for a slot now (0 when every one has a thread)."""
        return max(self._unfinished - self.slots, 0)


def _query_pool(slots: int) -> QueryPool:
    """Query threads with a large stack: the engine recurses over the query's structure (the
    [query] limits keep it far below what even a small stack holds; this is the second fence)."""
    previous = threading.stack_size(QUERY_THREAD_STACK)
    try:
        pool = QueryPool(slots)
        futures = [pool.submit(time.sleep, 0.01) for _ in range(slots)]  # start them now
        for f in futures:
            f.result()
    finally:
        threading.stack_size(previous)
    return pool
