"""The development OpenID Provider (tools/dev-op: npm `oidc-provider` and our start script).

`dsgo init --dev-login` writes a `[[login.providers]]` entry and the provider's config (this node
as a private_key_jwt client with its public JWKS, demo users); `dsgo dev-op FILE` runs it; the
demo and the tests start it on a free 127.0.0.1 port with `DevOp`. Never for production.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from node.login.oidc import node_jwk
from trust.pki import PartyIdentity

TOOLS = Path(__file__).resolve().parents[2] / "tools" / "dev-op"
DEFAULT_PORT = 8900
DEMO_PASSWORD = "demo"


class DevOpError(Exception):
    """The development provider cannot be installed or started; the message says why."""


@dataclass(frozen=True)
class DevUser:
    """A person at the development provider, with the claims the node maps to party and role."""

    username: str
    name: str
    party_id: str
    party_name: str
    roles: tuple[str, ...] = ()
    password: str = DEMO_PASSWORD

    def as_json(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "password": self.password,
            "name": self.name,
            "email": f"{self.username}@example.org",
            "party_id": self.party_id,
            "party_name": self.party_name,
            "roles": list(self.roles),
        }


def client_entry(base_iri: str, client_id: str, identity: PartyIdentity) -> dict[str, Any]:
    """A node as a client: its party id, its public key (private_key_jwt), its callback."""
    base = base_iri.rstrip("/")
    return {
        "client_id": client_id,
        "jwks": {"keys": [node_jwk(identity)]},
        "redirect_uris": [f"{base}/login/callback"],
        "post_logout_redirect_uris": [f"{base}/login"],
    }


def write_config(
    path: Path, port: int, clients: list[dict[str, Any]], users: list[DevUser]
) -> dict[str, Any]:
    """Write (or merge into) the provider's JSON config: clients by id, users by name."""
    data: dict[str, Any] = {
        "issuer": f"http://127.0.0.1:{port}",
        "port": port,
        "clients": [],
        "users": [],
    }
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            data["clients"], data["users"] = old.get("clients", []), old.get("users", [])
        except (ValueError, AttributeError):
            raise DevOpError(f"{path}: not a dev-op config (JSON)") from None
    by_id = {c["client_id"]: c for c in data["clients"]}
    by_id.update({c["client_id"]: c for c in clients})
    names = {u["username"]: u for u in data["users"]}
    names.update({u.username: u.as_json() for u in users})
    data["clients"], data["users"] = list(by_id.values()), list(names.values())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return data


def provider_toml(port: int, name: str = "dev") -> str:
    """The [[login.providers]] entry for the development provider."""
    return (
        "\n# People log in through the development OpenID Provider: run `dsgo dev-op dev-op.json`.\n"
        "# For a real provider (eHerkenning / iSHARE identity provider, any OIDC provider) see README.\n"
        "[[login.providers]]\n"
        f'name = "{name}"\n'
        'label = "the development provider"\n'
        f'issuer = "http://127.0.0.1:{port}"\n'
        'scopes = ["openid", "profile", "email", "dsgo"]\n'
    )


def ensure_installed() -> Path:
    """tools/dev-op with its node_modules (`npm ci` from the committed lock file if missing)."""
    if shutil.which("node") is None:
        raise DevOpError("the development provider needs Node.js (node) on PATH")
    if not (TOOLS / "node_modules" / "oidc-provider").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            raise DevOpError("tools/dev-op is not installed and npm is not on PATH")
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=TOOLS,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise DevOpError(f"npm ci in {TOOLS} failed: {done.stderr.strip()[-500:]}")
    return TOOLS


class DevOp:
    """A running development provider process (the demo's and the tests')."""

    def __init__(self, config_path: Path, log_path: Path | None = None) -> None:
        self.config_path = config_path
        data = json.loads(config_path.read_text(encoding="utf-8"))
        self.issuer: str = data["issuer"]
        self.log_path = log_path or config_path.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> DevOp:
        tools = ensure_installed()
        log = open(self.log_path, "wb")  # noqa: SIM115 - kept open for the process's life
        self.proc = subprocess.Popen(
            ["node", str(tools / "start.mjs"), str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tools,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DevOpError(f"dev-op exited: {self.log_path.read_text()[-500:]}")
            try:
                resp = httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1)
                if resp.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise DevOpError(f"dev-op did not answer at {self.issuer} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> DevOp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def init_dev_login(config: Path, port: int = DEFAULT_PORT) -> Path:
    """`dsgo init --dev-login`: add the development provider to node.toml and write its config
    (DIR/dev-op.json) with this node as a client and a steward and an auditor of its party."""
    from node.config import load_settings
    from node.runtime import load_identity

    settings = load_settings(config)
    identity = load_identity(settings)
    text = config.read_text(encoding="utf-8")
    if "[[login.providers]]" not in text:
        config.write_text(text + provider_toml(port), encoding="utf-8")
    name, party = settings.party_name, settings.party_id
    users = [
        DevUser("steward", f"{name} steward", party, name, ("steward",)),
        DevUser("auditor", f"{name} auditor", party, name, ("auditor",)),
    ]
    path = config.parent / "dev-op.json"
    write_config(path, port, [client_entry(settings.base_iri, party, identity)], users)
    return path


def run_dev_op(config_path: Path) -> int:
    """`dsgo dev-op FILE`: run the development provider in the foreground until Ctrl+C."""
    tools = ensure_installed()
    try:
        return subprocess.call(["node", str(tools / "start.mjs"), str(config_path)], cwd=tools)
    except KeyboardInterrupt:
        return 0
