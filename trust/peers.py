"""Who an outbound URL belongs to, according to the participant registry, never to the URL itself.

A node that calls another node signs a client assertion addressed to that node's party. If the
party were taken from what the URL serves (its capabilities token), a hostile listener could
replay another node's capabilities token and collect an assertion it can relay. So the party
comes from the registry's signed records: a URL is callable only when it lies under the node
base of an Active party (its `capability_url` without `/capabilities`), or under an endpoint the
operator configured explicitly for a named party.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from trust.errors import TrustError
from trust.registry import Party

__all__ = ["OutboundRefused", "Peer", "PeerResolver", "check_outbound_url", "node_base"]

CAPABILITIES_SUFFIX = "/capabilities"


class OutboundRefused(TrustError):
    """The URL is not one this node calls: not http(s), userinfo, or no registered party's."""

    error = "service_not_allowed"


@dataclass(frozen=True)
class Peer:
    """A node the registry vouches for: its party id and the base URL of its node."""

    party_id: str
    base_url: str
    name: str = ""

    @property
    def sparql(self) -> str:
        return f"{self.base_url}/sparql"


def check_outbound_url(url: str) -> tuple[str, str, str]:
    """(scheme, lower-case host[:port], path) of a URL this node may call; OutboundRefused if not.

    Only http(s); no userinfo (it would become an Authorization header); no fragment.
    """
    if not isinstance(url, str) or len(url) > 2048 or any(ord(c) <= 0x20 for c in url):
        raise OutboundRefused("outbound_url", "not a URL this node calls")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise OutboundRefused("outbound_url", f"not a valid URL: {url[:200]}") from None
    if parts.scheme not in ("http", "https"):
        raise OutboundRefused("outbound_url", f"only http(s) URLs are called: {url[:200]}")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise OutboundRefused("outbound_url", "URLs with user information are not called")
    if not parts.hostname:
        raise OutboundRefused("outbound_url", f"no host in {url[:200]}")
    if parts.fragment or url.endswith("#"):
        raise OutboundRefused("outbound_url", "URLs with a fragment are not called")
    default = 443 if parts.scheme == "https" else 80
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, default) else f"{host}:{port}"
    return parts.scheme, netloc, parts.path


def node_base(url: str) -> str:
    """The normalised base URL of a node (scheme://host[:port][/path]) with no trailing slash."""
    scheme, netloc, path = check_outbound_url(url)
    path = path.rstrip("/")
    if path.endswith(CAPABILITIES_SUFFIX):
        path = path[: -len(CAPABILITIES_SUFFIX)]
    return f"{scheme}://{netloc}{path}"


class PeerResolver:
    """Maps outbound URLs to registered, Active parties; refreshes its index at most every
    `cache_seconds` (one refresh at a time), so an unknown URL never floods the registry."""

    def __init__(
        self,
        list_parties: Callable[[], Iterable[Party]],
        get_party: Callable[[str], Party | None],
        *,
        own_party: str,
        own_base: str,
        configured: Mapping[str, str] | None = None,
        cache_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._list = list_parties
        self._get = get_party
        self.own_party = own_party
        self.own_base = node_base(own_base)
        self._configured = {node_base(url): party for url, party in (configured or {}).items()}
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._index: dict[str, Peer] = {}
        self._loaded_at: float | None = None
        self._lock = threading.Lock()

    def is_self(self, url: str) -> bool:
        """True when `url` lies under this node's own base."""
        try:
            return _under(_normal(url), self.own_base)
        except OutboundRefused:
            return False

    def resolve(self, url: str) -> Peer:
        """The peer `url` belongs to (its longest registered base); OutboundRefused if none."""
        normal = _normal(url)
        for base, party_id in self._configured.items():
            if _under(normal, base):
                party = self._get(party_id)
                if party is None or not party.is_active(_now()):
                    raise OutboundRefused(
                        "outbound_party", f"{party_id} (configured for {base}) is not Active"
                    )
                return Peer(party_id, base, party.name)
        index = self._current_index()
        match = max((b for b in index if _under(normal, b)), key=len, default=None)
        if match is None:
            raise OutboundRefused(
                "outbound_url",
                f"{_origin(normal)} is not the endpoint of a party Active in the registry",
            )
        return index[match]

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = None

    def _current_index(self) -> dict[str, Peer]:
        now = self._clock()
        loaded = self._loaded_at
        if loaded is not None and now - loaded < self.cache_seconds:
            return self._index
        with self._lock:  # single flight: whoever waits here uses the fresh index
            if self._loaded_at is not None and self._clock() - self._loaded_at < self.cache_seconds:
                return self._index
            index: dict[str, Peer] = {}
            at = _now()
            for party in self._list():
                if not party.capability_url or not party.is_active(at):
                    continue
                try:
                    base = node_base(party.capability_url)
                except OutboundRefused:
                    continue
                index[base] = Peer(party.party_id, base, party.name)
            self._index, self._loaded_at = index, self._clock()
            return index


def _normal(url: str) -> str:
    scheme, netloc, path = check_outbound_url(url)
    return f"{scheme}://{netloc}{path}"


def _under(url: str, base: str) -> bool:
    return url == base or url.startswith(base + "/")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
