"""The vocabulary files ship with the package, parse, and document every dsgo term."""

import pytest
from rdflib import RDF, RDFS, Graph, Namespace, URIRef

import vocab

DSGO = Namespace("https://w3id.org/dsgo-node/def#")
UNIT = Namespace("http://qudt.org/vocab/unit/")
QUDT = Namespace("http://qudt.org/schema/qudt/")


def _graph(resource) -> Graph:
    g = Graph()
    g.parse(data=vocab.read_text(resource), format="turtle")
    return g


def test_dsgo_terms_have_label_and_comment():
    g = _graph(vocab.path("dsgo.ttl"))
    terms = {s for s in g.subjects(RDF.type, None) if str(s).startswith(str(DSGO))}
    assert DSGO.bagPand in terms and DSGO.EnergyLabel in terms and DSGO.sourceSha256 in terms
    for term in terms:
        assert g.value(term, RDFS.label) is not None, term
        assert g.value(term, RDFS.comment) is not None, term


@pytest.mark.parametrize("kind", ["ifc", "measurements", "bag", "sql"])
def test_connector_shapes_parse(kind):
    g = _graph(vocab.shapes(kind))
    shapes = set(g.subjects(RDF.type, URIRef("http://www.w3.org/ns/shacl#NodeShape")))
    assert shapes


@pytest.mark.parametrize("name", ["bot.ttl", "sosa-common.ttl", "sosa-observation.ttl"])
def test_vendored_ontologies_parse(name):
    assert len(_graph(vocab.ontology(name))) > 50


def test_qudt_subset_has_every_unit_the_connectors_emit():
    g = _graph(vocab.ontology("qudt-subset.ttl"))
    for unit in ["M", "M2", "M3", "DEG_C", "PPM", "FRACTION", "NUM", "PERCENT", "W-PER-M2-K", "W"]:
        assert (UNIT[unit], RDF.type, QUDT.Unit) in g, unit
        assert g.value(UNIT[unit], RDFS.label) is not None


def test_licences_file_ships():
    assert "CC BY 1.0" in vocab.read_text(vocab.ontology("LICENCES.md"))


@pytest.mark.parametrize("bad", ["nope.ttl", "../connectors/base.py", "shapes/x/../ifc.ttl"])
def test_missing_or_escaping_names_are_refused(bad):
    with pytest.raises(vocab.VocabFileNotFound):
        vocab.path(bad)


def test_unknown_shapes_kind_is_refused():
    with pytest.raises(vocab.VocabFileNotFound):
        vocab.shapes("excel")
