"""Issue 16: iSHARE 3.0 condition trees in delegation policies, positive and negative.

The cases are built on iSHARE 3.0's own delegation-evidence example (its delegationResponse:
GS1.CONTAINER 180621.ABC1234, attribute GS1.CONTAINER.ATTRIBUTE.ETA, ISHARE.READ, licence
ISHARE.0001, policy issuer NTRNL-10000005, access subject NTRNL-10000001, service provider
NTRNL-10000003) with the `conditions` the 3.0 `policy` schema allows added: in
`target.context.conditions` (checked by the register against the mask's `context`) and in
`rules[].conditions` (checked by the service provider).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from trust.conditions import InvalidCondition, check_tree, explain, holds, parse_context
from trust.delegation import (
    InvalidMask,
    InvalidPolicy,
    Policy,
    decide,
    evaluate_mask,
    validate_evidence,
)

ISSUER = "did:ishare:EU.NL.NTRNL-10000005"
SUBJECT = "did:ishare:EU.NL.NTRNL-10000001"
PROVIDER = "did:ishare:EU.NL.NTRNL-10000003"
NOW = 1_800_000_000

ETA_WINDOW = {
    "allOf": [
        {"leftOperand": "purpose", "operator": "equal", "rightOperand": "customs"},
        {
            "anyOf": [
                {"leftOperand": "port", "operator": "equal", "rightOperand": "NLRTM"},
                {"leftOperand": "port", "operator": "equal", "rightOperand": "NLAMS"},
            ]
        },
        {"leftOperand": "weight", "operator": "lessThan", "rightOperand": "30000"},
    ]
}


def spec_evidence(
    *, target_conditions: Any = None, rule_conditions: Any = None, deny: Any = None
) -> dict[str, Any]:
    """iSHARE 3.0's example evidence, with conditions added where given."""
    target: dict[str, Any] = {
        "resource": {
            "type": "GS1.CONTAINER",
            "identifiers": ["180621.ABC1234"],
            "attributes": ["GS1.CONTAINER.ATTRIBUTE.ETA"],
        },
        "environment": {"serviceProviders": [PROVIDER]},
        "actions": ["ISHARE.READ"],
    }
    if target_conditions is not None:
        target["context"] = {"conditions": target_conditions}
    permit: dict[str, Any] = {"effect": "Permit"}
    if rule_conditions is not None:
        permit["conditions"] = rule_conditions
    rules = [permit] + ([deny] if deny else [])
    return {
        "notBefore": 1541058939,
        "notOnOrAfter": 2147483647,
        "policyIssuer": ISSUER,
        "target": {"accessSubject": SUBJECT},
        "policySets": [
            {
                "maxDelegationDepth": 0,
                "target": {"environment": {"licenses": ["ISHARE.0001"]}},
                "policies": [{"target": target, "rules": rules}],
            }
        ],
    }


def mask(context: dict[str, Any] | None) -> dict[str, Any]:
    target: dict[str, Any] = {
        "resource": {
            "type": "GS1.CONTAINER",
            "identifiers": ["180621.ABC1234"],
            "attributes": ["GS1.CONTAINER.ATTRIBUTE.ETA"],
        },
        "actions": ["ISHARE.READ"],
        "environment": {"serviceProviders": [PROVIDER]},
    }
    if context is not None:
        target["context"] = context
    return {
        "delegationRequest": {
            "policyIssuer": ISSUER,
            "target": {"accessSubject": SUBJECT},
            "policySets": [{"policies": [{"target": target, "rules": [{"effect": "Permit"}]}]}],
        }
    }


def effect(evidence: dict[str, Any], context: dict[str, Any] | None) -> str:
    policy = Policy("p1", validate_evidence(evidence))
    out = evaluate_mask(mask(context), [policy], NOW)
    return out["delegationEvidence"]["policySets"][0]["policies"][0]["rules"][0]["effect"]


GOOD = {"purpose": "customs", "port": "NLAMS", "weight": 12000}


@pytest.mark.parametrize("where", ["target", "rule"])
@pytest.mark.parametrize(
    "context,expected",
    [
        (GOOD, "Permit"),
        ({"purpose": "customs", "port": "NLRTM", "weight": "29999.5"}, "Permit"),
        ({"purpose": "marketing", "port": "NLAMS", "weight": 12000}, "Deny"),  # allOf leaf 1
        ({"purpose": "customs", "port": "BEANR", "weight": 12000}, "Deny"),  # no anyOf branch
        ({"purpose": "customs", "port": "NLAMS", "weight": 30000}, "Deny"),  # not lessThan
        ({"purpose": "customs", "port": "NLAMS"}, "Deny"),  # operand missing: fails closed
        ({}, "Deny"),
        (None, "Deny"),  # a 2.x mask has no context at all
    ],
)
def test_mask_with_context(where: str, context: Any, expected: str) -> None:
    kw = {"target_conditions": ETA_WINDOW} if where == "target" else {"rule_conditions": ETA_WINDOW}
    assert effect(spec_evidence(**kw), context) == expected


def test_without_conditions_the_spec_example_permits_regardless_of_context() -> None:
    assert effect(spec_evidence(), None) == "Permit"
    assert effect(spec_evidence(), {"purpose": "anything"}) == "Permit"


def test_deny_rule_with_conditions_takes_away_only_where_they_hold() -> None:
    deny = {
        "effect": "Deny",
        "conditions": {"leftOperand": "port", "operator": "equal", "rightOperand": "NLRTM"},
    }
    evidence = spec_evidence(deny=deny)
    assert effect(evidence, {"port": "NLAMS"}) == "Permit"
    assert effect(evidence, {"port": "NLRTM"}) == "Deny"
    assert effect(evidence, None) == "Permit"  # a Deny rule whose conditions cannot hold


@pytest.mark.parametrize(
    "leaf,context,expected",
    [
        ({"leftOperand": "a", "operator": "notEqual", "rightOperand": "x"}, {"a": "y"}, True),
        ({"leftOperand": "a", "operator": "notEqual", "rightOperand": "x"}, {"a": "x"}, False),
        ({"leftOperand": "a", "operator": "notEqual", "rightOperand": "x"}, {}, False),
        ({"leftOperand": "n", "operator": "equal", "rightOperand": "10"}, {"n": "10.0"}, True),
        ({"leftOperand": "n", "operator": "greaterThan", "rightOperand": "9"}, {"n": "10"}, True),
        ({"leftOperand": "n", "operator": "greaterThan", "rightOperand": "10"}, {"n": "10"}, False),
        (
            {"leftOperand": "t", "operator": "lessThan", "rightOperand": "2027-01-01T00:00:00Z"},
            {"t": "2026-12-02T01:00:00Z"},
            True,
        ),
        (
            {"leftOperand": "t", "operator": "greaterThan", "rightOperand": "2027-01-01"},
            {"t": "2026-12-02"},
            False,
        ),
        # Text is not ordered: greaterThan between words never holds (no silent string order).
        ({"leftOperand": "s", "operator": "greaterThan", "rightOperand": "a"}, {"s": "b"}, False),
        ({"leftOperand": "n", "operator": "lessThan", "rightOperand": "nan"}, {"n": "1"}, False),
    ],
)
def test_leaf_operators(leaf: dict, context: dict, expected: bool) -> None:
    check_tree(leaf)
    assert holds(leaf, parse_context(context)) is expected


@pytest.mark.parametrize(
    "tree,message",
    [
        ([], "must be an object"),
        ({"allOf": []}, "non-empty list"),
        ({"anyOf": "x"}, "non-empty list"),
        ({"allOf": [{}], "anyOf": [{}]}, "not both"),
        (
            {
                "allOf": [{"leftOperand": "a", "operator": "equal", "rightOperand": "b"}],
                "operator": "x",
            },
            "either",
        ),
        ({"leftOperand": "a", "operator": "equal"}, "needs leftOperand, operator and rightOperand"),
        (
            {"leftOperand": "a", "operator": "contains", "rightOperand": "b"},
            "operator must be one of",
        ),
        ({"leftOperand": "", "operator": "equal", "rightOperand": "b"}, "leftOperand"),
        (
            {"leftOperand": "a", "operator": "equal", "rightOperand": 5},
            "rightOperand must be a string",
        ),
    ],
)
def test_malformed_trees_are_refused(tree: Any, message: str) -> None:
    with pytest.raises(InvalidCondition, match=message):
        check_tree(tree)
    with pytest.raises(InvalidPolicy, match=message):
        validate_evidence(spec_evidence(rule_conditions=tree))


def test_trees_are_bounded() -> None:
    deep: dict[str, Any] = {"leftOperand": "a", "operator": "equal", "rightOperand": "b"}
    for _ in range(20):
        deep = {"allOf": [deep]}
    with pytest.raises(InvalidCondition, match="nest at most"):
        check_tree(deep)
    wide = {"anyOf": [{"leftOperand": "a", "operator": "equal", "rightOperand": "b"}] * 300}
    with pytest.raises(InvalidCondition, match="at most 256 nodes"):
        check_tree(wide)


@pytest.mark.parametrize(
    "context,message",
    [
        ([1], "must be an object"),
        ({"a": {"nested": 1}}, "string, number or boolean"),
        ({"a": "x" * 2000}, "over 1024"),
        ({f"k{i}": "v" for i in range(65)}, "at most 64 keys"),
    ],
)
def test_bad_mask_context_is_a_400(context: Any, message: str) -> None:
    with pytest.raises(InvalidMask, match=message):
        evaluate_mask(mask(context), [Policy("p", validate_evidence(spec_evidence()))], NOW)


def test_decide_grants_only_where_conditions_hold() -> None:
    """The enforcement point's pure logic: a conditioned policy makes a scope only in context."""
    evidence = copy.deepcopy(spec_evidence(rule_conditions=ETA_WINDOW))
    target = evidence["policySets"][0]["policies"][0]["target"]
    target["resource"] = {"type": "https://w3id.org/bot#Space", "identifiers": ["*"]}
    del target["environment"]
    policy = Policy("p1", validate_evidence(evidence))
    assert decide(SUBJECT, [policy], NOW, issuer=ISSUER).is_empty
    assert decide(SUBJECT, [policy], NOW, issuer=ISSUER, context={"purpose": "customs"}).is_empty
    scope = decide(SUBJECT, [policy], NOW, issuer=ISSUER, context=parse_context(GOOD))
    assert not scope.is_empty and scope.policy_ids == ("p1",)


def test_explain_shows_each_leaf() -> None:
    out = explain(ETA_WINDOW, parse_context({"purpose": "customs", "port": "BEANR"}))
    assert out is not None and out["holds"] is False
    purpose, ports, weight = out["allOf"]
    assert purpose == {
        "leftOperand": "purpose",
        "operator": "equal",
        "rightOperand": "customs",
        "value": "customs",
        "holds": True,
    }
    assert ports["holds"] is False and [p["value"] for p in ports["anyOf"]] == ["BEANR", "BEANR"]
    assert weight["value"] is None and weight["holds"] is False
