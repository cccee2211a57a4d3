"""A person logging in without a browser: follows the redirects of the OpenID Connect code flow
between a node and the development provider, posting the provider's login form, as a browser
would. Tests stop at any step (before the callback, after it) to try what an attacker would."""

from __future__ import annotations

import re
from dataclasses import dataclass
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
