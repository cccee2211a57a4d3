"""PROV-O triples for dataset versions (from a connector's ProvRecord) and derived data.

Everything here goes into the provenance graph `{base}/dataset/provenance`.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

import pyoxigraph as ox

from connectors.base import ProvRecord
from trust.audit import party_iri
from vocab.iris import dataset_iri
from vocab.namespaces import DCT, DSGO, PROV, RDF_TYPE, XSD

_TYPE = ox.NamedNode(RDF_TYPE)
PROVENANCE_DATASET = "provenance"


def version_triples(
    prov: ProvRecord,
    *,
    base_iri: str,
    dataset: str,
    previous_version: str | None,
    version: int | None = None,
) -> tuple[str, list[ox.Triple]]:
    """The version entity, its connector run and its source; returns (version IRI, triples).

    The version is `{base}/dataset/{name}/version/{n}` when `version` is given, else the first 16
    hex digits of the source SHA-256 (re-loading an unchanged source gives the same IRI).
    """
    label = str(version) if version is not None else prov.source_sha256[:16]
    ds_iri = dataset_iri(base_iri, dataset)
    version_iri = f"{ds_iri}/version/{label}"
    v = ox.NamedNode(version_iri)
    run = ox.NamedNode(f"{version_iri}/run")
    source = _source_node(prov.source, base_iri)
    agent = party_iri(prov.party_id)
    t = [
        (v, _TYPE, _p("Entity")),
        (v, _p("specializationOf"), ox.NamedNode(ds_iri)),
        (v, _p("wasGeneratedBy"), run),
        (v, _p("wasAttributedTo"), agent),
        (v, _p("generatedAtTime"), _time(prov.ended)),
        # the source entity is shared by every version read from the same place: the digest of
        # the bytes this version was converted from is recorded on the version itself
        (v, _d("sourceSha256"), ox.Literal(prov.source_sha256)),
        (run, _TYPE, _p("Activity")),
        (run, _p("startedAtTime"), _time(prov.started)),
        (run, _p("endedAtTime"), _time(prov.ended)),
        (run, _p("used"), source),
        (run, _p("wasAssociatedWith"), agent),
        (run, _d("connector"), ox.Literal(prov.connector)),
        (run, _d("connectorVersion"), ox.Literal(prov.connector_version)),
        (source, _TYPE, _p("Entity")),
        (source, _d("sourceLocation"), ox.Literal(prov.source)),
        (source, _d("sha256"), ox.Literal(prov.source_sha256)),
        (source, ox.NamedNode(DCT + "modified"), _time(prov.source_modified)),
        (agent, _TYPE, _p("Agent")),
        (agent, _d("partyId"), ox.Literal(prov.party_id)),
        (ox.NamedNode(ds_iri), _TYPE, _p("Entity")),
    ]
    if previous_version is not None:
        t.append((v, _p("wasRevisionOf"), ox.NamedNode(previous_version)))
    for key in sorted(prov.extra):
        t.append((run, _d("parameter"), ox.Literal(f"{key}={prov.extra[key]}")))
    return version_iri, [ox.Triple(*x) for x in t]


def derived_from(entity_iri: str, remote_resource_iri: str, etag: str | None) -> list[ox.Triple]:
    """prov:wasDerivedFrom another node's resource, recording the version (ETag) that was read."""
    entity = ox.NamedNode(entity_iri)
    remote = ox.NamedNode(remote_resource_iri)
    out = [
        ox.Triple(entity, _p("wasDerivedFrom"), remote),
        ox.Triple(remote, _TYPE, _p("Entity")),
    ]
    if etag is not None:
        read = ox.NamedNode(f"{remote_resource_iri}#etag-{quote(etag.strip(chr(34)), safe='')}")
        out += [
            ox.Triple(entity, _p("wasDerivedFrom"), read),
            ox.Triple(read, _TYPE, _p("Entity")),
            ox.Triple(read, _p("specializationOf"), remote),
            ox.Triple(read, _d("etag"), ox.Literal(etag)),
        ]
    return out


def provenance_graph(base_iri: str) -> ox.NamedNode:
    """The named graph holding all provenance triples."""
    return ox.NamedNode(dataset_iri(base_iri, PROVENANCE_DATASET))


def _source_node(source: str, base_iri: str) -> ox.NamedNode:
    if "://" in source:
        return ox.NamedNode(source)
    return ox.NamedNode(f"{base_iri}/source/{quote(source.lstrip('/'), safe='/')}")


def _time(when: dt.datetime) -> ox.Literal:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    text = when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return ox.Literal(text, datatype=ox.NamedNode(XSD + "dateTime"))


def _p(local: str) -> ox.NamedNode:
    return ox.NamedNode(PROV + local)


def _d(local: str) -> ox.NamedNode:
    return ox.NamedNode(DSGO + local)
