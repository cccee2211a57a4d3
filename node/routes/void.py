"""GET /.well-known/void and GET /dataset/{name}/void: VoID as the caller may see it."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from node.auth import authenticate, optional_caller
from node.enforcement import READ_CATALOG
from node.errors import NotFoundError
from node.iri import check_dataset_name
from node.negotiation import choose, content_type, serialise_triples
from node.runtime import Runtime
from node.self_description import DESCRIPTION_TYPES, HEADERS, void_document
from node.void import cached_body, visible, void_iri


def void_routes(rt: Runtime) -> list[Route]:
    """VoID of every dataset the caller may read, and of one; anonymous callers see none."""

    async def all_datasets(request: Request) -> Response:
        caller = optional_caller(request, rt.layer)
        media = choose(
            request.headers.get("accept"), DESCRIPTION_TYPES, request.query_params.get("format")
        )
        views = await run_in_threadpool(visible, rt, caller.party_id if caller else None)
        iri = f"{rt.settings.base_iri}/.well-known/void"
        if caller is not None:  # one audit entry per authenticated read, as /catalog (issue 17)
            with rt.audit.deferred() as pending:  # group-committed, as /catalog
                rt.enforcer.catalog_read(caller, [v.info.graph for v in views], iri)
            await pending.wait()
        body = cached_body(
            rt, iri, media, views, lambda: serialise_triples(void_document(rt, views, iri), media)
        )
        return Response(body, media_type=content_type(media), headers=HEADERS)

    async def one_dataset(request: Request) -> Response:
        caller = authenticate(request, rt.layer)
        name = request.path_params["name"]
        check_dataset_name(name)
        media = choose(
            request.headers.get("accept"), DESCRIPTION_TYPES, request.query_params.get("format")
        )
        mine = await run_in_threadpool(visible, rt, caller.party_id, name)
        iri = void_iri(rt, name)
        with rt.audit.deferred() as pending:  # group-committed, as /catalog
            if not mine:
                reason = "no such dataset in the caller's read scope"
                rt.enforcer.refuse(caller, READ_CATALOG, iri, reason)
            else:
                rt.enforcer.catalog_read(caller, [v.info.graph for v in mine], iri)
        await pending.wait()
        if not mine:
            raise NotFoundError(f"no dataset {name!r} that you may read")
        body = cached_body(
            rt, iri, media, mine, lambda: serialise_triples(void_document(rt, mine, iri), media)
        )
        return Response(body, media_type=content_type(media), headers=HEADERS)

    return [
        Route("/.well-known/void", all_datasets, methods=["GET", "HEAD"]),
        Route("/dataset/{name}/void", one_dataset, methods=["GET", "HEAD"]),
    ]
