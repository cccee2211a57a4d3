"""QUDT unit IRIs -> the symbols people read ("m²", "W/(m²⋅K)"), from the vendored QUDT subset."""

from __future__ import annotations

from functools import lru_cache

import pyoxigraph as ox

import vocab
from vocab.namespaces import QUDT

QUDT_SYMBOL = QUDT + "symbol"


@lru_cache(maxsize=1)
def unit_symbols() -> dict[str, str]:
    """Every unit in vocab/ontologies/qudt-subset.ttl with its qudt:symbol."""
    text = vocab.read_text(vocab.ontology("qudt-subset.ttl"))
    return {
        q.subject.value: q.object.value
        for q in ox.parse(text.encode("utf-8"), ox.RdfFormat.TURTLE)
        if q.predicate.value == QUDT_SYMBOL and isinstance(q.subject, ox.NamedNode)
    }
