"""GET /dataset/{name}: a dataset IRI dereferences to the whole dataset, for callers who may read it.

Only a caller the policies let read the WHOLE dataset gets it (the owner always may); anyone else
gets 403 with the enforcer's explanation. N-Triples and N-Quads are streamed from the store (any
size); Turtle and JSON-LD are built in memory and so offered only up to `store.max_results`
triples. `GET /dataset/{name}/signature` serves the detached JWS of the current version
(node.signatures), and `POST /admin/sign/{name}` (owner only) makes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pyoxigraph as ox
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from node.auth import Caller, authenticate
from node.enforcement import READ_DATASET
from node.errors import NotFoundError
from node.iri import check_dataset_name
from node.negotiation import (
    JSONLD,
    NQUADS,
    NTRIPLES,
    TURTLE,
    NotAcceptable,
    choose,
    content_type,
    etag_matches,
    serialise_triples,
)
from node.runtime import Runtime
from node.service.ops import LocalNode
from node.signatures import (
    current_signature,
    has_current_signature,
    version_marker,
)
from node.store import UnknownDataset
from node.web.common import prefers_html
from node.web.pages import dataset_page
from vocab.iris import dataset_iri

DATASET_TYPES: tuple[str, ...] = (NTRIPLES, NQUADS, TURTLE, JSONLD)
STREAMED_TYPES: tuple[str, ...] = (NTRIPLES, NQUADS)
JOSE = "application/jose"
AUDIT_DATASET = "audit"
BATCH = 5_000
_ALIASES = {"nq": NQUADS, "nquads": NQUADS}
_CONTENT_TYPES = {NQUADS: "application/n-quads; charset=utf-8"}


def dataset_routes(rt: Runtime) -> list[Route]:
    """GET /dataset/{name}, GET /dataset/{name}/signature, POST /admin/sign/{name}."""
    base = rt.settings.base_iri

    def _permit(request: Request, name: str) -> Caller:
        """The caller, if the enforcement point lets it read the whole dataset (403 if not)."""
        caller = authenticate(request, rt.layer)
        check_dataset_name(name)
        rt.enforcer.authorize(caller, READ_DATASET, name)
        return caller

    async def dataset(request: Request) -> Response:
        name = request.path_params["name"]
        if prefers_html(request):  # a browser: the dataset's page (node.web), not 3 MB of N-Triples
            return await dataset_page(request, rt, name)
        _permit(request, name)
        if name == AUDIT_DATASET:
            raise _no_audit_data(base)
        media = _choose(request)
        marker, count = await run_in_threadpool(_state, rt, name)
        if media not in STREAMED_TYPES and count > rt.settings.max_results:
            media = _streamed_instead(request, count, rt.settings.max_results)
        etag = (
            '"' + hashlib.blake2b(f"{marker}\n{media}".encode(), digest_size=16).hexdigest() + '"'
        )
        headers = {
            "ETag": etag,
            "Vary": "Accept, Authorization",
            "Cache-Control": "private, no-cache",
        }
        signed = await run_in_threadpool(
            has_current_signature, rt.store, rt.settings.data_dir, name
        )
        if signed:
            headers["Link"] = f'<{dataset_iri(base, name)}/signature>; rel="signature"'
        if etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        graph = rt.settings.dataset_iri(name)
        ctype = _CONTENT_TYPES.get(media) or content_type(media)
        if media in STREAMED_TYPES:
            return StreamingResponse(
                _stream(rt, graph, media == NQUADS), media_type=ctype, headers=headers
            )
        body = await run_in_threadpool(
            lambda: serialise_triples([q.triple for q in rt.store.quads(graphs=[graph])], media)
        )
        return Response(body, media_type=ctype, headers=headers)

    async def signature(request: Request) -> Response:
        name = request.path_params["name"]
        _permit(request, name)
        if name == AUDIT_DATASET:
            raise _no_audit_data(base)
        signed = await run_in_threadpool(current_signature, rt.store, rt.settings.data_dir, name)
        return Response(
            signed.jws.encode("ascii"),
            media_type=JOSE,
            headers={
                "Cache-Control": "private, no-cache",
                "Link": f'<{dataset_iri(base, name)}>; rel="describes"',
                "DSGO-Signed-At": signed.signed_at,
                "DSGO-Signed-By": signed.party,
            },
        )

    async def sign(request: Request) -> Response:
        caller = authenticate(request, rt.layer)
        name = check_dataset_name(request.path_params["name"])
        ops = LocalNode(rt, caller)
        return JSONResponse(await run_in_threadpool(ops.sign, name))

    return [
        Route("/dataset/{name}", dataset, methods=["GET"]),
        Route("/dataset/{name}/signature", signature, methods=["GET"]),
        Route("/admin/sign/{name}", sign, methods=["POST"]),
    ]


def _state(rt: Runtime, name: str) -> tuple[str, int]:
    """The dataset's version marker and triple count; UnknownDataset (404) if there is none."""
    marker = version_marker(rt.store, name)
    info = next((d for d in rt.store.datasets() if d.name == name), None)
    if marker is None or info is None:
        raise UnknownDataset(f"no dataset named {name!r} on this node")
    return marker, info.triples


def _choose(request: Request) -> str:
    fmt = request.query_params.get("format")
    if fmt is not None:
        fmt = _ALIASES.get(fmt.lower(), fmt)
    return choose(request.headers.get("accept"), DATASET_TYPES, fmt)


def _streamed_instead(request: Request, count: int, cap: int) -> str:
    """A streamed format the client also accepts, for a dataset too big to build in memory."""
    why = (
        f"the dataset has {count} triples, more than store.max_results ({cap}); "
        f"it is served as {' or '.join(STREAMED_TYPES)} only"
    )
    if request.query_params.get("format"):
        raise NotAcceptable(why, STREAMED_TYPES)
    try:
        return choose(request.headers.get("accept"), STREAMED_TYPES)
    except NotAcceptable:
        raise NotAcceptable(why, STREAMED_TYPES) from None


def _stream(rt: Runtime, graph: str, with_graph: bool) -> Iterator[bytes]:
    """Serialise the dataset in batches, so memory stays flat whatever its size."""
    fmt = ox.RdfFormat.N_QUADS if with_graph else ox.RdfFormat.N_TRIPLES
    batch: list = []
    for quad in rt.store.quads(graphs=[graph]):
        batch.append(quad if with_graph else quad.triple)
        if len(batch) >= BATCH:
            yield ox.serialize(batch, format=fmt)
            batch = []
    if batch:
        yield ox.serialize(batch, format=fmt)


def _no_audit_data(base: str) -> NotFoundError:
    return NotFoundError(
        "the audit dataset names access to this node's audit log and holds no triples; "
        f"read {base}/audit/entries",
        headers={"Link": f'<{base}/audit/entries>; rel="alternate"'},
    )
