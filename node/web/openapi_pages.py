"""The OpenAPI description of the pages for people (node.web.pages), merged by node/openapi.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from node.config import PARTY_ID
from node.web.policy_page import ACTIONS

_HTML = "text/html"
_JSON = "application/json"
_FORM = "application/x-www-form-urlencoded"
_PAGE = {_HTML: {"type": "string"}}


def _param(name: str, where: str = "query", **schema: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": where, "schema": {"type": "string", **schema}}
    if where == "path":
        out["required"] = True
    return out


def _form(*fields: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    properties: dict[str, Any] = {f: {"type": "string"} for f in fields}
    for name in required:
        properties[name] = {"type": "string", "minLength": 1, "pattern": r"\S"}
    return {
        "required": True,
        "content": {
            _FORM: {
                "schema": {"type": "object", "required": list(required), "properties": properties}
            }
        },
    }


def add_pages(
    schema: dict[str, Any], op: Callable[..., dict[str, Any]], dataset_name: dict
) -> None:
    """Add /ui/..., /static/{path}, and text/html answers of /, /catalog, /dataset/{name}."""
    paths = schema["paths"]
    owner = {"403": "not the node's own party (dsgo:admin)", "503": ""}
    paths["/ui/building/{name}"] = {
        "get": op(
            "building overview of an IFC dataset (storeys, spaces, envelope with units)",
            {"200": ("page", _PAGE)},
            {
                "403": "no policy lets the caller read the dataset",
                "404": "no such dataset",
                "503": "",
            },
            params=[dataset_name],
        )
    }
    paths["/ui/sparql"] = {
        "get": op(
            "SPARQL editor (YASGUI, served by the node) on this node's /sparql",
            {"200": ("page", _PAGE)},
            params=[_param("query")],
        )
    }
    explain = [
        _param("party", pattern=f"^(?:{PARTY_ID.pattern.strip('^$')})?$"),
        _param("action", enum=["", *ACTIONS]),
        *(_param(n) for n in ("dataset", "resource", "granted", "revoked")),
    ]
    paths["/ui/policies"] = {
        "get": op(
            "steward's page: policies, grant and revoke forms, the explanation of a decision",
            {"200": ("page", _PAGE)},
            {**owner, "400": "bad party, resource or action to explain"},
            params=explain,
        )
    }
    moved = {"303": ("done: back to /ui/policies", None)}
    paths["/ui/policies/grant"] = {
        "post": op(
            "grant read access to a dataset or a type (form post with csrf_token)",
            moved,
            {
                **owner,
                "400": "a missing or bad field (named)",
                "403": "not the node's own party, or no valid csrf_token",
                "413": "",
                "415": "",
            },
            body=_form(
                "csrf_token",
                "party",
                "target",
                "dataset",
                "type",
                "ids",
                "attributes",
                "until",
                required=("party",),
            ),
        )
    }
    paths["/ui/policies/revoke"] = {
        "post": op(
            "revoke a policy (form post with csrf_token)",
            moved,
            {
                **owner,
                "400": "no policy_id",
                "403": "not the node's own party, or no valid csrf_token",
                "404": "no such policy",
                "413": "",
                "415": "",
            },
            body=_form("csrf_token", "policy_id", required=("policy_id",)),
        )
    }
    paths["/ui/audit"] = {
        "get": op(
            "auditor's page: audit entries with filters, verification, a trace drawn as SVG",
            {"200": ("page", _PAGE)},
            {"400": "a bad filter or IRI", "403": "no audit grant", "503": ""},
            params=[
                *(_param(n) for n in ("since", "until", "party", "kind", "verify", "iri")),
                _param("limit", pattern="^(?:0*[1-9][0-9]*)?$"),
            ],
        )
    }
    paths["/static/{path}"] = {
        "get": op(
            "the node's own browser assets (vendored at build time; nothing from other hosts)",
            {
                "200": (
                    "the file",
                    {
                        m: {}
                        for m in (
                            "text/javascript",
                            "text/css",
                            "image/png",
                            "text/plain",
                            "application/octet-stream",
                        )
                    },
                )
            },
            {"404": "no such asset"},
            secure=False,
            params=[_param("path", "path", minLength=1)],
        )
    }
    home = paths["/"]["get"]["responses"]["200"]
    home.setdefault("content", {})[_HTML] = {"schema": {"type": "string"}}
    dataset = paths["/dataset/{name}"]["get"]["responses"]["200"]
    dataset.setdefault("content", {})[_HTML] = {"schema": {"type": "string"}}
