"""SPARQL 1.1 Service Description (GET /sparql without a query) and VoID documents, per caller.

Federation engines read these to decide which endpoint can answer which triple patterns; they
list only the datasets the caller may read, with the caller-scoped statistics of node.void
(served from its per-version cache, so asking again costs a dictionary look-up).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pyoxigraph as ox
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from node.auth import caller_from_header
from node.negotiation import JSONLD, NTRIPLES, RDFXML, TURTLE, choose_sparql, content_type
from node.negotiation import serialise_triples as serialise
from node.runtime import Runtime
from node.void import DatasetView, cached_body, visible, void_iri, void_triples
from vocab.namespaces import DCT, ENTAILMENT, FORMATS, RDF_TYPE, RDFS, SD, VOID, XSD

DESCRIPTION_TYPES: tuple[str, ...] = (TURTLE, JSONLD, NTRIPLES, RDFXML)
# What /sparql answers in (node.negotiation's RESULTS_TYPES and RDF_TYPES), as W3C format IRIs.
RESULT_FORMATS = (
    "SPARQL_Results_JSON",
    "SPARQL_Results_XML",
    "SPARQL_Results_CSV",
    "SPARQL_Results_TSV",
    "Turtle",
    "N-Triples",
    "JSON-LD",
    "RDF_XML",
)
HEADERS = {"Vary": "Accept, Authorization", "Cache-Control": "private, no-cache"}


async def serve(rt: Runtime, scope: dict, receive: Any, send: Any, headers: dict[str, str]) -> None:
    """GET /sparql without `query`: the service description, for the caller (or anonymous)."""
    query_string = scope.get("query_string", b"").decode("latin-1")
    formats = [v for k, v in parse_qsl(query_string, keep_blank_values=True) if k == "format"]
    media = choose_sparql(headers.get("accept"), DESCRIPTION_TYPES, formats)
    authorization = headers.get("authorization")
    party = caller_from_header(authorization, rt.layer).party_id if authorization else None
    views = await run_in_threadpool(visible, rt, party)
    body = cached_body(
        rt, "sd", media, views, lambda: serialise(service_description(rt, views), media)
    )
    await Response(body, media_type=content_type(media), headers=HEADERS)(scope, receive, send)


def service_description(rt: Runtime, views: list[DatasetView]) -> list[ox.Triple]:
    """sd:Service for /sparql: language, result formats, features, and the caller's dataset.

    The default graph is the union of the named graphs the caller may read (sd:UnionDefaultGraph),
    each named graph is a dataset `{base}/dataset/{name}` with its VoID size.
    """
    t, n = ox.Triple, ox.NamedNode
    base = rt.settings.base_iri
    endpoint = n(f"{base}/sparql")
    service = n(f"{base}/sparql#service")
    dataset = n(f"{base}/sparql#dataset")
    default = n(f"{base}/sparql#default-graph")
    out = [
        t(service, n(RDF_TYPE), n(SD + "Service")),
        t(service, n(SD + "endpoint"), endpoint),
        t(service, n(SD + "supportedLanguage"), n(SD + "SPARQL11Query")),
        t(service, n(SD + "feature"), n(SD + "UnionDefaultGraph")),
        t(service, n(SD + "feature"), n(SD + "BasicFederatedQuery")),
        t(service, n(SD + "defaultEntailmentRegime"), n(ENTAILMENT + "Simple")),
        t(service, n(SD + "defaultDataset"), dataset),
        t(service, n(RDFS + "seeAlso"), n(f"{base}/.well-known/void")),
        t(dataset, n(RDF_TYPE), n(SD + "Dataset")),
        t(dataset, n(SD + "defaultGraph"), default),
        t(default, n(RDF_TYPE), n(SD + "Graph")),
        t(default, n(VOID + "triples"), _integer(sum(v.stats.triples for v in views))),
    ]
    out += [t(service, n(SD + "resultFormat"), n(FORMATS + f)) for f in RESULT_FORMATS]
    for view in views:
        named = n(f"{base}/sparql#graph-{view.info.name}")
        graph = n(f"{base}/sparql#graph-{view.info.name}-description")
        out += [
            t(dataset, n(SD + "namedGraph"), named),
            t(named, n(RDF_TYPE), n(SD + "NamedGraph")),
            t(named, n(SD + "name"), n(view.info.graph)),
            t(named, n(SD + "graph"), graph),
            t(graph, n(RDF_TYPE), n(SD + "Graph")),
            t(graph, n(VOID + "triples"), _integer(view.stats.triples)),
            t(graph, n(VOID + "distinctSubjects"), _integer(view.stats.subjects)),
            t(graph, n(RDFS + "seeAlso"), n(void_iri(rt, view.info.name))),
        ]
    return out


def void_document(rt: Runtime, views: list[DatasetView], iri: str) -> list[ox.Triple]:
    """A void:DatasetDescription at `iri` of `views` (partitions included)."""
    t, n = ox.Triple, ox.NamedNode
    doc = n(iri)
    out = [
        t(doc, n(RDF_TYPE), n(VOID + "DatasetDescription")),
        t(doc, n(DCT + "title"), ox.Literal(f"VoID of {rt.settings.party_name}'s datasets")),
    ]
    out += [t(doc, n(RDFS + "seeAlso"), n(v.info.graph)) for v in views]
    return out + void_triples(rt, views)


def _integer(value: int) -> ox.Literal:
    return ox.Literal(str(value), datatype=ox.NamedNode(XSD + "integer"))
