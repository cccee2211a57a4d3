"""Following a link to another node: discover it, get a token there, fetch with negotiation and ETag."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from trust.client import TrustClient


class RemoteFetchError(Exception):
    """The owning node could not be reached or refused the request (HTTP 502 / its own status)."""

    def __init__(self, iri: str, status: int, reason: str):
        self.iri, self.status_code, self.reason = iri, status, reason
        self.status = 502 if status >= 500 or status == 0 else status
        super().__init__(f"{iri}: {reason}")


@dataclass(frozen=True)
class RemoteResource:
    """A fetched description, held in memory for one request and never stored."""

    iri: str
    status: int
    media_type: str
    body: bytes
    etag: str | None


def owning_node(iri: str) -> str:
    """The base URL of the node that serves `iri` (its origin)."""
    parts = urlsplit(iri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RemoteFetchError(iri, 400, "only http(s) IRIs can be followed")
    return f"{parts.scheme}://{parts.netloc}"


def fetch_resource(
    client: TrustClient, iri: str, *, accept: str = "text/turtle", etag: str | None = None
) -> RemoteResource:
    """GET the resource at its owning node with a token obtained there (discovered via /capabilities)."""
    base = owning_node(iri)
    path = iri[len(base) :] or "/"
    headers = {"Accept": accept}
    if etag:
        headers["If-None-Match"] = etag
    try:
        resp = client.request("GET", base, path, headers=headers)
    except Exception as exc:  # network failure or a refused token: report it for this IRI
        raise RemoteFetchError(
            iri, 0, f"cannot reach {base}: {getattr(exc, 'description', exc)}"
        ) from None
    if resp.status_code == 304:
        return RemoteResource(iri, 304, "", b"", resp.headers.get("etag"))
    if resp.status_code >= 400:
        try:
            detail = resp.json().get("error_description") or resp.text[:300]
        except ValueError:
            detail = resp.text[:300]
        raise RemoteFetchError(
            iri, resp.status_code, f"{base} answered {resp.status_code}: {detail}"
        )
    media = resp.headers.get("content-type", "").split(";")[0].strip()
    return RemoteResource(iri, resp.status_code, media, resp.content, resp.headers.get("etag"))
