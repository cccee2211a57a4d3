"""GET /id/...: every IRI under the node's base dereferences to its description, per caller."""

from __future__ import annotations

import hashlib
from urllib.parse import unquote

import pyoxigraph as ox
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from node.auth import authenticate
from node.html import render_resource
from node.jsonld import load_context
from node.negotiation import HTML, RESOURCE_TYPES, choose, content_type, serialise_triples
from node.runtime import Runtime
from node.store import UnknownDataset

ALTERNATES = {
    "application/ld+json": "?format=jsonld",
    "text/turtle": "?format=ttl",
    "application/n-triples": "?format=nt",
}
OFFERED = ", ".join(RESOURCE_TYPES)


class UnknownResource(UnknownDataset):
    """No dataset of this node says anything about the IRI (HTTP 404)."""


def resource_routes(rt: Runtime) -> list[Route]:
    """The dereferencing route; runs inline for the embedded store (it is fast), in a thread otherwise."""
    inline = rt.settings.store_backend == "oxigraph"

    async def resource(request: Request) -> Response:
        caller = authenticate(request, rt.layer)
        media = choose(
            request.headers.get("accept"), RESOURCE_TYPES, request.query_params.get("format")
        )
        iri = (
            rt.settings.base_iri
            + request.scope.get("raw_path", b"").decode("latin-1").split("?")[0]
        )
        if inline:
            body = describe(rt, caller.party_id, iri, media)
        else:
            body = await run_in_threadpool(describe, rt, caller.party_id, iri, media)
        etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
        headers = {
            "ETag": etag,
            "Vary": "Accept, Authorization",
            "Cache-Control": "private, no-cache",
        }
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=content_type(media), headers=headers)

    return [Route("/id/{path:path}", resource, methods=["GET", "HEAD"])]


def describe(rt: Runtime, caller: str, iri: str, media: str) -> bytes:
    """The caller's view of one resource in `media`; 404 if unknown, 403 if nothing is permitted."""
    graphs = dataset_graphs(rt)
    quads = list(rt.store.quads(subject=iri, graphs=graphs))
    if not quads:
        # The path may be percent-encoded differently from the stored IRI; try the decoded form.
        decoded = unquote(iri)
        if decoded != iri:
            quads = list(rt.store.quads(subject=decoded, graphs=graphs))
            iri = decoded
    if not quads:
        raise UnknownResource(f"no resource {iri} on this node")
    triples = rt.enforcer.describe(caller, quads, iri, graphs)
    if media == HTML:
        labels = _labels(rt, caller, triples, graphs)
        return render_resource(iri, triples, labels, load_context(), ALTERNATES)
    return serialise_triples(triples, media)


def dataset_graphs(rt: Runtime) -> list[str]:
    """This node's dataset graphs, cached until the store changes."""
    return rt.enforcer.dataset_graphs(rt.store, rt.store.version())


def _labels(
    rt: Runtime, caller: str, triples: list[ox.Triple], graphs: list[str]
) -> dict[str, str]:
    """Labels of linked resources, taken only from datasets the caller may read as a whole."""
    scope = rt.enforcer.scope_for(caller)
    if "*" in scope.whole_datasets:
        readable = graphs
    else:
        readable = [g for g in graphs if g in scope.whole_datasets]
    labels: dict[str, str] = {}
    for t in triples:
        o = t.object
        if isinstance(o, ox.NamedNode) and o.value not in labels and readable:
            for q in rt.store.quads(
                subject=o.value,
                predicate="http://www.w3.org/2000/01/rdf-schema#label",
                graphs=readable,
            ):
                labels[o.value] = q.object.value
                break
    return labels


def _matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison, as RFC 9110 asks for If-None-Match."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return etag in tags
