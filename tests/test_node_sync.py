"""Issue 5 at node level: `dsgo sync` keeps [[sources]] in step, all or nothing per source.

A node.toml lists an IFC file and a sensor CSV (with its mapping); `dsgo sync` runs only the
sources that changed, and a bad source fails with one clear line while the node keeps serving the
previous version. Checked with the node stopped (direct store access) and running (admin API).
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from nodeproc import (
    DUPLEX_IFC,
    MEASUREMENTS_MAPPING,
    ProcessGroup,
    dsgo,
    free_port,
    init_node,
    measurements_csv,
)

from node.cli import main

PARTY = "EU.EORI.NL000000101"
CO2_OF_A_ROOM = """PREFIX sosa: <http://www.w3.org/ns/sosa/> PREFIX qudt: <http://qudt.org/schema/qudt/>
PREFIX dsgo: <https://w3id.org/dsgo-node/def#>
SELECT ?v WHERE { ?o sosa:observedProperty dsgo:CO2Concentration ;
  sosa:hasFeatureOfInterest <%s/id/bim/space/0BTBFw6f90Nfh9rP1dlXr2> ;
  sosa:resultTime "2022-10-12T10:00:00+02:00"^^<http://www.w3.org/2001/XMLSchema#dateTime> ;
  sosa:hasResult/qudt:numericValue ?v }"""
SPACE_NAME = """PREFIX props: <https://w3id.org/props#>
SELECT ?n WHERE { <%s/id/bim/space/0BTBFw6f90Nfh9rP1dlXr2> props:longName ?n }"""


def cli(*args: str | Path) -> str:
    """`dsgo ARGS` run in this process (a read-back, not what a test is about); its stdout."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*map(str, args)])
    assert code == 0, f"dsgo {' '.join(map(str, args))} exited {code}: {err.getvalue()}"
    return out.getvalue()


@dataclass
class Node:
    config: Path
    port: int
    ifc: Path
    csv: Path
    mapping: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sync(self, check: bool = True):
        """The real `dsgo sync` process (its exit code and output are what is checked)."""
        return dsgo("sync", "--config", self.config, check=check)

    def outcomes(self, out: str) -> dict[str, str]:
        """dataset -> status, from `dsgo sync` output lines `DATASET: STATUS ...`."""
        return dict(re.findall(r"^([a-z0-9_-]+): (\w+)", out, re.M))

    def counts(self) -> dict[str, int]:
        out = cli("datasets", "--config", self.config)
        return {line.split("\t")[0]: int(line.split("\t")[1]) for line in out.splitlines()}

    def answer(self, template: str) -> list[str]:
        out = cli("query", template % self.base, "--config", self.config, "--format", "tsv")
        return sorted(out.splitlines()[1:])

    def snapshot(self) -> tuple[dict[str, int], list[str], list[str]]:
        return self.counts(), self.answer(CO2_OF_A_ROOM), self.answer(SPACE_NAME)


def make_node(root: Path, port: int) -> Node:
    """ROOT/node with two [[sources]]: the duplex IFC and a sensor CSV with its mapping."""
    config = init_node(root / "node", PARTY, "Builder", port)
    src = root / "sources"
    src.mkdir()
    ifc, csv_path, mapping = src / "duplex.ifc", src / "readings.csv", src / "mapping.toml"
    shutil.copyfile(DUPLEX_IFC, ifc)
    csv_path.write_text(measurements_csv(), encoding="utf-8")
    mapping.write_text(MEASUREMENTS_MAPPING, encoding="utf-8")
    text = config.read_text(encoding="utf-8")
    text += f"""
[[sources]]
kind = "ifc"
source = "{ifc}"
dataset = "bim"

[[sources]]
kind = "measurements"
source = "{csv_path}"
dataset = "measurements"
mapping = "{mapping}"
feature_base = "http://127.0.0.1:{port}"
"""
    config.write_text(text, encoding="utf-8")
    return Node(config, port, ifc, csv_path, mapping)


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Node, Path, Path]:
    """The node after its first `dsgo sync` (checked by first_sync, once for the module), and a
    pristine copy of its directory that every test's `node` is restored from."""
    work = tmp_path_factory.mktemp("sync-node") / "work"
    node = make_node(work, free_port())
    first_sync(node)
    pristine = tmp_path_factory.mktemp("sync-pristine") / "work"
    shutil.copytree(work, pristine)
    return node, work, pristine


@pytest.fixture
def node(synced: tuple[Node, Path, Path]) -> Node:
    """The node (stopped) as its first sync left it: both sources loaded, sync state saved.

    Restored at the same path for every test (node.toml names its sources by absolute path,
    and the sync state's checksums include that path), so each test starts from the same
    state as after `init` + first_sync, without paying for the IFC conversion again."""
    node, work, pristine = synced
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(pristine, work)
    return node


def numbers(cells: list[str]) -> list[float]:
    """Numeric TSV cells (`400.0`, `4.0E2` or `"400.0"^^<...#double>`) as floats."""
    return [float(cell.split("^^")[0].strip('"')) for cell in cells]


def first_sync(node: Node) -> None:
    out = node.sync().stdout
    assert node.outcomes(out) == {"bim": "updated", "measurements": "updated"}, out
    counts = node.counts()
    assert counts["bim"] > 10_000 and counts["measurements"] > 0
    assert numbers(node.answer(CO2_OF_A_ROOM)) == [400.0]
    assert node.answer(SPACE_NAME) == ['"Living Room"']


def test_sync_runs_only_changed_sources(node: Node) -> None:
    # the first sync ran both (first_sync, in the `synced` fixture this node is a copy of)
    out = node.sync().stdout
    assert node.outcomes(out) == {"bim": "unchanged", "measurements": "unchanged"}, out
    before = node.answer(CO2_OF_A_ROOM)
    node.csv.write_text(measurements_csv(offset=1000.0), encoding="utf-8")
    out = node.sync().stdout
    assert node.outcomes(out) == {"bim": "unchanged", "measurements": "updated"}, out
    after = node.answer(CO2_OF_A_ROOM)
    assert after != before and numbers(after) == [1400.0]
    out = node.sync().stdout
    assert node.outcomes(out) == {"bim": "unchanged", "measurements": "unchanged"}, out


def _truncate_ifc(node: Node) -> None:
    data = node.ifc.read_bytes()
    node.ifc.write_bytes(data[: len(data) // 3])


def _bad_row(node: Node) -> None:
    lines = measurements_csv(offset=5.0).splitlines()
    lines[5] = lines[5].replace(",co2__ppm,", ",co2__ppm,not-a-number").rsplit(",", 1)[0] + ",ppm"
    node.csv.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _unknown_unit(node: Node) -> None:
    text = measurements_csv(offset=5.0).replace("°C", "kelvin?", 1)
    node.csv.write_text(text, encoding="utf-8")


def _shacl_violation(node: Node) -> None:
    # The results' unit must be a QUDT unit (vocab/shapes/measurements.ttl): map ppm elsewhere.
    node.mapping.write_text(
        MEASUREMENTS_MAPPING.replace('"ppm" = "unit:PPM"', '"ppm" = "https://example.org/ppm"'),
        encoding="utf-8",
    )


# (breaks the source, dataset, words the one-line error must contain)
FAILURES: dict[str, tuple[Callable[[Node], None], str, tuple[str, ...]]] = {
    "corrupt-ifc": (_truncate_ifc, "bim", ("duplex.ifc",)),
    "bad-row": (_bad_row, "measurements", ("readings.csv", "not-a-number", "6")),
    "unknown-unit": (_unknown_unit, "measurements", ("readings.csv", "unknown unit", "kelvin?")),
    "shacl": (_shacl_violation, "measurements", ("measurements", "shacl")),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_bad_source_fails_and_keeps_served_data(node: Node, case: str) -> None:
    before = node.snapshot()
    breaks, dataset, words = FAILURES[case]
    breaks(node)
    proc = node.sync(check=False)
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    (line,) = [line for line in proc.stdout.splitlines() if line.startswith(f"{dataset}: ")]
    assert line.startswith(f"{dataset}: failed — "), line
    for word in words:
        assert word.lower() in line.lower(), line
    others = node.outcomes(proc.stdout)
    assert set(others.values()) == {"failed", "unchanged"}
    assert node.snapshot() == before


def test_sync_through_the_running_node(node: Node, procs: ProcessGroup) -> None:
    procs.serve(node.config, node.port, name="node")
    before = node.snapshot()  # queries now go through the running node's HTTP API
    _bad_row(node)
    proc = node.sync(check=False)
    assert proc.returncode != 0
    (line,) = [line for line in proc.stdout.splitlines() if line.startswith("measurements: ")]
    assert "failed" in line and "readings.csv" in line and "not-a-number" in line, line
    assert node.snapshot() == before
    node.csv.write_text(measurements_csv(offset=250.0), encoding="utf-8")
    out = node.sync().stdout
    assert node.outcomes(out) == {"bim": "unchanged", "measurements": "updated"}, out
    assert numbers(node.answer(CO2_OF_A_ROOM)) == [650.0]
    counts, _, names = node.snapshot()
    assert names == before[2]
    assert counts["bim"] == before[0]["bim"] and counts["measurements"] == before[0]["measurements"]
    assert counts["provenance"] > before[0]["provenance"]  # the new version's record
