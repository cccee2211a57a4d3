"""Shared fixtures: process groups that always stop the servers they started, and the dev CA."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import pgproc  # noqa: E402
from nodeproc import ProcessGroup, dsgo, output_tails  # noqa: E402
from virtuoso import Virtuoso, start_virtuoso  # noqa: E402

# The heaviest test files, longest first (their summed durations from --durations=0 in
# a whole run). `make test` hands whole files to its workers (`--dist loadfile`) in collection
# order: starting these first keeps one long file from being the last thing still running.
HEAVIEST_FIRST = (
    "test_demo.py",
    "test_check_ids_cli.py",
    "test_merge_e2e.py",
    "test_node_sync.py",
    "test_connector_ifc_corpus.py",
    "test_web_pages.py",
    "test_node_http.py",
    "test_api_fuzz.py",
    "test_node_config.py",
    "test_e2e_permit_check.py",
    "test_ishare_conformance.py",
    "test_connector_measurements.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Heaviest files first (HEAVIEST_FIRST), every other file after them in its own order."""
    rank = {name: i for i, name in enumerate(HEAVIEST_FIRST)}
    last = len(HEAVIEST_FIRST)
    items.sort(key=lambda item: rank.get(item.path.name, last))  # stable: order within a file


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[ProcessGroup]:
    """Servers started in one test; all stopped at its end, pass or fail."""
    group = ProcessGroup(tmp_path / "logs")
    try:
        yield group
    finally:
        group.stop_all()


@pytest.fixture(scope="module")
def module_procs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessGroup]:
    """Servers shared by one test module; all stopped when the module is done."""
    group = ProcessGroup(tmp_path_factory.mktemp("logs"))
    try:
        yield group
    finally:
        group.stop_all()


@pytest.fixture(scope="module")
def dev_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A development scheme CA made with `dsgo trust ca`, shared by the nodes of one module."""
    ca = tmp_path_factory.mktemp("ca") / "dev-ca"
    dsgo("trust", "ca", ca)
    return ca


@pytest.fixture(scope="module")
def virtuoso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Virtuoso]:
    """One Virtuoso per test module (tests/virtuoso.py), stopped when the module is done.

    Fails when Virtuoso is not installed, unless DSGO_SKIP_VIRTUOSO=1 (then it skips)."""
    group = ProcessGroup(tmp_path_factory.mktemp("virtuoso-logs"))
    try:
        yield start_virtuoso(group, tmp_path_factory.mktemp("virtuoso"))
    finally:
        group.stop_all()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """A failed test's report ends with the servers' last log lines (what a CI log needs)."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when in ("setup", "call"):
        tails = output_tails()
        if tails:
            report.sections.append(("servers' stderr (last lines)", tails))


@pytest.fixture(scope="module")
def pg() -> Iterator[pgproc.Postgres]:
    """A throw-away PostgreSQL for the module (tests/pgproc.py); skipped where it cannot run."""
    reason = pgproc.available()
    if reason:
        pytest.skip(reason)
    with pgproc.postgres() as server:
        yield server


@pytest.fixture(scope="module")
def pg_url(pg: pgproc.Postgres) -> str:
    return pg.url
