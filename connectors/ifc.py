"""IFC models (IFC2X3, IFC4, IFC4X3_ADD2) -> BOT topology, element classes, property sets.

What is mapped, and to what (``dsgo connect ifc MODEL.ifc --dataset NAME``):

Resources. Every object below becomes ``{base}/id/{dataset}/{kind}/{GlobalId}`` (see
:func:`resource_iri`), so two datasets loaded from models that share GlobalIds keep separate
resources, and a revision loaded again under the same dataset name keeps its IRIs. Each carries
``props:globalIdIfcRoot``, ``dsgo:ifcClass`` (the exact IFC class, e.g. "IfcWallStandardCase"),
``rdfs:label`` (Name), ``props:longName`` (LongName) and ``rdf:type`` the buildingSMART (bSDD)
IFC 4.3 class ``https://identifier.buildingsmart.org/uri/buildingsmart/ifc/4.3/class/IfcWall``
(StandardCase/ElementedCase dropped; an IFC2X3-only class gets its nearest IFC 4.3 supertype).

  IfcSite -> bot:Site (kind site)        IfcBuilding -> bot:Building (building)
  IfcBuildingStorey -> bot:Storey        IfcSpace -> bot:Space (space)
  IfcFacility, IfcBridge, IfcRoad, IfcRailway, IfcMarineFacility -> bot:Zone (facility)
  IfcFacilityPart: IfcBridgePart, IfcRoadPart, IfcRailwayPart, IfcMarinePart,
    IfcFacilityPartCommon -> bot:Zone (facility-part)
  IfcExternalSpatialElement, IfcSpatialZone -> bot:Zone (zone)
  every IfcElement except IfcVirtualElement (so also openings, IfcPavement, IfcKerb,
    IfcSignal, assemblies, parts), and IfcAlignment -> bot:Element (element); also
    beo:{Class} for the BEO classes (Wall, Door, Window, Slab, Beam, Column, ...) and
    furn:Furniture for IfcFurnishingElement.
  Not mapped: IfcProject (its metadata goes on the site, see below), IfcVirtualElement,
  IfcGrid, IfcReferent, IfcAnnotation, type objects (their property sets are inherited).

Topology. IfcRelAggregates -> bot:hasBuilding / bot:hasStorey / bot:hasSpace by the child's kind,
bot:containsZone for facilities, facility parts and zones, bot:hasSubElement between elements;
IfcRelContainedInSpatialStructure -> bot:containsElement; IfcRelReferencedInSpatialStructure ->
bot:hasElement; IfcRelSpaceBoundary -> bot:adjacentElement; IfcRelVoidsElement and
IfcRelProjectsElement -> host bot:hasSubElement opening/projection; IfcRelFillsElement -> host
bot:hasSubElement door/window; IfcRelPositions -> element dsgo:positionedAlong alignment.

Properties. Every property set and quantity set of an object (IfcPropertySet,
IfcElementQuantity, predefined sets such as IfcDoorLiningProperties), its type's sets included
(the occurrence's value wins per set and name), becomes one value node per property:
``?obj props:{camelCasedName} ?v . ?v dsgo:propertySet "Pset_WallCommon"`` and then either
``?v a qudt:QuantityValue ; qudt:numericValue 2.2 ; qudt:unit unit:M`` for lengths, areas,
volumes (converted to m, m2, m3 with the project's units), U-values (W/m2K) and power (W), or
``?v rdf:value "text" | true | 12 | 0.5`` for everything else (other numbers as given, in the
project's units; an enumeration or list gives one rdf:value per item). Names keep their letters
(Höhe -> props:höhe). Bounded, table, reference and complex properties are not mapped.
OverallHeight/Width, Elevation and RefElevation become quantity values with dsgo:ifcAttribute.

Model metadata (on each IfcSite; without a site on the top-level buildings or facilities):
dsgo:ifcSchema, dsgo:authoringApplication, and the georeferencing of IfcMapConversion or
IfcRigidOperation (IFC4+, or the ePSet_MapConversion/ePSet_ProjectedCRS sets in IFC2X3):
dsgo:crsName "EPSG:28992", dsgo:crs <http://www.opengis.net/def/crs/EPSG/0/28992>,
dsgo:verticalDatum, dsgo:eastings, dsgo:northings, dsgo:orthogonalHeight, dsgo:xAxisAbscissa,
dsgo:xAxisOrdinate, dsgo:mapScale, dsgo:mapRotation (degrees), or dsgo:firstCoordinate /
dsgo:secondCoordinate for a rigid operation, all as given. A site's RefLatitude/RefLongitude
become geo:lat/geo:long (WGS 84 degrees); SiteAddress/BuildingAddress become vcard:hasAddress
with vcard:street-address, vcard:locality, vcard:region, vcard:postal-code, vcard:country-name.

Options: ``bag_pand`` (16-digit BAG pand id for the building, or ``[bag]`` in the mapping),
``progress`` (0/1). A schema IfcOpenShell cannot read (e.g. the pre-release IFC4X3_RC2) is a
ConnectorError naming the schema.
"""

from __future__ import annotations

import math
import re
import sys
import unicodedata
from collections.abc import Iterator, Mapping
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from connectors import ntriples as nt
from connectors.base import ConnectorResult
from connectors.errors import ConnectorError, SourceUnreadable, SourceUnsupported
from connectors.fingerprints import file_prov, require_file, utc_now
from connectors.mapping import load_mapping
from vocab.namespaces import (
    BAG_PAND,
    BEO,
    BOT,
    DSGO,
    EPSG,
    FURN,
    GEO,
    IFC_CLASS,
    PROPS,
    QUDT,
    UNIT,
    VCARD,
)

NAME = "ifc"
VERSION = "2.0.0"

RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
RDF_VALUE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#value>"
RDFS_LABEL = "<http://www.w3.org/2000/01/rdf-schema#label>"

SCHEMAS = ("IFC2X3", "IFC4", "IFC4X3_ADD2")
KINDS = ("site", "building", "storey", "space", "facility", "facility-part", "zone", "element")
ZONE_KINDS = frozenset(KINDS[:-1])

# (IFC class, kind) in the order an entity is tested: the first match wins.
_KIND_OF = (
    ("IfcSite", "site"),
    ("IfcBuilding", "building"),
    ("IfcBuildingStorey", "storey"),
    ("IfcSpace", "space"),
    ("IfcFacility", "facility"),
    ("IfcFacilityPart", "facility-part"),
    ("IfcExternalSpatialElement", "zone"),
    ("IfcSpatialZone", "zone"),
    ("IfcVirtualElement", None),
    ("IfcElement", "element"),
    ("IfcAlignment", "element"),
)
_BOT_CLASS = {
    "site": "Site",
    "building": "Building",
    "storey": "Storey",
    "space": "Space",
    "facility": "Zone",
    "facility-part": "Zone",
    "zone": "Zone",
    "element": "Element",
}
# IfcRelAggregates parent -> child, by the child's kind (the parent must be a zone)
_CHILD_LINK = {
    "site": "containsZone",
    "building": "hasBuilding",
    "storey": "hasStorey",
    "space": "hasSpace",
    "facility": "containsZone",
    "facility-part": "containsZone",
    "zone": "containsZone",
}
_BEO = frozenset(
    "Beam BuildingElementProxy Chimney Column Covering CurtainWall Door Footing Member Pile "
    "Plate Railing Ramp RampFlight Roof ShadingDevice Slab Stair StairFlight Wall Window".split()
)
# IFC measure or quantity type -> (QUDT unit, unit type whose project scale applies, or 0)
_MEASURES: dict[str, tuple[str, str | int]] = {
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
_LENGTH_ATTRIBUTES = ("OverallHeight", "OverallWidth", "Elevation", "RefElevation")
_PAND_ID = re.compile(r"^\d{4}10\d{10}$")
_FILE_SCHEMA = re.compile(rb"FILE_SCHEMA\s*\(\s*\(\s*'([^']*)'", re.IGNORECASE)
_EPSG_NAME = re.compile(r"^\s*EPSG\s*:\s*(\d+)\s*$", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+")


def resource_iri(base_iri: str, dataset: str, kind: str, global_id: str) -> str:
    """The IRI of an IFC object in a dataset: ``{base}/id/{dataset}/{kind}/{GlobalId}``.

    ``kind`` is one of :data:`KINDS` (site, building, storey, space, facility, facility-part,
    zone, element); the dataset name and GlobalId are percent-encoded as one path segment each
    ('$' becomes '%24'). Returns the bare IRI (no angle brackets).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown IFC resource kind {kind!r} (one of {', '.join(KINDS)})")
    if not dataset or not global_id:
        raise ValueError("resource_iri needs a dataset name and a GlobalId")
    return f"{base_iri.rstrip('/')}/id/{nt.segment(dataset)}/{kind}/{nt.segment(global_id)}"


def ifc_kind(entity: Any) -> str | None:
    """The resource kind an IFC entity is converted to, or None when it is not converted."""
    for ifc_class, kind in _KIND_OF:
        if entity.is_a(ifc_class):
            return kind
    return None


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
        converter = _Converter(model, base_iri, dataset, source)
        with nt.NTriplesWriter(out) as writer:
            converter.convert(writer, pands, progress=_progress(options))
        extra = {
            "ifc_schema": model.schema_identifier,
            "file_name": str(model.header.file_name.name or ""),
            "authoring_tool": converter.application,
        }
        prov = file_prov(
            path, connector=NAME, version=VERSION, started=started, party_id=party_id, extra=extra
        )
        return ConnectorResult(prov=prov, ntriples_path=out, triple_count=writer.count)


def _header_schema(path: Path) -> str | None:
    """The first schema named in the file's FILE_SCHEMA header entry, if it has one."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return None
    match = _FILE_SCHEMA.search(head)
    return match.group(1).decode("ascii", "replace").strip().upper() if match else None


def _open(path: Path) -> Any:
    import ifcopenshell

    schema = _header_schema(path)
    try:
        model = ifcopenshell.open(str(path))
    except (ifcopenshell.Error, NotImplementedError, RuntimeError, ValueError, OSError) as exc:
        if schema and schema not in SCHEMAS and "schema" in str(exc).lower():
            raise SourceUnsupported(str(path), "header FILE_SCHEMA", _unsupported(schema)) from None
        raise SourceUnreadable(str(path), "file", f"not a readable IFC-SPF model: {exc}") from None
    if model.schema_identifier not in SCHEMAS:
        raise SourceUnsupported(
            str(path), "header FILE_SCHEMA", _unsupported(model.schema_identifier)
        )
    if not model.by_type("IfcProject"):
        raise ConnectorError(str(path), "data section", "no IfcProject: file is empty or truncated")
    return model


def _unsupported(schema: str) -> str:
    hint = (
        "; it is a pre-release of IFC 4.3: export the model again as IFC4X3_ADD2"
        if schema.startswith("IFC4X3_RC") or schema in ("IFC4X1", "IFC4X2")
        else ""
    )
    return f"IFC schema {schema} is not supported (supported: {', '.join(SCHEMAS)}){hint}"


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
    """Walks the model once and writes each triple once; IRIs come from dataset and GlobalId."""

    def __init__(self, model: Any, base: str, dataset: str, source: str) -> None:
        import ifcopenshell.util.unit as unit_util

        self.model = model
        self.base = base
        self.dataset = dataset
        self.source = source
        self.kinds: dict[int, str] = {}  # entity id -> kind
        self.iris: dict[int, str] = {}  # entity id -> <iri>
        length = Decimal(repr(unit_util.calculate_unit_scale(model, "LENGTHUNIT")))
        self.scales: dict[str | int, Decimal] = {"LENGTHUNIT": length, 0: Decimal(1)}
        for unit_type, power in (("AREAUNIT", 2), ("VOLUMEUNIT", 3)):
            assigned = unit_util.get_project_unit(model, unit_type)
            self.scales[unit_type] = (
                Decimal(repr(unit_util.calculate_unit_scale(model, unit_type)))
                if assigned
                else length**power
            )
        self.application = _application(model)
        self._class_cache: dict[str, str] = {}
        self._attr_cache: dict[str, list[tuple[int, str, str]]] = {}

    # ------------------------------------------------------------------ driver
    def convert(
        self, w: nt.NTriplesWriter, pands: dict[str, str], *, progress: bool | None
    ) -> None:
        from tqdm import tqdm

        resources = self._resources()
        seen: dict[str, Any] = {}
        for entity, kind in resources:
            if entity.GlobalId in seen:
                other = seen[entity.GlobalId]
                raise ConnectorError(
                    self.source,
                    f"#{other.id()} and #{entity.id()}",
                    f"two objects share GlobalId {entity.GlobalId} (GlobalIds must be unique)",
                )
            seen[entity.GlobalId] = entity
            self.kinds[entity.id()] = kind
            self.iris[entity.id()] = nt.iri(
                resource_iri(self.base, self.dataset, kind, entity.GlobalId)
            )
        disable = None if progress is None else not progress
        for entity, kind in tqdm(
            resources, desc="ifc", unit="obj", file=sys.stderr, disable=disable
        ):
            lines = self._describe(entity, kind)
            if kind == "building" and entity.GlobalId in pands:
                pand = nt.iri(f"{BAG_PAND}{pands[entity.GlobalId]}")
                lines.append(f"{self.iris[entity.id()]} <{DSGO}bagPand> {pand} .\n")
            _write(w, lines)
        for root in self._roots(resources):
            _write(w, self._metadata(self.iris[root.id()]))
        _write(w, self._relations())

    def _resources(self) -> list[tuple[Any, str]]:
        out = []
        for entity in self.model.by_type("IfcProduct"):
            kind = ifc_kind(entity)
            if kind is not None and entity.GlobalId:
                out.append((entity, kind))
        return out

    # ------------------------------------------------------------------ one object
    def _describe(self, entity: Any, kind: str) -> list[str]:
        s = self.iris[entity.id()]
        lines = [f"{s} {RDF_TYPE} <{BOT}{_BOT_CLASS[kind]}> .\n"]
        if kind == "element":
            extra = _element_class(entity)
            if extra:
                lines.append(f"{s} {RDF_TYPE} <{extra}> .\n")
        lines.append(f"{s} {RDF_TYPE} <{IFC_CLASS}{self._ifc43_class(entity)}> .\n")
        lines.append(f"{s} <{PROPS}globalIdIfcRoot> {nt.literal(entity.GlobalId)} .\n")
        lines.append(f"{s} <{DSGO}ifcClass> {nt.literal(entity.is_a())} .\n")
        if entity.Name:
            lines.append(f"{s} {RDFS_LABEL} {nt.literal(entity.Name)} .\n")
        long_name = getattr(entity, "LongName", None)
        if long_name:
            lines.append(f"{s} <{PROPS}longName> {nt.literal(long_name)} .\n")
        for attribute in _LENGTH_ATTRIBUTES:
            value = getattr(entity, attribute, None) if hasattr(entity, attribute) else None
            if isinstance(value, int | float) and not isinstance(value, bool):
                node = f"{s[:-1]}/attribute/{attribute}>"
                self._quantity(lines, s, node, attribute, value, "IfcLengthMeasure")
                lines.append(f"{node} <{DSGO}ifcAttribute> {nt.literal(attribute)} .\n")
        for set_name, prop_name, values in self._properties(entity):
            self._property(lines, s, set_name, prop_name, values)
        if kind == "site":
            lines += _lat_long(s, entity)
        address = getattr(entity, "SiteAddress", None) or getattr(entity, "BuildingAddress", None)
        if address is not None:
            lines += _address(s, address)
        return lines

    def _ifc43_class(self, entity: Any) -> str:
        """The entity's class as named in IFC 4.3 (bSDD), or its nearest supertype there."""
        name = entity.is_a()
        if name not in self._class_cache:
            self._class_cache[name] = _ifc43_name(self.model.schema_identifier, name)
        return self._class_cache[name]

    def _properties(self, entity: Any) -> Iterator[tuple[str, str, list[tuple[Any, str]]]]:
        """(set name, property name, [(value, IFC measure or quantity type)]) per property.

        The occurrence's sets first, then its type's; the first value of a (set, name) wins.
        """
        import ifcopenshell.util.element as element_util

        definitions = [
            rel.RelatingPropertyDefinition
            for rel in getattr(entity, "IsDefinedBy", ()) or ()
            if rel.is_a("IfcRelDefinesByProperties")
        ]
        element_type = element_util.get_type(entity)
        inherited = getattr(element_type, "HasPropertySets", None) or ()
        seen: set[tuple[str, str]] = set()
        for definition in [*_flatten(definitions), *_flatten(inherited)]:
            set_name = definition.Name or ""
            for prop_name, values in self._members(definition):
                key = (set_name, prop_name)
                if key in seen:
                    continue
                seen.add(key)  # an occurrence's property overrides its type's, even when empty
                if values:
                    yield set_name, prop_name, values

    def _members(self, definition: Any) -> Iterator[tuple[str, list[tuple[Any, str]]]]:
        if definition.is_a("IfcPropertySet"):
            for prop in definition.HasProperties or ():
                yield prop.Name or "", _property_values(prop)
        elif definition.is_a("IfcElementQuantity"):
            for quantity in definition.Quantities or ():
                if quantity.is_a("IfcPhysicalSimpleQuantity") and quantity[3] is not None:
                    yield quantity.Name or "", [(quantity[3], quantity.is_a())]
        else:  # predefined sets (IfcDoorLiningProperties, ...): typed attributes after IfcRoot's
            for index, name, type_name in self._attributes(definition):
                value = definition[index]
                if isinstance(value, bool | int | float | str):
                    yield name, [(value, type_name)]

    def _attributes(self, definition: Any) -> list[tuple[int, str, str]]:
        import ifcopenshell

        cls = definition.is_a()
        if cls not in self._attr_cache:
            schema = ifcopenshell.ifcopenshell_wrapper.schema_by_name(self.model.schema)
            entity = schema.declaration_by_name(cls)
            rows = []
            for index, attribute in enumerate(entity.all_attributes()):
                if index < 4:
                    continue
                kind = attribute.type_of_attribute()
                declared = getattr(kind, "declared_type", None)
                rows.append((index, attribute.name(), declared().name() if declared else ""))
            self._attr_cache[cls] = rows
        return self._attr_cache[cls]

    def _property(
        self, lines: list[str], s: str, set_name: str, name: str, values: list[tuple[Any, str]]
    ) -> None:
        predicate, segment = _names(set_name, name)
        if len(values) == 1 and values[0][1] in _MEASURES:
            node = f"{s[:-1]}/qv/{segment}>"
            self._quantity(lines, s, node, name, values[0][0], values[0][1], predicate)
        else:
            node = f"{s[:-1]}/pv/{segment}>"
            lines.append(f"{s} {predicate} {node} .\n")
            for value, _measure in values:
                lines.append(f"{node} {RDF_VALUE} {_literal(value)} .\n")
        lines.append(f"{node} <{DSGO}propertySet> {nt.literal(set_name)} .\n")

    def _quantity(
        self,
        lines: list[str],
        s: str,
        node: str,
        name: str,
        value: float,
        measure: str,
        predicate: str | None = None,
    ) -> None:
        unit, scale_key = _MEASURES[measure]
        lines.append(f"{s} {predicate or _predicate(name)} {node} .\n")
        lines.append(f"{node} {RDF_TYPE} <{QUDT}QuantityValue> .\n")
        lines.append(
            f"{node} <{QUDT}numericValue> {nt.double(_scaled(value, self.scales[scale_key]))} .\n"
        )
        lines.append(f"{node} <{QUDT}unit> <{UNIT}{unit}> .\n")

    # ------------------------------------------------------------------ model metadata
    def _roots(self, resources: list[tuple[Any, str]]) -> list[Any]:
        """Where model metadata goes: every site, else the zones directly under the project."""
        sites = [entity for entity, kind in resources if kind == "site"]
        if sites:
            return sites
        roots = []
        for entity, kind in resources:
            if kind in ZONE_KINDS and any(
                rel.RelatingObject.is_a("IfcProject") for rel in entity.Decomposes or ()
            ):
                roots.append(entity)
        return roots

    def _metadata(self, s: str) -> list[str]:
        lines = [f"{s} <{DSGO}ifcSchema> {nt.literal(self.model.schema_identifier)} .\n"]
        if self.application:
            lines.append(f"{s} <{DSGO}authoringApplication> {nt.literal(self.application)} .\n")
        for predicate, value in _georeference(self.model):
            lines.append(f"{s} <{DSGO}{predicate}> {value} .\n")
        return lines

    # ------------------------------------------------------------------ relations
    def _relations(self) -> list[str]:
        model, iris, kinds = self.model, self.iris, self.kinds
        lines: list[str] = []

        def link(a: Any, predicate: str, b: Any) -> None:
            if a is not None and b is not None and a.id() in iris and b.id() in iris:
                lines.append(f"{iris[a.id()]} {predicate} {iris[b.id()]} .\n")

        for rel in model.by_type("IfcRelAggregates"):
            parent = rel.RelatingObject
            parent_kind = kinds.get(parent.id())
            for child in rel.RelatedObjects:
                child_kind = kinds.get(child.id())
                if parent_kind in ZONE_KINDS and child_kind in _CHILD_LINK:
                    link(parent, f"<{BOT}{_CHILD_LINK[child_kind]}>", child)
                elif parent_kind == child_kind == "element":
                    link(parent, f"<{BOT}hasSubElement>", child)
        for rel in model.by_type("IfcRelContainedInSpatialStructure"):
            if kinds.get(rel.RelatingStructure.id()) in ZONE_KINDS:
                for element in rel.RelatedElements:
                    if kinds.get(element.id()) == "element":
                        link(rel.RelatingStructure, f"<{BOT}containsElement>", element)
        for rel in model.by_type("IfcRelReferencedInSpatialStructure"):
            if kinds.get(rel.RelatingStructure.id()) in ZONE_KINDS:
                for element in rel.RelatedElements:
                    if kinds.get(element.id()) == "element":
                        link(rel.RelatingStructure, f"<{BOT}hasElement>", element)
        for rel in model.by_type("IfcRelSpaceBoundary"):
            space, element = rel.RelatingSpace, rel.RelatedBuildingElement
            if space is not None and element is not None:
                if kinds.get(space.id()) in ZONE_KINDS and kinds.get(element.id()) == "element":
                    link(space, f"<{BOT}adjacentElement>", element)
        hosts = {}
        for rel in model.by_type("IfcRelVoidsElement"):
            hosts[rel.RelatedOpeningElement.id()] = rel.RelatingBuildingElement
            link(rel.RelatingBuildingElement, f"<{BOT}hasSubElement>", rel.RelatedOpeningElement)
        for rel in model.by_type("IfcRelProjectsElement"):
            link(rel.RelatingElement, f"<{BOT}hasSubElement>", rel.RelatedFeatureElement)
        for rel in model.by_type("IfcRelFillsElement"):
            host = hosts.get(rel.RelatingOpeningElement.id())
            link(host, f"<{BOT}hasSubElement>", rel.RelatedBuildingElement)
        if model.schema_identifier == "IFC4X3_ADD2":
            for rel in model.by_type("IfcRelPositions"):
                for product in rel.RelatedProducts:
                    if kinds.get(product.id()) == "element":
                        link(product, f"<{DSGO}positionedAlong>", rel.RelatingPositioningElement)
        return lines


def _write(w: nt.NTriplesWriter, lines: list[str]) -> None:
    """Write lines once each (in first-seen order), so the count is the number of triples."""
    unique = dict.fromkeys(lines)
    w.lines("".join(unique), len(unique))


def _flatten(definitions: Any) -> Iterator[Any]:
    for definition in definitions:
        if isinstance(definition, tuple):  # IFC4 IfcPropertySetDefinitionSet
            yield from definition
        elif definition is not None:
            yield definition


def _property_values(prop: Any) -> list[tuple[Any, str]]:
    """(value, measure type) of a property with simple values; [] for the kinds not mapped."""
    if prop.is_a("IfcPropertySingleValue"):
        items = [prop.NominalValue]
    elif prop.is_a("IfcPropertyEnumeratedValue"):
        items = list(prop.EnumerationValues or ())
    elif prop.is_a("IfcPropertyListValue"):
        items = list(prop.ListValues or ())
    else:
        return []
    return [
        (item.wrappedValue, item.is_a())
        for item in items
        if item is not None and isinstance(item.wrappedValue, bool | int | float | str)
    ]


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return nt.boolean(value)
    if isinstance(value, int):
        return nt.integer(value)
    if isinstance(value, float):
        return nt.double(value)
    return nt.literal(str(value))


def _scaled(value: float, scale: Decimal) -> float:
    """The value times the unit scale, computed in decimal: 2200 mm -> 2.2 m, 1e-12 stays."""
    if scale == 1 or not math.isfinite(value):
        return float(value)
    return float(Decimal(repr(float(value))) * scale)


def _ifc43_name(schema: str, name: str) -> str:
    import ifcopenshell

    target = ifcopenshell.ifcopenshell_wrapper.schema_by_name("IFC4X3_ADD2")
    source = ifcopenshell.ifcopenshell_wrapper.schema_by_name(schema)
    declaration = source.declaration_by_name(name)
    while declaration is not None:
        candidate = declaration.name()
        for suffix in ("StandardCase", "ElementedCase"):
            candidate = candidate.removesuffix(suffix)
        try:
            target.declaration_by_name(candidate)
            return candidate
        except (RuntimeError, IndexError):
            declaration = declaration.supertype()
    return "IfcProduct"


def _element_class(entity: Any) -> str | None:
    if entity.is_a("IfcFurnishingElement"):
        return f"{FURN}Furniture"
    name = entity.is_a()[3:]
    for suffix in ("StandardCase", "ElementedCase"):
        name = name.removesuffix(suffix)
    return f"{BEO}{name}" if name in _BEO else None


@lru_cache(maxsize=65536)
def _names(set_name: str, name: str) -> tuple[str, str]:
    """(predicate, 'set/name' IRI path) of a property; names repeat, so this is cached."""
    return _predicate(name), f"{nt.iri_segment(set_name) or '-'}/{nt.iri_segment(name) or '-'}"


def _predicate(name: str) -> str:
    """props: predicate from a property name, camelCased, letters kept: 'Höhe' -> props:höhe."""
    words = _WORD.findall(unicodedata.normalize("NFC", name))
    if not words:
        return f"<{PROPS}unnamed>"
    first = words[0].lower() if words[0].isupper() else words[0][0].lower() + words[0][1:]
    rest = "".join(w.capitalize() if w.isupper() else w[0].upper() + w[1:] for w in words[1:])
    return f"<{PROPS}{first}{rest}>"


def _application(model: Any) -> str:
    """The authoring application: the project's owner-history application, else the header's."""
    apps = []
    for project in model.by_type("IfcProject"):
        history = project.OwnerHistory
        if history is not None and history.OwningApplication is not None:
            apps.append(history.OwningApplication)
    apps += model.by_type("IfcApplication")
    for app in apps:
        name = (app.ApplicationFullName or "").strip()
        version = (app.Version or "").strip()
        if name and name.lower() != "not defined":
            return name if not version or version in name else f"{name} {version}"
    return str(model.header.file_name.originating_system or "").strip()


def _lat_long(s: str, site: Any) -> list[str]:
    lines = []
    for attribute, predicate in (("RefLatitude", "lat"), ("RefLongitude", "long")):
        value = getattr(site, attribute, None)
        if value:
            degrees = _compound_angle(value)
            if degrees is not None:
                lines.append(f"{s} <{GEO}{predicate}> {nt.double(degrees)} .\n")
    return lines


def _compound_angle(parts: Any) -> float | None:
    """IfcCompoundPlaneAngleMeasure (degrees, minutes, seconds, millionths) -> decimal degrees."""
    weights = (Decimal(1), Decimal(60), Decimal(3600), Decimal(3_600_000_000))
    try:
        total = sum(Decimal(int(p)) / w for p, w in zip(parts, weights, strict=False))
    except (TypeError, ValueError):
        return None
    return float(total)


def _address(s: str, address: Any) -> list[str]:
    if not address.is_a("IfcPostalAddress"):
        return []
    node = f"{s[:-1]}/address>"
    fields = (
        ("street-address", ", ".join(line for line in address.AddressLines or () if line)),
        ("locality", address.Town),
        ("region", address.Region),
        ("postal-code", address.PostalCode),
        ("country-name", address.Country),
    )
    lines = [f"{node} <{VCARD}{p}> {nt.literal(v)} .\n" for p, v in fields if v]
    if not lines:
        return []
    return [
        f"{s} <{VCARD}hasAddress> {node} .\n",
        f"{node} {RDF_TYPE} <{VCARD}Address> .\n",
        *lines,
    ]


def _georeference(model: Any) -> list[tuple[str, str]]:
    """(dsgo local name, N-Triples object) of the model's georeferencing, values as given."""
    if model.schema_identifier == "IFC2X3":
        return _georeference_2x3(model)
    operations = sorted(
        (op for op in model.by_type("IfcCoordinateOperation") if op.TargetCRS is not None),
        key=lambda op: (not _is_model_context(op.SourceCRS), op.id()),
    )
    if not operations:
        return []
    op = operations[0]
    out = _crs(op.TargetCRS.Name, getattr(op.TargetCRS, "VerticalDatum", None))
    if op.is_a("IfcMapConversion"):
        attributes = (
            ("eastings", op.Eastings),
            ("northings", op.Northings),
            ("orthogonalHeight", op.OrthogonalHeight),
            ("xAxisAbscissa", op.XAxisAbscissa),
            ("xAxisOrdinate", op.XAxisOrdinate),
            ("mapScale", op.Scale),
        )
        out += [(p, nt.double(float(v))) for p, v in attributes if v is not None]
        out += _rotation(op.XAxisAbscissa, op.XAxisOrdinate)
    elif op.is_a("IfcRigidOperation"):
        for predicate, value in (
            ("firstCoordinate", op.FirstCoordinate),
            ("secondCoordinate", op.SecondCoordinate),
        ):
            if value is not None:
                out.append((predicate, nt.double(float(value.wrappedValue))))
        if op.Height is not None:
            out.append(("orthogonalHeight", nt.double(float(op.Height))))
    return out


def _is_model_context(context: Any) -> bool:
    return bool(
        context is not None
        and context.is_a("IfcGeometricRepresentationContext")
        and not context.is_a("IfcGeometricRepresentationSubContext")
        and (context.ContextType or "").lower() == "model"
    )


def _crs(name: str | None, vertical: str | None) -> list[tuple[str, str]]:
    out = []
    if name:
        out.append(("crsName", nt.literal(name)))
        match = _EPSG_NAME.match(name)
        if match:
            out.append(("crs", nt.iri(f"{EPSG}{match.group(1)}")))
    if vertical:
        out.append(("verticalDatum", nt.literal(vertical)))
    return out


def _rotation(abscissa: float | None, ordinate: float | None) -> list[tuple[str, str]]:
    """The angle from the easting axis to the model's x-axis, counter-clockwise, in degrees."""
    if abscissa is None or ordinate is None or (abscissa == 0 and ordinate == 0):
        return []
    return [("mapRotation", nt.double(math.degrees(math.atan2(ordinate, abscissa))))]


def _georeference_2x3(model: Any) -> list[tuple[str, str]]:
    """IFC2X3 georeferencing by the ePSet_MapConversion / ePSet_ProjectedCRS property sets."""
    import ifcopenshell.util.element as element_util

    conversion: dict[str, Any] = {}
    crs: dict[str, Any] = {}
    for entity in [*model.by_type("IfcProject"), *model.by_type("IfcSite")]:
        for name, values in element_util.get_psets(entity).items():
            lowered = name.lower()
            if lowered == "epset_mapconversion" and not conversion:
                conversion = values
            elif lowered == "epset_projectedcrs" and not crs:
                crs = values
    out = _crs(crs.get("Name"), crs.get("VerticalDatum"))
    for predicate, key in (
        ("eastings", "Eastings"),
        ("northings", "Northings"),
        ("orthogonalHeight", "OrthogonalHeight"),
        ("xAxisAbscissa", "XAxisAbscissa"),
        ("xAxisOrdinate", "XAxisOrdinate"),
        ("mapScale", "Scale"),
    ):
        if isinstance(conversion.get(key), int | float):
            out.append((predicate, nt.double(float(conversion[key]))))
    abscissa, ordinate = conversion.get("XAxisAbscissa"), conversion.get("XAxisOrdinate")
    if isinstance(abscissa, int | float) and isinstance(ordinate, int | float):
        out += _rotation(abscissa, ordinate)
    return out
