"""Benchmark: audit appends/s on SQLite vs a no-op writer; sign/verify of a 100k-triple dataset."""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

import pyoxigraph as ox

from trust.audit import AuditEvent, AuditLog
from trust.audit_store import NullAuditStore, SqliteAuditStore
from trust.pki import create_dev_ca, issue_party_certificate
from trust.signing import sign_dataset, verify_dataset

BASE = "http://127.0.0.1:8101"


def run(appends: int = 5000, triples: int = 100_000) -> dict:
    """Numbers for the report: appends per second per writer and dataset signing times."""
    ca = create_dev_ca("Bench")
    identity = issue_party_certificate(ca, "EU.EORI.NL000000001", "Bench BV")
    result: dict = {"appends": appends, "triples": triples}
    with tempfile.TemporaryDirectory() as tmp:
        result["noop_appends_per_s"] = _appends_per_s(AuditLog(NullAuditStore()), appends)
        for sync in ("NORMAL", "FULL"):
            store = SqliteAuditStore(Path(tmp) / f"audit-{sync}.db", synchronous=sync)
            log = AuditLog(store, identity, checkpoint_every=1000, checkpoint_seconds=None)
            result[f"sqlite_{sync.lower()}_appends_per_s"] = _appends_per_s(log, appends)
            store.close()
    data = dataset(triples)
    t0 = time.perf_counter()
    jws = sign_dataset(data, identity)
    t1 = time.perf_counter()
    party = verify_dataset(data, jws, {ca.root_fingerprint}, dt.datetime.now(dt.UTC))
    t2 = time.perf_counter()
    assert party == identity.party_id
    result["sign_s"] = round(t1 - t0, 3)
    result["verify_s"] = round(t2 - t1, 3)
    return result


def dataset(n: int) -> list[ox.Triple]:
    """n triples in the shape connectors emit: spaces with properties, 1 in 5 via a blank node."""
    ex = "https://w3id.org/props#"
    out: list[ox.Triple] = []
    i = 0
    while len(out) < n:
        space = ox.NamedNode(f"{BASE}/id/space/{i:08d}")
        out.append(ox.Triple(space, ox.NamedNode(ex + "name"), ox.Literal(f"Room {i}")))
        out.append(ox.Triple(space, ox.NamedNode(ex + "level"), ox.Literal(str(i % 7))))
        out.append(ox.Triple(space, ox.NamedNode(ex + "volume"), ox.Literal(f"{i * 1.5:.1f}")))
        q = ox.BlankNode(f"q{i}")
        out.append(ox.Triple(space, ox.NamedNode(ex + "area"), q))
        out.append(ox.Triple(q, ox.NamedNode(ex + "value"), ox.Literal(f"{i % 97}.5")))
        i += 1
    return out[:n]


def _appends_per_s(log: AuditLog, n: int) -> float:
    event = AuditEvent(
        kind="permit",
        party="EU.EORI.NL000000002",
        target=f"{BASE}/id/space/1",
        action="read",
        policy_ids=("p1",),
        token_jti="jti",
        query_hash="0" * 64,
        datasets=("duplex",),
        result_size=12,
    )
    start = time.perf_counter()
    for _ in range(n):
        log.append(event)
    return round(n / (time.perf_counter() - start), 1)


if __name__ == "__main__":
    sys.stdout.write(json.dumps(run(), indent=2) + "\n")
