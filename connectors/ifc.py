"""IFC (IFC2X3, IFC4) -> BOT topology, BEO element types and QUDT quantity values."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from connectors import ntriples as nt
from connectors.base import ConnectorResult
from connectors.errors import ConnectorError
from connectors.mapping import load_mapping
from connectors.provenance import file_prov, require_file, utc_now

NAME = "ifc"
VERSION = "1.0.0"

BOT = "https://w3id.org/bot#"
BEO = "https://pi.pauwel.be/voc/buildingelement#"
FURN = "http://pi.pauwel.be/voc/furniture#"
PROPS = "https://w3id.org/props#"
DSGO = "https://w3id.org/dsgo-node/def#"
QUDT = "http://qudt.org/schema/qudt/"
UNIT = "http://qudt.org/vocab/unit/"
RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
RDFS_LABEL = "<http://www.w3.org/2000/01/rdf-schema#label>"
BAG_PAND = "https://bag.basisregistraties.overheid.nl/id/pand/"

_SPATIAL = {"IfcSite": "site", "IfcBuilding": "building", "IfcBuildingStorey": "storey"}
_SPATIAL_CLASS = {"site": "Site", "building": "Building", "storey": "Storey", "space": "Space"}
_AGGREGATE_LINKS = {
    ("site", "building"): "hasBuilding",
    ("building", "storey"): "hasStorey",
    ("storey", "space"): "hasSpace",
    ("element", "element"): "aggregates",
}
_BEO = frozenset(
    "Beam BuildingElementProxy Chimney Column Covering CurtainWall Door Footing Member Pile "
    "Plate Railing Ramp RampFlight Roof ShadingDevice Slab Stair StairFlight Wall Window".split()
)
_SKIPPED_ELEMENTS = ("IfcFeatureElement", "IfcVirtualElement")
# IFC measure or quantity type -> (QUDT unit, power of the length scale or None for no scaling)
_MEASURES: dict[str, tuple[str, int | str]] = {
    "IfcLengthMeasure": ("M", "LENGTHUNIT"),
    "IfcPositiveLengthMeasure": ("M", "LENGTHUNIT"),
    "IfcNonNegativeLengthMeasure": ("M", "LENGTHUNIT"),
    "IfcAreaMeasure": ("M2", "AREAUNIT"),
    "IfcVolumeMeasure": ("M3", "VOLUMEUNIT"),
    "IfcQuantityLength": ("M", "LENGTHUNIT"),
    "IfcQuantityArea": ("M2", "AREAUNIT"),
    "IfcQuantityVolume": ("M3", "VOLUMEUNIT"),
    "IfcThermalTransmittanceMeasure": ("W-PER-M2-K", 0),
    "IfcPowerMeasure": ("W", 0),
}
_TEXT = frozenset(("IfcLabel", "IfcText", "IfcIdentifier"))
_BOOLEAN = frozenset(("IfcBoolean", "IfcLogical"))
_LENGTH_ATTRIBUTES = ("OverallHeight", "OverallWidth", "Elevation", "RefElevation")
_PAND_ID = re.compile(r"^\d{4}10\d{10}$")


class IfcConnector:
    """Converts one IFC model; options: ``bag_pand`` (16-digit id), ``progress`` (0/1)."""

    name = NAME
    version = VERSION

    def run(
        self,
        source: str,
        *,
        base_iri: str,
        dataset: str,
        party_id: str,
        mapping: Path | None = None,
        workdir: Path,
        options: Mapping[str, str] | None = None,
    ) -> ConnectorResult:
        """Write the model's topology and values as N-Triples into ``workdir/{dataset}.nt``."""
        started = utc_now()
        path = require_file(source)
        options = options or {}
        model = _open(path)
        pands = _bag_pands(model, mapping, options, source)
        out = Path(workdir) / f"{dataset}.nt"
        with nt.NTriplesWriter(out) as writer:
            _Converter(model, base_iri.rstrip("/"), writer, source).convert(
                pands, progress=_progress(options)
            )
        header = model.header.file_name
        extra = {
            "ifc_schema": model.schema,
            "file_name": str(header.name or ""),
            "authoring_tool": " ".join(
                str(part)
                for part in (header.preprocessor_version, header.originating_system)
                if part
            ),
        }
        prov = file_prov(
            path, connector=NAME, version=VERSION, started=started, party_id=party_id, extra=extra
        )
        return ConnectorResult(prov=prov, ntriples_path=out, triple_count=writer.count)


def _open(path: Path) -> Any:
    import ifcopenshell

    try:
        model = ifcopenshell.open(str(path))
    except (ifcopenshell.Error, NotImplementedError, RuntimeError, ValueError, OSError) as exc:
        raise ConnectorError(str(path), "file", f"not a readable IFC-SPF model: {exc}") from None
    if model.schema not in ("IFC2X3", "IFC4", "IFC4X3", "IFC4X3_ADD2"):
        raise ConnectorError(str(path), "header", f"unsupported IFC schema {model.schema}")
    if not model.by_type("IfcProject"):
        raise ConnectorError(str(path), "data section", "no IfcProject: file is empty or truncated")
    return model


def _progress(options: Mapping[str, str]) -> bool | None:
    value = str(options.get("progress", "auto")).lower()
    return None if value == "auto" else value in ("1", "true", "yes")


def _bag_pands(
    model: Any, mapping: Path | None, options: Mapping[str, str], source: str
) -> dict[str, str]:
    """Building GlobalId -> BAG pand id, from the option or the mapping's [bag] table."""
    data = load_mapping(mapping, required=False)
    bag = data.get("bag", {})
    default = options.get("bag_pand") or bag.get("pand")
    per_building = {str(k): str(v) for k, v in bag.get("buildings", {}).items()}
    result: dict[str, str] = {}
    for building in model.by_type("IfcBuilding"):
        pand = per_building.get(building.GlobalId, default)
        if pand is None:
            continue
        if not _PAND_ID.match(str(pand)):
            raise ConnectorError(
                str(mapping) if mapping else source,
                "bag_pand",
                f"'{pand}' is not a 16-digit BAG pand id (GGGG10NNNNNNNNNN)",
            )
        result[building.GlobalId] = str(pand)
    return result


class _Converter:
    """Walks the model once and writes triples; IRIs come only from GlobalIds."""

    def __init__(self, model: Any, base: str, writer: nt.NTriplesWriter, source: str) -> None:
        import ifcopenshell.util.unit as unit_util

        self.model = model
        self.base = base
        self.w = writer
        self.source = source
        self.kinds: dict[int, str] = {}  # entity id -> kind (site/building/storey/space/element)
        self.iris: dict[int, str] = {}
        length = unit_util.calculate_unit_scale(model, "LENGTHUNIT")
        self.scales: dict[str | int, float] = {"LENGTHUNIT": length, 0: 1.0}
        for unit_type, power in (("AREAUNIT", 2), ("VOLUMEUNIT", 3)):
            assigned = unit_util.get_project_unit(model, unit_type)
            self.scales[unit_type] = (
                unit_util.calculate_unit_scale(model, unit_type) if assigned else length**power
            )

    def convert(self, pands: dict[str, str], *, progress: bool | None) -> None:
        from tqdm import tqdm

        resources = list(self._resources())
        for entity, kind in resources:
            self.kinds[entity.id()] = kind
            self.iris[entity.id()] = nt.iri(f"{self.base}/id/{kind}/{nt.segment(entity.GlobalId)}")
        bar = tqdm(resources, desc="ifc", unit="obj", file=sys.stderr, disable=not progress)
        if progress is None:
            bar = tqdm(resources, desc="ifc", unit="obj", file=sys.stderr, disable=None)
        for entity, kind in bar:
            self._describe(entity, kind)
        for gid, pand in sorted(pands.items()):
            building = self.model.by_guid(gid)
            self.w.triple(self.iris[building.id()], f"<{DSGO}bagPand>", nt.iri(f"{BAG_PAND}{pand}"))
        self._relations()

    def _resources(self) -> Iterator[tuple[Any, str]]:
        for ifc_class, kind in _SPATIAL.items():
            for entity in self.model.by_type(ifc_class):
                yield entity, kind
        for entity in self.model.by_type("IfcSpace"):
            yield entity, "space"
        for entity in self.model.by_type("IfcElement"):
            if not any(entity.is_a(skip) for skip in _SKIPPED_ELEMENTS):
                yield entity, "element"

    def _describe(self, entity: Any, kind: str) -> None:
        s = self.iris[entity.id()]
        w = self.w
        if kind == "element":
            w.triple(s, RDF_TYPE, f"<{BOT}Element>")
            extra = _element_class(entity)
            if extra:
                w.triple(s, RDF_TYPE, f"<{extra}>")
        else:
            w.triple(s, RDF_TYPE, f"<{BOT}{_SPATIAL_CLASS[kind]}>")
        w.triple(s, f"<{PROPS}globalIdIfcRoot>", nt.literal(entity.GlobalId))
        w.triple(s, f"<{DSGO}ifcClass>", nt.literal(entity.is_a()))
        if entity.Name:
            w.triple(s, RDFS_LABEL, nt.literal(entity.Name))
        long_name = getattr(entity, "LongName", None)
        if long_name:
            w.triple(s, f"<{PROPS}longName>", nt.literal(long_name))
        for attribute in _LENGTH_ATTRIBUTES:
            value = getattr(entity, attribute, None) if hasattr(entity, attribute) else None
            if isinstance(value, int | float):
                self._quantity(s, "attribute", attribute, float(value), "IfcLengthMeasure")
        for set_name, prop in self._properties(entity):
            self._property(s, set_name, prop)

    def _properties(self, entity: Any) -> Iterator[tuple[str, Any]]:
        """(set name, property or quantity) of the occurrence, then its type's unless overridden."""
        import ifcopenshell.util.element as element_util

        seen: set[tuple[str, str]] = set()
        definitions = [
            rel.RelatingPropertyDefinition
            for rel in getattr(entity, "IsDefinedBy", ()) or ()
            if rel.is_a("IfcRelDefinesByProperties")
        ]
        own = list(_flatten(definitions))
        element_type = element_util.get_type(entity)
        inherited = list(_flatten(getattr(element_type, "HasPropertySets", None) or ()))
        for group, definition in [(True, d) for d in own] + [(False, d) for d in inherited]:
            members = (
                definition.HasProperties
                if definition.is_a("IfcPropertySet")
                else definition.Quantities
                if definition.is_a("IfcElementQuantity")
                else ()
            )
            for prop in members or ():
                key = (definition.Name or "", prop.Name)
                if key in seen:
                    continue
                if group:
                    seen.add(key)
                yield definition.Name or "", prop

    def _property(self, s: str, set_name: str, prop: Any) -> None:
        if prop.is_a("IfcPhysicalSimpleQuantity"):
            value = prop[3]  # LengthValue / AreaValue / VolumeValue ...
            if prop.is_a() in _MEASURES and isinstance(value, int | float):
                self._quantity(s, set_name, prop.Name, float(value), prop.is_a())
            return
        if not prop.is_a("IfcPropertySingleValue") or prop.NominalValue is None:
            return
        measure = prop.NominalValue.is_a()
        value = prop.NominalValue.wrappedValue
        if measure in _MEASURES and isinstance(value, int | float):
            self._quantity(s, set_name, prop.Name, float(value), measure)
        elif not set_name.startswith("Pset_"):
            return  # text and flags only from buildingSMART standard sets
        elif measure in _BOOLEAN and isinstance(value, bool):
            self.w.triple(s, _predicate(prop.Name), nt.boolean(value))
        elif measure in _TEXT and isinstance(value, str) and value:
            self.w.triple(s, _predicate(prop.Name), nt.literal(value))

    def _quantity(self, s: str, set_name: str, name: str, value: float, measure: str) -> None:
        unit, scale_key = _MEASURES[measure]
        scaled = round(value * self.scales[scale_key], 10)
        qv = f"{s[:-1]}/qv/{nt.segment(set_name)}/{nt.segment(name)}>"
        w = self.w
        w.triple(s, _predicate(name), qv)
        w.triple(qv, RDF_TYPE, f"<{QUDT}QuantityValue>")
        w.triple(qv, f"<{QUDT}numericValue>", nt.double(scaled))
        w.triple(qv, f"<{QUDT}unit>", f"<{UNIT}{unit}>")
        w.triple(qv, f"<{DSGO}propertySet>", nt.literal(set_name))

    def _relations(self) -> None:
        model, w = self.model, self.w
        iris, kinds = self.iris, self.kinds
        for rel in model.by_type("IfcRelAggregates"):
            parent = rel.RelatingObject
            for child in rel.RelatedObjects:
                link = _AGGREGATE_LINKS.get((kinds.get(parent.id()), kinds.get(child.id())))
                if link:
                    w.triple(iris[parent.id()], f"<{BOT}{link}>", iris[child.id()])
        for rel in model.by_type("IfcRelContainedInSpatialStructure"):
            container = iris.get(rel.RelatingStructure.id())
            for element in rel.RelatedElements:
                if container and kinds.get(element.id()) == "element":
                    w.triple(container, f"<{BOT}containsElement>", iris[element.id()])
        pairs: set[tuple[int, int]] = set()
        for rel in model.by_type("IfcRelSpaceBoundary"):
            space, element = rel.RelatingSpace, rel.RelatedBuildingElement
            if space is None or element is None:
                continue
            pair = (space.id(), element.id())
            if kinds.get(pair[0]) == "space" and kinds.get(pair[1]) == "element":
                if pair not in pairs:
                    pairs.add(pair)
                    w.triple(iris[pair[0]], f"<{BOT}adjacentElement>", iris[pair[1]])
        hosts = {
            rel.RelatedOpeningElement.id(): rel.RelatingBuildingElement
            for rel in model.by_type("IfcRelVoidsElement")
        }
        for rel in model.by_type("IfcRelFillsElement"):
            host = hosts.get(rel.RelatingOpeningElement.id())
            filler = rel.RelatedBuildingElement
            if host is not None and host.id() in iris and filler.id() in iris:
                w.triple(iris[host.id()], f"<{BOT}hasSubElement>", iris[filler.id()])


def _flatten(definitions: Any) -> Iterator[Any]:
    for definition in definitions:
        if isinstance(definition, tuple):  # IFC4 IfcPropertySetDefinitionSet
            yield from definition
        elif definition is not None:
            yield definition


def _element_class(entity: Any) -> str | None:
    if entity.is_a("IfcFurnishingElement"):
        return f"{FURN}Furniture"
    name = entity.is_a()[3:]
    for suffix in ("StandardCase", "ElementedCase"):
        name = name.removesuffix(suffix)
    return f"{BEO}{name}" if name in _BEO else None


def _predicate(name: str) -> str:
    """props: predicate from an IFC property name, camelCased: 'GSA BIM Area' -> props:gsaBimArea."""
    words = [w for w in re.split(r"[^0-9A-Za-z]+", name) if w]
    if not words:
        return f"<{PROPS}unnamed>"
    first = words[0].lower() if words[0].isupper() else words[0][0].lower() + words[0][1:]
    rest = "".join(w.capitalize() if w.isupper() else w[0].upper() + w[1:] for w in words[1:])
    return f"<{PROPS}{first}{rest}>"
