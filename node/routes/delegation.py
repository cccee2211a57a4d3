"""Delegation endpoints: POST /delegation (AR role), GET /delegation/explain, policy admin API.

Only the node's own party (the data owner) may administer policies; every caller may ask for an
explanation, which only ever shows policies that apply to that caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pyoxigraph as ox
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from node.auth import Caller, guarded, request_context
from node.auth import authenticate as bearer_authenticate
from node.enforcement import ADMIN, Enforcer
from node.store import Store
from trust.authorization_register import AuthorizationRegister
from trust.delegation import (
    DSGO_FEDERATE,
    DSGO_QUERY,
    DSGO_SERVICE,
    ISHARE_READ,
    Decision,
    DelegationError,
)
from trust.errors import InvalidRequest, TrustError
from trust.layer import TrustLayer
from trust.odrl import to_odrl
from trust.policy_store import PolicyStore
from vocab.namespaces import RDF_TYPE

MAX_BODY_BYTES = 64 * 1024
EXPLAINABLE = frozenset({ISHARE_READ, DSGO_QUERY, DSGO_FEDERATE, "dsgo:query", "dsgo:federate"})
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
Authenticate = Callable[[Request, TrustLayer], Caller]


def delegation_routes(
    layer: TrustLayer,
    policies: PolicyStore,
    register: AuthorizationRegister,
    enforcer: Enforcer,
    *,
    store: Store | None = None,
    on_decision: Callable[[Decision], None] | None = None,
    authenticate: Authenticate = bearer_authenticate,
) -> list[Route]:
    """Starlette routes for the AR role, explanations and policy administration.

    /delegation answers are audited through `on_decision` (default: the enforcer's audit hook).
    """
    audit = on_decision or enforcer.on_decision

    async def delegation(request: Request) -> Response:
        caller = await run_in_threadpool(authenticate, request, layer)
        body = await _json_body(request)
        try:
            answer = await run_in_threadpool(register.delegation, body, caller.party_id)
        except TrustError as exc:
            audit(Decision("Deny", caller.party_id, "delegation", "mask", (), exc.description))
            raise
        audit(Decision(answer.effect, caller.party_id, "delegation", "mask", answer.policy_ids))
        return JSONResponse({"delegation_token": answer.token}, headers=_NO_STORE)

    async def explain(request: Request) -> Response:
        caller = await run_in_threadpool(authenticate, request, layer)
        params = request.query_params
        resource, dataset = params.get("resource"), params.get("dataset")
        action = params.get("action", ISHARE_READ)
        if action not in EXPLAINABLE:
            raise InvalidRequest("action", f"action must be one of {sorted(EXPLAINABLE)}")
        graphs: list[str] = []
        types: set[str] = set()
        if resource and store is not None:
            graphs, types = await run_in_threadpool(_locate, store, enforcer, resource)
        context = request_context(params.get("context")) or dict(caller.context)
        body = await run_in_threadpool(
            lambda: enforcer.explain(
                caller.party_id,
                resource=resource,
                dataset=dataset,
                graph_iris=graphs,
                types=types,
                action=action,
                context=context,
            )
        )
        return JSONResponse(body, headers=_NO_STORE)

    async def list_policies(request: Request) -> Response:
        await _admin(request, "list_policies")
        records = await run_in_threadpool(policies.list)
        if request.query_params.get("format") == "odrl":
            return JSONResponse([to_odrl(r, policies.base_iri) for r in records], headers=_NO_STORE)
        return JSONResponse(
            [{"id": r.id, "delegationEvidence": r.evidence} for r in records], headers=_NO_STORE
        )

    async def create_policy(request: Request) -> Response:
        await _admin(request, "create_policy")
        body = await _json_body(request)
        pid = await run_in_threadpool(_create, policies, body)
        return JSONResponse({"id": pid}, status_code=201, headers=_NO_STORE)

    async def get_policy(request: Request) -> Response:
        await _admin(request, "get_policy")
        record = await run_in_threadpool(policies.get, request.path_params["policy_id"])
        if "application/ld+json" in request.headers.get("accept", ""):
            return JSONResponse(
                to_odrl(record, policies.base_iri),
                media_type="application/ld+json",
                headers=_NO_STORE,
            )
        return JSONResponse(
            {"id": record.id, "delegationEvidence": record.evidence}, headers=_NO_STORE
        )

    async def revoke_policy(request: Request) -> Response:
        await _admin(request, "revoke_policy")
        await run_in_threadpool(policies.revoke, request.path_params["policy_id"])
        return Response(status_code=204, headers=_NO_STORE)

    async def _admin(request: Request, operation: str) -> Caller:
        caller = await run_in_threadpool(authenticate, request, layer)
        await run_in_threadpool(
            enforcer.authorize, caller, ADMIN, "/delegation/policies", operation=operation
        )
        return caller

    return [
        Route("/delegation", guarded(delegation), methods=["POST"]),
        Route("/delegation/explain", guarded(explain), methods=["GET"]),
        Route("/delegation/policies", guarded(list_policies), methods=["GET"]),
        Route("/delegation/policies", guarded(create_policy), methods=["POST"]),
        Route("/delegation/policies/{policy_id}", guarded(get_policy), methods=["GET"]),
        Route("/delegation/policies/{policy_id}", guarded(revoke_policy), methods=["DELETE"]),
    ]


def _create(policies: PolicyStore, body: dict[str, Any]) -> str:
    """Either a full `delegationEvidence` document or a `grant` shorthand (as `dsgo policy`)."""
    if "delegationEvidence" in body:
        evidence = body["delegationEvidence"]
        if not isinstance(evidence, dict) or evidence.get("policyIssuer") != policies.issuer:
            raise DelegationError("policyIssuer must be this node's party")
        return policies.add(evidence)
    grant = body.get("grant")
    if not isinstance(grant, dict) or not isinstance(grant.get("to"), str):
        raise InvalidRequest("policy_body", "send delegationEvidence or grant {to, ...}")
    allowed = {
        "to",
        "dataset",
        "type",
        "ids",
        "attributes",
        "until",
        "not_before",
        "deny",
        "federate",
    }
    unknown = set(grant) - allowed
    if unknown:
        raise InvalidRequest("policy_body", f"unknown grant fields {sorted(unknown)}")
    args = {k: v for k, v in grant.items() if k not in ("to", "federate")}
    if grant.get("federate"):
        # Let the party make this node call the named endpoints (or any: no ids) on its behalf.
        if "dataset" in args or "type" in args:
            raise InvalidRequest("policy_body", "a federate grant names endpoints in ids only")
        args.update(type=DSGO_SERVICE, actions=[DSGO_FEDERATE])
    return policies.grant(grant["to"], **args)


def _locate(store: Store, enforcer: Enforcer, resource: str) -> tuple[list[str], set[str]]:
    """Dataset graphs holding the resource and its rdf:types there (for an explanation)."""
    graphs = enforcer.dataset_graphs(store)
    found: list[str] = []
    types: set[str] = set()
    for g in graphs:
        quads = list(store.quads(subject=resource, graphs=[g]))
        if quads:
            found.append(g)
            types |= {
                q.object.value
                for q in quads
                if q.predicate.value == RDF_TYPE and isinstance(q.object, ox.NamedNode)
            }
    return found, types


async def _json_body(request: Request) -> dict[str, Any]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise InvalidRequest("content_type", "use application/json")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise InvalidRequest("request_oversized", "request body too large")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("json", "body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("json", "body must be a JSON object")
    return data
