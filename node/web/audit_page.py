"""The auditor's page: audit entries with filters, the result of `audit verify`, and the
provenance trace of a resource drawn as a graph. Access is the enforcement point's decision
(`dsgo:readAudit`: the owner, or a party granted the pseudo-dataset `audit`).
"""

from __future__ import annotations

import datetime as dt
from html import escape
from urllib.parse import urlencode

import pyoxigraph as ox
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from node.enforcement import AUDIT_DATASET, READ_AUDIT
from node.errors import BadRequest
from node.html import Fragment, Section, Text, render_page
from node.runtime import Runtime
from node.trace import trace
from node.web.common import caller_of, html_response
from node.web.trace_graph import trace_svg
from trust.audit import verify

PAGE_SIZE = 200


async def audit_page(request: Request, rt: Runtime) -> Response:
    """GET /ui/audit?since=&until=&party=&kind=&limit=&verify=1&iri=…"""
    caller = caller_of(request, rt)
    await run_in_threadpool(rt.enforcer.authorize, caller, READ_AUDIT, AUDIT_DATASET)
    params = request.query_params
    since = _time(params.get("since"), "since")
    until = _time(params.get("until"), "until")
    limit = _limit(params.get("limit"))
    party = params.get("party") or None
    kind = params.get("kind") or None
    iri = (params.get("iri") or "").strip()
    if iri:
        try:
            ox.NamedNode(iri)
        except ValueError:
            raise BadRequest(f"iri: not an IRI: {iri[:120]!r}", code="invalid_request") from None
    rows = await run_in_threadpool(_newest, rt, since, until, party, kind, limit)
    sections: list[Section | Fragment] = [Fragment(_filters(params))]
    if params.get("verify"):
        report = await run_in_threadpool(
            verify, rt.audit.store, rt.trusted_roots, node_party=rt.settings.party_id
        )
        if report.ok:
            text = (
                f'<p class="ok" id="verify-result">audit log intact: {report.entries} entries, '
                f"{report.checkpoints} signed checkpoints</p>"
            )
        else:
            lines = "<br>".join(escape(line) for line in report.describe())
            text = f'<p class="bad" id="verify-result">{lines}</p>'
        sections.append(Fragment(f'<section class="panel"><h2>Verify</h2>{text}</section>'))
    if iri:
        found = await run_in_threadpool(trace, rt, iri)
        sections.append(
            Fragment(
                '<section class="panel" id="trace"><h2>Provenance trace</h2>'
                f'<p class="iri">{escape(iri)}: {found["access_count"]} access records, '
                f"{len(found['datasets'])} datasets on this node</p>{trace_svg(found)}</section>"
            )
        )
    table_rows = [
        [
            Text(str(e.seq)),
            Text(e.time),
            Text(e.kind),
            Text(e.party or "—"),
            Text(e.action or ""),
            Text(e.target or ""),
            Text(", ".join(e.datasets)),
            Text("" if e.result_size is None else str(e.result_size)),
        ]
        for e in reversed(rows)
    ]
    sections.append(
        Section(
            f"Entries ({len(rows)} shown, newest first)",
            table_rows,
            ("seq", "time", "kind", "party", "action", "target", "datasets", "size"),
            anchor="entries",
        )
    )
    return html_response(
        render_page(f"{rt.settings.party_name}: audit log", sections, nav=True, subtitle="Auditor")
    )


def _newest(rt: Runtime, since, until, party, kind, limit: int) -> list:
    """The last `limit` entries that match (the log is read in seq order)."""
    if since is None and until is None and party is None and kind is None:
        head = rt.audit.store.head()
        after = max(0, head.seq - limit) if head is not None else 0
        return rt.audit.entries(None, None, None, None, limit, after)
    return rt.audit.entries(since, until, party, kind, None)[-limit:]


def _filters(params) -> str:
    def field(name: str, label: str, kind: str = "text", size: int = 18) -> str:
        value = escape(params.get(name, ""), quote=True)
        return (
            f'<label>{label}<input name="{name}" type="{kind}" size="{size}" value="{value}">'
            "</label>"
        )

    verify_link = "/ui/audit?" + urlencode({**dict(params), "verify": "1"})
    return (
        '<form class="filters" method="get" action="/ui/audit">'
        + field("since", "since (ISO time)")
        + field("until", "until (ISO time)")
        + field("party", "party", size=26)
        + field("kind", "kind", size=14)
        + field("limit", "limit", "number", 6)
        + field("iri", "trace IRI", size=50)
        + '<button type="submit">Show</button></form>'
        f'<p><a id="verify" href="{escape(verify_link, quote=True)}">Verify the audit log</a>'
        " (hash chain and signed checkpoints, as <code>dsgo audit verify</code>)</p>"
    )


def _time(value: str | None, name: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name}: not an ISO 8601 time: {value[:60]!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _limit(value: str | None) -> int:
    if not value:
        return PAGE_SIZE
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"limit: not a whole number: {value[:20]!r}") from None
    if number < 1:
        raise BadRequest("limit: must be at least 1")
    return min(number, 10_000)
