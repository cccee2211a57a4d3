"""Fast JSON-LD compaction with the node's fixed, prefix-only context.

pyoxigraph writes the triples as N-Triples (in Rust); one pass over the sorted, de-duplicated
lines builds the compacted node objects and orjson writes them with sorted keys.

Produces the same document as ``pyld.jsonld.compact(from_rdf(triples), context)`` (default
options) for the shapes the node serves, at a fraction of the cost; tests/test_jsonld.py checks
that equivalence. Known, deliberate differences from pyld (ours stay correct RDF):

- a compact IRI whose local part starts with ``//`` would not expand back (``bot://x`` is read as
  an absolute IRI), so we keep the absolute IRI where pyld emits the broken CURIE;
- ``rdf:JSON`` literals stay ``{"@value": "<lexical>", "@type": "rdf:JSON"}`` (pyld re-parses
  them into ``@json`` values, which can change the lexical form);
- RDF lists stay as ``rdf:first``/``rdf:rest`` nodes (pyld folds them into ``@list``);
- where pyld refuses (an absolute IRI such as ``bot:x`` that reads as a CURIE of a context
  prefix) we emit the whole document without a context, with absolute IRIs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import orjson
import pyoxigraph as ox

from vocab.namespaces import RDF_TYPE

_GEN_DELIMS = frozenset(":/?#[]@")
_CACHE_LIMIT = 50_000


@dataclass(frozen=True)
class Context:
    """A prefix-only JSON-LD context, ready for compaction (caches compacted IRIs)."""

    document: dict[str, Any]
    prefixes: tuple[tuple[str, str], ...]
    _by_namespace: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    _terms: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    _vocab_cache: dict[str, str | None] = field(default_factory=dict, repr=False, compare=False)
    _id_cache: dict[str, str | None] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Context:
        """Validate a ``{"@context": {term: namespace}}`` document; reject anything richer."""
        mapping = document.get("@context")
        if not isinstance(mapping, dict):
            raise ValueError("context document must hold an inline '@context' object")
        prefixes = []
        for term, namespace in mapping.items():
            if term.startswith("@") or ":" in term:
                raise ValueError(f"unsupported context entry {term!r}: prefixes only")
            if not isinstance(namespace, str) or not namespace:
                raise ValueError(f"context term {term!r} must map to a namespace IRI string")
            if namespace[-1] not in _GEN_DELIMS:
                raise ValueError(f"namespace of {term!r} must end in a gen-delim (# or /)")
            prefixes.append((term, namespace))
        by_namespace = {ns: term for term, ns in prefixes}
        return cls(
            document=document,
            prefixes=tuple(prefixes),
            _by_namespace=by_namespace,
            _terms=frozenset(by_namespace.values()),
        )

    @property
    def mapping(self) -> dict[str, str]:
        """The inline context object (term -> namespace)."""
        return self.document["@context"]


@cache
def load_context() -> Context:
    """The node's fixed context from vocab/context.jsonld, loaded once and shared."""
    text = resources.files("vocab").joinpath("context.jsonld").read_text(encoding="utf-8")
    return Context.from_document(json.loads(text))


def compact_iri(iri: str, context: Context) -> str:
    """Display form of an IRI: its CURIE or prefix term when the context allows, else itself."""
    prefix = context._by_namespace.get(iri)
    if prefix is not None:
        return prefix
    try:
        return _curie(iri, context)
    except _ConfusedIri:
        return iri


class _ConfusedIri(Exception):
    """An absolute IRI that would read as a CURIE of a context prefix (pyld refuses these)."""


def compact(triples: Iterable[ox.Triple], context: Context) -> bytes:
    """Serialise triples as compacted JSON-LD (sorted, deterministic bytes) using orjson."""
    lines = _sorted_lines(_ntriples(triples))
    try:
        body = _build(lines, context, with_context=True)
    except _ConfusedIri:
        body = _build(lines, _EMPTY, with_context=False)
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


_EMPTY = Context(document={"@context": {}}, prefixes=())
_ESCAPE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))")
_ECHARS = {"t": "\t", "b": "\b", "n": "\n", "r": "\r", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def _ntriples(triples: Iterable[Any]) -> str:
    """N-Triples text of the input, written by pyoxigraph (far cheaper than term attribute access).

    Quads in a named graph are accepted too: their graph name is dropped.
    """
    items = triples if isinstance(triples, list | tuple) else list(triples)
    try:
        data = ox.serialize(items, format=ox.RdfFormat.N_TRIPLES)
    except ValueError:
        data = ox.serialize([q.triple for q in items], format=ox.RdfFormat.N_TRIPLES)
    return data.decode("utf-8") if data else ""


def _sorted_lines(data: str) -> list[str]:
    """De-duplicated, sorted ``subject predicate object`` lines (the trailing `` .`` dropped).

    Terms hold no spaces, so sorting makes each subject's and predicate's lines contiguous and
    each object list ordered: grouping becomes one linear pass, and the output deterministic.
    """
    lines = sorted(set(data.split(" .\n")))
    if lines and not lines[0]:
        del lines[0]
    return lines


def _build(lines: list[str], context: Context, with_context: bool) -> dict[str, Any]:
    """One pass over sorted lines building compacted node objects."""
    graph = []
    vocab = context._vocab_cache
    ids = context._id_cache
    node: dict[str, Any] = {}
    values: list[Any] = []
    last_subject = last_predicate = ""
    for line in lines:
        subject, predicate, obj = line.split(" ", 2)
        if subject != last_subject:
            node = {
                "@id": subject
                if subject[0] == "_"
                else ids.get(subject) or _id_iri(subject, context)
            }
            graph.append(node)
            last_subject, last_predicate = subject, ""
        first = obj[0]
        if predicate != last_predicate or (predicate == _RDF_TYPE_NT and first != '"'):
            last_predicate = predicate
            if predicate == _RDF_TYPE_NT and first != '"':
                key = "@type"
                obj = obj if first == "_" else vocab.get(obj) or _vocab_iri(obj, context)
                first = ""  # already compacted
            else:
                key = vocab.get(predicate) or _vocab_iri(predicate, context)
            values = node.get(key)
            if values is None:
                values = node[key] = []
        if first == '"':
            if obj[-1] == '"' and "\\" not in obj:
                values.append(obj[1:-1])  # the common plain string
            else:
                values.append(_literal(obj, context))
        elif first == "<":
            values.append({"@id": ids.get(obj) or _id_iri(obj, context)})
        elif first == "_":
            values.append({"@id": obj})
        else:
            values.append(obj)
    for node in graph:
        for key, value in node.items():
            if len(value) == 1 and key != "@id":
                node[key] = value[0]
    graph.sort(key=_node_sort_key)
    document: dict[str, Any] = {"@context": context.mapping} if with_context else {}
    if len(graph) == 1:
        document.update(graph[0])
    elif graph:
        document["@graph"] = graph
    return document


_RDF_TYPE_NT = "<" + RDF_TYPE + ">"


def _node_sort_key(node: dict[str, Any]) -> str:
    return node["@id"]


def _literal(term: str, context: Context) -> Any:
    """A literal in N-Triples form as pyld compacts it (lexical forms kept as strings)."""
    end = term.rindex('"')
    lexical = term[1:end]
    if "\\" in lexical:
        lexical = _ESCAPE.sub(_unescape, lexical)
    if end + 1 == len(term):
        return lexical
    if term[end + 1] == "@":
        language, _, direction = term[end + 2 :].partition("--")
        value = {"@value": lexical, "@language": language}
        if direction:
            value["@direction"] = direction
        return value
    datatype = term[end + 3 :]
    return {
        "@value": lexical,
        "@type": context._vocab_cache.get(datatype) or _vocab_iri(datatype, context),
    }


def _unescape(match: re.Match[str]) -> str:
    short, long, char = match.groups()
    if char is not None:
        return _ECHARS.get(char, char)
    return chr(int(short or long, 16))


def _vocab_iri(term: str, context: Context) -> str:
    """Compact an ``<iri>`` in vocab position (property, class, datatype): a namespace IRI
    itself becomes its term."""
    iri = term[1:-1]
    prefix = context._by_namespace.get(iri)
    result = prefix if prefix is not None else _curie(iri, context)
    _remember(context._vocab_cache, term, result)
    return result


def _id_iri(term: str, context: Context) -> str:
    """Compact an ``<iri>`` in node position (``@id``): CURIE when safe, else absolute."""
    result = _curie(term[1:-1], context)
    _remember(context._id_cache, term, result)
    return result


def _remember(cache: dict[str, str | None], iri: str, result: str) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[iri] = result


def _curie(iri: str, context: Context) -> str:
    """Shortest (then lexicographically least) usable CURIE, as pyld chooses; else the IRI."""
    best = None
    for term, namespace in context.prefixes:
        if len(iri) > len(namespace) and iri.startswith(namespace):
            local = iri[len(namespace) :]
            if local.startswith("//"):
                continue  # 'p://x' would expand as an absolute IRI, not as a CURIE
            curie = term + ":" + local
            if best is None or (len(curie), curie) < (len(best), best):
                best = curie
    if best is not None:
        return best
    scheme, colon, _ = iri.partition(":")
    if colon and scheme in context._terms:
        raise _ConfusedIri(iri)
    return iri
