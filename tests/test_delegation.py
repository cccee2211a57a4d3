"""Delegation evidence evaluation: iSHARE reference cases and the combining rules."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from trust.delegation import (
    DSGO_DATASET,
    DSGO_QUERY,
    ISHARE_READ,
    DelegationError,
    InvalidMask,
    InvalidPolicy,
    PartialGrant,
    Policy,
    build_policy,
    decide,
    evaluate_mask,
    validate_evidence,
)

DATA = Path(__file__).parent / "data" / "delegation"
BASE = "http://127.0.0.1:8101"
OWNER = "EU.EORI.NL000000003"
ABC = "EU.EORI.NL000000001"
BOT_BUILDING = "https://w3id.org/bot#Building"
NOW = 1_700_000_000


def load(name: str) -> dict:
    text = (DATA / name).read_text(encoding="utf-8")
    return json.loads("\n".join(x for x in text.splitlines() if not x.lstrip().startswith("//")))


CASES = [
    (1, "case1_mask.json", "case1_evidence.json"),
    (2, "case2_mask1.json", "case2_evidence1.json"),
    (2, "case2_mask2.json", "case2_evidence2.json"),
    (3, "case3_mask.json", "case3_evidence.json"),
    (4, "case4_mask.json", "case4_evidence.json"),
    (5, "case5_mask.json", "case5_evidence.json"),
]


@pytest.mark.parametrize(("case", "mask", "expected"), CASES)
def test_ishare_reference_cases(case: int, mask: str, expected: str) -> None:
    policy = Policy(f"case{case}", validate_evidence(load(f"case{case}_policy.json")))
    now = policy.not_before + 1
    assert evaluate_mask(load(mask), [policy], now) == load(expected)


def test_reference_cases_include_both_effects() -> None:
    effects = {
        load(e)["delegationEvidence"]["policySets"][0]["policies"][0]["rules"][0]["effect"]
        for _, _, e in CASES
    }
    assert effects == {"Permit", "Deny"}


def test_outside_time_window_nothing_applies() -> None:
    policy = Policy("c1", load("case1_policy.json")["delegationEvidence"])
    mask = load("case1_mask.json")
    inside = evaluate_mask(mask, [policy], policy.not_before)
    before = evaluate_mask(mask, [policy], policy.not_before - 1)
    expired = evaluate_mask(mask, [policy], policy.not_on_or_after)
    assert _effect(inside) == "Permit"
    assert _effect(before) == "Deny"
    assert _effect(expired) == "Deny"


def test_policy_for_other_subject_or_issuer_does_not_apply() -> None:
    doc = load("case1_policy.json")["delegationEvidence"]
    other_subject = copy.deepcopy(doc)
    other_subject["target"]["accessSubject"] = "EU.EORI.NL000000002"
    other_issuer = copy.deepcopy(doc)
    other_issuer["policyIssuer"] = "EU.EORI.NL000000005"
    mask = load("case1_mask.json")
    policies = [Policy("a", other_subject), Policy("b", other_issuer)]
    assert _effect(evaluate_mask(mask, policies, doc["notBefore"] + 1)) == "Deny"


def test_no_policy_denies_by_default_with_short_window() -> None:
    evidence = evaluate_mask(load("case1_mask.json"), [], NOW)
    assert _effect(evidence) == "Deny"
    ev = evidence["delegationEvidence"]
    assert ev["notBefore"] == NOW and 0 < ev["notOnOrAfter"] - NOW <= 60


def test_permit_overrides_across_policies() -> None:
    """A second policy permitting what the first denies wins (permit-overrides)."""
    deny_abc123 = load("case2_policy.json")["delegationEvidence"]
    specific = copy.deepcopy(load("case1_policy.json")["delegationEvidence"])
    specific["policySets"][0]["policies"][0]["target"]["resource"]["identifiers"] = [
        "180621.ABC123"
    ]
    mask = load("case2_mask1.json")
    now = deny_abc123["notBefore"] + 1
    assert _effect(evaluate_mask(mask, [Policy("d", deny_abc123)], now)) == "Deny"
    both = [Policy("d", deny_abc123), Policy("p", specific)]
    assert _effect(evaluate_mask(mask, both, now)) == "Permit"


def test_deny_overrides_within_a_policy() -> None:
    mask = load("case5_mask.json")
    policy = Policy("c5", load("case5_policy.json")["delegationEvidence"])
    assert _effect(evaluate_mask(mask, [policy], policy.not_before + 1)) == "Deny"
    mask["delegationRequest"]["policySets"][0]["policies"][0]["target"]["actions"] = ["ISHARE.READ"]
    assert _effect(evaluate_mask(mask, [policy], policy.not_before + 1)) == "Permit"


def test_wildcard_in_mask_needs_wildcard_grant() -> None:
    specific = build_policy(
        issuer=OWNER,
        subject=ABC,
        resource_type=BOT_BUILDING,
        identifiers=[f"{BASE}/id/building/1"],
        not_before=NOW - 10,
        not_on_or_after=NOW + 10,
    )
    mask = _mask(BOT_BUILDING, ["*"])
    assert _effect(evaluate_mask(mask, [Policy("s", specific)], NOW)) == "Deny"
    wildcard = build_policy(
        issuer=OWNER,
        subject=ABC,
        resource_type=BOT_BUILDING,
        not_before=NOW - 10,
        not_on_or_after=NOW + 10,
    )
    assert _effect(evaluate_mask(mask, [Policy("w", wildcard)], NOW)) == "Permit"
    specific_mask = _mask(BOT_BUILDING, [f"{BASE}/id/building/1"])
    assert _effect(evaluate_mask(specific_mask, [Policy("w", wildcard)], NOW)) == "Permit"


def test_partial_permit_of_mask_is_deny() -> None:
    """Every identifier/attribute asked for must be permitted."""
    policy = build_policy(
        issuer=OWNER,
        subject=ABC,
        resource_type=BOT_BUILDING,
        identifiers=[f"{BASE}/id/building/1"],
        attributes=["https://w3id.org/props#a"],
        not_before=NOW - 10,
        not_on_or_after=NOW + 10,
    )
    two_ids = _mask(BOT_BUILDING, [f"{BASE}/id/building/1", f"{BASE}/id/building/2"])
    assert _effect(evaluate_mask(two_ids, [Policy("p", policy)], NOW)) == "Deny"
    all_attrs = _mask(BOT_BUILDING, [f"{BASE}/id/building/1"])
    assert _effect(evaluate_mask(all_attrs, [Policy("p", policy)], NOW)) == "Deny"
    one_attr = _mask(BOT_BUILDING, [f"{BASE}/id/building/1"], ["https://w3id.org/props#a"])
    assert _effect(evaluate_mask(one_attr, [Policy("p", policy)], NOW)) == "Permit"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: m["delegationRequest"].pop("policyIssuer"),
        lambda m: m["delegationRequest"]["target"].pop("accessSubject"),
        lambda m: m["delegationRequest"].update(policySets=[]),
        lambda m: m["delegationRequest"]["policySets"][0].update(policies="x"),
        lambda m: m["delegationRequest"]["policySets"][0]["policies"][0].pop("target"),
        lambda m: m["delegationRequest"]["policySets"][0]["policies"][0]["target"][
            "resource"
        ].update(identifiers=[]),
        lambda m: m["delegationRequest"]["policySets"][0]["policies"][0]["target"][
            "resource"
        ].update(identifiers=[f"id{i}" for i in range(30_000)]),
    ],
)
def test_malformed_masks_are_rejected(mutate) -> None:
    mask = load("case1_mask.json")
    mutate(mask)
    with pytest.raises(InvalidMask) as info:
        evaluate_mask(mask, [], NOW)
    assert info.value.error == "invalid_request"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(notBefore="soon"),
        lambda d: d.update(notOnOrAfter=d["notBefore"]),
        lambda d: d.pop("policyIssuer"),
        lambda d: d["policySets"][0]["policies"][0]["rules"].reverse(),
        lambda d: d["policySets"][0]["policies"][0]["rules"].append({"effect": "Deny"}),
        lambda d: d["policySets"][0]["policies"][0]["target"]["resource"].pop("type"),
        lambda d: d["policySets"][0]["policies"][0]["target"].update(actions=[]),
    ],
)
def test_malformed_policies_are_rejected(mutate) -> None:
    doc = copy.deepcopy(load("case2_policy.json")["delegationEvidence"])
    mutate(doc)
    with pytest.raises(InvalidPolicy):
        validate_evidence(doc)


# --- decide: policies -> Scope -------------------------------------------------------------


def _grant(**kw) -> Policy:
    args = dict(issuer=OWNER, subject=ABC, not_before=NOW - 100, not_on_or_after=NOW + 100)
    args.update(kw)
    return Policy("p", build_policy(**args))


def test_decide_whole_dataset_and_wildcard() -> None:
    ds = f"{BASE}/dataset/ifc"
    scope = decide(ABC, [_grant(resource_type=DSGO_DATASET, identifiers=[ds])], NOW)
    assert scope.whole_datasets == {ds} and scope.partial == () and scope.policy_ids == ("p",)
    scope = decide(ABC, [_grant(resource_type="dsgo:Dataset")], NOW)
    assert scope.whole_datasets == {"*"}


def test_decide_attributes_and_denies_make_partial_grants() -> None:
    ds = f"{BASE}/dataset/ifc"
    attr = "https://w3id.org/props#isExternal"
    scope = decide(
        ABC, [_grant(resource_type=DSGO_DATASET, identifiers=[ds], attributes=[attr])], NOW
    )
    assert scope.whole_datasets == frozenset()
    assert scope.partial == (
        PartialGrant("p", datasets=frozenset({ds}), attributes=frozenset({attr})),
    )
    denied = _grant(
        resource_type=BOT_BUILDING,
        deny=[{"resource": {"type": BOT_BUILDING, "identifiers": [f"{BASE}/id/b/1"]}}],
    )
    (grant,) = decide(ABC, [denied], NOW).partial
    assert grant.rdf_type == BOT_BUILDING and grant.denies[0].subjects == {f"{BASE}/id/b/1"}


def test_decide_ignores_other_callers_expired_and_foreign_provider() -> None:
    policies = [
        _grant(resource_type=DSGO_DATASET, subject="EU.EORI.NL000000002"),
        _grant(resource_type=DSGO_DATASET, not_before=NOW - 100, not_on_or_after=NOW),
        _grant(resource_type=DSGO_DATASET, service_providers=["EU.EORI.NL000000009"]),
        _grant(resource_type=DSGO_DATASET, actions=["ISHARE.DELETE"]),
    ]
    scope = decide(ABC, policies, NOW, service_provider=OWNER)
    assert scope.is_empty and scope.policy_ids == ()
    assert not decide(ABC, policies[2:3], NOW, service_provider=None).is_empty


def test_decide_query_action_and_read_action() -> None:
    query_only = _grant(resource_type=DSGO_DATASET, actions=[DSGO_QUERY])
    assert decide(ABC, [query_only], NOW, action=ISHARE_READ).is_empty
    assert not decide(ABC, [query_only], NOW, action=DSGO_QUERY).is_empty
    read = _grant(resource_type=DSGO_DATASET, actions=[ISHARE_READ])
    assert not decide(ABC, [read], NOW, action=DSGO_QUERY).is_empty
    deny_query = _grant(
        resource_type=DSGO_DATASET,
        deny=[{"resource": {"type": DSGO_DATASET, "identifiers": ["*"]}, "actions": [DSGO_QUERY]}],
    )
    assert decide(ABC, [deny_query], NOW, action=ISHARE_READ).whole_datasets == {"*"}
    assert decide(ABC, [deny_query], NOW, action=DSGO_QUERY).partial[0].denies
    with pytest.raises(DelegationError):
        decide(ABC, [read], NOW, action="ISHARE.DELETE")


def _mask(rtype: str, ids: list[str], attrs: list[str] | None = None) -> dict:
    resource: dict = {"type": rtype, "identifiers": ids}
    if attrs is not None:
        resource["attributes"] = attrs
    return {
        "delegationRequest": {
            "policyIssuer": OWNER,
            "target": {"accessSubject": ABC},
            "policySets": [
                {
                    "policies": [
                        {
                            "target": {"resource": resource, "actions": [ISHARE_READ]},
                            "rules": [{"effect": "Permit"}],
                        }
                    ]
                }
            ],
        }
    }


def _effect(evidence: dict) -> str:
    effects = {
        rule["effect"]
        for pset in evidence["delegationEvidence"]["policySets"]
        for policy in pset["policies"]
        for rule in policy["rules"]
    }
    assert len(effects) == 1
    return effects.pop()
