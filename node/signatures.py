"""Signed dataset versions kept next to the store: sign once, serve until the dataset changes.

A signature covers the dataset's triples (graph name dropped, so the same JWS verifies data fetched
as N-Triples or as N-Quads): trust.signing.sign_dataset makes a detached RS256 JWS over the SHA-256
of their RDFC-1.0 canonical form, with the node identity's x5c chain. It is stored in
`{data_dir}/signatures/{name}.json` (replaced atomically) together with the dataset's version
marker at signing time. The marker changes with every replace or append of the dataset, so a
signature made for an older version is never served as the current one (`StaleSignature`, 404):
canonical signing is O(n log n) and takes seconds for 100k triples, so it is never done per request.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pyoxigraph as ox

from node.files import write_json_atomically
from node.iri import check_dataset_name, dataset_iri
from node.store import Store, StoreError, UnknownDataset
from trust.client import TrustClient
from trust.errors import TrustError
from trust.peers import Peer
from trust.pki import PartyIdentity
from trust.signing import SignatureError, sign_dataset, verify_dataset

SIGNATURES_DIR = "signatures"
AUTO_SIGN_LIMIT = 200_000  # datasets up to this many triples are signed after each connector load
_ATTEMPTS = 3
_DATASET_PATH = re.compile(r"/dataset/[a-z0-9][a-z0-9_-]{0,62}")
NQUADS = "application/n-quads"
NTRIPLES = "application/n-triples"
JOSE = "application/jose"
# What a failed check means for someone verifying a dataset.
_FAILURES = {
    "signature": "the data does not match the signature (changed since it was signed, or forged)",
    "untrusted_root": "the signer's certificate chain does not lead to a trusted root",
    "cert_party": "the signing certificate does not belong to the party named in the signature",
    "validity": "a certificate of the signer's chain is not valid now",
}


class NoSignature(UnknownDataset):
    """The dataset has no signature (HTTP 404)."""


class StaleSignature(NoSignature):
    """The stored signature was made for an older version of the dataset (HTTP 404)."""


class SigningRace(StoreError):
    """The dataset kept changing while it was being signed (HTTP 503; try again)."""

    status = 503


@dataclass(frozen=True)
class StoredSignature:
    """A detached dataset JWS and the dataset version it was made for."""

    dataset: str
    graph: str
    jws: str
    marker: str
    party: str
    signed_at: str
    triples: int


def signature_path(data_dir: Path, name: str) -> Path:
    return Path(data_dir) / SIGNATURES_DIR / f"{check_dataset_name(name)}.json"


def version_marker(store: Store, name: str) -> str | None:
    """What identifies the dataset's current version (None if there is no such dataset).

    The embedded store's physical graph IRI (new for every replace), the modification time and the
    triple count (an append changes those); the external store has no physical graph.
    """
    info = next((d for d in store.datasets() if d.name == name), None)
    if info is None:
        return None
    physical = store.physical_graph(info.graph)
    modified = info.modified.isoformat() if info.modified is not None else ""
    return "|".join([physical or "", modified, str(info.triples)])


def dataset_triples(store: Store, name: str) -> Iterator[ox.Triple]:
    """The dataset's triples, streamed from the store (the graph name dropped)."""
    for quad in store.quads(graphs=[dataset_iri(store.base_iri, name)]):
        yield quad.triple


def sign_stored_dataset(
    store: Store,
    identity: PartyIdentity,
    data_dir: Path,
    name: str,
    *,
    at: dt.datetime | None = None,
) -> StoredSignature:
    """Sign the dataset's current version and store the JWS with its version marker.

    The marker is read before and after reading the data; if the dataset changed in between the
    signing is repeated (a few times), so the stored marker always names the version signed.
    """
    graph = dataset_iri(store.base_iri, name)
    for _ in range(_ATTEMPTS):
        before = version_marker(store, name)
        if before is None:
            raise UnknownDataset(f"no dataset named {name!r}")
        triples = list(dataset_triples(store, name))
        if version_marker(store, name) != before:
            continue
        when = at or dt.datetime.now(dt.UTC)
        jws = sign_dataset(triples, identity, at=when)
        signed = StoredSignature(
            dataset=name,
            graph=graph,
            jws=jws,
            marker=before,
            party=identity.party_id,
            signed_at=when.isoformat(),
            triples=len(triples),
        )
        write_json_atomically(signature_path(data_dir, name), asdict(signed), indent=2)
        return signed
    raise SigningRace(f"dataset {name!r} kept changing while it was signed; try again")


def load_signature(data_dir: Path, name: str) -> StoredSignature | None:
    """The stored signature of `name`, current or not (None if there is none or it is unreadable)."""
    path = signature_path(data_dir, name)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return StoredSignature(**raw)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        return None


def current_signature(store: Store, data_dir: Path, name: str) -> StoredSignature:
    """The signature of the dataset's current version; NoSignature / StaleSignature (404) otherwise."""
    marker = version_marker(store, name)
    if marker is None:
        raise UnknownDataset(f"no dataset named {name!r}")
    signed = load_signature(data_dir, name)
    if signed is None:
        raise NoSignature(
            f"dataset {name!r} has no signature; the owner can sign it with "
            f"`dsgo sign --dataset {name}`"
        )
    if signed.marker != marker:
        raise StaleSignature(
            f"the signature of dataset {name!r} (signed {signed.signed_at}) is stale: the dataset "
            f"changed since; the owner must re-sign it with `dsgo sign --dataset {name}`"
        )
    return signed


def has_current_signature(store: Store, data_dir: Path, name: str) -> bool:
    try:
        current_signature(store, data_dir, name)
    except NoSignature:
        return False
    return True


def maybe_sign(
    store: Store,
    identity: PartyIdentity,
    data_dir: Path,
    name: str,
    *,
    limit: int = AUTO_SIGN_LIMIT,
) -> StoredSignature | None:
    """Sign after a load when the dataset is small enough (None when it is skipped)."""
    info = next((d for d in store.datasets() if d.name == name), None)
    if info is None or info.triples > limit:
        return None
    return sign_stored_dataset(store, identity, data_dir, name)


def verify_triples(
    data: Iterable[ox.Triple | ox.Quad],
    jws: str,
    trusted_sha256: set[str],
    *,
    graph: str | None = None,
    at: dt.datetime | None = None,
) -> str:
    """Verify fetched data against a dataset JWS; returns the signing party id.

    Quads must be in the default graph or in `graph` (the dataset's graph, when given); their
    graph name is dropped, as it was for signing. SignatureError / CertificateError say why not.
    """
    triples: list[ox.Triple] = []
    for item in data:
        if isinstance(item, ox.Quad):
            g = item.graph_name
            in_dataset = isinstance(g, ox.DefaultGraph) or (
                isinstance(g, ox.NamedNode) and (graph is None or g.value == graph)
            )
            if not in_dataset:
                raise SignatureError(
                    "foreign_graph", f"the data holds a quad outside the dataset graph <{graph}>"
                )
            triples.append(item.triple)
        else:
            triples.append(item)
    return verify_dataset(triples, jws, trusted_sha256, at or dt.datetime.now(dt.UTC))


@dataclass(frozen=True)
class VerifiedDataset:
    """A fetched dataset whose signature checked out."""

    iri: str
    party: str
    triples: int


class VerificationFailed(Exception):
    """Fetching or verifying a signed dataset failed; the message says why (CLI exits 1)."""


def verify_remote_dataset(
    client: TrustClient, iri: str, resolve: Callable[[str], Peer]
) -> VerifiedDataset:
    """Fetch a dataset (N-Quads/N-Triples, with a token) and its signature, and verify them.

    The signature is found through the response's `Link: <...>; rel="signature"`; without one,
    the node's answer at `{iri}/signature` says why (none made yet, or stale).
    """
    iri = iri.rstrip("/")
    try:
        peer = resolve(iri)
    except TrustError as exc:
        raise VerificationFailed(f"{iri}: {exc.description}") from None
    base = peer.base_url
    path = iri[len(base) :]
    if not _DATASET_PATH.fullmatch(path):
        raise VerificationFailed(f"{iri} is not a dataset IRI ({{base}}/dataset/NAME)")
    accept = f"{NQUADS}, {NTRIPLES};q=0.9"
    resp = _get(client, base, path, accept, iri)
    media = resp.headers.get("content-type", "").split(";")[0].strip()
    fmt = ox.RdfFormat.from_media_type(media)
    if fmt not in (ox.RdfFormat.N_QUADS, ox.RdfFormat.N_TRIPLES):
        raise VerificationFailed(f"{iri}: expected N-Quads or N-Triples, got {media!r}")
    link = resp.links.get("signature", {}).get("url")
    if not link:
        detail = _reason(_get(client, base, path + "/signature", JOSE, iri, check=False))
        raise VerificationFailed(f"{iri} has no valid signature: {detail}")
    sig_url = urljoin(iri, link)
    try:
        sig_peer = resolve(sig_url)
    except TrustError as exc:
        raise VerificationFailed(f"{sig_url}: {exc.description}") from None
    if sig_peer.party_id != peer.party_id:
        raise VerificationFailed(f"{iri}: its signature link points to another party's node")
    sig = _get(client, sig_peer.base_url, sig_url[len(sig_peer.base_url) :], JOSE, sig_url)
    try:
        data = list(ox.parse(resp.content, fmt))
    except SyntaxError as exc:
        raise VerificationFailed(f"{iri}: the data does not parse: {exc}") from None
    try:
        party = verify_triples(data, sig.text.strip(), client.trusted_sha256, graph=iri)
    except TrustError as exc:
        reason = _FAILURES.get(exc.check, exc.description)
        raise VerificationFailed(f"{iri}: signature INVALID ({exc.check}): {reason}") from None
    return VerifiedDataset(iri, party, len(data))


def _get(
    client: TrustClient, base: str, path: str, accept: str, iri: str, *, check: bool = True
) -> httpx.Response:
    try:
        resp = client.request("GET", base, path, headers={"Accept": accept}, timeout=None)
    except (httpx.HTTPError, TrustError) as exc:
        raise VerificationFailed(
            f"cannot reach {base}: {getattr(exc, 'description', exc)}"
        ) from None
    if check and resp.status_code >= 400:
        raise VerificationFailed(f"{iri}: HTTP {resp.status_code}: {_reason(resp)}")
    return resp


def _reason(resp: httpx.Response) -> str:
    try:
        body = resp.json()
        return str(body.get("error_description") or body.get("error") or resp.reason_phrase)
    except ValueError:
        return resp.text[:300] or resp.reason_phrase


__all__ = [
    "AUTO_SIGN_LIMIT",
    "NoSignature",
    "SigningRace",
    "StaleSignature",
    "StoredSignature",
    "VerificationFailed",
    "VerifiedDataset",
    "current_signature",
    "dataset_triples",
    "has_current_signature",
    "load_signature",
    "maybe_sign",
    "sign_stored_dataset",
    "signature_path",
    "verify_remote_dataset",
    "verify_triples",
    "version_marker",
]
