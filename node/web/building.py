"""The building overview of an IFC dataset: storeys, spaces, and the envelope a renovator needs.

Spaces are named by their LongName ("Living Room"), with the IFC Name ("A102") beside it, and
show net floor area and volume; external walls, windows and roofs show area and U-value. Every
number comes with its QUDT unit as the connector wrote it (connectors/ifc.py). The data is read
with one scoped SELECT per part, as the caller, through the node's SPARQL use case.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from html import escape as _esc

from starlette.concurrency import run_in_threadpool

from node.auth import Caller
from node.enforcement import AccessDenied
from node.html import Fragment, Link, Section, Text, quantity_text, render_page
from node.runtime import Runtime
from node.store import UnknownDataset
from node.web.common import Row, local_href, select
from node.web.units import unit_symbols
from vocab.namespaces import PROPS, UNIT

PREFIXES = """PREFIX bot: <https://w3id.org/bot#>
PREFIX props: <https://w3id.org/props#>
PREFIX qudt: <http://qudt.org/schema/qudt/>
PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX dsgo: <https://w3id.org/dsgo-node/def#>
"""
# Which quantity counts, best first (IFC base quantities, then Pset/authoring-tool values).
SPACE_AREA = ("netFloorArea", "area", "grossFloorArea")
SPACE_VOLUME = ("netVolume", "volume", "grossVolume")
ELEMENT_AREA = ("netSideArea", "grossSideArea", "netArea", "totalArea", "area", "grossArea")
U_VALUE = ("thermalTransmittance",)
ENVELOPE = {
    "IfcWall": "wall",
    "IfcWallStandardCase": "wall",
    "IfcCurtainWall": "wall",
    "IfcWindow": "window",
    "IfcRoof": "roof",
}
_QUANTITIES = sorted(
    {*SPACE_AREA, *SPACE_VOLUME, *ELEMENT_AREA, *U_VALUE, "overallWidth", "overallHeight"}
)
_VALUES = " ".join(f"props:{name}" for name in _QUANTITIES)


@dataclass(frozen=True)
class Quantity:
    """A number with its QUDT unit IRI; `how` says when it was computed (width × height)."""

    value: float
    unit: str
    how: str = ""

    def text(self) -> str:
        return quantity_text(repr(self.value), self.unit, unit_symbols())


@dataclass
class Space:
    iri: str
    name: str
    long_name: str
    area: Quantity | None = None
    volume: Quantity | None = None


@dataclass
class Storey:
    iri: str
    name: str
    elevation: float | None
    spaces: list[Space] = field(default_factory=list)


@dataclass
class Element:
    iri: str
    kind: str  # wall, window, roof
    ifc_class: str
    name: str
    external: bool | None
    area: Quantity | None = None
    u_value: Quantity | None = None


@dataclass
class Overview:
    dataset: str
    buildings: list[str]
    storeys: list[Storey]
    elements: list[Element]


async def read_overview(rt: Runtime, caller: Caller, dataset: str) -> Overview:
    """The caller's view of the dataset's building (what its policies let it read).

    UnknownDataset (404) if there is no such dataset; AccessDenied (403, with the enforcement
    point's explanation) if the caller's scoped view is empty because no policy reaches it.
    """
    known = await run_in_threadpool(rt.store.datasets)
    if not any(d.name == dataset for d in known):
        raise UnknownDataset(f"no dataset named {dataset!r} on this node")
    graphs = [rt.settings.dataset_iri(dataset)]
    buildings = await select(
        rt,
        caller,
        PREFIXES + "SELECT ?b ?name WHERE { ?b a bot:Building OPTIONAL { ?b rdfs:label ?name } }",
        graphs,
    )
    storey_rows = await select(
        rt,
        caller,
        PREFIXES
        + """SELECT ?s ?name ?elev WHERE { ?s a bot:Storey OPTIONAL { ?s rdfs:label ?name }
             OPTIONAL { ?s props:elevation/qudt:numericValue ?elev } }""",
        graphs,
    )
    space_rows = await select(
        rt,
        caller,
        PREFIXES
        + """SELECT ?st ?sp ?name ?long WHERE { ?sp a bot:Space .
             OPTIONAL { ?st bot:hasSpace ?sp } OPTIONAL { ?sp rdfs:label ?name }
             OPTIONAL { ?sp props:longName ?long } }""",
        graphs,
    )
    classes = " ".join(f'"{c}"' for c in ENVELOPE)
    element_rows = await select(
        rt,
        caller,
        PREFIXES
        + f"""SELECT ?e ?cls ?name ?ext WHERE {{ VALUES ?cls {{ {classes} }}
             ?e dsgo:ifcClass ?cls . OPTIONAL {{ ?e rdfs:label ?name }}
             OPTIONAL {{ ?e props:isExternal/rdf:value ?ext }} }}""",
        graphs,
    )
    quantity_rows = await select(
        rt,
        caller,
        PREFIXES
        + f"""SELECT ?s ?p ?v ?u WHERE {{ VALUES ?p {{ {_VALUES} }}
             ?s ?p ?q . ?q qudt:numericValue ?v ; qudt:unit ?u }} ORDER BY ?s ?p ?q""",
        graphs,
    )
    overview = build_overview(
        dataset, buildings, storey_rows, space_rows, element_rows, quantity_rows
    )
    if not (overview.buildings or overview.storeys or overview.elements):
        await run_in_threadpool(_refuse_if_denied, rt, caller, dataset)
    return overview


def _refuse_if_denied(rt: Runtime, caller: Caller, dataset: str) -> None:
    """An empty view: 403 when the enforcement point explains it as a Deny (not just no data)."""
    if rt.enforcer.is_owner(caller):
        return
    explanation = rt.enforcer.explain(caller.party_id, dataset=dataset)
    if explanation["decision"] == "Deny":
        raise AccessDenied(f"no policy lets you read dataset {dataset!r}", explanation)


def build_overview(
    dataset: str,
    buildings: list[Row],
    storey_rows: list[Row],
    space_rows: list[Row],
    element_rows: list[Row],
    quantity_rows: list[Row],
) -> Overview:
    """Rows of the five SELECTs -> storeys with spaces, and envelope elements (pure, testable)."""
    quantities: dict[str, dict[str, list[Quantity]]] = defaultdict(lambda: defaultdict(list))
    for row in quantity_rows:
        try:
            value = float(row["v"])
        except (KeyError, ValueError):
            continue
        name = row["p"].removeprefix(PROPS)
        quantities[row["s"]][name].append(Quantity(value, row.get("u", "")))
    storeys: dict[str, Storey] = {}
    for row in storey_rows:
        if row["s"] in storeys:
            continue
        elevation = row.get("elev")
        storeys[row["s"]] = Storey(
            row["s"], row.get("name", ""), float(elevation) if elevation else None
        )
    unplaced = Storey("", "Not on a storey", None)
    seen: set[str] = set()
    for row in space_rows:
        if row["sp"] in seen:
            continue
        seen.add(row["sp"])
        q = quantities.get(row["sp"], {})
        space = Space(
            row["sp"],
            row.get("name", ""),
            row.get("long", ""),
            _pick(q, SPACE_AREA),
            _pick(q, SPACE_VOLUME),
        )
        storeys.get(row.get("st", ""), unplaced).spaces.append(space)
    ordered = sorted(
        storeys.values(),
        key=lambda s: (s.elevation is None, s.elevation or 0.0, s.name),
    )
    if unplaced.spaces:
        ordered.append(unplaced)
    for storey in ordered:
        storey.spaces.sort(key=lambda s: (s.name, s.long_name))
    elements: dict[str, Element] = {}
    for row in element_rows:
        iri = row["e"]
        external = _flag(row.get("ext"))
        if iri in elements:
            if external is not None:
                elements[iri].external = external
            continue
        q = quantities.get(iri, {})
        area = _pick(q, ELEMENT_AREA) or _width_times_height(q)
        kind = ENVELOPE[row["cls"]]
        elements[iri] = Element(
            iri, kind, row["cls"], row.get("name", ""), external, area, _pick(q, U_VALUE)
        )
    envelope = [
        e
        for e in elements.values()
        if e.kind == "roof" or e.external is True or (e.kind == "window" and e.external is None)
    ]
    envelope.sort(key=lambda e: (e.kind, e.name, e.iri))
    names = sorted({row["name"] for row in buildings if row.get("name")})
    return Overview(dataset, names, ordered, envelope)


def _pick(found: dict[str, list[Quantity]], names: tuple[str, ...]) -> Quantity | None:
    for name in names:
        if found.get(name):
            return found[name][0]
    return None


def _width_times_height(found: dict[str, list[Quantity]]) -> Quantity | None:
    width, height = found.get("overallWidth"), found.get("overallHeight")
    if width and height and width[0].unit == height[0].unit == UNIT + "M":
        return Quantity(width[0].value * height[0].value, UNIT + "M2", "width × height")
    return None


def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() in ("true", "1")


def render_overview(overview: Overview, base_iri: str, party_name: str) -> bytes:
    """The page: summary cards, a table of spaces per storey, the envelope tables."""
    spaces = [s for st in overview.storeys for s in st.spaces]
    walls = [e for e in overview.elements if e.kind == "wall"]
    windows = [e for e in overview.elements if e.kind == "window"]
    roofs = [e for e in overview.elements if e.kind == "roof"]
    floor = sum(s.area.value for s in spaces if s.area and s.area.unit == UNIT + "M2")
    wall_area = sum(e.area.value for e in walls if e.area and e.area.unit == UNIT + "M2")
    cards = [
        ("storeys", str(len(overview.storeys))),
        ("spaces", str(len(spaces))),
        ("floor area of the spaces", Quantity(floor, UNIT + "M2").text()),
        ("external walls", str(len(walls))),
        ("external wall area", Quantity(wall_area, UNIT + "M2").text()),
        ("windows", str(len(windows))),
    ]
    card_html = "".join(
        f'<div class="card"><b>{_esc(value)}</b>{_esc(label)}</div>' for label, value in cards
    )
    links = (
        f'<p>Dataset <a href="/dataset/{_esc(overview.dataset)}">{_esc(overview.dataset)}</a>'
        " · the numbers are the model's own quantities with their units (QUDT)</p>"
    )
    sections: list[Section | Fragment] = [Fragment(links + f'<div class="cards">{card_html}</div>')]
    for storey in overview.storeys:
        heading = storey.name or "Storey"
        if storey.elevation is not None:
            heading += f" (elevation {Quantity(storey.elevation, UNIT + 'M').text()})"
        rows = [
            [
                _link(space.long_name or space.name or space.iri, space.iri, base_iri),
                Text(space.name),
                _number(space.area),
                _number(space.volume),
            ]
            for space in storey.spaces
        ]
        sections.append(
            Section(
                heading,
                rows,
                ("space", "IFC name", "net floor area", "volume"),
                anchor="storey-" + _slug(storey.name),
            )
        )
    for title, items, anchor in (
        ("External walls", walls, "walls"),
        ("Windows", windows, "windows"),
        ("Roofs", roofs, "roofs"),
    ):
        rows = [
            [
                _link(e.name or e.iri, e.iri, base_iri),
                Text(e.ifc_class),
                _number(e.area),
                _number(e.u_value),
            ]
            for e in items
        ]
        sections.append(Section(title, rows, ("element", "IFC class", "area", "U-value"), anchor))
    name = ", ".join(overview.buildings) or f"dataset {overview.dataset}"
    return render_page(f"Building overview: {name}", sections, nav=True, subtitle=party_name)


def _number(quantity: Quantity | None) -> Text:
    if quantity is None:
        return Text("—")
    return Text(quantity.text(), quantity.how)


def _link(text: str, iri: str, base_iri: str) -> Link:
    return Link(text, local_href(base_iri, iri), iri)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "none"
