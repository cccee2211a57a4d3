"""An iSHARE-compatible trust layer, embeddable without the node: X.509 party certificates, a
participant registry, `/connect/token` with signed client assertions, access tokens, delegation
evidence, and a tamper-evident audit log.

The names below are the public face; import them from `trust` (each loads its module on first
use, so `import trust` stays cheap). Everything else in the submodules is an implementation detail.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_PUBLIC = {
    # identities and certificates
    "PartyIdentity": "pki",
    "DevCA": "pki",
    "create_dev_ca": "pki",
    "issue_party_certificate": "pki",
    "load_pem_identity": "pki",
    "load_pkcs12_identity": "pki",
    "validate_chain": "pki",
    "validate_party_id": "pki",
    "fingerprint_sha256": "pki",
    # iSHARE JWTs and tokens
    "create_client_assertion": "ishare_jwt",
    "verify_client_assertion": "ishare_jwt",
    "create_signed_response": "ishare_jwt",
    "verify_signed_response": "ishare_jwt",
    "AccessTokenIssuer": "access_token",
    "AccessTokenVerifier": "access_token",
    "AccessClaims": "access_token",
    "ReplayCache": "replay",
    "validate_token_request": "assertion",
    "TrustLayer": "layer",
    "TrustClient": "client",
    "capabilities_info": "capabilities",
    # the participant registry and who a URL belongs to
    "Registry": "registry",
    "RegistryClient": "registry",
    "LocalDirectory": "registry",
    "Party": "registry",
    "AuthRegistry": "registry",
    "PeerResolver": "peers",
    "Peer": "peers",
    "check_outbound_url": "peers",
    # iSHARE 3.0 beside 2.x
    "VersionedRegistryClient": "registry_v3",
    "TrustLayerV3": "layer_v3",
    "party_to_v3": "ishare3",
    "party_from_v3": "ishare3",
    # delegation
    "Policy": "delegation",
    "Scope": "delegation",
    "PartialGrant": "delegation",
    "Decision": "delegation",
    "evaluate_mask": "delegation",
    "decide": "delegation",
    "check_tree": "conditions",
    "holds": "conditions",
    "parse_context": "conditions",
    "PolicyStore": "policy_store",
    "AuthorizationRegister": "authorization_register",
    "verify_external_evidence": "authorization_register",
    "to_odrl": "odrl",
    # audit
    "AuditLog": "audit",
    "AuditEvent": "audit",
    "AuditEntry": "audit",
    "VerifyReport": "audit",
    "verify": "audit",
    "open_audit_store": "audit_store",
    "WitnessStore": "witness",
    "check_against_witness": "witness",
    # signed datasets
    "canonical_nquads": "canon",
    "sign_dataset": "signing",
    "verify_dataset": "signing",
    # errors (OAuth / iSHARE codes, no HTTP status)
    "TrustError": "errors",
    "InvalidRequest": "errors",
    "InvalidClient": "errors",
    "InvalidGrant": "errors",
    "InvalidScope": "errors",
    "InvalidToken": "errors",
    "InsufficientScope": "errors",
    "UnsupportedGrantType": "errors",
    "NotFound": "errors",
    "RegistryUnavailable": "errors",
    "UpstreamError": "errors",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'trust' has no attribute {name!r}")
    value = getattr(import_module(f"trust.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
