"""`dsgo policy grant|list|revoke`: the owner's delegation policies."""

from __future__ import annotations

import argparse
import json

from node.cli._common import (
    CliError,
    _expand,
    _settings,
    _timestamp,
)
from node.config import PARTY_ID, Settings


def _policies(settings: Settings):
    from node.state import open_policies

    return open_policies(settings)


def cmd_policy_grant(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not PARTY_ID.match(args.to):
        raise CliError(f"--to: {args.to!r} is not a party id")
    until = _timestamp(args.until) if args.until else None
    if args.federate:
        from trust.delegation import DSGO_FEDERATE, DSGO_SERVICE

        policy_id = _policies(settings).grant(
            args.to, type=DSGO_SERVICE, ids=args.ids or None, actions=[DSGO_FEDERATE], until=until
        )
        print(policy_id)
        return 0
    policy_id = _policies(settings).grant(
        args.to,
        dataset=args.dataset,
        type=_expand(args.type) if args.type else None,
        ids=[_expand(i) for i in args.ids] if args.ids else None,
        attributes=[_expand(a) for a in args.attributes] if args.attributes else None,
        until=until,
    )
    print(policy_id)
    return 0


def cmd_policy_list(args: argparse.Namespace) -> int:
    settings = _settings(args)
    policies = _policies(settings).list(subject=args.to, issuer=settings.party_id)
    if not policies:
        print("no policies")
    for p in policies:
        print(json.dumps({"id": p.id, **p.evidence}))
    return 0


def cmd_policy_revoke(args: argparse.Namespace) -> int:
    _policies(_settings(args)).revoke(args.policy_id)
    print(f"revoked {args.policy_id}")
    return 0
