"""Readable, self-contained HTML for a resource and for simple listings such as the catalog.

Every string from data is escaped here; callers hand over structured rows, never HTML (the
node's page builders in node/web may add a `Fragment` they built with every value escaped).
Only http(s), path-relative and fragment links are made clickable (no ``javascript:`` hrefs).
The node's own pages (``local=True``) link only inside the node (relative paths), load their
scripts and styles from ``/static/`` and name no other origin at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

import pyoxigraph as ox

from node.jsonld import Context, compact_iri
from vocab.namespaces import RDF_TYPE

XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
RDF_LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"
TITLE_PREDICATES = (
    "https://w3id.org/props#longName",
    "http://www.w3.org/2000/01/rdf-schema#label",
    "http://purl.org/dc/terms/title",
    "http://www.w3.org/2004/02/skos/core#prefLabel",
    "https://schema.org/name",
    "http://xmlns.com/foaf/0.1/name",
)
_NAME_LIKE = ("label", "title", "name", "naam")
QUDT = "http://qudt.org/schema/qudt/"
RDF_VALUE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#value"
PROPERTY_SET = "https://w3id.org/dsgo-node/def#propertySet"
# Shown first on a resource page, in this order: what a person calls the thing, then what it is.
_FIRST = (
    "http://www.w3.org/2000/01/rdf-schema#label",
    "https://w3id.org/props#longName",
    RDF_TYPE,
)
NAV = (
    ("Home", "/"),
    ("Catalog", "/catalog"),
    ("SPARQL", "/ui/sparql"),
    ("Policies", "/ui/policies"),
    ("Audit", "/ui/audit"),
    ("API", "/docs"),
)
DEFAULT_CSP = "default-src 'none'; style-src 'unsafe-inline'"
# Pages with the node's own scripts: everything from this origin only (no other host, ever).
SCRIPT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; form-action 'self'; "
    "base-uri 'none'"
)
_MEDIA_NAMES = {
    "application/ld+json": "JSON-LD",
    "text/turtle": "Turtle",
    "application/n-triples": "N-Triples",
    "application/n-quads": "N-Quads",
    "application/rdf+xml": "RDF/XML",
    "application/trig": "TriG",
    "text/html": "HTML",
    "application/json": "JSON",
}


@dataclass(frozen=True)
class Link:
    """A hyperlink cell; ``title`` becomes the hover text (e.g. the full IRI)."""

    text: str
    href: str
    title: str = ""


@dataclass(frozen=True)
class Text:
    """A plain-text cell with an optional small note (language tag, datatype)."""

    text: str
    note: str = ""


@dataclass(frozen=True)
class Fragment:
    """Markup built by the node's own page builders (node/web), which escape every data string.

    Data never becomes a Fragment directly: builders call `escape` / `attr` on each value.
    """

    html: str


Item = str | Link | Text | Fragment
Cell = Item | Sequence[Item]


@dataclass(frozen=True)
class Section:
    """A headed table: ``columns`` are header labels (may be empty), ``rows`` hold cells."""

    heading: str
    rows: Sequence[Sequence[Cell]]
    columns: Sequence[str] = ()
    anchor: str = ""


def render_page(
    title: str,
    sections: Sequence[Section | Fragment],
    alternates: Mapping[str, str] | None = None,
    subtitle: Item = "",
    *,
    nav: bool = False,
    scripts: Sequence[str] = (),
    styles: Sequence[str] = (),
    body_class: str = "",
) -> bytes:
    """A complete HTML page with the given title and tables (all content escaped).

    `nav` adds the node's page menu; `scripts`/`styles` are paths under this node's /static/
    (a page with scripts gets a CSP that allows this origin only).
    """
    csp = SCRIPT_CSP if scripts or styles else DEFAULT_CSP
    out = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{escape(csp)}">',
        f"<title>{escape(title)}</title>",
    ]
    for media_type, href in (alternates or {}).items():
        if "/" in media_type and _safe_href(href):
            out.append(f'<link rel="alternate" type="{escape(media_type)}" href="{escape(href)}">')
    for href in styles:
        if _local_href(href):
            out.append(f'<link rel="stylesheet" href="{escape(href)}">')
    out.append(f"<style>{_STYLE}</style></head>")
    out.append(f'<body class="{escape(body_class)}">' if body_class else "<body>")
    if nav:
        links = "".join(f'<a href="{href}">{escape(text)}</a>' for text, href in NAV)
        out.append(f'<nav class="top">{links}</nav>')
    out.append("<main>")
    out.append(f"<h1>{escape(title)}</h1>")
    if subtitle:
        out.append(f'<p class="iri">{_item(subtitle)}</p>')
    if alternates:
        links = [
            _item(Link(_MEDIA_NAMES.get(media_type, media_type), href, media_type))
            for media_type, href in alternates.items()
        ]
        out.append(f'<p class="alt">Also available as: {" · ".join(links)}</p>')
    for section in sections:
        if isinstance(section, Fragment):
            out.append(section.html)
        else:
            _section(out, section)
    out.append("</main>")
    for src in scripts:
        if _local_href(src):
            out.append(f'<script src="{escape(src)}"></script>')
    out.append("</body></html>\n")
    return "".join(out).encode("utf-8")


def render_resource(
    subject_iri: str,
    triples: Iterable[ox.Triple],
    labels: Mapping[str, str],
    context: Context,
    alternates: Mapping[str, str],
    link_for: Callable[[str], str] | None = None,
    *,
    base_iri: str | None = None,
    units: Mapping[str, str] | None = None,
    panels: Sequence[Section | Fragment] = (),
) -> bytes:
    """HTML view of one resource: its properties first, then other described nodes (bnodes).

    `link_for(iri)` gives the href for a linked IRI (e.g. through the node's /follow for another
    node's resources, which a browser could not fetch without a token); default: the IRI itself.
    With `base_iri` (the node's own pages) the node's IRIs link as relative paths, any other IRI
    is shown with its full form as hover text but not linked (no page names another origin),
    value nodes (`qudt:QuantityValue`, `rdf:value`) are shown inline as "30.14 m²" with their
    property set, labelled properties come first, and `panels` (provenance) follow the table.
    """
    if base_iri is not None and link_for is None:
        link_for = _local_link(base_iri)
    link = link_for or _identity
    by_subject: dict[str, list[ox.Triple]] = {}
    subject_terms: dict[str, ox.NamedNode | ox.BlankNode] = {}
    for triple in triples:
        key = _term_key(triple.subject)
        by_subject.setdefault(key, []).append(triple)
        subject_terms[key] = triple.subject
    main_key = "<" + subject_iri + ">"
    main = by_subject.pop(main_key, [])
    inline: dict[str, Item] = {}
    if base_iri is not None:
        for key in list(by_subject):
            shown = _inline_value(by_subject[key], units or {})
            if shown is not None:
                inline[key] = shown
                del by_subject[key]
    described = set(by_subject) | {main_key}
    local = base_iri is not None
    title = _title(main) or labels.get(subject_iri) or compact_iri(subject_iri, context)
    sections: list[Section | Fragment] = [
        Section(
            "Properties",
            _rows(main, labels, context, described, link, inline, local),
            ("Property", "Value"),
        )
    ]
    sections.extend(panels)
    for key in sorted(by_subject):
        term = subject_terms[key]
        if isinstance(term, ox.BlankNode):
            heading, anchor = "_:" + term.value, _bnode_anchor(term.value)
        else:
            heading = (
                _title(by_subject[key])
                or labels.get(term.value)
                or compact_iri(term.value, context)
            )
            anchor = ""
        rows = _rows(by_subject[key], labels, context, described, link, inline, local)
        sections.append(Section(heading, rows, ("Property", "Value"), anchor))
    href = link(subject_iri)
    subtitle = Link(subject_iri, href if _safe_href(href) else "", subject_iri)
    return render_page(title, sections, alternates, subtitle, nav=local)


def format_number(value: float) -> str:
    """Two decimals from 1 up (30.14), three significant digits below (0.0152); no '-0.00'."""
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if abs(value) >= 1 or value == 0:
        text = f"{value:,.2f}".replace(",", "\u2009")
    else:
        text = f"{value:.3g}"
    return "0.00" if text in ("-0.00",) else text


def quantity_text(value: str, unit_iri: str | None, units: Mapping[str, str]) -> str:
    """ "30.14 m²": the number, then the unit's QUDT symbol (or its local name)."""
    try:
        number = format_number(float(value))
    except ValueError:
        number = value
    if not unit_iri:
        return number
    symbol = units.get(unit_iri) or unit_iri.rsplit("/", 1)[-1]
    return f"{number} {symbol}"


def _inline_value(triples: list[ox.Triple], units: Mapping[str, str]) -> Item | None:
    """A value node as one cell: a quantity "value unit" or its rdf:value(s), noted with its set."""
    numeric = unit = None
    values: list[str] = []
    property_set = ""
    for t in triples:
        p = t.predicate.value
        if p == QUDT + "numericValue" and isinstance(t.object, ox.Literal):
            numeric = t.object.value
        elif p == QUDT + "unit" and isinstance(t.object, ox.NamedNode):
            unit = t.object.value
        elif p == RDF_VALUE and isinstance(t.object, ox.Literal):
            values.append(t.object.value)
        elif p == PROPERTY_SET and isinstance(t.object, ox.Literal):
            property_set = t.object.value
    if numeric is not None:
        return Text(quantity_text(numeric, unit, units), property_set)
    if values:
        return Text(", ".join(sorted(values)), property_set)
    return None


def _local_link(base_iri: str) -> Callable[[str], str]:
    """The node's own IRIs as paths (they work with the browser's session); others: no link."""
    base = base_iri.rstrip("/")

    def link(iri: str) -> str:
        if iri.startswith(base + "/"):
            return iri[len(base) :]
        return ""

    return link


def _rows(
    triples: list[ox.Triple],
    labels: Mapping[str, str],
    context: Context,
    described: set[str],
    link: Callable[[str], str],
    inline: Mapping[str, Item] | None = None,
    local: bool = False,
) -> list[tuple[Cell, Cell]]:
    """One row per property (label, long name, type first, then by compact name), values sorted."""
    grouped: dict[str, list[Item]] = {}
    for triple in triples:
        shown = (inline or {}).get(_term_key(triple.object))
        grouped.setdefault(triple.predicate.value, []).append(
            shown if shown is not None else _value(triple.object, labels, context, described, link)
        )
    first = _FIRST if local else (RDF_TYPE,)

    def order_key(p: str) -> tuple[int, str]:
        return (first.index(p) if p in first else len(first), compact_iri(p, context))

    rows: list[tuple[Cell, Cell]] = []
    for predicate in sorted(grouped, key=order_key):
        name = "a (rdf:type)" if predicate == RDF_TYPE else compact_iri(predicate, context)
        values = sorted(set(grouped[predicate]), key=_item_sort_key)
        rows.append((Link(name, "" if local else predicate, predicate), values))
    return rows


def _value(
    term: object,
    labels: Mapping[str, str],
    context: Context,
    described: set,
    link: Callable[[str], str],
) -> Item:
    if isinstance(term, ox.NamedNode):
        iri = term.value
        return Link(labels.get(iri) or compact_iri(iri, context), link(iri), iri)
    if isinstance(term, ox.BlankNode):
        label = "_:" + term.value
        if label in described:
            return Link(label, "#" + _bnode_anchor(term.value))
        return Text(label)
    if isinstance(term, ox.Literal):
        datatype = term.datatype.value
        if term.language:
            return Text(term.value, "@" + term.language)
        if datatype == XSD_STRING:
            return Text(term.value)
        return Text(term.value, compact_iri(datatype, context))
    return Text(str(term))


def _identity(iri: str) -> str:
    return iri


def _title(triples: list[ox.Triple]) -> str:
    """rdfs:label / dct:title / ... first, else the first literal of a name-like property."""
    literals = sorted(
        (t.predicate.value, t.object.value)
        for t in triples
        if isinstance(t.object, ox.Literal) and t.object.value.strip()
    )
    for predicate in TITLE_PREDICATES:
        for candidate, value in literals:
            if candidate == predicate:
                return value
    for predicate, value in literals:
        local = predicate.rsplit("#", 1)[-1].rsplit("/", 1)[-1].lower()
        if any(word in local for word in _NAME_LIKE):
            return value
    return ""


def _term_key(term: object) -> str:
    if isinstance(term, ox.BlankNode):
        return "_:" + term.value
    return "<" + term.value + ">"


def _bnode_anchor(label: str) -> str:
    return "bnode-" + label


def _item_sort_key(item: Item) -> tuple[str, str]:
    if isinstance(item, str):
        return (item, "")
    if isinstance(item, Fragment):
        return (item.html, "")
    return (item.text, getattr(item, "href", "") or getattr(item, "note", ""))


def _section(out: list[str], section: Section) -> None:
    anchor = f' id="{escape(section.anchor)}"' if section.anchor else ""
    out.append(f"<section{anchor}><h2>{escape(section.heading)}</h2>")
    if not section.rows:
        out.append('<p class="empty">Nothing to show.</p></section>')
        return
    out.append("<table>")
    if section.columns:
        out.append("<thead><tr>")
        out.extend(f"<th>{escape(c)}</th>" for c in section.columns)
        out.append("</tr></thead>")
    out.append("<tbody>")
    for row in section.rows:
        out.append("<tr>")
        for index, cell in enumerate(row):
            tag = "th" if index == 0 and len(row) > 1 else "td"
            out.append(f"<{tag}>{_cell(cell)}</{tag}>")
        out.append("</tr>")
    out.append("</tbody></table></section>")


def _cell(cell: Cell) -> str:
    if isinstance(cell, str | Link | Text | Fragment):
        return _item(cell)
    items = [_item(item) for item in cell]
    if len(items) == 1:
        return items[0]
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def _item(item: Item) -> str:
    if isinstance(item, str):
        return escape(item)
    if isinstance(item, Fragment):
        return item.html
    if isinstance(item, Text):
        note = f' <small class="note">{escape(item.note)}</small>' if item.note else ""
        return f"{escape(item.text)}{note}"
    title = f' title="{escape(item.title)}"' if item.title else ""
    if not _safe_href(item.href):
        return f"<span{title}>{escape(item.text)}</span>"
    return f'<a href="{escape(item.href)}"{title}>{escape(item.text)}</a>'


def _local_href(href: str) -> bool:
    """A path on this node (``/static/...``), never another origin."""
    return href.startswith("/") and not href.startswith("//") and "\\" not in href


def _safe_href(href: str) -> bool:
    """http(s) URLs, fragments, queries and paths only: an IRI like ``javascript:..`` stays text."""
    lowered = href.lstrip().lower()
    return lowered.startswith(("http://", "https://", "#", "?")) or (
        lowered.startswith("/") and not lowered.startswith("//")
    )


_STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2733;"
    "background:#f7f8fa}main{max-width:70rem;margin:0 auto;padding:1.5rem}"
    "h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.6rem 0 .4rem}"
    ".iri,.alt{color:#4a5868;font-size:.9rem;word-break:break-all}"
    "table{border-collapse:collapse;width:100%;background:#fff}"
    "th,td{text-align:left;vertical-align:top;padding:.35rem .6rem;border-bottom:1px solid #e2e6ea;"
    "overflow-wrap:anywhere}"
    "tbody th{font-weight:600;white-space:nowrap;width:1%}thead th{background:#eef1f4}"
    "td ul{margin:0;padding-left:1.1rem}a{color:#0b5cad}"
    ".note{color:#6b7785;font-size:.8em}.empty{color:#6b7785}"
    "nav.top{background:#1d3b5c;padding:.5rem 1.5rem;display:flex;gap:1.2rem;flex-wrap:wrap}"
    "nav.top a{color:#fff;text-decoration:none;font-weight:600}nav.top a:hover{text-decoration:underline}"
    ".panel{background:#fff;border:1px solid #d5dbe1;border-radius:6px;padding:.6rem 1rem;margin:1rem 0}"
    ".panel h2{margin-top:.2rem}.ok{color:#146c2e;font-weight:600}.bad{color:#a4161a;font-weight:600}"
    ".error{background:#fdecea;border:1px solid #f5c2c0;color:#7a1010;padding:.6rem 1rem;border-radius:6px}"
    ".message{background:#e8f4ea;border:1px solid #b8dcc0;padding:.6rem 1rem;border-radius:6px}"
    "form.card{background:#fff;border:1px solid #d5dbe1;border-radius:6px;padding:.8rem 1rem;"
    "display:grid;grid-template-columns:max-content 1fr;gap:.5rem 1rem;align-items:center;max-width:46rem}"
    "form.card button{grid-column:2;justify-self:start}form.inline{display:inline}"
    "form.filters{display:flex;flex-wrap:wrap;gap:.6rem;align-items:end;margin:.5rem 0}"
    "form.filters label{display:flex;flex-direction:column;font-size:.85rem}"
    "input,select,button{font:inherit;padding:.25rem .4rem}button{cursor:pointer}"
    "td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}"
    ".cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(10rem,1fr));gap:.8rem;margin:1rem 0}"
    ".card{background:#fff;border:1px solid #d5dbe1;border-radius:6px;padding:.6rem .9rem}"
    ".card b{display:block;font-size:1.5rem}svg.trace{background:#fff;border:1px solid #d5dbe1;"
    "border-radius:6px;max-width:100%;height:auto}pre{white-space:pre-wrap;word-break:break-all}"
)
