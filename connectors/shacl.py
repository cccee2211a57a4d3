"""Validate a connector's output against its kind's SHACL shapes (vocab/shapes/{kind}.ttl)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from enum import IntEnum

import vocab
from connectors.base import ConnectorResult, iter_triples
from connectors.errors import ConnectorError, ShaclValidationError

SH = "http://www.w3.org/ns/shacl#"
DEFAULT_SAMPLE = 20_000  # triples validated at most; larger outputs are sampled deterministically


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


def validate(
    result: ConnectorResult,
    kind: str,
    *,
    severity: str | Severity = Severity.Violation,
    max_triples: int = DEFAULT_SAMPLE,
    source: str | None = None,
) -> int:
    """Raise ShaclValidationError on any result at or above ``severity``; returns triples checked."""
    threshold = Severity.parse(severity)
    if result.ntriples_path is not None:
        with open(result.ntriples_path, encoding="utf-8") as fh:
            lines = list(sample(fh, result.triple_count, max_triples))
    else:
        lines = [f"{t} .\n" for t in iter_triples(result)]
    report = _report("".join(lines), kind)
    failures = _failures(report, threshold)
    if failures:
        shown = failures[:5]
        raise ShaclValidationError(source or result.prov.source, kind, shown, len(failures))
    return len(lines)


def sample(lines: Iterable[str], total: int, limit: int) -> Iterator[str]:
    """All N-Triples lines, or every k-th root subject with the nodes it references.

    Deterministic: the same file always gives the same sample. A root is a subject no earlier
    kept triple referenced (e.g. an observation, not its result node).
    """
    if total <= limit:
        yield from lines
        return
    step = max(2, -(-total // limit))
    referenced: set[str] = set()
    roots = 0
    current = ""
    keep = False
    for line in lines:
        subject = line[: line.find(" ")]
        if subject != current:
            current = subject
            if subject in referenced:
                keep = True
            else:
                roots += 1
                keep = roots % step == 1
        if keep:
            end = line.rstrip()
            if end.endswith("> ."):
                referenced.add(end[end.rfind(" <", 0, -2) + 1 : -2])
            yield line


def _report(ntriples: str, kind: str):
    from pyshacl import validate as shacl_validate
    from rdflib import Graph

    data = Graph()
    data.parse(data=ntriples, format="nt")
    shapes = Graph()
    shapes.parse(data=vocab.read_text(vocab.shapes(kind)), format="turtle")
    _conforms, report, _text = shacl_validate(
        data, shacl_graph=shapes, inference="none", advanced=False, allow_warnings=True
    )
    return report


def _failures(report, threshold: Severity) -> list[str]:
    from rdflib import Namespace

    sh = Namespace(SH)
    messages = []
    for res in sorted(report.subjects(sh.resultSeverity, None), key=str):
        level = str(report.value(res, sh.resultSeverity)).removeprefix(SH)
        if Severity.parse(level) < threshold:
            continue
        focus = report.value(res, sh.focusNode)
        path = report.value(res, sh.resultPath)
        message = report.value(res, sh.resultMessage)
        messages.append(f"{level} at <{focus}> {f'<{path}> ' if path else ''}{message}")
    return sorted(messages)
