"""Everything a running node holds, built once from its settings: store, identity, trust, policies, audit."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from node.config import ConfigError, Settings
from node.enforcement import Enforcer
from node.store import Store, open_store
from trust.audit import AuditEvent, AuditLog, decision_event
from trust.audit_store import open_audit_store
from trust.authorization_register import AuthorizationRegister
from trust.delegation import Decision
from trust.layer import TrustLayer
from trust.pki import (
    PartyIdentity,
    fingerprint_sha256,
    load_certificates_pem,
    load_pem_identity,
    load_pkcs12_identity,
)
from trust.policy_store import PolicyStore
from trust.registry import DSGO_DATASPACE, LocalDirectory, Registry, RegistryClient


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
    queries: ThreadPoolExecutor
    closed: threading.Event = field(default_factory=threading.Event)

    def record(self, event: AuditEvent) -> None:
        """Append to the audit log; raises AuditUnavailable so the guarded action is not performed."""
        self.audit.append(event)

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        self.queries.shutdown(wait=False, cancel_futures=True)
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


def build_runtime(settings: Settings, store: Store | None = None) -> Runtime:
    """Open the store and wire the trust, policy and audit parts as the settings say."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    identity = load_identity(settings)
    roots = trusted_fingerprints(settings)
    registry = None
    if "registry" in settings.roles:
        registry = Registry(settings.data_dir / "registry.sqlite")
        directory = LocalDirectory(registry)
    else:
        if not settings.registry_url or not settings.registry_party_id:
            raise ConfigError(
                "trust.registry_url and trust.registry_party_id: required unless node.roles "
                "includes 'registry'"
            )
        directory = RegistryClient(
            settings.registry_url,
            settings.registry_party_id,
            roots,
            identity,
            cache_seconds=settings.registry_cache_seconds,
        )
    layer = TrustLayer(
        identity,
        roots,
        directory,
        settings.data_dir / "replay.sqlite",
        settings.data_dir / "access-token.key.pem",
        settings.base_iri,
        registry=registry,
        require_dataspace=DSGO_DATASPACE,
    )
    audit = AuditLog(
        open_audit_store(
            settings.audit_dsn
            if settings.audit_backend == "postgresql"
            else str(settings.data_dir / "audit.sqlite")
        ),
        identity,
    )
    policies = PolicyStore(
        settings.data_dir / "policies.sqlite", issuer=settings.party_id, base_iri=settings.base_iri
    )

    def on_decision(decision: Decision) -> None:
        audit.append(decision_event(decision))

    enforcer = Enforcer(
        policies,
        node_party_id=settings.party_id,
        base_iri=settings.base_iri,
        on_decision=on_decision,
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
        queries=ThreadPoolExecutor(settings.query_slots, thread_name_prefix="sparql"),
    )
