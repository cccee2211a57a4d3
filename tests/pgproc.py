"""A real PostgreSQL for tests: initdb + pg_ctl as the postgres user, on a free 127.0.0.1 port."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

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


@dataclass
class Postgres:
    """A running test cluster: its URL, and stop/start to take the database away and back."""

    url: str
    bindir: str
    data: str
    opts: str
    log: str

    def stop(self) -> None:
        _as_pg(f"{self.bindir}/pg_ctl", "-D", self.data, "-m", "immediate", "stop")

    def start(self) -> None:
        _as_pg(
            f"{self.bindir}/pg_ctl", "-D", self.data, "-o", self.opts, "-l", self.log, "-w", "start"
        )

    def pids(self) -> list[int]:
        """The postmaster and every backend/auxiliary process it started."""
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            master = int(f.read().split()[0])
        out = [master]
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                with open(stat) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                out.append(int(stat.split("/")[2]))
        return out

    def freeze(self) -> None:
        """SIGSTOP the postmaster and its backends: the kernel still accepts, nobody answers."""
        for pid in self.pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self.pids():
            os.kill(pid, signal.SIGCONT)


def _as_pg(*args: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True)


@contextmanager
def postgres() -> Iterator[Postgres]:
    """Start a throw-away cluster; yields it and removes it afterwards."""
    bindir = os.path.dirname(BINS[-1])
    root = tempfile.mkdtemp(prefix="state-pg-")
    shutil.chown(root, "postgres")
    data, port = os.path.join(root, "data"), _free_port()
    _as_pg(f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg = Postgres(
        f"postgresql://postgres@127.0.0.1:{port}/postgres", bindir, data, opts, f"{root}/log"
    )
    pg.start()
    try:
        yield pg
    finally:
        try:
            pg.thaw()  # a test that froze it and failed
        except (OSError, ValueError):
            pass  # already stopped
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                f"{bindir}/pg_ctl",
                "-D",
                data,
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)
