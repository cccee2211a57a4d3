"""A person logging in without a browser: follows the redirects of the OpenID Connect code flow
between a node and the development provider, posting the provider's login form, as a browser
would. Tests stop at any step (before the callback, after it) to try what an attacker would."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx


@dataclass
class Callback:
    """The node's callback URL the provider sent the browser to (not yet followed)."""

    url: str

    @property
    def params(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.url).query).items()}

    def with_params(self, **changes: str) -> str:
        params = {**self.params, **changes}
        base = self.url.split("?", 1)[0]
        return base + "?" + httpx.QueryParams(params).__str__()


class Person:
    """One browser: its own cookie jar, talking to a node and its provider."""

    def __init__(self, node: str) -> None:
        self.node = node.rstrip("/")
        self.http = httpx.Client(timeout=20.0, follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def start(self, provider: str = "dev", next_path: str = "/") -> httpx.Response:
        return self.http.get(
            f"{self.node}/login/start", params={"provider": provider, "next": next_path}
        )

    def to_callback(
        self, username: str, password: str = "demo", provider: str = "dev", next_path: str = "/"
    ) -> Callback:
        """Start a login, log in at the provider, return the callback it redirects to."""
        resp = self.start(provider, next_path)
        assert resp.status_code == 302, resp.text
        return self.at_provider(resp.headers["location"], username, password)

    def at_provider(self, url: str, username: str, password: str = "demo") -> Callback:
        for _ in range(20):
            if url.startswith(f"{self.node}/login/callback"):
                return Callback(url)
            resp = self.http.get(url)
            if resp.status_code in (302, 303):
                url = urljoin(url, resp.headers["location"])
                continue
            form = re.search(r'<form method="post" action="([^"]+)"', resp.text)
            assert resp.status_code == 200 and form, f"{resp.status_code} {resp.text[:500]}"
            post = self.http.post(
                urljoin(url, form.group(1)), data={"login": username, "password": password}
            )
            assert post.status_code in (302, 303), f"{post.status_code} {post.text[:300]}"
            url = urljoin(url, post.headers["location"])
        raise AssertionError("too many redirects at the provider")

    def finish(self, callback: Callback | str) -> httpx.Response:
        url = callback.url if isinstance(callback, Callback) else callback
        return self.http.get(url)

    def login(self, username: str, password: str = "demo", next_path: str = "/") -> httpx.Response:
        resp = self.finish(self.to_callback(username, password, next_path=next_path))
        assert resp.status_code == 303, resp.text
        return resp

    def me(self) -> httpx.Response:
        return self.http.get(f"{self.node}/login/me")

    def csrf(self) -> str:
        return self.me().json()["csrf_token"]


# --- a node with login through the development provider, for the login tests -------------------

BUILDER = "EU.EORI.NL000000101"
RENOVATOR = "EU.EORI.NL000000102"


def dev_users() -> list:
    """The people of the login tests: builder staff in both roles and without one, a renovator's
    employee, and someone the provider names no party for."""
    from node.login.devop import DevUser

    return [
        DevUser("steward", "Sam Steward", BUILDER, "Builder", ("steward",)),
        DevUser("auditor", "Ada Auditor", BUILDER, "Builder", ("auditor",)),
        DevUser("otto", "Otto Norole", BUILDER, "Builder"),
        DevUser("rita", "Rita Jansen", RENOVATOR, "Renovator", ()),
        DevUser("nora", "Nora Noparty", "", "", ()),
    ]


@dataclass
class LoginNode:
    """A running builder node with `[[login.providers]]` and its running development provider."""

    base: str
    config: Path
    op: object  # node.login.devop.DevOp

    @property
    def data_dir(self) -> Path:
        return self.config.parent / "data"

    def sessions(self) -> int:
        with sqlite3.connect(self.data_dir / "login.sqlite") as db:
            return db.execute("SELECT count(*) FROM login_session").fetchone()[0]

    def backdate(self, column: str, seconds: float) -> None:
        """Move every session's `created` or `last_seen` into the past (a clock that ran on)."""
        assert column in ("created", "last_seen")
        with sqlite3.connect(self.data_dir / "login.sqlite") as db:
            db.execute(f"UPDATE login_session SET {column} = {column} - ?", (seconds,))


def start_login_node(procs, root: Path, users: list | None = None) -> LoginNode:
    """`dsgo init --dev-login` a builder node (its own registry), start the provider and node."""
    from nodeproc import dsgo, free_port

    from node.login.devop import DevOp, write_config

    port, op_port = free_port(), free_port()
    dsgo(
        "init",
        root / "builder",
        "--party-id",
        BUILDER,
        "--name",
        "Builder",
        "--port",
        str(port),
        "--dev-login",
        "--dev-login-port",
        str(op_port),
    )
    config = root / "builder" / "node.toml"
    # the same provider once more, as iSHARE has it: a signed request object, scope iSHARE
    config.write_text(
        config.read_text(encoding="utf-8")
        + "\n[[login.providers]]\n"
        + 'name = "dev-ishare"\nlabel = "the development provider, iSHARE profile"\n'
        + f'issuer = "http://127.0.0.1:{op_port}"\nprofile = "ishare"\n'
        + 'scopes = ["openid", "iSHARE", "profile"]\n',
        encoding="utf-8",
    )
    op_config = root / "builder" / "dev-op.json"
    write_config(op_config, op_port, [], users if users is not None else dev_users())
    op = DevOp(op_config, root / "dev-op.log").start()
    procs.serve(config, port)
    procs_stop = getattr(procs, "procs", None)
    if procs_stop is not None:  # stop the provider with the group's servers
        procs_stop.insert(0, _OpProc(op))
    return LoginNode(f"http://127.0.0.1:{port}", config, op)


class _OpProc:
    """Lets a ProcessGroup stop the provider with its other servers."""

    def __init__(self, op) -> None:
        self.op = op

    def stop(self) -> None:
        self.op.stop()
