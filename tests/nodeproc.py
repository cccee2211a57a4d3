"""Helpers that start and stop real node processes (`dsgo serve`) and `oxigraph serve` for tests."""

from __future__ import annotations

import atexit
import json
import locale
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

VENV_BIN = Path(sys.executable).parent
DSGO = str(VENV_BIN / "dsgo")
OXIGRAPH = str(VENV_BIN / "oxigraph")
START_TIMEOUT = 30.0
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test process environment without DSGO_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSGO_")}
    env.update(extra or {})
    return env


# --- starting `dsgo` processes: forked from a preloaded server (tests/forkserver.py) -------------


class Launched:
    """A `dsgo` process forked by the fork server: the part of `subprocess.Popen` tests use.

    Not our child, so its exit code comes from the fork server over the connection."""

    def __init__(self, args: list[str], conn: socket.socket) -> None:
        self.args = args
        self.returncode: int | None = None
        self._conn = conn
        self._buf = b""
        self.pid = int(self._line(None))

    def _line(self, timeout: float | None) -> str:
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            readable, _, _ = select.select([self._conn], [], [], left)
            if not readable:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            chunk = self._conn.recv(4096)
            if not chunk:
                raise RuntimeError(f"the test fork server went away while running {self.args}")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                self.returncode = int(self._line(0.0))
            except subprocess.TimeoutExpired:
                return None
            self._conn.close()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = int(self._line(timeout))
            self._conn.close()
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class _ForkServer:
    """One fork server per test process, started on first use, gone when the process ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._path: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.broken: str | None = None  # why it could not start: then every command is exec'd

    def usable(self) -> bool:
        """Started (or startable); a server that cannot start is reported once, then bypassed."""
        if self.broken is None:
            try:
                self._start()
            except (OSError, RuntimeError) as exc:
                self.broken = str(exc)
                print(f"tests: fork server unavailable, exec'ing dsgo: {exc}", file=sys.stderr)
        return self.broken is None

    def _start(self) -> str:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None and self._path:
                return self._path
            directory = tempfile.mkdtemp(prefix="dsgo-fork-")
            path = os.path.join(directory, "socket")
            script = str(Path(__file__).with_name("forkserver.py"))
            self._proc = subprocess.Popen(
                [sys.executable, script, path],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=clean_env(),
                cwd=os.getcwd(),
            )
            assert self._proc.stdout is not None
            ready = self._proc.stdout.readline()
            if ready != b"ready\n":
                raise RuntimeError(f"the test fork server did not start: {ready!r}")
            atexit.register(self._proc.kill)
            self._path = path
            return path

    def launch(
        self, argv: list[str], env: dict[str, str], stdio: tuple[int, int, int], new_session: bool
    ) -> Launched:
        path = self._start()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)
        request = {"argv": argv, "env": env, "cwd": os.getcwd(), "new_session": new_session}
        socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], list(stdio))
        return Launched(argv, conn)


_FORK_SERVER = _ForkServer()


def _forked(argv: list[str]) -> bool:
    return (
        argv[0] == DSGO
        and os.environ.get("DSGO_TESTS_FORKSERVER", "1") != "0"
        and _FORK_SERVER.usable()
    )


def _text(data: bytes) -> str:
    """Bytes as `subprocess` text mode gives them: locale encoding, universal newlines."""
    text = data.decode(locale.getpreferredencoding(False))
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _run_forked(argv: list[str], env: dict[str, str], timeout: float) -> tuple[int, str, str]:
    """Run one command through the fork server, its output captured (as `subprocess.run`)."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        child = _FORK_SERVER.launch(argv, env, (null, out_w, err_w), new_session=False)
    finally:
        for fd in (null, out_w, err_w):
            os.close(fd)
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        for fd in chunks:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                child.kill()
                for fd in chunks:
                    os.close(fd)
                raise subprocess.TimeoutExpired(argv, timeout)
            for key, _ in sel.select(left):
                data = os.read(key.fd, 1 << 16)
                if data:
                    chunks[key.fd].append(data)
                else:
                    sel.unregister(key.fd)
    for fd in chunks:
        os.close(fd)
    code = child.wait(max(1.0, deadline - time.monotonic()))
    return code, _text(b"".join(chunks[out_r])), _text(b"".join(chunks[err_r]))


def dsgo(
    *args: str | Path,
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """Run the `dsgo` CLI; with check=True a non-zero exit fails with its output."""
    argv = [DSGO, *map(str, args)]
    if _forked(argv):
        code, out, err = _run_forked(argv, clean_env(env), timeout)
        proc = subprocess.CompletedProcess(argv, code, out, err)
    else:
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=clean_env(env), timeout=timeout
        )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"dsgo {' '.join(map(str, args))} exited {proc.returncode}\n"
            f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    return proc


def init_node(
    directory: Path,
    party_id: str,
    name: str,
    port: int,
    *,
    ca: Path | None = None,
    registry_url: str | None = None,
    registry_id: str | None = None,
) -> Path:
    """`dsgo init` a node directory and return the path of its node.toml."""
    args: list[str | Path] = ["init", directory, "--party-id", party_id, "--name", name]
    args += ["--port", str(port)]
    if ca is not None:
        args += ["--ca", ca]
    if registry_url is not None:
        args += ["--registry-url", registry_url, "--registry-id", str(registry_id)]
    dsgo(*args)
    return directory / "node.toml"


def init_owner_and_guest(root: Path, owner: str, guest: str, port: int) -> tuple[Path, Path]:
    """Two parties: `owner`'s node on `port` (also the registry, not started) and `guest`,
    registered there with a certificate from the owner's development CA. Their node.toml paths.
    """
    owner_config = init_node(root / "owner", owner, "Owner", port)
    guest_config = init_node(
        root / "guest",
        guest,
        "Guest",
        free_port(),
        ca=root / "owner" / "keys" / "dev-ca",
        registry_url=f"http://127.0.0.1:{port}",
        registry_id=owner,
    )
    dsgo(
        *("registry", "add", "--config", owner_config, "--party-id", guest, "--name", "Guest"),
        *("--cert", guest_config.parent / "keys" / "node.cert.pem"),
        *("--capability-url", f"{base_of(guest_config)}/capabilities"),
    )
    return owner_config, guest_config


def base_of(config: Path) -> str:
    """The node.base_iri of a node.toml."""
    return tomllib.loads(config.read_text(encoding="utf-8"))["node"]["base_iri"].rstrip("/")


def edit_config(config: Path, changes: dict[str, dict[str, Any]]) -> None:
    """Set `changes[section][key] = value` in a node.toml (a value of None removes the key)."""
    raw = tomllib.loads(config.read_text(encoding="utf-8"))
    for section, values in changes.items():
        table = raw.setdefault(section, {})
        for key, value in values.items():
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
    config.write_text(_dump_toml(raw), encoding="utf-8")


def _dump_toml(raw: dict[str, Any]) -> str:
    lines = []
    for section, table in raw.items():
        if isinstance(table, list):
            for item in table:
                lines.append(f"[[{section}]]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in item.items()]
            continue
        lines.append(f"[{section}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
        lines.append("")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


@dataclass
class Proc:
    """A started server process in its own process group, with its output in files."""

    name: str
    popen: subprocess.Popen[bytes] | Launched
    log_dir: Path
    base_url: str

    @property
    def stderr(self) -> str:
        return (self.log_dir / f"{self.name}.stderr").read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it if it does not exit in time."""
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(timeout=10)


def _spawn(name: str, argv: list[str], log_dir: Path, env: dict[str, str]) -> Any:
    """A server process in its own session, its output appended to files in `log_dir`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with (
        open(log_dir / f"{name}.stdout", "ab") as out,
        open(log_dir / f"{name}.stderr", "ab") as err,
    ):
        if _forked(argv):
            with open(os.devnull, "rb") as null:
                stdio = (null.fileno(), out.fileno(), err.fileno())
                return _FORK_SERVER.launch(argv, env, stdio, new_session=True)
        return subprocess.Popen(
            argv, stdout=out, stderr=err, env=env, start_new_session=True, stdin=subprocess.DEVNULL
        )


def _wait_ready(proc: Proc, url: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited {proc.popen.returncode}:\n{proc.stderr}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.stop()
    raise RuntimeError(f"{proc.name} not ready at {url} after {timeout} s:\n{proc.stderr}")


@dataclass
class ProcessGroup:
    """Starts servers and stops every one of them in `stop_all` (call it from a finalizer)."""

    log_dir: Path
    procs: list[Proc] = field(default_factory=list)

    def __post_init__(self) -> None:
        LIVE_GROUPS.append(self)  # so a failing test's report can show the servers' output

    def serve(
        self,
        config: Path,
        port: int,
        env: dict[str, str] | None = None,
        name: str | None = None,
        port_flag: bool = True,
    ) -> Proc:
        """`dsgo serve --config CONFIG --port PORT`, ready once /healthz on PORT answers 200."""
        name = name or f"node-{port}"
        argv = [DSGO, "serve", "--config", str(config)]
        if port_flag:
            argv += ["--port", str(port)]
        proc = Proc(
            name, _spawn(name, argv, self.log_dir, clean_env(env)), self.log_dir, _url(port)
        )
        self.procs.append(proc)
        _wait_ready(proc, f"{proc.base_url}/healthz")
        return proc

    def oxigraph(self, location: Path, port: int) -> Proc:
        """`oxigraph serve --location DIR --bind 127.0.0.1:PORT`, ready once it answers a query."""
        name = f"oxigraph-{port}"
        argv = [OXIGRAPH, "serve", "--location", str(location), "--bind", f"127.0.0.1:{port}"]
        proc = Proc(name, _spawn(name, argv, self.log_dir, clean_env()), self.log_dir, _url(port))
        self.procs.append(proc)
        _wait_ready(proc, f"{proc.base_url}/query?query=ASK%7B%7D")
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()
        if self in LIVE_GROUPS:
            LIVE_GROUPS.remove(self)


# Every ProcessGroup not yet stopped (tests/conftest.py prints their output when a test fails).
LIVE_GROUPS: list[ProcessGroup] = []


def output_tails(lines: int = 25) -> str:
    """The last `lines` lines of stderr of every server still running, for a failure report."""
    parts = []
    for group in LIVE_GROUPS:
        for proc in group.procs:
            try:
                tail = proc.stderr.splitlines()[-lines:]
            except OSError:
                continue
            state = "running" if proc.alive() else f"exited {proc.popen.returncode}"
            parts.append(f"--- {proc.name} ({state}) ---\n" + "\n".join(tail))
    return "\n".join(parts)


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def sparql_backend(oxigraph_url: str) -> dict[str, Any]:
    """The [store] settings for an external `oxigraph serve` at `oxigraph_url`."""
    return {
        "backend": "sparql",
        "query_url": f"{oxigraph_url}/query",
        "update_url": f"{oxigraph_url}/update",
        "store_url": f"{oxigraph_url}/store",
    }


def trust_client(config: Path):
    """A TrustClient acting as the party of the node configured in `config`."""
    from node.config import load_settings
    from node.runtime import load_identity, trusted_fingerprints
    from trust.client import TrustClient

    settings = load_settings(config)
    return TrustClient(load_identity(settings), trusted_fingerprints(settings))


def token_for(config: Path, base_url: str) -> str:
    """A fresh access token at `base_url` for the party of the node configured in `config`."""
    client = trust_client(config)
    try:
        return client.get_token(base_url, fresh=True)
    finally:
        client.close()


# --- a small federation: registry, builder (IFC), renovator (measurements) ----------------------

DUPLEX_IFC = Path(__file__).parent / "data" / "ifc" / "duplex.ifc"
# Measured rooms -> GlobalIds of IFC spaces in duplex.ifc (A102 Living Room, B102 Living Room,
# A103 Kitchen), as examples/demo-mapping.toml links them.
ROOM_SPACES = {
    "917810": "0BTBFw6f90Nfh9rP1dlXr2",
    "999169": "0BTBFw6f90Nfh9rP1dl_CZ",
    "925038": "0BTBFw6f90Nfh9rP1dlXr%24",
}
MEASUREMENTS_MAPPING = """\
[columns]
feature = "id"
sensor = "source"
time = "timestamp"
property = "property"
value = "value"
unit = "unit"

[feature]
iri = "{base}/id/room/{feature}"

[feature.iris]
@FEATURE_IRIS@

[sensor]
iri = "{node}/id/sensor/{sensor}/{feature}"

[units]
"ppm" = "unit:PPM"
"°C" = "unit:DEG_C"

[properties.co2__ppm]
observes = "dsgo:CO2Concentration"
unit = "ppm"

[properties.temp_in__degC]
observes = "dsgo:AirTemperature"
unit = "°C"
""".replace(
    "@FEATURE_IRIS@",
    "\n".join(f'"{room}" = "{{base}}/id/bim/space/{gid}"' for room, gid in ROOM_SPACES.items()),
)


def measurements_csv(rows_per_room: int = 4, offset: float = 0.0) -> str:
    """A small sensor export: CO2 and temperature readings for the three mapped rooms."""
    lines = ["id,source,timestamp,property,value,unit"]
    for r, room in enumerate(ROOM_SPACES):
        for i in range(rows_per_room):
            ts = f"2022-10-12 {10 + i:02d}:00:00+02:00"
            lines.append(f"{room},CO2-meter,{ts},co2__ppm,{400 + 37 * r + 11 * i + offset},ppm")
            lines.append(f"{room},CO2-meter,{ts},temp_in__degC,{20 + r + i / 10},°C")
    return "\n".join(lines) + "\n"


def write_measurements(directory: Path, **kwargs: Any) -> tuple[Path, Path]:
    """Write the sensor CSV and its mapping into `directory`; returns (csv, mapping)."""
    directory.mkdir(parents=True, exist_ok=True)
    csv_path, mapping = directory / "measurements.csv", directory / "mapping.toml"
    csv_path.write_text(measurements_csv(**kwargs), encoding="utf-8")
    mapping.write_text(MEASUREMENTS_MAPPING, encoding="utf-8")
    return csv_path, mapping


def select_rows(resp: httpx.Response) -> list[tuple[str | None, ...]]:
    """The rows of a SPARQL JSON results response, values in head order (None when unbound)."""
    assert resp.status_code == 200, f"HTTP {resp.status_code}: {resp.text[:2000]}"
    doc = resp.json()
    names = doc["head"]["vars"]
    return [
        tuple(b[v]["value"] if v in b else None for v in names) for b in doc["results"]["bindings"]
    ]
