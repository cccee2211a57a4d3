"""Starts Debian's Virtuoso 7 (`virtuoso-opensource`) for tests: a second real SPARQL engine.

Each instance has its own database directory and virtuoso.ini, listens on two free loopback
ports (HTTP and ISQL), never the system service's. SPARQL_UPDATE is granted to the anonymous
"SPARQL" user so the node can load through /sparql-graph-crud and update through /sparql.
Without the package installed the tests fail with a message saying so; DSGO_SKIP_VIRTUOSO=1
turns that into a skip (for a machine that cannot have it, never in CI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from nodeproc import Proc, ProcessGroup, _spawn, clean_env, free_port

VIRTUOSO_T = shutil.which("virtuoso-t") or "/usr/bin/virtuoso-t"
ISQL = shutil.which("isql-vt") or "/usr/bin/isql-vt"
SKIP_ENV = "DSGO_SKIP_VIRTUOSO"
START_TIMEOUT = 60.0
# Graphs Virtuoso keeps for itself (node.store.engine_profile.VIRTUOSO leaves them out too).
SYSTEM_GRAPHS = (
    "http://www.openlinksw.com/schemas/virtrdf#",
    "http://www.w3.org/ns/ldp#",
    "http://localuriqaserver/",
)
GRANTS = 'GRANT SPARQL_UPDATE TO "SPARQL"; GRANT EXECUTE ON DB.DBA.L_O_LOOK TO "SPARQL";'

INI = """\
[Database]
DatabaseFile = {d}/virtuoso.db
ErrorLogFile = {d}/virtuoso.log
LockFile = {d}/virtuoso.lck
TransactionFile = {d}/virtuoso.trx
xa_persistent_file = {d}/virtuoso.pxa
ErrorLogLevel = 7
FileExtend = 200
Striping = 0
TempStorage = TempDatabase

[TempDatabase]
DatabaseFile = {d}/virtuoso-temp.db
TransactionFile = {d}/virtuoso-temp.trx

[Parameters]
ServerPort = 127.0.0.1:{isql}
DisableUnixSocket = 1
MaxClientConnections = 20
CheckpointInterval = 60
CaseMode = 2
DirsAllowed = ., {d}
NumberOfBuffers = {buffers}
MaxDirtyBuffers = {dirty}
ThreadsPerQuery = 2

[HTTPServer]
ServerPort = 127.0.0.1:{http}
ServerRoot = {d}
MaxClientConnections = 20
ServerThreads = 20
MaxKeepAlives = 20
KeepAliveTimeout = 10
Charset = UTF-8
EnabledGzipContent = 0

[SPARQL]
ResultSetMaxRows = 10000000
MaxQueryExecutionTime = 0
MaxQueryCostEstimationTime = 0
"""


def require_virtuoso() -> None:
    """Fail (or, with DSGO_SKIP_VIRTUOSO=1, skip) when Virtuoso is not installed."""
    if os.path.exists(VIRTUOSO_T) and os.path.exists(ISQL):
        return
    message = (
        f"Virtuoso is not installed ({VIRTUOSO_T} or {ISQL} missing): "
        "apt-get install virtuoso-opensource (.ci/run does), "
        f"or set {SKIP_ENV}=1 to skip the Virtuoso tests"
    )
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(message)
    pytest.fail(message, pytrace=False)


@dataclass
class Virtuoso:
    """A running Virtuoso with its database in `directory`."""

    proc: Proc
    directory: Path
    http_port: int
    isql_port: int

    @property
    def base_url(self) -> str:
        return self.proc.base_url

    def store_settings(self) -> dict[str, Any]:
        """The node's [store] settings for this engine."""
        return {
            "backend": "sparql",
            "sparql_engine": "virtuoso",
            "query_url": f"{self.base_url}/sparql",
            "update_url": f"{self.base_url}/sparql",
            "store_url": f"{self.base_url}/sparql-graph-crud",
        }

    def graphs(self) -> list[str]:
        """Every graph that holds data, Virtuoso's own left out."""
        resp = httpx.post(
            f"{self.base_url}/sparql",
            data={"query": "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"},
            headers={"Accept": "application/sparql-results+json"},
            timeout=30.0,
        )
        resp.raise_for_status()
        found = [b["g"]["value"] for b in resp.json()["results"]["bindings"]]
        return [g for g in found if not g.startswith(SYSTEM_GRAPHS)]

    def clear(self) -> None:
        """Drop every data graph, so the next test starts from an empty store."""
        graphs = self.graphs()
        if graphs:
            update = " ; ".join(f"DROP SILENT GRAPH <{g}>" for g in graphs)
            resp = httpx.post(
                f"{self.base_url}/sparql",
                content=update.encode(),
                headers={"Content-Type": "application/sparql-update"},
                timeout=60.0,
            )
            resp.raise_for_status()
        assert self.graphs() == [], "Virtuoso still holds graphs after clear()"

    def isql(self, statements: str) -> str:
        """Run SQL statements through ISQL as dba (the test instance's default password)."""
        proc = subprocess.run(
            [ISQL, f"127.0.0.1:{self.isql_port}", "dba", "dba", f"exec={statements}"],
            capture_output=True,
            text=True,
            timeout=60,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0 or "*** Error" in proc.stdout + proc.stderr:
            raise RuntimeError(f"isql {statements!r} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout


def start_virtuoso(group: ProcessGroup, directory: Path, *, buffers: int = 10_000) -> Virtuoso:
    """Start Virtuoso in the foreground on free loopback ports; `group` stops it."""
    require_virtuoso()
    directory.mkdir(parents=True, exist_ok=True)
    http_port, isql_port = free_port(), free_port()
    ini = directory / "virtuoso.ini"
    ini.write_text(
        INI.format(
            d=directory, isql=isql_port, http=http_port, buffers=buffers, dirty=buffers * 3 // 4
        ),
        encoding="utf-8",
    )
    name = f"virtuoso-{http_port}"
    argv = [VIRTUOSO_T, "+foreground", "+configfile", str(ini)]
    popen = _spawn(name, argv, group.log_dir, clean_env())
    proc = Proc(name, popen, group.log_dir, f"http://127.0.0.1:{http_port}")
    group.procs.append(proc)
    engine = Virtuoso(proc, directory, http_port, isql_port)
    _wait_ready(engine)
    engine.isql(GRANTS)
    return engine


def _wait_ready(engine: Virtuoso) -> None:
    """Ready once the SPARQL endpoint answers ASK (the ISQL port is up before HTTP is)."""
    deadline = time.monotonic() + START_TIMEOUT
    url = f"{engine.base_url}/sparql"
    while time.monotonic() < deadline:
        if not engine.proc.alive():
            log = (engine.directory / "virtuoso.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"virtuoso exited {engine.proc.popen.returncode}:\n{log}")
        try:
            if httpx.get(url, params={"query": "ASK {}"}, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    engine.proc.stop()
    raise RuntimeError(f"virtuoso not ready at {url} after {START_TIMEOUT} s")


# Answers through the node, per question, from each engine a test module ran on: every
# engine must give the same (`agree`). Parametrized module fixtures run one engine after the
# other, so the second and third engines are compared with the first.
_ANSWERS: dict[str, dict[str, Any]] = {}


def agree(question: str, engine: str, answer: Any) -> None:
    """Record `engine`'s answer to `question`; fail if an engine answered it differently."""
    answers = _ANSWERS.setdefault(question, {})
    answers[engine] = answer
    differing = {e: a for e, a in answers.items() if a != answer}
    assert not differing, f"{question}: {engine} answered {answer!r}, but {differing!r}"
