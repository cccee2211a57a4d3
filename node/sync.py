"""Running connectors into the node: atomic dataset replace plus a PROV-O record per version."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pyoxigraph as ox

from connectors.base import ConnectorResult
from connectors.run import run_connector
from connectors.sync import SyncSource, sync
from node.provenance import version_triples
from node.store import Store
from vocab.iris import dataset_iri
from vocab.namespaces import PROV

PROVENANCE_DATASET = "provenance"


def write_result(store: Store, base_iri: str, dataset: str, result: ConnectorResult) -> str:
    """Replace `dataset` with the connector's output, then record the new version's provenance."""
    if result.ntriples_path is not None:
        store.replace_dataset(
            dataset, Path(result.ntriples_path), ox.RdfFormat.N_TRIPLES, label=result.prov.source
        )
    else:
        data = ox.serialize(result.triples or [], format=ox.RdfFormat.N_TRIPLES)
        store.replace_dataset(dataset, data, ox.RdfFormat.N_TRIPLES, label=result.prov.source)
    previous, number = latest_version(store, base_iri, dataset)
    version_iri, triples = version_triples(
        result.prov,
        base_iri=base_iri,
        dataset=dataset,
        previous_version=previous,
        version=number + 1,
    )
    store.append(PROVENANCE_DATASET, triples)
    return version_iri


def latest_version(store: Store, base_iri: str, dataset: str) -> tuple[str | None, int]:
    """The newest recorded version of `dataset` and how many versions there are."""
    graph = dataset_iri(base_iri, PROVENANCE_DATASET)
    ds = dataset_iri(base_iri, dataset)
    rows = list(
        store.query(
            f"SELECT ?v ?t WHERE {{ GRAPH <{graph}> {{ ?v <{PROV}specializationOf> <{ds}> ; "
            f"<{PROV}generatedAtTime> ?t }} }} ORDER BY DESC(?t) DESC(STR(?v))",
            default_graph=[graph],
            named_graphs=[graph],
        )
    )
    if not rows:
        return None, 0
    return rows[0]["v"].value, len(rows)


def connect(
    store: Store,
    *,
    kind: str,
    source: str,
    dataset: str,
    base_iri: str,
    party_id: str,
    workdir: Path,
    mapping: Path | None = None,
    options: dict | None = None,
    severity: str = "Violation",
) -> tuple[ConnectorResult, str]:
    """Run one connector and load its output (what `dsgo connect` does)."""
    result = run_connector(
        kind,
        source,
        base_iri=base_iri,
        dataset=dataset,
        party_id=party_id,
        mapping=mapping,
        workdir=workdir,
        options=options,
        severity=severity,
    )
    return result, write_result(store, base_iri, dataset, result)


def make_sync_runner(rt) -> Callable[[bool], list[dict]]:
    """A function that syncs every configured source of the node (used by the scheduler and admin API)."""
    settings = rt.settings
    sources = [
        SyncSource(
            s.kind,
            s.source,
            s.dataset,
            Path(s.mapping) if s.mapping else None,
            {k: str(v) for k, v in s.options.items()},
        )
        for s in settings.sources
    ]

    def run(force: bool = False) -> list[dict]:
        with tempfile.TemporaryDirectory(dir=settings.data_dir) as work:

            def run_one(src: SyncSource) -> ConnectorResult:
                return run_connector(
                    src.kind,
                    src.source,
                    base_iri=settings.base_iri,
                    dataset=src.dataset,
                    party_id=settings.party_id,
                    mapping=src.mapping,
                    workdir=Path(work) / src.dataset,
                    options=src.options,
                    severity=settings.shacl_severity,
                )

            def write(dataset: str, result: ConnectorResult) -> None:
                write_result(rt.store, settings.base_iri, dataset, result)

            outcomes = sync(sources, settings.data_dir / "sync-state.json", run_one, write, force)
        results = [asdict(o) for o in outcomes]
        if getattr(settings, "checks", ()):
            # [[checks]]: re-check every model whose dataset (or IDS files) changed
            from node.checks import run_configured_checks

            results += run_configured_checks(rt, force)
        return results

    return run
