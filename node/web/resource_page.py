"""The HTML page of one resource (GET /id/... for a browser): label first, quantities as
"value unit", links that stay on this node, and where the data came from.

The resource's value nodes (`{iri}/qv/...`, `{iri}/pv/...`, written by the IFC connector) are
read with it and go through the same one decision of the enforcement point, so a wall's page
shows "49.72 m²" instead of a link to a value node.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyoxigraph as ox

from node.html import render_resource
from node.jsonld import load_context
from node.runtime import Runtime
from node.web.provenance_panel import provenance_section
from node.web.units import unit_symbols

ALTERNATES = {
    "application/ld+json": "?format=jsonld",
    "text/turtle": "?format=ttl",
    "application/n-triples": "?format=nt",
}
MAX_VALUE_NODES = 500


def value_node_quads(rt: Runtime, iri: str, quads: Sequence[ox.Quad]) -> list[ox.Quad]:
    """The quads of the resource's own value nodes (objects under `{iri}/`), in its graphs."""
    prefix = iri + "/"
    graphs = sorted({q.graph_name.value for q in quads})
    nodes = sorted(
        {
            q.object.value
            for q in quads
            if isinstance(q.object, ox.NamedNode) and q.object.value.startswith(prefix)
        }
    )[:MAX_VALUE_NODES]
    out: list[ox.Quad] = []
    for node in nodes:
        out.extend(rt.store.quads(subject=node, graphs=graphs))
    return out


def render(
    rt: Runtime,
    caller: str,
    iri: str,
    quads: Sequence[ox.Quad],
    graphs: list[str],
    labels_for,
) -> bytes:
    """The page for `caller`: one enforcement decision over the resource and its value nodes."""
    items = [*quads, *value_node_quads(rt, iri, quads)]
    triples = rt.enforcer.describe(caller, items, iri, graphs)
    kept = set(triples)
    holding = sorted({q.graph_name.value for q in items if q.triple in kept})
    labels = labels_for(triples)
    panel = provenance_section(rt, holding)
    return render_resource(
        iri,
        triples,
        labels,
        load_context(),
        ALTERNATES,
        base_iri=rt.settings.base_iri,
        units=unit_symbols(),
        panels=[panel],
    )
