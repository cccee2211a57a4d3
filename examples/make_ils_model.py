"""Build an IFC4 model that carries the ILS Omgevingsvergunning's information, then fix some of it.

    python examples/make_ils_model.py build OUT.ifc [--source examples/data/duplex.ifc]
    python examples/make_ils_model.py fix IN.ifc OUT.ifc
    python examples/make_ils_model.py check MODEL.ifc [--ids DIR_OR_FILE ...]

The source is a real model: the buildingSMART duplex (Revit 2011, IFC2X3, `examples/data/duplex.ifc`,
public sample file; see `examples/data/README.md`). The ILS targets IFC4 and IFC4X3, so `build`
first migrates it to IFC4 with IfcOpenShell's own schema migrator (every entity is migrated;
the script checks that the counts of the spatial structure, elements and property sets are equal
before and after). Then it adds what a builder who has read the ILS would add, with a few of the
mistakes such a builder makes (marked MISTAKE below), so that the check shows both passes and
failures. `fix` repairs the mistakes a builder can repair in the file; what stays failing is
either the published IDS's own error (9.02, 9.10b) or needs the authoring tool (9.06a).

Every change is a numbered step in this file and is printed as a log line: step, what, how many.
Values the source model cannot know (addresses, coordinates, the investment estimate, ids) are
placeholders; each object carrying one gets the property set `DSGO_Placeholders` naming them,
like the `BM13_Placeholders` set of the ILS's own sample models.

The ILS classifications of spaces below are an illustration for a permit-check demo, not an
assessment of the duplex under the Bbl.

GlobalIds of new objects are derived from fixed names (uuid5) and the header time stamp is fixed,
so the same source gives byte-identical output and the check report is reproducible.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ifcopenshell
import ifcopenshell.api
import ifcopenshell.guid
import ifcopenshell.util.element
from ifcopenshell.util.schema import Migrator

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "examples" / "data" / "duplex.ifc"
ILS_IDS = ROOT / "tests" / "data" / "ids" / "dsgo-ils"
TIME_STAMP = "2026-10-01T00:00:00"
BSDD = "https://identifier.buildingsmart.org/uri/bsnl/Omgevingswet-Ruimten/0.3.0/class/"
SYSTEM = "Omgevingswet-Ruimten"
_NS = uuid.UUID("8f0b6f4e-2a53-4d0c-9a8e-1c0f3b7d9e21")

# duplex space LongName -> ILS ObjectType (illustrative, see the module docstring)
SPACE_TYPES = {
    "Living Room": "Verblijfsruimte",
    "Kitchen": "Verblijfsruimte",
    "Bedroom 1": "Verblijfsruimte",
    "Bedroom 2": "Verblijfsruimte",
    "Bathroom 1": "Functieruimte",
    "Bathroom 2": "Functieruimte",
    "Utility": "Functieruimte",
    "Foyer": "Restruimte",
    "Hallway": "Restruimte",
    "Stair": "Restruimte",
    "Room": "Restruimte",
}
_NOTE = re.compile(
    r"(?P<kind>Unable to find equivalent attribute of|Failed to generate default value for) "
    r"(?P<attr>\w+) (?:to migrate )?(?:from|on) #\d+=(?P<cls>\w+)\("
)
STOREY_NAMES = {"Level 1": "00 begane grond", "Level 2": "01 eerste verdieping"}


class Log:
    """Numbered steps, printed as they happen and kept for the caller."""

    def __init__(self, quiet: bool = False) -> None:
        self.rows: list[tuple[str, str, int]] = []
        self.quiet = quiet

    def __call__(self, step: str, what: str, count: int = 1) -> None:
        self.rows.append((step, what, count))
        if not self.quiet:
            print(f"  [{step}] {what}" + (f"  ({count}x)" if count != 1 else ""))


def guid(key: str) -> str:
    """A GlobalId derived from a fixed key: the same on every run."""
    return ifcopenshell.guid.compress(uuid.uuid5(_NS, key).hex)


# ---------------------------------------------------------------- build


def migrate(source: Path, log: Log) -> ifcopenshell.file:
    """Step 0: IFC2X3 -> IFC4 with IfcOpenShell's Migrator; counts checked, notes summarised."""
    old = ifcopenshell.open(str(source))
    if old.schema == "IFC4":
        log("0", f"{source.name} is IFC4 already: no migration")
        return old
    new = ifcopenshell.file(schema="IFC4")
    migrator = Migrator()
    notes = io.StringIO()
    with contextlib.redirect_stdout(notes):
        migrator.preprocess(old, new)
        for entity in old:
            migrator.migrate(entity, new)
    log("0", f"migrated {source.name} from {old.schema} to IFC4 ({len(list(new))} entities)")
    kinds: Counter[str] = Counter()
    for line in notes.getvalue().splitlines():
        found = _NOTE.match(line)
        if found and found["kind"] == "Unable to find equivalent attribute of":
            what = f"{found['cls']}.{found['attr']}: no IFC2X3 source, left unset (optional)"
            kinds[what] += 1
        elif found:
            kinds[f"{found['cls']}.{found['attr']}: no value in the source, left unset"] += 1
        elif line.strip():
            kinds[line.strip()[:80]] += 1
    for what, count in sorted(kinds.items()):
        log("0", f"migration note: {what}", count)
    for ifc_class in (
        "IfcSite",
        "IfcBuilding",
        "IfcBuildingStorey",
        "IfcSpace",
        "IfcElement",
        "IfcPropertySet",
        "IfcPropertySingleValue",
        "IfcRelAggregates",
        "IfcRelContainedInSpatialStructure",
        "IfcRelDefinesByProperties",
    ):
        before, after = len(old.by_type(ifc_class)), len(new.by_type(ifc_class))
        if before != after:
            raise SystemExit(f"migration changed the number of {ifc_class}: {before} -> {after}")
    log("0", "counts of site, building, storeys, spaces, elements, property sets unchanged")
    return new


def _pset(model: ifcopenshell.file, product: Any, name: str, values: dict[str, Any]) -> Any:
    """Add or extend a property set; plain values typed by IfcOpenShell's pset templates."""
    pset = ifcopenshell.util.element.get_pset(product, name)
    entity = model.by_id(pset["id"]) if pset else None
    if entity is None:
        entity = ifcopenshell.api.run("pset.add_pset", model, product=product, name=name)
    ifcopenshell.api.run("pset.edit_pset", model, pset=entity, properties=values)
    return entity


def _placeholders(model: ifcopenshell.file, product: Any, names: list[str], note: str) -> None:
    existing = ifcopenshell.util.element.get_pset(product, "DSGO_Placeholders") or {}
    listed = sorted(set(str(existing.get("Properties", "")).split(", ")) - {""} | set(names))
    _pset(
        model,
        product,
        "DSGO_Placeholders",
        {"Properties": ", ".join(listed), "Note": note},
    )


def _classify(model: ifcopenshell.file, system: Any, products: list[Any], klass: str) -> None:
    """Step 7: one IfcClassificationReference per ILS class, with its bSDD IRI as Location."""
    refs = [
        r
        for r in model.by_type("IfcClassificationReference")
        if r.Identification == klass and r.ReferencedSource == system
    ]
    if refs:
        ref = refs[0]
        ifcopenshell.api.run(
            "classification.add_reference", model, products=products, reference=ref
        )
    else:
        ref = ifcopenshell.api.run(
            "classification.add_reference",
            model,
            products=products,
            identification=klass,
            name=klass,
            classification=system,
        )
        ref.Location = BSDD + klass


def build(source: Path, out: Path, log: Log) -> None:
    """Write the ILS model (with its mistakes) from the source model."""
    model = migrate(source, log)
    first_new = _next_id(model)
    project = model.by_type("IfcProject")[0]
    site = model.by_type("IfcSite")[0]
    building = model.by_type("IfcBuilding")[0]
    context = next(
        c
        for c in model.by_type("IfcGeometricRepresentationContext")
        if c.ContextType == "Model" and not c.is_a("IfcGeometricRepresentationSubContext")
    )

    # 1. 9.02 Project: a description, the project type and an investment estimate.
    project.Description = "Nieuwbouw van twee woningen (duplex), voorbeeldmodel"
    log("1", "IfcProject.Description set")
    # MISTAKE: Phase keeps Revit's default "Project Status", not a phase of the ILS list.
    log("1", f"IfcProject.Phase left as {project.Phase!r} (MISTAKE: not an ILS phase)")
    money = model.createIfcMonetaryUnit("EUR")
    units = project.UnitsInContext
    units.Units = list(units.Units) + [money]
    log("1", "IfcMonetaryUnit EUR added to the project's units")
    pset = _pset(model, project, "Pset_ProjectCommon", {"ProjectType": "NEWBUILD"})
    # IfcMonetaryMeasure is the schema's type for this property; the published 9.02 asks for
    # IFCCOSTITEMTYPEENUM (a known error of the IDS), so 9.02 fails on it, as published.
    pset.HasProperties = list(pset.HasProperties) + [
        model.createIfcPropertySingleValue(
            "ProjectInvestmentEstimate", None, model.createIfcMonetaryMeasure(10_000_000.0), None
        )
    ]
    _placeholders(
        model, project, ["ProjectInvestmentEstimate"], "placeholder value, as in the ILS samples"
    )
    log("1", "Pset_ProjectCommon: ProjectType NEWBUILD, ProjectInvestmentEstimate 10,000,000 EUR")

    # 2. 9.01a Georeferentie: an IfcMapConversion to RD New (EPSG:28992) + NAP (EPSG:5709).
    crs = model.createIfcProjectedCRS(Name="EPSG:28992", VerticalDatum="EPSG:5709")
    model.createIfcMapConversion(
        SourceCRS=context,
        TargetCRS=crs,
        Eastings=155000.0,  # placeholder: the RD grid's reference point (Amersfoort)
        Northings=463000.0,
        OrthogonalHeight=0.0,
        XAxisAbscissa=1.0,
        XAxisOrdinate=0.0,
        # MISTAKE: Scale left out (the IFC default is 1, the ILS asks for it explicitly)
    )
    _placeholders(model, project, ["Eastings", "Northings"], "placeholder map position")
    log("2", "IfcMapConversion + IfcProjectedCRS EPSG:28992 / EPSG:5709 (MISTAKE: no Scale)")

    # 3. 9.03a Perceel: the site is the plot.
    site.ObjectType = "Perceel"
    log("3", "IfcSite.ObjectType = Perceel")
    # MISTAKE: Pset_LandRegistration added with a LandID but without IsPermanentID.
    _pset(model, site, "Pset_LandRegistration", {"LandID": "ONBEKEND"})
    _placeholders(model, site, ["LandID"], "kadastrale aanduiding not known to the model")
    log("3", "Pset_LandRegistration.LandID = ONBEKEND (MISTAKE: no IsPermanentID)")

    # 4. 9.05a Gebouw: name, type, BAG-like id (placeholder) and use.
    building.Name = "Duplex"
    building.ObjectType = "Gebouw"
    _pset(
        model,
        building,
        "Pset_BuildingCommon",
        {"BuildingID": "ONBEKEND", "IsPermanentID": False},
    )
    _pset(
        model,
        building,
        "Pset_BuildingUse",
        {"MarketCategory": "Woongebouw", "MarketSubCategory": "Duplexwoning"},
    )
    _placeholders(model, building, ["BuildingID"], "no BAG pand id before the permit")
    log("4", "IfcBuilding: Name, ObjectType Gebouw, Pset_BuildingCommon, Pset_BuildingUse")

    # 5. 9.06a Bouwlaag: ObjectType and Dutch storey names; EntranceLevel on every storey.
    storeys = model.by_type("IfcBuildingStorey")
    for storey in storeys:
        storey.ObjectType = "Bouwlaag"
        if storey.Name in STOREY_NAMES:
            storey.Name = STOREY_NAMES[storey.Name]
        _pset(
            model,
            storey,
            "Pset_BuildingStoreyCommon",
            {"EntranceLevel": storey.Name == "00 begane grond"},
        )
    log("5", "IfcBuildingStorey.ObjectType = Bouwlaag, Pset_BuildingStoreyCommon", len(storeys))
    log("5", "storeys renamed: " + ", ".join(f"{k} -> {v}" for k, v in STOREY_NAMES.items()))
    # MISTAKE (needs the authoring tool): the reference levels T/FDN and Roof are exported as
    # IfcBuildingStorey; the ILS checks every storey's name, so these two fail 9.06a.
    log("5", "reference levels 'T/FDN' and 'Roof' left as storeys (MISTAKE: fail 9.06a)")

    # 6. 9.12a/b/d: spaces get an ILS ObjectType, USERDEFINED and a determination method.
    system = ifcopenshell.api.run("classification.add_classification", model, classification=SYSTEM)
    system.Source = "bSDD bsnl/Omgevingswet-Ruimten 0.3.0"
    system.Location = BSDD.removesuffix("class/")
    by_type: dict[str, list[Any]] = {}
    units_of: dict[str, list[Any]] = {"A": [], "B": []}
    typed = 0
    for space in sorted(model.by_type("IfcSpace"), key=lambda s: s.Name or ""):
        ils = SPACE_TYPES.get(space.LongName or "")
        if ils is None:
            log("6", f"space {space.Name} ({space.LongName}) left without an ILS type")
            continue
        space.ObjectType = ils
        space.PredefinedType = "USERDEFINED"  # the ILS modelling rule when ObjectType is used
        # MISTAKE: the bedrooms' determination method is written "Netto-Inhoud" (the ILS
        # spelling is "Netto Inhoud", the same slip as the ILS samples' "Bruto-Inhoud").
        space.Description = (
            "Netto-Inhoud" if space.LongName.startswith("Bedroom") else "Netto Inhoud"
        )
        by_type.setdefault(ils, []).append(space)
        units_of.setdefault((space.Name or "?")[0], []).append(space)
        typed += 1
    log("6", "IfcSpace.ObjectType / PredefinedType USERDEFINED / Description", typed)
    for ils, spaces in sorted(by_type.items()):
        log("6", f"{ils}: " + ", ".join(s.Name for s in spaces), len(spaces))
    log("6", "bedrooms' Description = 'Netto-Inhoud' (MISTAKE: fail 9.12b)", 4)

    # 7. Classification Omgevingswet-Ruimten on project, site, building, storeys, spaces, zones.
    _classify(model, system, [project], "Project")
    _classify(model, system, [site], "Perceel")
    _classify(model, system, [building], "Gebouw")
    _classify(model, system, storeys, "Bouwlaag")
    for ils, spaces in sorted(by_type.items()):
        _classify(model, system, spaces, ils)
    log(
        "7",
        "IfcClassification Omgevingswet-Ruimten; references with bSDD IRIs on project, "
        "site, building, storeys, spaces (and the zones of step 8)",
    )

    # 8. Zones per dwelling (A, B): Gebruiksfunctie, Gebruikseenheid, Verblijfsgebied,
    #    Brandcompartiment; each groups the dwelling's spaces (Verblijfsgebied: its
    #    verblijfsruimten only).
    zones = 0
    for unit in ("A", "B"):
        spaces = units_of[unit]
        rooms = [s for s in spaces if s.ObjectType == "Verblijfsruimte"]
        for ils, name, description, members in (
            ("Gebruiksfunctie", "Woonfunctie", "Gebruiksinhoud", spaces),
            ("Gebruikseenheid", f"Woning {unit}", "Bruto Inhoud", spaces),
            ("Verblijfsgebied", f"Verblijfsgebied woning {unit}", "Netto Inhoud", rooms),
            ("Brandcompartiment", f"Brandcompartiment woning {unit}", "Bruto Inhoud", spaces),
        ):
            zone = ifcopenshell.api.run("root.create_entity", model, ifc_class="IfcZone", name=name)
            zone.ObjectType = ils
            zone.Description = description
            ifcopenshell.api.run("group.assign_group", model, products=members, group=zone)
            _classify(model, system, [zone], ils)
            if ils == "Verblijfsgebied":
                # The published 9.10b pattern starts with the literal text "matching the
                # pattern ", so "Woonfunctie" cannot match it (a known error of the IDS).
                _pset(
                    model,
                    zone,
                    "Pset_SpaceOccupancyRequirements",
                    {"OccupancyType": "Woonfunctie"},
                )
            zones += 1
    log(
        "8",
        "IfcZone Gebruiksfunctie / Gebruikseenheid / Verblijfsgebied / Brandcompartiment",
        zones,
    )
    _write(model, out, log, first_new)


# ---------------------------------------------------------------- fix


def fix(source: Path, out: Path, log: Log) -> None:
    """Repair what a builder can repair in the file; the rest stays, with the reason logged."""
    model = ifcopenshell.open(str(source))
    first_new = _next_id(model)
    project = model.by_type("IfcProject")[0]
    project.Phase = "2.4 Omgevingsvergunning"
    log("F1", "IfcProject.Phase = '2.4 Omgevingsvergunning' (9.02 Phase)")
    for conversion in model.by_type("IfcMapConversion"):
        conversion.Scale = 1.0  # the model's length unit is the metre, as the CRS's
    log("F2", "IfcMapConversion.Scale = 1.0 (9.01a)")
    for site in model.by_type("IfcSite"):
        _pset(model, site, "Pset_LandRegistration", {"IsPermanentID": True})
        _placeholders(model, site, ["IsPermanentID"], "to be confirmed with the kadaster")
    log("F3", "Pset_LandRegistration.IsPermanentID = true (9.03a)")
    fixed = 0
    for space in model.by_type("IfcSpace"):
        if space.Description == "Netto-Inhoud":
            space.Description = "Netto Inhoud"
            fixed += 1
    log("F4", "IfcSpace.Description 'Netto-Inhoud' -> 'Netto Inhoud' (9.12b)", fixed)
    log("--", "not fixed: 9.02 ProjectInvestmentEstimate (the IDS asks IFCCOSTITEMTYPEENUM)")
    log("--", "not fixed: 9.10b OccupancyType (the IDS pattern starts 'matching the pattern ')")
    log("--", "not fixed: 9.06a T/FDN and Roof are storeys in the export (authoring tool)")
    _write(model, out, log, first_new)


def _next_id(model: ifcopenshell.file) -> int:
    return max((e.id() for e in model), default=0) + 1


def _write(model: ifcopenshell.file, out: Path, log: Log, first_new: int) -> None:
    """Make what this script added reproducible, then write: fixed GlobalIds, times, header."""
    stamp = int(datetime.fromisoformat(TIME_STAMP).replace(tzinfo=UTC).timestamp())
    added = 0
    for entity in model:
        if entity.id() < first_new:
            continue
        if entity.is_a("IfcRoot"):
            entity.GlobalId = guid(f"{entity.is_a()}/{entity.id()}")
            added += 1
        if entity.is_a("IfcRelationship") and hasattr(entity, "RelatedObjects"):
            # the API collects products in sets: put them in step-id order
            entity.RelatedObjects = sorted(entity.RelatedObjects, key=lambda e: e.id())
        elif entity.is_a("IfcOwnerHistory"):  # IfcOpenShell's API stamps the current time
            entity.CreationDate = stamp
            if entity.LastModifiedDate is not None:
                entity.LastModifiedDate = stamp
    log("W", f"GlobalIds of the {added} new objects derived from their position (uuid5)")
    model.header.file_name.name = out.name
    model.header.file_name.time_stamp = TIME_STAMP
    model.header.file_name.preprocessor_version = f"IfcOpenShell {ifcopenshell.version}"
    model.header.file_name.originating_system = "dsgo-node examples/make_ils_model.py"
    out.parent.mkdir(parents=True, exist_ok=True)
    model.write(str(out))
    log("W", f"wrote {out} ({out.stat().st_size:,} bytes)")


# ---------------------------------------------------------------- check


def check(model: Path, ids: list[Path]) -> Any:
    """Check a model against the ILS (or given IDS files) and print one line per specification."""
    sys.path.insert(0, str(ROOT))
    from connectors.ids_check import check_model

    files: list[Path] = []
    for path in ids or [ILS_IDS]:
        files.extend(sorted(path.glob("*.ids")) if path.is_dir() else [path])
    result = check_model(
        model,
        files,
        base_iri="http://127.0.0.1:8101",
        report_dataset="permit-check",
        model_dataset="bim",
        party_id="EU.EORI.NL000000001",
    )
    s = result.summary
    for spec in s.specifications:
        counts = f"{spec.passed}/{spec.applicable} entities pass" if spec.applicable else ""
        print(f"  {spec.verdict:<15} {spec.name:<55} {counts}")
    print(
        f"  {s.total} specifications: {s.applicable} applicable, {s.passed} pass, "
        f"{s.failed} fail, {s.missing} required but absent, {s.not_applicable} not applicable"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    b = sub.add_parser("build", help="migrate the source to IFC4 and add the ILS information")
    b.add_argument("out", type=Path)
    b.add_argument("--source", type=Path, default=SOURCE)
    f = sub.add_parser("fix", help="repair the mistakes a builder can repair in the file")
    f.add_argument("model", type=Path)
    f.add_argument("out", type=Path)
    c = sub.add_parser("check", help="check a model against the ILS IDS files")
    c.add_argument("model", type=Path)
    c.add_argument("--ids", type=Path, nargs="*", default=[])
    for parser in (b, f):
        parser.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.mode == "build":
        build(args.source, args.out, Log(args.quiet))
    elif args.mode == "fix":
        fix(args.model, args.out, Log(args.quiet))
    else:
        check(args.model, args.ids)
    return 0


if __name__ == "__main__":
    sys.exit(main())
