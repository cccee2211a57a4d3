"""The node's own OpenAPI description of its iSHARE 3.0 routes under `/v3` (node.routes.ishare3).

iSHARE's 3.0 document (tests/data/ishare-openapi/ishare-3.0.yaml) is the conformance oracle;
this is the node's description of the same routes, with the error statuses it answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_JSON = "application/json"


def _token(field: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [field],
        "properties": {field: {"type": "string"}},
    }


def _param(name: str, where: str = "query", **schema: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": where, "schema": {"type": "string", **schema}}
    if where == "path":
        out["required"] = True
    return out


_PAGING = [
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    {
        "name": "pageSize",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 100},
    },
]


def v3_paths(op: Callable[..., dict[str, Any]], *, registry: bool) -> dict[str, Any]:
    """Paths of the 3.0 API; the registry's only when the node plays that role."""
    mask = {
        "type": "object",
        "required": ["delegationRequest"],
        "properties": {
            "delegationRequest": {
                "type": "object",
                "required": ["policyIssuer", "target", "policySets"],
                "properties": {
                    "policyIssuer": {"type": "string"},
                    "target": {
                        "type": "object",
                        "required": ["accessSubject"],
                        "properties": {"accessSubject": {"type": "string"}},
                    },
                    "policySets": {"type": "array"},
                    "previousSteps": {"type": "array", "items": {"type": "string"}},
                },
            }
        },
    }
    paths: dict[str, Any] = {
        "/v3/capabilities": {
            "get": op(
                "iSHARE 3.0 capabilitiesToken (restricted services only for a token holder)",
                {"200": ("capabilitiesToken", {_JSON: _token("capabilitiesToken")})},
                ("400", "401"),
                secure="optional",
            )
        },
        "/v3/delegation": {
            "post": op(
                "iSHARE 3.0 delegation evidence (conditions evaluated with the mask's context)",
                {"200": ("delegationToken", {_JSON: _token("delegationToken")})},
                {
                    "400": "not a delegation mask, or a bad Authorization header",
                    "403": "the caller is neither policy issuer nor access subject",
                    "404": "no policy for this issuer and access subject",
                    "503": "",
                },
                body={"required": True, "content": {_JSON: {"schema": mask}}},
            )
        },
    }
    if not registry:
        return paths
    paths["/v3/parties"] = {
        "get": op(
            "participant registry (3.0): parties by id, alsoKnownAs, name, claimFilter",
            {"200": ("partiesToken", {_JSON: _token("partiesToken")})},
            {"400": "bad page, pageSize, name or claimFilter, or a bad Authorization header"},
            params=[_param("id"), _param("alsoKnownAs"), _param("name"), *_PAGING],
        )
    }
    paths["/v3/parties/{party_id}"] = {
        "get": op(
            "one party by id or alsoKnownAs id (3.0 partyToken)",
            {"200": ("partyToken", {_JSON: _token("partyToken")})},
            {"404": "no such party"},
            params=[_param("party_id", "path")],
        )
    }
    paths["/v3/trustedList"] = {
        "get": op(
            "trusted CAs (3.0 trustedListToken)",
            {"200": ("trustedListToken", {_JSON: _token("trustedListToken")})},
        )
    }
    for name, key in (("dataspaces", "dataspacesToken"), ("frameworks", "frameworksToken")):
        paths[f"/v3/{name}"] = {
            "get": op(
                f"the {name} this registry serves (3.0 {key})",
                {"200": (key, {_JSON: _token(key)})},
                {"400": "bad page or pageSize, or a bad Authorization header"},
                params=list(_PAGING),
            )
        }
    paths["/dataspaces"] = {
        "get": op(
            "iSHARE 2.1: the data space this registry serves (dataspace_list_token)",
            {"200": ("dataspace_list_token", {_JSON: _token("dataspace_list_token")})},
        )
    }
    paths["/versions"] = {
        "get": op(
            "iSHARE 2.1: the scheme version spoken (versions_token)",
            {"200": ("versions_token", {_JSON: _token("versions_token")})},
            ("400", "401"),
            secure="optional",
        )
    }
    return paths
