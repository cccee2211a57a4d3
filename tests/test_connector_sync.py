"""sync(): re-runs changed sources only; failures neither write nor update the state."""

import json
from pathlib import Path

from connectors.base import ConnectorResult
from connectors.run import run_connector
from node.sync import SyncSource, sync

BAG = Path(__file__).parent / "data" / "bag"


def _runner(tmp_path):
    def run_one(src: SyncSource) -> ConnectorResult:
        return run_connector(
            src.kind,
            src.source,
            base_iri="http://127.0.0.1:8101",
            dataset=src.dataset,
            party_id="p",
            mapping=src.mapping,
            workdir=tmp_path / "work",
            options=src.options,
        )

    return run_one


def test_unchanged_sources_are_skipped_and_changed_ones_rerun(tmp_path):
    source = tmp_path / "pnd.xml"
    source.write_bytes((BAG / "0221PND.xml").read_bytes())
    written: list[tuple[str, int]] = []
    state = tmp_path / "state" / "sync.json"
    sources = [SyncSource("bag", str(source), "bag-pand")]

    def write(dataset, result):
        written.append((dataset, result.triple_count))

    first = sync(sources, state, _runner(tmp_path), write)
    assert [o.status for o in first] == ["updated"] and written == [
        ("bag-pand", first[0].triple_count)
    ]
    assert json.loads(state.read_text())["checksums"]["bag-pand"] == first[0].checksum
    second = sync(sources, state, _runner(tmp_path), write)
    assert [o.status for o in second] == ["unchanged"] and len(written) == 1
    forced = sync(sources, state, _runner(tmp_path), write, force=True)
    assert [o.status for o in forced] == ["updated"] and len(written) == 2
    source.write_bytes(
        (BAG / "0221PND.xml").read_bytes().replace(b"Pand in gebruik", b"Pand gesloopt")
    )
    third = sync(sources, state, _runner(tmp_path), write)
    assert [o.status for o in third] == ["updated"] and third[0].checksum != first[0].checksum
    assert len(written) == 3


def test_failed_run_reports_and_neither_writes_nor_updates_state(tmp_path):
    good = tmp_path / "vbo.xml"
    good.write_bytes((BAG / "0221VBO.xml").read_bytes())
    bad = tmp_path / "bad.xml"
    bad.write_text("<not-closed>")
    state = tmp_path / "sync.json"
    written = []
    outcomes = sync(
        [SyncSource("bag", str(bad), "broken"), SyncSource("bag", str(good), "vbo")],
        state,
        _runner(tmp_path),
        lambda d, r: written.append(d),
    )
    assert [(o.dataset, o.status) for o in outcomes] == [("broken", "failed"), ("vbo", "updated")]
    assert "bad XML" in outcomes[0].error
    assert written == ["vbo"]
    assert set(json.loads(state.read_text())["checksums"]) == {"vbo"}


def test_failing_write_does_not_update_state(tmp_path):
    state = tmp_path / "sync.json"

    def write(dataset, result):
        raise RuntimeError("store is read-only")

    outcomes = sync(
        [SyncSource("bag", str(BAG / "0221VBO.xml"), "vbo")], state, _runner(tmp_path), write
    )
    assert outcomes[0].status == "failed" and "read-only" in outcomes[0].error
    assert not state.exists()


def test_missing_source_fails_cleanly(tmp_path):
    outcomes = sync(
        [SyncSource("bag", str(tmp_path / "nope.xml"), "x")],
        tmp_path / "s.json",
        _runner(tmp_path),
        lambda d, r: None,
    )
    assert outcomes[0].status == "failed" and "nope.xml" in outcomes[0].error


def test_corrupt_state_file_means_rerun(tmp_path):
    state = tmp_path / "s.json"
    state.write_text("{not json")
    outcomes = sync(
        [SyncSource("bag", str(BAG / "0221VBO.xml"), "vbo")],
        state,
        _runner(tmp_path),
        lambda d, r: None,
    )
    assert outcomes[0].status == "updated"
    assert "vbo" in json.loads(state.read_text())["checksums"]
