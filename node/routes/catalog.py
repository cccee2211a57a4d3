"""GET /catalog: the node as a DCAT-AP 3 catalog (node.dcat), showing each caller only the datasets
it may read, with sizes in its scope (node.void), and ODRL offers for advertised ones."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from node.auth import optional_caller
from node.dcat import catalog_triples
from node.html import Link, Section, render_page
from node.negotiation import HTML, RESOURCE_TYPES, choose, content_type, serialise_triples
from node.runtime import Runtime
from node.store import DatasetInfo
from node.void import visible


def catalog_routes(rt: Runtime) -> list[Route]:
    """The catalog route; anonymous callers see the node and its services, not the datasets."""

    async def catalog(request: Request) -> Response:
        caller = optional_caller(request, rt.layer)
        media = choose(
            request.headers.get("accept"), RESOURCE_TYPES, request.query_params.get("format")
        )
        views = await run_in_threadpool(visible, rt, caller.party_id if caller else None)
        if caller is not None:  # one audit entry per authenticated read (issue 17)
            # Group-committed with concurrent requests' entries (as /id/...), not one
            # transaction of its own on a pool thread; nothing is answered before it is written.
            with rt.audit.deferred() as pending:
                rt.enforcer.catalog_read(caller, [v.info.graph for v in views])
            await pending.wait()
        if media == HTML:
            body = _html(rt, [v.info for v in views])
        else:
            offers = rt.settings.advertise if caller is not None else ()
            body = serialise_triples(catalog_triples(rt.settings, views, offers), media)
        return Response(
            body,
            media_type=content_type(media),
            headers={"Vary": "Accept, Authorization", "Cache-Control": "private, no-cache"},
        )

    return [Route("/catalog", catalog, methods=["GET", "HEAD"])]


def _html(rt: Runtime, datasets: list[DatasetInfo]) -> bytes:
    # Paths, not the absolute IRIs: they stay on this node's pages, with the browser's login.
    rows = [
        [
            Link(d.name, f"/dataset/{d.name}", d.graph),
            str(d.triples),
            d.modified.isoformat() if d.modified else "",
        ]
        for d in datasets
    ]
    sections = [
        Section(
            "Services",
            [["SPARQL endpoint", Link("/sparql", "/ui/sparql", f"{rt.settings.base_iri}/sparql")]],
            ("service", "URL"),
        ),
        Section("Datasets you may read", rows, ("dataset", "triples", "modified")),
    ]
    alternates = {
        "application/ld+json": "/catalog?format=jsonld",
        "text/turtle": "/catalog?format=ttl",
        "application/n-triples": "/catalog?format=nt",
    }
    return render_page(f"{rt.settings.party_name} — catalog", sections, alternates, nav=True)
