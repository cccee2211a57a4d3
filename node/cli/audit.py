"""`dsgo audit verify|trace|tail`: the tamper-evident log, its witness, and provenance traces."""

from __future__ import annotations

import argparse
import json
from typing import Any

from node.cli._common import (
    EXIT_ERROR,
    _json_or_fail,
    _peers,
    _self_client,
    _settings,
)
from node.config import Settings


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from node.runtime import load_identity, trusted_fingerprints
    from node.state import audit_url
    from trust.audit import verify
    from trust.audit_store import open_audit_store

    settings = _settings(args)
    store = open_audit_store(audit_url(settings))
    roots = trusted_fingerprints(settings)
    party = load_identity(settings).party_id
    report = verify(store, roots, node_party=party)
    failed = not report.ok
    for line in report.describe():
        print(line)
    if args.witness:
        failed |= not _check_witness(settings, store, roots, party, args.witness)
    if not failed:
        print(
            f"audit log intact: {report.entries} entries, {report.checkpoints} signed checkpoints"
        )
        return 0
    return EXIT_ERROR


def _check_witness(settings: Settings, store: Any, roots: set[str], party: str, url: str) -> bool:
    """Compare the log with the heads the witness at `url` countersigned; print the outcome."""
    from trust.witness import check_against_witness, verify_witness_receipt

    peer = _peers(settings).resolve(url)
    resp = _self_client(settings).request(
        "GET", peer.base_url, f"/audit/witness/{party}", party_id=peer.party_id
    )
    body = _json_or_fail(resp)
    heads = []
    for item in body.get("heads", []):
        payload = verify_witness_receipt(item["receipt"], roots, peer.party_id, party)
        heads.append((int(payload["seq"]), str(payload["hash"])))
    problem = check_against_witness(store, heads)
    if problem is None:
        newest = max((s for s, _ in heads), default=0)
        print(f"witness {peer.party_id}: {len(heads)} countersigned heads hold (newest {newest})")
        return True
    what, (first, last) = problem
    print(f"audit log BROKEN against witness {peer.party_id}: {what} (entries {first}-{last})")
    return False


def cmd_audit_trace(args: argparse.Namespace) -> int:
    settings = _settings(args)
    client = _self_client(settings)
    peers = _peers(settings)
    hops: list[dict[str, Any]] = []
    todo = [(args.iri, 0)]
    seen: set[str] = set()
    while todo:
        iri, depth = todo.pop(0)
        if iri in seen or depth > args.depth:
            continue
        seen.add(iri)
        peer = peers.resolve(iri)  # only nodes the registry vouches for are asked
        hop = _json_or_fail(
            client.request(
                "GET", peer.base_url, "/audit/trace", party_id=peer.party_id, params={"iri": iri}
            )
        )
        hop["depth"] = depth
        hops.append(hop)
        for ds in hop.get("datasets", []):
            for derived in ds.get("derived_from") or []:
                todo.append((derived["iri"], depth + 1))
    if args.json:
        print(json.dumps(hops, indent=2))
        return 0
    for hop in hops:
        indent = "  " * hop["depth"]
        print(f"{indent}{hop['iri']}")
        print(f"{indent}  held by {hop['party']} at {hop['node']}")
        for ds in hop["datasets"]:
            print(f"{indent}  dataset {ds['dataset']}, version {ds.get('version')}")
            if ds.get("version"):
                act, src = ds["activity"], ds["source"]
                print(
                    f"{indent}    generated {ds['generated_at']} by {act['connector']} {act['connector_version']}"
                    f" for {ds.get('attributed_to')}"
                )
                print(f"{indent}    from {src['location']}")
                print(f"{indent}    source sha256 {src['sha256']}")
                for d in ds.get("derived_from") or []:
                    print(f"{indent}    derived from {d['iri']} (ETag {d['etag']})")
        print(f"{indent}  {hop['access_count']} access records on this node; latest:")
        for a in hop["accesses"][-5:]:
            print(
                f"{indent}    #{a['seq']} {a['time']} {a['kind']:<13} {a['party']} {a['target'] or ''}"
            )
    return 0


def cmd_audit_tail(args: argparse.Namespace) -> int:
    from trust.audit import AuditLog
    from trust.audit_store import open_audit_store

    settings = _settings(args)
    from node.state import audit_url

    log = AuditLog(open_audit_store(audit_url(settings)), None)
    entries = log.entries(None, None, None, None, limit=100_000)
    for e in entries[-args.n :]:
        line = {
            "seq": e.seq,
            "time": e.time,
            "kind": e.kind,
            "party": e.party,
            "target": e.target,
            "policies": list(e.policy_ids),
        }
        # what the entry says beyond that, when it says it
        optional = {
            "action": e.action,
            "token_jti": e.token_jti,
            "query_hash": e.query_hash,
            "datasets": list(e.datasets),
            "result_size": e.result_size,
            "detail": e.detail,
        }
        line.update({k: v for k, v in optional.items() if v not in (None, [], {})})
        print(json.dumps(line))
    return 0
