"""Derived datasets: a CONSTRUCT (possibly federated) saved as a dataset, with PROV-O back to its inputs.

The renovator's summary of the builder's model is derived data: its provenance records which
remote resources it was computed from and which version (ETag) of each was read.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pyoxigraph as ox

from connectors.base import ProvRecord
from node.enforcement import AccessDenied, Caller
from node.exchange import exchange_for
from node.outbound import RemoteFetchError, fetch_resource
from node.provenance import derived_from
from node.publish import publish_version
from node.runtime import Runtime
from node.store import LoadError

MAX_REMOTE_VERSIONS = 200


def derive(rt: Runtime, query: str, dataset: str) -> tuple[int, str]:
    """Run `query` as the node's own party, store its triples as `dataset`, record provenance."""
    from node.service.query import evaluate

    started = datetime.now(UTC)
    receipts: list[str] = []  # the signed answers the dataset is computed from
    result = evaluate(
        rt, Caller.node(rt.settings.party_id), query, for_datasets=(dataset,), receipts=receipts
    )
    if isinstance(result, bool | ox.QueryBoolean) or hasattr(result, "variables"):
        raise LoadError("<query>", None, "a derived dataset needs a CONSTRUCT or DESCRIBE query")
    triples = [t for t in result if isinstance(t, ox.Triple)]
    if not triples:
        raise LoadError("<query>", None, "the query produced no triples; nothing was stored")
    remote = _remote_versions(rt, triples, dataset, receipts)  # other nodes' inputs + ETags
    ended = datetime.now(UTC)
    prov = ProvRecord(
        source=f"{rt.settings.base_iri}/sparql",
        source_sha256=hashlib.sha256(query.encode()).hexdigest(),
        source_modified=started,
        connector="sparql-construct",
        connector_version="1",
        started=started,
        ended=ended,
        party_id=rt.settings.party_id,
        extra={"query": query},
    )

    def inputs(version: str) -> list[ox.Triple]:
        return [t for iri, etag in remote for t in derived_from(version, iri, etag)]

    version = publish_version(
        rt.store,
        rt.settings.base_iri,
        dataset,
        triples,
        prov,
        label=f"derived:{dataset}",
        more_provenance=inputs,
    )
    exchange_for(rt).receipts.attach(receipts, dataset, version)
    return len(triples), version


def _remote_versions(
    rt: Runtime, triples: list[ox.Triple], dataset: str, receipts: list[str]
) -> list[tuple[str, str | None]]:
    """The other nodes' resources the result mentions, each with the ETag its node serves now."""
    base = rt.settings.base_iri
    remote: list[str] = []
    for t in triples:
        for term in (t.subject, t.object):
            if (
                isinstance(term, ox.NamedNode)
                and term.value.startswith(("http://", "https://"))
                and not term.value.startswith(base + "/")
                and "/id/" in term.value
                and term.value not in remote
            ):
                remote.append(term.value)
    client = rt.layer.client()
    out: list[tuple[str, str | None]] = []
    me = Caller.node(rt.settings.party_id)
    for iri in remote[:MAX_REMOTE_VERSIONS]:
        try:
            peer = rt.enforcer.outbound(me, iri)  # only registry-vouched nodes are asked
            fetched = fetch_resource(
                client,
                peer,
                iri,
                accept="application/n-triples",
                exchange=exchange_for(rt),
                datasets=(dataset,),
                receipts=receipts,
            )
        except (RemoteFetchError, AccessDenied):
            continue  # not a node's resource, or not readable: it is not an input we can vouch for
        out.append((iri, fetched.etag))
    return out
