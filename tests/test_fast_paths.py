"""node/fast_paths.py: /sparql and /id/... skip the router, with the same answers and errors;
every other method or path still goes through the router. In-process (`build_node`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient
from test_bad_input import BASE, READER, InProcessNode, build_node

from node.fast_paths import FastPaths

RESULTS = "application/sparql-results+json"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcessNode, TestClient]]:
    built = build_node(tmp_path_factory.mktemp("fast"))
    with TestClient(built.app, base_url=BASE, raise_server_exceptions=False) as client:
        yield built, client


@pytest.fixture()
def routed(node, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths that reached the router (FastPaths' inner app) during one test."""
    n, _ = node
    stack = n.app.middleware_stack
    while not isinstance(stack, FastPaths):
        stack = stack.app
    seen: list[str] = []
    inner = stack.app

    async def counting(scope, receive, send):
        seen.append(f"{scope['method']} {scope['path']}")
        await inner(scope, receive, send)

    monkeypatch.setattr(stack, "app", counting)
    return seen


def test_the_hot_paths_skip_the_router_and_answer_as_before(node, routed) -> None:
    n, client = node
    ok = client.get(
        "/sparql", params={"query": "ASK {}"}, headers={**n.auth(READER), "Accept": RESULTS}
    )
    assert ok.status_code == 200 and ok.json()["boolean"] is True
    page = client.get("/id/building/b1", headers={**n.auth(READER), "Accept": "text/turtle"})
    assert page.status_code == 200 and "House" in page.text
    head = client.head("/id/building/b1", headers={**n.auth(READER), "Accept": "text/turtle"})
    assert head.status_code == 200 and head.content == b""
    assert routed == []


CASES = [
    ("/sparql", {"query": "ASK {}"}, RESULTS, False),  # no token: 401
    ("/sparql", {"query": "SELECT WHERE"}, RESULTS, True),  # a syntax error: 400
    ("/sparql", {"query": "ASK {}"}, "image/png", True),  # nothing acceptable: 406
    ("/id/vault/v1", {}, "text/turtle", True),  # no grant: 403 with the explanation
    ("/id/nothing/here", {}, "text/turtle", True),  # 404
    ("/id/thing/%zz", {}, "text/turtle", True),  # no IRI: 400
]


def _send(node, path: str, params: dict, accept: str, token: bool):
    n, client = node
    headers = {**(n.auth(READER) if token else {}), "Accept": accept}
    return client.get(path, params=params, headers=headers)


@pytest.mark.parametrize(("path", "params", "accept", "token"), CASES)
def test_errors_on_the_hot_paths_are_what_the_router_answers(
    node, routed, monkeypatch: pytest.MonkeyPatch, path, params, accept, token
) -> None:
    fast = _send(node, path, params, accept, token)
    assert routed == []
    assert 400 <= fast.status_code < 500
    assert fast.headers["content-type"].startswith("application/json")
    assert fast.json()["error"]

    async def through(self, scope, receive, send):  # FastPaths off: everything is routed
        await self.app(scope, receive, send)

    monkeypatch.setattr(FastPaths, "__call__", through)
    slow = _send(node, path, params, accept, token)
    assert routed == [f"GET {path}"]
    assert (slow.status_code, slow.headers["content-type"]) == (
        fast.status_code,
        fast.headers["content-type"],
    )
    assert slow.json() == fast.json()


def test_other_methods_and_paths_still_reach_the_router(node, routed) -> None:
    n, client = node
    put = client.put("/sparql", headers=n.auth(READER))
    assert put.status_code == 405 and set(put.headers["allow"].split(", ")) >= {"GET", "POST"}
    delete = client.delete("/id/building/b1", headers=n.auth(READER))
    assert delete.status_code == 405
    assert client.get("/healthz").status_code == 200
    assert routed == ["PUT /sparql", "DELETE /id/building/b1", "GET /healthz"]
