"""One read of a SPARQL query: every fact a later step needs, from a single tokenization.

The enforcement point scopes by the dataset clause, the store maps dataset IRIs after GRAPH and
FROM to their physical graphs, the planner looks for SERVICE, the result cap looks for the
top-level LIMIT and the guard counts nesting. All of them read this outline, so they cannot
disagree about what the text says (one PREFIX/BASE resolver, one notion of "top level").
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from node.sparql.text import (
    IRI,
    LANGTAG,
    NUMBER,
    PUNCT,
    STRING,
    VAR,
    WORD,
    QueryTooComplex,
    SparqlSyntaxError,
    Token,
    expand_iri,
    prefixes,
    tokenize,
)

__all__ = [
    "GraphRef",
    "OutlineCache",
    "QueryOutline",
    "check_length",
    "guard",
    "outline",
    "text_of",
]

FORMS = frozenset(("SELECT", "CONSTRUCT", "ASK", "DESCRIBE"))
_OPERATOR_WORDS = frozenset(("OPTIONAL", "MINUS", "UNION"))
_OPERATOR_PUNCT = frozenset("/ | || && + - * ! = != < > <= >= ^".split())
# Structure characters and words, counted in the raw text.
_STRUCTURE = re.compile(r"[{(\[/|&+\-*!<>=]|OPTIONAL|MINUS|UNION", re.I)
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
# Below this many structure characters pyoxigraph's recursion cannot exhaust the query thread's
# stack, however the text is read (it takes several thousand nested groups or OPTIONALs).
ENGINE_SAFE_STRUCTURE = 2048
# The longest text that can be a lookup. It is also the longest text OutlineCache keeps, so a
# text read on the event loop to see whether it is one is not read again in the query pool.
LOOKUP_MAX_CHARS = 2048


@dataclass(frozen=True)
class GraphRef:
    """An IRI that names a graph: after GRAPH, FROM or FROM NAMED, with its character span."""

    start: int
    end: int
    iri: str
    clause: str  # "GRAPH", "FROM" or "FROM NAMED"


@dataclass(frozen=True, eq=False)
class QueryOutline:
    """The structure of one query text. Offsets are character offsets into `text`."""

    text: str
    tokens: tuple[Token, ...]
    prefixes: dict[str, str]
    base: str | None
    form: str | None  # SELECT, CONSTRUCT, ASK or DESCRIBE right after the prologue; else None
    form_index: int | None  # token index of the form keyword
    where_index: int | None  # token index of the WHERE group's '{'
    from_graphs: tuple[str, ...] | None  # None: no dataset clause at all
    from_named: tuple[str, ...] | None
    dataset_spans: tuple[tuple[int, int], ...]  # each FROM [NAMED] <iri>
    dataset_at: int  # where a dataset clause goes when the query has none
    limit: Token | None  # the number of a top-level LIMIT
    limit_readable: bool  # False: a top-level LIMIT not followed by a plain integer
    values_at: int | None  # offset of a trailing top-level VALUES
    graph_refs: tuple[GraphRef, ...]
    binds_graph: bool  # GRAPH ?var: graph names can appear in the results
    services: int  # SERVICE keywords anywhere
    depth: int  # deepest nesting of { ( [
    operators: int  # OPTIONAL, MINUS, UNION and operator punctuation
    lookup: bool = False  # a bounded lookup (is_lookup): cheap enough to run where it arrives

    @property
    def has_service(self) -> bool:
        return self.services > 0

    @property
    def prologue(self) -> str:
        """The PREFIX/BASE declarations before the query form."""
        if self.form_index is None:
            return ""
        return self.text[: self.tokens[self.form_index].start]

    def with_text(self, text: str, **changes: Any) -> QueryOutline:
        """The same outline over an edited text whose edits lie after every offset it keeps.

        A copy of the fields rather than `dataclasses.replace`, which costs more than the rest
        of a point query's rewriting (it runs on every query).
        """
        if not _FIELDS.issuperset(changes):
            raise TypeError(f"not outline fields: {sorted(set(changes) - _FIELDS)}")
        copy = object.__new__(QueryOutline)
        fields = copy.__dict__
        fields.update(self.__dict__)
        fields["text"] = text
        fields.update(changes)
        return copy


_FIELDS = frozenset(f.name for f in fields(QueryOutline))


class OutlineCache:
    """The outlines of recently read query texts, per party: the pages, dashboards and polling
    clients of a node send the same few texts again and again, and reading one costs more than
    its point lookup. Kept per party so that how fast a text is answered tells nobody what
    another party asked. Bounded (`size` texts of at most `max_chars`); an outline is immutable,
    so one may be shared by concurrent requests. The limits are still checked per request."""

    def __init__(self, size: int = 256, max_chars: int = LOOKUP_MAX_CHARS) -> None:
        self.size, self.max_chars = size, max_chars
        self._kept: dict[tuple[str, str], QueryOutline] = {}
        self._lock = threading.Lock()

    def outline(self, text: str, party: str) -> QueryOutline:
        """outline(text), read once while (party, text) is among the `size` most recently used."""
        if len(text) > self.max_chars:
            return outline(text)
        key = (party, text)
        kept = self._kept
        with self._lock:
            found = kept.pop(key, None)
            if found is not None:
                kept[key] = found  # most recently used last
                return found
        read = outline(text)  # outside the lock; a text read twice at once is kept once
        with self._lock:
            kept[key] = read
            while len(kept) > self.size:
                del kept[next(iter(kept))]
        return read


def text_of(query: str | QueryOutline) -> str:
    """The text to hand to an engine, from a text or an outline."""
    return query.text if isinstance(query, QueryOutline) else query


def outline(query: str | QueryOutline) -> QueryOutline:
    """Read `query` once (an outline is returned as it is)."""
    if isinstance(query, QueryOutline):
        return query
    tokens = tuple(tokenize(query))
    declared, base = prefixes(tokens)
    n = len(tokens)
    i = 0
    while i < n and tokens[i].is_word("PREFIX", "BASE"):
        i += 3 if tokens[i].is_word("PREFIX") else 2
    form_index = i if i < n and tokens[i].kind == WORD and tokens[i].text.upper() in FORMS else None
    form = tokens[form_index].text.upper() if form_index is not None else None

    depth = deepest = operators = services = 0
    braces = 0  # depth in { } only: "top level" for LIMIT and VALUES
    where_index: int | None = None
    template_end: int | None = None  # a CONSTRUCT template's closing '}'
    froms: list[str] | None = None
    named: list[str] | None = None
    spans: list[tuple[int, int]] = []
    refs: list[GraphRef] = []
    binds_graph = False
    limit: Token | None = None
    limit_readable = True
    values_at: int | None = None
    dataset_at: int | None = None
    for j, tok in enumerate(tokens):
        kind = tok.kind
        if kind == PUNCT:
            text = tok.text
            if text in "{([":
                depth += 1
                deepest = max(deepest, depth)
                if text == "{":
                    braces += 1
                    if form_index is not None and j > form_index and braces == 1:
                        if (
                            form == "CONSTRUCT"
                            and template_end is None
                            and j == form_index + 1
                            and where_index is None
                        ):
                            template_end = -1  # inside the template
                        elif where_index is None and template_end != -1:
                            where_index = j
                            if dataset_at is None:
                                dataset_at = tok.start
            elif text in "})]":
                depth -= 1
                if text == "}":
                    braces -= 1
                    if braces == 0 and template_end == -1:
                        template_end = j
            elif text in _OPERATOR_PUNCT:
                operators += 1
            continue
        if kind != WORD:
            continue
        word = tok.text.upper()
        if word in _OPERATOR_WORDS:
            operators += 1
        elif word == "SERVICE":
            services += 1
        elif word in ("GRAPH", "FROM", "NAMED") and j + 1 < n:
            nxt = tokens[j + 1]
            if word == "FROM" and nxt.is_word("NAMED"):
                clause_end = j + 2
                if clause_end < n:
                    iri = _graph_iri(tokens[clause_end], declared, base)
                    froms = froms if froms is not None else []
                    named = named if named is not None else []
                    if iri is not None:
                        named.append(iri)
                        refs.append(
                            GraphRef(
                                tokens[clause_end].start, tokens[clause_end].end, iri, "FROM NAMED"
                            )
                        )
                    spans.append((tok.start, tokens[clause_end].end))
                continue
            if word == "NAMED":
                continue  # handled with its FROM
            if word == "GRAPH" and nxt.kind == VAR:
                binds_graph = True
                continue
            iri = _graph_iri(nxt, declared, base)
            if word == "FROM":
                froms = froms if froms is not None else []
                named = named if named is not None else []
                if iri is not None:
                    froms.append(iri)
                spans.append((tok.start, nxt.end))
            if iri is not None:
                refs.append(GraphRef(nxt.start, nxt.end, iri, word))
        elif braces == 0 and where_index is not None and form == "SELECT":
            if word == "LIMIT" and limit is None and limit_readable:
                number = tokens[j + 1] if j + 1 < n else None
                if number is None or number.kind != NUMBER or not number.text.isdigit():
                    limit_readable = False
                else:
                    limit = number
            elif word == "VALUES" and values_at is None:
                values_at = tok.start
        elif (
            dataset_at is None
            and form_index is not None
            and j > form_index
            and braces == 0
            and word in ("WHERE", "ORDER", "LIMIT", "OFFSET", "GROUP", "HAVING", "VALUES")
        ):
            dataset_at = tok.start
    if dataset_at is None:
        dataset_at = len(query)
    return QueryOutline(
        text=query,
        tokens=tokens,
        prefixes=declared,
        base=base,
        form=form,
        form_index=form_index,
        where_index=where_index,
        from_graphs=tuple(froms) if froms is not None else None,
        from_named=tuple(named) if named is not None else None,
        dataset_spans=tuple(spans),
        dataset_at=dataset_at,
        limit=limit,
        limit_readable=limit_readable,
        values_at=values_at,
        graph_refs=tuple(refs),
        binds_graph=binds_graph,
        services=services,
        depth=deepest,
        operators=operators,
        lookup=form == "SELECT" and _is_lookup(query, tokens, form_index, where_index, declared),
    )


def guard(query: QueryOutline, limits: Any) -> None:
    """Refuse text that would exhaust the engine's stack before it ever reaches the engine.

    pyoxigraph parses and evaluates recursively: about a thousand nested groups, chained
    OPTIONALs or path steps crash the process. The counts are the outline's. An escape outside
    a string (`ex:a\\#b`, `<http://e/\\u0041#>`) or a `<...>` that is not `<scheme:...>`
    (`?a<?b#>`: a comparison read as an IRI) can make the tokenizer see a comment or a string
    where the engine sees syntax, hiding nesting from the count; text with any backslash or
    such a `<...>` is also held to a count of its raw structure characters.
    """
    check_length(query.text, limits)
    if query.depth > limits.max_depth:
        raise QueryTooComplex("nesting depth", query.depth, limits.max_depth, "query.max_depth")
    if query.operators > limits.max_operators:
        raise QueryTooComplex(
            "operator count", query.operators, limits.max_operators, "query.max_operators"
        )
    if query.services > limits.max_services:
        raise QueryTooComplex(
            "SERVICE count", query.services, limits.max_services, "query.max_services"
        )
    if len(query.text) <= ENGINE_SAFE_STRUCTURE:
        return  # every structure match takes a character: a short text cannot exceed the count
    rough = len(_STRUCTURE.findall(query.text))
    if rough > ENGINE_SAFE_STRUCTURE and _ambiguous(query):
        raise SparqlSyntaxError(
            f"the query has {rough} structure characters (over {ENGINE_SAFE_STRUCTURE}) and "
            "escapes outside strings or '<' written without spaces, which this node cannot "
            "count reliably; write comparisons as ?a < ?b and names without escapes"
        )


def _ambiguous(query: QueryOutline) -> bool:
    return _reads_ambiguously(query.text, query.tokens, query.prefixes)


def _reads_ambiguously(text: str, tokens: Sequence[Token], declared: dict[str, str]) -> bool:
    """Whether the engine may read `text` otherwise than these tokens say (guard's doc)."""
    if "\\" in text:
        return True
    for tok in tokens:
        if tok.kind == IRI:
            m = _SCHEME.match(tok.text[1:-1])
            if m is None or m.group(1) in declared:
                return True
    return False


_TERM_KINDS = frozenset((VAR, IRI, NUMBER))


def _is_lookup(
    text: str,
    tokens: Sequence[Token],
    form_index: int | None,
    where_index: int | None,
    declared: dict[str, str],
) -> bool:
    """`SELECT ?v… | * [WHERE] { s p o [.] } [LIMIT n]`, its three terms without a repeated
    variable, and nothing else after the prologue.

    Its evaluation is one index range read that yields a row per matching triple, so its cost
    is bounded by the rows it returns (node/service/dispatch.py runs such a query on the event
    loop with a small row budget). Every other shape is not a lookup: DISTINCT, FROM, FILTER,
    paths, OFFSET or ORDER BY can make the engine read many triples for a few rows, and so can
    a variable repeated within the pattern (`?x ?p ?x`). A text the engine may read otherwise
    than the tokenizer (escapes, `<` without spaces) is not one either.
    """
    if form_index is None or where_index is None or len(text) > LOOKUP_MAX_CHARS:
        return False
    n = len(tokens)
    i = form_index + 1
    if i < n and tokens[i].is_punct("*"):
        i += 1
    else:
        start = i
        while i < n and tokens[i].kind == VAR:
            i += 1
        if i == start:
            return False
    if i < n and tokens[i].is_word("WHERE"):
        i += 1
    if i != where_index:
        return False
    i += 1
    variables: set[str] = set()
    for position in range(3):
        end = _term_end(tokens, i, predicate=position == 1)
        if end is None:
            return False
        if tokens[i].kind == VAR:
            name = tokens[i].text[1:]
            if name in variables:
                return False
            variables.add(name)
        i = end
    if i < n and tokens[i].is_punct("."):
        i += 1
    if i >= n or not tokens[i].is_punct("}"):
        return False
    i += 1
    if i + 1 < n and tokens[i].is_word("LIMIT") and tokens[i + 1].kind == NUMBER:
        if not tokens[i + 1].text.isdigit():
            return False
        i += 2
    return i == n and not _reads_ambiguously(text, tokens, declared)


def _term_end(tokens: Sequence[Token], i: int, predicate: bool) -> int | None:
    """Where one plain RDF term or variable starting at token `i` ends; None if it is not one."""
    if i >= len(tokens):
        return None
    tok = tokens[i]
    if tok.kind in _TERM_KINDS:
        return i + 1
    if tok.kind == WORD:
        if ":" in tok.text or (predicate and tok.text == "a"):
            return i + 1
        return None
    if tok.kind != STRING or predicate:
        return None
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    if nxt is not None and nxt.kind == LANGTAG:
        return i + 2
    if nxt is not None and nxt.is_punct("^^"):
        dtype = tokens[i + 2] if i + 2 < len(tokens) else None
        if dtype is not None and (dtype.kind == IRI or (dtype.kind == WORD and ":" in dtype.text)):
            return i + 3
        return None
    return i + 1


def check_length(text: str, limits: Any) -> None:
    """The length limit, checked before the text is read at all."""
    if len(text) > limits.max_length:
        raise QueryTooComplex("length", len(text), limits.max_length, "query.max_length")


def _graph_iri(token: Token, declared: dict[str, str], base: str | None) -> str | None:
    if token.kind == IRI or (token.kind == WORD and ":" in token.text):
        try:
            return expand_iri(token, declared, base)
        except SparqlSyntaxError:
            return None  # an undeclared prefix: the engine reports it
    return None
