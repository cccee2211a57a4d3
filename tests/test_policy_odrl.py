"""ODRL rendering of stored policies: valid JSON-LD, real ODRL 2.2 terms, rules preserved."""

from __future__ import annotations

from pathlib import Path

import pyoxigraph as ox
from pyld import jsonld

from trust.delegation import DSGO_DATASET, Policy, build_policy
from trust.odrl import ODRL, to_odrl

BASE = "http://127.0.0.1:8101"
OWNER = "EU.EORI.NL000000003"
ABC = "EU.EORI.NL000000001"
BUILDING = "https://w3id.org/bot#Building"
NAME = "https://w3id.org/props#name"
ODRL_TTL = Path(__file__).parent / "data" / "delegation" / "odrl22.ttl"


def graph_of(doc: dict) -> ox.Store:
    nquads = jsonld.to_rdf(doc, {"format": "application/n-quads"})
    store = ox.Store()
    store.load(nquads.encode(), ox.RdfFormat.N_QUADS)
    return store


def select(store: ox.Store, query: str) -> set[tuple[str, ...]]:
    return {tuple(str(v) for v in row) for row in store.query(query)}


def sample_policy() -> Policy:
    doc = build_policy(
        issuer=OWNER,
        subject=ABC,
        resource_type=BUILDING,
        attributes=[NAME],
        not_before=1_700_000_000,
        not_on_or_after=1_800_000_000,
        deny=[{"resource": {"type": BUILDING, "identifiers": [f"{BASE}/id/building/9"]}}],
    )
    return Policy("pol-1", doc)


def test_policy_is_an_odrl_set_with_permission_and_prohibition() -> None:
    store = graph_of(to_odrl(sample_policy(), BASE))
    rows = select(
        store,
        f"""PREFIX odrl: <{ODRL}>
        SELECT ?kind ?action ?assignee WHERE {{
          <{BASE}/policy/pol-1> a odrl:Set ; ?kind ?rule .
          ?rule odrl:action ?action ; odrl:assignee ?assignee .
        }}""",
    )
    assert rows == {
        (f"<{ODRL}permission>", f"<{ODRL}read>", f"<urn:ishare:{ABC}>"),
        (f"<{ODRL}prohibition>", f"<{ODRL}read>", f"<urn:ishare:{ABC}>"),
    }
    (target,) = select(
        store,
        f"PREFIX odrl: <{ODRL}> SELECT ?t WHERE {{ ?r odrl:prohibition ?x . ?x odrl:target ?t }}",
    )
    assert target == (f"<{BASE}/id/building/9>",)
    windows = select(
        store,
        f"""PREFIX odrl: <{ODRL}> SELECT ?op ?v WHERE {{
          ?p odrl:constraint ?c . ?c odrl:leftOperand odrl:dateTime ;
             odrl:operator ?op ; odrl:rightOperand ?v }}""",
    )
    assert {op for op, _ in windows} == {f"<{ODRL}gteq>", f"<{ODRL}lt>"}
    assert any("2023-11-14T22:13:20Z" in v for _, v in windows)


def test_wildcard_dataset_is_an_asset_collection() -> None:
    doc = build_policy(
        issuer=OWNER, subject=ABC, resource_type=DSGO_DATASET, not_before=0, not_on_or_after=10
    )
    store = graph_of(to_odrl(Policy("p2", doc), BASE))
    rows = select(
        store,
        f"PREFIX odrl: <{ODRL}> SELECT ?src WHERE {{ ?p odrl:target ?t . "
        f"?t a odrl:AssetCollection ; odrl:source ?src }}",
    )
    assert rows == {(f"<{DSGO_DATASET}>",)}


def test_every_odrl_term_used_exists_in_odrl_22() -> None:
    vocab = ox.Store()
    vocab.load(ODRL_TTL.read_bytes(), ox.RdfFormat.TURTLE)
    defined = {q.subject.value for q in vocab if isinstance(q.subject, ox.NamedNode)}
    used = {
        t.value
        for q in graph_of(to_odrl(sample_policy(), BASE))
        for t in (q.predicate, q.object)
        if isinstance(t, ox.NamedNode) and t.value.startswith(ODRL)
    }
    assert used and used <= defined, used - defined
