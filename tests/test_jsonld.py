"""Equivalence of node.jsonld.compact with pyld (same JSON structure, same RDF) on every shape."""

from __future__ import annotations

import json

import orjson
import pyoxigraph as ox
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyld import jsonld as pyld

from bench.bench_jsonld import pyld_dataset
from node.jsonld import Context, compact, load_context

CTX = load_context()
BOT = "https://w3id.org/bot#"
PROPS = "https://w3id.org/props#"
QUDT = "http://qudt.org/schema/qudt/"
XSD = "http://www.w3.org/2001/XMLSchema#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
EX = "http://example.org/"
BASE = "http://127.0.0.1:8101/id/space/"

# Each shape is N-Triples text; every one must match pyld structurally and round-trip as RDF.
SHAPES = {
    "iri_prefixed": f"<{BOT}s> <{BOT}p> <{BOT}o> .",
    "iri_unprefixed": f"<{BASE}a> <{EX}p> <{EX}o> .",
    "bnode_subject_and_object": f'_:a <{BOT}p> _:b .\n_:b <{BOT}q> "x" .',
    "string": f'<{BOT}s> <{BOT}p> "plain" .',
    "explicit_xsd_string": f'<{BOT}s> <{BOT}p> "plain"^^<{XSD}string> .',
    "lang": f'<{BOT}s> <{BOT}p> "kamer"@nl .\n<{BOT}s> <{BOT}p> "room"@en-GB .',
    "integer": f'<{BOT}s> <{BOT}p> "42"^^<{XSD}integer> .',
    "decimal": f'<{BOT}s> <{BOT}p> "3.14"^^<{XSD}decimal> .',
    "double": f'<{BOT}s> <{BOT}p> "1.5E0"^^<{XSD}double> .',
    "boolean": f'<{BOT}s> <{BOT}p> "true"^^<{XSD}boolean> .',
    "datetime": f'<{BOT}s> <{BOT}p> "2024-05-01T12:00:00Z"^^<{XSD}dateTime> .',
    "custom_datatype_prefixed": f'<{BOT}s> <{BOT}p> "5 m"^^<https://w3id.org/dsgo-node/def#len> .',
    "custom_datatype_absolute": f'<{BOT}s> <{BOT}p> "x"^^<{EX}dt> .',
    "datatype_is_namespace": f'<{BOT}s> <{BOT}p> "x"^^<{XSD}> .',
    "unicode_and_escapes": (f'<{BOT}s> <{BOT}p> "Ünïcødé ☃ 𝄞 \\"q\\" back\\\\slash\\nnew\\ttab" .'),
    "type_single": f"<{BOT}s> <{RDF_TYPE}> <{BOT}Space> .",
    "type_multiple": f"<{BOT}s> <{RDF_TYPE}> <{BOT}Space> .\n<{BOT}s> <{RDF_TYPE}> <{EX}Room> .",
    "type_bnode_and_literal": f'<{BOT}s> <{RDF_TYPE}> _:t .\n<{BOT}s> <{RDF_TYPE}> "odd" .',
    "type_is_namespace": f"<{BOT}s> <{RDF_TYPE}> <{BOT}> .",
    "multiple_values": (
        f'<{BOT}s> <{BOT}p> "a" .\n<{BOT}s> <{BOT}p> "b" .\n<{BOT}s> <{BOT}p> <{BOT}o> .\n'
        f'<{BOT}s> <{BOT}p> "1"^^<{XSD}integer> .'
    ),
    "nested_bnodes": (
        f"<{BOT}s> <{BOT}hasPart> _:x .\n_:x <{BOT}hasPart> _:y .\n"
        f'_:y <{PROPS}area> "12.5"^^<{XSD}decimal> .\n_:y <{RDF_TYPE}> <{BOT}Space> .'
    ),
    "local_part_slash": f"<{QUDT}a/b> <{QUDT}p/q> <{QUDT}c/d/e> .",
    "local_part_hash": f"<{QUDT}a#b> <{QUDT}p#q> <{QUDT}c#d> .",
    "local_part_colon": f"<{BOT}a:b> <{BOT}p:q> <{BOT}c:d:e> .",
    "local_part_ends_in_dot": f"<{BOT}a.> <{BOT}p.> <{BOT}c.> .",
    "local_part_empty_object": f"<{BOT}s> <{BOT}p> <{PROPS}> .",
    "subject_is_namespace": f'<{PROPS}> <{BOT}p> "x" .',
    "property_is_namespace": (
        f'<{BOT}s> <{PROPS}> "x" .\n<{BOT}s> <{PROPS}> "y"@nl .\n'
        f'<{BOT}s> <{PROPS}> "3"^^<{XSD}integer> .\n<{BOT}s> <{PROPS}> <{BOT}o> .'
    ),
    "iri_with_query_and_quote": f"<{EX}a?x=1&y=%22> <{EX}p> <{BASE}q'uote> .",
    "many_subjects": "\n".join(f'<{BASE}n{i}> <{BOT}p> "{i}" .' for i in range(5)),
}


def parse(ntriples: str) -> list[ox.Triple]:
    """Parse N-Triples text into pyoxigraph triples."""
    return list(ox.parse(ntriples.encode(), ox.RdfFormat.N_TRIPLES))


def ours(triples: list[ox.Triple]) -> dict:
    """Our compaction, decoded."""
    return orjson.loads(compact(triples, CTX))


def theirs(triples: list[ox.Triple]) -> dict:
    """pyld's compaction of the same triples (from_rdf with default options, then compact)."""
    expanded = pyld.from_rdf(pyld_dataset(triples))
    return pyld.compact(expanded, CTX.document)


def rdf_of(document: dict) -> set[str]:
    """Expand a JSON-LD document with pyld and return its canonical N-Quads lines."""
    dataset = pyld.to_rdf(document)
    return canonical([_from_pyld_triple(t) for t in dataset.get("@default", [])])


def canonical(triples: list[ox.Triple]) -> set[str]:
    """Canonicalised (blank-node relabelled) N-Quads of some triples."""
    ds = ox.Dataset(ox.Quad(t.subject, t.predicate, _double(t.object)) for t in triples)
    ds.canonicalize(ox.CanonicalizationAlgorithm.UNSTABLE)
    return {str(q) for q in ds}


def _double(term: object) -> object:
    """pyld's to_rdf rewrites numeric xsd:double strings ("0" -> "0.0E0"): compare by value."""
    if isinstance(term, ox.Literal) and term.datatype.value == XSD + "double":
        try:
            return ox.Literal(repr(float(term.value)), datatype=term.datatype)
        except ValueError:
            return term
    return term


def normal(value: object) -> object:
    """Order-insensitive normal form of JSON (arrays become sorted lists of normal forms)."""
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((normal(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    return value


def _from_pyld_triple(triple: dict) -> ox.Triple:
    return ox.Triple(
        _from_pyld_term(triple["subject"]),
        _from_pyld_term(triple["predicate"]),
        _from_pyld_term(triple["object"]),
    )


def _from_pyld_term(term: dict) -> object:
    if term["type"] == "IRI":
        return ox.NamedNode(term["value"])
    if term["type"] == "blank node":
        return ox.BlankNode(term["value"][2:])
    if term.get("language"):
        return ox.Literal(term["value"], language=term["language"])
    return ox.Literal(term["value"], datatype=ox.NamedNode(term["datatype"]))


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_shape_matches_pyld_structurally(shape: str) -> None:
    triples = parse(SHAPES[shape])
    assert normal(ours(triples)) == normal(theirs(triples))


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_shape_round_trips_as_rdf(shape: str) -> None:
    triples = parse(SHAPES[shape])
    assert rdf_of(ours(triples)) == canonical(triples)


def test_curie_details() -> None:
    doc = ours(parse(SHAPES["multiple_values"] + "\n" + SHAPES["local_part_slash"]))
    by_id = {node["@id"]: node for node in doc["@graph"]}
    assert set(by_id) == {"bot:s", "qudt:a/b"}
    assert normal(by_id["bot:s"]["bot:p"]) == normal(
        ["a", "b", {"@id": "bot:o"}, {"@type": "xsd:integer", "@value": "1"}]
    )
    assert by_id["qudt:a/b"]["qudt:p/q"] == {"@id": "qudt:c/d/e"}


def test_single_subject_is_unwrapped_and_context_inline() -> None:
    doc = ours(parse(SHAPES["type_multiple"]))
    assert "@graph" not in doc
    assert doc["@context"] == CTX.mapping
    assert doc["@id"] == "bot:s"
    assert sorted(doc["@type"]) == ["bot:Space", f"{EX}Room"]


def test_empty_input_gives_context_only() -> None:
    assert ours([]) == theirs([]) == {"@context": CTX.mapping}


def test_output_is_deterministic_regardless_of_input_order() -> None:
    triples = parse(SHAPES["nested_bnodes"] + "\n" + SHAPES["many_subjects"])
    assert compact(triples, CTX) == compact(list(reversed(triples)), CTX)


def test_duplicate_triples_collapse() -> None:
    triples = parse(SHAPES["string"]) * 3
    assert ours(triples)["bot:p"] == "plain"


def test_local_part_starting_with_double_slash_stays_absolute() -> None:
    # pyld emits "bot://x", which expands to the absolute IRI <bot://x>: wrong RDF.
    triples = parse(f'<{BOT}s> <{BOT}p> <{BOT}//x> .\n<{BOT}//y> <{BOT}//p> "v" .')
    assert rdf_of(ours(triples)) == canonical(triples)
    assert rdf_of(theirs(triples)) != canonical(triples)
    assert ours(triples)["@graph"][0]["bot:p"] == {"@id": f"{BOT}//x"}


def test_rdf_json_literal_keeps_lexical_form() -> None:
    triples = parse(
        f'<{BOT}s> <{BOT}p> "[1, 2]"^^<http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON> .'
    )
    assert ours(triples)["bot:p"] == {"@type": "rdf:JSON", "@value": "[1, 2]"}
    assert rdf_of(ours(triples)) == canonical(triples)


def test_iri_confused_with_prefix_falls_back_to_absolute_iris() -> None:
    triples = parse(f'<bot:x> <{BOT}p> "v" .')
    with pytest.raises(pyld.JsonLdError):
        theirs(triples)
    doc = ours(triples)
    assert "@context" not in doc
    assert doc == {"@id": "bot:x", f"{BOT}p": "v"}
    assert rdf_of(doc) == canonical(triples)


def test_shortest_curie_wins_with_overlapping_prefixes() -> None:
    ctx = Context.from_document({"@context": {"long": EX, "b": EX + "a/b/", "ab": EX + "a/"}})
    triples = parse(f"<{EX}a/b/c> <{EX}p> <{EX}a/x> .")
    doc = orjson.loads(compact(triples, ctx))
    expected = pyld.compact(pyld.from_rdf(pyld_dataset(triples)), ctx.document)
    assert doc == expected
    assert doc["@id"] == "b:c"


@pytest.mark.parametrize(
    "bad",
    [
        {"@context": {"@vocab": EX}},
        {"@context": {"name": {"@id": EX + "name"}}},
        {"@context": {"ex": "http://example.org/x"}},
        {"@context": ["http://example.org/ctx"]},
    ],
)
def test_context_beyond_prefixes_is_rejected(bad: dict) -> None:
    with pytest.raises(ValueError):
        Context.from_document(bad)


# ---- property-based: random graphs over the shapes above ----------------------------------

_NAMESPACES = [BOT, PROPS, QUDT, XSD, EX, BASE, "https://w3id.org/dsgo-node/def#"]
_LOCALS = st.sampled_from(["", "a", "Space", "a/b", "c:d", "e.", "f#g", "h-1", "ü", "x%20y"])
_DATATYPES = [f"{XSD}{n}" for n in ("integer", "decimal", "double", "boolean", "dateTime")]
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@st.composite
def _iris(draw: st.DrawFn) -> ox.NamedNode:
    namespace = draw(st.sampled_from(_NAMESPACES))
    local = draw(_LOCALS)
    if "#" in namespace:
        local = local.replace("#", "")
    return ox.NamedNode(namespace + local)


_BNODES = st.sampled_from(["b0", "b1", "b2"]).map(ox.BlankNode)
_SUBJECTS = st.one_of(_iris(), _BNODES)
_PREDICATES = st.one_of(_iris(), st.just(ox.NamedNode(RDF_TYPE)))
_LITERALS = st.one_of(
    _TEXT.map(ox.Literal),
    st.tuples(_TEXT, st.sampled_from(["nl", "en", "en-gb"])).map(
        lambda t: ox.Literal(t[0], language=t[1])
    ),
    st.tuples(_TEXT, st.sampled_from(_DATATYPES)).map(
        lambda t: ox.Literal(t[0], datatype=ox.NamedNode(t[1]))
    ),
    st.tuples(_TEXT, _iris()).map(lambda t: ox.Literal(t[0], datatype=t[1])),
)
_TRIPLES = st.lists(
    st.builds(ox.Triple, _SUBJECTS, _PREDICATES, st.one_of(_iris(), _BNODES, _LITERALS)),
    max_size=12,
    unique=True,  # an RDF graph is a set; pyld repeats a duplicated rdf:type in @type
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TRIPLES)
def test_random_graphs_round_trip_and_match_pyld(triples: list[ox.Triple]) -> None:
    doc = ours(triples)
    assert rdf_of(doc) == canonical(triples)
    assert normal(doc) == normal(theirs(triples))


def test_quads_and_generators_are_accepted() -> None:
    triples = parse(SHAPES["nested_bnodes"])
    graph = ox.NamedNode("http://127.0.0.1:8101/dataset/ifc")
    quads = [ox.Quad(t.subject, t.predicate, t.object, graph) for t in triples]
    expected = compact(triples, CTX)
    assert compact(quads, CTX) == expected
    assert compact((t for t in triples), CTX) == expected
    store = ox.Store()
    store.extend(quads)
    assert compact(store.quads_for_pattern(None, None, None), CTX) == expected
