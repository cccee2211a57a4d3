"""The SPARQL tokenizer and the SERVICE planner: keywords inside strings, IRIs and comments."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.sparql.federation import (
    InvalidQuery,
    UnsupportedService,
    evaluate_federated,
    has_service,
    plan_query,
)
from node.sparql.text import STRING, SparqlSyntaxError, tokenize

NOT_SERVICE = [
    'SELECT * WHERE { ?s ?p "SERVICE <http://x/> { ?a ?b ?c }" }',
    "SELECT * WHERE { ?s ?p 'service' }",
    'SELECT * WHERE { ?s ?p """multi\nline "" SERVICE { "quoted" }\n""" }',
    "SELECT * WHERE { ?s ?p '''it''s SERVICE''' }",
    'SELECT * WHERE { ?s ?p "escaped \\" SERVICE \\" quote" }',
    "SELECT * WHERE { ?s ?p ?o } # SERVICE <http://x/> { ?s ?p ?o }",
    "# SERVICE\nSELECT * WHERE { ?s <http://x/SERVICE> ?o }",
    "SELECT * WHERE { ?s <http://x/a#SERVICE> ?o }",
    "PREFIX ex: <http://x/> SELECT * WHERE { ?s ex:SERVICE ?o . ?service ex:p ?o }",
    "SELECT ?SERVICE WHERE { ?SERVICE ?p $service }",
]


@pytest.mark.parametrize("query", NOT_SERVICE)
def test_not_fooled(query):
    assert has_service(query) is False
    assert plan_query(query).services == []


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * WHERE { SERVICE <http://127.0.0.1:1/q> { ?s ?p ?o } }",
        "select * where { service silent <http://127.0.0.1:1/q> { ?s ?p ?o } }",
        "SELECT * WHERE {\n  # comment\n  ?s ?p ?o .SERVICE<http://127.0.0.1:1/q>{?s ?p ?o}}",
    ],
)
def test_finds_service(query):
    assert has_service(query) is True
    assert len(plan_query(query).services) == 1


def test_body_with_braces_and_hash_in_strings():
    query = 'SELECT * WHERE { ?s ?p ?o SERVICE <http://127.0.0.1:1/q> { ?s ?p "} # {" } FILTER(?o != "}") }'
    (service,) = plan_query(query).services
    assert service.body.strip() == '?s ?p "} # {"'
    assert query[service.end :].strip() == 'FILTER(?o != "}") }'


def test_prefixed_endpoint_and_base():
    query = (
        "BASE <http://127.0.0.1:8201/> PREFIX r: <http://127.0.0.1:8202/> "
        "SELECT * WHERE { SERVICE r:sparql { ?a ?b ?c } SERVICE <sparql> { ?a ?d ?e } }"
    )
    first, second = plan_query(query).services
    assert first.endpoint == "http://127.0.0.1:8202/sparql"
    assert second.endpoint == "http://127.0.0.1:8201/sparql"


def test_context_stops_at_optional():
    query = (
        "PREFIX : <http://x/> SELECT * WHERE { ?a :p ?b . "
        "OPTIONAL { SERVICE <http://127.0.0.1:1/q> { ?b :q ?c } } ?c :p ?d FILTER(?a != :z) }"
    )
    (service,) = plan_query(query).services
    assert service.shared == ["b"]  # ?c is bound after the OPTIONAL: it must not restrict
    assert ":p ?d" not in service.context and "?a :p ?b" in service.context
    assert "FILTER(?a != :z)" in service.context


def test_union_sibling_does_not_restrict():
    query = (
        "PREFIX : <http://x/> SELECT * WHERE { { ?a :p ?b } UNION "
        "{ SERVICE <http://127.0.0.1:1/q> { ?a :q ?b } } }"
    )
    (service,) = plan_query(query).services
    assert service.shared == []


def test_dataset_clause_is_kept():
    query = (
        "SELECT * FROM <http://127.0.0.1:8101/dataset/a> WHERE { ?s ?p ?o "
        "SERVICE <http://127.0.0.1:1/q> { ?s ?q ?r } }"
    )
    plan = plan_query(query)
    assert plan.dataset == "FROM <http://127.0.0.1:8101/dataset/a>"
    assert plan.services[0].shared == ["s"]


def test_service_in_expression_is_rejected():
    with pytest.raises(UnsupportedService):
        plan_query(
            "SELECT * WHERE { ?s ?p ?o FILTER(?o && EXISTS { SERVICE <http://127.0.0.1:1/q> { ?s ?p ?o } }) }"
        )


def test_unbalanced_query_is_a_syntax_error():
    query = "SELECT * WHERE { SERVICE <http://127.0.0.1:1/q> { ?s ?p ?o }"
    with pytest.raises(SparqlSyntaxError):
        plan_query(query)
    with pytest.raises(InvalidQuery) as info:
        evaluate_federated(query, local=lambda q: None, fetch=lambda e, q, t: None)
    assert info.value.status == 400 and "never closed" in str(info.value)


@given(st.text(alphabet=st.sampled_from(list("ab\"'<>{}#\\ \n?:.SERVICE")), max_size=60))
def test_tokens_cover_their_text(text):
    for token in tokenize(text):
        assert text[token.start : token.end] == token.text


@given(st.text(max_size=40).filter(lambda s: not set(s) & set('\\"\n\r')))
def test_any_string_literal_is_one_token(content):
    query = f'SELECT * WHERE {{ ?s ?p "{content}" }}'
    strings = [t for t in tokenize(query) if t.kind == STRING]
    assert [t.text for t in strings] == [f'"{content}"']
    assert has_service(query) is False
