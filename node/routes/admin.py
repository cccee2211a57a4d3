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
from node.iri import InvalidName, check_dataset_name
from node.runtime import Runtime
from node.store import format_for

MAX_UPLOAD = 4 * 1024**3


def admin_routes(rt: Runtime, run_sync=None) -> list[Route]:
    """PUT/DELETE /admin/datasets/{name}; POST /admin/sync (when the node has sources)."""

    def _owner(request: Request, target: str, operation: str) -> str:
        """The owner's party, after the enforcement point permitted (and audited) the action."""
        caller = authenticate(request, rt.layer)
        rt.enforcer.authorize(caller, ADMIN, target, operation=operation)
        return caller.party_id

    async def put_dataset(request: Request) -> Response:
        name = check_dataset_name(request.path_params["name"])
        _owner(request, name, "replace_dataset")
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
            info = await run_in_threadpool(
                rt.store.replace_dataset, name, Path(spool.name), fmt, label=label
            )
        return JSONResponse({"dataset": info.name, "graph": info.graph, "triples": info.triples})

    async def delete_dataset(request: Request) -> Response:
        name = check_dataset_name(request.path_params["name"])
        _owner(request, name, "drop_dataset")
        await run_in_threadpool(rt.store.drop_dataset, name)
        return Response(status_code=204)

    async def list_datasets(request: Request) -> Response:
        _owner(request, "datasets", "list_datasets")
        datasets = await run_in_threadpool(rt.store.datasets)
        return JSONResponse(
            {
                "datasets": [
                    {
                        "name": d.name,
                        "graph": d.graph,
                        "triples": d.triples,
                        "modified": d.modified.isoformat() if d.modified else None,
                    }
                    for d in datasets
                ]
            }
        )

    async def connect(request: Request) -> Response:
        from node.sync import connect as run_connect

        caller = authenticate(request, rt.layer)
        rt.enforcer.authorize(caller, ADMIN, "connect", audit=False)
        body = await _json(request)
        kind, source, dataset = body.get("kind"), body.get("source"), body.get("dataset")
        if not all(isinstance(v, str) and v for v in (kind, source, dataset)):
            return JSONResponse(
                {
                    "error": "invalid_request",
                    "error_description": "kind, source and dataset are required",
                },
                status_code=400,
            )
        check_dataset_name(dataset)
        rt.enforcer.authorize(caller, ADMIN, dataset, operation="connect")
        mapping = Path(body["mapping"]) if body.get("mapping") else None
        with tempfile.TemporaryDirectory(dir=rt.settings.data_dir) as work:
            result, version = await run_in_threadpool(
                lambda: run_connect(
                    rt.store,
                    kind=kind,
                    source=source,
                    dataset=dataset,
                    base_iri=rt.settings.base_iri,
                    party_id=rt.settings.party_id,
                    workdir=Path(work),
                    mapping=mapping,
                    options={str(k): str(v) for k, v in (body.get("options") or {}).items()},
                    severity=rt.settings.shacl_severity,
                )
            )
        return JSONResponse(
            {"dataset": dataset, "triples": result.triple_count, "version": version}
        )

    async def derive(request: Request) -> Response:
        from node.derive import derive as run_derive

        caller = authenticate(request, rt.layer)
        rt.enforcer.authorize(caller, ADMIN, "derive", audit=False)
        body = await _json(request)
        query, dataset = body.get("query"), body.get("dataset")
        if not isinstance(query, str) or not isinstance(dataset, str):
            return JSONResponse(
                {"error": "invalid_request", "error_description": "query and dataset are required"},
                status_code=400,
            )
        check_dataset_name(dataset)
        rt.enforcer.authorize(caller, ADMIN, dataset, operation="derive")
        count, version = await run_in_threadpool(run_derive, rt, query, dataset)
        return JSONResponse({"dataset": dataset, "triples": count, "version": version})

    async def sync(request: Request) -> Response:
        _owner(request, "sources", "sync")
        if run_sync is None:
            return JSONResponse(
                {"error": "no_sources", "error_description": "no [[sources]] configured"},
                status_code=404,
            )
        force = request.query_params.get("force") == "true"
        outcomes = await run_in_threadpool(run_sync, force)
        return JSONResponse({"outcomes": outcomes})

    async def check(request: Request) -> Response:
        """POST /admin/check: `dsgo check ids` on the running node (owner only)."""
        from node.checks import CheckError, run_check

        caller = authenticate(request, rt.layer)
        rt.enforcer.authorize(caller, ADMIN, "check", audit=False)
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
        rt.enforcer.authorize(caller, ADMIN, report, operation="check_ids")
        try:
            outcome = await run_in_threadpool(
                lambda: run_check(
                    rt.store,
                    rt.identity,
                    rt.settings.data_dir,
                    base_iri=rt.settings.base_iri,
                    party_id=rt.settings.party_id,
                    report=report,
                    ids=ids,
                    dataset=dataset,
                    model=model,
                )
            )
        except InvalidName:
            raise
        except (OSError, ValueError) as exc:  # unreadable input the checker did not name
            raise CheckError(f"{type(exc).__name__}: {exc}", status=422) from None
        return JSONResponse(outcome.to_json())

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
