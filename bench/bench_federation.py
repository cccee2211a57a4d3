"""Benchmark: a federated SERVICE query over a real `oxigraph serve` vs one merged in-process store."""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pyoxigraph as ox

from node.sparql.federation import evaluate_federated, http_fetch

OXIGRAPH = Path(sys.executable).parent / "oxigraph"
PREFIXES = """PREFIX sosa: <http://www.w3.org/ns/sosa/>
PREFIX qudt: <http://qudt.org/schema/qudt/>
PREFIX props: <https://w3id.org/props#>
PREFIX bot: <https://w3id.org/bot#>
PREFIX ex: <http://127.0.0.1:8201/id/>
"""
QUERY = """SELECT ?space ?area (AVG(?co2) AS ?avg) WHERE {
  ?obs sosa:hasFeatureOfInterest ?space ; sosa:observedProperty ?prop ;
       sosa:hasResult/qudt:numericValue ?co2 .
  SERVICE <ENDPOINT> { ?space a bot:Space ; props:area/qudt:numericValue ?area }
} GROUP BY ?space ?area"""


def run(
    spaces: int = 5000,
    measured: int = 500,
    observations: int = 24,
    batch_size: int = 100,
    repeat: int = 7,
) -> dict:
    """Median latency of the federated query and of the same query on one merged store, and HTTP requests."""
    building, sensors = building_ttl(spaces), measurements_ttl(measured, spaces, observations)
    local = _store(sensors)
    merged = _store(sensors + building)
    with tempfile.TemporaryDirectory() as tmp, _Server(Path(tmp), building) as server:
        federated = PREFIXES + QUERY.replace("ENDPOINT", server.endpoint)
        single = PREFIXES + QUERY.replace("SERVICE <ENDPOINT>", "")
        with httpx.Client() as client:
            fetch = http_fetch(client)
            answer = evaluate_federated(
                federated, local=local.query, fetch=fetch, batch_size=batch_size
            )
            same = _rows(answer.result) == _rows(merged.query(single))
            report = answer.sources[0]
            fed_ms = _median_ms(
                lambda: _rows(
                    evaluate_federated(
                        federated, local=local.query, fetch=fetch, batch_size=batch_size
                    ).result
                ),
                repeat,
            )
            pull_all = PREFIXES + (
                f"SELECT * WHERE {{ SERVICE <{server.endpoint}> "
                "{ ?space a bot:Space ; props:area/qudt:numericValue ?area } }"
            )
            pull_ms = _median_ms(
                lambda: evaluate_federated(pull_all, local=local.query, fetch=fetch).sources, repeat
            )
    merged_ms = _median_ms(lambda: _rows(merged.query(single)), repeat)
    return {
        "remote_spaces": spaces,
        "local_observations": measured * observations,
        "joined_spaces": report.bindings_sent,
        "batch_size": batch_size,
        "http_requests": report.requests,
        "remote_rows": report.rows,
        "results_equal": same,
        "federated_ms": round(fed_ms, 2),
        "merged_in_process_ms": round(merged_ms, 2),
        "federated_over_merged": round(fed_ms / merged_ms, 1),
        "pull_whole_model_ms": round(pull_ms, 2),
    }


def building_ttl(spaces: int) -> str:
    """A building model: typed spaces, each with an area quantity."""
    lines = [_turtle_prefixes()]
    for n in range(spaces):
        lines.append(
            f"ex:space{n} a bot:Space ; props:area [ qudt:numericValue {12 + n % 40}.25 ] ."
        )
    return "\n".join(lines)


def measurements_ttl(measured: int, spaces: int, observations: int) -> str:
    """CO2 observations for `measured` spaces spread over the model."""
    lines = [_turtle_prefixes()]
    step = max(1, spaces // measured)
    for n in range(measured):
        space = n * step % spaces
        for k in range(observations):
            lines.append(
                f"ex:obs{n}_{k} sosa:hasFeatureOfInterest ex:space{space} ;"
                f" sosa:observedProperty ex:co2 ;"
                f" sosa:hasResult [ qudt:numericValue {400 + (n * 31 + k * 17) % 900} ] ."
            )
    return "\n".join(lines)


def _turtle_prefixes() -> str:
    return "\n".join(
        line.replace("PREFIX", "@prefix") + " ." for line in PREFIXES.strip().splitlines()
    )


def _store(turtle: str) -> ox.Store:
    store = ox.Store()
    store.load(turtle, format=ox.RdfFormat.TURTLE)
    return store


def _rows(result) -> Counter:
    width = len(result.variables)
    return Counter(tuple(str(s[i]) for i in range(width)) for s in result)


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm caches and connections
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


class _Server:
    """`oxigraph serve` on a free 127.0.0.1 port over a directory loaded with one Turtle file."""

    def __init__(self, tmp: Path, turtle: str):
        self.tmp = tmp
        self.turtle = turtle

    def __enter__(self) -> _Server:
        data = self.tmp / "building.ttl"
        data.write_text(self.turtle)
        db = str(self.tmp / "db")
        subprocess.run(
            [OXIGRAPH, "load", "--location", db, "--file", str(data)],
            check=True,
            capture_output=True,
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [OXIGRAPH, "serve", "--location", db, "--bind", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.endpoint = f"http://127.0.0.1:{port}/query"
        for _ in range(200):
            try:
                httpx.get(self.endpoint, params={"query": "ASK {}"}, timeout=1).raise_for_status()
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("oxigraph serve did not start")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


if __name__ == "__main__":
    sys.stdout.write(json.dumps(run(), indent=2) + "\n")
