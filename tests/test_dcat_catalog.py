"""Issue 16 part 2: the catalog is DCAT-AP 3.0, checked with the DCAT-AP 3.0.0 SHACL shapes.

A node like the demo's builder (the ILS-ready duplex model with its RD georeferencing, the BAG
extract, advertised, and sensor readings for a measurement period) runs as a real process; its
catalog is validated with pyshacl as an anonymous caller, as a reader with grants and as the
owner, and its content is checked against the data (coverage, sizes, distributions, licences).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pyshacl
import pytest
import rdflib
from ilsmodel import ils_models
from nodeproc import (
    ProcessGroup,
    dsgo,
    edit_config,
    free_port,
    init_owner_and_guest,
    measurements_csv,
    token_for,
    write_measurements,
)
from rdflib.namespace import RDF

ROOT = Path(__file__).resolve().parent.parent
SHAPES = Path(__file__).parent / "data" / "dcat-ap" / "dcat-ap-3.0.0-SHACL.ttl"
BUILDER = "EU.EORI.NL000000101"
READER = "EU.EORI.NL000000201"
DCAT = rdflib.Namespace("http://www.w3.org/ns/dcat#")
DCT = rdflib.Namespace("http://purl.org/dc/terms/")
FOAF = rdflib.Namespace("http://xmlns.com/foaf/0.1/")
VOID = rdflib.Namespace("http://rdfs.org/ns/void#")
ODRL = rdflib.Namespace("http://www.w3.org/ns/odrl/2/")
VCARD = rdflib.Namespace("http://www.w3.org/2006/vcard/ns#")
CC_BY = "http://creativecommons.org/licenses/by/4.0/"
CC0 = "https://creativecommons.org/publicdomain/zero/1.0/"
RESTRICTED = "http://publications.europa.eu/resource/authority/access-right/RESTRICTED"
PUBLIC = "http://publications.europa.eu/resource/authority/access-right/PUBLIC"
CATALOG_TABLES = f"""
[catalog.datasets.bim]
title = "Duplex, IFC model ready for the permit"
description = "The builder's IFC4 model of the duplex, as BOT linked data with property sets."
license = "{CC0}"
keywords = ["BIM", "IFC"]

[catalog.datasets.bag]
title = "BAG extract"
description = "Buildings (panden) of the municipality from the BAG."
access_rights = "public"
"""


@dataclass
class World:
    builder: Path
    reader: Path
    base: str

    def catalog(self, token: str | None, accept: str = "text/turtle") -> rdflib.Graph:
        headers = {"Accept": accept}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        resp = httpx.get(f"{self.base}/catalog", headers=headers, timeout=60)
        assert resp.status_code == 200, resp.text
        fmt = {"text/turtle": "turtle", "application/ld+json": "json-ld"}[accept]
        return rdflib.Graph().parse(data=resp.text, format=fmt, publicID=self.base)


@pytest.fixture(scope="module")
def world(module_procs: ProcessGroup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("dcat")
    port = free_port()
    builder, reader = init_owner_and_guest(root, BUILDER, READER, port)
    base = f"http://127.0.0.1:{port}"
    model = ils_models(tmp_path_factory, root).built
    dsgo("connect", "ifc", model, "--dataset", "bim", "--config", builder)
    bag = root / "0221PND.xml"
    shutil.copyfile(ROOT / "tests" / "data" / "bag" / "0221PND.xml", bag)
    dsgo("connect", "bag", bag, "--dataset", "bag", "--config", builder)
    csv_path, mapping = write_measurements(root / "sensors")
    dsgo(
        *("connect", "measurements", csv_path, "--dataset", "measurements"),
        *("--mapping", mapping, "--option", f"feature_base={base}", "--config", builder),
    )
    edit_config(
        builder,
        {
            "catalog": {
                "advertise": ["bag"],
                "description": "Bouwbedrijf De Bouwer's building data.",
                "license": CC_BY,
                "contact_email": "data@bouwer.example",
                "language": "nl",
            }
        },
    )
    with builder.open("a", encoding="utf-8") as fh:
        fh.write(CATALOG_TABLES)
    for dataset in ("bim", "measurements"):
        dsgo("policy", "grant", "--config", builder, "--to", READER, "--dataset", dataset)
    module_procs.serve(builder, port, name="builder")
    yield World(builder, reader, base)


def validate(graph: rdflib.Graph) -> tuple[bool, str]:
    shapes = rdflib.Graph().parse(SHAPES, format="turtle")
    conforms, _, text = pyshacl.validate(graph, shacl_graph=shapes, inference="none")
    return bool(conforms), text


def test_anonymous_catalog_conforms_to_dcat_ap(world: World) -> None:
    graph = world.catalog(None)
    conforms, report = validate(graph)
    assert conforms, report
    catalog = rdflib.URIRef(f"{world.base}/catalog")
    assert (catalog, RDF.type, DCAT.Catalog) in graph
    assert not list(graph.subjects(RDF.type, DCAT.Dataset))  # datasets need a token
    service = rdflib.URIRef(f"{world.base}/sparql")
    assert (catalog, DCAT.service, service) in graph
    assert (service, DCAT.endpointDescription, service) in graph
    publisher = graph.value(catalog, DCT.publisher)
    assert (publisher, RDF.type, FOAF.Agent) in graph
    assert graph.value(publisher, FOAF.name) is not None


@pytest.mark.parametrize("accept", ["text/turtle", "application/ld+json"])
def test_reader_catalog_conforms_to_dcat_ap(world: World, accept: str) -> None:
    graph = world.catalog(token_for(world.reader, world.base), accept)
    conforms, report = validate(graph)
    assert conforms, report
    datasets = {str(s) for s in graph.subjects(RDF.type, DCAT.Dataset)}
    assert datasets == {f"{world.base}/dataset/{n}" for n in ("bim", "measurements", "bag")}


def test_owner_catalog_conforms_to_dcat_ap(world: World) -> None:
    graph = world.catalog(token_for(world.builder, world.base))
    conforms, report = validate(graph)
    assert conforms, report
    assert rdflib.URIRef(f"{world.base}/dataset/provenance") in set(
        graph.subjects(RDF.type, DCAT.Dataset)
    )


def test_a_catalog_missing_a_mandatory_field_does_not_conform(world: World) -> None:
    """The shapes can fail: the reader's catalog without one dataset description is refused."""
    graph = world.catalog(token_for(world.reader, world.base))
    bim = rdflib.URIRef(f"{world.base}/dataset/bim")
    graph.remove((bim, DCT.description, None))
    conforms, report = validate(graph)
    assert not conforms and "description" in report


def test_datasets_carry_licence_rights_contact_and_distributions(world: World) -> None:
    graph = world.catalog(token_for(world.reader, world.base))
    ds = {n: rdflib.URIRef(f"{world.base}/dataset/{n}") for n in ("bim", "measurements", "bag")}
    # Per dataset in node.toml, with the [catalog] defaults for the rest.
    assert graph.value(ds["bim"], DCT.license) == rdflib.URIRef(CC0)
    assert graph.value(ds["measurements"], DCT.license) == rdflib.URIRef(CC_BY)
    assert graph.value(ds["bim"], DCT.accessRights) == rdflib.URIRef(RESTRICTED)
    assert graph.value(ds["bag"], DCT.accessRights) == rdflib.URIRef(PUBLIC)
    assert str(graph.value(ds["bim"], DCT.title)) == "Duplex, IFC model ready for the permit"
    assert {str(k) for k in graph.objects(ds["bim"], DCAT.keyword)} == {"BIM", "IFC"}
    contact = graph.value(ds["bim"], DCAT.contactPoint)
    assert graph.value(contact, VCARD.hasEmail) == rdflib.URIRef("mailto:data@bouwer.example")
    # One distribution per serialisation of /dataset/{name}, each with its media type.
    dists = list(graph.objects(ds["bim"], DCAT.distribution))
    media = {str(graph.value(d, DCAT.mediaType)).rsplit("media-types/", 1)[1] for d in dists}
    assert media == {
        "application/n-triples",
        "application/n-quads",
        "text/turtle",
        "application/ld+json",
    }
    assert {graph.value(d, DCAT.downloadURL) for d in dists} == {ds["bim"]}
    # The advertised dataset the reader may not read: described, offered, not downloadable.
    assert not list(graph.objects(ds["bag"], DCAT.distribution))
    offer = graph.value(ds["bag"], ODRL.hasPolicy)
    assert (offer, RDF.type, ODRL.Offer) in graph
    assert not list(graph.objects(ds["bag"], VOID.triples))


def test_each_distribution_downloads_in_its_media_type(world: World) -> None:
    token = token_for(world.reader, world.base)
    graph = world.catalog(token)
    bim = rdflib.URIRef(f"{world.base}/dataset/bim")
    size = int(graph.value(bim, VOID.triples))
    for dist in graph.objects(bim, DCAT.distribution):
        media = str(graph.value(dist, DCAT.mediaType)).rsplit("media-types/", 1)[1]
        url = str(graph.value(dist, DCAT.downloadURL))
        resp = httpx.get(
            url, headers={"Authorization": f"Bearer {token}", "Accept": media}, timeout=60
        )
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].split(";")[0] == media
        fmt = {
            "application/n-triples": "nt",
            "application/n-quads": "nquads",
            "text/turtle": "turtle",
            "application/ld+json": "json-ld",
        }[media]
        if fmt == "nquads":
            parsed = rdflib.Dataset().parse(data=resp.text, format=fmt)
            assert sum(1 for _ in parsed.quads()) == size
        else:
            assert len(rdflib.Graph().parse(data=resp.text, format=fmt)) == size


def test_spatial_coverage_is_the_ifc_sites_rd_position(world: World) -> None:
    """The ILS model's IfcMapConversion to EPSG:28992 as the dataset's dct:spatial centroid."""
    graph = world.catalog(token_for(world.reader, world.base))
    bim = rdflib.URIRef(f"{world.base}/dataset/bim")
    places = list(graph.objects(bim, DCT.spatial))
    assert len(places) == 1
    wkt = str(graph.value(places[0], DCAT.centroid))
    token = token_for(world.builder, world.base)
    resp = httpx.get(
        f"{world.base}/sparql",
        params={
            "query": "PREFIX dsgo: <https://w3id.org/dsgo-node/def#> SELECT ?e ?n WHERE "
            "{ ?site dsgo:eastings ?e ; dsgo:northings ?n }"
        },
        headers={"Authorization": f"Bearer {token}", "Accept": "application/sparql-results+json"},
    )
    (row,) = resp.json()["results"]["bindings"]
    e, n = float(row["e"]["value"]), float(row["n"]["value"])
    assert wkt.startswith("<http://www.opengis.net/def/crs/EPSG/0/28992> POINT(")
    x, y = wkt.split("POINT(")[1].rstrip(")").split()
    assert (float(x), float(y)) == (e, n)
    assert not list(graph.objects(bim, DCT.temporal))  # a model has no measurement period


def test_temporal_coverage_is_the_measurement_period(world: World) -> None:
    graph = world.catalog(token_for(world.reader, world.base))
    ds = rdflib.URIRef(f"{world.base}/dataset/measurements")
    period = graph.value(ds, DCT.temporal)
    start, end = graph.value(period, DCAT.startDate), graph.value(period, DCAT.endDate)
    stamps = sorted({line.split(",")[2] for line in measurements_csv().splitlines()[1:]})
    # The first and last readings of the CSV (the same instants).
    assert start.toPython() == datetime.fromisoformat(stamps[0])
    assert end.toPython() == datetime.fromisoformat(stamps[-1])
    assert start.toPython() < end.toPython()
    assert not list(graph.objects(ds, DCT.spatial))


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("license", "CC-BY", "catalog.license"),
        ("access_rights", "secret", "catalog.access_rights"),
        ("contact_email", "nobody", "catalog.contact_email"),
        ("colour", "blue", "catalog: unknown key"),
    ],
)
def test_a_wrong_catalog_setting_stops_with_one_line(
    tmp_path: Path, key: str, value: str, named: str
) -> None:
    config = tmp_path / "node" / "node.toml"
    dsgo("init", config.parent, "--party-id", BUILDER, "--name", "B", "--port", str(free_port()))
    edit_config(config, {"catalog": {key: value}})
    proc = dsgo("datasets", "--config", config, check=False)
    assert proc.returncode != 0
    assert named in proc.stderr and "Traceback" not in proc.stderr
