"""Validate a connector's output against its kind's SHACL shapes (vocab/shapes/{kind}.ttl)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from pathlib import Path
from typing import Any

import vocab
from connectors.base import ConnectorResult, iter_triples
from connectors.errors import ConnectorError, ShaclValidationError
from vocab.namespaces import SH

RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
RDFS_SUBCLASS = "<http://www.w3.org/2000/01/rdf-schema#subClassOf>"
DEFAULT_SAMPLE = 20_000  # outputs up to this many triples are validated whole


class Severity(IntEnum):
    """SHACL severities ordered so that a threshold means 'this or worse fails'."""

    Info = 1
    Warning = 2
    Violation = 3

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        if isinstance(value, Severity):
            return value
        for member in cls:
            if member.name.lower() == str(value).strip().lower():
                return member
        raise ConnectorError("severity", "", f"'{value}' is not one of Violation, Warning, Info")


@dataclass
class Sample:
    """N-Triples lines to validate and the nodes whose results count (None: every node)."""

    lines: list[str]
    focus: set[str] | None = None


_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"


def validate(
    result: ConnectorResult,
    kind: str,
    *,
    severity: str | Severity = Severity.Violation,
    max_triples: int = DEFAULT_SAMPLE,
    source: str | None = None,
) -> int:
    """Raise ShaclValidationError on any result at or above ``severity``; returns triples checked.

    Outputs of at most ``max_triples`` triples are validated whole; larger ones on a sample of
    closed subgraphs (see :func:`sample`), which gives exactly the results the whole output would
    give for the sampled nodes. When the shapes need more than that, the whole output is checked.
    """
    threshold = Severity.parse(severity)
    shapes = _shapes(kind)
    if result.ntriples_path is not None:
        picked = None
        if result.triple_count > max_triples and sampleable(shapes):
            picked = sample(result.ntriples_path, result.triple_count, max_triples)
        if picked is None:
            with open(result.ntriples_path, encoding="utf-8") as fh:
                picked = Sample(fh.readlines())
    else:
        picked = Sample([f"{t} .\n" for t in iter_triples(result)])
    report = _report("".join(picked.lines), shapes)
    failures = _failures(report, threshold, picked.focus)
    if failures:
        shown = failures[:5]
        raise ShaclValidationError(source or result.prov.source, kind, shown, len(failures))
    return len(picked.lines)


def sample(path: Path, total: int, limit: int) -> Sample | None:
    """Closed subgraphs around about ``limit / total`` of the subjects of an N-Triples file.

    A subject is picked when the CRC-32 of its term falls in the sample (deterministic: the same
    file always gives the same sample, whatever the order of its lines). For every picked node
    the sample holds all its triples, every triple that references it, and the rdf:type triples
    of each node on the other end (what sh:class needs); rdfs:subClassOf triples are kept too.
    Only results about picked nodes count, so a valid output never fails on its sample. Three
    streaming passes; memory grows with the sample, not the file. None when the file has blank
    nodes (their labels do not survive parsing: then there is no sample).
    """
    step = max(2, -(-2 * total // max(1, limit)))  # a picked node brings ~2x its own triples
    type_infix = f" {RDF_TYPE} "
    lines: list[str] = []
    focus: set[str] = set()
    context: set[str] = set()
    with open(path, encoding="utf-8") as fh:  # 1: the picked subjects' own triples
        for line in fh:
            if line.startswith("_:") or "> _:" in line:
                return None
            subject = line[: line.find(" ")]
            if subject and zlib.crc32(subject.encode("utf-8")) % step == 0:
                focus.add(subject)
                lines.append(line)
                obj = _iri_object(line)
                if obj and type_infix not in line:
                    context.add(obj)
            elif RDFS_SUBCLASS in line:
                lines.append(line)
    with open(path, encoding="utf-8") as fh:  # 2: the triples that reference a picked node
        for line in fh:
            obj = _iri_object(line)
            if obj in focus:
                subject = line[: line.find(" ")]
                if subject not in focus:
                    lines.append(line)
                    context.add(subject)
    context -= focus
    with open(path, encoding="utf-8") as fh:  # 3: the types of the nodes on the other end
        for line in fh:
            if type_infix in line and line[: line.find(" ")] in context:
                lines.append(line)
    return Sample(lines, focus)


def _iri_object(line: str) -> str | None:
    """The object of an N-Triples line when it is an IRI (the line ends with '> .')."""
    end = line.rstrip()
    if not end.endswith("> ."):
        return None
    start = end.rfind(" <", 0, -3)
    return end[start + 1 : -2] if start > 0 else None


def sampleable(shapes) -> bool:
    """True when every shape only looks at a node's own triples, its referrers and their types.

    That holds for paths of one step (an IRI, sh:inversePath of an IRI, sh:alternativePath of
    IRIs) with sh:class,
    cardinality, datatype, pattern, sh:in ... constraints; sh:node, qualified value shapes,
    SPARQL constraints or targets and longer paths need more of the graph, and targets that can
    pick a node that is no subject (sh:targetObjectsOf, sh:targetNode) would go unsampled.
    """
    from rdflib import BNode, Namespace, URIRef
    from rdflib.collection import Collection

    sh = Namespace(SH)
    for local in (
        "node",
        "qualifiedValueShape",
        "sparql",
        "target",
        "targetObjectsOf",
        "targetNode",
    ):
        if any(True for _ in shapes.triples((None, sh[local], None))):
            return False
    for path in shapes.objects(None, sh.path):
        if isinstance(path, URIRef):
            continue
        if not isinstance(path, BNode) or len(list(shapes.predicate_objects(path))) != 1:
            return False
        inverse = shapes.value(path, sh.inversePath)
        if isinstance(inverse, URIRef):
            continue
        choices = shapes.value(path, sh.alternativePath)  # one step along any of some IRIs
        if choices is None or not all(isinstance(c, URIRef) for c in Collection(shapes, choices)):
            return False
    return True


@cache
def _shapes(kind: str):
    from rdflib import Graph

    shapes = Graph()
    shapes.parse(data=vocab.read_text(vocab.shapes(kind)), format="turtle")
    return shapes


def _report(ntriples: str, shapes):
    from pyshacl import validate as shacl_validate
    from rdflib import Graph

    data = Graph()
    _parse_into(data, ntriples)
    _conforms, report, _text = shacl_validate(
        data, shacl_graph=shapes, inference="none", advanced=False, allow_warnings=True
    )
    return report


def _parse_into(graph, ntriples: str) -> None:
    """N-Triples into an rdflib graph, read by pyoxigraph: half of rdflib's own parse time (17 s
    for 275k triples), with each distinct term built once. Plain literals stay plain."""
    import pyoxigraph as ox
    from rdflib import BNode, Literal, URIRef

    terms: dict[Any, Any] = {}

    def term(node: Any) -> Any:
        found = terms.get(node)
        if found is None:
            if isinstance(node, ox.NamedNode):
                found = URIRef(node.value)
            elif isinstance(node, ox.BlankNode):
                found = BNode(node.value)
            elif node.language:
                found = Literal(node.value, lang=node.language)
            elif node.datatype.value == _XSD_STRING:
                found = Literal(node.value)
            else:
                found = Literal(node.value, datatype=URIRef(node.datatype.value))
            terms[node] = found
        return found

    add = graph.add
    for triple in ox.parse(ntriples, format=ox.RdfFormat.N_TRIPLES):
        add((term(triple.subject), term(triple.predicate), term(triple.object)))


def _failures(report, threshold: Severity, focus: set[str] | None = None) -> list[str]:
    from rdflib import Namespace

    sh = Namespace(SH)
    messages = []
    for res in sorted(report.subjects(sh.resultSeverity, None), key=str):
        level = str(report.value(res, sh.resultSeverity)).removeprefix(SH)
        if Severity.parse(level) < threshold:
            continue
        node = report.value(res, sh.focusNode)
        if focus is not None and node.n3() not in focus:
            continue  # a neighbour of a sampled node: only its types are in the sample
        path = report.value(res, sh.resultPath)
        message = report.value(res, sh.resultMessage)
        messages.append(f"{level} at <{node}> {f'<{path}> ' if path else ''}{message}")
    return sorted(messages)
