"""The steward's page: the owner's policies, a grant form, revoke buttons, and the explanation
of a decision for any party. Every action is decided by the enforcement point (`dsgo:admin`,
the owner's own party only) and changes policies through the policy store, as `dsgo policy`.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any
from urllib.parse import quote

import orjson
import pyoxigraph as ox
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from node.config import PARTY_ID
from node.enforcement import ADMIN, RDF_TYPE
from node.errors import BadRequest
from node.html import Fragment, Section, Text, render_page
from node.runtime import Runtime
from node.web.common import PAGE_HEADERS, caller_of, html_response
from node.web.csrf import FIELD, csrf_token
from node.web.forms import end_of_day, read_form, required, word_list
from trust.delegation import DSGO_FEDERATE, DSGO_QUERY, ISHARE_READ

POLICIES = "/delegation/policies"
ACTIONS = (ISHARE_READ, DSGO_QUERY, DSGO_FEDERATE)
_IRI_START = ("http://", "https://", "urn:")


async def policies_page(request: Request, rt: Runtime) -> Response:
    """GET /ui/policies: list, grant form, revoke buttons; ?party=… explains a decision."""
    caller = caller_of(request, rt)
    await run_in_threadpool(
        rt.enforcer.authorize, caller, ADMIN, POLICIES, operation="policies_page"
    )
    params = request.query_params
    if params.get("action") and params["action"] not in ACTIONS:
        raise BadRequest(f"action: one of {', '.join(ACTIONS)}", code="invalid_request")
    explanation = None
    if params.get("party"):
        explanation = await run_in_threadpool(_explain, rt, dict(params))
    records = await run_in_threadpool(rt.policies.list, issuer=rt.settings.party_id)
    datasets = [d.name for d in await run_in_threadpool(rt.store.datasets)]
    token = csrf_token(request)
    sections: list[Section | Fragment] = []
    if params.get("granted"):
        sections.append(Fragment(f'<p class="message">Granted: policy {_e(params["granted"])}</p>'))
    if params.get("revoked"):
        sections.append(Fragment(f'<p class="message">Revoked: policy {_e(params["revoked"])}</p>'))
    rows = [_policy_row(r.id, r.evidence, token) for r in records]
    sections.append(
        Section(
            "Policies in force",
            rows,
            ("party", "may", "what", "attributes", "from", "until", "id", ""),
            anchor="policies",
        )
    )
    sections.append(Fragment(_grant_form(datasets, token)))
    sections.append(Fragment(_explain_form(params, datasets)))
    if explanation is not None:
        sections.append(_explanation(explanation))
    body = render_page(
        f"{rt.settings.party_name}: policies", sections, nav=True, subtitle="Steward"
    )
    return html_response(body)


async def grant(request: Request, rt: Runtime) -> Response:
    """POST /ui/policies/grant: a read grant on a dataset or a type, as `dsgo policy grant`."""
    caller = caller_of(request, rt)
    fields = await read_form(request)
    await run_in_threadpool(rt.enforcer.authorize, caller, ADMIN, POLICIES, operation="grant")
    party = required(fields, "party", 120)
    if not PARTY_ID.match(party):
        raise BadRequest(
            f"party: not an EORI or did:ishare party id: {party[:60]!r}", code="invalid_request"
        )
    kind = fields.get("target", "dataset")
    args: dict[str, Any] = {}
    if kind == "dataset":
        args["dataset"] = required(fields, "dataset", 63)
    elif kind == "type":
        args["type"] = required(fields, "type", 500)
        if not args["type"].startswith(_IRI_START):
            raise BadRequest("type: a class IRI (http…, https… or urn:…)", code="invalid_request")
        ids = word_list(fields.get("ids", ""), "ids")
        if ids:
            args["ids"] = ids
    else:
        raise BadRequest("target: dataset or type", code="invalid_request")
    attributes = word_list(fields.get("attributes", ""), "attributes")
    if attributes:
        args["attributes"] = attributes
    if fields.get("until"):
        args["until"] = end_of_day(fields["until"], "until")
    policy_id = await run_in_threadpool(lambda: rt.policies.grant(party, **args))
    return _back(f"granted={quote(policy_id)}")


async def revoke(request: Request, rt: Runtime) -> Response:
    """POST /ui/policies/revoke: revoke one policy by id (404 if there is none)."""
    caller = caller_of(request, rt)
    fields = await read_form(request)
    await run_in_threadpool(rt.enforcer.authorize, caller, ADMIN, POLICIES, operation="revoke")
    policy_id = required(fields, "policy_id", 100)
    await run_in_threadpool(rt.policies.revoke, policy_id)  # PolicyNotFound: 404
    return _back(f"revoked={quote(policy_id)}")


def _back(query: str) -> Response:
    """After a change, back to the list (a reload does not post again)."""
    return RedirectResponse(f"/ui/policies?{query}", status_code=303, headers=PAGE_HEADERS)


def _explain(rt: Runtime, params: dict[str, str]) -> dict[str, Any]:
    party = params.get("party", "").strip()
    if not PARTY_ID.match(party):
        raise BadRequest(
            f"party: not an EORI or did:ishare party id: {party[:60]!r}", code="invalid_request"
        )
    action = params.get("action") or ISHARE_READ
    if action not in ACTIONS:
        raise BadRequest(f"action: one of {', '.join(ACTIONS)}", code="invalid_request")
    resource = params.get("resource", "").strip() or None
    dataset = params.get("dataset", "").strip() or None
    graphs: list[str] = []
    types: set[str] = set()
    if resource:
        try:
            ox.NamedNode(resource)
        except ValueError:
            raise BadRequest(
                f"resource: not an IRI: {resource[:80]!r}", code="invalid_request"
            ) from None
        for graph in rt.enforcer.dataset_graphs(rt.store):
            quads = list(rt.store.quads(subject=resource, graphs=[graph]))
            if quads:
                graphs.append(graph)
                types |= {
                    q.object.value
                    for q in quads
                    if q.predicate.value == RDF_TYPE and isinstance(q.object, ox.NamedNode)
                }
    return rt.enforcer.explain(
        party, resource=resource, dataset=dataset, graph_iris=graphs, types=types, action=action
    )


def _policy_row(policy_id: str, evidence: dict[str, Any], token: str) -> list:
    subject = evidence.get("target", {}).get("accessSubject", "")
    policies = [p for ps in evidence.get("policySets", []) for p in ps.get("policies", [])]
    target = policies[0].get("target", {}) if policies else {}
    resource = target.get("resource", {})
    actions = ", ".join(a.rsplit(":", 1)[-1] for a in target.get("actions", []))
    ids = resource.get("identifiers", [])
    rtype = resource.get("type", "")
    if rtype.endswith("Dataset"):
        what = ", ".join(i.rsplit("/", 1)[-1] for i in ids)
    else:
        what = f"{rtype.rsplit('#', 1)[-1].rsplit('/', 1)[-1]} ({', '.join(ids) or '*'})"
    denies = sum(1 for p in policies for r in p.get("rules", []) if r.get("effect") == "Deny")
    attributes = ", ".join(resource.get("attributes", [])) or "all"
    button = Fragment(
        '<form class="inline" method="post" action="/ui/policies/revoke">'
        f'<input type="hidden" name="{FIELD}" value="{_e(token)}">'
        f'<input type="hidden" name="policy_id" value="{_e(policy_id)}">'
        f'<button type="submit" name="revoke" value="{_e(policy_id)}">Revoke</button></form>'
    )
    return [
        Text(subject),
        Text(actions),
        Text(what, f"{denies} deny rules" if denies else ""),
        Text(attributes),
        Text(_date(evidence.get("notBefore"))),
        Text(_date(evidence.get("notOnOrAfter"))),
        Text(policy_id),
        button,
    ]


def _grant_form(datasets: list[str], token: str) -> str:
    options = "".join(f'<option value="{_e(n)}">{_e(n)}</option>' for n in [*datasets, "audit"])
    return (
        '<section id="grant"><h2>Grant access</h2>'
        '<form class="card" method="post" action="/ui/policies/grant">'
        f'<input type="hidden" name="{FIELD}" value="{_e(token)}">'
        '<label for="g-party">party</label><input id="g-party" name="party" required '
        'placeholder="EU.EORI.NL…" size="40">'
        '<label for="g-target">to read</label><select id="g-target" name="target">'
        '<option value="dataset">a whole dataset</option>'
        '<option value="type">resources of a type</option></select>'
        f'<label for="g-dataset">dataset</label><select id="g-dataset" name="dataset">{options}'
        "</select>"
        '<label for="g-type">type (IRI)</label><input id="g-type" name="type" size="50" '
        'placeholder="https://w3id.org/bot#Space">'
        '<label for="g-ids">only these ids</label><input id="g-ids" name="ids" size="50" '
        'placeholder="resource IRIs, optional">'
        '<label for="g-attributes">attributes</label><input id="g-attributes" name="attributes" '
        'size="50" placeholder="property IRIs, optional (all if empty)">'
        '<label for="g-until">until</label><input id="g-until" name="until" type="date">'
        '<button type="submit">Grant</button></form></section>'
    )


def _explain_form(params: Any, datasets: list[str]) -> str:
    options = '<option value="">—</option>' + "".join(
        f'<option value="{_e(n)}"{" selected" if params.get("dataset") == n else ""}>{_e(n)}'
        "</option>"
        for n in [*datasets, "audit"]
    )
    actions = "".join(
        f'<option value="{_e(a)}"{" selected" if params.get("action") == a else ""}>{_e(a)}'
        "</option>"
        for a in ACTIONS
    )
    return (
        '<section id="explain"><h2>Explain a decision</h2>'
        '<form class="card" method="get" action="/ui/policies#explanation">'
        '<label for="e-party">party</label><input id="e-party" name="party" required size="40" '
        f'value="{_e(params.get("party", ""))}">'
        f'<label for="e-dataset">dataset</label><select id="e-dataset" name="dataset">{options}'
        "</select>"
        '<label for="e-resource">or resource</label><input id="e-resource" name="resource" '
        f'size="60" value="{_e(params.get("resource", ""))}">'
        f'<label for="e-action">action</label><select id="e-action" name="action">{actions}'
        '</select><button type="submit">Explain</button></form></section>'
    )


def _explanation(result: dict[str, Any]) -> Fragment:
    decision = str(result.get("decision", ""))
    css = "ok" if decision == "Permit" else "bad"
    rows = "".join(
        f"<tr><th>{_e(str(p.get('id')))}</th><td>{_e(str(p.get('rule')))}</td>"
        f"<td>{'active' if p.get('active') else 'not active'}</td></tr>"
        for p in result.get("policies", [])
    )
    table = (
        f"<table><thead><tr><th>policy</th><th>rule</th><th>window</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        if rows
        else '<p class="empty">No policy names this party.</p>'
    )
    detail = orjson.dumps(result, option=orjson.OPT_INDENT_2).decode()
    return Fragment(
        '<section id="explanation" class="panel"><h2>Explanation</h2>'
        f'<p><span class="{css}" id="decision">{_e(decision)}</span> for '
        f"{_e(str(result.get('party')))}: {_e(str(result.get('action')))} on "
        f"{_e(str(result.get('target')))}<br>{_e(str(result.get('rule')))}</p>{table}"
        f"<details><summary>as JSON</summary><pre>{_e(detail)}</pre></details></section>"
    )


def _date(epoch: Any) -> str:
    if not isinstance(epoch, int | float):
        return ""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _e(text: str) -> str:
    return escape(text, quote=True)
