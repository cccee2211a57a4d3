"""SQL connector against SQLite and a real PostgreSQL started for the test."""

import glob
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import pyoxigraph as ox
import pytest

from connectors import ConnectorError, get
from connectors.shacl import validate
from connectors.sql import open_read_only

DATA = Path(__file__).parent / "data" / "sql"
BASE = "http://127.0.0.1:8101"


def _run(tmp_path, source, mapping=DATA / "mapping.toml"):
    return get("sql").run(
        source, base_iri=BASE, dataset="db", party_id="p", mapping=mapping, workdir=tmp_path
    )


@pytest.fixture()
def sqlite_db(tmp_path):
    path = tmp_path / "rooms.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript((DATA / "schema.sql").read_text())
    return path


def _check_output(result):
    store = ox.Store()
    store.bulk_load(path=str(result.ntriples_path), format=ox.RdfFormat.N_TRIPLES)
    rows = list(
        store.query(
            """PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
            PREFIX bot: <https://w3id.org/bot#>
            SELECT ?r ?name WHERE { ?r a bot:Space ; rdfs:label ?name } ORDER BY ?r"""
        )
    )
    assert [(r["r"].value, r["name"].value) for r in rows] == [
        (f"{BASE}/id/room/1", "Kitchen"),
        (f"{BASE}/id/room/2", "Living Room"),
        (f"{BASE}/id/room/3", "Attic"),
    ]
    text = result.ntriples_path.read_text()
    assert f"<{BASE}/id/building/B%201>" in text
    assert f"<{BASE}/id/sensor/M%2F1>" in text
    assert '"2022-10-01"^^<http://www.w3.org/2001/XMLSchema#date>' in text
    assert validate(result, "sql") == result.triple_count
    assert result.prov.extra["rows"] == "4"


def test_sqlite(tmp_path, sqlite_db):
    result = _run(tmp_path, str(sqlite_db))
    _check_output(result)
    assert '"30.14"^^<http://www.w3.org/2001/XMLSchema#decimal>' in result.ntriples_path.read_text()
    again = _run(tmp_path, f"sqlite:///{sqlite_db}")
    assert again.prov.source_sha256 == result.prov.source_sha256


def test_sqlite_is_opened_read_only(sqlite_db):
    engine, _ = open_read_only(str(sqlite_db))
    from sqlalchemy import text

    with pytest.raises(Exception, match="readonly|read-only|read only"):
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM rooms"))
    engine.dispose()
    with sqlite3.connect(sqlite_db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM rooms").fetchone()[0] == 3


def test_unknown_table_is_a_connector_error(tmp_path, sqlite_db):
    mapping = tmp_path / "m.toml"
    mapping.write_text('[[tables]]\ntable = "nope"\nkey = "id"\niri = "{base}/id/x/{id}"\n')
    with pytest.raises(ConnectorError, match="nope"):
        _run(tmp_path, str(sqlite_db), mapping)


def test_bad_mapping_and_source(tmp_path, sqlite_db):
    mapping = tmp_path / "m.toml"
    mapping.write_text('[[tables]]\ntable = "rooms"\niri = "{base}/id/x/{id}"\n')
    with pytest.raises(ConnectorError, match="missing 'key'"):
        _run(tmp_path, str(sqlite_db), mapping)
    mapping.write_text('[[tables]]\ntable = "rooms"\nkey = "id"\niri = "{base}/id/x/{nope}"\n')
    with pytest.raises(ConnectorError, match="unknown column"):
        _run(tmp_path, str(sqlite_db), mapping)
    with pytest.raises(ConnectorError, match="not found"):
        _run(tmp_path, str(tmp_path / "missing.sqlite"))


def test_password_is_hidden_in_errors(tmp_path):
    with pytest.raises(ConnectorError) as err:
        _run(tmp_path, "postgresql+psycopg://u:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in str(err.value)


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin")
    user = "postgres"
    as_user = ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []
    if as_user and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: initdb cannot run")
    root = Path(tempfile.mkdtemp(prefix="dsgo-pg-"))  # pytest's tmp dirs are private to root
    os.chmod(root, 0o755)
    pgdata, sock = root / "data", root / "sock"
    sock.mkdir()
    if as_user:
        shutil.chown(root, user)
        shutil.chown(sock, user)
    subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(pgdata), "-U", "dsgo", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [
            *as_user,
            str(bindir / "pg_ctl"),
            "-D",
            str(pgdata),
            "-o",
            opts,
            "-w",
            "-l",
            str(root / "log"),
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        url = f"postgresql+psycopg://dsgo@127.0.0.1:{port}/postgres"
        import psycopg

        for _ in range(50):
            try:
                with psycopg.connect(
                    f"host=127.0.0.1 port={port} user=dsgo dbname=postgres", autocommit=True
                ) as conn:
                    conn.execute((DATA / "schema.sql").read_text())
                break
            except psycopg.OperationalError:
                time.sleep(0.1)
        yield url, port
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(pgdata), "-m", "immediate", "stop"],
            capture_output=True,
        )


def test_postgresql(tmp_path, postgres):
    url, _ = postgres
    result = _run(tmp_path, url)
    _check_output(result)
    assert '"30.14"^^<http://www.w3.org/2001/XMLSchema#decimal>' in result.ntriples_path.read_text()


def test_postgresql_session_is_read_only(postgres):
    from sqlalchemy import text

    url, _ = postgres
    engine, _shown = open_read_only(url)
    with pytest.raises(Exception, match="read-only"):
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM rooms"))
    engine.dispose()
