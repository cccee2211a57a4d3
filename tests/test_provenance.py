"""PROV-O for dataset versions: every field present, SHACL shape passes/fails, revisions chain."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
from pyshacl import validate

from connectors.base import ProvRecord
from node.provenance import derived_from, provenance_graph, version_triples

BASE = "http://127.0.0.1:8101"
SHAPES = Path(__file__).parent.parent / "vocab" / "shapes" / "provenance.ttl"
PREFIXES = """PREFIX prov: <http://www.w3.org/ns/prov#>
PREFIX dsgo: <https://w3id.org/dsgo-node/def#>
PREFIX dct: <http://purl.org/dc/terms/>
"""


def _record(sha: str = "ab" * 32, **changes) -> ProvRecord:
    fields = {
        "source": "examples/data/duplex.ifc",
        "source_sha256": sha,
        "source_modified": dt.datetime(2024, 5, 1, 8, 30, tzinfo=dt.UTC),
        "connector": "ifc",
        "connector_version": "0.3.1",
        "started": dt.datetime(2025, 3, 1, 10, 0, 0, tzinfo=dt.UTC),
        "ended": dt.datetime(2025, 3, 1, 10, 0, 2, tzinfo=dt.UTC),
        "party_id": "EU.EORI.NL000000001",
        "extra": {"mapping": "default"},
    }
    fields.update(changes)
    return ProvRecord(**fields)


def _store(triples: list[ox.Triple]) -> ox.Store:
    store = ox.Store()
    store.extend(ox.Quad(t.subject, t.predicate, t.object) for t in triples)
    return store


def _conforms(triples: list[ox.Triple]) -> tuple[bool, str]:
    data = rdflib.Graph().parse(
        data=ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES).decode(), format="nt"
    )
    conforms, _g, text = validate(data, shacl_graph=str(SHAPES), shacl_graph_format="turtle")
    return conforms, text


def test_version_has_every_field() -> None:
    iri, triples = version_triples(
        _record(), base_iri=BASE, dataset="duplex", previous_version=None
    )
    assert iri == f"{BASE}/dataset/duplex/version/{'ab' * 8}"
    rows = list(
        _store(triples).query(
            PREFIXES
            + """SELECT * WHERE {
              ?v a prov:Entity ; prov:specializationOf ?ds ; prov:wasGeneratedBy ?run ;
                 prov:wasAttributedTo ?party ; prov:generatedAtTime ?gen .
              ?run a prov:Activity ; prov:startedAtTime ?start ; prov:endedAtTime ?end ;
                 dsgo:connector ?conn ; dsgo:connectorVersion ?cv ; prov:used ?src .
              ?src dsgo:sha256 ?sha ; dct:modified ?mod ; dsgo:sourceLocation ?loc .
              ?party a prov:Agent ; dsgo:partyId ?pid }"""
        )
    )
    assert len(rows) == 1
    r = rows[0]
    assert r["v"].value == iri and r["ds"].value == f"{BASE}/dataset/duplex"
    assert r["start"].value == "2025-03-01T10:00:00Z"
    assert r["end"].value == r["gen"].value == "2025-03-01T10:00:02Z"
    assert (r["conn"].value, r["cv"].value) == ("ifc", "0.3.1")
    assert r["sha"].value == "ab" * 32 and r["loc"].value == "examples/data/duplex.ifc"
    assert r["mod"].value == "2024-05-01T08:30:00Z"
    assert r["pid"].value == "EU.EORI.NL000000001"
    assert r["party"].value == "urn:ishare:EU.EORI.NL000000001"
    assert not any(t.predicate.value.endswith("wasRevisionOf") for t in triples)
    conforms, text = _conforms(triples)
    assert conforms, text


def test_numbered_version_and_revision() -> None:
    first, _t1 = version_triples(
        _record(), base_iri=BASE, dataset="duplex", previous_version=None, version=1
    )
    second, t2 = version_triples(
        _record(sha="cd" * 32), base_iri=BASE, dataset="duplex", previous_version=first, version=2
    )
    assert (first, second) == (
        f"{BASE}/dataset/duplex/version/1",
        f"{BASE}/dataset/duplex/version/2",
    )
    revision = [t for t in t2 if t.predicate.value == "http://www.w3.org/ns/prov#wasRevisionOf"]
    assert revision == [ox.Triple(ox.NamedNode(second), revision[0].predicate, ox.NamedNode(first))]
    conforms, text = _conforms(t2)
    assert conforms, text


def test_iri_source_is_used_as_is() -> None:
    _iri, triples = version_triples(
        _record(source="https://data.example.org/bag.xml"),
        base_iri=BASE,
        dataset="bag",
        previous_version=None,
    )
    used = [t.object.value for t in triples if t.predicate.value.endswith("#used")]
    assert used == ["https://data.example.org/bag.xml"]


@pytest.mark.parametrize(
    "drop",
    [
        "http://www.w3.org/ns/prov#startedAtTime",
        "http://www.w3.org/ns/prov#generatedAtTime",
        "http://www.w3.org/ns/prov#wasAttributedTo",
        "https://w3id.org/dsgo-node/def#connectorVersion",
        "https://w3id.org/dsgo-node/def#sha256",
        "http://www.w3.org/ns/prov#used",
    ],
)
def test_shape_rejects_missing_field(drop: str) -> None:
    _iri, triples = version_triples(_record(), base_iri=BASE, dataset="x", previous_version=None)
    kept = [t for t in triples if t.predicate.value != drop]
    assert len(kept) < len(triples)
    conforms, _text = _conforms(kept)
    assert not conforms


def test_shape_rejects_bad_hash() -> None:
    _iri, triples = version_triples(
        _record(sha="not-a-digest"), base_iri=BASE, dataset="x", previous_version=None
    )
    assert not _conforms(triples)[0]


def test_derived_from_records_etag() -> None:
    remote = "http://127.0.0.1:8102/id/space/abc"
    triples = derived_from(f"{BASE}/id/measurement/1", remote, '"v7"')
    rows = list(
        _store(triples).query(
            PREFIXES
            + """SELECT ?read ?etag WHERE { ?e prov:wasDerivedFrom ?read .
                 ?read prov:specializationOf ?remote ; dsgo:etag ?etag }"""
        )
    )
    assert [r["etag"].value for r in rows] == ['"v7"']
    assert any(t.object.value == remote for t in triples if "wasDerivedFrom" in t.predicate.value)
    assert len(derived_from(f"{BASE}/x", remote, None)) == 2


def test_provenance_graph_iri() -> None:
    assert provenance_graph(BASE).value == f"{BASE}/dataset/provenance"
