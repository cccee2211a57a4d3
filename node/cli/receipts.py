"""`dsgo audit receipts --for IRI`: the signed answers a derived dataset was built from, re-verified.

Why a command of its own: a receipt is evidence meant to outlive the exchange. This reads only
the node's receipt file and its trusted root certificates (no store, no network), so it works
while the node runs, on a copy of the data directory, and years later.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from node.config import load_settings

if TYPE_CHECKING:  # the signature checks are loaded by the command, not by the parser
    from trust.receipts import OfflineVerdict, Receipt, ReceiptStore

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_VERSION = re.compile(r"^(?P<base>.+)/dataset/(?P<name>[a-z0-9][a-z0-9_-]{0,62})(/version/\d+)?$")


class ReceiptsError(Exception):
    """No derived dataset by that IRI is known here; the message says what was looked for."""


def add_parser(
    actions: argparse._SubParsersAction, config_arg: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Register `receipts` under `dsgo audit`."""
    p = actions.add_parser(
        "receipts",
        help="the signed responses a derived dataset was built from, each verified offline",
    )
    config_arg(p)
    p.add_argument(
        "--for",
        dest="iri",
        required=True,
        metavar="IRI",
        help="a derived dataset ({base}/dataset/NAME: its newest version) or one version",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per receipt")
    p.set_defaults(func=cmd_audit_receipts)


def cmd_audit_receipts(args: argparse.Namespace) -> int:
    """Exit 0 when every signed receipt verifies, 1 when one does not, 2 on a usage error."""
    from node.exchange import RECEIPTS_FILE
    from node.runtime import trusted_fingerprints
    from trust.receipts import ReceiptStore, verify_offline

    settings = load_settings(args.config)
    path = settings.data_dir / RECEIPTS_FILE
    try:
        if not path.is_file():
            raise ReceiptsError(f"this node has kept no receipts ({path} does not exist)")
        store = ReceiptStore(path)
        version = resolve_version(store, args.iri)
    except ReceiptsError as exc:
        print(f"dsgo: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    roots = trusted_fingerprints(settings)
    receipts = store.for_version(version)
    verdicts = [(r, verify_offline(r, roots)) for r in receipts]
    if not args.json:
        print(f"{version}: built from {len(receipts)} received answer(s)")
    for receipt, verdict in verdicts:
        print(json.dumps(as_json(receipt, verdict)) if args.json else describe(receipt, verdict))
    failed = [v for r, v in verdicts if r.signed and not v.ok]
    unsigned = sum(1 for r, _ in verdicts if not r.signed)
    verified = len(verdicts) - len(failed) - unsigned
    if not args.json:
        print(
            f"{len(verdicts)} receipts: {verified} verified, {len(failed)} failed, "
            f"{unsigned} unsigned"
        )
    return EXIT_FAILED if failed else EXIT_OK


def resolve_version(store: ReceiptStore, iri: str) -> str:
    """The derived version an IRI names: itself, or a dataset's newest derived version."""
    m = _VERSION.match(iri.strip())
    if m is None:
        raise ReceiptsError(f"not a dataset or dataset version IRI: {iri[:200]}")
    if "/version/" in iri:
        if not store.has_version(iri):
            raise ReceiptsError(f"{iri} was not derived on this node")
        return iri
    latest = store.latest_version(m.group("name"))
    if latest is None or not latest.startswith(m.group("base") + "/"):
        raise ReceiptsError(f"{iri} is not a dataset derived on this node (dsgo derive)")
    return latest


def describe(receipt: Receipt, verdict: OfflineVerdict) -> str:
    """One line: OK with signer and time, UNSIGNED, or FAIL with the receipt and the check."""
    what = f"{receipt.method} {receipt.url}"
    if not receipt.signed:
        return f"UNSIGNED {receipt.id}: {what} from {receipt.peer} (digest {receipt.digest})"
    if verdict.ok:
        return (
            f"OK {receipt.id}: signed by {verdict.signer} at {verdict.signed_at}: {what} "
            f"-> HTTP {receipt.status}, {len(receipt.body)} bytes, {receipt.digest}"
        )
    return f"FAIL {receipt.id}: {what}: {verdict.check}: {verdict.description}"


def as_json(receipt: Receipt, verdict: OfflineVerdict) -> dict[str, object]:
    return {
        "receipt": receipt.id,
        "verified": verdict.ok,
        "signed": receipt.signed,
        "signer": verdict.signer,
        "signed_at": verdict.signed_at,
        "check": verdict.check or None,
        "reason": verdict.description or None,
        "method": receipt.method,
        "url": receipt.url,
        "status": receipt.status,
        "bytes": len(receipt.body),
        "digest": receipt.digest,
        "version": receipt.version,
    }
