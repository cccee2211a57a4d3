"""Edits of a query text made from its outline, never by reading the text again.

Each edit keeps the offsets the later steps use valid: a dataset clause sits before the WHERE
group (everything after it shifts by one amount), a LIMIT after it (nothing kept moves).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from node.sparql.outline import GraphRef, QueryOutline, outline
from node.sparql.text import IRI, WORD, Token

__all__ = ["splice", "with_dataset", "with_limit", "with_physical_graphs"]

_IRI_OK = re.compile(r'[^<>"{}|^`\\\x00-\x20]+')


def with_dataset(
    query: QueryOutline, default_graphs: Sequence[str], named_graphs: Sequence[str]
) -> QueryOutline:
    """The query with its FROM / FROM NAMED replaced by the given graphs.

    The SPARQL Protocol's default-graph-uri / named-graph-uri override the query's own dataset
    clause. ValueError for a graph that is not an IRI.
    """
    if not default_graphs and not named_graphs:
        return query
    for iri in [*default_graphs, *named_graphs]:
        if not _IRI_OK.fullmatch(iri):
            raise ValueError(f"not an IRI: {iri!r}")
    text = query.text
    if query.dataset_spans:
        at, stop = query.dataset_spans[0][0], query.dataset_spans[-1][1]
    else:
        at = stop = query.dataset_at
    pieces: list[str] = []
    inserted: list[Token] = []
    refs: list[GraphRef] = []
    spans: list[tuple[int, int]] = []
    pos = at + 1  # after the space that opens the clause
    for clause, graphs in (("FROM", default_graphs), ("FROM NAMED", named_graphs)):
        for g in graphs:
            begin = pos
            for word in clause.split():
                inserted.append(Token(WORD, word, pos, pos + len(word)))
                pieces.append(word + " ")
                pos += len(word) + 1
            iri = f"<{g}>"
            inserted.append(Token(IRI, iri, pos, pos + len(iri)))
            refs.append(GraphRef(pos, pos + len(iri), g, clause))
            spans.append((begin, pos + len(iri)))
            pieces.append(iri + " ")
            pos += len(iri) + 1
    new_text = text[:at] + " " + "".join(pieces) + text[stop:]
    delta = len(new_text) - len(text)
    kept_before = [r for r in query.graph_refs if r.end <= at]
    kept_after = [_moved(r, delta) for r in query.graph_refs if r.start >= stop]
    if any(at <= r.start < stop and r.clause == "GRAPH" for r in query.graph_refs):
        return outline(splice(text, [(at, stop, " " + "".join(pieces))]))  # unusual: read again
    before = [t for t in query.tokens if t.end <= at]
    after = [_token_moved(t, delta) for t in query.tokens if t.start >= stop]
    removed = len(query.tokens) - len(before) - len(after)
    where = query.where_index
    if where is not None:
        where += len(inserted) - removed
    return query.with_text(
        new_text,
        tokens=tuple(before + inserted + after),
        where_index=where,
        from_graphs=tuple(default_graphs),
        from_named=tuple(named_graphs),
        dataset_spans=tuple(spans),
        dataset_at=query.dataset_at + delta,
        graph_refs=tuple(kept_before + refs + kept_after),
        limit=None if query.limit is None else _token_moved(query.limit, delta),
        values_at=None if query.values_at is None else query.values_at + delta,
        lookup=query.lookup and not default_graphs and not named_graphs,  # FROM: not a lookup
    )


def with_limit(query: QueryOutline, rows: int) -> QueryOutline | None:
    """A SELECT whose answer has at most `rows` rows; None for other forms or unreadable text.

    The top-level LIMIT is lowered to `rows` (or one is added before a trailing VALUES, or at
    the end), so the engine's own writer can write the answer.
    """
    if query.form != "SELECT" or query.where_index is None or not query.limit_readable:
        return None
    text = query.text
    if query.limit is not None:
        if int(query.limit.text) <= rows:
            return query
        at, stop, insert = query.limit.start, query.limit.end, str(rows)
    elif query.values_at is not None:
        at = stop = query.values_at
        insert = f"LIMIT {rows}\n"
    else:
        at = stop = len(text)
        insert = f"\nLIMIT {rows}"
    if query.graph_refs and query.graph_refs[-1].end > at:
        return None  # not a plain query: leave it to the engine
    return query.with_text(text[:at] + insert + text[stop:], limit=None)


def with_physical_graphs(query: QueryOutline, to_physical: Mapping[str, str]) -> tuple[str, bool]:
    """The text with dataset IRIs after GRAPH / FROM [NAMED] replaced by their physical graphs.

    Also whether a `GRAPH ?var` may bind graph names (results then need mapping back).
    """
    edits = [
        (r.start, r.end, f"<{to_physical[r.iri]}>")
        for r in query.graph_refs
        if r.iri in to_physical
    ]
    return splice(query.text, edits), query.binds_graph


def splice(text: str, edits: Sequence[tuple[int, int, str]]) -> str:
    """Replace the character spans `edits` (start, end, new text) of `text`; spans do not overlap."""
    if not edits:
        return text
    out, pos = [], 0
    for start, end, new in sorted(edits):
        out += [text[pos:start], new]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _moved(ref: GraphRef, delta: int) -> GraphRef:
    return GraphRef(ref.start + delta, ref.end + delta, ref.iri, ref.clause)


def _token_moved(token: Token, delta: int) -> Token:
    return Token(token.kind, token.text, token.start + delta, token.end + delta)
