"""The OpenAPI description of the node's API surface (the routes are plain Starlette routes)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from node.config import Settings

_BEARER = [{"bearer": []}]
_RDF = [
    "application/ld+json",
    "text/turtle",
    "application/n-triples",
    "application/rdf+xml",
    "text/html",
]
_RESULTS = [
    "application/sparql-results+json",
    "application/sparql-results+xml",
    "text/csv",
    "text/tab-separated-values",
]


def openapi_schema(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """Built once per app; lists every public and protected endpoint with its responses."""
    if app.openapi_schema:
        return app.openapi_schema

    def op(
        summary: str,
        responses: dict[str, str],
        *,
        secure: bool = True,
        params=None,
        body=None,
        media=None,
    ):
        out: dict[str, Any] = {
            "summary": summary,
            "responses": {
                code: {
                    "description": text,
                    **({"content": {m: {} for m in media}} if media and code == "200" else {}),
                }
                for code, text in responses.items()
            },
        }
        if secure:
            out["security"] = _BEARER
        if params:
            out["parameters"] = params
        if body:
            out["requestBody"] = body
        return out

    q = {"name": "query", "in": "query", "required": True, "schema": {"type": "string"}}
    graphs = [
        {
            "name": "default-graph-uri",
            "in": "query",
            "schema": {"type": "array", "items": {"type": "string"}},
        },
        {
            "name": "named-graph-uri",
            "in": "query",
            "schema": {"type": "array", "items": {"type": "string"}},
        },
    ]
    schema = {
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
            }
        },
        "paths": {
            "/connect/token": {
                "post": op(
                    "iSHARE token endpoint: client_credentials with a signed client assertion",
                    {"200": "access token", "400": "RFC 6749 error", "401": "invalid_client"},
                    secure=False,
                    body={
                        "content": {
                            "application/x-www-form-urlencoded": {
                                "schema": {
                                    "type": "object",
                                    "required": [
                                        "grant_type",
                                        "scope",
                                        "client_id",
                                        "client_assertion_type",
                                        "client_assertion",
                                    ],
                                    "properties": {
                                        k: {"type": "string"}
                                        for k in (
                                            "grant_type",
                                            "scope",
                                            "client_id",
                                            "client_assertion_type",
                                            "client_assertion",
                                        )
                                    },
                                }
                            }
                        }
                    },
                )
            },
            "/capabilities": {
                "get": op("signed capabilities_token", {"200": "capabilities_token"}, secure=False)
            },
            "/healthz": {"get": op("liveness", {"200": "ok"}, secure=False)},
            "/id/{path}": {
                "get": op(
                    "dereference a resource (content negotiation, ETag/304)",
                    {
                        "200": "description",
                        "304": "not modified",
                        "401": "no valid token",
                        "403": "not permitted (explanation)",
                        "404": "unknown",
                        "406": "not acceptable",
                    },
                    params=[
                        {
                            "name": "path",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    media=_RDF,
                )
            },
            "/sparql": {
                "get": op(
                    "SPARQL 1.1 query (read-only, scoped to the caller's policies)",
                    {
                        "200": "results",
                        "400": "malformed query",
                        "401": "no valid token",
                        "403": "update or not permitted",
                        "503": "timeout",
                    },
                    params=[q, *graphs],
                    media=_RESULTS + _RDF[:4],
                ),
                "post": op(
                    "SPARQL 1.1 query by form or application/sparql-query",
                    {
                        "200": "results",
                        "400": "malformed query",
                        "403": "update refused",
                        "415": "wrong content type",
                        "503": "timeout",
                    },
                    body={
                        "content": {
                            "application/sparql-query": {},
                            "application/x-www-form-urlencoded": {},
                        }
                    },
                    media=_RESULTS + _RDF[:4],
                ),
            },
            "/catalog": {
                "get": op(
                    "DCAT 3 catalog of the datasets the caller may read",
                    {"200": "catalog"},
                    secure=False,
                    media=_RDF,
                )
            },
            "/delegation": {
                "post": op(
                    "iSHARE delegation evidence for a delegation mask",
                    {"200": "delegation_token", "400": "bad mask", "403": "not allowed"},
                )
            },
            "/delegation/explain": {
                "get": op(
                    "why the caller may or may not read a resource or dataset",
                    {"200": "explanation"},
                )
            },
            "/admin/datasets/{name}": {
                "put": op(
                    "replace a dataset atomically (node's own party only)",
                    {
                        "200": "loaded",
                        "400": "parse error with file and line",
                        "403": "not the node's party",
                    },
                ),
                "delete": op(
                    "drop a dataset (node's own party only)", {"204": "dropped", "404": "unknown"}
                ),
            },
            "/admin/sync": {
                "post": op("re-run connectors whose source changed", {"200": "outcomes"})
            },
        },
    }
    if "registry" in settings.roles:
        schema["paths"]["/parties"] = {
            "get": op(
                "participant registry: parties (signed parties_token)", {"200": "parties_token"}
            )
        }
        schema["paths"]["/parties/{party_id}"] = {
            "get": op("one party (signed party_token)", {"200": "party_token"})
        }
        schema["paths"]["/trusted_list"] = {
            "get": op("trusted CAs (signed trusted_list_token)", {"200": "trusted_list_token"})
        }
    app.openapi_schema = schema
    return schema
