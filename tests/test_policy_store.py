"""SQLite policy register: grant/list/revoke, version counter, visibility across processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trust.delegation import DSGO_DATASET, WILDCARD, DelegationError, InvalidPolicy
from trust.policy_store import FAR_FUTURE, PolicyNotFound, PolicyStore

BASE = "http://127.0.0.1:8101"
OWNER = "EU.EORI.NL000000003"
ABC = "EU.EORI.NL000000001"
OTHER = "EU.EORI.NL000000002"
BUILDING = "https://w3id.org/bot#Building"
NOW = 1_700_000_000
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def store(tmp_path) -> PolicyStore:
    return PolicyStore(tmp_path / "p.db", issuer=OWNER, base_iri=BASE, clock=lambda: NOW)


def test_grant_dataset_builds_ishare_evidence(store) -> None:
    pid = store.grant(ABC, dataset="ifc", until=NOW + 3600)
    policy = store.get(pid)
    assert (policy.issuer, policy.subject) == (OWNER, ABC)
    assert (policy.not_before, policy.not_on_or_after) == (NOW, NOW + 3600)
    target = policy.evidence["policySets"][0]["policies"][0]["target"]
    assert target == {
        "resource": {"type": DSGO_DATASET, "identifiers": [f"{BASE}/dataset/ifc"]},
        "actions": ["ISHARE.READ"],
    }


def test_grant_type_with_ids_and_attributes(store) -> None:
    pid = store.grant(ABC, type=BUILDING, ids=[f"{BASE}/id/b/1"], attributes=["p:a"])
    resource = store.get(pid).evidence["policySets"][0]["policies"][0]["target"]["resource"]
    assert resource == {"type": BUILDING, "identifiers": [f"{BASE}/id/b/1"], "attributes": ["p:a"]}
    wildcard = store.grant(ABC, type=BUILDING)
    assert store.get(wildcard).not_on_or_after == FAR_FUTURE
    resource = store.get(wildcard).evidence["policySets"][0]["policies"][0]["target"]["resource"]
    assert resource["identifiers"] == [WILDCARD]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"dataset": "ifc", "type": BUILDING},
        {"dataset": "Bad Name"},
        {"dataset": "ifc", "ids": ["x"]},
        {"dataset": "ifc", "until": NOW - 1},
    ],
)
def test_bad_grants_are_rejected(store, kwargs) -> None:
    with pytest.raises(DelegationError):
        store.grant(ABC, **kwargs)
    assert store.list() == []


def test_add_rejects_invalid_evidence(store) -> None:
    with pytest.raises(InvalidPolicy):
        store.add({"policyIssuer": OWNER})


def test_list_filters_and_involving(store) -> None:
    a = store.grant(ABC, dataset="ifc")
    b = store.grant(OTHER, dataset="bag")
    assert [p.id for p in store.list()] == [a, b]
    assert [p.id for p in store.list(subject=ABC)] == [a]
    assert [p.id for p in store.involving(OTHER)] == [b]
    assert [p.id for p in store.involving(OWNER)] == [a, b]
    assert store.involving("EU.EORI.NL000000009") == []


def test_version_changes_on_every_change(store) -> None:
    v0 = store.version()
    pid = store.grant(ABC, dataset="ifc")
    v1 = store.version()
    store.revoke(pid)
    v2 = store.version()
    assert len({v0, v1, v2}) == 3
    with pytest.raises(PolicyNotFound) as info:
        store.revoke(pid)
    assert info.value.error == "not_found" and store.version() == v2
    with pytest.raises(PolicyNotFound):
        store.get(pid)
    assert store.list() == []


def test_changes_are_visible_across_processes(store, tmp_path) -> None:
    v0 = store.version()
    script = (
        "import sys; from trust.policy_store import PolicyStore;"
        f"s = PolicyStore(sys.argv[1], issuer={OWNER!r}, base_iri={BASE!r});"
        f"print(s.grant({ABC!r}, dataset='ifc'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "p.db")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    pid = out.stdout.strip()
    assert store.version() != v0
    assert [p.id for p in store.list(subject=ABC)] == [pid]
