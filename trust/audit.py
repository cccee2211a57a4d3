"""Append-only, hash-chained audit log with signed checkpoints; fails closed.

Entry hash = SHA-256 of the entry's canonical JSON (orjson, sorted keys, no whitespace, UTF-8;
for the ASCII keys and JSON types used this equals RFC 8785 JCS), which includes `prev`, the
previous entry's hash (64 zeros for entry 1). Every `checkpoint_every` entries and/or every
`checkpoint_seconds` a checkpoint JWS (RS256, x5c) signed by the node commits to (seq, hash).
`append()` raises AuditUnavailable when the entry cannot be written: the caller must then not
perform the action.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
import pyoxigraph as ox

from trust.audit_store import GENESIS_HASH, AuditStore, AuditStoreError, Row
from trust.errors import TrustError
from trust.pki import PartyIdentity, certificate_matches_party
from trust.signing import SignatureError, sign_jws, verify_jws

KINDS = frozenset(
    {"token_issued", "token_refused", "permit", "deny", "query", "federated_call", "admin"}
)
CHECKPOINT_TYP = "dsgo-audit-checkpoint+jws"
VERIFY_PAGE = 10_000
PROV = "http://www.w3.org/ns/prov#"
DSGO = "https://w3id.org/dsgo-node/def#"
XSD = "http://www.w3.org/2001/XMLSchema#"
RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")


class AuditUnavailable(TrustError):
    """The audit entry could not be written; the audited action must not happen."""

    status = 503
    error = "temporarily_unavailable"


@dataclass(frozen=True)
class AuditEvent:
    """What a caller records; the log adds seq, time, prev and hash."""

    kind: str
    party: str | None = None
    target: str | None = None
    action: str | None = None
    policy_ids: tuple[str, ...] = ()
    token_jti: str | None = None
    query_hash: str | None = None
    datasets: tuple[str, ...] = ()
    result_size: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditEntry:
    """A stored entry as auditors read it."""

    seq: int
    time: str
    kind: str
    party: str | None
    target: str | None
    action: str | None
    policy_ids: tuple[str, ...]
    token_jti: str | None
    query_hash: str | None
    datasets: tuple[str, ...]
    result_size: int | None
    detail: dict[str, Any]
    prev: str
    hash: str


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of `verify`: `first_broken` is the seq of the first bad entry (None if sound)."""

    ok: bool
    entries: int
    checkpoints: int
    first_broken: int | None = None
    reason: str | None = None
    broken_checkpoint: int | None = None
    checkpoint_reason: str | None = None
    last_hash: str = GENESIS_HASH


class AuditLog:
    """The node's audit log over a store; one instance per process, safe across threads."""

    def __init__(
        self,
        store: AuditStore,
        signer: PartyIdentity | None = None,
        *,
        checkpoint_every: int | None = 1000,
        checkpoint_seconds: float | None = 300.0,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.store = store
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._last_checkpoint = time.monotonic()
        self._ck_lock = threading.Lock()

    def append(self, event: AuditEvent) -> AuditEntry:
        """Write one entry (chained to the previous one); raise AuditUnavailable on any failure."""
        if event.kind not in KINDS:
            raise ValueError(f"unknown audit kind {event.kind!r}")
        fields = _event_fields(event)
        stamp = _timestamp(self._clock())

        chained: list[str] = []

        def build(seq: int, prev: str) -> Row:
            chained[:] = [prev]
            body = canonical_json({**fields, "seq": seq, "time": stamp, "prev": prev})
            digest = hashlib.sha256(body).hexdigest()
            return Row(seq, stamp, event.kind, event.party, digest, body.decode("utf-8"))

        try:
            row = self.store.append(build)
        except AuditStoreError as exc:
            raise AuditUnavailable("audit_write", str(exc)) from exc
        except Exception as exc:  # noqa: BLE001 - fail closed on anything unexpected
            raise AuditUnavailable("audit_write", f"{type(exc).__name__}: {exc}") from exc
        if self._checkpoint_due(row.seq):
            self._sign_checkpoint(row.seq, row.hash)
        return AuditEntry(
            seq=row.seq,
            time=stamp,
            prev=chained[0],
            hash=row.hash,
            **{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()},
        )

    def checkpoint(self) -> int | None:
        """Sign a checkpoint over the current chain head now; returns its seq (None if empty)."""
        if self.signer is None:
            raise AuditUnavailable("audit_checkpoint", "no signing identity configured")
        try:
            last = self.store.head()
        except AuditStoreError as exc:
            raise AuditUnavailable("audit_read", str(exc)) from exc
        if last is None:
            return None
        self._sign_checkpoint(last.seq, last.hash)
        return last.seq

    def entries(
        self,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        party: str | None = None,
        kind: str | None = None,
        limit: int | None = 1000,
        after_seq: int = 0,
    ) -> list[AuditEntry]:
        """Entries in seq order, filtered by time window [since, until), party and kind.

        Page with `after_seq` = the last seq of the previous page.
        """
        try:
            rows = self.store.rows(
                since=_timestamp(since) if since else None,
                until=_timestamp(until) if until else None,
                party=party,
                kind=kind,
                after_seq=after_seq,
                limit=limit,
            )
            return [_entry(r) for r in rows]
        except AuditStoreError as exc:
            raise AuditUnavailable("audit_read", str(exc)) from exc

    def _checkpoint_due(self, seq: int) -> bool:
        if self.signer is None:
            return False
        if self.checkpoint_every and seq % self.checkpoint_every == 0:
            return True
        return bool(
            self.checkpoint_seconds is not None
            and time.monotonic() - self._last_checkpoint >= self.checkpoint_seconds
        )

    def _sign_checkpoint(self, seq: int, entry_hash: str) -> None:
        assert self.signer is not None
        with self._ck_lock:
            self._last_checkpoint = time.monotonic()
            jws = sign_checkpoint(seq, entry_hash, self.signer, self._clock())
            try:
                self.store.add_checkpoint(seq, jws)
            except AuditStoreError as exc:
                raise AuditUnavailable("audit_checkpoint", str(exc)) from exc


def verify(
    store: AuditStore,
    trusted: set[str],
    *,
    checkpoint_every: int | None = None,
    node_party: str | None = None,
) -> VerifyReport:
    """Recompute the chain and check every checkpoint; name the first broken entry.

    With `checkpoint_every`, a missing periodic checkpoint is reported as well; with
    `node_party`, checkpoints must be signed by that party's certificate.
    """
    cps = store.checkpoints()
    wanted = {seq for seq, _ in cps}
    hashes: dict[int, str] = {}
    prev, expected, count = GENESIS_HASH, 1, 0
    first_broken: int | None = None
    reason: str | None = None
    while first_broken is None:
        after = expected - 1 if count else -(2**62)  # also see rows forged below seq 1
        page = list(store.rows(after_seq=after, limit=VERIFY_PAGE))
        for row in page:
            count += 1
            problem = _check_row(row, expected, prev)
            if problem is not None:
                first_broken, reason = problem
                break
            if row.seq in wanted:
                hashes[row.seq] = row.hash
            prev, expected = row.hash, row.seq + 1
        if len(page) < VERIFY_PAGE:
            break
    broken_cp, cp_reason = None, None
    for seq, jws in cps:
        why = _check_checkpoint(seq, jws, hashes, trusted, first_broken, node_party)
        if why is not None:
            broken_cp, cp_reason = seq, why
            break
    if broken_cp is None and checkpoint_every:
        have = {seq for seq, _ in cps}
        limit = (first_broken or expected) - 1
        missing = [s for s in range(checkpoint_every, limit + 1, checkpoint_every) if s not in have]
        if missing:
            broken_cp, cp_reason = missing[0], "checkpoint missing"
    if first_broken is None and broken_cp is not None and cp_reason == "entry_missing":
        first_broken, reason = expected, "truncated: a checkpoint covers entries that are gone"
    ok = first_broken is None and broken_cp is None
    return VerifyReport(ok, count, len(cps), first_broken, reason, broken_cp, cp_reason, prev)


def sign_checkpoint(
    seq: int, entry_hash: str, signer: PartyIdentity, at: dt.datetime | None = None
) -> str:
    """Compact JWS committing the signer to the chain head `(seq, hash)`."""
    when = at or dt.datetime.now(dt.UTC)
    header = {"alg": "RS256", "typ": CHECKPOINT_TYP, "x5c": list(signer.x5c)}
    payload = {
        "seq": seq,
        "hash": entry_hash,
        "iat": int(when.timestamp()),
        "iss": signer.party_id,
    }
    return sign_jws(header, canonical_json(payload), signer.private_key)


def as_prov(entries: Iterable[AuditEntry], base_iri: str) -> list[ox.Triple]:
    """PROV-O view: each access a prov:Activity associated with the party, using its datasets."""
    out: list[ox.Triple] = []
    for e in entries:
        act = ox.NamedNode(f"{base_iri}/audit/entry/{e.seq}")
        out.append(ox.Triple(act, RDF_TYPE, ox.NamedNode(PROV + "Activity")))
        out.append(ox.Triple(act, RDF_TYPE, ox.NamedNode(DSGO + "AuditEntry")))
        when = ox.Literal(e.time, datatype=ox.NamedNode(XSD + "dateTime"))
        out.append(ox.Triple(act, ox.NamedNode(PROV + "startedAtTime"), when))
        out.append(ox.Triple(act, ox.NamedNode(DSGO + "auditKind"), ox.Literal(e.kind)))
        out.append(ox.Triple(act, ox.NamedNode(DSGO + "auditSeq"), _int(e.seq)))
        out.append(ox.Triple(act, ox.NamedNode(DSGO + "entryHash"), ox.Literal(e.hash)))
        if e.party:
            agent = party_iri(e.party)
            out.append(ox.Triple(act, ox.NamedNode(PROV + "wasAssociatedWith"), agent))
            out.append(ox.Triple(agent, RDF_TYPE, ox.NamedNode(PROV + "Agent")))
            out.append(ox.Triple(agent, ox.NamedNode(DSGO + "partyId"), ox.Literal(e.party)))
        for name in e.datasets:
            out.append(ox.Triple(act, ox.NamedNode(PROV + "used"), dataset_iri(name, base_iri)))
        for prop, value in (
            ("target", e.target),
            ("action", e.action),
            ("tokenJti", e.token_jti),
            ("queryHash", e.query_hash),
        ):
            if value is not None:
                out.append(ox.Triple(act, ox.NamedNode(DSGO + prop), ox.Literal(value)))
        for pid in e.policy_ids:
            out.append(ox.Triple(act, ox.NamedNode(DSGO + "policy"), ox.Literal(pid)))
        if e.result_size is not None:
            out.append(ox.Triple(act, ox.NamedNode(DSGO + "resultSize"), _int(e.result_size)))
    return out


def party_iri(party_id: str) -> ox.NamedNode:
    """A party as an IRI, the same form as trust/odrl.py: `urn:ishare:{id}` unless already one."""
    if ":" in party_id and party_id.split(":", 1)[0] in ("did", "urn", "http", "https"):
        return ox.NamedNode(party_id)
    return ox.NamedNode(f"urn:ishare:{quote(party_id, safe='.-_')}")


def dataset_iri(name: str, base_iri: str) -> ox.NamedNode:
    """A dataset name to its graph IRI; a full IRI (another node's dataset) passes through."""
    if "://" in name:
        return ox.NamedNode(name)
    return ox.NamedNode(f"{base_iri}/dataset/{name}")


def canonical_json(value: Any) -> bytes:
    """The bytes the entry hash covers: sorted keys, no whitespace, UTF-8."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _event_fields(event: AuditEvent) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "party": event.party,
        "target": event.target,
        "action": event.action,
        "policy_ids": list(event.policy_ids),
        "token_jti": event.token_jti,
        "query_hash": event.query_hash,
        "datasets": list(event.datasets),
        "result_size": event.result_size,
        "detail": event.detail,
    }


def _timestamp(when: dt.datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _entry(row: Row) -> AuditEntry:
    b = orjson.loads(row.body)
    return AuditEntry(
        seq=b["seq"],
        time=b["time"],
        kind=b["kind"],
        party=b["party"],
        target=b["target"],
        action=b["action"],
        policy_ids=tuple(b["policy_ids"]),
        token_jti=b["token_jti"],
        query_hash=b["query_hash"],
        datasets=tuple(b["datasets"]),
        result_size=b["result_size"],
        detail=b["detail"],
        prev=b["prev"],
        hash=row.hash,
    )


def _check_row(row: Row, expected_seq: int, prev: str) -> tuple[int, str] | None:
    if row.seq != expected_seq:
        return expected_seq, f"sequence gap: expected {expected_seq}, found {row.seq}"
    try:
        body = orjson.loads(row.body)
    except orjson.JSONDecodeError:
        return row.seq, "body is not JSON"
    if not isinstance(body, dict):
        return row.seq, "body is not an object"
    if canonical_json(body).decode("utf-8") != row.body:
        return row.seq, "body is not in canonical form"
    if hashlib.sha256(row.body.encode("utf-8")).hexdigest() != row.hash:
        return row.seq, "hash does not match the entry"
    if body.get("seq") != row.seq:
        return row.seq, "entry moved: body seq differs from its position"
    if body.get("prev") != prev:
        return row.seq, "chain broken: prev is not the previous entry's hash"
    for col in ("time", "kind", "party"):
        if body.get(col) != getattr(row, col):
            return row.seq, f"indexed column {col} differs from the hashed body"
    return None


def _check_checkpoint(
    seq: int,
    jws: str,
    hashes: dict[int, str],
    trusted: set[str],
    broken_at: int | None,
    node_party: str | None,
) -> str | None:
    try:
        head = orjson.loads(_b64url(jws.split(".")[0]))
        if head.get("typ") != CHECKPOINT_TYP:
            return "wrong typ"
        payload = orjson.loads(_b64url(jws.split(".")[1]))
        at = dt.datetime.fromtimestamp(payload["iat"], dt.UTC)
        verified = verify_jws(jws, trusted, at)
        payload = orjson.loads(verified.payload)
    except (TrustError, SignatureError) as exc:
        return f"signature: {exc}"
    except (ValueError, KeyError, TypeError, IndexError, orjson.JSONDecodeError):
        return "malformed checkpoint"
    if not isinstance(payload, dict) or payload.get("seq") != seq:
        return "checkpoint seq differs from its row"
    issuer = payload.get("iss")
    if not isinstance(issuer, str) or not certificate_matches_party(verified.leaf, issuer):
        return "checkpoint iss is not the signing certificate's party"
    if node_party is not None and issuer != node_party:
        return f"checkpoint signed by {issuer}, not by the node {node_party}"
    if broken_at is not None and seq >= broken_at:
        return None  # the entry is already reported broken
    if seq not in hashes:
        return "entry_missing"
    if payload.get("hash") != hashes[seq]:
        return "checkpoint hash differs from the chain"
    return None


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _int(value: int) -> ox.Literal:
    return ox.Literal(str(value), datatype=ox.NamedNode(XSD + "integer"))
