"""The audit witness role: POST /audit/witness (a party files its own checkpoint), GET
/audit/witness/{party_id} (the heads witnessed for a party, with countersignatures).

Any authenticated participant may file its own checkpoints (the checkpoint's signer must be
the caller) and read what was witnessed; what a witness keeps is heads, not audit entries.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.auth import authenticate
from node.errors import BadRequest
from node.runtime import Runtime

_NO_STORE = {"Cache-Control": "no-store"}


def witness_routes(rt: Runtime) -> list[Route]:
    witness = rt.witness

    async def file(request: Request) -> Response:
        caller = authenticate(request, rt.layer)
        try:
            body = await request.json()
        except ValueError:
            raise BadRequest("the body is not JSON", code="invalid_request") from None
        jws = body.get("checkpoint") if isinstance(body, dict) else None
        if not isinstance(jws, str):
            raise BadRequest('send {"checkpoint": JWS}', code="invalid_request")
        head = await run_in_threadpool(witness.witness, jws, caller.party_id)
        return JSONResponse(
            {"party": head.party, "seq": head.seq, "hash": head.hash, "receipt": head.receipt},
            headers=_NO_STORE,
        )

    async def heads(request: Request) -> Response:
        authenticate(request, rt.layer)
        party = request.path_params["party_id"]
        found = await run_in_threadpool(witness.heads, party)
        return JSONResponse(
            {
                "witness": rt.settings.party_id,
                "party": party,
                "heads": [
                    {"seq": h.seq, "hash": h.hash, "received": h.received, "receipt": h.receipt}
                    for h in found
                ],
            },
            headers=_NO_STORE,
        )

    return [
        Route("/audit/witness", file, methods=["POST"]),
        Route("/audit/witness/{party_id}", heads, methods=["GET"]),
    ]
