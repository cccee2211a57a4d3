"""Benchmark: enforcement cost for a caller in a register of 1,000 policies vs a caller holding
one wildcard Permit in an otherwise empty register (target ratio <= 1.2).

Per request: scope_for + a scoped SPARQL query + filtering one resource description, i.e. what
the node does for every GET /id/... and /sparql. Run: `python -m bench.bench_enforcement`.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from node.enforcement import Enforcer
from node.store import MemoryStore
from trust.policy_store import PolicyStore

BASE = "http://127.0.0.1:8101"
OWNER = "EU.EORI.NL000000003"
CALLER = "EU.EORI.NL000000001"
BOT = "https://w3id.org/bot#"
PROPS = "https://w3id.org/props#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
DATASETS = ("ifc", "bag", "measurements")
QUERY = f"SELECT ?s ?name WHERE {{ ?s a <{BOT}Space> ; <{PROPS}name> ?name }} LIMIT 50"


def run(
    policies: int = 1000, requests: int = 300, rounds: int = 5, resources: int = 500
) -> dict[str, Any]:
    """Time per request for both registers; returns the medians and their ratio."""
    store = MemoryStore(_dataset(resources))
    subject = f"{BASE}/id/space/7"
    quads = list(store.quads(subject=subject, graphs=list(_graphs())))
    with tempfile.TemporaryDirectory() as tmp:
        big = PolicyStore(Path(tmp) / "big.db", issuer=OWNER, base_iri=BASE)
        _fill(big, policies - 1)
        big.grant(CALLER, dataset="*")
        small = PolicyStore(Path(tmp) / "small.db", issuer=OWNER, base_iri=BASE)
        small.grant(CALLER, dataset="*")
        enforcers = {
            "register": Enforcer(big, node_party_id=OWNER, base_iri=BASE),
            "single": Enforcer(small, node_party_id=OWNER, base_iri=BASE),
        }
        medians: dict[str, list[float]] = {name: [] for name in enforcers}
        for _ in range(rounds):
            for name, enforcer in enforcers.items():
                medians[name].append(_time(enforcer, store, quads, subject, requests))
        cold = _cold_scope(big, enforcers["register"])
        big.close()
        small.close()
    register = statistics.median(medians["register"])
    single = statistics.median(medians["single"])
    ratio = register / single
    return {
        "policies_in_register": policies,
        "requests_per_round": requests,
        "rounds": rounds,
        "per_request_us_register": round(register * 1e6, 1),
        "per_request_us_single": round(single * 1e6, 1),
        "ratio": round(ratio, 3),
        "target_ratio": 1.2,
        "within_target": ratio <= 1.2,
        "cold_scope_for_us_register": round(cold * 1e6, 1),
    }


def _time(enforcer: Enforcer, store: MemoryStore, quads, subject: str, n: int) -> float:
    """Mean seconds per request: scope, scoped query (results consumed), description filter."""
    enforcer.query(store, CALLER, QUERY, data_version=1)  # warm caches
    start = time.perf_counter()
    for _ in range(n):
        enforcer.scope_for(CALLER)
        list(enforcer.query(store, CALLER, QUERY, data_version=1))
        enforcer.permitted_triples(CALLER, quads, subject, list(_graphs()))
    return (time.perf_counter() - start) / n


def _cold_scope(policies: PolicyStore, enforcer: Enforcer) -> float:
    """scope_for right after a policy change (cache miss) in the big register."""
    times = []
    for i in range(20):
        policies.grant(f"EU.EORI.NL9{i:08d}", dataset="bag")
        start = time.perf_counter()
        enforcer.scope_for(CALLER)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _fill(policies: PolicyStore, n: int) -> None:
    """n policies for 250 other parties: datasets, classes, ids, attributes, deny rules."""
    for i in range(n):
        party = f"EU.EORI.NL{i % 250:09d}"
        if party == CALLER:
            party = "EU.EORI.NL999999999"
        kind = i % 4
        if kind == 0:
            policies.grant(party, dataset=DATASETS[i % 3])
        elif kind == 1:
            policies.grant(party, type=f"{BOT}Space", attributes=[f"{PROPS}name"])
        elif kind == 2:
            policies.grant(party, type=f"{BOT}Building", ids=[f"{BASE}/id/building/{i}"])
        else:
            policies.grant(
                party,
                dataset="*",
                deny=[{"resource": {"type": f"{BOT}Space", "identifiers": ["*"]}}],
            )


def _graphs():
    return (f"{BASE}/dataset/{name}" for name in DATASETS)


def _dataset(resources: int) -> ox.Store:
    store = ox.Store()
    quads = []
    for d, graph in enumerate(_graphs()):
        g = ox.NamedNode(graph)
        for i in range(resources):
            s = ox.NamedNode(f"{BASE}/id/space/{i}")
            cls = "Space" if d == 0 else "Zone"
            quads.append(ox.Quad(s, ox.NamedNode(RDF_TYPE), ox.NamedNode(f"{BOT}{cls}"), g))
            quads.append(ox.Quad(s, ox.NamedNode(f"{PROPS}name"), ox.Literal(f"room {i}"), g))
            quads.append(ox.Quad(s, ox.NamedNode(f"{PROPS}area"), ox.Literal(str(i % 40)), g))
    store.extend(quads)
    return store


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
