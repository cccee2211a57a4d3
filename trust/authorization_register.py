"""The Authorisation Registry role: answer delegation masks with signed evidence, and verify
evidence another register signed.

Access rule (iSHARE): a requester may ask only about policies it issued or that apply to it; a
service provider asking for a consumer passes the consumer's client assertion in previous_steps.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trust.delegation import InvalidMask, Policy, evaluate_mask, validate_evidence
from trust.errors import TrustError
from trust.ishare_jwt import (
    create_signed_response,
    parse_compact,
    verify_client_assertion,
    verify_signed_response,
)
from trust.pki import PartyIdentity
from trust.policy_store import PolicyStore
from trust.registry import PartyDirectory

EVIDENCE_CLAIM = "delegationEvidence"
AR_ROLE = "AuthorisationRegistry"
MAX_PREVIOUS_STEPS = 5


class NotEntitled(TrustError):
    """The requester is neither policy issuer nor access subject and brought no consumer step."""

    error = "access_denied"


class PreviousStepsError(TrustError):
    """A forwarded client assertion in previous_steps did not validate."""

    error = "previous_steps_validation_error"


class AssertionPairError(TrustError):
    """The forwarded assertion is not the access subject's, addressed to the requester."""

    error = "invalid_delegation_assertion_pair"


class NoPolicy(TrustError):
    """No policy at all exists for the mask's issuer and subject (iSHARE AR answers 404)."""

    error = "not_found"


class ForeignEvidence(TrustError):
    """Valid evidence from a register that is not the data owner's (HTTP 403)."""

    error = "access_denied"


class EvidenceError(TrustError):
    """Evidence from an external register is not acceptable; the request is unauthorised."""

    error = "invalid_token"


@dataclass(frozen=True)
class DelegationAnswer:
    """The evidence produced for a requester and the policies that were looked at."""

    evidence: dict[str, Any]
    token: str
    policy_ids: tuple[str, ...]

    @property
    def effect(self) -> str:
        rules = [
            rule["effect"]
            for pset in self.evidence[EVIDENCE_CLAIM]["policySets"]
            for policy in pset["policies"]
            for rule in policy["rules"]
        ]
        return "Permit" if rules and all(r == "Permit" for r in rules) else "Deny"


class AuthorizationRegister:
    """Evaluates masks against the node's policy store and signs the evidence as the register."""

    def __init__(
        self,
        identity: PartyIdentity,
        policies: PolicyStore,
        *,
        trusted_sha256: set[str],
        directory: PartyDirectory,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.identity = identity
        self.policies = policies
        self.trusted_sha256 = trusted_sha256
        self.directory = directory
        self.clock = clock

    def delegation(self, body: Mapping[str, Any], requester: str) -> DelegationAnswer:
        """POST /delegation: check the access rule, evaluate the mask, sign the evidence."""
        request = body.get("delegationRequest")
        if not isinstance(request, Mapping):
            raise InvalidMask("body must hold a delegationRequest object")
        steps = _previous_steps(body, request)
        issuer = request.get("policyIssuer")
        target = request.get("target")
        subject = target.get("accessSubject") if isinstance(target, Mapping) else None
        if not isinstance(issuer, str) or not isinstance(subject, str):
            raise InvalidMask("policyIssuer and target.accessSubject are required")
        now = self.clock()
        if requester not in (issuer, subject):
            if not steps:
                raise NotEntitled(
                    "access_rule", "you may only ask about policies you issued or that apply to you"
                )
            for step in steps:
                self._check_step(step, requester=requester, subject=subject, now=now)
        records = self.policies.list(subject=subject, issuer=issuer)
        if not records:
            raise NoPolicy("policy", "no policy for this issuer and access subject")
        evidence = evaluate_mask(request, records, now)
        token = create_signed_response(
            self.identity, EVIDENCE_CLAIM, evidence[EVIDENCE_CLAIM], requester, now=now
        )
        return DelegationAnswer(evidence, token, tuple(r.id for r in records))

    def _check_step(self, step: str, *, requester: str, subject: str, now: float) -> None:
        """A forwarded assertion: signed by the access subject, addressed to the requester."""
        try:
            verified = verify_client_assertion(
                step, audience=requester, trusted_sha256=self.trusted_sha256, now=now
            )
        except TrustError as exc:
            raise PreviousStepsError("previous_steps", exc.description) from exc
        if verified.issuer != subject:
            raise AssertionPairError("previous_steps", "assertion is not the access subject's")
        party = self.directory.get_party(subject)
        if (
            party is None
            or not party.is_active(_utc(now))
            or not party.has_certificate(verified.leaf)
        ):
            raise PreviousStepsError("previous_steps", "access subject not an active party")


def verify_external_evidence(
    token: str,
    *,
    caller: str,
    audiences: Sequence[str],
    trusted_sha256: set[str],
    directory: PartyDirectory,
    now: float | None = None,
    data_owner: str | None = None,
    accepted_registers: Sequence[str] = (),
    service_provider: str | None = None,
    service: str | None = None,
) -> Policy:
    """Evidence JWT from another register -> a Policy for `caller`, or EvidenceError (401/403).

    With `data_owner`, the evidence counts only for that owner's data: its policyIssuer must be
    the owner, and its signer the owner itself, a register the owner's registry record lists
    in `auth_registries`, or one of `accepted_registers` (configured by the owner). A listed
    register that is the owner's for one service provider / service only (iSHARE 3.0
    `serviceProviderPartyId`, `serviceIdentifier`) counts only there: `service_provider`
    (default: the data owner, who serves its own data) and `service` (None: any).

    Checks: signature and x5c chain to a trusted CA, the issuer is an active registered
    AuthorisationRegistry whose certificate it is, the evidence is about the caller, and the
    evidence window contains `now`.
    """
    now = time.time() if now is None else now
    try:
        _, unverified, _, _ = parse_compact(token)
        verified = verify_signed_response(
            token,
            claim=EVIDENCE_CLAIM,
            issuer=None,
            audience=_aud_of(unverified, audiences),
            trusted_sha256=trusted_sha256,
            now=now,
        )
        evidence = validate_evidence(verified.claims[EVIDENCE_CLAIM])
    except TrustError as exc:
        raise EvidenceError("delegation_evidence", exc.description) from exc
    party = directory.get_party(verified.issuer)
    at = _utc(now)
    if party is None or not party.is_active(at) or not party.has_certificate(verified.leaf):
        raise EvidenceError("delegation_evidence", "issuer is not an active registered party")
    if not any(_role_active(role, at) for role in party.roles):
        raise EvidenceError("delegation_evidence", "issuer is not an Authorisation Registry")
    if evidence["target"]["accessSubject"] != caller:
        raise EvidenceError("delegation_evidence", "evidence is not about the caller")
    if data_owner is not None:
        if evidence.get("policyIssuer") != data_owner:
            raise ForeignEvidence(
                "delegation_evidence", f"policyIssuer is not the data owner {data_owner}"
            )
        owner = directory.get_party(data_owner) if verified.issuer != data_owner else None
        registers = {data_owner, *accepted_registers}
        if owner is not None:
            provider = service_provider or data_owner
            registers |= {a.id for a in owner.auth_registries if a.serves(provider, service)}
        if verified.issuer not in registers:
            raise ForeignEvidence(
                "delegation_evidence",
                f"signed by {verified.issuer}, which is not an authorisation register of the "
                f"data owner {data_owner}",
            )
    if not evidence["notBefore"] <= now < evidence["notOnOrAfter"]:
        raise EvidenceError("delegation_evidence", "evidence outside its time window")
    return Policy(f"evidence:{verified.issuer}:{verified.claims['jti']}", evidence)


def _previous_steps(body: Mapping[str, Any], request: Mapping[str, Any]) -> list[str]:
    """previous_steps on the root (iSHARE docs), in the request (OAS), or camelCase (v3)."""
    for holder in (body, request):
        for key in ("previous_steps", "previousSteps"):
            if key in holder:
                steps = holder[key]
                if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
                    raise InvalidMask("previous_steps must be a list of JWT strings")
                if len(steps) > MAX_PREVIOUS_STEPS:
                    raise InvalidMask("too many previous_steps")
                return steps
    return []


def _aud_of(claims: Mapping[str, Any], audiences: Sequence[str]) -> str | None:
    """The audience to insist on: whichever of ours the token names (else the first of ours)."""
    aud = claims.get("aud")
    if isinstance(aud, str) and aud in audiences:
        return aud
    return audiences[0] if audiences else None


def _role_active(role: Any, at: dt.datetime) -> bool:
    if getattr(role, "role", None) != AR_ROLE:
        return False
    start, end = getattr(role, "start_date", None), getattr(role, "end_date", None)
    day = at.date().isoformat()
    return (start is None or start[:10] <= day) and (end is None or day <= end[:10])


def _utc(now: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(now, dt.UTC)
