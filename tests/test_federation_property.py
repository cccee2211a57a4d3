"""Property: for many query shapes and random data, federated == one merged store."""

from __future__ import annotations

from collections import Counter

import pyoxigraph as ox
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.sparql.federation import evaluate_federated

EX = "http://127.0.0.1/x/"
R = "http://127.0.0.1:9/sparql"  # never contacted: fetch answers from the in-process remote store
PREFIX = f"PREFIX : <{EX}>\n"

# local data uses :p and :r, remote data :q and :s, so the merged store adds nothing unintended
SHAPES = {
    "join": "SELECT * WHERE { ?a :p ?b . SERVICE <R> { ?b :q ?c } }",
    "optional_service": "SELECT * WHERE { ?a :p ?b . OPTIONAL { SERVICE <R> { ?b :q ?c } } }",
    "optional_then_join": "SELECT * WHERE { ?a :p ?b . OPTIONAL { SERVICE <R> { ?b :q ?c } } ?c :p ?d }",
    "minus": "SELECT * WHERE { ?a :p ?b . MINUS { SERVICE <R> { ?b :q ?c } } }",
    "union": "SELECT * WHERE { ?a :p ?b { ?b :p ?c } UNION { SERVICE <R> { ?b :q ?c } } }",
    "remote_optional_shares": "SELECT * WHERE { ?a :p ?b . SERVICE <R> { ?b :q ?c OPTIONAL { ?c :s ?a } } }",
    "filters": "SELECT * WHERE { ?a :p ?b FILTER(?b != :n1) SERVICE <R> { ?b :q ?c } FILTER(!BOUND(?c) || ?c != :n2) }",
    "local_optional_shares": "SELECT * WHERE { ?a :p ?b OPTIONAL { ?b :r ?x } SERVICE <R> { ?b :q ?x } }",
    "not_exists": "SELECT * WHERE { ?a :p ?b FILTER NOT EXISTS { SERVICE <R> { ?b :q ?a } } }",
    "subquery": "SELECT * WHERE { { SELECT ?b (COUNT(*) AS ?n) WHERE { ?a :p ?b SERVICE <R> { ?b :q ?c } } GROUP BY ?b } }",
    "bind": "SELECT * WHERE { ?a :p ?b BIND(?b AS ?c) SERVICE <R> { ?c :q ?d } }",
    "optional_filter": "SELECT * WHERE { ?a :p ?b OPTIONAL { ?b :r ?x SERVICE <R> { ?x :q ?y } FILTER(?x != :n0) } }",
    "nested_groups": "SELECT * WHERE { ?a :p ?b { ?b :r ?x { SERVICE <R> { ?x :q ?y . ?y :s ?b } } } }",
    "paths": "SELECT * WHERE { ?a :p+ ?b . SERVICE <R> { ?b (:q|:s)+ ?c } }",
    "optionally_bound_remote_var": "SELECT * WHERE { SERVICE <R> { ?b :q ?c OPTIONAL { ?c :s ?x } } OPTIONAL { ?x :r ?y } ?x :p ?z }",
    "remote_union_body": "SELECT * WHERE { ?a :p ?b SERVICE <R> { { ?b :q ?c } UNION { ?b :s ?c } } }",
    "remote_filter_body": "SELECT * WHERE { ?a :p ?b SERVICE <R> { ?b :q ?c FILTER(?c != ?a) } }",
    "two_services": "SELECT * WHERE { ?a :p ?b SERVICE <R> { ?b :q ?c } SERVICE <R> { ?c :s ?d } }",
    "aggregate": "SELECT ?b (COUNT(?c) AS ?n) WHERE { ?a :p ?b OPTIONAL { SERVICE <R> { ?b :q ?c } } } GROUP BY ?b",
}

XSD = "http://www.w3.org/2001/XMLSchema#"
LITERALS = [
    ox.Literal("1", datatype=ox.NamedNode(XSD + "integer")),
    ox.Literal("1.0", datatype=ox.NamedNode(XSD + "decimal")),
    ox.Literal('quote " and \\ backslash\nnewline'),
    ox.Literal("Ruimte é", language="nl"),
]
nodes = st.sampled_from([f"n{i}" for i in range(5)])
objects = st.one_of(nodes, st.sampled_from(range(len(LITERALS))))


def triples(preds: list[str]):
    return st.lists(st.tuples(nodes, st.sampled_from(preds), objects), max_size=12)


def store(data) -> ox.Store:
    s = ox.Store()
    s.extend(
        ox.Quad(
            ox.NamedNode(EX + a),
            ox.NamedNode(EX + p),
            LITERALS[b] if isinstance(b, int) else ox.NamedNode(EX + b),
        )
        for a, p, b in data
    )
    return s


def solutions(result) -> Counter:
    width = len(result.variables)
    names = [v.value for v in result.variables]
    return Counter(
        tuple(sorted((names[i], str(s[i])) for i in range(width) if s[i] is not None))
        for s in result
    )


@pytest.mark.parametrize("shape", sorted(SHAPES))
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(local_data=triples(["p", "r"]), remote_data=triples(["q", "s"]), batch=st.integers(1, 4))
def test_federated_equals_merged(shape, local_data, remote_data, batch):
    local, remote = store(local_data), store(remote_data)
    merged = store(local_data + remote_data)
    query = PREFIX + SHAPES[shape]
    answer = evaluate_federated(
        query.replace("<R>", f"<{R}>"),
        local=local.query,
        fetch=lambda endpoint, q, timeout: remote.query(q),
        batch_size=batch,
    )
    assert solutions(answer.result) == solutions(merged.query(query.replace("SERVICE <R>", "")))
