"""Issue 16: conditions at the node's enforcement point and in /delegation/explain.

A policy with an iSHARE 3.0 condition tree grants the reader dataset `secret` for the purpose
`permit-check` before 2027 only. The reader sends its context in `Delegation-Context`; the
enforcement point (node/enforcement.py, with trust/delegation.py's logic) decides with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient
from test_bad_input import BASE, OWNER, READER, SECRET, InProcessNode, build_node, json_error

CONDITIONS = {
    "allOf": [
        {"leftOperand": "purpose", "operator": "equal", "rightOperand": "permit-check"},
        {
            "leftOperand": "requestTime",
            "operator": "lessThan",
            "rightOperand": "2027-01-01T00:00:00Z",
        },
    ]
}
GOOD = {"purpose": "permit-check", "requestTime": "2026-12-02T10:00:00Z"}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> InProcessNode:
    return build_node(tmp_path_factory.mktemp("conditions"))


@pytest.fixture(scope="module")
def http(node: InProcessNode) -> Iterator[TestClient]:
    with TestClient(node.app, base_url=BASE, raise_server_exceptions=False) as client:
        evidence = {
            "notBefore": 1_700_000_000,
            "notOnOrAfter": 2_100_000_000,
            "policyIssuer": OWNER,
            "target": {"accessSubject": READER},
            "policySets": [
                {
                    "policies": [
                        {
                            "target": {
                                "resource": {
                                    "type": "https://w3id.org/dsgo-node/def#Dataset",
                                    "identifiers": [f"{BASE}/dataset/secret"],
                                },
                                "actions": ["ISHARE.READ"],
                            },
                            "rules": [{"effect": "Permit", "conditions": CONDITIONS}],
                        }
                    ]
                }
            ],
        }
        resp = client.post(
            "/delegation/policies",
            json={"delegationEvidence": evidence},
            headers=node.auth(OWNER),
        )
        assert resp.status_code == 201, resp.text
        yield client


def _get(http: TestClient, node: InProcessNode, context: object | None) -> object:
    headers = node.auth(READER)
    if context is not None:
        headers["Delegation-Context"] = context if isinstance(context, str) else json.dumps(context)
    return http.get("/dataset/secret", headers=headers)


def test_permitted_in_context(http: TestClient, node: InProcessNode) -> None:
    resp = _get(http, node, GOOD)
    assert resp.status_code == 200, resp.text
    subject = SECRET.split()[0].strip("<>")
    assert subject in resp.text  # the dataset's triples


@pytest.mark.parametrize(
    "context",
    [
        None,
        {},
        {"purpose": "marketing", "requestTime": "2026-12-02T10:00:00Z"},
        {"purpose": "permit-check", "requestTime": "2027-06-01T00:00:00Z"},
        {"purpose": "permit-check"},
    ],
)
def test_denied_outside_context(http: TestClient, node: InProcessNode, context: object) -> None:
    resp = _get(http, node, context)
    assert resp.status_code == 403, resp.text
    explanation = resp.json()["explanation"]
    assert explanation["decision"] == "Deny"
    considered = [p for p in explanation["policies"] if "conditions" in p]
    assert considered and considered[0]["conditions"][0]["holds"] is False


@pytest.mark.parametrize(
    "header,message",
    [
        ("not json", "not JSON"),
        ("[1, 2]", "key-value"),
        ('{"a": {"b": 1}}', "string, number or boolean"),
    ],
)
def test_bad_context_header_is_a_400(
    http: TestClient, node: InProcessNode, header: str, message: str
) -> None:
    body = json_error(_get(http, node, header), 400, "invalid_request")
    assert message in body["error_description"]


def test_explain_with_context(http: TestClient, node: InProcessNode) -> None:
    def explain(context: dict | None) -> dict:
        params = {"dataset": "secret"}
        if context is not None:
            params["context"] = json.dumps(context)
        resp = http.get("/delegation/explain", params=params, headers=node.auth(READER))
        assert resp.status_code == 200, resp.text
        return resp.json()

    yes = explain(GOOD)
    assert yes["decision"] == "Permit" and yes["context"] == GOOD
    no = explain({"purpose": "marketing"})
    assert no["decision"] == "Deny"
    [policy] = [p for p in no["policies"] if "conditions" in p]
    assert policy["rule"].startswith("not applicable: its conditions do not hold")
    leaves = policy["conditions"][0]["allOf"]
    assert [(leaf["value"], leaf["holds"]) for leaf in leaves] == [
        ("marketing", False),
        (None, False),
    ]
    bad = http.get(
        "/delegation/explain",
        params={"dataset": "secret", "context": "[]"},
        headers=node.auth(READER),
    )
    json_error(bad, 400, "invalid_request")


def test_a_policy_with_a_malformed_tree_is_refused(http: TestClient, node: InProcessNode) -> None:
    evidence = {
        "notBefore": 1_700_000_000,
        "notOnOrAfter": 2_100_000_000,
        "policyIssuer": OWNER,
        "target": {"accessSubject": READER},
        "policySets": [
            {
                "policies": [
                    {
                        "target": {"resource": {"type": "x", "identifiers": ["*"]}},
                        "rules": [
                            {
                                "effect": "Permit",
                                "conditions": {
                                    "leftOperand": "a",
                                    "operator": "like",
                                    "rightOperand": "b",
                                },
                            }
                        ],
                    }
                ]
            }
        ],
    }
    resp = http.post(
        "/delegation/policies", json={"delegationEvidence": evidence}, headers=node.auth(OWNER)
    )
    body = json_error(resp, 400, "invalid_request")
    assert "operator must be one of" in body["error_description"]
