"""GET /catalog: the node as a DCAT 3 catalog, showing each caller only the datasets it may read."""

from __future__ import annotations

import pyoxigraph as ox
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from node.auth import optional_caller
from node.enforcement import Caller
from node.html import Link, Section, render_page
from node.negotiation import HTML, RESOURCE_TYPES, choose, content_type, serialise_triples
from node.runtime import Runtime
from node.store import DatasetInfo
from trust.pki import party_iri
from vocab.iris import dataset_iri
from vocab.namespaces import DCAT, DCT, ODRL, RDF_TYPE, VOID, XSD

_TYPE = ox.NamedNode(RDF_TYPE)
SPARQL_PROTOCOL = "https://www.w3.org/TR/sparql11-protocol/"


def catalog_routes(rt: Runtime) -> list[Route]:
    """The catalog route; anonymous callers see the node and its services, not the datasets."""

    async def catalog(request: Request) -> Response:
        caller = optional_caller(request, rt.layer)
        media = choose(
            request.headers.get("accept"), RESOURCE_TYPES, request.query_params.get("format")
        )
        datasets = await run_in_threadpool(_listed, rt, caller)
        triples = catalog_triples(rt, datasets)
        if caller is not None:
            triples += offer_triples(rt, datasets)
        if media == HTML:
            body = _html(rt, datasets)
        else:
            body = serialise_triples(triples, media)
        return Response(
            body,
            media_type=content_type(media),
            headers={"Vary": "Accept, Authorization", "Cache-Control": "private, no-cache"},
        )

    return [Route("/catalog", catalog, methods=["GET", "HEAD"])]


def _listed(rt: Runtime, caller: Caller | None) -> list[DatasetInfo]:
    """The caller's datasets; an authenticated read is audited (one entry per request)."""
    if caller is None:
        return []
    datasets = visible_datasets(rt, caller.party_id)
    rt.enforcer.catalog_read(caller, [d.graph for d in datasets])
    return datasets


def visible_datasets(rt: Runtime, caller: str | None) -> list[DatasetInfo]:
    """The datasets `caller` may read at least in part (none for an anonymous caller)."""
    if caller is None:
        return []
    datasets = rt.store.datasets()
    scope = rt.enforcer.scope_for(caller)
    if "*" in scope.whole_datasets:
        return datasets
    partial_graphs = {g for grant in scope.partial for g in _grant_graphs(grant, datasets)}
    return [d for d in datasets if d.graph in scope.whole_datasets or d.graph in partial_graphs]


def _grant_graphs(grant: object, datasets: list[DatasetInfo]) -> set[str]:
    graphs = getattr(grant, "datasets", None)
    if graphs is None or "*" in graphs:
        return {d.graph for d in datasets}
    return set(graphs)


def catalog_triples(rt: Runtime, datasets: list[DatasetInfo]) -> list[ox.Triple]:
    """dcat:Catalog + dcat:DataService for SPARQL + one dcat:Dataset per visible dataset."""
    base = rt.settings.base_iri
    cat = ox.NamedNode(f"{base}/catalog")
    service = ox.NamedNode(f"{base}/sparql")
    publisher = ox.NamedNode(party_iri(rt.settings.party_id))
    t = ox.Triple
    out = [
        t(cat, _TYPE, ox.NamedNode(DCAT + "Catalog")),
        t(cat, ox.NamedNode(DCT + "title"), ox.Literal(f"{rt.settings.party_name} data catalog")),
        t(cat, ox.NamedNode(DCT + "publisher"), publisher),
        t(cat, ox.NamedNode(DCAT + "service"), service),
        t(publisher, ox.NamedNode(DCT + "identifier"), ox.Literal(rt.settings.party_id)),
        t(
            publisher,
            ox.NamedNode("http://xmlns.com/foaf/0.1/name"),
            ox.Literal(rt.settings.party_name),
        ),
        t(service, _TYPE, ox.NamedNode(DCAT + "DataService")),
        t(service, ox.NamedNode(DCT + "title"), ox.Literal("SPARQL 1.1 endpoint (read-only)")),
        t(service, ox.NamedNode(DCAT + "endpointURL"), service),
        t(service, ox.NamedNode(DCT + "conformsTo"), ox.NamedNode(SPARQL_PROTOCOL)),
    ]
    for d in datasets:
        ds = ox.NamedNode(d.graph)
        out += [
            t(cat, ox.NamedNode(DCAT + "dataset"), ds),
            t(service, ox.NamedNode(DCAT + "servesDataset"), ds),
            t(ds, _TYPE, ox.NamedNode(DCAT + "Dataset")),
            t(ds, ox.NamedNode(DCT + "identifier"), ox.Literal(d.name)),
            t(ds, ox.NamedNode(DCT + "title"), ox.Literal(d.name)),
            t(ds, ox.NamedNode(DCT + "publisher"), publisher),
            t(
                ds,
                ox.NamedNode(VOID + "triples"),
                ox.Literal(str(d.triples), datatype=ox.NamedNode(XSD + "integer")),
            ),
        ]
        if d.modified is not None:
            stamp = d.modified.isoformat().replace("+00:00", "Z")
            out.append(
                t(
                    ds,
                    ox.NamedNode(DCT + "modified"),
                    ox.Literal(stamp, datatype=ox.NamedNode(XSD + "dateTime")),
                )
            )
    return out


def offer_triples(rt: Runtime, visible: list[DatasetInfo]) -> list[ox.Triple]:
    """For advertised datasets the caller may not read: a dcat:Dataset with an ODRL offer to ask for."""
    seen = {d.name for d in visible}
    base = rt.settings.base_iri
    owner = ox.NamedNode(party_iri(rt.settings.party_id))
    t = ox.Triple
    out: list[ox.Triple] = []
    for name in rt.settings.advertise:
        if name in seen:
            continue
        ds = ox.NamedNode(rt.settings.dataset_iri(name))
        offer = ox.NamedNode(dataset_iri(base, name) + "#offer")
        permission = ox.NamedNode(dataset_iri(base, name) + "#offer-permission")
        out += [
            t(ox.NamedNode(f"{base}/catalog"), ox.NamedNode(DCAT + "dataset"), ds),
            t(ds, _TYPE, ox.NamedNode(DCAT + "Dataset")),
            t(ds, ox.NamedNode(DCT + "identifier"), ox.Literal(name)),
            t(ds, ox.NamedNode(DCT + "publisher"), owner),
            t(ds, ox.NamedNode(ODRL + "hasPolicy"), offer),
            t(offer, _TYPE, ox.NamedNode(ODRL + "Offer")),
            t(offer, ox.NamedNode(ODRL + "assigner"), owner),
            t(offer, ox.NamedNode(ODRL + "target"), ds),
            t(offer, ox.NamedNode(ODRL + "permission"), permission),
            t(permission, ox.NamedNode(ODRL + "action"), ox.NamedNode(ODRL + "read")),
            t(permission, ox.NamedNode(ODRL + "target"), ds),
        ]
    return out


def _html(rt: Runtime, datasets: list[DatasetInfo]) -> bytes:
    rows = [
        [Link(d.name, d.graph), str(d.triples), d.modified.isoformat() if d.modified else ""]
        for d in datasets
    ]
    sections = [
        Section(
            "Services",
            [["SPARQL endpoint", Link("/sparql", f"{rt.settings.base_iri}/sparql")]],
            ("service", "URL"),
        ),
        Section("Datasets you may read", rows, ("dataset", "triples", "modified")),
    ]
    return render_page(f"{rt.settings.party_name} — catalog", sections)
