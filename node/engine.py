"""The supervised engine: an `oxigraph serve` child process the node starts, watches and restarts.

Why a process: RocksDB lets one process own a store, and pyoxigraph cannot stop a query. With the
engine in its own process every uvicorn worker reaches the same store over loopback HTTP, and a
query past its deadline is stopped the only way that always works: SIGKILL the engine; the
supervisor starts it again on the same port and RocksDB recovers from its write-ahead log.

Who does what:
- `EngineSupervisor` runs in the process that owns the engine (`dsgo serve`'s master, or a CLI
  command when no server runs). Its thread spawns the child with PR_SET_PDEATHSIG = SIGKILL, so
  the child dies with that thread even when the node is SIGKILLed: no orphan engine.
- The supervisor writes `engine.json` (engine pid, port, generation, supervisor pid) into the
  data directory; `$DSGO_ENGINE_FILE` names it to workers. Any process may SIGKILL the pid it
  read there (`kill_engine`); only the supervisor restarts.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

ENV_FILE = "DSGO_ENGINE_FILE"  # names engine.json for uvicorn workers started by `dsgo serve`
INFO_NAME = "engine.json"
PR_SET_PDEATHSIG = 1
READY_QUERY = "/query?query=ASK%7B%7D"

__all__ = [
    "ENV_FILE",
    "EngineError",
    "EngineInfo",
    "EngineSupervisor",
    "kill_engine",
    "read_info",
    "wait_ready",
]


class EngineError(RuntimeError):
    """The engine did not start (wrong binary, store locked by another process, ...)."""


@dataclass(frozen=True)
class EngineInfo:
    """What engine.json says: where the engine listens and which process it is."""

    pid: int
    port: int
    generation: int  # +1 with every (re)start: a waiter knows a restart happened
    supervisor: int  # pid of the process whose thread started it

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def read_info(path: Path) -> EngineInfo | None:
    """engine.json, or None when there is none (or it is being rewritten)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return EngineInfo(
            int(raw["pid"]), int(raw["port"]), int(raw["generation"]), int(raw["supervisor"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_info(path: Path, info: EngineInfo) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(info)), encoding="utf-8")
    os.replace(tmp, path)  # readers see the old file or the new one, never half of one


def pid_alive(pid: int) -> bool:
    """True when a process `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of `pid` from /proc (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kill_engine(path: Path, pid: int) -> bool:
    """SIGKILL engine `pid` if engine.json still names it (not a newer engine). True if sent."""
    info = read_info(path)
    if info is None or info.pid != pid:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
        return True
    return False


def wait_ready(path: Path, timeout: float, *, newer_than: int = -1) -> EngineInfo:
    """The engine named by engine.json once it answers (generation > `newer_than`)."""
    deadline = time.monotonic() + timeout
    while True:
        info = read_info(path)
        if info is not None and info.generation > newer_than and pid_alive(info.pid):
            try:
                if httpx.get(info.url + READY_QUERY, timeout=1.0).status_code == 200:
                    return info
            except httpx.HTTPError:
                pass
        if info is not None and not pid_alive(info.supervisor):
            raise EngineError(f"the engine's supervisor (pid {info.supervisor}) is gone")
        if time.monotonic() > deadline:
            raise EngineError(f"the engine ({path}) did not answer within {timeout:g} s")
        time.sleep(0.02)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent(parent: int) -> None:
    """preexec_fn: the kernel SIGKILLs the child when the spawning thread ends (node killed)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died between fork and prctl
        os._exit(1)


class EngineSupervisor:
    """Start `oxigraph serve --location DIR`, keep it running, stop it; see the module doc."""

    def __init__(
        self, location: Path, info_file: Path, binary: str, start_timeout: float = 30.0
    ) -> None:
        self.location = location
        self.info_file = info_file
        self.binary = binary
        self.start_timeout = start_timeout
        self.restarts = 0
        self._port = 0
        self._generation = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._failure: str | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> EngineInfo:
        """Spawn the engine (from the supervising thread) and return once it answers."""
        self.location.mkdir(parents=True, exist_ok=True)
        self.info_file.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="engine-supervisor", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._failure is not None:
            self.stop()
            raise EngineError(self._failure)
        try:
            return wait_ready(self.info_file, self.start_timeout)
        except EngineError:
            self.stop()
            raise EngineError(
                self._failure or f"the engine did not answer: {self._log_tail()}"
            ) from None

    def _spawn(self) -> subprocess.Popen[bytes]:
        if not self._port:
            self._port = _free_port()
        log = open(self.info_file.with_name("engine.log"), "ab")  # noqa: SIM115 - child keeps it
        try:
            return subprocess.Popen(
                [
                    self.binary,
                    "serve",
                    "--location",
                    str(self.location),
                    "--bind",
                    f"127.0.0.1:{self._port}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=lambda parent=os.getpid(): _die_with_parent(parent),  # noqa: PLW1509
            )
        finally:
            log.close()

    def _run(self) -> None:
        """The supervising thread: spawn, publish, wait; restart on any exit until stopped."""
        quick_failures = 0
        while not self._stopping.is_set():
            began = time.monotonic()
            try:
                proc = self._spawn()
            except OSError as exc:
                self._failure = f"store.engine_binary: cannot start {self.binary!r}: {exc}"
                self._started.set()
                return
            self._proc = proc
            self._generation += 1
            _write_info(
                self.info_file, EngineInfo(proc.pid, self._port, self._generation, os.getpid())
            )
            self._started.set()
            proc.wait()
            if self._stopping.is_set():
                break
            self.restarts += 1
            if time.monotonic() - began < 2.0:  # died at once: the port or the store is taken
                quick_failures += 1
                if quick_failures >= 3:
                    self._port = 0  # try another port next
                if quick_failures >= 10:
                    self._failure = f"the engine keeps exiting: {self._log_tail()}"
                time.sleep(min(1.0, 0.05 * quick_failures))
            else:
                quick_failures = 0

    def _log_tail(self) -> str:
        try:
            return self.info_file.with_name("engine.log").read_text(errors="replace")[-800:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM the engine (SIGKILL after 10 s), join the thread, remove engine.json."""
        self._stopping.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=15)
        info = read_info(self.info_file)
        if info is not None and info.supervisor == os.getpid():
            with contextlib.suppress(OSError):
                self.info_file.unlink()


@contextlib.contextmanager
def serving(settings: object) -> Iterator[EngineInfo | None]:
    """`dsgo serve`: with store.backend = "engine", own the engine for the server's lifetime and
    tell the workers where it is ($DSGO_ENGINE_FILE); otherwise do nothing."""
    engine = getattr(settings, "engine", None)
    if getattr(settings, "store_backend", None) != "engine" or engine is None:
        yield None
        return
    info_file = settings.data_dir / INFO_NAME  # type: ignore[attr-defined]
    supervisor = EngineSupervisor(engine.location, info_file, engine.binary, engine.start_timeout)
    info = supervisor.start()
    os.environ[ENV_FILE] = str(info_file)
    try:
        yield info
    finally:
        os.environ.pop(ENV_FILE, None)
        supervisor.stop()


def worker_dies_with_master() -> None:
    """In a uvicorn worker of `dsgo serve` (engine mode): SIGTERM when the master dies, so a
    SIGKILLed node leaves no worker holding the port; a worker that starts after its master
    already died exits at once."""
    named = os.environ.get(ENV_FILE)
    info = read_info(Path(named)) if named else None
    if info is None or info.supervisor == os.getpid():  # no engine, or one worker (the master)
        return
    ctypes.CDLL("libc.so.6").prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != info.supervisor:
        raise SystemExit("dsgo serve: the master process is gone")
