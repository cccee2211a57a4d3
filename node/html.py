"""Readable, self-contained HTML for a resource and for simple listings such as the catalog.

Every string from data is escaped here; callers hand over structured rows, never HTML.
Only http(s), path-relative and fragment links are made clickable (no ``javascript:`` hrefs).
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
    "http://www.w3.org/2000/01/rdf-schema#label",
    "http://purl.org/dc/terms/title",
    "http://www.w3.org/2004/02/skos/core#prefLabel",
    "https://schema.org/name",
    "http://xmlns.com/foaf/0.1/name",
)
_NAME_LIKE = ("label", "title", "name", "naam")
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


Item = str | Link | Text
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
    sections: Sequence[Section],
    alternates: Mapping[str, str] | None = None,
    subtitle: Item = "",
) -> bytes:
    """A complete HTML page with the given title and tables (all content escaped)."""
    out = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{escape(title)}</title>",
    ]
    for media_type, href in (alternates or {}).items():
        if "/" in media_type and _safe_href(href):
            out.append(f'<link rel="alternate" type="{escape(media_type)}" href="{escape(href)}">')
    out.append(f"<style>{_STYLE}</style></head><body><main>")
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
        _section(out, section)
    out.append("</main></body></html>\n")
    return "".join(out).encode("utf-8")


def render_resource(
    subject_iri: str,
    triples: Iterable[ox.Triple],
    labels: Mapping[str, str],
    context: Context,
    alternates: Mapping[str, str],
    link_for: Callable[[str], str] | None = None,
) -> bytes:
    """HTML view of one resource: its properties first, then other described nodes (bnodes).

    `link_for(iri)` gives the href for a linked IRI (e.g. through the node's /follow for another
    node's resources, which a browser could not fetch without a token); default: the IRI itself.
    """
    link = link_for or _identity
    by_subject: dict[str, list[ox.Triple]] = {}
    subject_terms: dict[str, ox.NamedNode | ox.BlankNode] = {}
    for triple in triples:
        key = _term_key(triple.subject)
        by_subject.setdefault(key, []).append(triple)
        subject_terms[key] = triple.subject
    main_key = "<" + subject_iri + ">"
    described = set(by_subject)
    main = by_subject.pop(main_key, [])
    title = _title(main) or labels.get(subject_iri) or compact_iri(subject_iri, context)
    sections = [
        Section("Properties", _rows(main, labels, context, described, link), ("Property", "Value"))
    ]
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
        rows = _rows(by_subject[key], labels, context, described, link)
        sections.append(Section(heading, rows, ("Property", "Value"), anchor))
    subtitle = Link(subject_iri, subject_iri, subject_iri)
    return render_page(title, sections, alternates, subtitle)


def _rows(
    triples: list[ox.Triple],
    labels: Mapping[str, str],
    context: Context,
    described: set[str],
    link: Callable[[str], str],
) -> list[tuple[Cell, Cell]]:
    """One row per property (rdf:type first, then by compact name), values sorted."""
    grouped: dict[str, list[Item]] = {}
    for triple in triples:
        grouped.setdefault(triple.predicate.value, []).append(
            _value(triple.object, labels, context, described, link)
        )
    order = sorted(grouped, key=lambda p: (p != RDF_TYPE, compact_iri(p, context)))
    rows: list[tuple[Cell, Cell]] = []
    for predicate in order:
        name = "a (rdf:type)" if predicate == RDF_TYPE else compact_iri(predicate, context)
        values = sorted(set(grouped[predicate]), key=_item_sort_key)
        rows.append((Link(name, predicate, predicate), values))
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
    if isinstance(cell, str | Link | Text):
        return _item(cell)
    items = [_item(item) for item in cell]
    if len(items) == 1:
        return items[0]
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def _item(item: Item) -> str:
    if isinstance(item, str):
        return escape(item)
    if isinstance(item, Text):
        note = f' <small class="note">{escape(item.note)}</small>' if item.note else ""
        return f"{escape(item.text)}{note}"
    title = f' title="{escape(item.title)}"' if item.title else ""
    if not _safe_href(item.href):
        return f"<span{title}>{escape(item.text)}</span>"
    return f'<a href="{escape(item.href)}"{title}>{escape(item.text)}</a>'


def _safe_href(href: str) -> bool:
    """http(s) URLs, fragments and paths only: an IRI like ``javascript:..`` stays text."""
    lowered = href.lstrip().lower()
    return lowered.startswith(("http://", "https://", "#")) or (
        lowered.startswith("/") and not lowered.startswith("//")
    )


_STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2733;"
    "background:#f7f8fa}main{max-width:70rem;margin:0 auto;padding:1.5rem}"
    "h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.6rem 0 .4rem}"
    ".iri,.alt{color:#4a5868;font-size:.9rem;word-break:break-all}"
    "table{border-collapse:collapse;width:100%;background:#fff}"
    "th,td{text-align:left;vertical-align:top;padding:.35rem .6rem;border-bottom:1px solid #e2e6ea}"
    "tbody th{font-weight:600;white-space:nowrap;width:1%}thead th{background:#eef1f4}"
    "td ul{margin:0;padding-left:1.1rem}a{color:#0b5cad}"
    ".note{color:#6b7785;font-size:.8em}.empty{color:#6b7785}"
)
