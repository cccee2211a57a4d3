"""Policy enforcement point: description filtering, scoped SPARQL, audit, explanations."""

from __future__ import annotations

import pyoxigraph as ox
import pytest

from node.enforcement import (
    AccessDenied,
    Enforcer,
    MemoryStore,
    filter_description,
    scoped_query,
)
from node.sparql.outline import outline
from node.sparql.rewrite import with_dataset
from trust.delegation import DSGO_DATASET, Decision, PartialGrant, Scope
from trust.policy_store import PolicyStore

BASE = "http://127.0.0.1:8101"
OWNER = "EU.EORI.NL000000003"
ABC = "EU.EORI.NL000000001"
OTHER = "EU.EORI.NL000000002"
BOT = "https://w3id.org/bot#"
PROPS = "https://w3id.org/props#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
IFC = f"{BASE}/dataset/ifc"
BAG = f"{BASE}/dataset/bag"
SECRET = f"{BASE}/dataset/secret"
NOW = 1_700_000_000

TRIG = f"""
<{IFC}> {{
  <{BASE}/id/building/1> a <{BOT}Building> ; <{PROPS}name> "Duplex" ; <{PROPS}cost> 100 ;
      <{BOT}hasStorey> <{BASE}/id/storey/1> .
  <{BASE}/id/storey/1> a <{BOT}Storey> ; <{PROPS}name> "Ground" ; <{BOT}hasSpace> <{BASE}/id/space/1> .
  <{BASE}/id/space/1> a <{BOT}Space> ; <{PROPS}name> "Kitchen" .
}}
<{BAG}> {{
  <{BASE}/id/building/1> <{PROPS}bouwjaar> 1990 .
  <{BASE}/id/pand/2> a <{BOT}Building> ; <{PROPS}bouwjaar> 2001 .
}}
<{SECRET}> {{
  <{BASE}/id/building/1> <{PROPS}owner> "Jansen" .
  <{BASE}/id/secret/1> a <{BOT}Building> ; <{PROPS}name> "Vault" .
}}
<{BASE}/staging/ifc> {{ <{BASE}/id/leak/1> <{PROPS}name> "staging" . }}
"""


@pytest.fixture()
def store() -> MemoryStore:
    s = ox.Store()
    s.load(TRIG.encode(), ox.RdfFormat.TRIG)
    return MemoryStore(s)


@pytest.fixture()
def policies(tmp_path) -> PolicyStore:
    return PolicyStore(tmp_path / "policies.db", issuer=OWNER, base_iri=BASE, clock=lambda: NOW)


@pytest.fixture()
def decisions() -> list[Decision]:
    return []


@pytest.fixture()
def enforcer(policies, decisions) -> Enforcer:
    return Enforcer(
        policies,
        node_party_id=OWNER,
        base_iri=BASE,
        on_decision=decisions.append,
        clock=lambda: NOW,
    )


def graphs_of(store: MemoryStore) -> list[str]:
    return sorted(g.value for g in store.store.named_graphs() if "/dataset/" in g.value)


def rows(result) -> list[tuple[str, ...]]:
    return sorted(tuple(str(v) for v in sol) for sol in result)


def values(result) -> set[str]:
    return {str(v) for sol in result for v in sol}


# --- whole-dataset scopes ---------------------------------------------------------------------


WHOLE_IFC = Scope(frozenset({IFC}), (), ("p1",))


@pytest.mark.parametrize(
    "query",
    [
        "SELECT ?o WHERE { ?s ?p ?o }",
        "SELECT ?o WHERE { GRAPH ?g { ?s ?p ?o } }",
        f"SELECT ?o FROM <{SECRET}> WHERE {{ ?s ?p ?o }}",
        f"SELECT ?o FROM NAMED <{SECRET}> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}",
        f"SELECT ?o WHERE {{ GRAPH <{SECRET}> {{ ?s ?p ?o }} }}",
        f"SELECT ?o WHERE {{ <{BASE}/id/building/1> (<{PROPS}owner>|<{BOT}hasStorey>)* ?o }}",
        f"SELECT ?o WHERE {{ GRAPH <{BASE}/staging/ifc> {{ ?s ?p ?o }} }}",
        f"SELECT ?o WHERE {{ ?o <{PROPS}none>? ?o }}",
        f"SELECT ?o ?x WHERE {{ ?o (!<{PROPS}none>)* ?x }}",
        "SELECT ?o WHERE { GRAPH ?g { } BIND(?g AS ?o) }",
        f"SELECT ?o WHERE {{ <{BASE}/id/secret/1> <{PROPS}name>* ?o }}",
    ],
)
def test_whole_dataset_scope_never_leaks_other_graphs(store, query) -> None:
    hidden = {"Jansen", "Vault", "1990", "staging"}
    hidden |= {f"<{BASE}/id/secret/1>", f"<{BASE}/id/pand/2>", f"<{BASE}/id/leak/1>"}
    hidden |= {f"<{BAG}>", f"<{SECRET}>", f"<{BASE}/staging/ifc>"}

    def plain(found: set[str]) -> set[str]:
        return {v.split("^^")[0].strip('"') if v.startswith('"') else v for v in found}

    unscoped = values(store.store.query(query, use_default_graph_as_union=True))
    assert hidden & plain(unscoped)  # the query would leak without enforcement
    got = values(scoped_query(store, query, WHOLE_IFC, dataset_graphs=graphs_of(store)))
    assert not hidden & plain(got)


def test_count_describe_construct_see_only_scope(store) -> None:
    dg = graphs_of(store)
    (count,) = scoped_query(
        store, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", WHOLE_IFC, dataset_graphs=dg
    )
    assert int(count["n"].value) == 9
    described = list(
        scoped_query(store, f"DESCRIBE <{BASE}/id/building/1>", WHOLE_IFC, dataset_graphs=dg)
    )
    assert described and all("owner" not in t.predicate.value for t in described)
    assert all("bouwjaar" not in t.predicate.value for t in described)
    constructed = list(
        scoped_query(
            store,
            f"CONSTRUCT {{ ?s ?p ?o }} FROM <{SECRET}> WHERE {{ ?s ?p ?o }}",
            WHOLE_IFC,
            dataset_graphs=dg,
        )
    )
    assert constructed == []


def test_from_narrows_within_scope(store) -> None:
    scope = Scope(frozenset({IFC, BAG}), (), ("p1",))
    dg = graphs_of(store)
    both = values(scoped_query(store, "SELECT ?o WHERE { ?s ?p ?o }", scope, dataset_graphs=dg))
    assert '"Duplex"' in both and "1990" in {v.split("^")[0].strip('"') for v in both}
    only_bag = rows(
        scoped_query(
            store,
            f"SELECT ?o FROM <{BAG}> WHERE {{ ?s <{PROPS}name> ?o }}",
            scope,
            dataset_graphs=dg,
        )
    )
    assert only_bag == []
    named = rows(
        scoped_query(
            store,
            f"SELECT DISTINCT ?g FROM NAMED <{BAG}> FROM NAMED <{SECRET}> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}",
            scope,
            dataset_graphs=dg,
        )
    )
    assert named == [(f"<{BAG}>",)]


# --- partial scopes -----------------------------------------------------------------------------


def test_partial_grant_by_class_and_attribute(store) -> None:
    grant = PartialGrant("p2", rdf_type=f"{BOT}Building", attributes=frozenset({f"{PROPS}name"}))
    scope = Scope(frozenset(), (grant,), ("p2",))
    got = rows(
        scoped_query(
            store, "SELECT ?s ?p ?o WHERE { ?s ?p ?o }", scope, dataset_graphs=graphs_of(store)
        )
    )
    assert got == sorted(
        [
            (f"<{BASE}/id/building/1>", f"<{PROPS}name>", '"Duplex"'),
            (f"<{BASE}/id/secret/1>", f"<{PROPS}name>", '"Vault"'),
        ]
    )


def test_partial_grant_with_deny_and_whole_mix(store) -> None:
    grant = PartialGrant(
        "p2",
        datasets=frozenset({SECRET}),
        denies=(
            __import__("trust.delegation", fromlist=["DenyRule"]).DenyRule(
                attributes=frozenset({f"{PROPS}owner"})
            ),
        ),
    )
    scope = Scope(frozenset({BAG}), (grant,), ("p1", "p2"))
    got = values(
        scoped_query(store, "SELECT ?o WHERE { ?s ?p ?o }", scope, dataset_graphs=graphs_of(store))
    )
    assert '"Vault"' in got and '"Jansen"' not in got and '"Duplex"' not in got


def test_filter_description_attribute_filtering(store) -> None:
    subject = f"{BASE}/id/building/1"
    quads = list(store.quads(subject=subject, graphs=[IFC, BAG, SECRET]))
    grant = PartialGrant("p", rdf_type=f"{BOT}Building", attributes=frozenset({f"{PROPS}name"}))
    kept = filter_description(
        quads, Scope(frozenset(), (grant,), ("p",)), subject, [IFC, BAG, SECRET]
    )
    assert [t.predicate.value for t in kept] == [f"{PROPS}name"]
    whole = filter_description(quads, Scope(frozenset({IFC})), subject, [IFC, BAG, SECRET])
    assert {t.predicate.value for t in whole} == {
        RDF_TYPE,
        f"{PROPS}name",
        f"{PROPS}cost",
        f"{BOT}hasStorey",
    }
    assert filter_description(quads, Scope(frozenset({BAG}) - {BAG}), subject, [IFC]) is None
    # the type is checked in the graph the triple comes from: BAG has no type for building/1
    in_bag = PartialGrant("p", datasets=frozenset({BAG}), rdf_type=f"{BOT}Building")
    assert filter_description(quads, Scope(frozenset(), (in_bag,)), subject, [IFC, BAG]) is None


# --- Enforcer: policy store, cache, revocation, audit, explanation ------------------------------


def test_revocation_takes_effect_on_next_request(store, policies, enforcer, decisions) -> None:
    pid = policies.grant(ABC, dataset="ifc")
    result = rows(enforcer.query(store, ABC, "SELECT ?o WHERE { ?s <" + PROPS + "name> ?o }"))
    assert ('"Duplex"',) in result
    policies.revoke(pid)
    with pytest.raises(AccessDenied) as info:
        enforcer.query(store, ABC, "SELECT ?o WHERE { ?s ?p ?o }")
    assert info.value.error == "access_denied"
    assert [d.effect for d in decisions] == ["Permit", "Deny"]
    assert decisions[0].policy_ids == (pid,) and decisions[0].party == ABC


def test_expiry_takes_effect_without_policy_change(store, policies, decisions) -> None:
    clock = [NOW]
    enf = Enforcer(policies, node_party_id=OWNER, base_iri=BASE, clock=lambda: clock[0])
    policies.grant(ABC, dataset="ifc", until=NOW + 60)
    assert not enf.scope_for(ABC).is_empty
    clock[0] = NOW + 60
    assert enf.scope_for(ABC).is_empty


def test_wildcard_dataset_grant_excludes_non_dataset_graphs(store, policies, enforcer) -> None:
    policies.grant(ABC, dataset="*")
    got = values(enforcer.query(store, ABC, "SELECT ?o WHERE { GRAPH ?g { ?s ?p ?o } }"))
    assert '"Vault"' in got and '"staging"' not in got


def test_other_parties_and_foreign_issuers_do_not_widen(store, policies, enforcer) -> None:
    policies.grant(OTHER, dataset="*")
    evidence = policies.get(policies.grant(ABC, dataset="secret")).evidence
    policies.add({**evidence, "policyIssuer": OTHER})  # not issued by this node's owner
    policies.revoke(policies.list(subject=ABC, issuer=OWNER)[0].id)
    with pytest.raises(AccessDenied):
        enforcer.query(store, ABC, "SELECT * WHERE { ?s ?p ?o }")


def test_describe_with_audit_and_explanation(store, policies, enforcer, decisions) -> None:
    subject = f"{BASE}/id/building/1"
    quads = list(store.quads(subject=subject, graphs=[IFC, SECRET]))
    with pytest.raises(AccessDenied) as info:
        enforcer.describe(ABC, quads, subject, [IFC, SECRET])
    assert info.value.explanation["rule"] == "no policy applies (deny by default)"
    other = policies.grant(OTHER, dataset="*")
    pid = policies.grant(
        ABC,
        type=f"{BOT}Building",
        deny=[{"resource": {"type": f"{BOT}Building", "identifiers": [subject]}}],
    )
    with pytest.raises(AccessDenied) as info:
        enforcer.describe(ABC, quads, subject, [IFC, SECRET])
    explanation = info.value.explanation
    assert explanation["rule"] == f"policy {pid}: Deny rule"
    assert [p["id"] for p in explanation["policies"]] == [pid]
    assert other not in str(explanation)
    policies.grant(ABC, dataset="ifc")
    kept = enforcer.describe(ABC, quads, subject, [IFC, SECRET])
    assert kept and all(t.predicate.value != f"{PROPS}owner" for t in kept)
    assert [d.effect for d in decisions] == ["Deny", "Deny", "Permit"]
    assert decisions[-1].target == subject


def test_scope_cache_is_reused_until_version_changes(policies, enforcer) -> None:
    policies.grant(ABC, dataset="ifc")
    first = enforcer.scope_for(ABC)
    assert enforcer.scope_for(ABC) is first
    policies.grant(OTHER, dataset="bag")
    assert enforcer.scope_for(ABC) is not first and enforcer.scope_for(ABC) == first


def test_dataset_type_grant_in_store(policies) -> None:
    pid = policies.grant(ABC, dataset="ifc", attributes=[f"{PROPS}name"])
    (record,) = policies.list(subject=ABC)
    resource = record.evidence["policySets"][0]["policies"][0]["target"]["resource"]
    assert (
        record.id == pid and resource["type"] == DSGO_DATASET and resource["identifiers"] == [IFC]
    )


# --- SPARQL Protocol dataset parameters -----------------------------------------------------------


def test_protocol_graph_outside_scope_gives_nothing(store) -> None:
    query = with_dataset(outline("SELECT ?o WHERE { ?s ?p ?o }"), [SECRET], [])
    assert rows(scoped_query(store, query, WHOLE_IFC, dataset_graphs=graphs_of(store))) == []
    query = with_dataset(outline("SELECT ?o WHERE { ?s ?p ?o }"), [SECRET, IFC], [])
    assert ('"Duplex"',) in rows(
        scoped_query(store, query, WHOLE_IFC, dataset_graphs=graphs_of(store))
    )


def test_syntax_errors_are_the_stores_error_for_partial_scopes(store) -> None:
    from node.store import QuerySyntaxError

    grant = PartialGrant("p", rdf_type=f"{BOT}Building")
    with pytest.raises(QuerySyntaxError):
        scoped_query(store, "SELECT WHERE {", Scope(frozenset(), (grant,)), dataset_graphs=[IFC])
