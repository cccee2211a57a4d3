"""Stable dataset graph IRIs over versioned physical graphs, so a dataset swap is one tiny transaction.

Each version of a dataset is bulk-loaded into its own internal graph `urn:dsgo:data:{name}:{n}`;
the meta graph says which one is current. Queries and quad lookups name the stable graph
`{base}/dataset/{name}`; this module translates to physical graphs on the way in (dataset
arguments, and GRAPH / FROM / FROM NAMED IRIs in the query text) and back on the way out
(bindings of `GRAPH ?g` variables). pyoxigraph deletes slowly (measured: 54 s for 300k quads),
so replaced versions are removed later, off the request path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pyoxigraph as ox

from node.sparql_text import IRI, VAR, WORD, SparqlSyntaxError, expand_iri, prefixes, tokenize

PHYSICAL_PREFIX = "urn:dsgo:data:"


def physical_iri(name: str, seq: int) -> str:
    """The internal graph holding version `seq` of dataset `name`."""
    return f"{PHYSICAL_PREFIX}{name}:{seq}"


def rewrite_query(query: str, to_physical: Mapping[str, str]) -> tuple[str, bool]:
    """Replace dataset IRIs after GRAPH / FROM [NAMED] with physical ones.

    Returns the new text and whether a `GRAPH ?var` may bind graph names (results need mapping back).
    """
    upper = query.upper()
    if "GRAPH" not in upper and "FROM" not in upper:
        return query, False
    try:
        tokens = tokenize(query)
        declared, base = prefixes(tokens)
    except SparqlSyntaxError:
        return query, True  # let the engine report the syntax error
    edits: list[tuple[int, int, str]] = []
    binds_graph = False
    for i, token in enumerate(tokens[:-1]):
        if token.kind != WORD:
            continue
        word = token.text.upper()
        if word not in ("GRAPH", "FROM", "NAMED"):
            continue
        nxt = tokens[i + 1]
        if word == "FROM" and nxt.kind == WORD and nxt.text.upper() == "NAMED":
            continue
        if word == "GRAPH" and nxt.kind == VAR:
            binds_graph = True
            continue
        if nxt.kind == IRI or (nxt.kind == WORD and ":" in nxt.text):
            try:
                iri = expand_iri(nxt, declared, base)
            except SparqlSyntaxError:
                continue
            physical = to_physical.get(iri)
            if physical is not None:
                edits.append((nxt.start, nxt.end, f"<{physical}>"))
    for start, end, text in reversed(edits):
        query = query[:start] + text + query[end:]
    return query, binds_graph


class MappedSolutions:
    """Query solutions whose physical graph names are shown as the stable dataset IRIs."""

    def __init__(self, inner: ox.QuerySolutions, to_stable: Mapping[str, str]):
        self._inner = inner
        self._to_stable = to_stable
        self.variables = inner.variables

    def __iter__(self) -> Iterator[MappedSolution]:
        for solution in self._inner:
            yield MappedSolution(solution, self._to_stable, len(self.variables))


class MappedSolution:
    """One solution; indexing by position, name or Variable maps graph terms back."""

    __slots__ = ("_inner", "_to_stable", "_width")

    def __init__(self, inner: ox.QuerySolution, to_stable: Mapping[str, str], width: int):
        self._inner, self._to_stable, self._width = inner, to_stable, width

    def __getitem__(self, key: Any) -> Any:
        term = self._inner[key]
        if isinstance(term, ox.NamedNode):
            stable = self._to_stable.get(term.value)
            if stable is not None:
                return ox.NamedNode(stable)
        return term

    def __iter__(self) -> Iterator[Any]:
        return (self[i] for i in range(self._width))

    def __len__(self) -> int:
        return self._width


def map_triples(triples: Any, to_stable: Mapping[str, str]) -> Iterator[ox.Triple]:
    """CONSTRUCT output with any physical graph names (from GRAPH ?g) shown as dataset IRIs."""
    for t in triples:
        s, o = t.subject, t.object
        if isinstance(s, ox.NamedNode) and s.value in to_stable:
            s = ox.NamedNode(to_stable[s.value])
        if isinstance(o, ox.NamedNode) and o.value in to_stable:
            o = ox.NamedNode(to_stable[o.value])
        yield ox.Triple(s, t.predicate, o)
