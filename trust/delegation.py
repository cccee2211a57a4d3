"""Delegation policies in iSHARE delegation-evidence form, and their evaluation.

`evaluate_mask` answers a delegation mask with iSHARE delegation evidence; `decide` turns the policies
that apply to one caller into the `Scope` of linked data it may read. Combining rules follow iSHARE:
policies permit-overrides, rules within a policy deny-overrides, deny by default.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trust.conditions import (
    Context,
    InvalidCondition,
    check_tree,
    parse_context,
    policy_holds,
    rule_holds,
)
from trust.errors import TrustError
from vocab.namespaces import DSGO

DSGO_DATASET = DSGO + "Dataset"
ISHARE_READ = "ISHARE.READ"
DSGO_QUERY = "dsgo:query"
DSGO_FEDERATE = "dsgo:federate"
DSGO_SERVICE = DSGO + "Service"
WILDCARD = "*"
DEFAULT_LICENSE = "ISHARE.0001"
MAX_MASK_ATOMS = 20_000

_ALIASES = {
    "dsgo:Dataset": DSGO_DATASET,
    "dsgo:Service": DSGO_SERVICE,
    DSGO + "query": DSGO_QUERY,
    DSGO + "federate": DSGO_FEDERATE,
}
# Which policy actions grant a requested read action (reading by query is reading).
_GRANTING = {
    ISHARE_READ: frozenset({ISHARE_READ}),
    DSGO_QUERY: frozenset({ISHARE_READ, DSGO_QUERY}),
    # Making the node call another node on the caller's behalf is granted only by name.
    DSGO_FEDERATE: frozenset({DSGO_FEDERATE}),
}


class DelegationError(TrustError):
    """A policy or mask that cannot be evaluated; maps to HTTP 400 invalid_request."""

    error = "invalid_request"
    check_name = "delegation"

    def __init__(self, description: str) -> None:
        super().__init__(self.check_name, description)


class InvalidPolicy(DelegationError):
    """A stored or submitted policy is not valid iSHARE delegation evidence."""

    check_name = "policy"


class InvalidMask(DelegationError):
    """A delegation mask is not a valid iSHARE delegation request."""

    check_name = "delegation_mask"


@dataclass(frozen=True, eq=False)
class Policy:
    """One stored policy: an id plus its iSHARE `delegationEvidence` document."""

    id: str
    evidence: Mapping[str, Any]

    @property
    def issuer(self) -> str:
        return self.evidence["policyIssuer"]

    @property
    def subject(self) -> str:
        return self.evidence["target"]["accessSubject"]

    @property
    def not_before(self) -> int:
        return int(self.evidence["notBefore"])

    @property
    def not_on_or_after(self) -> int:
        return int(self.evidence["notOnOrAfter"])

    def active(self, now: float) -> bool:
        """True inside the policy's time window; outside it nothing of the policy applies."""
        return self.not_before <= now < self.not_on_or_after


@dataclass(frozen=True)
class DenyRule:
    """The part of a grant a Deny rule takes away (None = any)."""

    datasets: frozenset[str] | None = None
    subjects: frozenset[str] | None = None
    rdf_type: str | None = None
    attributes: frozenset[str] | None = None
    ids_any: frozenset[str] | None = None  # rule without a type: ids may name a subject or dataset


@dataclass(frozen=True)
class PartialGrant:
    """Part of the data: resources (by id or by rdf:type) in some datasets, some properties."""

    policy_id: str
    datasets: frozenset[str] | None = None  # None = every dataset
    subjects: frozenset[str] | None = None  # None = every subject (subject to rdf_type)
    rdf_type: str | None = None
    attributes: frozenset[str] | None = None  # None = every property
    denies: tuple[DenyRule, ...] = ()


@dataclass(frozen=True)
class Scope:
    """What one caller may read: whole datasets, partial grants, and the policies that applied."""

    whole_datasets: frozenset[str] = frozenset()  # graph IRIs; "*" = every dataset
    partial: tuple[PartialGrant, ...] = ()
    policy_ids: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.whole_datasets and not self.partial

    def reaches_dataset(self, graph: str) -> bool:
        """True when the whole dataset `graph` is granted."""
        return WILDCARD in self.whole_datasets or graph in self.whole_datasets

    def reaches_service(self, endpoint: str) -> bool:
        """True when a `dsgo:federate` scope names `endpoint` (or every service)."""
        if WILDCARD in self.whole_datasets:
            return True
        # A grant of every service keeps its type; one that lists endpoints keeps them as
        # subjects (only dsgo:federate policies make up such a scope).
        return any(
            (g.rdf_type == DSGO_SERVICE and g.subjects is None)
            or (g.subjects is not None and endpoint in g.subjects)
            for g in self.partial
        )


@dataclass(frozen=True)
class Decision:
    """One enforcement decision, as handed to the audit hook."""

    effect: str  # "Permit" | "Deny"
    party: str
    action: str
    target: str
    policy_ids: tuple[str, ...] = ()
    reason: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    token_jti: str | None = None


def evaluate_mask(
    mask: Mapping[str, Any], policies: Iterable[Policy], now: float
) -> dict[str, Any]:
    """Answer a delegation mask with iSHARE delegation evidence (Permit or Deny per mask policy)."""
    request = mask.get("delegationRequest", mask)
    issuer, subject = _mask_parties(request)
    candidates = [p for p in policies if p.issuer == issuer and p.subject == subject]
    active = [p for p in candidates if p.active(now)]
    evidence_sets: list[dict[str, Any]] = []
    window: Policy | None = None
    for mask_set in _list(request, "policySets", InvalidMask):
        out_policies: list[dict[str, Any]] = []
        deciding: tuple[Policy, Mapping[str, Any]] | None = None
        for mask_policy in _list(mask_set, "policies", InvalidMask):
            target = mask_policy.get("target")
            if not isinstance(target, Mapping):
                raise InvalidMask("mask policy without target")
            try:
                context = parse_context(target.get("context"), "target.context")
            except InvalidCondition as exc:
                raise InvalidMask(exc.description) from None
            effect, by = _evaluate_target(target, active, context)
            if by is not None and deciding is None:
                deciding = by
            out_policies.append({"target": copy.deepcopy(target), "rules": [{"effect": effect}]})
        if deciding is None:
            deciding = _first_set(active) or _first_set(candidates)
        if deciding is not None and window is None:
            window = deciding[0]
        evidence_sets.append(_evidence_set(deciding, out_policies))
    if window is not None:
        not_before, not_on_or_after = window.not_before, window.not_on_or_after
    else:
        not_before, not_on_or_after = int(now), int(now) + 30
    return {
        "delegationEvidence": {
            "notBefore": not_before,
            "notOnOrAfter": not_on_or_after,
            "policyIssuer": issuer,
            "target": {"accessSubject": subject},
            "policySets": evidence_sets,
        }
    }


def decide(
    caller: str,
    policies: Iterable[Policy],
    now: float,
    *,
    issuer: str | None = None,
    service_provider: str | None = None,
    action: str = ISHARE_READ,
    context: Context | None = None,
) -> Scope:
    """The Scope `caller` may read: active Permit policies for it, narrowed by their Deny rules.

    `context`: the request's key-value context; a policy with conditions (iSHARE 3.0) grants
    only where they hold in it, a Deny rule with conditions takes away only where they hold.
    """
    context = context or {}
    granting = _GRANTING.get(_ALIASES.get(action, action))
    if granting is None:
        raise DelegationError(f"unsupported action {action!r}")
    whole: set[str] = set()
    partial: list[PartialGrant] = []
    ids: list[str] = []
    for record in policies:
        if record.subject != caller or not record.active(now):
            continue
        if issuer is not None and record.issuer != issuer:
            continue
        applied = False
        for pset in record.evidence.get("policySets", ()):
            for policy in pset.get("policies", ()):
                if not policy_holds(policy, context):
                    continue
                grant = _grant_of(record.id, policy, granting, service_provider, context)
                if grant is None:
                    continue
                applied = True
                if isinstance(grant, frozenset):
                    whole |= grant
                else:
                    partial.append(grant)
        if applied:
            ids.append(record.id)
    return Scope(frozenset(whole), tuple(partial), tuple(ids))


def validate_evidence(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Check a policy is well-formed iSHARE delegation evidence; return the inner document."""
    evidence = doc.get("delegationEvidence", doc)
    if not isinstance(evidence, Mapping):
        raise InvalidPolicy("delegationEvidence must be an object")
    for key in ("notBefore", "notOnOrAfter"):
        if not isinstance(evidence.get(key), int) or isinstance(evidence.get(key), bool):
            raise InvalidPolicy(f"{key} must be an integer (unix seconds)")
    if evidence["notOnOrAfter"] <= evidence["notBefore"]:
        raise InvalidPolicy("notOnOrAfter must be after notBefore")
    _mask_parties(evidence, InvalidPolicy)
    for pset in _list(evidence, "policySets", InvalidPolicy):
        for policy in _list(pset, "policies", InvalidPolicy):
            _check_policy(policy)
    return dict(evidence)


def build_policy(
    *,
    issuer: str,
    subject: str,
    resource_type: str,
    identifiers: Sequence[str] = (WILDCARD,),
    attributes: Sequence[str] | None = None,
    actions: Sequence[str] = (ISHARE_READ,),
    not_before: int,
    not_on_or_after: int,
    deny: Sequence[Mapping[str, Any]] = (),
    service_providers: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A one-policy delegationEvidence document: a Permit, optionally narrowed by Deny targets."""
    resource: dict[str, Any] = {"type": resource_type, "identifiers": list(identifiers)}
    if attributes is not None:
        resource["attributes"] = list(attributes)
    target: dict[str, Any] = {"resource": resource, "actions": list(actions)}
    if service_providers is not None:
        target["environment"] = {"serviceProviders": list(service_providers)}
    rules: list[dict[str, Any]] = [{"effect": "Permit"}]
    rules += [{"effect": "Deny", "target": dict(t)} for t in deny]
    evidence = {
        "notBefore": int(not_before),
        "notOnOrAfter": int(not_on_or_after),
        "policyIssuer": issuer,
        "target": {"accessSubject": subject},
        "policySets": [
            {
                "maxDelegationDepth": 0,
                "target": {"environment": {"licenses": [DEFAULT_LICENSE]}},
                "policies": [{"target": target, "rules": rules}],
            }
        ],
    }
    return validate_evidence(evidence)


# --- mask evaluation helpers ---------------------------------------------------------------


def _mask_parties(request: Mapping[str, Any], exc: type[DelegationError] = InvalidMask):
    issuer = request.get("policyIssuer")
    target = request.get("target")
    subject = target.get("accessSubject") if isinstance(target, Mapping) else None
    if not isinstance(issuer, str) or not issuer or not isinstance(subject, str) or not subject:
        raise exc("policyIssuer and target.accessSubject are required")
    return issuer, subject


def _list(obj: Mapping[str, Any], key: str, exc: type[DelegationError]) -> list[Any]:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    if not isinstance(value, list) or not value:
        raise exc(f"{key} must be a non-empty list")
    if not all(isinstance(v, Mapping) for v in value):
        raise exc(f"{key} entries must be objects")
    return value


def _strings(value: Any, what: str, exc: type[DelegationError]) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise exc(f"{what} must be a non-empty list of strings")
    return value


def _check_policy(policy: Mapping[str, Any]) -> None:
    target = policy.get("target")
    if not isinstance(target, Mapping) or not isinstance(target.get("resource"), Mapping):
        raise InvalidPolicy("policy target.resource is required")
    resource = target["resource"]
    if not isinstance(resource.get("type"), str):
        raise InvalidPolicy("resource.type is required")
    _strings(resource.get("identifiers"), "resource.identifiers", InvalidPolicy)
    if "attributes" in resource:
        _strings(resource["attributes"], "resource.attributes", InvalidPolicy)
    if "actions" in target:
        _strings(target["actions"], "actions", InvalidPolicy)
    rules = _list(policy, "rules", InvalidPolicy)
    if rules[0].get("effect") != "Permit":
        raise InvalidPolicy("the first rule of a policy must be the Permit rule")
    for rule in rules[1:]:
        if rule.get("effect") != "Deny" or not (
            isinstance(rule.get("target"), Mapping) or "conditions" in rule
        ):
            raise InvalidPolicy("rules after the first must be Deny rules with a target")
    trees = [r["conditions"] for r in rules if "conditions" in r]
    ctx = target.get("context")
    if ctx is not None:
        if not isinstance(ctx, Mapping):
            raise InvalidPolicy("target.context must be an object")
        if "conditions" in ctx:
            trees.append(ctx["conditions"])
    for tree in trees:
        try:
            check_tree(tree)
        except InvalidCondition as exc:
            raise InvalidPolicy(exc.description) from None


def _mask_atoms(target: Mapping[str, Any]) -> tuple[str, list[tuple[str, str, str, str]]]:
    resource = target.get("resource")
    if not isinstance(resource, Mapping) or not isinstance(resource.get("type"), str):
        raise InvalidMask("mask target.resource.type is required")
    ids = _strings(resource.get("identifiers"), "mask identifiers", InvalidMask)
    attrs = _strings(resource.get("attributes", [WILDCARD]), "mask attributes", InvalidMask)
    actions = _strings(target.get("actions", [WILDCARD]), "mask actions", InvalidMask)
    env = target.get("environment") or {}
    sps = _strings(env.get("serviceProviders", [WILDCARD]), "serviceProviders", InvalidMask)
    if len(ids) * len(attrs) * len(actions) * len(sps) > MAX_MASK_ATOMS:
        raise InvalidMask("delegation mask too large")
    return resource["type"], list(itertools.product(ids, attrs, actions, sps))


def _evaluate_target(
    target: Mapping[str, Any], active: list[Policy], context: Context
) -> tuple[str, tuple[Policy, Mapping[str, Any]] | None]:
    """Permit only if every (identifier, attribute, action, provider) asked for is permitted."""
    rtype, atoms = _mask_atoms(target)
    first: tuple[Policy, Mapping[str, Any]] | None = None
    for atom in atoms:
        by = _permitting_policy(rtype, atom, active, context)
        if by is None:
            return "Deny", None
        first = first or by
    return "Permit", first


def _permitting_policy(
    rtype: str, atom: tuple[str, str, str, str], active: list[Policy], context: Context
) -> tuple[Policy, Mapping[str, Any]] | None:
    for record in active:
        for pset in record.evidence.get("policySets", ()):
            for policy in pset.get("policies", ()):
                if (
                    _covers(policy.get("target", {}), rtype, atom)
                    and policy_holds(policy, context)
                    and not any(
                        _deny_matches(rule.get("target") or {}, rtype, atom)
                        and rule_holds(rule, context)
                        for rule in policy.get("rules", ())[1:]
                    )
                ):
                    return record, pset
    return None


def _covers(target: Mapping[str, Any], rtype: str, atom: tuple[str, str, str, str]) -> bool:
    ident, attr, action, sp = atom
    resource = target.get("resource") or {}
    if resource.get("type") != rtype:
        return False
    return (
        _includes(resource.get("identifiers", []), ident)
        and _includes(resource.get("attributes"), attr)
        and _includes(target.get("actions"), action)
        and _includes((target.get("environment") or {}).get("serviceProviders"), sp)
    )


def _includes(values: list[str] | None, wanted: str) -> bool:
    """Policy side: omitted or '*' covers all; a '*' asked for needs a '*' (or omitted) grant."""
    return values is None or WILDCARD in values or wanted in values


def _deny_matches(target: Mapping[str, Any], rtype: str, atom: tuple[str, str, str, str]) -> bool:
    ident, attr, action, sp = atom
    resource = target.get("resource") or {}
    if "type" in resource and resource["type"] != rtype:
        return False
    return (
        _overlaps(resource.get("identifiers"), ident)
        and _overlaps(resource.get("attributes"), attr)
        and _overlaps(target.get("actions"), action)
        and _overlaps((target.get("environment") or {}).get("serviceProviders"), sp)
    )


def _overlaps(values: list[str] | None, wanted: str) -> bool:
    return values is None or WILDCARD in values or wanted == WILDCARD or wanted in values


def _first_set(records: list[Policy]) -> tuple[Policy, Mapping[str, Any]] | None:
    for record in records:
        for pset in record.evidence.get("policySets", ()):
            return record, pset
    return None


def _evidence_set(
    deciding: tuple[Policy, Mapping[str, Any]] | None, policies: list[dict[str, Any]]
) -> dict[str, Any]:
    pset = deciding[1] if deciding else {}
    target = pset.get("target") or {"environment": {"licenses": [DEFAULT_LICENSE]}}
    return {
        "maxDelegationDepth": int(pset.get("maxDelegationDepth", 0)),
        "target": copy.deepcopy(target),
        "policies": policies,
    }


# --- scope helpers --------------------------------------------------------------------------


def _grant_of(
    policy_id: str,
    policy: Mapping[str, Any],
    granting: frozenset[str],
    service_provider: str | None,
    context: Context,
) -> frozenset[str] | PartialGrant | None:
    """Translate one Permit policy to whole datasets (frozenset) or a PartialGrant, or None."""
    target = policy.get("target") or {}
    actions = target.get("actions")
    if actions is not None and not granting.intersection(_ALIASES.get(a, a) for a in actions):
        return None
    sps = (target.get("environment") or {}).get("serviceProviders")
    if service_provider is not None and sps is not None and service_provider not in sps:
        if WILDCARD not in sps:
            return None
    resource = target.get("resource") or {}
    rtype = _ALIASES.get(resource.get("type"), resource.get("type"))
    ids = _id_set(resource.get("identifiers"))
    attrs = _id_set(resource.get("attributes"))
    denies = tuple(
        _deny_of(rule.get("target") or {}, granting)
        for rule in policy.get("rules", ())[1:]
        if _deny_applies(rule.get("target") or {}, granting) and rule_holds(rule, context)
    )
    if rtype == DSGO_DATASET:
        if attrs is None and not denies:
            return frozenset({WILDCARD}) if ids is None else ids
        return PartialGrant(policy_id, datasets=ids, attributes=attrs, denies=denies)
    if not isinstance(rtype, str) or not rtype:
        return None
    if ids is None:
        return PartialGrant(policy_id, rdf_type=rtype, attributes=attrs, denies=denies)
    return PartialGrant(policy_id, subjects=ids, attributes=attrs, denies=denies)


def _id_set(values: list[str] | None) -> frozenset[str] | None:
    if values is None or WILDCARD in values:
        return None
    return frozenset(values)


def _deny_applies(target: Mapping[str, Any], granting: frozenset[str]) -> bool:
    actions = target.get("actions")
    return actions is None or bool(granting.intersection(_ALIASES.get(a, a) for a in actions))


def _deny_of(target: Mapping[str, Any], granting: frozenset[str]) -> DenyRule:
    resource = target.get("resource") or {}
    rtype = _ALIASES.get(resource.get("type"), resource.get("type"))
    ids = _id_set(resource.get("identifiers"))
    attrs = _id_set(resource.get("attributes"))
    if rtype == DSGO_DATASET:
        return DenyRule(datasets=ids, attributes=attrs)
    if rtype is None:
        return DenyRule(ids_any=ids, attributes=attrs)
    if ids is None:
        return DenyRule(rdf_type=rtype, attributes=attrs)
    return DenyRule(subjects=ids, attributes=attrs)
