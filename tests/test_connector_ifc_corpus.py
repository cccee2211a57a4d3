"""Every real model in tests/data/ifc/ converts, and every count equals IfcOpenShell's own.

The expected numbers are taken here, directly from the model with IfcOpenShell (by_type,
relationship entities, ``ifcopenshell.util.element.get_psets``), not from the connector's code.
Each output must also be free of duplicate triples and pass the FULL SHACL shapes (no sample).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import ifcopenshell
import ifcopenshell.util.element as element_util
import pyoxigraph as ox
import pytest

from connectors import ConnectorError, get
from connectors.shacl import validate

DATA = Path(__file__).parent / "data" / "ifc"
BASE = "http://127.0.0.1:8101"
UNREADABLE = {"KIT-Simple-Road-Test-Web-IFC4x3_RC2.ifc": "IFC4X3_RC2"}
MODELS = sorted(str(p.relative_to(DATA)) for p in DATA.rglob("*.ifc") if p.name not in UNREADABLE)
IFC43 = "https://identifier.buildingsmart.org/uri/buildingsmart/ifc/4.3/class/"
PREFIXES = """
PREFIX bot: <https://w3id.org/bot#>
PREFIX beo: <https://pi.pauwel.be/voc/buildingelement#>
PREFIX props: <https://w3id.org/props#>
PREFIX dsgo: <https://w3id.org/dsgo-node/def#>
PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
PREFIX qudt: <http://qudt.org/schema/qudt/>
"""
ZONE_LINKS = "bot:hasBuilding|bot:hasStorey|bot:hasSpace|bot:containsZone"


class Converted:
    """One model: the IfcOpenShell view, the connector's output and a store holding it."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.ifc = ifcopenshell.open(str(DATA / name))
        self.result = get("ifc").run(
            str(DATA / name),
            base_iri=BASE,
            dataset="corpus",
            party_id="EU.EORI.NL000000001",
            workdir=workdir,
            options={"progress": "0"},
        )
        self.store = ox.Store()
        self.store.bulk_load(path=str(self.result.ntriples_path), format=ox.RdfFormat.N_TRIPLES)

    def by_type(self, ifc_class: str) -> list:
        try:
            return list(self.ifc.by_type(ifc_class))
        except RuntimeError:  # the class is not in this model's schema
            return []

    def count(self, where: str) -> int:
        rows = list(self.store.query(PREFIXES + f"SELECT (COUNT(*) AS ?n) WHERE {{ {where} }}"))
        return int(rows[0]["n"].value)

    def rows(self, select: str) -> list[tuple[str, ...]]:
        return [tuple(term.value for term in row) for row in self.store.query(PREFIXES + select)]


def _mapped_elements(model: Converted) -> list:
    """What the documented mapping makes a bot:Element: IfcElement but virtual ones, alignments."""
    elements = [e for e in model.by_type("IfcElement") if not e.is_a("IfcVirtualElement")]
    return elements + model.by_type("IfcAlignment")


def _mapped_zones(model: Converted) -> list:
    spatial = "IfcSpatialStructureElement" if model.ifc.schema == "IFC2X3" else "IfcSpatialElement"
    return model.by_type(spatial)


@pytest.fixture(scope="module", params=MODELS)
def model(request, tmp_path_factory) -> Converted:
    return Converted(request.param, tmp_path_factory.mktemp("corpus"))


def test_spatial_structure_counts(model):
    assert model.count("?s a bot:Site") == len(model.by_type("IfcSite"))
    assert model.count("?s a bot:Building") == len(model.by_type("IfcBuilding"))
    assert model.count("?s a bot:Storey") == len(model.by_type("IfcBuildingStorey"))
    assert model.count("?s a bot:Space") == len(model.by_type("IfcSpace"))
    facilities = [f for f in model.by_type("IfcFacility") if not f.is_a("IfcBuilding")]
    zones = model.by_type("IfcFacilityPart") + model.by_type("IfcExternalSpatialElement")
    zones += model.by_type("IfcSpatialZone")
    assert model.count("?s a bot:Zone") == len(facilities) + len(zones)
    classes = Counter(
        c for (c,) in model.rows("SELECT ?c WHERE { ?s a bot:Zone ; dsgo:ifcClass ?c }")
    )
    assert classes == Counter(z.is_a() for z in facilities + zones)


def test_elements_per_ifc_class(model):
    expected = Counter(e.is_a() for e in _mapped_elements(model))
    found = Counter(
        c for (c,) in model.rows("SELECT ?c WHERE { ?s a bot:Element ; dsgo:ifcClass ?c }")
    )
    assert found == expected
    assert model.count("?s a bot:Element") == sum(expected.values())


def test_walls_doors_windows_openings(model):
    assert model.count("?s a beo:Wall") == len(model.by_type("IfcWall"))
    assert model.count("?s a beo:Door") == len(model.by_type("IfcDoor"))
    assert model.count("?s a beo:Window") == len(model.by_type("IfcWindow"))
    assert model.count(f"?s a <{IFC43}IfcOpeningElement>") == len(
        model.by_type("IfcOpeningElement")
    )
    hosted = {
        (rel.RelatingBuildingElement.GlobalId, rel.RelatedOpeningElement.GlobalId)
        for rel in model.by_type("IfcRelVoidsElement")
        if not rel.RelatingBuildingElement.is_a("IfcVirtualElement")
    }
    found = model.rows(
        f"""SELECT ?h ?o WHERE {{ ?host bot:hasSubElement ?op . ?op a <{IFC43}IfcOpeningElement> .
            ?host props:globalIdIfcRoot ?h . ?op props:globalIdIfcRoot ?o }}"""
    )
    openings = {o.GlobalId for o in model.by_type("IfcOpeningElement")}
    assert set(found) == {pair for pair in hosted if pair[1] in openings}


def test_containment_and_aggregation(model):
    mapped = {e.id() for e in _mapped_elements(model)}
    zones = {z.id() for z in _mapped_zones(model)}
    contained = {
        (rel.RelatingStructure.GlobalId, e.GlobalId)
        for rel in model.by_type("IfcRelContainedInSpatialStructure")
        if rel.RelatingStructure.id() in zones
        for e in rel.RelatedElements
        if e.id() in mapped
    }
    found = model.rows(
        """SELECT ?z ?e WHERE { ?zone bot:containsElement ?el .
           ?zone props:globalIdIfcRoot ?z . ?el props:globalIdIfcRoot ?e }"""
    )
    assert len(found) == len(set(found)) == len(contained)
    assert set(found) == contained
    aggregated = {
        (rel.RelatingObject.GlobalId, child.GlobalId)
        for rel in model.by_type("IfcRelAggregates")
        if rel.RelatingObject.id() in zones
        for child in rel.RelatedObjects
        if child.id() in zones
    }
    found = model.rows(
        f"""SELECT ?p ?c WHERE {{ ?parent {ZONE_LINKS} ?child .
            ?parent props:globalIdIfcRoot ?p . ?child props:globalIdIfcRoot ?c }}"""
    )
    assert set(found) == aggregated and len(found) == len(aggregated)


def _simple(value) -> bool:
    if isinstance(value, bool | int | float | str):
        return True
    return isinstance(value, list | tuple) and any(
        isinstance(v, bool | int | float | str) for v in value
    )


def test_property_sets_per_object(model):
    expected: dict[tuple[str, str], int] = {}
    for entity in _mapped_elements(model) + _mapped_zones(model):
        for set_name, props in element_util.get_psets(entity).items():
            n = sum(1 for key, value in props.items() if key != "id" and _simple(value))
            if n:
                expected[(entity.GlobalId, set_name)] = n
    found = Counter(
        model.rows(
            """SELECT ?g ?set WHERE { ?s props:globalIdIfcRoot ?g ; ?p ?v .
               ?v dsgo:propertySet ?set }"""
        )
    )
    assert dict(found) == expected
    assert len({g for g, _ in expected}) == len({g for g, _ in found})


def test_no_duplicates_count_is_honest_and_metadata_is_there(model):
    lines = model.result.ntriples_path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(set(lines)) == model.result.triple_count == len(model.store)
    schema = model.ifc.header.file_schema.schema_identifiers[0]
    roots = model.by_type("IfcSite") or [
        z
        for z in _mapped_zones(model)
        if any(r.RelatingObject.is_a("IfcProject") for r in z.Decomposes)
    ]
    assert model.count(f"?s dsgo:ifcSchema '{schema}'") == len(roots)


@pytest.mark.timeout(900)  # pyshacl over the 3 MB model's triples takes minutes on a busy machine
def test_passes_the_full_shapes(model):
    assert validate(model.result, "ifc", max_triples=10**12) == model.result.triple_count


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_unreadable_model_names_its_schema(tmp_path, name):
    with pytest.raises(ConnectorError) as err:
        get("ifc").run(str(DATA / name), base_iri=BASE, dataset="x", party_id="p", workdir=tmp_path)
    assert UNREADABLE[name] in str(err.value) and "not supported" in str(err.value)
