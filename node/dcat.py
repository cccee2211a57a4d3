"""The node's catalog as DCAT-AP 3.0: catalog, datasets, distributions, the SPARQL data service.

Portals and harvesters (data.europa.eu, CKAN's ckanext-dcat) read DCAT-AP and drop what lacks
its mandatory fields, so every class the catalog uses carries them, and every object of a
property whose range DCAT-AP fixes is typed with that class (licence documents, rights
statements, media types, locations, periods) so that the DCAT-AP SHACL shapes can check it
without a vocabulary. The owner's statements (licence, access rights, descriptions) come from
`[catalog]`; sizes and coverage are the caller-scoped statistics of node.void.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyoxigraph as ox

from node.catalog_settings import CatalogSettings, DatasetMeta
from node.config import Settings
from node.void import DatasetView
from trust.pki import party_iri
from vocab.iris import dataset_iri
from vocab.namespaces import (
    DCAT,
    DCT,
    FILE_TYPE,
    FOAF,
    GSP,
    IANA,
    LANGUAGE,
    ODRL,
    RDF_TYPE,
    RDFS,
    VCARD,
    VOID,
    XSD,
)

SPARQL_PROTOCOL = "https://www.w3.org/TR/sparql11-protocol/"
SPARQL_SD = "https://www.w3.org/TR/sparql11-service-description/"

# One distribution per serialisation `/dataset/{name}` offers: (suffix, media type, EU file type,
# streamed). Turtle and JSON-LD are built in memory and so offered only up to store.max_results.
DISTRIBUTIONS: tuple[tuple[str, str, str, bool], ...] = (
    ("nt", "application/n-triples", "RDF_N_TRIPLES", True),
    ("nq", "application/n-quads", "RDF_N_QUADS", True),
    ("ttl", "text/turtle", "RDF_TURTLE", False),
    ("jsonld", "application/ld+json", "JSON_LD", False),
)
_LANGUAGES = {"nl": "NLD", "en": "ENG", "de": "DEU", "fr": "FRA"}


def catalog_triples(
    settings: Settings, views: Sequence[DatasetView], offers: Sequence[str] = ()
) -> list[ox.Triple]:
    """The DCAT-AP catalog for one caller: the datasets it may read, and offers for `offers`."""
    cat = settings.catalog
    base = settings.base_iri
    g = _Graph()
    catalog = f"{base}/catalog"
    service = f"{base}/sparql"
    publisher = party_iri(settings.party_id)
    contact = f"{base}/catalog#contact"
    g.add(catalog, RDF_TYPE, DCAT + "Catalog")
    g.text(catalog, DCT + "title", cat.title or f"{settings.party_name} data catalog")
    g.text(
        catalog,
        DCT + "description",
        cat.description
        or f"Linked data published by {settings.party_name} in a DSGO data space; each "
        "dataset is readable by the parties its owner grants access to.",
    )
    g.add(catalog, DCT + "publisher", publisher)
    g.add(catalog, FOAF + "homepage", f"{base}/")
    g.add(f"{base}/", RDF_TYPE, FOAF + "Document")
    g.add(catalog, DCAT + "service", service)
    if cat.license:
        g.add(catalog, DCT + "license", cat.license)
        g.add(cat.license, RDF_TYPE, DCT + "LicenseDocument")
    _language(g, catalog, cat)
    _agent(g, settings, publisher)
    _contact(g, settings, contact)
    _data_service(g, settings, service, publisher, contact, views)
    latest = max((v.info.modified for v in views if v.info.modified), default=None)
    if latest is not None:
        g.add(catalog, DCT + "modified", _datetime(latest.isoformat()))
    for view in views:
        g.add(catalog, DCAT + "dataset", view.info.graph)
        _dataset(g, settings, view, publisher, contact, service)
    seen = {v.info.name for v in views}
    for name in offers:
        if name not in seen:
            g.add(catalog, DCAT + "dataset", settings.dataset_iri(name))
            _offer(g, settings, name, publisher, contact)
    return g.triples


class _Graph:
    """A list of triples with helpers; objects given as str are IRIs."""

    def __init__(self) -> None:
        self.triples: list[ox.Triple] = []
        self._seen: set[ox.Triple] = set()

    def add(self, s: str, p: str, o: str | ox.Literal) -> None:
        obj = o if isinstance(o, ox.Literal) else ox.NamedNode(o)
        triple = ox.Triple(ox.NamedNode(s), ox.NamedNode(p), obj)
        if triple not in self._seen:
            self._seen.add(triple)
            self.triples.append(triple)

    def text(self, s: str, p: str, value: str) -> None:
        self.add(s, p, ox.Literal(value))


def _agent(g: _Graph, settings: Settings, agent: str) -> None:
    g.add(agent, RDF_TYPE, FOAF + "Agent")
    g.add(agent, RDF_TYPE, FOAF + "Organization")
    g.text(agent, FOAF + "name", settings.party_name)
    g.text(agent, DCT + "identifier", settings.party_id)


def _contact(g: _Graph, settings: Settings, contact: str) -> None:
    cat = settings.catalog
    g.add(contact, RDF_TYPE, VCARD + "Kind")
    g.add(contact, RDF_TYPE, VCARD + "Organization")
    g.text(contact, VCARD + "fn", cat.contact_name or settings.party_name)
    g.add(contact, VCARD + "hasURL", f"{settings.base_iri}/")
    if cat.contact_email:
        g.add(contact, VCARD + "hasEmail", f"mailto:{cat.contact_email}")


def _language(g: _Graph, subject: str, cat: CatalogSettings) -> None:
    if cat.language is None:
        return
    code = _LANGUAGES.get(cat.language.split("-")[0].lower())
    if code is not None:
        g.add(subject, DCT + "language", LANGUAGE + code)
        g.add(LANGUAGE + code, RDF_TYPE, DCT + "LinguisticSystem")


def _rights(g: _Graph, subject: str, meta: DatasetMeta) -> None:
    if meta.access_rights:
        g.add(subject, DCT + "accessRights", meta.access_rights)
        g.add(meta.access_rights, RDF_TYPE, DCT + "RightsStatement")
    if meta.license:
        g.add(subject, DCT + "license", meta.license)
        g.add(meta.license, RDF_TYPE, DCT + "LicenseDocument")


def _data_service(
    g: _Graph,
    settings: Settings,
    service: str,
    publisher: str,
    contact: str,
    views: Sequence[DatasetView],
) -> None:
    g.add(service, RDF_TYPE, DCAT + "DataService")
    g.text(service, DCT + "title", "SPARQL 1.1 endpoint (read-only)")
    g.text(
        service,
        DCT + "description",
        "SPARQL 1.1 Protocol endpoint over the datasets the caller may read (an iSHARE access "
        "token from /connect/token); GET without a query gives its SPARQL 1.1 Service "
        "Description, with VoID statistics per dataset.",
    )
    g.add(service, DCAT + "endpointURL", service)
    g.add(service, DCAT + "endpointDescription", service)
    g.add(service, RDF_TYPE, RDFS + "Resource")
    g.add(service, DCT + "conformsTo", SPARQL_PROTOCOL)
    g.add(SPARQL_PROTOCOL, RDF_TYPE, DCT + "Standard")
    g.add(service, DCT + "publisher", publisher)
    g.add(service, DCAT + "contactPoint", contact)
    g.add(service, DCT + "accessRights", settings.catalog.access_rights)
    g.add(settings.catalog.access_rights, RDF_TYPE, DCT + "RightsStatement")
    for view in views:
        g.add(service, DCAT + "servesDataset", view.info.graph)


def _dataset(
    g: _Graph,
    settings: Settings,
    view: DatasetView,
    publisher: str,
    contact: str,
    service: str,
) -> None:
    info, stats = view.info, view.stats
    meta = settings.catalog.meta(info.name)
    ds = info.graph
    g.add(ds, RDF_TYPE, DCAT + "Dataset")
    g.text(ds, DCT + "identifier", info.name)
    g.text(ds, DCT + "title", meta.title or info.name)
    g.text(ds, DCT + "description", meta.description or _default_description(settings, info.name))
    g.add(ds, DCT + "publisher", publisher)
    g.add(ds, DCAT + "contactPoint", contact)
    _rights(g, ds, meta)
    for word in meta.keywords:
        g.text(ds, DCAT + "keyword", word)
    if info.modified is not None:
        g.add(ds, DCT + "modified", _datetime(info.modified.isoformat()))
    g.add(ds, VOID + "triples", _integer(stats.triples))
    g.add(ds, VOID + "distinctSubjects", _integer(stats.subjects))
    g.add(ds, RDFS + "seeAlso", void_iri_for(settings, info.name))
    for i, location in enumerate(stats.locations):
        place = f"{ds}#spatial-{i + 1}"
        g.add(ds, DCT + "spatial", place)
        g.add(place, RDF_TYPE, DCT + "Location")
        g.add(
            place,
            DCAT + "centroid",
            ox.Literal(location.wkt(), datatype=ox.NamedNode(GSP + "wktLiteral")),
        )
    if stats.period is not None:
        period = f"{ds}#temporal"
        g.add(ds, DCT + "temporal", period)
        g.add(period, RDF_TYPE, DCT + "PeriodOfTime")
        g.add(period, DCAT + "startDate", stats.period[0])
        g.add(period, DCAT + "endDate", stats.period[1])
    if not view.whole:
        return  # /dataset/{name} needs a whole-dataset grant: no download to offer
    for suffix, media, file_type, streamed in DISTRIBUTIONS:
        if not streamed and info.triples > settings.max_results:
            continue
        dist = f"{ds}#distribution-{suffix}"
        g.add(ds, DCAT + "distribution", dist)
        g.add(dist, RDF_TYPE, DCAT + "Distribution")
        g.text(dist, DCT + "title", f"{meta.title or info.name} as {media}")
        g.add(dist, DCAT + "downloadURL", ds)
        g.add(dist, DCAT + "accessURL", ds)
        g.add(ds, RDF_TYPE, RDFS + "Resource")
        g.add(dist, DCAT + "accessService", service)
        g.add(dist, DCAT + "mediaType", IANA + media)
        g.add(IANA + media, RDF_TYPE, DCT + "MediaType")
        g.add(dist, DCT + "format", FILE_TYPE + file_type)
        g.add(FILE_TYPE + file_type, RDF_TYPE, DCT + "MediaTypeOrExtent")
        if meta.license:
            g.add(dist, DCT + "license", meta.license)
        if info.modified is not None:
            g.add(dist, DCT + "modified", _datetime(info.modified.isoformat()))


def _offer(g: _Graph, settings: Settings, name: str, owner: str, contact: str) -> None:
    """An advertised dataset the caller may not read: what it is, and an ODRL offer to ask for."""
    meta = settings.catalog.meta(name)
    ds = settings.dataset_iri(name)
    offer = f"{ds}#offer"
    permission = f"{ds}#offer-permission"
    g.add(ds, RDF_TYPE, DCAT + "Dataset")
    g.text(ds, DCT + "identifier", name)
    g.text(ds, DCT + "title", meta.title or name)
    g.text(ds, DCT + "description", meta.description or _default_description(settings, name))
    g.add(ds, DCT + "publisher", owner)
    g.add(ds, DCAT + "contactPoint", contact)
    _rights(g, ds, meta)
    g.add(ds, ODRL + "hasPolicy", offer)
    g.add(offer, RDF_TYPE, ODRL + "Offer")
    g.add(offer, ODRL + "assigner", owner)
    g.add(offer, ODRL + "target", ds)
    g.add(offer, ODRL + "permission", permission)
    g.add(permission, ODRL + "action", ODRL + "read")
    g.add(permission, ODRL + "target", ds)


def _default_description(settings: Settings, name: str) -> str:
    return (
        f"Dataset {name} of {settings.party_name}, served as linked data (RDF) with its "
        "provenance; readable by the parties the owner grants it to."
    )


def void_iri_for(settings: Settings, name: str) -> str:
    return dataset_iri(settings.base_iri, name) + "/void"


def _datetime(iso: str) -> ox.Literal:
    return ox.Literal(iso.replace("+00:00", "Z"), datatype=ox.NamedNode(XSD + "dateTime"))


def _integer(value: int) -> ox.Literal:
    return ox.Literal(str(value), datatype=ox.NamedNode(XSD + "integer"))


__all__ = ["DISTRIBUTIONS", "catalog_triples"]
