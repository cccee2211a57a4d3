"""Delegation evidence a caller brings from the data owner's external authorisation register."""

from __future__ import annotations

from node.runtime import Runtime
from trust.authorization_register import verify_external_evidence
from trust.delegation import Policy
from trust.errors import InvalidRequest

HEADER = "delegation-evidence"
MAX_BYTES = 32 * 1024


def evidence_from(token: str | None, rt: Runtime, caller: str) -> list[Policy]:
    """The verified evidence in a `Delegation-Evidence` header value (none if absent; 401 if invalid).

    It counts only where the data owner (this node's party) issued it: the enforcer checks that.
    """
    if not token:
        return []
    if len(token) > MAX_BYTES:
        raise InvalidRequest("delegation_evidence", f"{HEADER} header over {MAX_BYTES} bytes")
    policy = verify_external_evidence(
        token.strip(),
        caller=caller,
        audiences=[caller, rt.settings.party_id],
        trusted_sha256=rt.trusted_roots,
        directory=rt.layer.directory,
    )
    return [policy]
