"""Admin API of a running node: replace or drop a dataset, run a sync or a check. Owner only.

The embedded store is owned by the serving process, so `dsgo load` and `dsgo connect` send their
data here (authenticated with a token the CLI obtains with the node's own key).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.auth import authenticate
from node.disk import lock_spool
from node.enforcement import ADMIN
from node.errors import BadRequest, NodeError
from node.iri import check_dataset_name
from node.runtime import Runtime
from node.service.ops import LocalNode
from node.store import format_for

MAX_UPLOAD = 4 * 1024**3


def admin_routes(rt: Runtime, run_sync=None) -> list[Route]:
    """PUT/DELETE/GET /admin/datasets, POST /admin/{connect,derive,sync,check}: parse, call
    LocalNode for the authenticated caller (which asks the enforcement point), respond."""

    def ops(request: Request) -> LocalNode:
        return LocalNode(rt, authenticate(request, rt.layer), run_sync=run_sync)

    async def put_dataset(request: Request) -> Response:
        name = check_dataset_name(request.path_params["name"])
        node = ops(request)
        rt.enforcer.authorize(node.caller, ADMIN, name, audit=False)  # before reading the body
        media = request.headers.get("content-type", "").split(";")[0].strip()
        fmt = format_for(f"upload.{request.query_params.get('format', '')}", media or None)
        # Spool to disk so a large upload never sits in memory, then load atomically.
        with tempfile.NamedTemporaryFile(dir=rt.settings.data_dir, suffix=".upload") as spool:
            lock_spool(spool.fileno())  # in use: start-up cleanup of other workers skips it
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_UPLOAD:
                    raise NodeError(f"upload over {MAX_UPLOAD} bytes", status=413, code="too_large")
                spool.write(chunk)
            spool.flush()
            label = request.headers.get("x-dsgo-source", "upload")
            body = await run_in_threadpool(node.load, name, Path(spool.name), fmt, label)
        return JSONResponse(body)

    async def delete_dataset(request: Request) -> Response:
        name = check_dataset_name(request.path_params["name"])
        await run_in_threadpool(ops(request).drop, name)
        return Response(status_code=204)

    async def list_datasets(request: Request) -> Response:
        return JSONResponse({"datasets": await run_in_threadpool(ops(request).datasets)})

    async def connect(request: Request) -> Response:
        node = ops(request)
        rt.enforcer.authorize(node.caller, ADMIN, "connect", audit=False)
        body = await _json(request)
        kind, source, dataset = body.get("kind"), body.get("source"), body.get("dataset")
        if not all(isinstance(v, str) and v for v in (kind, source, dataset)):
            raise BadRequest("kind, source and dataset are required", code="invalid_request")
        check_dataset_name(dataset)
        mapping = Path(body["mapping"]) if body.get("mapping") else None
        options = {str(k): str(v) for k, v in (body.get("options") or {}).items()}
        return JSONResponse(
            await run_in_threadpool(node.connect, kind, source, dataset, mapping, options)
        )

    async def derive(request: Request) -> Response:
        node = ops(request)
        rt.enforcer.authorize(node.caller, ADMIN, "derive", audit=False)
        body = await _json(request)
        query, dataset = body.get("query"), body.get("dataset")
        if not isinstance(query, str) or not isinstance(dataset, str):
            raise BadRequest("query and dataset are required", code="invalid_request")
        check_dataset_name(dataset)
        return JSONResponse(await run_in_threadpool(node.derive, query, dataset))

    async def sync(request: Request) -> Response:
        node = ops(request)
        if run_sync is None:
            rt.enforcer.authorize(node.caller, ADMIN, "sources", operation="sync")
            raise NodeError("no [[sources]] configured", status=404, code="no_sources")
        force = request.query_params.get("force") == "true"
        return JSONResponse({"outcomes": await run_in_threadpool(node.sync, force)})

    async def check(request: Request) -> Response:
        """POST /admin/check: `dsgo check ids` on the running node (owner only)."""
        node = ops(request)
        rt.enforcer.authorize(node.caller, ADMIN, "check", audit=False)
        body = await _json(request)
        report, ids = body.get("report"), body.get("ids")
        dataset, model = body.get("dataset"), body.get("model")
        if (
            not isinstance(report, str)
            or not isinstance(ids, list)
            or not ids
            or not all(isinstance(v, str) and v for v in ids)
            or (dataset is None) == (model is None)
            or not all(isinstance(v, str) and v for v in (dataset, model) if v is not None)
        ):
            raise BadRequest(
                "report, ids (a list of IDS files) and one of dataset or model are required",
                code="invalid_request",
            )
        check_dataset_name(report)
        return JSONResponse(await run_in_threadpool(node.check, report, ids, dataset, model))

    return [
        Route("/admin/datasets/{name}", put_dataset, methods=["PUT"]),
        Route("/admin/datasets/{name}", delete_dataset, methods=["DELETE"]),
        Route("/admin/datasets", list_datasets, methods=["GET"]),
        Route("/admin/connect", connect, methods=["POST"]),
        Route("/admin/derive", derive, methods=["POST"]),
        Route("/admin/sync", sync, methods=["POST"]),
        Route("/admin/check", check, methods=["POST"]),
    ]


async def _json(request: Request) -> dict:
    """A JSON object body; BadRequest (400) naming the problem otherwise."""
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("the body is not JSON", code="invalid_request") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object", code="invalid_request")
    return body
