"""compose.yaml and the Dockerfile, checked without Docker: structure, and every `dsgo` call parses."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from node.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
# node service -> the party it serves (the builder's node runs on two hosts)
HOSTS = {
    "registry": "registry",
    "builder-1": "builder",
    "builder-2": "builder",
    "renovator": "renovator",
}
NODES = tuple(HOSTS)
PARTIES = ("registry", "builder", "renovator")
ENGINES = ("postgres", "oxigraph")  # images of their own, not built from the Dockerfile
PORT = 8000
_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")
SHELL_LINES = ("if ", "echo ")  # the only non-dsgo lines the setup script may hold


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def interpolate(text: str) -> str:
    """Compose variable defaults: ${VAR:-default} -> default (the variables are unset in tests)."""
    return _VAR.sub(lambda m: m.group(2) or "", text)


def dsgo_commands(compose: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(service, argv after `dsgo`) for every dsgo invocation the compose file makes."""
    found: list[tuple[str, list[str]]] = []
    for name, svc in compose["services"].items():
        if name in ENGINES:
            continue
        entrypoint = svc.get("entrypoint")
        command = svc.get("command")
        if entrypoint is None:  # the image's entrypoint: dsgo
            argv = shlex.split(command) if isinstance(command, str) else list(command or [])
            found.append((name, [interpolate(str(a)) for a in argv]))
            continue
        assert entrypoint == ["sh", "-ec"], f"{name}: unexpected entrypoint {entrypoint}"
        (script,) = command
        for line in script.splitlines():
            line = line.strip()
            if not line:
                continue
            if line.startswith("dsgo "):
                found.append((name, shlex.split(interpolate(line))[1:]))
            else:
                assert line.startswith(SHELL_LINES), f"{name}: untested shell line {line!r}"
    return found


def mounts(svc: dict[str, Any]) -> dict[str, str]:
    """Container path -> named volume."""
    result = {}
    for item in svc.get("volumes", []):
        source, _, target = item.partition(":")
        result[target.split(":")[0]] = source
    return result


def test_services_and_profiles(compose) -> None:
    services = compose["services"]
    assert set(services) == {"setup", *NODES, "auditor", *ENGINES}
    assert services["auditor"]["profiles"] == ["tools"]
    assert "profiles" not in services["setup"]
    for name in NODES:
        assert "profiles" not in services[name]


def test_images_are_built_from_the_dockerfile(compose) -> None:
    images = set()
    for name, svc in compose["services"].items():
        if name in ENGINES:
            assert "build" not in svc and svc["image"].split(":")[0].split("/")[-1] == name
            continue
        build = svc["build"]
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == ROOT, f"{name}: build context {context}"
        assert (context / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
        images.add(svc["image"])
    assert len(images) == 1, "every party runs the same image"


def test_volumes_declared_and_used(compose) -> None:
    declared = set(compose["volumes"])
    used = set()
    for name, svc in compose["services"].items():
        for target, source in mounts(svc).items():
            assert source in declared, f"{name}: volume {source!r} is not declared"
            assert target.startswith("/srv/"), f"{name}: mounts {target}"
            used.add(source)
    assert used == declared, f"declared but unused: {declared - used}"
    for party in PARTIES:
        assert f"{party}-keys" in declared
    for name in NODES:
        assert mounts(compose["services"][name])[f"/srv/{HOSTS[name]}/data"] in declared


def test_depends_on_targets_exist(compose) -> None:
    services = compose["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        for target in deps:
            assert target in services, f"{name} depends on unknown {target}"
            assert target != name
    for name in NODES:
        cond = services[name]["depends_on"]["setup"]["condition"]
        assert cond == "service_completed_successfully"
    # Waiting on a health status needs a healthcheck there.
    for name, svc in services.items():
        for target, spec in svc.get("depends_on", {}).items():
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits on {target}'s health"


def test_ports_unique_and_nodes_healthchecked(compose) -> None:
    published = []
    for name in NODES:
        svc = compose["services"][name]
        (mapping,) = svc["ports"]
        host, container = mapping.split(":")
        assert int(container) == PORT
        published.append(int(host))
        test = " ".join(svc["healthcheck"]["test"])
        assert f"127.0.0.1:{PORT}/healthz" in test
        env = svc["environment"]
        assert env["DSGO_NODE_BASE_IRI"] == f"http://{HOSTS[name]}:{PORT}"
        assert str(env["DSGO_SERVER_PORT"]) == str(PORT)
    assert len(published) == len(set(published))
    for name in ("setup", "auditor"):
        assert "ports" not in compose["services"][name]


def test_every_dsgo_command_exists_in_the_cli(compose) -> None:
    parser = build_parser()
    commands = dsgo_commands(compose)
    assert len(commands) >= 20
    for service, argv in commands:
        try:
            args = parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{service}: `dsgo {shlex.join(argv)}` is not a valid dsgo command")
        assert getattr(args, "func", None), f"{service}: `dsgo {shlex.join(argv)}` does nothing"


def test_a_wrong_command_would_be_caught() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["connect", "ifc", "model.ifc"])  # --dataset missing
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--no-such-flag"])


def test_setup_runs_the_demo_steps(compose) -> None:
    steps = [argv for service, argv in dsgo_commands(compose) if service == "setup"]
    heads = [" ".join(a for a in argv[:2] if not a.startswith(("/", "-"))) for argv in steps]
    assert heads[0] == "trust ca"
    assert heads.count("init") == 4
    assert heads.count("registry add") == 3
    assert heads.count("connect ifc") == 1 and heads.count("connect bag") == 1
    assert heads.count("connect measurements") == 1
    assert heads.count("policy grant") == 5
    assert ["sign", "--dataset", "bim"] == steps[-1][:3]
    parser = build_parser()
    inits = [parser.parse_args(a) for a in steps if a[0] == "init"]
    services = compose["services"]
    for args in inits:
        party = args.dir.name
        assert args.base_iri == f"http://{party}:{PORT}"
        for name in (n for n, p in HOSTS.items() if p == party):
            assert services[name]["environment"]["DSGO_NODE_BASE_IRI"] == args.base_iri
    registry_urls = {a.registry_url for a in inits if a.registry_url}
    assert registry_urls == {f"http://registry:{PORT}"}


def test_paths_are_mounted_or_in_the_image(compose) -> None:
    """Every /srv path a command names lives on a volume of its service; /app paths are shipped."""
    services = compose["services"]
    for service, argv in dsgo_commands(compose):
        mounted = mounts(services[service])
        for arg in argv:
            for path in re.findall(r"(/(?:srv|app)/[^\s,]+)", arg):
                if path.startswith("/app/"):
                    assert (ROOT / path.removeprefix("/app/")).exists(), f"{service}: {path}"
                    continue
                assert any(path == t or path.startswith(t + "/") for t in mounted), (
                    f"{service}: {path} is on no volume of the service"
                )


def test_dockerfile_entrypoint_is_the_dsgo_console_script() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    instructions = [line.strip() for line in text.replace("\\\n", " ").splitlines() if line.strip()]
    instructions = [line for line in instructions if not line.startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    (entry,) = [line for line in instructions if line.startswith("ENTRYPOINT ")]
    argv = json.loads(entry.removeprefix("ENTRYPOINT "))
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert argv == ["dsgo"] and scripts["dsgo"] == "node.cli:main"
    assert any(re.fullmatch(r'RUN pip install "\.\[postgres\]"', line) for line in instructions)
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(d.startswith("psycopg") for d in extras["postgres"])
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for line in instructions:
        if line.startswith("COPY "):
            *sources, _dest = line.split()[1:]
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such path"
                assert source not in ignored, f"COPY {source} but .dockerignore drops it"
    assert "examples" not in ignored and "node" not in ignored


def _setup_init(compose: dict[str, Any], party: str) -> Any:
    (args,) = [
        build_parser().parse_args(a)
        for service, a in dsgo_commands(compose)
        if service == "setup" and a[0] == "init" and f"/srv/{party}" in a
    ]
    return args


def test_builder_hosts_share_state_and_store_but_not_data(compose) -> None:
    """Two hosts of the builder's party, as tests/test_e2e_shared_state.py runs them."""
    services = compose["services"]
    one, two = services["builder-1"], services["builder-2"]
    assert one["command"] == two["command"] and one["environment"] == two["environment"]
    for svc in (one, two):
        assert svc["networks"]["default"]["aliases"] == ["builder"]
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert "oxigraph" in svc["depends_on"]
    m1, m2 = mounts(one), mounts(two)
    assert m1["/srv/builder"] == m2["/srv/builder"] == "builder-keys"  # one party, one key
    assert m1["/srv/builder/data"] != m2["/srv/builder/data"]  # a data directory each
    assert m1["/srv/builder/data/signatures"] == m2["/srv/builder/data/signatures"]
    init = _setup_init(compose, "builder")
    assert init.state_dsn.startswith("postgresql://dsgo:")
    assert init.state_dsn.endswith("@postgres:5432/dsgo")
    assert init.oxigraph_url == "http://oxigraph:7878"
    pg_env = services["postgres"]["environment"]
    assert (pg_env["POSTGRES_USER"], pg_env["POSTGRES_DB"]) == ("dsgo", "dsgo")
    command = services["oxigraph"]["command"]
    assert command[:1] == ["serve"] and command[command.index("--bind") + 1] == "0.0.0.0:7878"
    for party in ("registry", "renovator"):  # single hosts keep the SQLite default
        assert _setup_init(compose, party).state_dsn is None
