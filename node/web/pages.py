"""Routes of the pages for people (/ui/...), the node's own assets (/static/...) and /docs.

Each page authenticates the caller as every other route does (node.auth), asks the
enforcement point for its decision, and renders with node.html. Nothing here loads from
another origin: scripts, styles and Swagger UI are vendored into node/static/ at build time.
"""

from __future__ import annotations

import mimetypes
from html import escape
from pathlib import Path
from urllib.parse import quote

import pyoxigraph as ox
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from node.enforcement import READ_DATASET
from node.errors import NotFoundError
from node.html import Fragment, Link, Section, Text, render_page
from node.iri import check_dataset_name
from node.runtime import Runtime
from node.store import UnknownDataset
from node.web import audit_page, policy_page
from node.web.building import read_overview, render_overview
from node.web.common import caller_of, html_response
from node.web.csrf import csrf_token
from node.web.provenance_panel import provenance_section
from vocab.namespaces import BOT, RDF_TYPE

STATIC = Path(__file__).resolve().parent.parent / "static"
VENDOR_MISSING = "the node's vendored browser assets are missing: run `make assets`"
BOT_BUILDING = BOT + "Building"
SPARQL_EXAMPLE = """PREFIX bot: <https://w3id.org/bot#>
PREFIX props: <https://w3id.org/props#>
PREFIX qudt: <http://qudt.org/schema/qudt/>
SELECT ?space ?name ?area WHERE {
  ?space a bot:Space ; props:longName ?name .
  OPTIONAL { ?space props:area/qudt:numericValue ?area }
} ORDER BY ?name LIMIT 100"""
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}


def web_routes(rt: Runtime) -> list[Route]:
    """The page routes; mounted by node/app.py next to the API routes."""

    async def building(request: Request) -> Response:
        name = check_dataset_name(request.path_params["name"])
        caller = caller_of(request, rt)
        overview = await read_overview(rt, caller, name)
        return html_response(
            render_overview(overview, rt.settings.base_iri, rt.settings.party_name)
        )

    async def sparql(request: Request) -> Response:
        caller_of(request, rt)
        query = request.query_params.get("query") or SPARQL_EXAMPLE
        editor = Fragment(
            "<p>Queries run at this node's <code>/sparql</code> with your login, over what "
            "its policies let you read. <code>SERVICE &lt;…/sparql&gt;</code> reaches other "
            "nodes the same way.</p>"
            '<p id="sparql-status" class="ok" data-truncated="">Ready.</p>'
            f'<div id="yasgui" data-query="{escape(query, quote=True)}" '
            f'data-csrf="{escape(csrf_token(request), quote=True)}"></div>'
        )
        body = render_page(
            f"{rt.settings.party_name}: SPARQL",
            [editor],
            nav=True,
            scripts=("/static/vendor/yasgui/yasgui.min.js", "/static/sparql.js"),
            styles=("/static/vendor/yasgui/yasgui.min.css",),
        )
        return html_response(body)

    async def policies(request: Request) -> Response:
        return await policy_page.policies_page(request, rt)

    async def grant(request: Request) -> Response:
        return await policy_page.grant(request, rt)

    async def revoke(request: Request) -> Response:
        return await policy_page.revoke(request, rt)

    async def audit(request: Request) -> Response:
        return await audit_page.audit_page(request, rt)

    async def docs(request: Request) -> Response:
        body = (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            "script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "font-src 'self' data:; connect-src 'self'; base-uri 'none'\">"
            f"<title>{escape(rt.settings.party_name)}: API</title>"
            '<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">'
            '<link rel="icon" href="/static/vendor/swagger-ui/favicon-32x32.png">'
            '</head><body><div id="swagger-ui"></div>'
            '<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>'
            '<script src="/static/vendor/swagger-ui/swagger-ui-standalone-preset.js"></script>'
            '<script src="/static/docs.js"></script></body></html>\n'
        )
        return html_response(body.encode("utf-8"))

    async def static(request: Request) -> Response:
        return await run_in_threadpool(static_file, request.path_params["path"])

    return [
        Route("/ui/building/{name}", building, methods=["GET"]),
        Route("/ui/sparql", sparql, methods=["GET"]),
        Route("/ui/policies", policies, methods=["GET"]),
        Route("/ui/policies/grant", grant, methods=["POST"]),
        Route("/ui/policies/revoke", revoke, methods=["POST"]),
        Route("/ui/audit", audit, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route("/static/{path:path}", static, methods=["GET"]),
    ]


def static_file(path: str) -> Response:
    """A file under node/static/ (404 for anything else: no '..', no directories, no dotfiles)."""
    parts = path.split("/")
    if not path or any(p in ("", ".", "..") or p.startswith(".") for p in parts) or "\\" in path:
        raise NotFoundError(f"no asset {path[:100]!r}")
    file = STATIC.joinpath(*parts)
    try:
        resolved = file.resolve(strict=True)
    except (OSError, RuntimeError):
        if parts[0] == "vendor":
            raise NotFoundError(f"no asset {path[:100]!r}: {VENDOR_MISSING}") from None
        raise NotFoundError(f"no asset {path[:100]!r}") from None
    if not resolved.is_file() or STATIC not in resolved.parents:
        raise NotFoundError(f"no asset {path[:100]!r}")
    media = _TYPES.get(resolved.suffix) or mimetypes.guess_type(resolved.name)[0]
    return Response(
        resolved.read_bytes(),
        media_type=media or "application/octet-stream",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


def home_page(rt: Runtime) -> bytes:
    """GET / for a browser: what this node is and where its pages are."""
    rows = [
        [Link("Catalog", "/catalog"), Text("the datasets you may read, as DCAT")],
        [Link("SPARQL editor", "/ui/sparql"), Text("query what you may read, here and federated")],
        [
            Link("Policies", "/ui/policies"),
            Text("steward: who may read what; grant, revoke, explain"),
        ],
        [Link("Audit", "/ui/audit"), Text("auditor: the audit log, its verification, traces")],
        [Link("API", "/docs"), Text("the HTTP API (OpenAPI, Swagger UI)")],
    ]
    return render_page(
        rt.settings.party_name,
        [Section("Pages", rows, ("page", "for"))],
        nav=True,
        subtitle=Text(rt.settings.party_id, "party"),
    )


async def dataset_page(request: Request, rt: Runtime, name: str) -> Response:
    """GET /dataset/{name} for a browser: the dataset's facts, provenance and downloads.

    The same decision as the data itself: the caller must be allowed to read the whole dataset.
    """
    caller = caller_of(request, rt)
    check_dataset_name(name)
    await run_in_threadpool(rt.enforcer.authorize, caller, READ_DATASET, name)
    infos = await run_in_threadpool(rt.store.datasets)
    info = next((d for d in infos if d.name == name), None)
    if info is None:
        raise UnknownDataset(f"no dataset named {name!r} on this node")
    graph = rt.settings.dataset_iri(name)
    is_building = await run_in_threadpool(
        lambda: (
            next(
                rt.store.quads(
                    predicate=RDF_TYPE, object=ox.NamedNode(BOT_BUILDING), graphs=[graph]
                ),
                None,
            )
            is not None
        )
    )
    panel = await run_in_threadpool(provenance_section, rt, [graph])
    q = quote(name)
    downloads = [
        Link("N-Triples", f"/dataset/{q}?format=nt", "application/n-triples"),
        Link("N-Quads", f"/dataset/{q}?format=nq", "application/n-quads"),
        Link("Turtle", f"/dataset/{q}?format=ttl", "text/turtle"),
        Link("JSON-LD", f"/dataset/{q}?format=jsonld", "application/ld+json"),
    ]
    facts: list[list] = [
        [Text("triples"), Text(f"{info.triples:,}")],
        [Text("modified"), Text(info.modified.isoformat() if info.modified else "—")],
        [Text("download"), downloads],
    ]
    if is_building:
        facts.append([Text("building"), Link("Building overview", f"/ui/building/{q}")])
    sections = [Section("Dataset", facts), panel]
    body = render_page(
        f"Dataset {name}", sections, nav=True, subtitle=Text(graph, rt.settings.party_name)
    )
    return html_response(body)
