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
from starlette.responses import Response
from starlette.routing import Route

from node.auth import authenticate
from node.enforcement import ADMIN
from node.errors import BadRequest, NodeError
from node.exchange import exchange_for
from node.html import render_resource
from node.jsonld import load_context
from node.negotiation import HTML, RESOURCE_TYPES, choose, content_type
from node.outbound import RemoteFetchError, fetch_resource
from node.runtime import Runtime
from trust.audit import AuditEvent


def follow_routes(rt: Runtime) -> list[Route]:
    """The link-following route."""

    async def follow(request: Request) -> Response:
        caller = authenticate(request, rt.layer)
        rt.enforcer.authorize(caller, ADMIN, "/follow", audit=False)
        iri = request.query_params.get("iri", "")
        if not iri:
            raise BadRequest("missing 'iri' parameter", code="invalid_request")
        if rt.peers.is_self(iri):
            local = iri[len(rt.settings.base_iri) :] or "/"
            return Response(status_code=303, headers={"Location": local})
        media = choose(
            request.headers.get("accept"), RESOURCE_TYPES, request.query_params.get("format")
        )
        peer = rt.enforcer.outbound(caller, iri)  # 403 service_not_allowed before any I/O
        upstream = "application/n-triples" if media == HTML else media
        error = None
        try:
            remote = await run_in_threadpool(
                fetch_resource,
                rt.layer.client(),
                peer,
                iri,
                accept=upstream,
                etag=request.headers.get("if-none-match"),
                timeout=rt.settings.query_timeout,
                exchange=exchange_for(rt),
            )
        except RemoteFetchError as exc:
            error = exc
        rt.record(
            AuditEvent(
                kind="federated_call",
                party=caller.party_id,
                target=iri,
                action="follow",
                token_jti=caller.jti,
                detail={"peer": peer.party_id, "error": error.reason if error else None},
            )
        )
        if error is not None:
            raise NodeError(
                error.reason, status=error.status, code="remote_fetch_failed", node=peer.base_url
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
