"""HTML views: escaping, titles, links, alternates, catalog-style pages."""

from __future__ import annotations

from html.parser import HTMLParser

import pyoxigraph as ox

from node.html import Link, Section, Text, render_page, render_resource
from node.jsonld import load_context

CTX = load_context()
BASE = "http://127.0.0.1:8101/id/space/"
BOT = "https://w3id.org/bot#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
DCT = "http://purl.org/dc/terms/"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
XSD = "http://www.w3.org/2001/XMLSchema#"
EVIL = '<script>alert("x")</script>&amp; "quoted" \'single\''
ALTERNATES = {"application/ld+json": "/id/space/1?format=jsonld", "text/turtle": "/id/space/1.ttl"}


class Page(HTMLParser):
    """Collects tags with attributes and all text, to inspect what a browser would see."""

    def __init__(self, data: bytes) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.title = ""
        self._in_title = False
        self.feed(data.decode("utf-8"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_title:
            self.title += data

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def triple(s: str, p: str, o: ox.NamedNode | ox.BlankNode | ox.Literal) -> ox.Triple:
    subject = ox.BlankNode(s[2:]) if s.startswith("_:") else ox.NamedNode(s)
    return ox.Triple(subject, ox.NamedNode(p), o)


def resource(*extra: ox.Triple, labels: dict[str, str] | None = None) -> Page:
    s = BASE + "1"
    triples = [
        triple(s, RDF_TYPE, ox.NamedNode(BOT + "Space")),
        triple(s, BOT + "hasElement", ox.NamedNode(BASE + "2")),
        triple(
            s,
            "https://w3id.org/props#area",
            ox.Literal("12.5", datatype=ox.NamedNode(XSD + "decimal")),
        ),
        *extra,
    ]
    return Page(render_resource(s, triples, labels or {}, CTX, ALTERNATES))


def test_literal_with_markup_is_escaped_text() -> None:
    page = resource(triple(BASE + "1", RDFS + "comment", ox.Literal(EVIL)))
    assert page.all("script") == []
    assert EVIL in page.text


def test_iri_with_quote_and_evil_label_stay_inside_attributes() -> None:
    odd = "http://example.org/a'b?x=<1>".replace("<1>", "%3C1%3E")
    page = resource(
        triple(BASE + "1", BOT + "adjacentZone", ox.NamedNode(odd)),
        labels={odd: EVIL},
    )
    links = [a for a in page.all("a") if a.get("href") == odd]
    assert links and links[0]["title"] == odd
    assert EVIL in page.text
    assert page.all("script") == []


def test_javascript_iri_is_not_clickable() -> None:
    page = resource(triple(BASE + "1", BOT + "x", ox.NamedNode("javascript:alert(1)")))
    assert all(not (a.get("href") or "").startswith("javascript") for a in page.all("a"))
    assert "javascript:alert(1)" in "".join(page.text)


def test_title_prefers_rdfs_label_then_dct_title_then_name_like() -> None:
    s = BASE + "1"
    with_label = resource(
        triple(s, DCT + "title", ox.Literal("Dct title")),
        triple(s, RDFS + "label", ox.Literal("Kamer 1", language="nl")),
    )
    assert with_label.title == "Kamer 1"
    assert resource(triple(s, DCT + "title", ox.Literal("Dct title"))).title == "Dct title"
    name_like = resource(triple(s, "https://w3id.org/props#spaceName", ox.Literal("Keuken")))
    assert name_like.title == "Keuken"
    assert resource().title == "http://127.0.0.1:8101/id/space/1"


def test_properties_compact_with_full_iri_in_title_and_values_link_with_labels() -> None:
    page = resource(labels={BASE + "2": "Wall two"})
    prop = [a for a in page.all("a") if a.get("href") == BOT + "hasElement"]
    assert prop and prop[0]["title"] == BOT + "hasElement"
    assert "bot:hasElement" in page.text
    assert "Wall two" in page.text
    assert "bot:Space" in page.text
    assert "xsd:decimal" in page.text  # datatype note of the area literal
    assert "a (rdf:type)" in page.text


def test_alternates_are_links_and_link_elements() -> None:
    page = resource()
    hrefs = {a.get("href") for a in page.all("a")}
    assert set(ALTERNATES.values()) <= hrefs
    rel = {
        (lk.get("type"), lk.get("href")) for lk in page.all("link") if lk.get("rel") == "alternate"
    }
    assert rel == set(ALTERNATES.items())
    assert "Turtle" in page.text


def test_self_contained_no_external_assets() -> None:
    page = resource()
    assert page.all("script") == [] and page.all("img") == []
    assert all(lk.get("rel") == "alternate" for lk in page.all("link"))
    assert page.all("style") and page.all("meta")


def test_blank_node_values_link_to_their_section() -> None:
    s = BASE + "1"
    page = resource(
        triple(s, BOT + "quantity", ox.BlankNode("q1")),
        triple(
            "_:q1",
            "https://w3id.org/props#value",
            ox.Literal("3", datatype=ox.NamedNode(XSD + "integer")),
        ),
    )
    assert any(a.get("href") == "#bnode-q1" for a in page.all("a"))
    assert any(sec.get("id") == "bnode-q1" for sec in page.all("section"))
    assert "props:value" in page.text


def test_render_page_escapes_structured_rows() -> None:
    sections = [
        Section(
            "Datasets <all>",
            [
                (Link("ifc", "/dataset/ifc", "the IFC model"), EVIL, Text("42", "triples")),
                ("bag", [Text("x"), Link("y", "https://example.org/y")], "2"),
            ],
            columns=("Name", "Description", "Size"),
        ),
        Section("Empty", []),
    ]
    page = Page(render_page('Catalog "main"', sections))
    assert page.title == 'Catalog "main"'
    assert "Datasets <all>" in page.text
    assert EVIL in page.text and page.all("script") == []
    assert [a["href"] for a in page.all("a")] == ["/dataset/ifc", "https://example.org/y"]
    assert len(page.all("tr")) == 3  # header + two rows
    assert "Nothing to show." in page.text
