"""Calls this node makes to other nodes, each to a `Peer` the enforcement point has vouched for.

Nothing here decides whether a call may be made (that is `Enforcer.outbound`, before any network
I/O); this module only makes it safely: the client assertion is addressed to the peer's party
from the registry, redirects are not followed, and a remote error body is never passed back to
whoever asked (only the source and its status are named).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

import httpx

from node.sparql.federation import RESULTS_JSON, RemoteCallError, RemoteSolutions, check_response
from trust.client import TrustClient
from trust.errors import TrustError
from trust.jades import ExchangeSignatureError
from trust.peers import Peer

if TYPE_CHECKING:
    from node.exchange import Exchange

__all__ = ["REMOTE_SHARE", "RemoteFetchError", "RemoteResource", "fetch_resource", "post_sparql"]

REMOTE_SHARE = 0.75
"""Calls to other nodes may use this share of the query timeout (federation.read_timeout is cut
to it); the rest is for the local evaluation, so a hung remote is the named 504 well before
the query's own 503 (issue 17)."""


class RemoteFetchError(Exception):
    """The owning node could not be reached or refused the request (HTTP 502 / 404 / 403)."""

    def __init__(self, iri: str, status: int, reason: str):
        self.iri, self.status_code, self.reason = iri, status, reason
        self.status = status if status in (304, 401, 403, 404, 406, 504) else 502
        super().__init__(f"{iri}: {reason}")


@dataclass(frozen=True)
class RemoteResource:
    """A fetched description, held in memory for one request and never stored."""

    iri: str
    status: int
    media_type: str
    body: bytes
    etag: str | None


def post_sparql(
    client: TrustClient,
    peer: Peer,
    query: str,
    timeout: float,
    *,
    exchange: Exchange | None = None,
    datasets: Sequence[str] = (),
    receipts: list[str] | None = None,
) -> RemoteSolutions:
    """POST a query to the peer's SPARQL endpoint with a token obtained at the peer's party.

    With `exchange`, the request is JAdES-signed and the answer verified and kept as a receipt
    (its id appended to `receipts`; `datasets`: what the answer is computed for).
    """
    body = urlencode({"query": query}).encode("ascii")
    headers = {"Accept": RESULTS_JSON, "Content-Type": "application/x-www-form-urlencoded"}
    url = peer.sparql
    if exchange is not None:
        headers.update(exchange.request_headers("POST", url, headers, body))
        headers["Accept-Encoding"] = "identity"
    try:
        resp = client.request(
            "POST",
            peer.base_url,
            "/sparql",
            party_id=peer.party_id,
            content=body,
            headers=headers,
            timeout=client.bounded(timeout),  # federation.connect_timeout / read_timeout
            follow_redirects=False,
        )
    except TrustError as exc:
        if isinstance(exc.__cause__, httpx.TimeoutException):  # the named 504, not a 502
            raise TimeoutError(f"no access token from {peer.party_id} in time") from None
        raise RemoteCallError(f"no access token from {peer.party_id}: {exc.check}") from None
    if exchange is not None:
        try:
            exchange.check_response(peer, "POST", url, resp, datasets=datasets, receipts=receipts)
        except ExchangeSignatureError as exc:
            raise RemoteCallError(f"answer not accepted: {exc.check}: {exc.description}") from None
    return check_response(resp.status_code, resp.headers, resp.content)


def fetch_resource(
    client: TrustClient,
    peer: Peer,
    iri: str,
    *,
    accept: str = "text/turtle",
    etag: str | None = None,
    timeout: float = 10.0,
    exchange: Exchange | None = None,
    datasets: Sequence[str] = (),
    receipts: list[str] | None = None,
) -> RemoteResource:
    """GET a resource IRI at the peer that serves it, with a token obtained at the peer's party.

    With `exchange`, signed and verified as `post_sparql` is.
    """
    path = iri[len(peer.base_url) :] or "/"
    if urlsplit(iri).fragment:
        path = path.split("#", 1)[0]
    headers = {"Accept": accept}
    if etag:
        headers["If-None-Match"] = etag
    if exchange is not None:
        headers.update(exchange.request_headers("GET", peer.base_url + path, headers, b""))
        headers["Accept-Encoding"] = "identity"
    try:
        resp = client.request(
            "GET",
            peer.base_url,
            path,
            party_id=peer.party_id,
            headers=headers,
            timeout=client.bounded(timeout),
            follow_redirects=False,
        )
    except TrustError as exc:
        timed_out = isinstance(exc.__cause__, httpx.TimeoutException)
        raise RemoteFetchError(
            iri, 504 if timed_out else 0, f"no access token from {peer.party_id}: {exc.check}"
        ) from None
    except httpx.TimeoutException:
        raise RemoteFetchError(iri, 504, f"{peer.party_id} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise RemoteFetchError(
            iri, 0, f"cannot reach {peer.party_id}: {type(exc).__name__}"
        ) from None
    if exchange is not None:
        try:
            exchange.check_response(
                peer,
                "GET",
                peer.base_url + path,
                resp,
                datasets=datasets,
                receipts=receipts,
            )
        except ExchangeSignatureError as exc:
            raise RemoteFetchError(
                iri, 0, f"{peer.party_id}'s answer not accepted: {exc.check}: {exc.description}"
            ) from None
    if resp.status_code == 304:
        return RemoteResource(iri, 304, "", b"", resp.headers.get("etag"))
    if resp.status_code != 200:
        raise RemoteFetchError(
            iri, resp.status_code, f"{peer.party_id} answered HTTP {resp.status_code}"
        )
    media = resp.headers.get("content-type", "").split(";")[0].strip()
    return RemoteResource(iri, resp.status_code, media, resp.content, resp.headers.get("etag"))
