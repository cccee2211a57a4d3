"""The connector contract: a source becomes one dataset's triples plus a provenance record."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

import pyoxigraph as ox


@dataclass(frozen=True)
class ProvRecord:
    """Where a dataset version came from: enough for a PROV-O entity/activity pair."""

    source: str  # path or IRI of the source as configured
    source_sha256: str  # hex digest of the source bytes
    source_modified: datetime  # the source's modification time (UTC)
    connector: str  # connector name, e.g. "ifc"
    connector_version: str
    started: datetime  # run start (UTC)
    ended: datetime  # run end (UTC)
    party_id: str  # the node's party, to which the dataset is attributed
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class ConnectorResult:
    """A connector's output: either an N-Triples file it wrote, or triples in memory."""

    prov: ProvRecord
    ntriples_path: Path | None = None
    triples: list[ox.Triple] | None = None
    triple_count: int = 0


class Connector(Protocol):
    """Reads one kind of source; deterministic: the same source gives the same triples and IRIs."""

    name: str
    version: str

    def run(
        self,
        source: str,
        *,
        base_iri: str,
        dataset: str,
        party_id: str,
        mapping: Path | None = None,
        workdir: Path,
        options: Mapping[str, str] | None = None,
    ) -> ConnectorResult:
        """Convert ``source``; raise ConnectorError naming file, position and reason."""
        ...


def iter_triples(result: ConnectorResult) -> Iterable[ox.Triple]:
    """The result's triples, whichever way the connector delivered them."""
    if result.triples is not None:
        yield from result.triples
    elif result.ntriples_path is not None:
        with open(result.ntriples_path, "rb") as fh:
            yield from ox.parse(fh, format=ox.RdfFormat.N_TRIPLES)
