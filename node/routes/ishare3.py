"""The iSHARE 3.0 API under `/v3`, beside the 2.x API at the root (and 2.1's /dataspaces, /versions).

Both versions share paths (`/capabilities`, `/parties`, `/parties/{id}`, `/dataspaces`,
`/delegation`) but not their answers (`capabilities_token` vs `capabilitiesToken`, snake_case vs
camelCase records), so each version has its own base: a 2.x client uses `{base}`, a 3.0 client
`{base}/v3` (the 3.0 capabilities name those endpoints). Tokens from either token endpoint are
valid at both.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.auth import authenticate, guarded, optional_caller
from node.enforcement import Enforcer
from node.routes.delegation import _json_body
from trust.authorization_register import AuthorizationRegister
from trust.delegation import Decision
from trust.errors import TrustError
from trust.ishare3 import DELEGATION_KEY
from trust.layer import TrustLayer
from trust.layer_v3 import TrustLayerV3, dataspaces_v21, versions_v21

PREFIX = "/v3"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def ishare3_routes(
    layer: TrustLayer,
    register: AuthorizationRegister,
    enforcer: Enforcer,
    token_route: Route,
) -> list[Route]:
    """3.0 routes: token (the node's one token endpoint), capabilities, delegation, registry."""
    v3 = TrustLayerV3(layer)

    async def capabilities(request: Request) -> Response:
        caller = await run_in_threadpool(optional_caller, request, layer)
        body = v3.capabilities_response(caller.party_id if caller else None)
        return JSONResponse(body, headers=_NO_STORE)

    async def delegation(request: Request) -> Response:
        caller = await run_in_threadpool(authenticate, request, layer)
        body = await _json_body(request)
        try:
            answer = await run_in_threadpool(register.delegation, body, caller.party_id)
        except TrustError as exc:
            enforcer.on_decision(
                Decision("Deny", caller.party_id, "delegation", "mask", (), exc.description)
            )
            raise
        enforcer.on_decision(
            Decision(answer.effect, caller.party_id, "delegation", "mask", answer.policy_ids)
        )
        return JSONResponse({DELEGATION_KEY: answer.token}, headers=_NO_STORE)

    async def parties(request: Request) -> Response:
        caller = authenticate(request, layer)
        body = await run_in_threadpool(v3.parties_response, caller.party_id, request.query_params)
        return JSONResponse(body, headers=_NO_STORE)

    async def party(request: Request) -> Response:
        caller = authenticate(request, layer)
        pid = request.path_params["party_id"]
        body = await run_in_threadpool(v3.party_response, caller.party_id, pid)
        return JSONResponse(body, headers=_NO_STORE)

    async def trusted_list(request: Request) -> Response:
        caller = authenticate(request, layer)
        body = await run_in_threadpool(v3.trusted_list_response, caller.party_id)
        return JSONResponse(body, headers=_NO_STORE)

    async def dataspaces(request: Request) -> Response:
        caller = authenticate(request, layer)
        body = v3.dataspaces_response(caller.party_id, request.query_params)
        return JSONResponse(body, headers=_NO_STORE)

    async def frameworks(request: Request) -> Response:
        caller = authenticate(request, layer)
        body = v3.frameworks_response(caller.party_id, request.query_params)
        return JSONResponse(body, headers=_NO_STORE)

    async def dataspaces_21(request: Request) -> Response:
        caller = authenticate(request, layer)
        token = dataspaces_v21(layer, caller.party_id, v3.dataspace)
        return JSONResponse({"dataspace_list_token": token}, headers=_NO_STORE)

    async def versions_21(request: Request) -> Response:
        caller = await run_in_threadpool(optional_caller, request, layer)
        token = versions_v21(layer, caller.party_id if caller else None)
        return JSONResponse({"versions_token": token}, headers=_NO_STORE)

    routes = [
        Route(PREFIX + "/connect/token", token_route.endpoint),
        Route(PREFIX + "/capabilities", guarded(capabilities), methods=["GET"]),
        Route(PREFIX + "/delegation", guarded(delegation), methods=["POST"]),
    ]
    if layer.registry is not None:
        routes += [
            Route(PREFIX + "/parties", guarded(parties), methods=["GET"]),
            Route(PREFIX + "/parties/{party_id:path}", guarded(party), methods=["GET"]),
            Route(PREFIX + "/trustedList", guarded(trusted_list), methods=["GET"]),
            Route(PREFIX + "/dataspaces", guarded(dataspaces), methods=["GET"]),
            Route(PREFIX + "/frameworks", guarded(frameworks), methods=["GET"]),
            # iSHARE 2.1's registry answers the 2.x routes (node.routes.trust) lack.
            Route("/dataspaces", guarded(dataspaces_21), methods=["GET"]),
            Route("/versions", guarded(versions_21), methods=["GET"]),
        ]
    return routes
