"""Each stored policy as an ODRL 2.2 `odrl:Set` in JSON-LD (permission + prohibitions).

The Permit rule becomes one `permission`, each Deny rule a `prohibition`; the time window becomes
`odrl:dateTime` constraints. The context is inline so the document expands without fetching.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from trust.delegation import DSGO, DSGO_DATASET, DSGO_QUERY, ISHARE_READ, WILDCARD, Policy
from trust.pki import party_iri
from vocab.namespaces import ODRL

CONTEXT: dict[str, Any] = {
    "odrl": ODRL,
    "dsgo": DSGO,
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "uid": "@id",
    "type": "@type",
    "Set": "odrl:Set",
    "AssetCollection": "odrl:AssetCollection",
    "permission": {"@id": "odrl:permission", "@container": "@set"},
    "prohibition": {"@id": "odrl:prohibition", "@container": "@set"},
    "target": {"@id": "odrl:target", "@type": "@id"},
    "action": {"@id": "odrl:action", "@type": "@vocab"},
    "assigner": {"@id": "odrl:assigner", "@type": "@id"},
    "assignee": {"@id": "odrl:assignee", "@type": "@id"},
    "constraint": {"@id": "odrl:constraint", "@container": "@set"},
    "leftOperand": {"@id": "odrl:leftOperand", "@type": "@vocab"},
    "operator": {"@id": "odrl:operator", "@type": "@vocab"},
    "rightOperand": {"@id": "odrl:rightOperand"},
    "source": {"@id": "odrl:source", "@type": "@id"},
    "partOf": {"@id": "odrl:partOf", "@type": "@id", "@container": "@set"},
    "dateTime": "odrl:dateTime",
    "gteq": "odrl:gteq",
    "lt": "odrl:lt",
    "read": "odrl:read",
    "use": "odrl:use",
    "query": "dsgo:query",
    "attribute": {"@id": "dsgo:attribute", "@type": "@id", "@container": "@set"},
}
_ACTIONS = {ISHARE_READ: "read", DSGO_QUERY: "query"}


def to_odrl(policy: Policy, base_iri: str) -> dict[str, Any]:
    """The policy as a JSON-LD `odrl:Set` identified by `{base}/policy/{id}`."""
    base = base_iri.rstrip("/")
    ev = policy.evidence
    party = party_iri
    window = [
        _constraint("gteq", ev["notBefore"]),
        _constraint("lt", ev["notOnOrAfter"]),
    ]
    permissions: list[dict[str, Any]] = []
    prohibitions: list[dict[str, Any]] = []
    for pset in ev.get("policySets", ()):
        for item in pset.get("policies", ()):
            target = item.get("target") or {}
            actions = target.get("actions")
            for asset in _assets(target.get("resource") or {}):
                for action in _action_terms(actions):
                    permissions.append(
                        {
                            "target": asset,
                            "action": action,
                            "assigner": party(ev["policyIssuer"]),
                            "assignee": party(ev["target"]["accessSubject"]),
                            "constraint": window,
                            **_attributes(target.get("resource") or {}),
                        }
                    )
            for rule in list(item.get("rules", ()))[1:]:
                deny = rule.get("target") or {}
                resource = deny.get("resource") or {}
                for asset in _assets(resource, fallback=target.get("resource") or {}):
                    for action in _action_terms(deny.get("actions", actions)):
                        prohibitions.append(
                            {
                                "target": asset,
                                "action": action,
                                "assignee": party(ev["target"]["accessSubject"]),
                                **_attributes(resource),
                            }
                        )
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "uid": f"{base}/policy/{policy.id}",
        "type": "Set",
        "permission": permissions,
    }
    if prohibitions:
        doc["prohibition"] = prohibitions
    return doc


def _constraint(operator: str, seconds: int) -> dict[str, Any]:
    when = dt.datetime.fromtimestamp(int(seconds), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "leftOperand": "dateTime",
        "operator": operator,
        "rightOperand": {"@value": when, "@type": "xsd:dateTime"},
    }


def _assets(resource: Mapping[str, Any], fallback: Mapping[str, Any] | None = None) -> list[Any]:
    rtype = resource.get("type") or (fallback or {}).get("type")
    rtype = DSGO_DATASET if rtype == "dsgo:Dataset" else rtype
    ids = resource.get("identifiers") or [WILDCARD]
    if WILDCARD not in ids:
        return list(ids)
    if rtype == DSGO_DATASET or rtype is None:
        return [{"type": "AssetCollection", "source": DSGO_DATASET}]
    return [{"type": "AssetCollection", "source": rtype}]


def _action_terms(actions: Any) -> list[str]:
    if not actions:
        return ["use"]
    return sorted({_ACTIONS.get(a, _ACTIONS.get(a.replace(DSGO, "dsgo:"), "use")) for a in actions})


def _attributes(resource: Mapping[str, Any]) -> dict[str, Any]:
    attrs = resource.get("attributes")
    if not attrs or WILDCARD in attrs:
        return {}
    return {"attribute": list(attrs)}
