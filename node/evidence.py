"""Delegation evidence a caller brings from the data owner's external authorisation register."""

from __future__ import annotations

from node.enforcement import Caller
from node.runtime import Runtime
from trust.authorization_register import verify_external_evidence
from trust.delegation import Policy
from trust.errors import InvalidRequest, TrustError

HEADER = "delegation-evidence"
MAX_BYTES = 32 * 1024


def evidence_from(token: str | None, rt: Runtime, caller: Caller) -> list[Policy]:
    """The verified evidence in a `Delegation-Evidence` header value (none if absent; 401 if invalid).

    It counts only when its signer is the data owner's own register (the owner itself, a register
    its registry record names, or one in `trust.authorisation_registers`) and its policyIssuer is
    the data owner (this node's party).
    """
    if not token:
        return []
    try:
        if len(token) > MAX_BYTES:
            raise InvalidRequest("delegation_evidence", f"{HEADER} header over {MAX_BYTES} bytes")
        return _verified(token, rt, caller.party_id)
    except TrustError as exc:
        rt.enforcer.refuse(caller, "delegation_evidence", HEADER, exc.description)
        raise


def _verified(token: str, rt: Runtime, caller: str) -> list[Policy]:
    policy = verify_external_evidence(
        token.strip(),
        caller=caller,
        audiences=[caller, rt.settings.party_id],
        trusted_sha256=rt.trusted_roots,
        directory=rt.layer.directory,
        data_owner=rt.settings.party_id,
        accepted_registers=rt.settings.authorisation_registers,
    )
    return [policy]
