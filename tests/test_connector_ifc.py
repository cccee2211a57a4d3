"""IFC connector on the real duplex (IFC2X3) and IfcOpenHouse (IFC4, millimetres) models.

The whole corpus in tests/data/ifc/ is checked against IfcOpenShell's own counts in
test_connector_ifc_corpus.py; this file checks single behaviours.
"""

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
PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
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
    assert _count(store, "?s a beo:Wall ; props:isExternal/rdf:value true") == 23
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


def test_iris_come_from_dataset_and_globalids_with_dollar_percent_encoded(duplex):
    _, store = duplex
    space = ox.NamedNode(f"{BASE}/id/model/space/0BTBFw6f90Nfh9rP1dlXr2")
    assert (
        _count(store, f'{space} a bot:Space ; props:globalIdIfcRoot "0BTBFw6f90Nfh9rP1dlXr2"') == 1
    )
    wall = ox.NamedNode(f"{BASE}/id/model/element/2O2Fr%24t4X7Zf8NOew3FKau")
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
    assert validate(result, "ifc", max_triples=10**9) == result.triple_count  # the whole output
    assert 0 < validate(result, "ifc") < result.triple_count  # the default: a sample


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
    bad = f"<{BASE}/id/oh/space/x> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <https://w3id.org/bot#Space> .\n"
    with open(result.ntriples_path, "a") as fh:
        fh.write(bad)
    result.triple_count += 1
    with pytest.raises(ShaclValidationError) as err:
        validate(result, "ifc")
    assert f"{BASE}/id/oh/space/x" in str(err.value) and "Violation" in str(err.value)
    assert err.value.code == "shacl_violation"


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


# ---------------------------------------------------------------- issue 13: values, IRIs, metadata


def _triples(result) -> list[str]:
    return result.ntriples_path.read_text(encoding="utf-8").splitlines()


def _open_copy(name: str):
    import ifcopenshell

    return ifcopenshell.open(str(DATA / name))


def _add_quantities(model, product, name: str, lengths: dict[str, float]) -> None:
    import ifcopenshell.guid

    quantities = [
        model.create_entity("IfcQuantityLength", Name=key, LengthValue=value)
        for key, value in lengths.items()
    ]
    qto = model.create_entity(
        "IfcElementQuantity", GlobalId=ifcopenshell.guid.new(), Name=name, Quantities=quantities
    )
    model.create_entity(
        "IfcRelDefinesByProperties",
        GlobalId=ifcopenshell.guid.new(),
        RelatedObjects=[product],
        RelatingPropertyDefinition=qto,
    )


def test_resource_iri_is_scoped_by_dataset():
    from connectors.ifc import resource_iri

    gid = "0BTBFw6f90Nfh9rP1dlXr$"
    assert resource_iri(BASE + "/", "bim", "space", gid) == f"{BASE}/id/bim/space/{gid[:-1]}%24"
    assert resource_iri(BASE, "bim-v2", "element", gid).startswith(f"{BASE}/id/bim-v2/element/")
    with pytest.raises(ValueError, match="kind"):
        resource_iri(BASE, "bim", "wall", gid)
    with pytest.raises(ValueError):
        resource_iri(BASE, "", "space", gid)


def test_models_sharing_globalids_keep_separate_resources(tmp_path, duplex):
    first, _ = duplex  # dataset "model"
    copy = _run(tmp_path, "duplex.ifc", {"bag_pand": "0221100000312938"}, dataset="variant")
    subjects = [{line.split(" ", 1)[0] for line in _triples(r)} for r in (first, copy)]
    assert len(subjects[0]) == len(subjects[1]) > 1000
    assert not subjects[0] & subjects[1]
    store = ox.Store()
    for result, graph in ((first, "model"), (copy, "variant")):
        store.bulk_load(
            path=str(result.ntriples_path),
            format=ox.RdfFormat.N_TRIPLES,
            to_graph=ox.NamedNode(f"{BASE}/dataset/{graph}"),
        )
    rows = list(
        store.query(
            PREFIXES
            + """SELECT ?g ?s WHERE { GRAPH ?g { ?s props:globalIdIfcRoot "0BTBFw6f90Nfh9rP1dlXr2" } }
            ORDER BY ?g"""
        )
    )
    assert [(r["g"].value, r["s"].value) for r in rows] == [
        (f"{BASE}/dataset/model", f"{BASE}/id/model/space/0BTBFw6f90Nfh9rP1dlXr2"),
        (f"{BASE}/dataset/variant", f"{BASE}/id/variant/space/0BTBFw6f90Nfh9rP1dlXr2"),
    ]


def test_revision_under_the_same_dataset_keeps_its_iris(tmp_path, duplex):
    first, _ = duplex
    again = _run(tmp_path, "duplex.ifc", dataset="model")
    own = {line.split(" ", 1)[0] for line in _triples(first)}
    assert {line.split(" ", 1)[0] for line in _triples(again)} == own


def test_property_names_keep_their_letters(tmp_path):
    import ifcopenshell

    name = "Sample_entities.ifc"  # Revit (DEU): Höhe für Berechnung, Linienstärke, ...
    result = _run(tmp_path, name)
    text = result.ntriples_path.read_text(encoding="utf-8")
    predicates = {
        line.split(" ")[1][len("<https://w3id.org/props#") : -1]
        for line in text.splitlines()
        if line.split(" ")[1].startswith("<https://w3id.org/props#")
    }
    names = {p.Name for p in ifcopenshell.open(str(DATA / name)).by_type("IfcProperty")}
    accented = {n for n in names if any(ord(ch) > 127 for ch in n)}
    assert {"Höhe für Berechnung", "Linienstärke"} <= accented
    letters = {"".join(ch for ch in p if ch.isalnum()).lower() for p in predicates}
    for n in accented:  # every letter of the name is in its predicate, in order
        assert "".join(ch for ch in n if ch.isalnum()).lower() in letters, n
    assert "höheFürBerechnung" in predicates
    assert "/qv/Abmessungen/Höhe%20für%20Berechnung>" in text  # IRI keeps the letters too
    store = _store(result)
    assert _count(store, "?s props:höheFürBerechnung/dsgo:propertySet 'Abmessungen'") == 2


def test_text_property_in_two_sets_is_two_values_with_their_set(tmp_path):
    result = _run(tmp_path, "tested_sample_project.ifc")
    store = _store(result)
    door = ox.NamedNode(f"{BASE}/id/model/element/2idC0G3ezCdhA9WVjWe%24%24S")
    rows = store.query(
        PREFIXES
        + f"SELECT ?set ?v WHERE {{ {door} props:reference [ rdf:value ?v ; dsgo:propertySet ?set ] }}"
    )
    assert sorted((r["set"].value, r["v"].value) for r in rows) == [
        ("Pset_DoorCommon", "80 x 210 cm"),
        ("Pset_QuantityTakeOff", "80 x 210 cm"),
    ]


@pytest.mark.parametrize(
    "name", ["tested_sample_project.ifc", "example.ifc", "Sample_entities.ifc"]
)
def test_no_duplicate_triples_and_the_count_is_what_is_stored(tmp_path, name):
    result = _run(tmp_path, name)
    lines = _triples(result)
    assert len(lines) == len(set(lines)) == result.triple_count
    assert len(_store(result)) == result.triple_count


def test_quantities_keep_relative_precision(tmp_path):
    model = _open_copy("IfcOpenHouse_IFC4.ifc")  # millimetres
    door = model.by_type("IfcDoor")[0]
    _add_quantities(
        model, door, "Qto_Precision", {"Tiny": 1.234e-6, "Huge": 123456789.123456, "Short": 0.3}
    )
    path = tmp_path / "precision.ifc"
    model.write(str(path))
    result = get("ifc").run(
        str(path), base_iri=BASE, dataset="p", party_id="p", workdir=tmp_path, options={}
    )
    store = _store(result)
    rows = store.query(
        PREFIXES
        + """SELECT ?name ?v WHERE { ?d a beo:Door ; ?p ?q . ?q dsgo:propertySet "Qto_Precision" ;
             qudt:numericValue ?v ; qudt:unit unit:M . BIND(STRAFTER(STR(?p), "#") AS ?name) }"""
    )
    values = {r["name"].value: float(r["v"].value) for r in rows}
    # mm -> m computed in decimal: no absolute cut at 10 places, no binary noise added
    assert values == {"tiny": 1.234e-9, "huge": 123456.789123456, "short": 0.0003}
    assert validate(result, "ifc") == result.triple_count


def test_model_metadata_on_the_site(duplex):
    _, store = duplex
    rows = list(
        store.query(
            PREFIXES
            + """PREFIX geo: <http://www.w3.org/2003/01/geo/wgs84_pos#>
            PREFIX vcard: <http://www.w3.org/2006/vcard/ns#>
            SELECT ?schema ?app ?lat ?long ?town ?country WHERE {
              ?site a bot:Site ; dsgo:ifcSchema ?schema ; dsgo:authoringApplication ?app ;
                    geo:lat ?lat ; geo:long ?long ; bot:hasBuilding ?b .
              ?b vcard:hasAddress [ vcard:locality ?town ; vcard:country-name ?country ] }"""
        )
    )
    assert len(rows) == 1
    row = rows[0]
    assert row["schema"].value == "IFC2X3"
    assert row["app"].value == "Autodesk Revit Architecture 2011"
    # RefLatitude (41, 52, 27, 840000), RefLongitude (-87, -38, -21, -839999)
    assert float(row["lat"].value) == pytest.approx(41 + 52 / 60 + 27.84 / 3600, abs=1e-12)
    assert float(row["long"].value) == pytest.approx(-(87 + 38 / 60 + 21.839999 / 3600), abs=1e-12)
    assert (row["town"].value, row["country"].value) == ("Chicago", "IL")  # as Revit wrote it


GEOREF_QUERY = """
PREFIX dsgo: <https://w3id.org/dsgo-node/def#>
PREFIX bot: <https://w3id.org/bot#>
SELECT ?site ?crs ?name ?datum ?e ?n ?h ?rot ?scale ?app ?schema WHERE {
  ?site a bot:Site ; dsgo:crs ?crs ; dsgo:crsName ?name ;
        dsgo:eastings ?e ; dsgo:northings ?n ; dsgo:orthogonalHeight ?h ; dsgo:mapRotation ?rot ;
        dsgo:ifcSchema ?schema .
  OPTIONAL { ?site dsgo:verticalDatum ?datum }
  OPTIONAL { ?site dsgo:mapScale ?scale }
  OPTIONAL { ?site dsgo:authoringApplication ?app }
}"""


def test_georeferencing_rd_new_ifc4(tmp_path):
    import math

    model = _open_copy("IfcOpenHouse_IFC4.ifc")
    (context,) = [
        c
        for c in model.by_type("IfcGeometricRepresentationContext")
        if not c.is_a("IfcGeometricRepresentationSubContext")
    ]
    crs = model.create_entity(
        "IfcProjectedCRS", Name="EPSG:28992", Description="Amersfoort / RD New", VerticalDatum="NAP"
    )
    angle = math.radians(30)
    model.create_entity(
        "IfcMapConversion",
        SourceCRS=context,
        TargetCRS=crs,
        Eastings=155000.0,
        Northings=463000.0,
        OrthogonalHeight=1.3092,
        XAxisAbscissa=math.cos(angle),
        XAxisOrdinate=math.sin(angle),
        Scale=0.001,
    )
    path = tmp_path / "rd.ifc"
    model.write(str(path))
    result = get("ifc").run(str(path), base_iri=BASE, dataset="rd", party_id="p", workdir=tmp_path)
    (row,) = list(_store(result).query(GEOREF_QUERY))
    assert row["crs"].value == "http://www.opengis.net/def/crs/EPSG/0/28992"
    assert (row["name"].value, row["datum"].value) == ("EPSG:28992", "NAP")
    assert [float(row[k].value) for k in ("e", "n", "h", "scale")] == [
        155000,
        463000,
        1.3092,
        0.001,
    ]
    assert float(row["rot"].value) == pytest.approx(30.0, abs=1e-9)
    assert row["schema"].value == "IFC4" and row["app"].value.startswith("IfcOpenShell")
    assert validate(result, "ifc") == result.triple_count


def test_georeferencing_ifc2x3_epsets(tmp_path):
    import ifcopenshell.api

    model = _open_copy("duplex.ifc")
    project = model.by_type("IfcProject")[0]
    for name, values in (
        ("ePSet_ProjectedCRS", {"Name": "EPSG:28992", "VerticalDatum": "NAP"}),
        (
            "ePSet_MapConversion",
            {"Eastings": 92370.71, "Northings": 437455.38, "OrthogonalHeight": 1.31},
        ),
    ):
        pset = ifcopenshell.api.run("pset.add_pset", model, product=project, name=name)
        ifcopenshell.api.run("pset.edit_pset", model, pset=pset, properties=values)
    conversion = [p for p in model.by_type("IfcPropertySet") if p.Name == "ePSet_MapConversion"][0]
    for key, value in (("XAxisAbscissa", 0.0), ("XAxisOrdinate", 1.0)):
        conversion.HasProperties = (
            *conversion.HasProperties,
            model.create_entity(
                "IfcPropertySingleValue",
                Name=key,
                NominalValue=model.create_entity("IfcReal", value),
            ),
        )
    path = tmp_path / "duplex-rd.ifc"
    model.write(str(path))
    result = get("ifc").run(str(path), base_iri=BASE, dataset="d", party_id="p", workdir=tmp_path)
    (row,) = list(_store(result).query(GEOREF_QUERY))
    assert row["crs"].value.endswith("/EPSG/0/28992") and row["datum"].value == "NAP"
    assert [float(row[k].value) for k in ("e", "n", "h", "rot")] == [
        92370.71,
        437455.38,
        1.31,
        90.0,
    ]


def test_ifc4x3_railway_signals_are_contained_and_classed(tmp_path):
    result = _run(tmp_path, "ifc4x3/linear-placement-of-signal.ifc")
    store = _store(result)
    ifc = "https://identifier.buildingsmart.org/uri/buildingsmart/ifc/4.3/class/"
    assert (
        _count(
            store,
            f"""?site a bot:Site ; bot:containsZone ?rail . ?rail a bot:Zone , <{ifc}IfcRailway> ;
                dsgo:ifcClass "IfcRailway" ; bot:containsElement ?s .
                ?s a bot:Element , <{ifc}IfcSignal> ; dsgo:positionedAlong ?a .
                ?a dsgo:ifcClass "IfcAlignment" ; rdfs:label "Track alignment" """,
        )
        == 2
    )
    site = "?site a bot:Site ; dsgo:crsName 'EPSG:3065' ; dsgo:ifcSchema 'IFC4X3_ADD2'"
    assert _count(store, site) == 1


def test_ifc4x3_rigid_operation_georeference(tmp_path):
    result = _run(tmp_path, "ifc4x3/geographic-referencing-rigid-operation.ifc")
    store = _store(result)
    rows = list(
        store.query(
            PREFIXES
            + """SELECT ?x ?y ?h WHERE { ?s a bot:Site ; dsgo:crsName "EPSG:4258" ;
              dsgo:firstCoordinate ?x ; dsgo:secondCoordinate ?y ; dsgo:orthogonalHeight ?h }"""
        )
    )
    assert [(float(r["x"].value), float(r["y"].value), float(r["h"].value)) for r in rows] == [
        (14.0902217, 46.3623297, 475.0)
    ]


def test_unreadable_schema_is_named(tmp_path):
    with pytest.raises(ConnectorError) as err:
        _run(tmp_path, "KIT-Simple-Road-Test-Web-IFC4x3_RC2.ifc")
    assert err.value.position == "header FILE_SCHEMA"
    assert "IFC4X3_RC2 is not supported" in err.value.reason
    assert "IFC4X3_ADD2" in err.value.reason


def test_cli_prints_the_schema_error_without_traceback(tmp_path):
    from nodeproc import dsgo, free_port, init_node

    config = init_node(tmp_path / "node", "EU.EORI.NL000000001", "Builder", free_port())
    model = DATA / "KIT-Simple-Road-Test-Web-IFC4x3_RC2.ifc"
    proc = dsgo("connect", "ifc", model, "--dataset", "road", "--config", config, check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("dsgo: error: ") and "IFC4X3_RC2 is not supported" in line


def test_duplicate_globalid_is_refused(tmp_path):
    model = _open_copy("IfcOpenHouse_IFC4.ifc")
    windows = model.by_type("IfcWindow")
    windows[1].GlobalId = windows[0].GlobalId
    path = tmp_path / "dup.ifc"
    model.write(str(path))
    with pytest.raises(ConnectorError, match="share GlobalId"):
        get("ifc").run(str(path), base_iri=BASE, dataset="d", party_id="p", workdir=tmp_path)
