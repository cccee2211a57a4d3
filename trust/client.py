"""Outgoing trust calls: obtain an access token at any node (iSHARE client assertion) and call it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from trust.errors import InvalidClient, UpstreamError
from trust.ishare_jwt import create_client_assertion, verify_signed_response
from trust.pki import PartyIdentity

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
REFRESH_MARGIN = 30.0


class TrustClient:
    """Authenticates `identity` at other nodes; tokens are cached per (node URL, party id)."""

    def __init__(
        self,
        identity: PartyIdentity,
        trusted_sha256: set[str],
        *,
        http: httpx.Client | None = None,
        ahttp: httpx.AsyncClient | None = None,
        timeout: float | httpx.Timeout = 10.0,
        scope: str = "iSHARE",
        clock: Any = time.time,
        resolve_party: Callable[[str], str] | None = None,
    ) -> None:
        self.identity = identity
        self.resolve_party = resolve_party
        self.trusted_sha256 = set(trusted_sha256)
        self.scope = scope
        self._http = http or httpx.Client(timeout=timeout)
        self._ahttp = ahttp
        self._timeout = timeout
        self._clock = clock
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._party_ids: dict[str, str] = {}
        self._lock = threading.Lock()

    def bounded(self, seconds: float) -> httpx.Timeout:
        """This client's connect/read timeouts, the read (and pool) capped at `seconds`."""
        base = self._timeout if isinstance(self._timeout, httpx.Timeout) else None
        connect = base.connect if base is not None and base.connect else min(seconds, 10.0)
        read = min(seconds, base.read) if base is not None and base.read else seconds
        return httpx.Timeout(read, connect=connect, pool=read)

    def token_form(self, party_id: str) -> dict[str, str]:
        """The form fields of a POST /connect/token to the party `party_id`."""
        return {
            "grant_type": "client_credentials",
            "scope": self.scope,
            "client_id": self.identity.party_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": create_client_assertion(self.identity, party_id, now=self._clock()),
        }

    def get_token(self, base_url: str, party_id: str | None = None, *, fresh: bool = False) -> str:
        """Access token for the node at `base_url` (party id discovered if not given)."""
        base_url = base_url.rstrip("/")
        party_id = party_id or self._party_of(base_url)
        cached = None if fresh else self._cached(base_url, party_id)
        if cached:
            return cached
        try:
            resp = self._http.post(f"{base_url}/connect/token", data=self.token_form(party_id))
        except httpx.HTTPError as exc:
            raise UpstreamError("token_request", f"{base_url}: {exc}") from exc
        return self._store(base_url, party_id, resp)

    async def aget_token(
        self, base_url: str, party_id: str | None = None, *, fresh: bool = False
    ) -> str:
        """Async variant of get_token."""
        base_url = base_url.rstrip("/")
        if party_id is None and self.resolve_party is not None:
            party_id = self.resolve_party(base_url)
        party_id = party_id or await self.adiscover_party_id(base_url)
        cached = None if fresh else self._cached(base_url, party_id)
        if cached:
            return cached
        try:
            resp = await self._async().post(
                f"{base_url}/connect/token", data=self.token_form(party_id)
            )
        except httpx.HTTPError as exc:
            raise UpstreamError("token_request", f"{base_url}: {exc}") from exc
        return self._store(base_url, party_id, resp)

    def request(
        self, method: str, base_url: str, path: str, *, party_id: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """An authenticated request; on 401 the token is renewed once and the call retried."""
        base_url = base_url.rstrip("/")
        for attempt in (0, 1):
            token = self.get_token(base_url, party_id, fresh=attempt == 1)
            headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {token}"}
            resp = self._http.request(method, f"{base_url}{path}", headers=headers, **kwargs)
            kwargs["headers"] = {k: v for k, v in headers.items() if k != "Authorization"}
            if resp.status_code != 401:
                break
        return resp

    async def arequest(
        self, method: str, base_url: str, path: str, *, party_id: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Async variant of request."""
        base_url = base_url.rstrip("/")
        for attempt in (0, 1):
            token = await self.aget_token(base_url, party_id, fresh=attempt == 1)
            headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {token}"}
            resp = await self._async().request(
                method, f"{base_url}{path}", headers=headers, **kwargs
            )
            kwargs["headers"] = {k: v for k, v in headers.items() if k != "Authorization"}
            if resp.status_code != 401:
                break
        return resp

    def _party_of(self, base_url: str) -> str:
        if self.resolve_party is not None:
            return self.resolve_party(base_url)
        return self.discover_party_id(base_url)

    def discover_party_id(self, base_url: str) -> str:
        """Party id of the node at `base_url`, from its verified anonymous capabilities_token."""
        base_url = base_url.rstrip("/")
        if base_url in self._party_ids:
            return self._party_ids[base_url]
        try:
            resp = self._http.get(f"{base_url}/capabilities")
        except httpx.HTTPError as exc:
            raise UpstreamError("capabilities", f"{base_url}: {exc}") from exc
        return self._party_from_capabilities(base_url, resp)

    async def adiscover_party_id(self, base_url: str) -> str:
        """Async variant of discover_party_id."""
        base_url = base_url.rstrip("/")
        if base_url in self._party_ids:
            return self._party_ids[base_url]
        try:
            resp = await self._async().get(f"{base_url}/capabilities")
        except httpx.HTTPError as exc:
            raise UpstreamError("capabilities", f"{base_url}: {exc}") from exc
        return self._party_from_capabilities(base_url, resp)

    def close(self) -> None:
        self._http.close()

    def _party_from_capabilities(self, base_url: str, resp: httpx.Response) -> str:
        token = _json_field(resp, "capabilities_token", "capabilities")
        try:
            verified = verify_signed_response(
                token,
                claim="capabilities_info",
                issuer=None,
                audience=None,
                trusted_sha256=self.trusted_sha256,
                now=self._clock(),
            )
        except InvalidClient as exc:
            raise UpstreamError("capabilities_token", exc.description) from exc
        _check_served_by(verified.claims.get("capabilities_info"), base_url)
        self._party_ids[base_url] = verified.issuer
        return verified.issuer

    def _cached(self, base_url: str, party_id: str) -> str | None:
        with self._lock:
            entry = self._tokens.get((base_url, party_id))
        if entry and entry[1] - REFRESH_MARGIN > self._clock():
            return entry[0]
        return None

    def _store(self, base_url: str, party_id: str, resp: httpx.Response) -> str:
        token = _json_field(resp, "access_token", "token_request")
        try:
            expires_in = float(resp.json().get("expires_in", 3600))
        except (TypeError, ValueError):
            expires_in = 3600.0
        with self._lock:
            self._tokens[(base_url, party_id)] = (token, self._clock() + expires_in)
        return token

    def _async(self) -> httpx.AsyncClient:
        if self._ahttp is None:
            self._ahttp = httpx.AsyncClient(timeout=self._timeout)
        return self._ahttp


def _check_served_by(info: Any, base_url: str) -> None:
    """The capabilities must name `base_url`'s own token endpoint: a capabilities token is public
    and replayable, so one served from another origin would make us address our assertion to
    the party it names while handing it to whoever serves the URL."""
    wanted = _origin(base_url)
    services = []
    if isinstance(info, dict):
        services = list(info.get("publicServices") or []) + list(
            info.get("restrictedServices") or []
        )
    tokens = {
        _origin(s.get("tokenEndpoint") or s.get("endpointURL") or "")
        for s in services
        if isinstance(s, dict)
    }
    if wanted not in tokens:
        raise UpstreamError(
            "capabilities_token", f"the capabilities served at {base_url} are another node's"
        )


def _origin(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"
    except ValueError:
        return ""


def _json_field(resp: httpx.Response, name: str, check: str) -> str:
    if resp.status_code != 200:
        raise UpstreamError(check, f"HTTP {resp.status_code}: {resp.text[:200]}")
    try:
        value = resp.json()[name]
    except (ValueError, KeyError, TypeError) as exc:
        raise UpstreamError(check, f"response lacks {name}") from exc
    if not isinstance(value, str):
        raise UpstreamError(check, f"{name} is not a string")
    return value
