"""Run one connector on one source and SHACL-validate its output: what `dsgo connect` calls."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import connectors
from connectors.base import ConnectorResult
from connectors.shacl import DEFAULT_SAMPLE, Severity, validate


def run_connector(
    kind: str,
    source: str,
    *,
    base_iri: str,
    dataset: str,
    party_id: str,
    mapping: Path | None = None,
    workdir: Path,
    options: Mapping[str, str] | None = None,
    severity: str | Severity = Severity.Violation,
    shacl_max_triples: int = DEFAULT_SAMPLE,
) -> ConnectorResult:
    """Convert ``source`` with the ``kind`` connector; ConnectorError if it fails or violates shapes.

    Outputs larger than ``shacl_max_triples`` are validated on a deterministic sample.
    """
    connector = connectors.get(kind)
    Path(workdir).mkdir(parents=True, exist_ok=True)
    result = connector.run(
        source,
        base_iri=base_iri,
        dataset=dataset,
        party_id=party_id,
        mapping=mapping,
        workdir=Path(workdir),
        options=dict(options or {}),
    )
    checked = validate(
        result, kind, severity=severity, max_triples=shacl_max_triples, source=source
    )
    result.prov.extra["shacl_checked_triples"] = str(checked)
    return result
