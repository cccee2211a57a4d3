"""Benchmark: our JSON-LD compaction vs pyld compaction vs pyoxigraph's expanded JSON-LD writer."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pyoxigraph as ox
from pyld import jsonld as pyld

from node.jsonld import compact, load_context

BASE = "http://127.0.0.1:8101/id/space/"
BOT = "https://w3id.org/bot#"
PROPS = "https://w3id.org/props#"
XSD = "http://www.w3.org/2001/XMLSchema#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"


def run(nodes: int = 50, repeat: int = 200) -> dict:
    """Milliseconds per document of ``nodes`` subjects for each serialiser, and the ratios."""
    triples = sample_triples(nodes)
    context = load_context()
    expanded = pyld.from_rdf(pyld_dataset(triples))
    compact(triples, context)  # warm the IRI caches, as in a running node
    ours = _ms_per_call(lambda: compact(triples, context), repeat)
    pyld_ms = _ms_per_call(lambda: pyld.compact(expanded, context.document), max(5, repeat // 20))
    oxigraph = _ms_per_call(lambda: ox.serialize(triples, format=ox.RdfFormat.JSON_LD), repeat)
    return {
        "nodes": nodes,
        "triples": len(triples),
        "ours_ms": round(ours, 4),
        "pyld_compact_ms": round(pyld_ms, 4),
        "oxigraph_expanded_ms": round(oxigraph, 4),
        "pyld_over_ours": round(pyld_ms / ours, 1),
        "ours_over_oxigraph": round(ours / oxigraph, 2),
    }


def sample_triples(nodes: int) -> list[ox.Triple]:
    """``nodes`` node objects: typed spaces (label, numbers, links), each with a blank node."""
    out = []
    spaces = max(1, nodes // 2)
    for i in range(spaces):
        s = ox.NamedNode(f"{BASE}{i:04d}")
        q = ox.BlankNode(f"q{i}")
        out += [
            ox.Triple(s, ox.NamedNode(RDF_TYPE), ox.NamedNode(BOT + "Space")),
            ox.Triple(s, ox.NamedNode(RDFS + "label"), ox.Literal(f"Ruimte {i}", language="nl")),
            ox.Triple(s, ox.NamedNode(PROPS + "name"), ox.Literal(f"Space {i}")),
            ox.Triple(
                s,
                ox.NamedNode(PROPS + "area"),
                ox.Literal(f"{i}.5", datatype=ox.NamedNode(XSD + "decimal")),
            ),
            ox.Triple(
                s, ox.NamedNode(BOT + "adjacentZone"), ox.NamedNode(f"{BASE}{(i + 1) % spaces:04d}")
            ),
            ox.Triple(s, ox.NamedNode(PROPS + "quantity"), q),
            ox.Triple(
                q,
                ox.NamedNode(PROPS + "value"),
                ox.Literal(str(i), datatype=ox.NamedNode(XSD + "integer")),
            ),
        ]
    return out


def _ms_per_call(fn: Callable[[], object], repeat: int) -> float:
    """Best of five rounds, in CPU time of this process (the host's cores are shared)."""
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(repeat):
            fn()
        best = min(best, (time.process_time() - start) / repeat)
    return best * 1000


def pyld_dataset(triples: list[ox.Triple]) -> dict:
    """The triples in pyld's RDF dataset form, as pyld.from_rdf takes them (also used by tests)."""
    return {"@default": [_pyld_triple(t) for t in triples]}


def _pyld_triple(triple: ox.Triple) -> dict:
    return {k: _pyld_term(getattr(triple, k)) for k in ("subject", "predicate", "object")}


def _pyld_term(term: object) -> dict:
    if isinstance(term, ox.NamedNode):
        return {"type": "IRI", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "blank node", "value": "_:" + term.value}
    out = {"type": "literal", "value": term.value, "datatype": term.datatype.value}
    if term.language:
        out["language"] = term.language
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
