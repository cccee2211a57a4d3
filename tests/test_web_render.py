"""The pure parts of the pages: the trace graph (escaped, PROV edges), numbers with units, and
the building overview's choice of quantities."""

from __future__ import annotations

import re

from node.html import format_number, quantity_text
from node.web.building import build_overview
from node.web.trace_graph import trace_graph, trace_svg
from node.web.units import unit_symbols

EVIL = '<script>alert("x")</script>'
UNIT = "http://qudt.org/vocab/unit/"
TRACE = {
    "iri": "http://127.0.0.1:8102/id/co2-summary/A102",
    "datasets": [
        {
            "dataset": "co2-summary",
            "graph": "http://127.0.0.1:8102/dataset/co2-summary",
            "version": "http://127.0.0.1:8102/dataset/co2-summary/version/2",
            "generated_at": "2026-12-02T00:00:00Z",
            "attributed_to": "EU.EORI.NL000000102",
            "activity": {"connector": "sparql-construct", "connector_version": "1", "ended": "t"},
            "source": {"location": f"/data/{EVIL}.ifc", "sha256": "ab" * 32},
            "previous_version": "http://127.0.0.1:8102/dataset/co2-summary/version/1",
            "derived_from": [{"iri": "http://127.0.0.1:8101/id/bim/space/0BTB", "etag": '"e"'}],
        }
    ],
    "accesses": [{"party": "EU.EORI.NL000000103"}, {"party": "EU.EORI.NL000000103"}, {}],
}


def test_trace_graph_has_the_prov_edges_in_their_direction() -> None:
    nodes, edges = trace_graph(TRACE)
    by_id = {n.id: n for n in nodes}
    found = {(by_id[e.source].kind, e.label, by_id[e.target].kind) for e in edges}
    assert found == {
        ("focus", "in dataset", "entity"),
        ("entity", "specializationOf", "entity"),
        ("entity", "wasGeneratedBy", "activity"),
        ("activity", "used", "entity"),
        ("entity", "wasAttributedTo", "agent"),
        ("entity", "wasRevisionOf", "entity"),
        ("entity", "wasDerivedFrom", "entity"),
        ("agent", "accessed", "focus"),
    }
    readers = sorted(n.detail for n in nodes if n.column == 5)
    assert readers == ["1 audit entries", "2 audit entries"]  # grouped per party


def test_trace_svg_escapes_everything_from_the_trace() -> None:
    svg = trace_svg(TRACE)
    assert svg.startswith('<svg class="trace"') and svg.endswith("</svg>")
    assert "<script" not in svg and "&lt;script&gt;" in svg
    assert re.findall(r"(?:href|src)=", svg) == []  # a picture: it names nothing to load
    assert svg.count("<rect") + svg.count("<polygon") == len(trace_graph(TRACE)[0])


def test_empty_trace_is_still_a_picture() -> None:
    svg = trace_svg({"iri": "urn:x", "datasets": [], "accesses": []})
    assert svg.count("<rect") == 1 and "urn:x" in svg


def test_numbers_with_their_qudt_symbols() -> None:
    units = unit_symbols()
    assert units[UNIT + "M2"] == "m²" and units[UNIT + "W-PER-M2-K"] == "W/(m²⋅K)"
    assert quantity_text("30.14164524999992", UNIT + "M2", units) == "30.14 m²"
    assert quantity_text("71.3906897089998", UNIT + "M3", units) == "71.39 m³"
    assert quantity_text("6.97333333333333", UNIT + "W-PER-M2-K", units) == "6.97 W/(m²⋅K)"
    assert quantity_text("0.4166", UNIT + "M", units) == "0.417 m"
    assert quantity_text("2.5", UNIT + "FURLONG", units) == "2.50 FURLONG"  # unknown: local name
    assert quantity_text("n/a", None, units) == "n/a"
    assert format_number(-0.0) == "0.00" and format_number(1234.5) == "1\u2009234.50"


def test_overview_prefers_net_quantities_and_keeps_only_the_envelope() -> None:
    s, w1, w2, win, roof = (f"urn:{x}" for x in ("s", "w1", "w2", "win", "roof"))
    q = [
        {"s": s, "p": "https://w3id.org/props#area", "v": "31", "u": UNIT + "M2"},
        {"s": s, "p": "https://w3id.org/props#netFloorArea", "v": "30", "u": UNIT + "M2"},
        {"s": win, "p": "https://w3id.org/props#overallWidth", "v": "2", "u": UNIT + "M"},
        {"s": win, "p": "https://w3id.org/props#overallHeight", "v": "1.5", "u": UNIT + "M"},
        {
            "s": w1,
            "p": "https://w3id.org/props#thermalTransmittance",
            "v": "0.2",
            "u": UNIT + "W-PER-M2-K",
        },
    ]
    elements = [
        {"e": w1, "cls": "IfcWall", "name": "outer", "ext": "true"},
        {"e": w2, "cls": "IfcWallStandardCase", "name": "inner", "ext": "false"},
        {"e": win, "cls": "IfcWindow", "name": "window"},
        {"e": roof, "cls": "IfcRoof", "name": "roof", "ext": "false"},
    ]
    overview = build_overview(
        "bim",
        [],
        [{"s": "urn:st", "name": "Level 1", "elev": "0"}],
        [{"st": "urn:st", "sp": s, "name": "A1", "long": "Woonkamer"}],
        elements,
        q,
    )
    space = overview.storeys[0].spaces[0]
    assert (space.long_name, space.area.value) == ("Woonkamer", 30.0)
    kept = {e.name: e for e in overview.elements}
    assert sorted(kept) == ["outer", "roof", "window"]
    assert kept["window"].area.value == 3.0 and kept["window"].area.how == "width × height"
    assert kept["outer"].u_value.text() == "0.2 W/(m²⋅K)"
