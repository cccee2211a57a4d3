"""Benchmark: the per-request trust-state operations on shared PostgreSQL vs local SQLite.

What a request costs in state when a party runs on several hosts: the jti replay check (once
per token request), the policy version read (once per access decision) and a grant. Both
backends are measured in the same run on the same machine, against a PostgreSQL started here
with initdb/pg_ctl on 127.0.0.1 (skipped without the binaries or root); ratios are PostgreSQL
ops/s over SQLite ops/s. Loopback TCP per statement is the cost the sharing buys.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from trust.pg import PgSettings, PgState
from trust.policy_store import PolicyStore
from trust.policy_store_pg import PostgresPolicyStore
from trust.replay import ReplayCache
from trust.replay_pg import PostgresReplayCache

OWNER = "EU.EORI.NL000000001"
BASE = "http://127.0.0.1:8101"


def _per_s(fn: Callable[[int], object], n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start)


def _measure(replay, policies, n: int) -> dict[str, float]:
    tag = uuid.uuid4().hex
    return {
        "replay_checks_per_s": round(
            _per_s(lambda i: replay.check_and_store("token", OWNER, f"{tag}{i}", exp=1e12), n), 1
        ),
        "policy_version_reads_per_s": round(_per_s(lambda i: policies.version(), n), 1),
        "grants_per_s": round(
            _per_s(lambda i: policies.grant(f"EU.EORI.NL{i % 1000:09d}", dataset="d"), n // 10), 1
        ),
    }


def run(n: int = 3000) -> dict:
    """SQLite and PostgreSQL ops/s for each state operation, and their ratios."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests import pgproc

    reason = pgproc.available()
    if reason:
        return {"skipped": reason}
    result: dict = {"operations": n}
    with tempfile.TemporaryDirectory() as tmp, pgproc.postgres() as pg:
        sqlite = _measure(
            ReplayCache(Path(tmp) / "replay.sqlite"),
            PolicyStore(Path(tmp) / "policies.sqlite", issuer=OWNER, base_iri=BASE),
            n,
        )
        state = PgState(PgSettings(pg.url))
        postgres = _measure(
            PostgresReplayCache(state),
            PostgresPolicyStore(state, issuer=OWNER, base_iri=BASE),
            n,
        )
    result["sqlite"], result["postgresql"] = sqlite, postgres
    result["ratios_postgresql_over_sqlite"] = {k: round(postgres[k] / sqlite[k], 3) for k in sqlite}
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
