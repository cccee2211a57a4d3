"""BAG connector on the real Doesburg (0221) BAG 2.0 extract."""

from pathlib import Path

import pyoxigraph as ox
import pytest

from connectors import ConnectorError, get
from connectors.shacl import validate

DATA = Path(__file__).parent / "data" / "bag"
BASE = "http://127.0.0.1:8101"
BAG = "https://bag.basisregistraties.overheid.nl/id/"
Q = """PREFIX dsgo: <https://w3id.org/dsgo-node/def#>
PREFIX prov: <http://www.w3.org/ns/prov#>
PREFIX bag: <https://bag.basisregistraties.overheid.nl/def/bag#>
"""


def _run(tmp_path, name):
    result = get("bag").run(
        str(DATA / name), base_iri=BASE, dataset=name[4:7].lower(), party_id="p", workdir=tmp_path
    )
    store = ox.Store()
    store.bulk_load(path=str(result.ntriples_path), format=ox.RdfFormat.N_TRIPLES)
    return result, store


def test_panden_with_their_versions(tmp_path):
    result, store = _run(tmp_path, "0221PND.xml")
    rows = store.query(
        Q
        + """SELECT ?pand (COUNT(?v) AS ?n) WHERE { ?pand a bag:Pand . ?v prov:specializationOf ?pand }
                                 GROUP BY ?pand ORDER BY ?pand"""
    )
    assert [(r["pand"].value, int(r["n"].value)) for r in rows] == [
        (f"{BAG}pand/0221100000311191", 2),
        (f"{BAG}pand/0221100000312938", 4),
    ]
    years = store.query(
        Q
        + f"""SELECT ?y WHERE {{ <{BASE}/id/bag/pand/0221100000312938/2> dsgo:oorspronkelijkBouwjaar ?y }}"""
    )
    assert [r["y"].value for r in years] == ["1585"]
    current = store.query(
        Q
        + """SELECT ?v WHERE { ?v a dsgo:BagVersion FILTER NOT EXISTS { ?v dsgo:eindGeldigheid ?e } }"""
    )
    assert len(list(current)) == 2  # one current version per pand
    assert validate(result, "bag") == result.triple_count


def test_verblijfsobjecten_and_pand_links(tmp_path):
    result, store = _run(tmp_path, "0221VBO.xml")
    versions = list(
        store.query(
            Q + "SELECT ?v ?pand WHERE { ?v a dsgo:BagVersion ; dsgo:maaktDeelUitVan ?pand }"
        )
    )
    assert len(versions) == 5
    links = {(r["v"].value.split("/")[-2], r["pand"].value.rsplit("/", 1)[1]) for r in versions}
    assert links == {
        ("0221010000330226", "0221100000312938"),
        ("0221010000330999", "0221100000311191"),
    }
    objects = list(store.query(Q + "SELECT ?o WHERE { ?o a bag:Verblijfsobject }"))
    assert len(objects) == 2
    side = list(store.query(Q + "SELECT ?n WHERE { ?v dsgo:heeftAlsNevenadres ?n }"))
    assert len(side) == 2
    assert result.prov.extra == {"versions_verblijfsobject": "5"}
    assert validate(result, "bag") == result.triple_count


def test_nummeraanduidingen(tmp_path):
    result, store = _run(tmp_path, "0221NUM.xml")
    assert len(list(store.query(Q + "SELECT ?o WHERE { ?o a bag:Nummeraanduiding }"))) == 9
    postcodes = {
        r["p"].value for r in store.query(Q + "SELECT DISTINCT ?p WHERE { ?v bag:postcode ?p }")
    }
    assert "6982CZ" in postcodes
    validate(result, "bag")


def test_deterministic(tmp_path):
    a, _ = _run(tmp_path / "a" if (tmp_path / "a").mkdir() is None else tmp_path, "0221VBO.xml")
    b, _ = _run(tmp_path / "b" if (tmp_path / "b").mkdir() is None else tmp_path, "0221VBO.xml")
    assert a.ntriples_path.read_bytes() == b.ntriples_path.read_bytes()


def test_broken_xml_names_the_line(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text((DATA / "0221PND.xml").read_text(encoding="utf-8")[:5000])
    with pytest.raises(ConnectorError) as err:
        get("bag").run(str(bad), base_iri=BASE, dataset="d", party_id="p", workdir=tmp_path)
    assert err.value.position.startswith("line ")


def test_bad_identificatie_is_named(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text(
        (DATA / "0221PND.xml").read_text(encoding="utf-8").replace(">0221100000311191<", ">12<")
    )
    with pytest.raises(ConnectorError) as err:
        get("bag").run(str(bad), base_iri=BASE, dataset="d", party_id="p", workdir=tmp_path)
    assert err.value.position == "Pand record 5" and "16-digit" in err.value.reason
