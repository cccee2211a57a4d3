"""The OpenAPI description of the node's API surface (the routes are plain Starlette routes).

Every status an operation can answer is listed, with the body it carries: errors are always
`{"error", "error_description", ...}` JSON (tests/test_api_fuzz.py holds the node to this).
Statuses every protected operation shares: 400 for a malformed Authorization header, 401 for a
missing or invalid token. 503 is listed wherever the answer waits on the audit log (which fails
closed) or on a query.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI

from node.config import PARTY_ID, Settings
from node.negotiation import FORMAT_ALIASES, RDF_TYPES, RESOURCE_TYPES
from node.openapi_v3 import v3_paths
from node.web.openapi_pages import add_pages
from trust.delegation import DSGO, DSGO_FEDERATE, DSGO_QUERY, ISHARE_READ

_BEARER = [{"bearer": []}]
_OPTIONAL_BEARER = [{}, {"bearer": []}]
_RDF = [
    "application/ld+json",
    "text/turtle",
    "application/n-triples",
    "application/rdf+xml",
]
_HTML = "text/html"
_VOID = ["text/turtle", "application/ld+json", "application/n-triples", "application/rdf+xml"]
_RESULTS = [
    "application/sparql-results+json",
    "application/sparql-results+xml",
    "text/csv",
    "text/tab-separated-values",
]
_UPLOAD = [
    "text/turtle",
    "application/n-triples",
    "application/n-quads",
    "application/trig",
    "application/rdf+xml",
    "application/ld+json",
]
_JSON = "application/json"
_READY = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"enum": ["ready", "not_ready"]},
        "checks": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["ok", "detail", "elapsed_ms"],
                "properties": {
                    "ok": {"type": "boolean"},
                    "detail": {"type": "string"},
                    "elapsed_ms": {"type": "number"},
                },
            },
        },
    },
}
_ERROR = {"$ref": "#/components/schemas/Error"}

# What each shared status means when an operation does not say more.
_STATUS = {
    "400": "invalid request (parameter, body, IRI or Authorization header)",
    "401": "no valid access token",
    "403": "not permitted (with the reason)",
    "404": "not found",
    "406": "none of the accepted media types can be produced",
    "413": "request too large",
    "415": "unsupported request content type",
    "503": "unavailable: the audit log cannot be written, or a dependency is down",
}
_AUTH = ("400", "401")


def _string_param(name: str, where: str = "query", description: str = "", **schema: Any) -> dict:
    out: dict[str, Any] = {"name": name, "in": where, "schema": {"type": "string", **schema}}
    if where == "path":
        out["required"] = True
    if description:
        out["description"] = description
    return out


# The graph IRIs /sparql takes (node.service.query refuses any other with 400).
_GRAPH_IRI = r'^[^<>"{}|^`\\\x00-\x20]+$'
# An IRI path below /id/ may hold anything but control characters (node.routes.resources).
_ID_PATH = r"^[^\x00-\x1f\x7f]*$"
# The actions an explanation can be given for (trust.delegation.decide refuses others with
# 400, but only once a policy is weighed: with none, any action is simply denied).
_ACTIONS = [ISHARE_READ, DSGO_QUERY, DSGO_FEDERATE, DSGO + "query", DSGO + "federate"]
_JWS = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"


def _format(offered: tuple[str, ...], aliases: dict[str, str] | None = None) -> dict[str, Any]:
    """`?format=`: an offered media type or its short name, in any case; empty means none."""
    known = {**FORMAT_ALIASES, **(aliases or {})}
    names = sorted({*offered, *(k for k, v in known.items() if v in offered)})
    either = "|".join(
        "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in n)
        for n in names
    )
    return _string_param(
        "format",
        description="overrides Accept: " + ", ".join(names) + " (any case)",
        pattern=f"^(?:{either})?$",
    )


def _token_body(*fields: str) -> dict[str, Any]:
    """A JSON object body with these required string fields (the signed iSHARE tokens)."""
    return {
        "type": "object",
        "required": list(fields),
        "properties": {f: {"type": "string"} for f in fields},
    }


def openapi_schema(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """Built once per app; lists every public and protected endpoint with its responses."""
    if app.openapi_schema:
        return app.openapi_schema

    def op(
        summary: str,
        ok: dict[str, Any],
        errors: tuple[str, ...] | dict[str, str] = (),
        *,
        secure: bool | str = True,
        params: list[dict] | None = None,
        body: dict | None = None,
    ) -> dict[str, Any]:
        """One operation: `ok` maps success statuses to (media types -> body schema) or None."""
        responses: dict[str, Any] = {}
        for code, content in ok.items():
            description, media = content
            responses[code] = {"description": description}
            if media:
                responses[code]["content"] = {m: {"schema": s} for m, s in media.items()}
        codes = dict.fromkeys(errors) if isinstance(errors, tuple) else dict(errors)
        if secure:
            codes = {**dict.fromkeys(_AUTH), **codes}
        for code in sorted(codes):
            responses[code] = {
                "description": codes[code] or _STATUS[code],
                "content": {_JSON: {"schema": _ERROR}},
            }
            if code == "401":
                responses[code]["headers"] = {
                    "WWW-Authenticate": {"schema": {"type": "string"}, "required": True}
                }
        out: dict[str, Any] = {"summary": summary, "responses": responses}
        if secure == "optional":
            out["security"] = _OPTIONAL_BEARER
        elif secure:
            out["security"] = _BEARER
        if params:
            out["parameters"] = params
        if body:
            out["requestBody"] = body
        return out

    any_body: dict[str, Any] = {}
    fmt = _format(RESOURCE_TYPES)
    graphs = [
        {
            "name": name,
            "in": "query",
            "schema": {"type": "array", "items": {"type": "string", "pattern": _GRAPH_IRI}},
            "style": "form",
            "explode": True,
        }
        for name in ("default-graph-uri", "named-graph-uri")
    ]
    query = {
        "name": "query",
        "in": "query",
        "required": True,
        "schema": {"type": "string"},
        "example": "SELECT * WHERE { ?s ?p ?o } LIMIT 5",
    }
    sparql_fmt = _string_param(
        "format",
        description="a media type or short name (json, xml, csv, tsv, ttl, n3, json-ld, rdf, nt) "
        "that wins over Accept when this query form can be answered in it; any other value is "
        "ignored and Accept decides (node.negotiation.choose_sparql)",
    )
    optional_query = {
        **query,
        "required": False,
        "description": "without it, GET answers the SPARQL 1.1 Service Description",
    }
    sparql_ok = {
        "200": (
            "results (SELECT/ASK) or a graph (CONSTRUCT/DESCRIBE)",
            {m: any_body for m in _RESULTS + _RDF},
        )
    }
    sparql_errors = {
        "400": "malformed query, parameter or Authorization header",
        "403": "an update, or a federated call the caller may not make",
        "406": "",
        "413": "query or body over 256 KiB",
        "503": "query timeout, or the audit log cannot be written",
    }
    token_fields = (
        "grant_type",
        "scope",
        "client_id",
        "client_assertion_type",
        "client_assertion",
    )
    dataset_name = _string_param(
        "name",
        "path",
        "dataset name (vocab.iris.DATASET_NAME)",
        pattern="^[a-z0-9][a-z0-9_-]*$",
        minLength=1,
        maxLength=63,
    )
    schema: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": app.title,
            "version": app.version,
            "description": "A DSGO-style linked-data node.",
        },
        "servers": [{"url": settings.base_iri}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "error_description"],
                    "properties": {
                        "error": {"type": "string"},
                        "error_description": {"type": "string"},
                    },
                }
            },
        },
        "paths": {
            "/connect/token": {
                "post": op(
                    "iSHARE token endpoint: client_credentials with a signed client assertion",
                    {
                        "200": (
                            "access token",
                            {
                                _JSON: {
                                    "type": "object",
                                    "required": ["access_token", "token_type", "expires_in"],
                                    "properties": {
                                        "access_token": {"type": "string"},
                                        "token_type": {"const": "Bearer"},
                                        "expires_in": {"type": "integer"},
                                    },
                                }
                            },
                        )
                    },
                    {
                        "400": "RFC 6749 error: invalid_request, invalid_client, invalid_grant, ...",
                        "503": "",
                    },
                    secure=False,
                    body={
                        "required": True,
                        "content": {
                            "application/x-www-form-urlencoded": {
                                "schema": {
                                    "type": "object",
                                    "required": list(token_fields),
                                    "properties": {
                                        "grant_type": {"enum": ["client_credentials"]},
                                        "scope": {"type": "string", "pattern": "iSHARE|ishare"},
                                        "client_id": {
                                            "type": "string",
                                            "pattern": PARTY_ID.pattern,
                                        },
                                        "client_assertion_type": {
                                            "enum": [
                                                "urn:ietf:params:oauth:client-assertion-type:"
                                                "jwt-bearer"
                                            ]
                                        },
                                        "client_assertion": {"type": "string", "pattern": _JWS},
                                    },
                                }
                            }
                        },
                    },
                )
            },
            "/capabilities": {
                "get": op(
                    "signed capabilities_token (restricted services only for a token holder)",
                    {"200": ("capabilities_token", {_JSON: _token_body("capabilities_token")})},
                    _AUTH,
                    secure="optional",
                )
            },
            "/.well-known/jwks.json": {
                "get": op(
                    "the public keys this node's access tokens are signed with (JWK Set, by kid)",
                    {
                        "200": (
                            "JWK Set",
                            {
                                _JSON: {
                                    "type": "object",
                                    "required": ["keys"],
                                    "properties": {"keys": {"type": "array"}},
                                }
                            },
                        )
                    },
                    {"503": ""},
                    secure=False,
                )
            },
            "/readyz": {
                "get": op(
                    "readiness: each dependency (store, audit, registry, disk); 503 drains the host",
                    {
                        "200": ("ready", {_JSON: _READY}),
                        "503": ("not ready (with Retry-After)", {_JSON: _READY}),
                    },
                    secure=False,
                )
            },
            "/healthz": {
                "get": op(
                    "liveness",
                    {
                        "200": (
                            "ok",
                            {
                                _JSON: {
                                    "type": "object",
                                    "required": ["status", "party_id", "base_iri"],
                                    "properties": {
                                        "status": {"const": "ok"},
                                        "party_id": {"type": "string"},
                                        "base_iri": {"type": "string"},
                                    },
                                }
                            },
                        )
                    },
                    secure=False,
                )
            },
            "/id/{path}": {
                "get": op(
                    "dereference a resource (content negotiation, ETag/304)",
                    {
                        "200": ("description", {m: any_body for m in [*_RDF, _HTML]}),
                        "304": ("not modified", None),
                    },
                    {
                        "400": "not a valid IRI or percent-encoding, or a bad Authorization header",
                        "403": "",
                        "404": "no dataset of this node describes it",
                        "406": "",
                        "503": "",
                    },
                    params=[
                        _string_param(
                            "path", "path", "the IRI's path below /id/", pattern=_ID_PATH
                        ),
                        fmt,
                    ],
                )
            },
            "/sparql": {
                "get": op(
                    "SPARQL 1.1 query (read-only, scoped to the caller's policies); without a "
                    "query the SPARQL 1.1 Service Description (anonymous callers: no datasets)",
                    {
                        "200": (
                            "results, a graph, or the service description",
                            {m: any_body for m in _RESULTS + _RDF},
                        )
                    },
                    sparql_errors,
                    params=[optional_query, *graphs, sparql_fmt],
                    secure="optional",
                ),
                "post": op(
                    "SPARQL 1.1 query by form or application/sparql-query",
                    sparql_ok,
                    {
                        **sparql_errors,
                        "415": "another Content-Type, or a declared charset other than UTF-8 "
                        "(US-ASCII only for an ASCII body)",
                    },
                    params=[sparql_fmt],
                    body={
                        "required": True,
                        "content": {
                            "application/sparql-query": {"schema": {"type": "string"}},
                            "application/x-www-form-urlencoded": {
                                "schema": {
                                    "type": "object",
                                    "required": ["query"],
                                    "properties": {
                                        "query": {"type": "string"},
                                        "default-graph-uri": {
                                            "type": "string",
                                            "pattern": _GRAPH_IRI,
                                        },
                                        "named-graph-uri": {
                                            "type": "string",
                                            "pattern": _GRAPH_IRI,
                                        },
                                    },
                                }
                            },
                        },
                    },
                ),
            },
            "/catalog": {
                "get": op(
                    "DCAT-AP 3.0 catalog of the datasets the caller may read",
                    {"200": ("catalog", {m: any_body for m in [*_RDF, _HTML]})},
                    ("400", "401", "406"),
                    secure="optional",
                    params=[fmt],
                )
            },
            "/delegation": {
                "post": op(
                    "iSHARE delegation evidence for a delegation mask",
                    {"200": ("delegation_token", {_JSON: _token_body("delegation_token")})},
                    {
                        "400": "not a delegation mask, or a bad Authorization header",
                        "403": "the caller is neither policy issuer nor access subject",
                        "404": "no policy for this issuer and access subject",
                        "503": "",
                    },
                    body={
                        "required": True,
                        "content": {
                            _JSON: {
                                "schema": {
                                    "type": "object",
                                    "required": ["delegationRequest"],
                                    "properties": {
                                        "delegationRequest": {
                                            "type": "object",
                                            "required": ["policyIssuer", "target"],
                                            "properties": {
                                                "policyIssuer": {"type": "string"},
                                                "target": {
                                                    "type": "object",
                                                    "required": ["accessSubject"],
                                                    "properties": {
                                                        "accessSubject": {"type": "string"}
                                                    },
                                                },
                                                "policySets": {"type": "array"},
                                            },
                                        },
                                        "previous_steps": {
                                            "type": "array",
                                            "items": {"type": "string"},
                                        },
                                    },
                                }
                            }
                        },
                    },
                )
            },
            "/delegation/explain": {
                "get": op(
                    "why the caller may or may not read a resource or dataset",
                    {"200": ("explanation", {_JSON: {"type": "object"}})},
                    params=[
                        _string_param("resource", description="a resource IRI"),
                        _string_param(
                            "context",
                            description="iSHARE 3.0 request context (a JSON object) for conditions",
                        ),
                        _string_param("dataset", description="a dataset name"),
                        _string_param(
                            "action",
                            description="default ISHARE.READ; one of " + ", ".join(_ACTIONS),
                        ),
                    ],
                )
            },
            "/admin/datasets/{name}": {
                "put": op(
                    "replace a dataset atomically (node's own party only)",
                    {
                        "200": (
                            "loaded",
                            {
                                _JSON: {
                                    "type": "object",
                                    "required": ["dataset", "graph", "triples"],
                                    "properties": {
                                        "dataset": {"type": "string"},
                                        "graph": {"type": "string"},
                                        "triples": {"type": "integer"},
                                    },
                                }
                            },
                        )
                    },
                    {
                        "400": "invalid name, unknown format, or a parse error with file and line",
                        "403": "not the node's party",
                        "413": "",
                        "503": "",
                    },
                    params=[
                        dataset_name,
                        _string_param("format", description="RDF format if no Content-Type"),
                    ],
                    body={
                        "description": "the new contents (an empty body empties the dataset)",
                        "content": {
                            m: {
                                # any JSON: the store's JSON-LD parser reads even a bare
                                # string (as no triples)
                                "schema": {} if m == "application/ld+json" else {"type": "string"}
                            }
                            for m in _UPLOAD
                        },
                    },
                ),
                "delete": op(
                    "drop a dataset (node's own party only)",
                    {"204": ("dropped", None)},
                    {"400": "", "403": "not the node's party", "404": "", "503": ""},
                    params=[dataset_name],
                ),
            },
            "/admin/sync": {
                "post": op(
                    "re-run connectors whose source changed (node's own party only)",
                    {
                        "200": (
                            "outcomes",
                            {
                                _JSON: {
                                    "type": "object",
                                    "required": ["outcomes"],
                                    "properties": {"outcomes": {"type": "array"}},
                                }
                            },
                        )
                    },
                    {
                        "403": "not the node's party",
                        "404": "no [[sources]] configured",
                        "503": "",
                    },
                    params=[_string_param("force", description="true: re-run every source")],
                )
            },
        },
    }
    schema["paths"].update(_more_paths(op, dataset_name, fmt))
    add_pages(schema, op, dataset_name)
    if "registry" in settings.roles:
        paging = [
            _string_param("eori", description="party id pattern (* wildcard)"),
            _string_param("id", description="same as eori"),
            _string_param("party_id", description="same as eori"),
            _string_param("name", description="party name pattern (* wildcard)"),
            {
                "name": "active_only",
                "in": "query",
                "description": "true: only active parties (anything but true/false is a 400)",
                "schema": {"type": "string", "enum": ["true", "false"]},
            },
            {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
            {
                "name": "pageSize",
                "in": "query",
                "schema": {"type": "integer", "minimum": 1, "maximum": 100},
            },
        ]
        schema["paths"]["/parties"] = {
            "get": op(
                "participant registry: parties (signed parties_token; no filter lists all)",
                {"200": ("parties_token", {_JSON: _token_body("parties_token")})},
                {"400": "bad page or pageSize, or a bad Authorization header"},
                params=paging,
            )
        }
        schema["paths"]["/parties/{party_id}"] = {
            "get": op(
                "one party (signed party_token)",
                {"200": ("party_token", {_JSON: _token_body("party_token")})},
                {"404": "no such party"},
                params=[_string_param("party_id", "path", "the party's identifier")],
            )
        }
        schema["paths"]["/trusted_list"] = {
            "get": op(
                "trusted CAs (signed trusted_list_token)",
                {"200": ("trusted_list_token", {_JSON: _token_body("trusted_list_token")})},
            )
        }
    if settings.login.enabled:
        from node.login.routes import openapi_paths

        schema["paths"].update(openapi_paths(op, _string_param))
    schema["paths"]["/v3/connect/token"] = schema["paths"]["/connect/token"]  # the same endpoint
    schema["paths"].update(v3_paths(op, registry="registry" in settings.roles))
    app.openapi_schema = schema
    return schema


def _json_object(*required: str, **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": properties}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {_JSON: {"schema": schema}}}


def _more_paths(op: Any, dataset_name: dict, fmt: dict) -> dict[str, Any]:
    """The owner's and auditor's API, whole-dataset reads and link following."""
    dataset_types = ("application/n-triples", "application/n-quads", "text/turtle", _RDF[0])
    loaded = _json_object(
        "dataset",
        "triples",
        "version",
        dataset={"type": "string"},
        triples={"type": "integer"},
        version={"type": "integer"},
    )
    owner_only = {"403": "not the node's party", "503": ""}
    integer = {"type": "string", "pattern": "^[0-9]+$"}
    policy_id = _string_param("policy_id", "path", "the policy's id")
    return {
        "/": {
            "get": op(
                "where the node's services are",
                {"200": ("links", {_JSON: _json_object("party_id", party_id={"type": "string"})})},
                secure=False,
            )
        },
        "/admin/datasets": {
            "get": op(
                "the node's datasets with their sizes (node's own party only)",
                {
                    "200": (
                        "datasets",
                        {_JSON: _json_object("datasets", datasets={"type": "array"})},
                    )
                },
                owner_only,
            )
        },
        "/admin/connect": {
            "post": op(
                "run a connector into a dataset (node's own party only)",
                {"200": ("loaded", {_JSON: loaded})},
                {**owner_only, "400": "missing fields, bad dataset name or connector failure"},
                body=_json_body(
                    _json_object(
                        "kind",
                        "source",
                        "dataset",
                        kind={"type": "string", "minLength": 1},
                        source={"type": "string", "minLength": 1},
                        dataset={"type": "string", "minLength": 1},
                        mapping={"type": "string"},
                        options={"type": "object"},
                    )
                ),
            )
        },
        "/admin/check": {
            "post": op(
                "check a dataset's model (or a model file) against IDS files; the report is "
                "stored as a signed dataset (node's own party only)",
                {"200": ("the check's summary", {_JSON: {"type": "object"}})},
                {
                    **owner_only,
                    "400": "missing fields or bad names",
                    "404": "no such dataset or file",
                    "409": "the report would replace data that is not a report",
                    "422": "the model or an IDS file cannot be checked",
                },
                body=_json_body(
                    _json_object(
                        "report",
                        "ids",
                        report=dataset_name["schema"],
                        ids={
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": "string", "minLength": 1},
                        },
                        dataset=dataset_name["schema"],
                        model={"type": "string", "minLength": 1},
                    )
                ),
            )
        },
        "/admin/derive": {
            "post": op(
                "store a CONSTRUCT query's result as a dataset (node's own party only)",
                {"200": ("loaded", {_JSON: loaded})},
                {**owner_only, "400": "missing fields, bad dataset name or query"},
                body=_json_body(
                    _json_object(
                        "query",
                        "dataset",
                        query={"type": "string", "minLength": 1},
                        dataset=dataset_name["schema"],
                    )
                ),
            )
        },
        "/admin/sign/{name}": {
            "post": op(
                "sign the dataset's current version (node's own party only)",
                {"200": ("signed", {_JSON: _json_object("dataset", "signature")})},
                {**owner_only, "400": "", "404": "no such dataset"},
                params=[dataset_name],
            )
        },
        "/dataset/{name}": {
            "get": op(
                "the whole dataset, for a caller who may read all of it",
                {
                    "200": ("the dataset", {m: {} for m in dataset_types}),
                    "304": ("not modified", None),
                },
                {"403": "", "404": "no such dataset", "406": "", "503": ""},
                params=[
                    dataset_name,
                    _format(
                        dataset_types,
                        {"nq": "application/n-quads", "nquads": "application/n-quads"},
                    ),
                ],
            )
        },
        "/dataset/{name}/void": {
            "get": op(
                "VoID of the dataset as the caller may read it: triples, distinct subjects, "
                "class and property partitions",
                {"200": ("VoID", {m: {} for m in _VOID})},
                {
                    "400": "not a dataset name",
                    "404": "no such dataset the caller may read",
                    "406": "",
                },
                params=[dataset_name, _format(tuple(_VOID))],
            )
        },
        "/.well-known/void": {
            "get": op(
                "VoID of every dataset the caller may read (none for an anonymous caller)",
                {"200": ("VoID", {m: {} for m in _VOID})},
                ("400", "401", "406"),
                secure="optional",
                params=[_format(tuple(_VOID))],
            )
        },
        "/dataset/{name}/signature": {
            "get": op(
                "the detached JWS over the dataset's current version",
                {"200": ("signature", {"application/jose": {"type": "string"}})},
                {"403": "", "404": "no such dataset, or not signed in this version", "503": ""},
                params=[dataset_name],
            )
        },
        "/audit/entries": {
            "get": op(
                "the audit log (auditors the owner granted `audit`, and the owner)",
                {
                    "200": (
                        "entries (JSON, or PROV-O in an RDF syntax)",
                        {
                            _JSON: _json_object("entries", entries={"type": "array"}),
                            **{m: {} for m in _RDF},
                        },
                    )
                },
                {"403": "", "406": "", "503": ""},
                params=[
                    _string_param("since", description="ISO 8601 time"),
                    _string_param("until", description="ISO 8601 time"),
                    _string_param("party"),
                    _string_param("kind"),
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {**integer, "pattern": "^0*[1-9][0-9]*$"},
                    },
                    {"name": "after_seq", "in": "query", "schema": integer},
                    _format((_JSON, *RDF_TYPES)),
                ],
            )
        },
        "/audit/trace": {
            "get": op(
                "one-hop provenance of a resource (auditors and the owner)",
                {"200": ("trace", {_JSON: {"type": "object"}})},
                {"400": "missing or invalid iri", "403": "", "503": ""},
                params=[
                    {
                        **_string_param("iri", description="a resource IRI", minLength=1),
                        "required": True,
                    }
                ],
            )
        },
        "/audit/witness": {
            "post": op(
                "file the caller's own signed audit checkpoint; answers the countersigned head",
                {
                    "200": (
                        "the witnessed head",
                        {
                            _JSON: _json_object(
                                "party",
                                "seq",
                                "hash",
                                "receipt",
                                party={"type": "string"},
                                seq={"type": "integer"},
                                hash={"type": "string"},
                                receipt={"type": "string"},
                            )
                        },
                    )
                },
                {
                    "400": "not JSON, not a checkpoint, or not the caller's own",
                    "409": "contradicts a head witnessed before (a rewrite or a rollback)",
                    "503": "",
                },
                body=_json_body(_json_object("checkpoint", checkpoint={"type": "string"})),
            )
        },
        "/audit/witness/{party_id}": {
            "get": op(
                "the audit heads witnessed for a party, each with the witness's receipt",
                {"200": ("heads", {_JSON: {"type": "object"}})},
                {"503": ""},
                params=[_string_param("party_id", "path")],
            )
        },
        "/follow": {
            "get": op(
                "fetch a linked resource from the node that serves it (node's own party only)",
                {
                    "200": ("the remote description", {m: {} for m in [*_RDF, _HTML]}),
                    "303": ("the IRI is this node's own: see the local path", None),
                    "304": ("not modified", None),
                },
                {
                    "400": "missing iri",
                    "403": "not the node's party, or no registered peer serves the IRI",
                    "404": "the remote node has no such resource",
                    "406": "",
                    "502": "the remote node failed or did not answer",
                    "503": "",
                },
                params=[
                    {**_string_param("iri", description="an IRI", minLength=1), "required": True},
                    fmt,
                ],
            )
        },
        "/delegation/policies": {
            "get": op(
                "the owner's policies (iSHARE delegation evidence, or ODRL with format=odrl)",
                {"200": ("policies", {_JSON: {"type": "array"}})},
                owner_only,
                params=[_string_param("format", description="odrl: as ODRL policies")],
            ),
            "post": op(
                "add a policy: full delegationEvidence or a grant shorthand",
                {"201": ("created", {_JSON: _json_object("id", id={"type": "string"})})},
                {**owner_only, "400": "not a policy this node can evaluate"},
                body=_json_body(
                    {
                        "type": "object",
                        "minProperties": 1,
                        "properties": {
                            "delegationEvidence": {"type": "object"},
                            "grant": _json_object("to", to={"type": "string"}),
                        },
                    }
                ),
            ),
        },
        "/delegation/policies/{policy_id}": {
            "get": op(
                "one policy (ODRL JSON-LD if Accept asks for application/ld+json)",
                {"200": ("policy", {_JSON: {"type": "object"}, _RDF[0]: {"type": "object"}})},
                {**owner_only, "404": "no such policy"},
                params=[policy_id],
            ),
            "delete": op(
                "revoke a policy",
                {"204": ("revoked", None)},
                {**owner_only, "404": "no such policy"},
                params=[policy_id],
            ),
        },
    }
