"""What the page modules share: scoped SELECTs as the caller, HTML responses, local links."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import orjson
from starlette.requests import Request
from starlette.responses import Response

from node.auth import Caller, authenticate
from node.negotiation import content_type
from node.runtime import Runtime
from node.service.query import SparqlRequest, answer_query

HTML = "text/html"
RESULTS_JSON = "application/sparql-results+json"
PAGE_HEADERS = {
    "Vary": "Accept, Authorization, Cookie",
    "Cache-Control": "private, no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

Row = dict[str, str]


def caller_of(request: Request, rt: Runtime) -> Caller:
    """The authenticated caller (bearer token, or a login session once that is wired in)."""
    return authenticate(request, rt.layer)


async def select(rt: Runtime, caller: Caller, query: str, graphs: Sequence[str] = ()) -> list[Row]:
    """A SELECT through the node's SPARQL use case: the caller's scope, limits and audit entry.

    Rows map variable names to plain values (IRIs and literals alike); unbound ones are absent.
    """
    deadline = time.monotonic() + rt.settings.query_timeout
    req = SparqlRequest(query, list(graphs), [])
    future = rt.queries.submit(answer_query, rt, caller, req, RESULTS_JSON, None, deadline, ())
    answer = await asyncio.wait_for(asyncio.wrap_future(future), rt.settings.query_timeout + 0.5)
    data = orjson.loads(answer.body)
    return [
        {name: cell["value"] for name, cell in binding.items()}
        for binding in data["results"]["bindings"]
    ]


def html_response(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type=content_type(HTML), headers=PAGE_HEADERS)


def prefers_html(request: Request) -> bool:
    """A browser's navigation: Accept names text/html (with q > 0) and no ?format= is given."""
    if request.query_params.get("format"):
        return False
    for part in request.headers.get("accept", "").split(","):
        media, _, params = part.strip().partition(";")
        if media.strip().lower() in ("text/html", "application/xhtml+xml"):
            q = 1.0
            for param in params.split(";"):
                key, _, value = param.strip().partition("=")
                if key.strip().lower() == "q":
                    try:
                        q = float(value)
                    except ValueError:
                        q = 0.0
            if q > 0:
                return True
    return False


def local_href(base_iri: str, iri: str) -> str:
    """The node's own IRI as a path (works with the browser's session); "" for any other."""
    base = base_iri.rstrip("/")
    return iri[len(base) :] if iri.startswith(base + "/") else ""
