"""Test helpers for hung dependencies: a listener that never answers (PostgreSQL: tests/pgproc.py)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from nodeproc import free_port


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
