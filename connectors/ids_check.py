"""Check an IFC model against IDS 1.0 files with ifctester; the report as SHACL results + PROV-O.

The IDS engine is ifctester (IfcOpenShell's IDS implementation); this module only runs it and
writes down what it found:

- a ``sh:ValidationReport`` (``{base}/id/report/{report_dataset}``) with ``sh:conforms``: IDS 1.0
  semantics, so a *required* specification that no entity in the model meets fails too;
- per specification a ``dsgo:SpecificationResult``: verdict, applicable / passed / failed
  entity counts, the applicable entities, one ``dsgo:Requirement`` per requirement facet;
- per failed (entity, requirement) a ``sh:ValidationResult``: ``sh:focusNode`` the entity's
  resource in the model dataset, ``sh:value`` the value found, ``dsgo:expected`` the value the
  requirement asks for, ``sh:resultMessage`` ifctester's reason;
- PROV-O: the report ``prov:wasDerivedFrom`` the model (dataset version, sha256) and every IDS
  file (sha256, title, version, date) and ``prov:wasGeneratedBy`` a check activity that names
  ifctester's version and the start and end time.

The output is sorted N-Triples: the same model, IDS files and tool versions give the same bytes
apart from the three time lines, so a report can be signed and a re-run compared with it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, Literal

import pyoxigraph as ox

from connectors import ntriples as nt
from connectors.base import ConnectorResult, ProvRecord
from connectors.errors import ConnectorError
from connectors.fingerprints import file_modified, file_sha256, utc_now
from vocab.iris import dataset_iri
from vocab.namespaces import DCT, DSGO, PROPS, PROV, SH, XSD

NAME = "ids-check"
VERSION = "1.0.0"

RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
RDFS_LABEL = "<http://www.w3.org/2000/01/rdf-schema#label>"

# IFC schemas ifctester checks (IDS 1.0 ifcVersion values); what ifcopenshell reports for them.
SUPPORTED_SCHEMAS = ("IFC2X3", "IFC4", "IFC4X3_ADD2")
_SCHEMA_ALIASES = {"IFC4X3": "IFC4X3_ADD2"}
_DATASET_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")  # the node's rule (node/iri.py)

Verdict = Literal["pass", "fail", "missing", "not-applicable"]
IriFor = Callable[[Any], str | None]
"""Entity -> IRI of its resource in the model dataset, or None if the dataset has none."""

_VERDICT_IRI = {
    "pass": "Passed",
    "fail": "Failed",
    "missing": "Missing",
    "not-applicable": "NotApplicable",
}
_FACET_COMPONENT = {
    "Entity": "EntityFacet",
    "Attribute": "AttributeFacet",
    "Classification": "ClassificationFacet",
    "Property": "PropertyFacet",
    "Material": "MaterialFacet",
    "PartOf": "PartOfFacet",
}


# ---------------------------------------------------------------- the model's resource IRIs


def connector_iri_for(base_iri: str, model_dataset: str | None = None) -> IriFor:
    """The IFC connector's own IRI rule (`connectors.ifc.resource_iri`) for `model_dataset`.

    Entities the connector does not describe (IfcProject, IfcMapConversion, ...), and every
    entity of a model checked as a file with no dataset, have no resource there: None (the
    report then describes them with a node of its own).
    """
    from connectors.ifc import ifc_kind, resource_iri

    def iri_for(entity: Any) -> str | None:
        if model_dataset is None:
            return None
        kind = ifc_kind(entity)
        if kind is None or not getattr(entity, "GlobalId", None):
            return None
        return resource_iri(base_iri, model_dataset, kind, entity.GlobalId)

    return iri_for


# ---------------------------------------------------------------- the boundary's dataclasses


@dataclass(frozen=True)
class IdsDocument:
    """One IDS file as checked: its fingerprint and ``ids:info``."""

    path: str
    sha256: str
    iri: str  # ni:///sha-256;... (RFC 6920): named by its content
    title: str
    version: str | None
    date: str | None
    specifications: int


@dataclass(frozen=True)
class RequirementSummary:
    """One requirement facet of a specification and how many applicable entities failed it."""

    index: int  # 1-based within the specification
    facet: str  # entity, attribute, classification, property, material, partOf
    cardinality: str  # required, optional, prohibited
    text: str  # ifctester's sentence, e.g. "The Description shall be ..."
    expected: str
    passed: int
    failed: int


@dataclass(frozen=True)
class SpecificationSummary:
    """One IDS specification: verdict and counts of applicable, passed and failed entities."""

    index: int  # 1-based over all specifications of all IDS files, in report order
    ids_file: str  # file name of its IDS
    name: str
    identifier: str | None
    usage: str  # required, optional, prohibited
    verdict: Verdict
    applicable: int
    passed: int
    failed: int
    requirements: tuple[RequirementSummary, ...]


@dataclass(frozen=True)
class Failure:
    """One entity that failed one requirement (or a specification-level failure)."""

    specification: int
    requirement: int | None  # None: the specification itself (required but absent, prohibited)
    focus_iri: str
    ifc_class: str | None
    global_id: str | None
    name: str | None
    message: str
    value: str | int | float | bool | None
    expected: str


@dataclass(frozen=True)
class CheckSummary:
    """Counts over all specifications. ``conforms`` is the IDS 1.0 verdict of the whole check."""

    specifications: tuple[SpecificationSummary, ...]
    total: int
    applicable: int  # verdict pass or fail: at least one entity was checked
    passed: int
    failed: int
    missing: int  # required, but no entity in the model meets its applicability
    not_applicable: int  # optional with no applicable entity, or not for this IFC schema
    conforms: bool  # no failed and no missing specification (IDS 1.0)
    applicable_pass: bool  # every applicable specification passed (missing ones aside)


@dataclass
class CheckResult:
    """The check's summary, its report as sorted N-Triples, and what the node needs to store it."""

    summary: CheckSummary
    failures: tuple[Failure, ...]
    report_iri: str
    model_iri: str
    model_sha256: str
    model_schema: str
    ids: tuple[IdsDocument, ...]
    checker_version: str
    started: datetime
    ended: datetime
    prov: ProvRecord
    lines: list[str] = field(repr=False)  # sorted N-Triples lines, each ending in "\n"
    ntriples_path: Path | None = None

    @property
    def triple_count(self) -> int:
        """How many triples the report has."""
        return len(self.lines)

    def ntriples(self) -> bytes:
        """The report as N-Triples bytes (sorted lines)."""
        return "".join(self.lines).encode("utf-8")

    def triples(self) -> list[ox.Triple]:
        """The report as pyoxigraph triples."""
        return list(ox.parse(self.ntriples(), format=ox.RdfFormat.N_TRIPLES))

    def connector_result(self) -> ConnectorResult:
        """The report in the connector contract, for ``node.sync.write_result``."""
        if self.ntriples_path is not None:
            return ConnectorResult(
                prov=self.prov, ntriples_path=self.ntriples_path, triple_count=self.triple_count
            )
        return ConnectorResult(prov=self.prov, triples=self.triples(), triple_count=len(self.lines))


# ---------------------------------------------------------------- the check


def check_model(
    model_path: str | Path,
    ids_paths: Sequence[str | Path],
    *,
    base_iri: str,
    report_dataset: str,
    party_id: str,
    model_dataset: str | None = None,
    model_version_iri: str | None = None,
    iri_for: IriFor | None = None,
    workdir: Path | None = None,
) -> CheckResult:
    """Check ``model_path`` against every specification in ``ids_paths`` with ifctester.

    ``iri_for`` maps an IFC entity to its resource IRI in the model dataset (default: the IFC
    connector's rule, ``connector_iri_for``); entities it maps to None get a node inside the
    report. ``model_version_iri`` (else the dataset IRI, else the file's ni: IRI) is what the
    report is derived from. With ``workdir`` the report is also written to
    ``workdir/{report_dataset}.nt``. Raises ConnectorError naming the file and the reason for an
    unreadable IFC, an unreadable or invalid IDS, and an IFC schema the IDS files do not target.
    """
    started = utc_now()
    for what, name in (("report_dataset", report_dataset), ("model_dataset", model_dataset)):
        if name is not None and not _DATASET_NAME.fullmatch(name):
            raise ConnectorError(what, "", f"{name!r} is not a dataset name ([a-z0-9][a-z0-9_-]*)")
    if not ids_paths:
        raise ConnectorError("ids", "", "no IDS file given")
    base = base_iri.rstrip("/")
    model_file = Path(model_path)
    documents = [_open_ids(Path(p)) for p in ids_paths]
    documents.sort(key=lambda d: (Path(d[0].path).name, d[0].sha256))
    model_sha256 = _require_file(model_file, "model")
    model = _open_model(model_file)
    schema = _SCHEMA_ALIASES.get(model.schema_identifier, model.schema_identifier)
    targeted = sorted({v for _, ids in documents for s in ids.specifications for v in s.ifcVersion})
    if schema not in targeted:
        raise ConnectorError(
            str(model_file),
            "header",
            f"IFC schema {schema} is not targeted by the IDS files (they target "
            f"{', '.join(targeted) or 'no schema'})",
        )
    for doc, ids in documents:
        try:
            ids.validate(model, should_filter_version=True)
        except Exception as exc:  # ifctester failed inside: name the file and its message
            raise ConnectorError(doc.path, "ifctester", f"{type(exc).__name__}: {exc}") from None
    ended = utc_now()

    report_iri = f"{base}/id/report/{nt.segment(report_dataset)}"
    if model_version_iri:
        model_iri = model_version_iri
    elif model_dataset:
        model_iri = dataset_iri(base, model_dataset)
    else:
        model_iri = _ni(model_sha256)
    checker = _checker_version()
    writer = _ReportWriter(
        report_iri=report_iri,
        model_iri=model_iri,
        iri_for=iri_for or connector_iri_for(base, model_dataset),
        schema=schema,
    )
    summary, failures = writer.write(documents)
    writer.provenance(
        model_file=model_file,
        model_sha256=model_sha256,
        model_dataset=f"{base}/dataset/{model_dataset}" if model_dataset else None,
        documents=[d for d, _ in documents],
        checker=checker,
        party_iri=_party_iri(party_id),
        started=started,
        ended=ended,
    )
    lines = sorted(set(writer.lines))
    prov = ProvRecord(
        source=str(model_file),
        source_sha256=model_sha256,
        source_modified=file_modified(model_file),
        connector=NAME,
        connector_version=VERSION,
        started=started,
        ended=ended,
        party_id=party_id,
        extra={
            "ids": " ".join(Path(d.path).name for d, _ in documents),
            "ids_sha256": " ".join(d.sha256 for d, _ in documents),
            "ifctester": checker,
            "ifc_schema": schema,
            "conforms": "true" if summary.conforms else "false",
        },
    )
    result = CheckResult(
        summary=summary,
        failures=tuple(failures),
        report_iri=report_iri,
        model_iri=model_iri,
        model_sha256=model_sha256,
        model_schema=schema,
        ids=tuple(d for d, _ in documents),
        checker_version=checker,
        started=started,
        ended=ended,
        prov=prov,
        lines=lines,
    )
    if workdir is not None:
        out = Path(workdir) / f"{report_dataset}.nt"
        out.write_bytes(result.ntriples())
        result.ntriples_path = out
    return result


# ---------------------------------------------------------------- inputs


def _require_file(path: Path, what: str) -> str:
    if not path.is_file():
        raise ConnectorError(str(path), "", f"{what} file not found")
    return file_sha256(path)


def _open_model(path: Path) -> Any:
    import ifcopenshell

    try:
        model = ifcopenshell.open(str(path))
    except ifcopenshell.SchemaError as exc:
        raise ConnectorError(str(path), "header", f"unsupported IFC schema: {exc}") from None
    except (ifcopenshell.Error, RuntimeError, ValueError, OSError) as exc:
        raise ConnectorError(str(path), "file", f"not a readable IFC-SPF model: {exc}") from None
    schema = _SCHEMA_ALIASES.get(model.schema_identifier, model.schema_identifier)
    if schema not in SUPPORTED_SCHEMAS:
        raise ConnectorError(
            str(path),
            "header",
            f"unsupported IFC schema {model.schema_identifier} (IDS 1.0 checks "
            f"{', '.join(SUPPORTED_SCHEMAS)})",
        )
    return model


def _open_ids(path: Path) -> tuple[IdsDocument, Any]:
    """Parse one IDS file (XSD-validated by ifctester's decoder) and fingerprint it."""
    from ifctester import ids as ifc_ids
    from xmlschema import XMLSchemaException

    sha256 = _require_file(path, "IDS")
    try:
        parsed = ifc_ids.open(str(path))
    except ifc_ids.IdsXmlValidationError as exc:
        detail = exc.xml_error
        reason = (getattr(detail, "reason", None) or str(detail)).strip().splitlines()[0]
        where = getattr(detail, "path", None) or "document"
        raise ConnectorError(str(path), str(where), f"not a valid IDS 1.0 file: {reason}") from None
    except XMLSchemaException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConnectorError(str(path), "file", f"not readable as IDS XML: {first}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConnectorError(str(path), "file", f"not readable as IDS: {exc}") from None
    if not parsed.specifications:
        raise ConnectorError(str(path), "specifications", "the IDS has no specification")
    info = parsed.info
    doc = IdsDocument(
        path=str(path),
        sha256=sha256,
        iri=_ni(sha256),
        title=str(info.get("title") or path.name),
        version=str(info["version"]) if info.get("version") else None,
        date=str(info["date"]) if info.get("date") else None,
        specifications=len(parsed.specifications),
    )
    return doc, parsed


def _ni(sha256_hex: str) -> str:
    """RFC 6920 Named Information IRI of a SHA-256 digest."""
    digest = base64.urlsafe_b64encode(bytes.fromhex(sha256_hex)).rstrip(b"=").decode()
    return f"ni:///sha-256;{digest}"


def _checker_version() -> str:
    try:
        return package_version("ifctester")
    except PackageNotFoundError:  # pragma: no cover - ifctester imported from a checkout
        return "unknown"


def _party_iri(party_id: str) -> str:
    from trust.pki import party_iri

    return party_iri(party_id)


# ---------------------------------------------------------------- the report


class _ReportWriter:
    """Collects the report's N-Triples lines; every IRI is derived from its position or ids."""

    def __init__(self, *, report_iri: str, model_iri: str, iri_for: IriFor, schema: str) -> None:
        self.r = nt.iri(report_iri)
        self.report_iri = report_iri
        self.model = nt.iri(model_iri)
        self.iri_for = iri_for
        self.schema = schema
        self.lines: list[str] = []
        self._nodes: dict[int, str] = {}

    def t(self, s: str, p: str, o: str) -> None:
        self.lines.append(f"{s} {p} {o} .\n")

    def write(self, documents: list[tuple[IdsDocument, Any]]) -> tuple[CheckSummary, list[Failure]]:
        r, t = self.r, self.t
        t(r, RDF_TYPE, f"<{SH}ValidationReport>")
        specs: list[SpecificationSummary] = []
        failures: list[Failure] = []
        index = 0
        for doc, ids in documents:
            for position, spec in enumerate(ids.specifications, start=1):
                index += 1
                summary, failed = self._specification(index, position, doc, spec)
                specs.append(summary)
                failures.extend(failed)
        count = {v: sum(1 for s in specs if s.verdict == v) for v in _VERDICT_IRI}
        summary = CheckSummary(
            specifications=tuple(specs),
            total=len(specs),
            applicable=count["pass"] + count["fail"],
            passed=count["pass"],
            failed=count["fail"],
            missing=count["missing"],
            not_applicable=count["not-applicable"],
            conforms=count["fail"] == 0 and count["missing"] == 0,
            applicable_pass=count["fail"] == 0,
        )
        t(r, f"<{SH}conforms>", nt.boolean(summary.conforms))
        t(r, f"<{DSGO}applicableConforms>", nt.boolean(summary.applicable_pass))
        for predicate, value in (
            ("specificationCount", summary.total),
            ("applicableSpecificationCount", summary.applicable),
            ("passedSpecificationCount", summary.passed),
            ("failedSpecificationCount", summary.failed),
            ("missingSpecificationCount", summary.missing),
            ("notApplicableSpecificationCount", summary.not_applicable),
        ):
            t(r, f"<{DSGO}{predicate}>", nt.integer(value))
        return summary, failures

    def _specification(
        self, index: int, position: int, doc: IdsDocument, spec: Any
    ) -> tuple[SpecificationSummary, list[Failure]]:
        t = self.t
        s_iri = f"{self.report_iri}/spec/{index}"
        s = nt.iri(s_iri)
        t(self.r, f"<{DSGO}specificationResult>", s)
        t(s, RDF_TYPE, f"<{DSGO}SpecificationResult>")
        t(s, RDFS_LABEL, nt.literal(spec.name))
        t(s, f"<{DSGO}idsDocument>", nt.iri(doc.iri))
        t(s, f"<{DSGO}position>", nt.integer(position))
        t(s, f"<{DSGO}ifcVersion>", nt.literal(" ".join(spec.ifcVersion)))
        if spec.identifier:
            t(s, f"<{DCT}identifier>", nt.literal(str(spec.identifier)))
        if spec.description:
            t(s, f"<{DCT}description>", nt.literal(str(spec.description)))
        if spec.instructions:
            t(s, f"<{DSGO}instructions>", nt.literal(str(spec.instructions)))
        usage = spec.get_usage()
        t(s, f"<{DSGO}usage>", nt.literal(usage))
        for facet in spec.applicability:
            t(s, f"<{DSGO}applicability>", nt.literal(facet.to_string("applicability", spec)))

        applicable = list(spec.applicable_entities)
        for entity in applicable:
            t(s, f"<{DSGO}applicableEntity>", self._focus(entity))
        in_scope = spec.is_ifc_version is not False
        failures: list[Failure] = []
        req_failed: dict[int, set[int]] = {}
        if usage == "prohibited":
            for entity in sorted(applicable, key=lambda e: e.id()):
                failures.append(self._prohibited(s_iri, index, entity, spec))
            failed_count = len(applicable)
        else:
            for j, facet in enumerate(spec.requirements, start=1):
                seen = req_failed.setdefault(j, set())
                for failure in sorted(facet.failures, key=lambda f: f["element"].id()):
                    entity = failure["element"]
                    if entity.id() in seen:
                        continue
                    seen.add(entity.id())
                    failures.append(
                        self._failure(s_iri, index, j, facet, spec, entity, failure["reason"])
                    )
            failed_count = len(spec.failed_entities)

        status = spec.status
        if not in_scope:
            verdict: Verdict = "not-applicable"
        elif status:
            verdict = "pass" if applicable or usage == "prohibited" else "not-applicable"
        elif not applicable and usage == "required":
            verdict = "missing"
            failures.append(self._missing(s_iri, index, spec))
        else:
            verdict = "fail"
        passed_count = max(0, len(applicable) - failed_count)
        t(s, f"<{DSGO}verdict>", f"<{DSGO}{_VERDICT_IRI[verdict]}>")
        t(s, f"<{DSGO}applicableCount>", nt.integer(len(applicable)))
        t(s, f"<{DSGO}passedCount>", nt.integer(passed_count))
        t(s, f"<{DSGO}failedCount>", nt.integer(failed_count))
        if not in_scope:
            t(s, f"<{DSGO}skippedReason>", nt.literal(f"not for IFC schema {self.schema}"))

        requirements = []
        for j, facet in enumerate(spec.requirements, start=1):
            q = nt.iri(f"{s_iri}/requirement/{j}")
            failed_j = len(req_failed.get(j, ()))
            kind = _facet_kind(facet)
            text = facet.to_string("requirement", spec, facet)
            expected = _expected(facet)
            cardinality = str(getattr(facet, "cardinality", None) or "required")
            t(s, f"<{DSGO}requirement>", q)
            t(q, RDF_TYPE, f"<{DSGO}Requirement>")
            t(q, RDFS_LABEL, nt.literal(text))
            t(q, f"<{DSGO}position>", nt.integer(j))
            t(q, f"<{DSGO}facet>", f"<{DSGO}{_FACET_COMPONENT.get(type(facet).__name__, 'Facet')}>")
            t(q, f"<{DSGO}cardinality>", nt.literal(cardinality))
            t(q, f"<{DSGO}target>", nt.literal(_target(facet)))
            t(q, f"<{DSGO}expected>", nt.literal(expected))
            if getattr(facet, "instructions", None):
                t(q, f"<{DSGO}instructions>", nt.literal(str(facet.instructions)))
            t(q, f"<{DSGO}failedCount>", nt.integer(failed_j))
            t(q, f"<{DSGO}passedCount>", nt.integer(max(0, len(applicable) - failed_j)))
            requirements.append(
                RequirementSummary(
                    index=j,
                    facet=kind,
                    cardinality=cardinality,
                    text=text,
                    expected=expected,
                    passed=max(0, len(applicable) - failed_j),
                    failed=failed_j,
                )
            )
        summary = SpecificationSummary(
            index=index,
            ids_file=Path(doc.path).name,
            name=str(spec.name),
            identifier=str(spec.identifier) if spec.identifier else None,
            usage=usage,
            verdict=verdict,
            applicable=len(applicable),
            passed=passed_count,
            failed=failed_count,
            requirements=tuple(requirements),
        )
        return summary, failures

    # -- results

    def _result(self, iri: str, spec_iri: str, focus: str, component: str, message: str) -> str:
        t = self.t
        x = nt.iri(iri)
        t(self.r, f"<{SH}result>", x)
        t(x, RDF_TYPE, f"<{SH}ValidationResult>")
        t(x, f"<{SH}focusNode>", focus)
        t(x, f"<{SH}resultSeverity>", f"<{SH}Violation>")
        t(x, f"<{SH}sourceShape>", nt.iri(spec_iri))
        t(x, f"<{SH}sourceConstraintComponent>", f"<{DSGO}{component}>")
        t(x, f"<{SH}resultMessage>", nt.literal(message, lang="en"))
        return x

    def _failure(
        self, spec_iri: str, index: int, j: int, facet: Any, spec: Any, entity: Any, reason: str
    ) -> Failure:
        focus = self._focus(entity)
        result = facet(entity)  # again, for the structured reason (ifctester keeps only text)
        found = _found(getattr(result, "reason", None))
        expected = _expected(facet, getattr(result, "reason", None))
        message = reason or str(result) or "requirement not met"
        x = self._result(
            f"{spec_iri}/result/{entity.id()}-{j}",
            spec_iri,
            focus,
            _FACET_COMPONENT.get(type(facet).__name__, "Facet"),
            message,
        )
        self.t(x, f"<{DSGO}requirement>", nt.iri(f"{spec_iri}/requirement/{j}"))
        self.t(x, f"<{DSGO}expected>", nt.literal(expected))
        if found is not None:
            self.t(x, f"<{SH}value>", _value_term(found))
        return Failure(
            specification=index,
            requirement=j,
            focus_iri=focus[1:-1],
            ifc_class=entity.is_a(),
            global_id=getattr(entity, "GlobalId", None),
            name=_name(entity),
            message=message,
            value=found,
            expected=expected,
        )

    def _prohibited(self, spec_iri: str, index: int, entity: Any, spec: Any) -> Failure:
        focus = self._focus(entity)
        message = "The specification is prohibited, and this entity meets its applicability"
        self._result(
            f"{spec_iri}/result/{entity.id()}", spec_iri, focus, "ProhibitedSpecification", message
        )
        return Failure(
            specification=index,
            requirement=None,
            focus_iri=focus[1:-1],
            ifc_class=entity.is_a(),
            global_id=getattr(entity, "GlobalId", None),
            name=_name(entity),
            message=message,
            value=None,
            expected="no applicable entity",
        )

    def _missing(self, spec_iri: str, index: int, spec: Any) -> Failure:
        message = (
            "The specification is required, and no entity in the model meets its applicability"
        )
        x = self._result(
            f"{spec_iri}/result/model", spec_iri, self.model, "RequiredSpecification", message
        )
        self.t(x, f"<{DSGO}expected>", nt.literal("at least one applicable entity"))
        return Failure(
            specification=index,
            requirement=None,
            focus_iri=self.model[1:-1],
            ifc_class=None,
            global_id=None,
            name=None,
            message=message,
            value=None,
            expected="at least one applicable entity",
        )

    def _focus(self, entity: Any) -> str:
        """The entity's node: its model-dataset resource, else a node in the report; described once."""
        known = self._nodes.get(entity.id())
        if known is not None:
            return known
        iri = self.iri_for(entity)
        node = nt.iri(iri) if iri else nt.iri(f"{self.report_iri}/entity/{entity.id()}")
        self._nodes[entity.id()] = node
        t = self.t
        t(node, f"<{DSGO}ifcClass>", nt.literal(entity.is_a()))
        gid = getattr(entity, "GlobalId", None)
        if gid:
            t(node, f"<{PROPS}globalIdIfcRoot>", nt.literal(str(gid)))
        name = _name(entity)
        if name:
            t(node, RDFS_LABEL, nt.literal(name))
        if not iri:
            t(node, f"<{DSGO}inModel>", self.model)
        return node

    # -- provenance

    def provenance(
        self,
        *,
        model_file: Path,
        model_sha256: str,
        model_dataset: str | None,
        documents: list[IdsDocument],
        checker: str,
        party_iri: str,
        started: datetime,
        ended: datetime,
    ) -> None:
        t, r, m = self.t, self.r, self.model
        activity = nt.iri(f"{self.report_iri}/check")
        party = nt.iri(party_iri)
        t(r, RDF_TYPE, f"<{PROV}Entity>")
        t(r, f"<{PROV}wasGeneratedBy>", activity)
        t(r, f"<{PROV}wasAttributedTo>", party)
        t(r, f"<{PROV}wasDerivedFrom>", m)
        t(r, f"<{PROV}generatedAtTime>", _time(ended))
        t(m, RDF_TYPE, f"<{PROV}Entity>")
        t(m, f"<{DSGO}sha256>", nt.literal(model_sha256))
        t(m, f"<{DSGO}sourceLocation>", nt.literal(model_file.name))
        t(m, f"<{DSGO}ifcSchema>", nt.literal(self.schema))
        if model_dataset and m != nt.iri(model_dataset):
            t(m, f"<{PROV}specializationOf>", nt.iri(model_dataset))
        t(activity, RDF_TYPE, f"<{PROV}Activity>")
        t(activity, RDF_TYPE, f"<{DSGO}IdsCheck>")
        t(activity, f"<{PROV}used>", m)
        t(activity, f"<{PROV}wasAssociatedWith>", party)
        t(activity, f"<{PROV}startedAtTime>", _time(started))
        t(activity, f"<{PROV}endedAtTime>", _time(ended))
        t(activity, f"<{DSGO}connector>", nt.literal(NAME))
        t(activity, f"<{DSGO}connectorVersion>", nt.literal(VERSION))
        t(activity, f"<{DSGO}checker>", nt.literal("ifctester"))
        t(activity, f"<{DSGO}checkerVersion>", nt.literal(checker))
        for doc in documents:
            d = nt.iri(doc.iri)
            t(r, f"<{PROV}wasDerivedFrom>", d)
            t(activity, f"<{PROV}used>", d)
            t(d, RDF_TYPE, f"<{PROV}Entity>")
            t(d, RDF_TYPE, f"<{DSGO}IdsDocument>")
            t(d, f"<{DSGO}sha256>", nt.literal(doc.sha256))
            t(d, f"<{DSGO}sourceLocation>", nt.literal(os.path.basename(doc.path)))
            t(d, f"<{DCT}title>", nt.literal(doc.title))
            if doc.version:
                t(d, f"<{DCT}hasVersion>", nt.literal(doc.version))
            if doc.date:
                t(d, f"<{DCT}date>", nt.literal(doc.date, f"{XSD}date"))


# ---------------------------------------------------------------- facet text


def _facet_kind(facet: Any) -> str:
    name = type(facet).__name__
    return name[0].lower() + name[1:]


def _name(entity: Any) -> str | None:
    name = getattr(entity, "Name", None) if hasattr(entity, "Name") else None
    return str(name) if name else None


def _restriction(value: Any) -> str:
    """An IDS value (simple value or xs:restriction) as stable text."""
    from ifctester.facet import Restriction

    if not isinstance(value, Restriction):
        return str(value)
    parts = []
    for key, option in value.options.items():
        options = option if isinstance(option, list) else [option]
        if key == "enumeration":
            parts.append("one of " + " | ".join(str(o) for o in options))
        elif key == "pattern":
            parts.append(" and ".join(f"matches /{o}/" for o in options))
        else:
            parts.append(" and ".join(f"{key} {o}" for o in options))
    return "; ".join(parts) or "any value"


def _target(facet: Any) -> str:
    """What a facet is about: an attribute name, Pset.Property, a system, an IFC class."""
    kind = type(facet).__name__
    if kind == "Attribute":
        return _restriction(facet.name)
    if kind == "Property":
        return f"{_restriction(facet.propertySet)}.{_restriction(facet.baseName)}"
    if kind == "Classification":
        return _restriction(facet.system) if facet.system is not None else "any system"
    if kind in ("Entity", "PartOf"):
        relation = getattr(facet, "relation", None)
        prefix = f"{relation} " if kind == "PartOf" and relation else ""
        return prefix + _restriction(facet.name)
    return kind.lower()


def _expected(facet: Any, reason: dict[str, Any] | None = None) -> str:
    """The value a requirement asks for, as text ("any value" when only presence is asked)."""
    kind = type(facet).__name__
    if isinstance(reason, dict) and reason.get("type") == "DATATYPE":
        return f"data type {facet.dataType}"
    if isinstance(reason, dict) and reason.get("type") == "PROHIBITED":
        return "absent"
    if getattr(facet, "cardinality", None) == "prohibited":
        return "absent"
    if kind == "Entity":
        text = _restriction(facet.name)
        if facet.predefinedType is not None:
            text += f" with PredefinedType {_restriction(facet.predefinedType)}"
        return text
    if kind == "Classification":
        system = _restriction(facet.system) if facet.system is not None else "any system"
        value = _restriction(facet.value) if facet.value is not None else "any reference"
        return f"{system}: {value}"
    if kind == "PartOf":
        text = _restriction(facet.name)
        if facet.predefinedType is not None:
            text += f" with PredefinedType {_restriction(facet.predefinedType)}"
        return text
    value = getattr(facet, "value", None)
    text = _restriction(value) if value is not None else "any value"
    data_type = getattr(facet, "dataType", None)
    if kind == "Property" and data_type:
        text += f" ({str(data_type).upper()})"
    return text


def _found(reason: Any) -> str | int | float | bool | None:
    """The value found on the entity, from ifctester's structured reason (None: nothing found)."""
    if not isinstance(reason, dict) or "actual" not in reason:
        return None
    actual = reason["actual"]
    if isinstance(actual, list | tuple | set):
        items = list(actual)
        if len(items) == 1:
            actual = items[0]
        else:
            return ", ".join(sorted(str(_plain(i)) for i in items))
    return _plain(actual)


def _plain(value: Any) -> str | int | float | bool | None:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    is_a = getattr(value, "is_a", None)
    if callable(is_a):
        return str(is_a())
    return str(value)


def _value_term(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return nt.boolean(value)
    if isinstance(value, int):
        return nt.integer(value)
    if isinstance(value, float):
        return nt.double(value)
    return nt.literal(str(value))


def _time(when: datetime) -> str:
    text = when.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return nt.literal(text, f"{XSD}dateTime")


def digest_without_times(lines: Sequence[str]) -> str:
    """SHA-256 of a report's sorted lines less the time stamps: equal for equal inputs."""
    digest = hashlib.sha256()
    for line in lines:
        if f"^^<{XSD}dateTime>" in line:
            continue
        digest.update(line.encode("utf-8"))
    return digest.hexdigest()
