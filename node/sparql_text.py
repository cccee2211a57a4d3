"""A small SPARQL 1.1 tokenizer: enough to find keywords, groups and terms without a full parser.

Strings (short and long), IRIs and comments are single tokens, so a keyword inside them is
never mistaken for syntax. Whitespace and comments are dropped; every token keeps its offsets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

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
        rf"(?:[A-Za-z\u00C0-\U000EFFFF][{_NAME}\-.]*)?:(?:[{_NAME}:%\\\-.]*)|[A-Za-z\u00C0-\U000EFFFF][{_NAME}\-]*",
    ),
    (PUNCT, r"\^\^|&&|\|\||!=|<=|>=|."),
]
_SCANNER = re.compile("|".join(f"(?P<t{i}>{p})" for i, (_, p) in enumerate(_PATTERNS)), re.DOTALL)
_KINDS = [kind for kind, _ in _PATTERNS]
# A prologue (PREFIX and BASE declarations, comments) followed by SELECT.
_SELECT_FORM = re.compile(
    r"(?:\s+|#[^\n\r]*|PREFIX\s*[^\s<]*\s*<[^<>\s]*>|BASE\s*<[^<>\s]*>)*SELECT\b", re.I
)


class SparqlSyntaxError(Exception):
    """The query text cannot be read (HTTP 400)."""

    status = 400


@dataclass(frozen=True)
class Token:
    """One token: its kind, its text and its character offsets in the query."""

    kind: str
    text: str
    start: int
    end: int

    def is_word(self, *words: str) -> bool:
        """True when this is a bare word equal (case-insensitively) to one of `words`."""
        return self.kind == WORD and self.text.upper() in words

    def is_punct(self, text: str) -> bool:
        return self.kind == PUNCT and self.text == text


def tokenize(query: str) -> list[Token]:
    """The tokens of `query`, without whitespace and comments."""
    return list(_scan(query))


def variable_name(token: Token) -> str:
    """`?x` and `$x` both name the variable `x`."""
    return token.text[1:]


def prefixes(tokens: list[Token]) -> tuple[dict[str, str], str | None]:
    """PREFIX declarations and the BASE of the prologue."""
    declared: dict[str, str] = {}
    base = None
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.is_word("PREFIX") and i + 2 < len(tokens) and tokens[i + 2].kind == IRI:
            declared[tokens[i + 1].text.rstrip(":")] = tokens[i + 2].text[1:-1]
            i += 3
        elif tok.is_word("BASE") and i + 1 < len(tokens) and tokens[i + 1].kind == IRI:
            base = tokens[i + 1].text[1:-1]
            i += 2
        else:
            break
    return declared, base


def expand_iri(token: Token, declared: dict[str, str], base: str | None) -> str:
    """The full IRI of an IRI or prefixed-name token; SparqlSyntaxError for an unknown prefix."""
    if token.kind == IRI:
        value = token.text[1:-1]
        if base and not re.match(r"[A-Za-z][A-Za-z0-9+.\-]*:", value):
            from urllib.parse import urljoin

            return urljoin(base, value)
        return value
    prefix, _, local = token.text.partition(":")
    if prefix not in declared:
        raise SparqlSyntaxError(f"undeclared prefix '{prefix}:' in {token.text}")
    return declared[prefix] + re.sub(r"\\(.)", r"\1", local)


def matching(tokens: list[Token], i: int) -> int:
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


def _scan(query: str) -> Iterator[Token]:
    pos = 0
    while pos < len(query):
        m = _SCANNER.match(query, pos)
        if m is None:  # pragma: no cover - the last alternative matches any character
            raise SparqlSyntaxError(f"cannot read the query at offset {pos}")
        kind = _KINDS[int(m.lastgroup[1:])]
        text = m.group()
        if kind == WORD and text.endswith(".") and ":" in text:
            text = text.rstrip(".")  # a prefixed name never ends with '.'; that dot ends a triple
        if kind is not None:
            yield Token(kind, text, pos, pos + len(text))
        pos += len(text)


def limit_select(query: str, rows: int) -> str | None:
    """A SELECT query rewritten so its answer has at most `rows` rows; None for other forms.

    The top-level LIMIT is lowered to `rows` (or added before a trailing VALUES, or at the end).
    None also when the text cannot be read: the engine then reports the error.
    """
    upper = query.upper()
    if "LIMIT" not in upper and "VALUES" not in upper:  # the common case, without tokenizing
        return f"{query}\nLIMIT {rows}" if _SELECT_FORM.match(query) else None
    try:
        tokens = tokenize(query)
    except SparqlSyntaxError:
        return None
    i = 0
    while i < len(tokens) and tokens[i].is_word("PREFIX", "BASE"):
        i += 3 if tokens[i].is_word("PREFIX") else 2
    if i >= len(tokens) or not tokens[i].is_word("SELECT"):
        return None
    depth = 0
    values_at: int | None = None
    for j in range(i, len(tokens)):
        tok = tokens[j]
        if tok.kind == PUNCT and tok.text in "{}":
            depth += 1 if tok.text == "{" else -1
        elif depth == 0 and tok.is_word("LIMIT"):
            number = tokens[j + 1] if j + 1 < len(tokens) else None
            if number is None or number.kind != NUMBER or not number.text.isdigit():
                return None
            if int(number.text) <= rows:
                return query
            return query[: number.start] + str(rows) + query[number.end :]
        elif depth == 0 and tok.is_word("VALUES") and values_at is None:
            values_at = tok.start
    if values_at is not None:
        return f"{query[:values_at]}LIMIT {rows}\n{query[values_at:]}"
    return f"{query}\nLIMIT {rows}"


class QueryTooComplex(SparqlSyntaxError):
    """A caller's query over one of the [query] limits (HTTP 400, naming the limit)."""

    def __init__(self, what: str, value: int, limit: int, key: str) -> None:
        super().__init__(f"query {what} is {value}, over the limit of {limit} ({key} in node.toml)")
        self.limit_key = key
        self.limit = limit


_STRUCTURE = re.compile(r"[{(\[/|&+\-*!<>=]|OPTIONAL|MINUS|UNION", re.I)
_OPERATOR_WORDS = frozenset(("OPTIONAL", "MINUS", "UNION"))
_OPERATOR_PUNCT = frozenset("/ | || && + - * ! = != < > <= >= ^".split())


def guard(query: str, limits: object) -> None:
    """Refuse text that would exhaust the engine's stack before it ever reaches the engine.

    pyoxigraph parses and evaluates recursively: about a thousand nested groups, chained
    OPTIONALs or path steps crash the process. Most queries are counted without tokenizing.
    """
    max_length = limits.max_length  # type: ignore[attr-defined]
    if len(query) > max_length:
        raise QueryTooComplex("length", len(query), max_length, "query.max_length")
    max_depth, max_ops = limits.max_depth, limits.max_operators  # type: ignore[attr-defined]
    max_services = limits.max_services  # type: ignore[attr-defined]
    rough = len(_STRUCTURE.findall(query))
    services = query.upper().count("SERVICE")
    if rough <= min(max_depth, max_ops) and services <= max_services:
        return
    depth = deepest = ops = found = 0
    for tok in _scan(query):
        if tok.kind == PUNCT:
            if tok.text in "{([":
                depth += 1
                if depth > deepest:
                    deepest = depth
                    if deepest > max_depth:
                        raise QueryTooComplex(
                            "nesting depth", deepest, max_depth, "query.max_depth"
                        )
            elif tok.text in "})]":
                depth -= 1
            elif tok.text in _OPERATOR_PUNCT:
                ops += 1
        elif tok.kind == WORD:
            word = tok.text.upper()
            if word in _OPERATOR_WORDS:
                ops += 1
            elif word == "SERVICE":
                found += 1
        if ops > max_ops:
            raise QueryTooComplex("operator count", ops, max_ops, "query.max_operators")
    if found > max_services:
        raise QueryTooComplex("SERVICE count", found, max_services, "query.max_services")
