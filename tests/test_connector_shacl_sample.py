"""SHACL on a sample of a large output: closed subgraphs, never a violation a full check lacks."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from connectors import ShaclValidationError, get
from connectors.shacl import _shapes, sample, sampleable, validate

DATA = Path(__file__).parent / "data" / "ifc"
BASE = "http://127.0.0.1:8101"
RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"


@pytest.fixture(scope="module")
def duplex(tmp_path_factory):
    """The Revit duplex: doors and windows whose hasSubElement links come after all elements."""
    return get("ifc").run(
        str(DATA / "duplex.ifc"),
        base_iri=BASE,
        dataset="bim",
        party_id="p",
        workdir=tmp_path_factory.mktemp("sample"),
        options={"progress": "0"},
    )


def _parts(line: str) -> tuple[str, str, str]:
    s, p, rest = line.split(" ", 2)
    return s, p, rest.rstrip().removesuffix(".").rstrip()


@pytest.mark.parametrize("limit", [300, 1_000, 3_000, 10_000])
def test_a_valid_output_never_fails_on_its_sample(duplex, limit):
    checked = validate(duplex, "ifc", max_triples=limit)
    assert 0 < checked < duplex.triple_count


def test_sampled_nodes_come_with_their_closed_subgraph(duplex):
    lines = duplex.ntriples_path.read_text(encoding="utf-8").splitlines(keepends=True)
    picked = sample(duplex.ntriples_path, duplex.triple_count, 2_000)
    assert picked is not None and picked.focus
    kept = set(picked.lines)
    neighbours = set()
    for line in lines:
        s, p, o = _parts(line)
        if s in picked.focus:
            assert line in kept
            if o.startswith("<") and p != RDF_TYPE:
                neighbours.add(o)
        if o in picked.focus:
            assert line in kept
            neighbours.add(s)
    for line in lines:
        s, p, _ = _parts(line)
        if p == RDF_TYPE and s in neighbours:
            assert line in kept
    # the case: a host picked with a window it hosts, whose types come along
    picked = sample(duplex.ntriples_path, duplex.triple_count, 10_000)
    windows = {_parts(x)[0] for x in lines if _parts(x)[2].endswith("#Window>")}
    hosted = {
        _parts(line)[2]
        for line in picked.lines
        if "#hasSubElement>" in line and _parts(line)[2] in windows
    }
    assert hosted
    for window in hosted:
        assert f"{window} {RDF_TYPE} <https://w3id.org/bot#Element> .\n" in picked.lines


def test_sample_is_deterministic_whatever_the_line_order(duplex, tmp_path):
    first = sample(duplex.ntriples_path, duplex.triple_count, 2_000)
    again = sample(duplex.ntriples_path, duplex.triple_count, 2_000)
    assert first.lines == again.lines
    lines = duplex.ntriples_path.read_text(encoding="utf-8").splitlines(keepends=True)
    random.Random(13).shuffle(lines)
    shuffled = tmp_path / "shuffled.nt"
    shuffled.write_text("".join(lines), encoding="utf-8")
    other = sample(shuffled, duplex.triple_count, 2_000)
    assert sorted(other.lines) == sorted(first.lines) and other.focus == first.focus


def test_a_violation_on_a_sampled_node_is_reported(duplex, tmp_path):
    picked = sample(duplex.ntriples_path, duplex.triple_count, 2_000)
    text = duplex.ntriples_path.read_text(encoding="utf-8")
    element = sorted(
        s for s in picked.focus if f"{s} {RDF_TYPE} <https://w3id.org/bot#Element> ." in text
    )[0]
    broken = tmp_path / "broken.nt"
    bad = f'{element} <https://w3id.org/props#globalIdIfcRoot> "not-a-globalid" .\n'
    broken.write_text(text + bad, encoding="utf-8")
    result = type(duplex)(duplex.prov, broken, None, duplex.triple_count + 1)
    with pytest.raises(ShaclValidationError) as err:
        validate(result, "ifc", max_triples=2_000)
    assert element[1:-1] in str(err.value)


def test_shapes_that_need_more_than_one_step_are_validated_whole(duplex, tmp_path):
    assert sampleable(_shapes("ifc")) and sampleable(_shapes("measurements"))
    assert not sampleable(_shapes("provenance"))  # sh:node on values


def test_blank_nodes_mean_no_sample(tmp_path):
    path = tmp_path / "b.nt"
    path.write_text("<http://x/a> <http://x/p> _:b .\n_:b <http://x/q> <http://x/c> .\n")
    assert sample(path, 2, 1) is None


QV = "<http://x/q>"
QUDT = "http://qudt.org/schema/qudt/"
DSGO = "https://w3id.org/dsgo-node/def#"
SOSA = "http://www.w3.org/ns/sosa/"
QUANTITY = (
    f"{QV} {RDF_TYPE} <{QUDT}QuantityValue> .\n"
    f'{QV} <{QUDT}numericValue> "1.5"^^<http://www.w3.org/2001/XMLSchema#double> .\n'
    f"{QV} <{QUDT}unit> <http://qudt.org/vocab/unit/M> .\n"
)
OBS = "<http://x/o>"
OBSERVATION = (
    f"{OBS} {RDF_TYPE} <{SOSA}Observation> .\n"
    f"{OBS} <{SOSA}hasFeatureOfInterest> <http://x/room> .\n"
    f"{OBS} <{SOSA}observedProperty> <http://x/temperature> .\n"
    f"{OBS} <{SOSA}madeBySensor> <http://x/sensor> .\n"
    f'{OBS} <{SOSA}resultTime> "2026-01-01T00:00:00Z"^^<http://www.w3.org/2001/XMLSchema#dateTime> .\n'
)


@pytest.mark.parametrize(
    ("kind", "base", "extra", "ok"),
    [
        ("ifc", QUANTITY, f'{QV} <{DSGO}propertySet> "Qto_SpaceBaseQuantities" .\n', True),
        ("ifc", QUANTITY, f'{QV} <{DSGO}ifcAttribute> "OverallWidth" .\n', True),
        (
            "ifc",
            QUANTITY,
            f'{QV} <{DSGO}propertySet> "Pset" .\n{QV} <{DSGO}ifcAttribute> "Width" .\n',
            False,
        ),
        ("ifc", QUANTITY, "", False),
        (
            "measurements",
            OBSERVATION,
            f'{OBS} <{SOSA}hasSimpleResult> "true"^^<http://www.w3.org/2001/XMLSchema#boolean> .\n',
            True,
        ),
        (
            "measurements",
            OBSERVATION,
            f'{OBS} <{SOSA}hasSimpleResult> "true"^^<http://www.w3.org/2001/XMLSchema#boolean> .\n'
            f"{OBS} <{SOSA}hasResult> {QV} .\n{QUANTITY}",
            False,
        ),
        ("measurements", OBSERVATION, "", False),
    ],
)
def test_exactly_one_of_two_sources(duplex, tmp_path, kind, base, extra, ok):
    """A quantity value comes from one property set or one IFC attribute, an observation has
    one result: both, or neither, is a violation that names the rule."""
    path = tmp_path / "one.nt"
    path.write_text(base + extra, encoding="utf-8")
    count = len((base + extra).splitlines())
    result = type(duplex)(duplex.prov, path, None, count)
    if ok:
        assert validate(result, kind) == count
        return
    with pytest.raises(ShaclValidationError) as err:
        validate(result, kind)
    assert "exactly one" in str(err.value)
