"""The provenance trace of a resource drawn as a graph: an SVG made on the server from the
trace (node/trace.py), so an auditor sees source file -> connector run -> dataset version ->
dataset -> resource, the inputs it was derived from, and the parties that read it.

PROV-O's usual shapes: entities are rounded boxes, activities rectangles, agents pentagons.
Every text from the trace is escaped; the picture names no other origin (no links, no fonts).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from html import escape
from typing import Any

COLUMN_WIDTH = 270
BOX_WIDTH = 180
BOX_HEIGHT = 54
ROW_HEIGHT = 78
MARGIN = 20
MAX_LABEL = 28
FILL = {"entity": "#fff4c2", "activity": "#dbe8fb", "agent": "#fde2c8", "focus": "#d9f2dd"}
STROKE = {"entity": "#b08d00", "activity": "#3f6fb5", "agent": "#c06a16", "focus": "#2e7d3a"}


@dataclass(frozen=True)
class Node:
    id: str
    kind: str  # entity, activity, agent, focus (the traced resource)
    column: int
    title: str
    detail: str = ""
    full: str = ""  # hover text: the full IRI or value


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str


def trace_graph(trace: dict[str, Any]) -> tuple[list[Node], list[Edge]]:
    """Nodes and PROV edges (the direction PROV-O states them) from one trace answer."""
    nodes: dict[str, Node] = {}
    edges: list[Edge] = []

    def add(node: Node) -> str:
        nodes.setdefault(node.id, node)
        return node.id

    iri = str(trace.get("iri", ""))
    focus = add(Node("r:" + iri, "focus", 4, _short(iri), "traced resource", iri))
    for ds in trace.get("datasets") or []:
        name = str(ds.get("dataset") or ds.get("graph") or "")
        dataset = add(Node("d:" + name, "entity", 3, name, "dataset", str(ds.get("graph", ""))))
        edges.append(Edge(focus, dataset, "in dataset"))
        version = ds.get("version")
        if not version:
            continue
        v = add(
            Node(
                "v:" + version,
                "entity",
                2,
                "version " + version.rsplit("/", 1)[-1],
                str(ds.get("generated_at") or ""),
                version,
            )
        )
        edges.append(Edge(v, dataset, "specializationOf"))
        activity = ds.get("activity") or {}
        if activity.get("connector"):
            run = add(
                Node(
                    "a:" + version,
                    "activity",
                    1,
                    f"{activity.get('connector')} {activity.get('connector_version') or ''}".strip(),
                    str(activity.get("ended") or ""),
                    "connector run",
                )
            )
            edges.append(Edge(v, run, "wasGeneratedBy"))
            source = ds.get("source") or {}
            if source.get("location"):
                location = str(source["location"])
                src = add(
                    Node(
                        "s:" + location,
                        "entity",
                        0,
                        location.replace("\\", "/").rsplit("/", 1)[-1],
                        "sha256 " + str(source.get("sha256") or "")[:16] + "…",
                        f"{location}\nsha256 {source.get('sha256') or ''}",
                    )
                )
                edges.append(Edge(run, src, "used"))
        if ds.get("attributed_to"):
            party = str(ds["attributed_to"])
            agent = add(Node("p:" + party, "agent", 1, party, "made the version", party))
            edges.append(Edge(v, agent, "wasAttributedTo"))
        if ds.get("previous_version"):
            prev = str(ds["previous_version"])
            p = add(Node("v:" + prev, "entity", 0, "version " + prev.rsplit("/", 1)[-1], "", prev))
            edges.append(Edge(v, p, "wasRevisionOf"))
        for item in ds.get("derived_from") or []:
            remote = str(item.get("iri", ""))
            r = add(Node("i:" + remote, "entity", 0, _short(remote), "read at ETag", remote))
            edges.append(Edge(v, r, "wasDerivedFrom"))
    readers = Counter(str(a.get("party") or "anonymous") for a in trace.get("accesses") or [])
    for party, count in sorted(readers.items()):
        reader = add(
            Node("x:" + party, "agent", 5, party, f"{count} audit entries", f"{party}: {count}")
        )
        edges.append(Edge(reader, focus, "accessed"))
    return list(nodes.values()), edges


def trace_svg(trace: dict[str, Any]) -> str:
    """The trace as an inline SVG document fragment (<svg>…</svg>)."""
    nodes, edges = trace_graph(trace)
    rows: Counter[int] = Counter()
    place: dict[str, tuple[float, float]] = {}
    for node in nodes:
        row = rows[node.column]
        rows[node.column] += 1
        place[node.id] = (MARGIN + node.column * COLUMN_WIDTH, MARGIN + 22 + row * ROW_HEIGHT)
    width = MARGIN * 2 + 5 * COLUMN_WIDTH + BOX_WIDTH
    height = MARGIN * 2 + 22 + max(rows.values() or [1]) * ROW_HEIGHT
    out = [
        f'<svg class="trace" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        "<title>Provenance trace</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#55606c"/></marker></defs>',
    ]
    for i, heading in enumerate(
        ("source", "activity", "version", "dataset", "resource", "read by")
    ):
        out.append(
            f'<text x="{MARGIN + i * COLUMN_WIDTH + BOX_WIDTH / 2}" y="{MARGIN}" '
            f'text-anchor="middle" fill="#6b7785" font-size="11">{heading}</text>'
        )
    for edge in edges:
        (x1, y1), (x2, y2) = place[edge.source], place[edge.target]
        if x1 <= x2:
            sx, tx = x1 + BOX_WIDTH, x2
        else:
            sx, tx = x1, x2 + BOX_WIDTH
        sy, ty = y1 + BOX_HEIGHT / 2, y2 + BOX_HEIGHT / 2
        if x1 == x2:  # same column: go out to the right and back
            sx = tx = x1 + BOX_WIDTH
            path = f"M{sx},{sy} C{sx + 40},{sy} {tx + 40},{ty} {tx},{ty}"
        else:
            mid = (sx + tx) / 2
            path = f"M{sx},{sy} C{mid},{sy} {mid},{ty} {tx},{ty}"
        out.append(
            f'<g class="edge"><path d="{path}" fill="none" stroke="#55606c" stroke-width="1.3" '
            f'marker-end="url(#arrow)"/><text x="{(sx + tx) / 2}" y="{(sy + ty) / 2 - 4}" '
            f'text-anchor="middle" fill="#3b4653" font-size="10">{escape(edge.label)}</text></g>'
        )
    for node in nodes:
        x, y = place[node.id]
        fill, stroke = FILL[node.kind], STROKE[node.kind]
        out.append(f'<g class="node {node.kind}"><title>{escape(node.full or node.title)}</title>')
        if node.kind == "agent":
            w, h = BOX_WIDTH, BOX_HEIGHT
            points = f"{x},{y + 12} {x + w / 2},{y} {x + w},{y + 12} {x + w},{y + h} {x},{y + h}"
            out.append(f'<polygon points="{points}" fill="{fill}" stroke="{stroke}"/>')
        else:
            radius = 0 if node.kind == "activity" else 12
            out.append(
                f'<rect x="{x}" y="{y}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="{radius}" '
                f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>'
            )
        out.append(
            f'<text x="{x + BOX_WIDTH / 2}" y="{y + 23}" text-anchor="middle" '
            f'font-weight="600">{escape(_clip(node.title))}</text>'
        )
        if node.detail:
            out.append(
                f'<text x="{x + BOX_WIDTH / 2}" y="{y + 41}" text-anchor="middle" '
                f'fill="#3b4653" font-size="10.5">{escape(_clip(node.detail, 34))}</text>'
            )
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def _short(iri: str) -> str:
    """The last path segments of an IRI: what tells resources apart."""
    tail = iri.split("://", 1)[-1]
    parts = [p for p in tail.split("/") if p]
    return "/".join(parts[-2:]) if len(parts) > 2 else tail


def _clip(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
