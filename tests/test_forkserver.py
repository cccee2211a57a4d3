"""The suite's fork server (tests/forkserver.py) gives a `dsgo` process what exec would give it.

Every end-to-end test starts its `dsgo` commands and nodes through it, so a difference here
would make the suite test something other than the command users run.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import nodeproc
import pytest
from nodeproc import dsgo, free_port, init_node


def _both(monkeypatch: pytest.MonkeyPatch, *args: str | Path, **kwargs) -> tuple:
    monkeypatch.setenv("DSGO_TESTS_FORKSERVER", "1")
    forked = dsgo(*args, check=False, **kwargs)
    monkeypatch.setenv("DSGO_TESTS_FORKSERVER", "0")
    execed = dsgo(*args, check=False, **kwargs)
    return forked, execed


def test_help_is_the_same_output_and_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    forked, execed = _both(monkeypatch, "--help")
    assert forked.returncode == execed.returncode == 0
    assert forked.stdout == execed.stdout and "usage: dsgo" in forked.stdout
    assert forked.stderr == execed.stderr


def test_an_error_is_the_same_line_and_exit_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.toml"
    forked, execed = _both(monkeypatch, "policy", "list", "--config", missing)
    assert forked.returncode == execed.returncode == 1
    assert forked.stderr == execed.stderr and str(missing) in forked.stderr
    assert "Traceback" not in forked.stderr


def test_the_environment_is_the_commands_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """DSGO_CONFIG given to one command reaches it, and not the next one."""
    config = init_node(tmp_path / "n", "EU.EORI.NL000000301", "Owner", free_port())
    forked, execed = _both(monkeypatch, "policy", "list", env={"DSGO_CONFIG": str(config)})
    assert forked.returncode == execed.returncode == 0, forked.stderr
    assert forked.stdout == execed.stdout
    monkeypatch.setenv("DSGO_TESTS_FORKSERVER", "1")
    after = dsgo("policy", "list", check=False)
    assert after.returncode == 1 and str(config) not in after.stderr


def test_a_server_runs_in_its_own_session_and_stops_on_sigterm(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DSGO_TESTS_FORKSERVER", "1")
    port = free_port()
    config = init_node(tmp_path / "n", "EU.EORI.NL000000301", "Owner", port)
    group = nodeproc.ProcessGroup(tmp_path / "logs")
    try:
        node = group.serve(config, port)
        assert isinstance(node.popen, nodeproc.Launched)
        assert os.getpgid(node.popen.pid) == node.popen.pid != os.getpgid(0)
        assert "serving Owner" in node.stderr
        node.stop()
        assert node.popen.returncode is not None and not node.alive()
    finally:
        group.stop_all()


def test_a_killed_command_reports_the_signal_as_subprocess_does(tmp_path: Path) -> None:
    port = free_port()
    config = init_node(tmp_path / "n", "EU.EORI.NL000000301", "Owner", port)
    argv = [nodeproc.DSGO, "serve", "--config", str(config), "--port", str(port)]
    with open(tmp_path / "out", "wb") as out, open(os.devnull, "rb") as null:
        stdio = (null.fileno(), out.fileno(), out.fileno())
        child = nodeproc._FORK_SERVER.launch(argv, nodeproc.clean_env(), stdio, new_session=True)
    assert child.poll() is None  # a server: still running
    child.kill()
    assert child.wait(timeout=10) == -signal.SIGKILL


def test_a_fork_server_that_cannot_start_is_bypassed(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = nodeproc._ForkServer()

    def cannot_start() -> str:
        raise RuntimeError("the test fork server did not start: b''")

    monkeypatch.setattr(broken, "_start", cannot_start)
    monkeypatch.setattr(nodeproc, "_FORK_SERVER", broken)
    monkeypatch.setenv("DSGO_TESTS_FORKSERVER", "1")
    result = dsgo("--help")
    assert result.returncode == 0 and "usage: dsgo" in result.stdout
    assert broken.broken is not None and not broken.usable()
