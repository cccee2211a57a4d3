"""Measurements connector on the real Brains4Buildings file (386,233 readings, CSV.gz + Parquet)."""

import gzip
from pathlib import Path

import pyoxigraph as ox
import pytest

from connectors import ConnectorError, get
from connectors.shacl import validate

DATA = Path(__file__).parent / "data" / "measurements"
MAPPING = DATA / "b4b-mapping.toml"
BASE = "http://127.0.0.1:8102"
ROOMS_NODE = "http://127.0.0.1:8101"
PREFIXES = """
PREFIX sosa: <http://www.w3.org/ns/sosa/>
PREFIX qudt: <http://qudt.org/schema/qudt/>
PREFIX unit: <http://qudt.org/vocab/unit/>
PREFIX dsgo: <https://w3id.org/dsgo-node/def#>
"""


def _run(tmp_path, source, mapping=MAPPING, options=None, dataset="m"):
    return get("measurements").run(
        str(source),
        base_iri=BASE,
        dataset=dataset,
        party_id="EU.EORI.NL000000002",
        mapping=mapping,
        workdir=tmp_path,
        options=options or {},
    )


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    result = _run(
        tmp_path_factory.mktemp("m"),
        DATA / "b4b_raw_measurements.csv.gz",
        options={"feature_base": ROOMS_NODE},
    )
    store = ox.Store()
    store.bulk_load(path=str(result.ntriples_path), format=ox.RdfFormat.N_TRIPLES)
    return result, store


def _select(store, query):
    return list(store.query(PREFIXES + query))


def test_whole_file_loads(full):
    result, store = full
    assert result.prov.extra["readings"] == "386233"
    assert len(store) == result.triple_count
    n = _select(store, "SELECT (COUNT(*) AS ?n) WHERE { ?o a sosa:Observation }")[0]["n"]
    assert int(n.value) == 386233


def test_counts_per_room_and_property(full):
    _, store = full
    rows = _select(
        store,
        """SELECT ?room ?prop (COUNT(*) AS ?n) WHERE {
             ?o sosa:hasFeatureOfInterest ?room ; sosa:observedProperty ?prop }
           GROUP BY ?room ?prop""",
    )
    counts = {
        (r["room"].value.rsplit("/", 1)[1], r["prop"].value.split("#")[1]): int(r["n"].value)
        for r in rows
    }
    # expected figures: per (id, property) row counts of the source file
    assert counts[("999169", "CO2Concentration")] == 2974 + 34446
    assert counts[("917810", "AirTemperature")] == 2156 + 34446
    assert counts[("925038", "OccupantCount")] == 3861 + 7 + 92
    assert counts[("925038", "DoorOpen")] == 7
    assert sum(counts.values()) == 386233


def test_units(full):
    _, store = full
    rows = _select(
        store,
        """SELECT ?prop ?unit (COUNT(*) AS ?n) WHERE {
             ?o sosa:observedProperty ?prop ; sosa:hasResult/qudt:unit ?unit }
           GROUP BY ?prop ?unit""",
    )
    units = {r["prop"].value.split("#")[1]: r["unit"].value.rsplit("/", 1)[1] for r in rows}
    assert units == {
        "CO2Concentration": "PPM",
        "AirTemperature": "DEG_C",
        "RelativeHumidity": "FRACTION",
        "OccupantCount": "NUM",
        "ValvePosition": "FRACTION",
    }
    assert len(rows) == len(units)  # one unit per property
    simple = _select(store, "SELECT (COUNT(*) AS ?n) WHERE { ?o sosa:hasSimpleResult ?v }")
    assert int(simple[0]["n"].value) == 34446 * 2 + 17 * 2


def test_time_zones_are_kept(full):
    _, store = full
    rows = _select(
        store,
        """SELECT ?tz (COUNT(*) AS ?n) WHERE { ?o sosa:resultTime ?t BIND(SUBSTR(STR(?t), 20) AS ?tz) }
           GROUP BY ?tz""",
    )
    zones = {r["tz"].value: int(r["n"].value) for r in rows}
    with gzip.open(DATA / "b4b_raw_measurements.csv.gz", "rt", encoding="utf-8") as fh:
        winter = sum(1 for line in fh if "+01:00," in line)
    assert zones == {"+01:00": winter, "+02:00": 386233 - winter}
    assert winter > 0


def test_reading_links_to_its_room_on_the_other_node(full):
    _, store = full
    obs = ox.NamedNode(
        f"{BASE}/id/observation/999169/CO2-meter-SCD4x/co2__ppm/20221012T161300+0200"
    )
    rows = _select(
        store,
        f"""SELECT ?room ?v ?t WHERE {{ {obs} sosa:hasFeatureOfInterest ?room ;
               sosa:resultTime ?t ; sosa:hasResult/qudt:numericValue ?v }}""",
    )
    assert [(r["room"].value, float(r["v"].value), r["t"].value) for r in rows] == [
        (f"{ROOMS_NODE}/id/room/999169", 543.0, "2022-10-12T16:13:00+02:00")
    ]


def test_duplicate_keys_get_distinct_iris(full):
    _, store = full
    stem = f"{BASE}/id/observation/925038/CO2-meter-SCD4x/rel_humidity__0/20221010T104000+0200"
    rows = _select(
        store,
        f"SELECT ?v WHERE {{ VALUES ?o {{ <{stem}> <{stem}-2> }} ?o sosa:hasResult/qudt:numericValue ?v }}",
    )
    assert sorted(float(r["v"].value) for r in rows) == [0.46299999999999997, 0.467]


def test_sample_passes_shapes(full):
    result, _ = full
    checked = validate(result, "measurements", max_triples=20_000)
    assert 0 < checked < result.triple_count


def test_parquet_gives_the_same_triples_as_csv(tmp_path, full):
    csv_result, _ = full
    pq = _run(tmp_path, DATA / "b4b_raw_measurements.parquet", options={"feature_base": ROOMS_NODE})
    assert pq.ntriples_path.read_bytes() == csv_result.ntriples_path.read_bytes()


def _small_csv(tmp_path, rows: list[str], name="s.csv") -> Path:
    path = tmp_path / name
    path.write_text(
        "id,source,timestamp,property,value,unit\n" + "".join(r + "\n" for r in rows),
        encoding="utf-8",
    )
    return path


GOOD = "999169,CO2-meter-SCD4x,2022-10-30 03:00:00+01:00,co2__ppm,543.0,ppm"


def test_small_csv_converts_and_validates(tmp_path):
    result = _run(
        tmp_path,
        _small_csv(tmp_path, [GOOD, "999169,bms,2022-10-30 03:00:00+01:00,door_open__bool,1.0,"]),
    )
    assert result.triple_count == 9 + 6 + 2 * 3
    assert validate(result, "measurements") == result.triple_count
    assert '"2022-10-30T03:00:00+01:00"' in result.ntriples_path.read_text()


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("999169,bms,2022-10-30 03:00:00+01:00,co2__ppm,abc,", "not a number"),
        ("999169,bms,2022-10-30 03:00:00,co2__ppm,1.0,", "time-zone offset"),
        ("999169,bms,yesterday,co2__ppm,1.0,", "time-zone offset"),
        ("999169,bms,2022-10-30 03:00:00+01:00,co2__ppm,1.0", "expected 6 fields"),
        ("999169,bms,2022-10-30 03:00:00+01:00,co2__ppm,1.0,furlong", "unknown unit 'furlong'"),
        ("999169,bms,2022-10-30 03:00:00+01:00,pressure__pa,1.0,", "not in the mapping"),
        ("999169,bms,2022-10-30 03:00:00+01:00,door_open__bool,0.5,", "0 or 1"),
        ("999169,bms,2022-10-30 03:00:00+01:00,co2__ppm,,", "not a number"),
    ],
)
def test_bad_row_is_named(tmp_path, row, reason):
    path = _small_csv(tmp_path, [GOOD, GOOD.replace("03:00", "03:10"), row])
    with pytest.raises(ConnectorError) as err:
        _run(tmp_path, path)
    assert err.value.source == str(path)
    assert err.value.position == "row 3 (line 4)"
    assert reason in err.value.reason


def test_unknown_default_unit_in_mapping_is_refused(tmp_path):
    mapping = tmp_path / "m.toml"
    mapping.write_text(
        MAPPING.read_text(encoding="utf-8").replace('unit = "ppm"', 'unit = "ppb"'),
        encoding="utf-8",
    )
    with pytest.raises(ConnectorError, match="unknown unit 'ppb'"):
        _run(tmp_path, _small_csv(tmp_path, [GOOD]), mapping=mapping)


def test_mapping_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[columns\n")
    with pytest.raises(ConnectorError, match="invalid TOML"):
        _run(tmp_path, _small_csv(tmp_path, [GOOD]), mapping=bad)
    with pytest.raises(ConnectorError, match="needs a mapping"):
        _run(tmp_path, _small_csv(tmp_path, [GOOD]), mapping=None)
    unknown_prefix = tmp_path / "p.toml"
    unknown_prefix.write_text(
        MAPPING.read_text(encoding="utf-8").replace("unit:PPM", "foo:PPM"), encoding="utf-8"
    )
    with pytest.raises(ConnectorError, match="foo:PPM"):
        _run(tmp_path, _small_csv(tmp_path, [GOOD]), mapping=unknown_prefix)


def test_unsupported_extension_and_missing_header(tmp_path):
    with pytest.raises(ConnectorError, match="unsupported file type"):
        _run(tmp_path, _small_csv(tmp_path, [GOOD], name="s.xlsx"))
    headless = tmp_path / "h.csv"
    headless.write_text("a,b\n1,2\n")
    with pytest.raises(ConnectorError, match="header lacks"):
        _run(tmp_path, headless)


def test_per_feature_iri_override(tmp_path):
    mapping = tmp_path / "m.toml"
    mapping.write_text(
        MAPPING.read_text(encoding="utf-8")
        + '\n[feature.iris]\n"999169" = "{base}/id/space/0BTBFw6f90Nfh9rP1dlXr2"\n',
        encoding="utf-8",
    )
    result = _run(
        tmp_path,
        _small_csv(tmp_path, [GOOD]),
        mapping=mapping,
        options={"feature_base": ROOMS_NODE},
    )
    assert f"<{ROOMS_NODE}/id/space/0BTBFw6f90Nfh9rP1dlXr2>" in result.ntriples_path.read_text()
