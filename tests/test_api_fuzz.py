"""Issue 11: no 5xx, ever, and every response matches the node's own OpenAPI description.

schemathesis generates requests for every operation of `app.openapi()` (examples, coverage
cases and a bounded, derandomised fuzzing phase) and sends them in-process to the ASGI app,
three times: as the node's own party, as a reader with a grant on one dataset, and with no
token. Each response goes through schemathesis's checks: not a server error, status code
documented, content type documented, body matching the documented schema, headers, the
behaviour for undocumented methods and missing or wrong credentials, and so on.
"""

from __future__ import annotations

import atexit
import collections
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from starlette.testclient import TestClient
from test_bad_input import OWNER, READER, InProcessNode, build_node

MAX_EXAMPLES = 20
# positive_data_acceptance says a request the schema allows must not get a 400. Where a valid
# input is a grammar or a signature that JSON Schema cannot state, the node's 400 naming the
# problem is the right answer to most generated values; there (only) that one check is off.
NO_POSITIVE_ACCEPTANCE = {
    "POST /connect/token": "needs a client assertion signed by a registered party's key",
    "POST /v3/connect/token": "needs a client assertion signed by a registered party's key",
    "POST /v3/delegation": "previousSteps must hold client assertions signed by the subject",
    "GET /sparql": "the query must be SPARQL 1.1 text",
    "POST /sparql": "the query must be SPARQL 1.1 text",
    "PUT /admin/datasets/{name}": "the body must parse as RDF in its content type",
    "GET /delegation/explain": "resource must be an RFC 3987 IRI",
    "POST /delegation": "previous_steps must hold client assertions signed by the subject",
    "POST /admin/derive": "the query must be a SPARQL CONSTRUCT",
    "GET /audit/entries": "since and until must be ISO 8601 times",
    "GET /audit/trace": "iri must be an RFC 3987 IRI",
    "POST /delegation/policies": "the policy must be one this node can evaluate",
    "POST /audit/witness": "a checkpoint is a JWS signed by the caller; no schema can say that",
    "POST /admin/check": "ids and model must name IDS and IFC files on the node",
    "GET /ui/policies": "resource must be an RFC 3987 IRI",
    "POST /ui/policies/grant": "a party id, a dataset name or class IRI, and a date ahead",
    "GET /ui/audit": "since and until must be ISO 8601 times, iri an RFC 3987 IRI",
}
# With the owner's rights this operation acts outside the node; the other personas are refused
# before it does, and are fuzzed.
NOT_AS_OWNER = {
    "POST /admin/connect": "runs a connector on a file path or database DSN named in the body",
    "POST /admin/check": "runs the IDS checker on model and IDS file paths named in the body",
}
# Known 5xx in routes outside this test's change, to be fixed there; the run stops at the first
# such case (xfail) and goes on failing for any other operation or error.
KNOWN_500: dict[tuple[str, str], str] = {}  # none known: a 5xx fails the test
PERSONAS = ("owner", "reader", "anonymous")
CASES: collections.Counter[str] = collections.Counter()

# schemathesis's pytest integration needs the schema when the module is collected (its lazy,
# fixture-based loader does not run under pytest 9.2), so the node is built here.
_ROOT = Path(tempfile.mkdtemp(prefix="dsgo-fuzz-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
NODE: InProcessNode = build_node(_ROOT)


async def _app(scope: dict, receive: Any, send: Any) -> None:
    """The node's app without its lifespan: schemathesis ends an app's lifespan after each test,
    and the node's shutdown closes the runtime for good. The module runs the lifespan once."""
    if scope["type"] == "lifespan":
        raise RuntimeError("the lifespan is run by the test module")  # = "not supported"
    await NODE.app(scope, receive, send)


# Uploads in these RDF syntaxes, and SPARQL queries, are text: sent as generated.
TEXT_UPLOADS = {
    "text/turtle",
    "application/n-triples",
    "application/n-quads",
    "application/trig",
    "application/rdf+xml",
}
schemathesis.serializer.alias(
    [
        "application/n-triples",
        "application/n-quads",
        "application/trig",
        "application/sparql-query",
    ],
    "text/plain",
)
schema = schemathesis.openapi.from_dict(NODE.app.openapi())
schema.app = _app


@pytest.fixture(scope="module", autouse=True)
def _lifespan() -> Iterator[None]:
    with TestClient(NODE.app):  # start-up now, shutdown (closing store and pools) at the end
        yield
    print(f"\nschemathesis {schemathesis.__version__}, cases per persona: {dict(CASES)}")


@pytest.fixture(scope="module", params=PERSONAS)
def persona(request: pytest.FixtureRequest) -> tuple[str, dict[str, str]]:
    name = request.param
    party = {"owner": OWNER, "reader": READER}.get(name)
    return name, (NODE.auth(party) if party else {})


@pytest.mark.usefixtures("persona")
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_matches_its_schema(case, persona) -> None:
    name, headers = persona
    if name == "owner" and case.operation.label in NOT_AS_OWNER:
        pytest.skip(NOT_AS_OWNER[case.operation.label])
    CASES[name] += 1
    excluded = []
    if case.operation.label in NO_POSITIVE_ACCEPTANCE:
        excluded.append(positive_data_acceptance)
    if (
        case.media_type in TEXT_UPLOADS
        and case.meta is not None
        and case.meta.is_negative_at(ParameterLocation.BODY)
    ):
        # A "schema-violating" non-string body goes out as its text, which can be valid RDF
        # (`{}` is an empty TriG graph, `1` a Turtle... parse error): the node sees only text.
        excluded.append(negative_data_rejection)
    if (
        case.meta is not None
        and case.meta.generation.mode.is_negative
        and not any(c.mode.is_negative for c in case.meta.components.values())
    ):
        # schemathesis 4.32's coverage phase sends some valid boundary values (a 62-character
        # dataset name under maxLength 63) in its negative pass, then expects them refused.
        excluded.append(negative_data_rejection)
    # Credentials are swapped last: reading case.meta after editing the case re-validates it.
    if schema.is_security_param_negated(case):
        headers = {}  # Authorization left out or malformed on purpose: sent as generated
    elif case.headers and "Authorization" in case.headers:
        # schemathesis makes up a Bearer value for a secured operation: the persona's own token
        # (or, with no token, nothing) goes instead.
        del case.headers["Authorization"]
    else:
        headers = {}  # an operation without security, or no credentials generated
    try:
        case.call_and_validate(headers=headers, excluded_checks=excluded)
    except ValueError:
        if (name, case.operation.label) in KNOWN_500:
            pytest.xfail(KNOWN_500[name, case.operation.label])
        raise


def test_schema_declares_every_path_parameter() -> None:
    """Each `{name}` in a path is a declared, required path parameter."""
    for path, item in NODE.app.openapi()["paths"].items():
        names = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        for method, operation in item.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (method, path)


def test_schema_describes_every_route() -> None:
    """Every route the node serves (but FastAPI's own docs) is in the description, per method."""
    documented = NODE.app.openapi()["paths"]
    served: dict[str, set[str]] = collections.defaultdict(set)
    for route in NODE.app.router.routes:
        if route.path in ("/openapi.json", "/docs", "/docs/oauth2-redirect"):
            continue
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        methods = route.methods or {"POST"}  # /connect/token takes every method, serves POST
        served[path] |= {m.lower() for m in methods} - {"head"}
    assert {p: set(item) for p, item in documented.items()} == dict(served)
