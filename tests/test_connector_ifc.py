"""IFC connector on the real duplex (IFC2X3) and IfcOpenHouse (IFC4, millimetres) models."""

from pathlib import Path

import pyoxigraph as ox
import pytest

from connectors import ConnectorError, ShaclValidationError, get
from connectors.run import run_connector
from connectors.shacl import validate

DATA = Path(__file__).parent / "data" / "ifc"
BASE = "http://127.0.0.1:8101"
PREFIXES = """
PREFIX bot: <https://w3id.org/bot#>
PREFIX beo: <https://pi.pauwel.be/voc/buildingelement#>
PREFIX props: <https://w3id.org/props#>
PREFIX qudt: <http://qudt.org/schema/qudt/>
PREFIX unit: <http://qudt.org/vocab/unit/>
PREFIX dsgo: <https://w3id.org/dsgo-node/def#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
"""


def _run(tmp_path, name, options=None, dataset="model"):
    return get("ifc").run(
        str(DATA / name),
        base_iri=BASE,
        dataset=dataset,
        party_id="EU.EORI.NL000000001",
        workdir=tmp_path,
        options=options or {},
    )


def _store(result) -> ox.Store:
    store = ox.Store()
    store.bulk_load(path=str(result.ntriples_path), format=ox.RdfFormat.N_TRIPLES)
    return store


def _count(store, where: str) -> int:
    rows = list(store.query(PREFIXES + f"SELECT (COUNT(*) AS ?n) WHERE {{ {where} }}"))
    return int(rows[0]["n"].value)


@pytest.fixture(scope="module")
def duplex(tmp_path_factory):
    result = _run(tmp_path_factory.mktemp("duplex"), "duplex.ifc", {"bag_pand": "0221100000312938"})
    return result, _store(result)


def test_duplex_topology_counts(duplex):
    _, store = duplex
    assert _count(store, "?s a bot:Site") == 1
    assert _count(store, "?s a bot:Building") == 1
    assert _count(store, "?s a bot:Storey") == 4
    assert _count(store, "?s a bot:Space") == 21
    assert _count(store, "?s a beo:Wall") == 57
    assert _count(store, "?s a beo:Wall ; props:isExternal true") == 23
    assert _count(store, "?site bot:hasBuilding ?b . ?b bot:hasStorey ?s") == 4
    assert _count(store, "?st bot:hasSpace ?sp") == 21
    assert _count(store, "?sp bot:adjacentElement ?e . ?sp a bot:Space . ?e a bot:Element") > 100
    assert _count(store, "?w a beo:Wall ; bot:hasSubElement ?f . ?f a beo:Window") > 0


def test_duplex_living_rooms_have_area_and_volume(duplex):
    _, store = duplex
    rows = list(
        store.query(
            PREFIXES
            + """SELECT ?name ?area ?vol WHERE {
            ?s a bot:Space ; rdfs:label ?name ; props:longName "Living Room" ;
               props:area [ qudt:numericValue ?area ; qudt:unit unit:M2 ] ;
               props:volume [ qudt:numericValue ?vol ; qudt:unit unit:M3 ] } ORDER BY ?name"""
        )
    )
    assert [r["name"].value for r in rows] == ["A102", "B102"]
    for row in rows:
        assert round(float(row["area"].value), 2) == 30.14
        assert round(float(row["vol"].value), 2) == 71.39


def test_iris_come_from_globalids_with_dollar_percent_encoded(duplex):
    _, store = duplex
    space = ox.NamedNode(f"{BASE}/id/space/0BTBFw6f90Nfh9rP1dlXr2")
    assert (
        _count(store, f'{space} a bot:Space ; props:globalIdIfcRoot "0BTBFw6f90Nfh9rP1dlXr2"') == 1
    )
    wall = ox.NamedNode(f"{BASE}/id/element/2O2Fr%24t4X7Zf8NOew3FKau")
    assert _count(store, f'{wall} a beo:Wall ; props:globalIdIfcRoot "2O2Fr$t4X7Zf8NOew3FKau"') == 1
    assert _count(store, "?s a bot:Element . FILTER(CONTAINS(STR(?s), '$'))") == 0


def test_bag_pand_link(duplex):
    _, store = duplex
    pand = "<https://bag.basisregistraties.overheid.nl/id/pand/0221100000312938>"
    assert _count(store, f"?b a bot:Building ; dsgo:bagPand {pand}") == 1


def test_output_is_deterministic(tmp_path, duplex):
    first, _ = duplex
    again = _run(tmp_path, "duplex.ifc", {"bag_pand": "0221100000312938"})
    assert again.ntriples_path.read_bytes() == first.ntriples_path.read_bytes()
    assert "_:" not in again.ntriples_path.read_text()
    assert again.prov.source_sha256 == first.prov.source_sha256
    assert first.prov.extra["ifc_schema"] == "IFC2X3"


def test_duplex_passes_its_shapes(duplex):
    result, _ = duplex
    assert validate(result, "ifc") == result.triple_count


def test_openhouse_millimetres_become_metres(tmp_path):
    result = _run(tmp_path, "IfcOpenHouse_IFC4.ifc")
    store = _store(result)
    rows = list(
        store.query(
            PREFIXES
            + """SELECT ?h ?w WHERE { ?d a beo:Door ;
               props:overallHeight [ qudt:numericValue ?h ; qudt:unit unit:M ] ;
               props:overallWidth [ qudt:numericValue ?w ; qudt:unit unit:M ] }"""
        )
    )
    assert [(float(r["h"].value), float(r["w"].value)) for r in rows] == [(2.2, 1.0)]
    windows = {
        float(r["h"].value)
        for r in store.query(
            PREFIXES
            + "SELECT ?h WHERE { ?x a beo:Window ; props:overallHeight/qudt:numericValue ?h }"
        )
    }
    assert windows == {1.6}
    assert result.prov.extra["ifc_schema"] == "IFC4"
    assert validate(result, "ifc") > 0


def test_severity_threshold_info_fails_on_unnamed_elements(tmp_path):
    result = _run(tmp_path, "IfcOpenHouse_IFC4.ifc")
    validate(result, "ifc", severity="Warning")  # only Info results: passes
    with pytest.raises(ShaclValidationError) as err:
        validate(result, "ifc", severity="Info")
    assert "an element has no name" in str(err.value)


def test_shacl_violation_names_the_node(tmp_path):
    result = _run(tmp_path, "IfcOpenHouse_IFC4.ifc")
    bad = f"<{BASE}/id/space/x> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <https://w3id.org/bot#Space> .\n"
    with open(result.ntriples_path, "a") as fh:
        fh.write(bad)
    result.triple_count += 1
    with pytest.raises(ShaclValidationError) as err:
        validate(result, "ifc")
    assert f"{BASE}/id/space/x" in str(err.value) and "Violation" in str(err.value)
    assert err.value.http_status == 422


def test_truncated_ifc_is_a_clear_error(tmp_path):
    broken = tmp_path / "broken.ifc"
    broken.write_bytes((DATA / "duplex.ifc").read_bytes()[:600])
    with pytest.raises(ConnectorError) as err:
        get("ifc").run(str(broken), base_iri=BASE, dataset="d", party_id="p", workdir=tmp_path)
    assert err.value.source == str(broken)
    assert "IFC" in err.value.reason or "truncated" in err.value.reason


def test_garbage_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.ifc"
    bad.write_text("this is not STEP\n")
    with pytest.raises(ConnectorError) as err:
        get("ifc").run(str(bad), base_iri=BASE, dataset="d", party_id="p", workdir=tmp_path)
    assert "not a readable IFC" in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConnectorError, match="not found"):
        get("ifc").run(
            str(tmp_path / "x.ifc"), base_iri=BASE, dataset="d", party_id="p", workdir=tmp_path
        )


def test_bad_bag_pand_id_is_refused(tmp_path):
    with pytest.raises(ConnectorError, match="16-digit"):
        _run(tmp_path, "IfcOpenHouse_IFC4.ifc", {"bag_pand": "0221010000330226"})


def test_bag_pand_from_mapping_per_building(tmp_path):
    mapping = tmp_path / "m.toml"
    mapping.write_text('[bag.buildings]\n"3FweM$L1L56fABBUNXlIbJ" = "0221100000311191"\n')
    result = get("ifc").run(
        str(DATA / "IfcOpenHouse_IFC4.ifc"),
        base_iri=BASE,
        dataset="d",
        party_id="p",
        workdir=tmp_path,
        mapping=mapping,
    )
    assert "/id/pand/0221100000311191>" in result.ntriples_path.read_text()


def test_run_connector_validates(tmp_path):
    result = run_connector(
        "ifc",
        str(DATA / "IfcOpenHouse_IFC4.ifc"),
        base_iri=BASE,
        dataset="oh",
        party_id="p",
        workdir=tmp_path / "w",
    )
    assert result.prov.connector == "ifc" and result.prov.party_id == "p"
    assert int(result.prov.extra["shacl_checked_triples"]) == result.triple_count
