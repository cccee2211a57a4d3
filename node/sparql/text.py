"""A small SPARQL 1.1 tokenizer: enough to find keywords, groups and terms without a full parser.

Strings (short and long), IRIs and comments are single tokens, so a keyword inside them is
never mistaken for syntax. Whitespace and comments are dropped; every token keeps its offsets.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import NamedTuple
from urllib.parse import urljoin

from node.errors import NodeError

IRI = "iri"
STRING = "string"
VAR = "var"
BNODE = "bnode"
LANGTAG = "langtag"
NUMBER = "number"
WORD = "word"
PUNCT = "punct"

_NAME = r"A-Za-z0-9_\u00B7\u00C0-\U000EFFFF"
_PATTERNS = [
    (None, r"\s+"),
    (None, r"#[^\n\r]*"),
    (IRI, r"<[^<>\"{}|^`\\\x00-\x20]*>"),
    (STRING, r'"""(?:(?:"|"")?(?:[^"\\]|\\.))*"""'),
    (STRING, r"'''(?:(?:'|'')?(?:[^'\\]|\\.))*'''"),
    (STRING, r'"(?:[^"\\\n\r]|\\.)*"'),
    (STRING, r"'(?:[^'\\\n\r]|\\.)*'"),
    (VAR, rf"[?$][{_NAME}]+"),
    (BNODE, rf"_:[{_NAME}](?:[{_NAME}.\-]*[{_NAME}\-])?"),
    (LANGTAG, r"@[A-Za-z]+(?:-[A-Za-z0-9]+)*"),
    (NUMBER, r"\d*\.\d+(?:[eE][+-]?\d+)?|\d+\.?\d*[eE][+-]?\d+|\d+"),
    (
        WORD,
        # A prefixed name never ends with '.': that dot ends a triple (`ex:a.` is `ex:a` `.`).
        # A backslash escapes the next character (`ex:a\.b`, `ex:a\#b`), as in the SPARQL grammar.
        rf"(?:[A-Za-z\u00C0-\U000EFFFF][{_NAME}\-.]*)?:"
        rf"(?:(?:[{_NAME}:%\-.]|\\.)*(?:[{_NAME}:%\-]|\\.))?"
        rf"|[A-Za-z\u00C0-\U000EFFFF][{_NAME}\-]*",
    ),
    (PUNCT, r"\^\^|&&|\|\||!=|<=|>=|."),
]


@functools.cache
def _scanner() -> re.Pattern[str]:
    """The one tokenizer pattern, compiled on first use: its Unicode ranges take ~60 ms to
    compile, which a CLI command that never reads SPARQL should not pay."""
    return re.compile("|".join(f"(?P<t{i}>{p})" for i, (_, p) in enumerate(_PATTERNS)), re.DOTALL)


_KINDS = [kind for kind, _ in _PATTERNS]
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


class SparqlSyntaxError(NodeError):
    """The query text cannot be read (HTTP 400 `invalid_query`)."""

    status = 400
    code = "invalid_query"


class Token(NamedTuple):
    """One token: its kind, its text and its character offsets in the query.

    A named tuple, not a dataclass: a query makes one per token, and this is the hot path.
    """

    kind: str
    text: str
    start: int
    end: int

    def is_word(self, *words: str) -> bool:
        """True when this is a bare word equal (case-insensitively) to one of `words`."""
        return self.kind == WORD and self.text.upper() in words

    def is_punct(self, text: str) -> bool:
        return self.kind == PUNCT and self.text == text


class _Counter:
    """How many texts were tokenized (a test holds the query path to one per request)."""

    tokenizations = 0


STATS = _Counter()


def tokenize(query: str) -> list[Token]:
    """The tokens of `query`, without whitespace and comments."""
    STATS.tokenizations += 1
    # The alternatives cover every character (the last one matches any), so the matches are
    # contiguous and finditer reads the whole text; no pattern has a group of its own, so
    # `lastindex` says which alternative matched. One comprehension, each token built with
    # tuple.__new__ (what Token(...) does, minus its Python-level __new__): this runs on every
    # query, and the two take a sixth off its time.
    kinds, new = _KINDS, tuple.__new__
    return [
        new(Token, (kind, m.group(), m.start(), m.end()))
        for m in _scanner().finditer(query)
        if (kind := kinds[m.lastindex - 1]) is not None  # type: ignore[operator]
    ]


def mentions_service(text: str) -> bool:
    """Whether the word SERVICE appears anywhere (any case): a check that costs no tokenizing.

    False means the text cannot call out; True only means it may (a string or a comment can hold
    the word), and the outline decides.
    """
    return "SERVICE" in text.upper()


def variable_name(token: Token) -> str:
    """`?x` and `$x` both name the variable `x`."""
    return token.text[1:]


def prefixes(tokens: Sequence[Token]) -> tuple[dict[str, str], str | None]:
    """PREFIX declarations and the BASE of the prologue (relative IRIs resolved against BASE)."""
    declared: dict[str, str] = {}
    base = None
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.is_word("PREFIX") and i + 2 < len(tokens) and tokens[i + 2].kind == IRI:
            declared[tokens[i + 1].text.rstrip(":")] = _resolved(tokens[i + 2].text[1:-1], base)
            i += 3
        elif tok.is_word("BASE") and i + 1 < len(tokens) and tokens[i + 1].kind == IRI:
            base = _resolved(tokens[i + 1].text[1:-1], base)
            i += 2
        else:
            break
    return declared, base


def expand_iri(token: Token, declared: dict[str, str], base: str | None) -> str:
    """The full IRI of an IRI or prefixed-name token; SparqlSyntaxError for an unknown prefix."""
    if token.kind == IRI:
        return _resolved(token.text[1:-1], base)
    prefix, _, local = token.text.partition(":")
    if prefix not in declared:
        raise SparqlSyntaxError(f"undeclared prefix '{prefix}:' in {token.text}")
    return declared[prefix] + re.sub(r"\\(.)", r"\1", local)


def _resolved(value: str, base: str | None) -> str:
    """An IRI reference resolved against BASE (absolute IRIs stay as they are)."""
    if base and not _ABSOLUTE.match(value):
        return urljoin(base, value)
    return value


def matching(tokens: Sequence[Token], i: int) -> int:
    """Index of the bracket closing the one at `i` (any of {} () []), counting all three kinds."""
    opening = {"{": "}", "(": ")", "[": "]"}
    stack = [opening[tokens[i].text]]
    for j in range(i + 1, len(tokens)):
        tok = tokens[j]
        if tok.kind != PUNCT:
            continue
        if tok.text in opening:
            stack.append(opening[tok.text])
        elif tok.text in ("}", ")", "]"):
            if tok.text != stack[-1]:
                raise SparqlSyntaxError(f"unbalanced '{tok.text}' at offset {tok.start}")
            stack.pop()
            if not stack:
                return j
    raise SparqlSyntaxError(f"'{tokens[i].text}' at offset {tokens[i].start} is never closed")


class QueryTooComplex(SparqlSyntaxError):
    """A caller's query over one of the [query] limits (HTTP 400, naming the limit)."""

    def __init__(self, what: str, value: int, limit: int, key: str) -> None:
        super().__init__(
            f"query {what} is {value}, over the limit of {limit} ({key} in node.toml)",
            limit=limit,
            setting=key,
        )
        self.limit_key = key
        self.limit = limit
