"""A real PostgreSQL for tests: initdb + pg_ctl as the postgres user, on a free 127.0.0.1 port."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

BINS = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


def available() -> str | None:
    """Why PostgreSQL cannot be started here, or None when it can."""
    if not BINS or os.geteuid() != 0 or shutil.which("runuser") is None:
        return "needs PostgreSQL binaries and root (initdb runs as the postgres user)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres() -> Iterator[str]:
    """Start a throw-away cluster; yields its URL and removes it afterwards."""
    bindir = os.path.dirname(BINS[-1])
    root = tempfile.mkdtemp(prefix="state-pg-")
    shutil.chown(root, "postgres")
    data, port = os.path.join(root, "data"), _free_port()

    def as_pg(*args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True)

    as_pg(f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    as_pg(f"{bindir}/pg_ctl", "-D", data, "-o", opts, "-l", f"{root}/log", "-w", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        as_pg(f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)
