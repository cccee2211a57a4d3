"""Test helpers for hung dependencies: a real PostgreSQL to freeze, a listener that never answers."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from nodeproc import free_port

PG_BINS = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


def postgres_available() -> str | None:
    """None when a PostgreSQL can be started here, else the reason to skip."""
    if not PG_BINS or os.geteuid() != 0 or shutil.which("runuser") is None:
        return "needs PostgreSQL binaries and root (initdb runs as the postgres user)"
    return None


@dataclass
class Postgres:
    """A PostgreSQL cluster started with initdb/pg_ctl on a free 127.0.0.1 port."""

    url: str
    data: Path

    def pids(self) -> list[int]:
        """The postmaster and every backend/auxiliary process it started."""
        master = int((self.data / "postmaster.pid").read_text().split()[0])
        out = [master]
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
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


@contextmanager
def postgres() -> Iterator[Postgres]:
    bindir = os.path.dirname(PG_BINS[-1])
    root = tempfile.mkdtemp(prefix="robust-pg-")
    shutil.chown(root, "postgres")
    data, port = os.path.join(root, "data"), free_port()

    def as_pg(*args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True)

    as_pg(f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    as_pg(f"{bindir}/pg_ctl", "-D", data, "-o", opts, "-l", f"{root}/log", "-w", "start")
    pg = Postgres(f"postgresql://postgres@127.0.0.1:{port}/postgres", Path(data))
    try:
        yield pg
    finally:
        try:
            pg.thaw()
        except (OSError, ValueError):
            pass
        as_pg(f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class HungListener:
    """Accepts TCP connections on 127.0.0.1 and never answers (reads and drops what it gets)."""

    port: int
    accepted: int = 0
    _sock: socket.socket | None = None
    _conns: list[socket.socket] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HungListener:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(512)
        sock.settimeout(0.2)
        self._sock = sock
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._conns.append(conn)

    def close(self) -> None:
        self._stop.set()
        for conn in self._conns:
            conn.close()
        if self._sock is not None:
            self._sock.close()


@contextmanager
def hung_listener(port: int | None = None) -> Iterator[HungListener]:
    listener = HungListener(port or free_port()).start()
    try:
        yield listener
    finally:
        listener.close()
