"""iSHARE 3.0 condition trees: `allOf` / `anyOf` of `leftOperand` `operator` `rightOperand`.

A policy may carry conditions in two places (iSHARE 3.0 `policy` schema): `target.context.
conditions`, checked by the authorisation register against the `context` of the delegation
request, and `rules[].conditions`, checked by the service provider. This node is both, so both
are checked wherever a policy is weighed, against the context of the request at hand.

Evaluation fails closed: an operand missing from the context makes its leaf false (for
`notEqual` too), and `greaterThan` / `lessThan` hold only between two numbers or two ISO 8601
times. `equal` / `notEqual` compare numbers as numbers and anything else as text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from trust.errors import TrustError

OPERATORS = ("equal", "notEqual", "greaterThan", "lessThan")
MAX_DEPTH = 16
MAX_NODES = 256
MAX_CONTEXT_KEYS = 64
MAX_VALUE_LENGTH = 1024

Context = Mapping[str, str]


class InvalidCondition(TrustError):
    """A condition tree or a request context that cannot be evaluated (HTTP 400)."""

    error = "invalid_request"

    def __init__(self, description: str) -> None:
        super().__init__("conditions", description)


def check_tree(tree: Any) -> None:
    """Raise InvalidCondition unless `tree` is a well-formed, bounded condition tree."""
    count = [0]

    def walk(node: Any, depth: int) -> None:
        count[0] += 1
        if count[0] > MAX_NODES:
            raise InvalidCondition(f"a condition tree may have at most {MAX_NODES} nodes")
        if depth > MAX_DEPTH:
            raise InvalidCondition(f"conditions nest at most {MAX_DEPTH} deep")
        if not isinstance(node, Mapping):
            raise InvalidCondition("a condition must be an object")
        groups = [k for k in ("allOf", "anyOf") if k in node]
        leaf = [k for k in ("leftOperand", "operator", "rightOperand") if k in node]
        if groups and leaf:
            raise InvalidCondition("a condition is either allOf/anyOf or a leftOperand leaf")
        if len(groups) > 1:
            raise InvalidCondition("a condition has allOf or anyOf, not both")
        if groups:
            children = node[groups[0]]
            if not isinstance(children, list) or not children:
                raise InvalidCondition(f"{groups[0]} must be a non-empty list")
            for child in children:
                walk(child, depth + 1)
            return
        if len(leaf) != 3:
            raise InvalidCondition("a condition leaf needs leftOperand, operator and rightOperand")
        if not isinstance(node["leftOperand"], str) or not node["leftOperand"]:
            raise InvalidCondition("leftOperand must be a non-empty string")
        if not isinstance(node["rightOperand"], str):
            raise InvalidCondition("rightOperand must be a string")
        if node["operator"] not in OPERATORS:
            raise InvalidCondition(f"operator must be one of {list(OPERATORS)}")

    walk(tree, 0)


def holds(tree: Mapping[str, Any] | None, context: Context) -> bool:
    """True when the (checked) tree holds in `context`; no tree always holds."""
    if tree is None:
        return True
    if "allOf" in tree:
        return all(holds(child, context) for child in tree["allOf"])
    if "anyOf" in tree:
        return any(holds(child, context) for child in tree["anyOf"])
    return _leaf(tree, context)


def explain(tree: Mapping[str, Any] | None, context: Context) -> dict[str, Any] | None:
    """The tree with each node's outcome and each leaf's context value (for /delegation/explain)."""
    if tree is None:
        return None
    for group in ("allOf", "anyOf"):
        if group in tree:
            parts = [explain(child, context) for child in tree[group]]
            return {group: parts, "holds": holds(tree, context)}
    key = tree["leftOperand"]
    return {
        "leftOperand": key,
        "operator": tree["operator"],
        "rightOperand": tree["rightOperand"],
        "value": context.get(key),
        "holds": _leaf(tree, context),
    }


def parse_context(value: Any, where: str = "context") -> dict[str, str]:
    """A request context (a key-value map) as strings; InvalidCondition if it is not one."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidCondition(f"{where} must be an object of key-value pairs")
    if len(value) > MAX_CONTEXT_KEYS:
        raise InvalidCondition(f"{where} may have at most {MAX_CONTEXT_KEYS} keys")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise InvalidCondition(f"{where} keys must be non-empty strings")
        if isinstance(item, bool):
            text = "true" if item else "false"
        elif isinstance(item, str | int | float):
            text = str(item)
        else:
            raise InvalidCondition(f"{where}.{key[:50]} must be a string, number or boolean")
        if len(text) > MAX_VALUE_LENGTH:
            raise InvalidCondition(f"{where}.{key[:50]} is over {MAX_VALUE_LENGTH} characters")
        out[key] = text
    return out


def policy_holds(policy: Mapping[str, Any], context: Context) -> bool:
    """A policy's target conditions and its Permit rule's conditions hold in `context`."""
    target = policy.get("target") or {}
    ctx = target.get("context") if isinstance(target, Mapping) else None
    tree = ctx.get("conditions") if isinstance(ctx, Mapping) else None
    rules = policy.get("rules") or [{}]
    return holds(tree, context) and holds(rules[0].get("conditions"), context)


def rule_holds(rule: Mapping[str, Any], context: Context) -> bool:
    """A (Deny) rule applies only where its own conditions hold."""
    return holds(rule.get("conditions"), context)


def has_conditions(policy: Mapping[str, Any]) -> bool:
    """True when any part of the policy carries conditions."""
    target = policy.get("target") or {}
    ctx = target.get("context") if isinstance(target, Mapping) else None
    if isinstance(ctx, Mapping) and "conditions" in ctx:
        return True
    return any(isinstance(r, Mapping) and "conditions" in r for r in policy.get("rules") or [])


def _leaf(node: Mapping[str, Any], context: Context) -> bool:
    value = context.get(node["leftOperand"])
    if value is None:
        return False
    right, op = node["rightOperand"], node["operator"]
    left_n, right_n = _number(value), _number(right)
    if op in ("equal", "notEqual"):
        same = left_n == right_n if left_n is not None and right_n is not None else value == right
        return same if op == "equal" else not same
    if left_n is not None and right_n is not None:
        a: Any
        b: Any
        a, b = left_n, right_n
    else:
        a, b = _time(value), _time(right)
        if a is None or b is None:
            return False
    return a > b if op == "greaterThan" else a < b


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and value not in (float("inf"), float("-inf")) else None


def _time(text: str) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def explain_conditions(record: Any, context: Context) -> list[dict[str, Any]]:
    """Every condition tree of a stored policy (`Policy`), where it sits and whether it holds."""
    out: list[dict[str, Any]] = []
    for s, pset in enumerate(record.evidence.get("policySets", ())):
        for p, policy in enumerate(pset.get("policies", ())):
            where = f"policySets[{s}].policies[{p}]"
            target = policy.get("target") or {}
            ctx = target.get("context") if isinstance(target, Mapping) else None
            if isinstance(ctx, Mapping) and "conditions" in ctx:
                tree = explain(ctx["conditions"], context)
                out.append({"at": f"{where}.target.context", "rule": "Permit", **(tree or {})})
            for r, rule in enumerate(policy.get("rules") or []):
                if isinstance(rule, Mapping) and "conditions" in rule:
                    tree = explain(rule["conditions"], context)
                    kind = "Permit" if r == 0 else "Deny"
                    out.append({"at": f"{where}.rules[{r}]", "rule": kind, **(tree or {})})
    return out
