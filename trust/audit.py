"""Append-only, hash-chained audit log with signed checkpoints; fails closed.

Entry hash = SHA-256 of the entry's canonical JSON (orjson, sorted keys, no whitespace, UTF-8;
for the ASCII keys and JSON types used this equals RFC 8785 JCS), which includes `prev`, the
previous entry's hash (64 zeros for entry 1). Every `checkpoint_every` entries and/or every
`checkpoint_seconds` a checkpoint JWS (RS256, x5c) signed by the node commits to (seq, hash).
`append()` raises AuditUnavailable when the entry cannot be written: the caller must then not
perform the action.

Group commit: inside `with log.deferred() as pending:` (async code on the event loop),
`append()` hands the entry to the log's writer thread and returns None; `await pending.wait()`
returns once every entry of the scope is committed and raises AuditUnavailable if any could not
be (the caller then does not answer). The writer commits whatever concurrent requests handed it
in one transaction (a failed commit fails every request of that batch), so appends under load
cost one commit per batch instead of one per request. Outside such a scope `append()` writes
synchronously, as before; stores without `append_many` (the no-op store) always do.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import datetime as dt
import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyoxigraph as ox

from trust.audit_store import GENESIS_HASH, AuditStore, AuditStoreError, Row
from trust.errors import TrustError
from trust.pki import PartyIdentity, certificate_matches_party
from trust.pki import party_iri as pki_party_iri
from trust.signing import SignatureError, sign_jws, verify_jws
from vocab.iris import dataset_iri
from vocab.namespaces import DSGO, PROV, RDF_TYPE, XSD

KINDS = frozenset(
    {"token_issued", "token_refused", "permit", "deny", "query", "federated_call", "admin"}
    | {"receipt", "receipt_refused"}  # signed exchanges kept / refused (node/exchange.py)
)
CHECKPOINT_TYP = "dsgo-audit-checkpoint+jws"
log = logging.getLogger("dsgo.audit")
VERIFY_PAGE = 10_000
_TYPE = ox.NamedNode(RDF_TYPE)


class AuditUnavailable(TrustError):
    """The audit entry could not be written; the audited action must not happen."""

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
    affected: tuple[int, int] | None = None  # first and last seq of the entries concerned

    def describe(self) -> list[str]:
        """What is wrong, one line each, naming the entries affected."""
        lines = []
        span = f" (entries {self.affected[0]}-{self.affected[1]})" if self.affected else ""
        if self.first_broken is not None:
            lines.append(f"audit log BROKEN at entry {self.first_broken}: {self.reason}{span}")
        if self.broken_checkpoint is not None:
            lines.append(
                f"checkpoint {self.broken_checkpoint} invalid: {self.checkpoint_reason}"
                + ("" if self.first_broken is not None else span)
            )
        return lines


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
        self._last_ck_seq = 0
        self._ck_lock = threading.Lock()
        self._keeper: threading.Thread | None = None
        self._stop = threading.Event()
        self._batching = hasattr(store, "append_many")
        self._writer: _GroupWriter | None = None
        self._writer_lock = threading.Lock()

    @staticmethod
    def deferred() -> DeferredAudit:
        """A scope whose appends are group-committed; `await scope.wait()` before answering."""
        return DeferredAudit()

    def _writer_for_process(self) -> _GroupWriter:
        writer = self._writer
        if writer is None or writer.pid != os.getpid():
            with self._writer_lock:
                writer = self._writer
                if writer is None or writer.pid != os.getpid():
                    writer = self._writer = _GroupWriter(self._commit_batch)
        return writer

    def _commit_batch(self, batch: list[_Pending]) -> None:
        """Writer thread: one transaction for the batch, its checkpoints, then wake the callers."""
        error: AuditUnavailable | None = None
        rows: list[Row] = []
        try:
            rows = self.store.append_many([p.build for p in batch])  # type: ignore[attr-defined]
        except AuditStoreError as exc:
            error = AuditUnavailable("audit_write", str(exc))
        except Exception as exc:  # noqa: BLE001 - fail closed on anything unexpected
            error = AuditUnavailable("audit_write", f"{type(exc).__name__}: {exc}")
        if error is None:
            try:
                self._checkpoints_for(rows)
            except AuditUnavailable as exc:
                error = exc
            except Exception as exc:  # noqa: BLE001
                error = AuditUnavailable("audit_checkpoint", f"{type(exc).__name__}: {exc}")
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, Row | None]]] = {}
        for i, pending in enumerate(batch):
            by_loop.setdefault(pending.loop, []).append(
                (pending.future, rows[i] if error is None else None)
            )
        for loop, results in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, results, error)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass

    def append_all(self, events: Sequence[AuditEvent]) -> None:
        """Write several entries in one transaction (when the store can); AuditUnavailable if not.

        For one request's entries written together, outside the event loop (no deferred scope).
        """
        if not self._batching:
            for event in events:
                self.append(event)
            return
        builds = []
        for event in events:
            if event.kind not in KINDS:
                raise ValueError(f"unknown audit kind {event.kind!r}")
            stamp = _timestamp(self._clock())
            builds.append(_row_builder(_event_fields(event), stamp, event.kind))
        try:
            rows = self.store.append_many(builds)  # type: ignore[attr-defined]
        except AuditStoreError as exc:
            raise AuditUnavailable("audit_write", str(exc)) from exc
        except Exception as exc:  # noqa: BLE001 - fail closed on anything unexpected
            raise AuditUnavailable("audit_write", f"{type(exc).__name__}: {exc}") from exc
        self._checkpoints_for(rows)

    def _checkpoints_for(self, rows: Sequence[Row]) -> None:
        """Sign the checkpoints a batch of new rows makes due (every N entries, or by time)."""
        if self.signer is None or not rows:
            return
        due = [r for r in rows if self.checkpoint_every and r.seq % self.checkpoint_every == 0]
        for row in due:
            self._sign_checkpoint(row.seq, row.hash)
        if not due and self._checkpoint_due(rows[-1].seq):
            self._sign_checkpoint(rows[-1].seq, rows[-1].hash)

    def append(self, event: AuditEvent) -> AuditEntry | None:
        """Write one entry (chained to the previous one); raise AuditUnavailable on any failure.

        Inside a `deferred()` scope (and with a store that has `append_many`) the entry is queued
        for the writer thread and None is returned: awaiting the scope confirms it.
        """
        if event.kind not in KINDS:
            raise ValueError(f"unknown audit kind {event.kind!r}")
        fields = _event_fields(event)
        stamp = _timestamp(self._clock())
        scope = _DEFERRED.get()
        if scope is not None and self._batching:
            future = scope.loop.create_future()
            self._writer_for_process().submit(
                _Pending(_row_builder(fields, stamp, event.kind), scope.loop, future)
            )
            scope.futures.append(future)
            return None

        chained: list[str] = []
        build_row = _row_builder(fields, stamp, event.kind)

        def build(seq: int, prev: str) -> Row:
            chained[:] = [prev]
            return build_row(seq, prev)

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

    def start_keeper(self, push: Callable[[str], None] | None = None) -> None:
        """A daemon thread that signs a checkpoint of the head within `checkpoint_seconds` of
        the last write (so the newest entries are never uncovered for long), and hands each new
        checkpoint to `push` (a witness), off the request path."""
        if self.signer is None or self._keeper is not None or not self.checkpoint_seconds:
            return
        period = max(0.05, float(self.checkpoint_seconds))

        def run() -> None:
            pushed = None
            while not self._stop.wait(period):
                try:
                    head = self.store.head()
                    if head is not None and head.seq > self._last_ck_seq:
                        self._sign_checkpoint(head.seq, head.hash)
                    if push is not None:
                        cps = self.store.checkpoints()
                        if cps and cps[-1][0] != pushed:
                            push(cps[-1][1])
                            pushed = cps[-1][0]
                except Exception as exc:  # noqa: BLE001 - keep keeping; say why
                    log.warning("audit checkpoint keeper: %s", exc)

        self._keeper = threading.Thread(target=run, name="dsgo-audit-checkpoints", daemon=True)
        self._keeper.start()

    def stop_keeper(self) -> None:
        self._stop.set()

    def _sign_checkpoint(self, seq: int, entry_hash: str) -> None:
        assert self.signer is not None
        with self._ck_lock:
            if seq <= self._last_ck_seq and seq % (self.checkpoint_every or seq + 1):
                return
            self._last_checkpoint = time.monotonic()
            self._last_ck_seq = max(self._last_ck_seq, seq)
            jws = sign_checkpoint(seq, entry_hash, self.signer, self._clock())
            try:
                self.store.add_checkpoint(seq, jws)
            except AuditStoreError as exc:
                raise AuditUnavailable("audit_checkpoint", str(exc)) from exc


def _row_builder(fields: dict[str, Any], stamp: str, kind: str) -> Callable[[int, str], Row]:
    """The store's callback: the row for this event at (seq, prev), hashed over canonical JSON."""

    def build(seq: int, prev: str) -> Row:
        body = canonical_json({**fields, "seq": seq, "time": stamp, "prev": prev})
        digest = hashlib.sha256(body).hexdigest()
        return Row(seq, stamp, kind, fields["party"], digest, body.decode("utf-8"))

    return build


@dataclass
class _Pending:
    build: Callable[[int, str], Row]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future


class DeferredAudit:
    """Appends made in this scope (on the event loop) are group-committed; await `wait()`."""

    def __init__(self) -> None:
        self.futures: list[asyncio.Future] = []
        self._token: contextvars.Token | None = None

    def __enter__(self) -> DeferredAudit:
        self.loop = asyncio.get_running_loop()
        self._token = _DEFERRED.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _DEFERRED.reset(self._token)
            self._token = None

    async def wait(self) -> None:
        """Return once every entry is committed; AuditUnavailable if any was not."""
        futures, self.futures = self.futures, []
        if not futures:
            return
        if len(futures) == 1:
            await futures[0]
            return
        results = await asyncio.gather(*futures, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result


_DEFERRED: contextvars.ContextVar[DeferredAudit | None] = contextvars.ContextVar(
    "dsgo_audit_deferred", default=None
)
_MAX_BATCH = 64


def _settle(
    results: list[tuple[asyncio.Future, Row | None]], error: AuditUnavailable | None
) -> None:
    for future, row in results:
        if future.done():  # the request was cancelled meanwhile
            continue
        if error is not None:  # one exception object per request (tracebacks are per raise)
            future.set_exception(AuditUnavailable(error.check, error.description))
        else:
            future.set_result(row)


class _GroupWriter:
    """One daemon thread per process: takes every queued entry and commits them together."""

    def __init__(self, commit: Callable[[list[_Pending]], None]) -> None:
        self.pid = os.getpid()
        self._commit = commit
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="dsgo-audit-writer", daemon=True)
        self._thread.start()

    def submit(self, pending: _Pending) -> None:
        self._queue.put(pending)

    def _run(self) -> None:
        take = self._queue.get
        while True:
            batch = [take()]  # wait for the first entry, then take what else is waiting
            while len(batch) < _MAX_BATCH:
                try:
                    batch.append(take(block=False))
                except queue.Empty:
                    break
            try:
                self._commit(batch)
            except Exception as exc:  # noqa: BLE001 - never leave a caller waiting
                error = AuditUnavailable("audit_write", f"{type(exc).__name__}: {exc}")
                for pending in batch:
                    try:
                        pending.loop.call_soon_threadsafe(_settle, [(pending.future, None)], error)
                    except RuntimeError:
                        pass


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
    affected: tuple[int, int] | None = None
    good = 0  # the last checkpoint that held: a rewrite lies after it
    for seq, jws in cps:
        why = _check_checkpoint(seq, jws, hashes, trusted, first_broken, node_party)
        if why is not None:
            broken_cp, cp_reason = seq, why
            if why == "entry_missing":
                affected = (expected, max(s for s, _ in cps))
            elif why == "checkpoint hash differs from the chain":
                affected = (good + 1, seq)
                cp_reason = "rewritten: the chain differs from the one this checkpoint signed"
            break
        good = seq
    if broken_cp is None and checkpoint_every:
        have = {seq for seq, _ in cps}
        limit = (first_broken or expected) - 1
        missing = [s for s in range(checkpoint_every, limit + 1, checkpoint_every) if s not in have]
        if missing:
            broken_cp, cp_reason = missing[0], "checkpoint missing"
    if first_broken is None and broken_cp is not None and cp_reason == "entry_missing":
        first_broken, reason = expected, "truncated: a checkpoint covers entries that are gone"
    ok = first_broken is None and broken_cp is None
    return VerifyReport(
        ok, count, len(cps), first_broken, reason, broken_cp, cp_reason, prev, affected
    )


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
        out.append(ox.Triple(act, _TYPE, ox.NamedNode(PROV + "Activity")))
        out.append(ox.Triple(act, _TYPE, ox.NamedNode(DSGO + "AuditEntry")))
        when = ox.Literal(e.time, datatype=ox.NamedNode(XSD + "dateTime"))
        out.append(ox.Triple(act, ox.NamedNode(PROV + "startedAtTime"), when))
        out.append(ox.Triple(act, ox.NamedNode(DSGO + "auditKind"), ox.Literal(e.kind)))
        out.append(ox.Triple(act, ox.NamedNode(DSGO + "auditSeq"), _int(e.seq)))
        out.append(ox.Triple(act, ox.NamedNode(DSGO + "entryHash"), ox.Literal(e.hash)))
        if e.party:
            agent = party_iri(e.party)
            out.append(ox.Triple(act, ox.NamedNode(PROV + "wasAssociatedWith"), agent))
            out.append(ox.Triple(agent, _TYPE, ox.NamedNode(PROV + "Agent")))
            out.append(ox.Triple(agent, ox.NamedNode(DSGO + "partyId"), ox.Literal(e.party)))
        for name in e.datasets:
            out.append(ox.Triple(act, ox.NamedNode(PROV + "used"), _dataset_node(name, base_iri)))
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
    """A party as an RDF node (the rule is trust.pki.party_iri)."""
    return ox.NamedNode(pki_party_iri(party_id))


def _dataset_node(name: str, base_iri: str) -> ox.NamedNode:
    """A dataset name to its graph IRI; a full IRI (another node's dataset) passes through."""
    if "://" in name:
        return ox.NamedNode(name)
    return ox.NamedNode(dataset_iri(base_iri, name))


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
    if when.tzinfo is dt.UTC:  # the usual clock: "+00:00" becomes "Z"
        return when.isoformat(timespec="microseconds")[:-6] + "Z"
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
