"""GET /follow?iri=...: the node's own users follow a link to another node's resource.

The node discovers the owning node, obtains a token there with its own key and fetches the
resource with content negotiation and the caller's If-None-Match. The answer is held in memory
for this request only. Only the node's own party may use it: otherwise any caller could read,
through this node, whatever the other node lets this node read.
"""

from __future__ import annotations

from urllib.parse import quote

import pyoxigraph as ox
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.auth import authenticate
from node.html import render_resource
from node.jsonld import load_context
from node.links import RemoteFetchError, fetch_resource, owning_node
from node.negotiation import HTML, RESOURCE_TYPES, choose, content_type
from node.routes.admin import NotAdmin
from node.runtime import Runtime
from trust.audit import AuditEvent


def follow_routes(rt: Runtime) -> list[Route]:
    """The link-following route."""

    async def follow(request: Request) -> Response:
        caller = authenticate(request, rt.layer)
        if caller.party_id != rt.settings.party_id:
            raise NotAdmin("follow", "only the node's own party may follow links through it")
        iri = request.query_params.get("iri", "")
        try:
            node = owning_node(iri)
        except RemoteFetchError as exc:
            return JSONResponse(
                {"error": "invalid_request", "error_description": str(exc)}, status_code=400
            )
        if node == rt.settings.base_iri:
            return Response(status_code=303, headers={"Location": iri[len(node) :] or "/"})
        media = choose(
            request.headers.get("accept"), RESOURCE_TYPES, request.query_params.get("format")
        )
        upstream = "application/n-triples" if media == HTML else media
        rt.record(
            AuditEvent(kind="federated_call", party=caller.party_id, target=iri, action="follow")
        )
        try:
            remote = await run_in_threadpool(
                fetch_resource,
                rt.layer.client(),
                iri,
                accept=upstream,
                etag=request.headers.get("if-none-match"),
            )
        except RemoteFetchError as exc:
            return JSONResponse(
                {"error": "remote_fetch_failed", "node": node, "error_description": exc.reason},
                status_code=exc.status,
            )
        headers = {"Vary": "Accept, Authorization", "Cache-Control": "private, no-cache"}
        if remote.etag:
            headers["ETag"] = remote.etag
        if remote.status == 304:
            return Response(status_code=304, headers=headers)
        if media != HTML:
            return Response(remote.body, media_type=content_type(media), headers=headers)
        triples = [q.triple for q in ox.parse(remote.body, ox.RdfFormat.N_TRIPLES)]
        base = rt.settings.base_iri

        def link(target: str) -> str:
            if target.startswith(base + "/"):
                return target[len(base) :]
            if target.startswith(("http://", "https://")):
                return "/follow?iri=" + quote(target, safe="")
            return target

        body = render_resource(iri, triples, {}, load_context(), {}, link_for=link)
        return Response(body, media_type=content_type(HTML), headers=headers)

    return [Route("/follow", follow, methods=["GET"])]
