"""A fork server for the test suite: `dsgo` processes started without importing everything again.

A fresh `dsgo` process spends 0.3 s (`dsgo --help`) to 2 s (`dsgo serve`: FastAPI, uvicorn,
cryptography, pyoxigraph) of CPU on imports before it does anything, and the suite starts
hundreds of them. This server imports those modules once; for each command it forks a child that
becomes the command: its own argv, environment, working directory, stdin/stdout/stderr and, when
asked, its own session (so a test can signal its process group). The child then runs
`node.cli.main` and ends through normal interpreter shutdown, so exit codes, output, signals and
threads behave as they do in a `dsgo` started with exec. Nothing in the node knows about it.

Protocol, one Unix-socket connection per command: the client sends one JSON line
`{"argv": [...], "env": {...}, "cwd": "...", "new_session": bool}` with three file descriptors
(stdin, stdout, stderr) attached; the server answers `<pid>\\n` at once and `<exit code>\\n` when
the child ends (negative: killed by that signal, as in `subprocess`). The server exits when its
own stdin closes, that is when the test process that started it is gone.

Used by tests/nodeproc.py; `DSGO_TESTS_FORKSERVER=0` turns it off (plain exec for every command).
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import select
import signal
import socket
import sys
from typing import Any

# What `dsgo` commands import: the CLI and the node's web app, their libraries, and the heavy
# libraries of connect/check/derive (rdflib, pyshacl, ifcopenshell, ifctester).
PRELOAD = (
    "node.cli",
    "node.cli.data",
    "node.cli.trust",
    "node.cli.policy",
    "node.cli.audit",
    "node.cli.login",
    "node.cli.receipts",
    "node.asgi",
    "node.app",
    "node.runtime",
    "node.service.ops",
    "node.store",
    "uvicorn",
    "uvicorn.main",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.lifespan.on",
    "httpx",
    "pyoxigraph",
    "trust.client",
    "connectors.ifc",
    "rdflib",
    "pyshacl",
    "ifcopenshell",
    "ifctester",
)


def _preload() -> None:
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the child imports it again and reports its own error
            pass


def _read_request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
    while not data.endswith(b"\n"):
        more = conn.recv(1 << 16)
        if not more:
            break
        data += more
    return json.loads(data), fds


def _become(request: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: take the command's session, stdio, directory and environment."""
    if request.get("new_session"):
        os.setsid()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = list(request["argv"])


def serve(path: str) -> dict[str, Any] | None:
    """Fork a child per request until stdin closes. Returns only in a child: its request."""
    _preload()
    # Keep the collector (and the child's shutdown) off the preloaded objects: otherwise each
    # child's exit walks and copies the whole preloaded heap, 0.7 s instead of 0.1 s.
    gc.freeze()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl+C to the test run is the tests' to handle
    waiting: dict[int, socket.socket] = {}
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        ready, _, _ = select.select([listener, wake_r, 0], [], [], 5.0)
        if 0 in ready and not os.read(0, 4096):
            return None
        if wake_r in ready:
            while True:
                try:
                    if not os.read(wake_r, 4096):
                        break
                except BlockingIOError:
                    break
        if listener in ready:
            conn, _ = listener.accept()
            try:
                request, fds = _read_request(conn)
            except (OSError, ValueError):
                conn.close()
                continue
            pid = os.fork()
            if pid == 0:
                listener.close()
                conn.close()
                for other in waiting.values():
                    other.close()
                signal.set_wakeup_fd(-1)
                os.close(wake_r)
                os.close(wake_w)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                _become(request, fds)
                return request
            for fd in fds:
                os.close(fd)
            try:
                conn.sendall(f"{pid}\n".encode())
            except OSError:
                pass
            waiting[pid] = conn
        while waiting:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = waiting.pop(pid, None)
            if conn is not None:
                try:
                    conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
                except OSError:
                    pass
                conn.close()


if __name__ == "__main__":
    # The path a `dsgo` console script starts with: its own directory first, not tests/.
    sys.path[0] = os.path.dirname(sys.executable)
    request = serve(sys.argv[1])
    if request is None:
        sys.exit(0)
    from node.cli import main

    sys.exit(main(request["argv"][1:]))
