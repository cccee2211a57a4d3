"""Configuration and CLI behaviour of real `dsgo` processes: one-line errors, init, env, --help."""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from nodeproc import ProcessGroup, dsgo, edit_config, free_port, init_node

from node.cli import build_parser

OWNER = "EU.EORI.NL000000101"


def assert_one_line_error(proc, *needles: str) -> None:
    """Non-zero exit, exactly one `dsgo: error:` line naming every needle, no traceback."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("dsgo: error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], proc.stderr


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A freshly initialised node config on a free port (not running)."""
    return init_node(tmp_path / "node", OWNER, "Builder", free_port())


BAD_SETTINGS = [
    ({"server": {"port": 70000}}, "server.port"),
    ({"server": {"port": "eighty"}}, "server.port"),
    ({"server": {"workers": 2}}, "server.workers"),
    ({"store": {"backend": "mysql"}}, "store.backend"),
    ({"store": {"backend": "sparql"}}, "store.query_url"),
    (
        {"store": {"backend": "sparql", "query_url": "http://127.0.0.1:1/q", "sparql_engine": "x"}},
        "store.sparql_engine",
    ),
    ({"store": {"query_timeout": -1}}, "store.query_timeout"),
    ({"store": {"max_results": 0}}, "store.max_results"),
    ({"node": {"base_iri": "ftp://example.org"}}, "node.base_iri"),
    ({"node": {"base_iri": None}}, "node.base_iri"),
    ({"node": {"party_id": "ACME"}}, "node.party_id"),
    ({"node": {"roles": ["node", "oracle"]}}, "node.roles"),
    ({"node": {"roles": ["node"]}}, "trust.registry_url"),
    ({"identity": {"key": "keys/missing.pem"}}, "identity"),
    ({"identity": {"key": None, "cert": None}}, "identity.key"),
    ({"trust": {"trusted_roots": ["keys/none.pem"]}}, "trust.trusted_roots"),
    ({"trust": {"trusted_roots": []}}, "trust.trusted_roots"),
    ({"audit": {"backend": "oracle"}}, "audit.backend"),
    ({"sync": {"shacl_severity": "Fatal"}}, "sync.shacl_severity"),
]


@pytest.mark.parametrize(("changes", "setting"), BAD_SETTINGS, ids=[s for _, s in BAD_SETTINGS])
def test_wrong_setting_stops_serve_with_one_line(config: Path, changes: dict, setting: str) -> None:
    edit_config(config, changes)
    proc = dsgo("serve", "--config", config, check=False, timeout=30)
    assert_one_line_error(proc, setting)


def test_invalid_toml_and_missing_file(tmp_path: Path, config: Path) -> None:
    config.write_text(config.read_text() + "\n[server\n")
    proc = dsgo("serve", "--config", config, check=False, timeout=60)
    assert_one_line_error(proc, "not valid TOML", str(config))
    missing = tmp_path / "absent" / "node.toml"
    proc = dsgo("serve", "--config", missing, check=False, timeout=60)
    assert_one_line_error(proc, "config file not found", str(missing))


def test_wrong_environment_override_named(config: Path) -> None:
    proc = dsgo(
        "serve", "--config", config, check=False, timeout=60, env={"DSGO_SERVER_PORT": "abc"}
    )
    assert_one_line_error(proc, "server.port")


def test_init_writes_a_config_that_starts(procs: ProcessGroup, tmp_path: Path) -> None:
    port = free_port()
    config = init_node(tmp_path / "n", "EU.EORI.NL000000123", "Starter", port)
    node = procs.serve(config, port, port_flag=False)
    health = httpx.get(f"{node.base_url}/healthz").json()
    assert health == {
        "status": "ok",
        "party_id": "EU.EORI.NL000000123",
        "base_iri": f"http://127.0.0.1:{port}",
    }


def test_environment_overrides_port(procs: ProcessGroup, config: Path) -> None:
    """DSGO_SERVER_PORT beats [server] port."""
    port = free_port()
    node = procs.serve(config, port, env={"DSGO_SERVER_PORT": str(port)}, port_flag=False)
    assert httpx.get(f"{node.base_url}/healthz").status_code == 200
    assert f"127.0.0.1:{port}" in node.stderr


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple]:
    found = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, (*prefix, name))
    return found


COMMANDS = _commands(build_parser())


def test_every_command_has_help() -> None:
    """`dsgo [COMMAND [ACTION]] --help` exits 0 and prints usage, for every command."""
    assert len(COMMANDS) > 20
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: (c, dsgo(*c, "--help", check=False)), COMMANDS))
    for command, proc in results:
        assert proc.returncode == 0, (command, proc.stderr)
        assert proc.stdout.startswith("usage: dsgo"), command


def test_cli_errors_are_one_line(tmp_path: Path, config: Path) -> None:
    """Known failures print one `dsgo: error:` line naming the problem, never a traceback."""
    ttl = tmp_path / "data.ttl"
    ttl.write_text('<a> <urn:p> "x" .\n')
    odd = tmp_path / "data.xyz"
    odd.write_text("x")
    cases = [
        (("load", tmp_path / "none.ttl", "--dataset", "d"), "no such file"),
        (("load", odd, "--dataset", "d"), "--format"),
        (("load", ttl, "--dataset", "Bad Name"), "Bad Name"),
        (("policy", "grant", "--to", "nobody", "--dataset", "d"), "--to"),
        (("policy", "revoke", "no-such-policy"), "no-such-policy"),
        (("policy", "grant", "--to", OWNER, "--type", "zz:Thing"), "zz:Thing"),
        (("query", "SELECT ?s WHERE { ?s ?p }"), "expected"),
        (("token", "--for", f"http://127.0.0.1:{free_port()}"), "127.0.0.1"),
    ]
    for args, needle in cases:
        assert_one_line_error(dsgo(*args, "--config", config, check=False), needle)
    again = dsgo("init", config.parent, "--port", "8100", check=False)
    assert_one_line_error(again, "exists")
    other = init_node(
        tmp_path / "plain",
        "EU.EORI.NL000000102",
        "Plain",
        free_port(),
        registry_url="http://127.0.0.1:9",
        registry_id=OWNER,
    )
    not_registry = dsgo("registry", "status", "--config", other, OWNER, "Revoked", check=False)
    assert_one_line_error(not_registry, "not a registry node")


def test_usage_errors_exit_2(config: Path) -> None:
    proc = dsgo("load", "--config", config, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--dataset" in proc.stderr
