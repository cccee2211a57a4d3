"""Every core, and the peer ratio: the node on the supervised engine against the engine itself.

All figures come from one run on one store, with one client (wrk, Lua scripts that rotate over
the subjects and send the reader's bearer token):

- **peer ratio**: protected point queries (one subject, 9 rows) as a reader with a grant,
  rotating over >= 5,000 subjects; dsgo-node req/s divided by `oxigraph serve` req/s on the
  same store, runs alternating. For the engine backend the baseline is the node's own engine
  (engine.json names its port); for the embedded store, an `oxigraph serve` on a copy of the
  same data.
- **scale on cores**: the same mix (point SPARQL and resource GETs, half each) with
  server.workers = 2 against 1 on the engine backend, runs alternating.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from bench.bench_node import VENV_BIN, _dsgo, free_port, server

OWNER = "EU.EORI.NL000000101"
READER = "EU.EORI.NL000000202"
DATASET = "things"
PER_SUBJECT = 9
JSON_RESULTS = "application/sparql-results+json"
LUA = r"""
local lines = {}
for line in io.lines("@PATHS@") do lines[#lines + 1] = line end
local n = #lines
local i = 0
local token = "@TOKEN@"
local reqs = {}
function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
  i = math.random(n) - 1
end
request = function()
  i = i % n + 1
  local r = reqs[i]
  if r == nil then
    local tab = lines[i]:find("\t")
    local headers = {["Accept"] = lines[i]:sub(1, tab - 1)}
    if token ~= "" then headers["Authorization"] = "Bearer " .. token end
    r = wrk.format("GET", lines[i]:sub(tab + 1), headers)
    reqs[i] = r
  end
  return r
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"non2xx":%d,' ..
    '"socket_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def wrk_available() -> str | None:
    """The wrk executable (Debian package `wrk`), or None."""
    return shutil.which("wrk")


def wrk(
    port: int,
    lines: list[str],
    token: str,
    seconds: float,
    connections: int,
    work: Path,
) -> dict[str, Any]:
    """One wrk run over `lines` ("accept<TAB>path"); req/s, p50/p99 ms, non-2xx."""
    paths = work / f"paths-{port}-{len(lines)}.txt"
    paths.write_text("\n".join(lines) + "\n", encoding="utf-8")
    script = work / "rotate.lua"
    script.write_text(LUA.replace("@PATHS@", str(paths)).replace("@TOKEN@", token))
    exe = wrk_available()
    assert exe is not None
    proc = subprocess.run(
        [exe, "-t2", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script)]
        + [f"http://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    found = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed: {proc.stdout}{proc.stderr}")
    raw = json.loads(found[-1][len("RESULT ") :])
    return {
        "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "requests": raw["requests"],
        "non_2xx": raw["non2xx"],
        "socket_errors": raw["socket_errors"],
        "connections": connections,
    }


def _edit(config: Path, section: str, values: dict[str, Any]) -> None:
    """Set keys of one [section] in node.toml (plain values only, enough for this bench)."""
    raw = tomllib.loads(config.read_text(encoding="utf-8"))
    raw.setdefault(section, {}).update(values)
    out = []
    for name, table in raw.items():
        if isinstance(table, list):
            for item in table:
                out.append(f"[[{name}]]")
                out += [f"{k} = {json.dumps(v)}" for k, v in item.items()]
            continue
        out.append(f"[{name}]")
        out += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    config.write_text("\n".join(out) + "\n", encoding="utf-8")


def write_data(path: Path, base: str, subjects: int) -> list[str]:
    """`subjects` things with PER_SUBJECT triples each; their IRIs."""
    iris = [f"{base}/id/thing/{i}" for i in range(subjects)]
    with path.open("w", encoding="utf-8") as fh:
        for i, iri in enumerate(iris):
            fh.write(
                f"<{iri}> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <https://w3id.org/bot#Space> .\n"
            )
            for k in range(PER_SUBJECT - 1):
                fh.write(f'<{iri}> <https://example.org/p{k}> "value {i} {k}" .\n')
    return iris


def point_query(iri: str) -> str:
    return f"SELECT ?p ?o WHERE {{ <{iri}> ?p ?o }}"


@contextmanager
def node(config: Path, port: int, log: Path, workers: int, backend: str):
    """`dsgo serve` with the backend and worker count asked for, primed."""
    _edit(config, "store", {"backend": backend})
    _edit(config, "server", {"workers": workers})
    argv = [str(VENV_BIN / "dsgo"), "serve", "--config", str(config), "--port", str(port)]
    with server(argv, port, log) as proc:
        time.sleep(1.0 if workers > 1 else 0.2)  # let every worker finish starting
        yield proc


@contextmanager
def oxigraph(location: Path, log: Path):
    """A plain `oxigraph serve` on `location` (the baseline for the embedded store's runs)."""
    port = free_port()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [str(VENV_BIN / "oxigraph"), "serve", "--location", str(location)]
            + ["--bind", f"127.0.0.1:{port}"],
            stdout=out,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/query?query=ASK%7B%7D").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("oxigraph serve did not start")
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _token(reader_config: Path, base: str) -> str:
    from node.config import load_settings
    from node.runtime import load_identity, trusted_fingerprints
    from trust.client import TrustClient

    settings = load_settings(reader_config)
    client = TrustClient(load_identity(settings), trusted_fingerprints(settings))
    try:
        return client.get_token(base, OWNER, fresh=True)
    finally:
        client.close()


def _check(port: int, line: str, token: str, rows: int | None) -> None:
    """One request as wrk will send it: 200 (and the rows), so no run measures refusals."""
    accept, path = line.split("\t", 1)
    headers = {"Accept": accept, **({"Authorization": f"Bearer {token}"} if token else {})}
    resp = httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=10)
    if resp.status_code != 200:
        raise RuntimeError(f"{path[:80]}: HTTP {resp.status_code} {resp.text[:300]}")
    if rows is not None and len(resp.json()["results"]["bindings"]) != rows:
        raise RuntimeError(f"{path[:80]}: {len(resp.json()['results']['bindings'])} rows")


def run(
    subjects: int = 6_000,
    seconds: float = 8.0,
    connections: int = 16,
    rounds: int = 2,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """The whole comparison; see the module doc. Ratios use the best run of each side."""
    if wrk_available() is None:
        return {"error": "wrk not installed (Debian package wrk): bench_cores needs it"}
    out: dict[str, Any] = {"subjects": subjects, "triples": subjects * PER_SUBJECT}
    out["seconds_per_run"] = seconds
    with tempfile.TemporaryDirectory(prefix="dsgo-bench-cores-", dir=workdir) as tmp:
        work = Path(tmp)
        log = work / "servers.log"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        owner = work / "owner"
        _dsgo("init", owner, "--party-id", OWNER, "--name", "Owner", "--port", str(port))
        config = owner / "node.toml"
        reader = work / "reader"
        _dsgo(
            *("init", reader, "--party-id", READER, "--name", "Reader", "--port", str(free_port())),
            *("--ca", owner / "keys" / "dev-ca", "--registry-url", base, "--registry-id", OWNER),
        )
        _dsgo(
            *("registry", "add", "--config", config, "--party-id", READER, "--name", "Reader"),
            *("--cert", reader / "keys" / "node.cert.pem"),
        )
        _dsgo("policy", "grant", "--config", config, "--to", READER, "--dataset", DATASET)
        data = work / "things.nt"
        iris = write_data(data, base, subjects)
        _dsgo("load", data, "--dataset", DATASET, "--config", config)  # embedded store
        _edit(config, "store", {"backend": "engine"})
        _dsgo("load", data, "--dataset", DATASET, "--config", config)  # the engine's store
        random.Random(7).shuffle(iris)
        graph = f"{base}/dataset/{DATASET}"
        node_point = [
            f"{JSON_RESULTS}\t/sparql?query={quote(point_query(i), safe='')}" for i in iris
        ]
        raw_point = [
            f"{JSON_RESULTS}\t/query?query={quote(point_query(i), safe='')}"
            f"&default-graph-uri={quote(graph, safe='')}"
            for i in iris
        ]
        mix = [
            line
            for k, iri in enumerate(iris)
            for line in ([node_point[k]] if k % 2 == 0 else [f"text/turtle\t{iri[len(base) :]}"])
        ]
        engine_dir = owner / "data" / "engine"

        def measure(lines: list[str], p: int, token: str) -> dict[str, Any]:
            wrk(p, lines[:200], token, 1.0, connections, work)  # warm
            return wrk(p, lines, token, seconds, connections, work)

        peer: dict[str, dict[str, list[dict[str, Any]]]] = {}
        cores: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
        for _ in range(rounds):
            # embedded store, one worker (today's default), against oxigraph serve on a copy
            with node(config, port, log, 1, "oxigraph"):
                token = _token(reader / "node.toml", base)
                _check(port, node_point[0], token, PER_SUBJECT)
                copy = work / "copy"
                if not copy.exists():
                    shutil.copytree(engine_dir, copy)
                with oxigraph(copy, log) as raw_port:
                    _check(raw_port, raw_point[0], "", PER_SUBJECT)
                    side = peer.setdefault("embedded_1_worker", {"node": [], "oxigraph": []})
                    side["node"].append(measure(node_point, port, token))
                    side["oxigraph"].append(measure(raw_point, raw_port, ""))
            for workers in (1, 2):
                with node(config, port, log, workers, "engine"):
                    token = _token(reader / "node.toml", base)
                    info = json.loads((owner / "data" / "engine.json").read_text())
                    _check(port, node_point[0], token, PER_SUBJECT)
                    _check(port, mix[1], token, None)
                    _check(info["port"], raw_point[0], "", PER_SUBJECT)
                    cores[workers].append(measure(mix, port, token))
                    side = peer.setdefault(
                        f"engine_{workers}_workers", {"node": [], "oxigraph": []}
                    )
                    side["node"].append(measure(node_point, port, token))
                    side["oxigraph"].append(measure(raw_point, info["port"], ""))

    def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
        return max(runs, key=lambda r: r["rps"])

    out["peer"] = {}
    for name, side in peer.items():
        n, o = best(side["node"]), best(side["oxigraph"])
        out["peer"][name] = {
            "node_rps": n["rps"],
            "node_p99_ms": n["p99_ms"],
            "node_non_2xx": sum(r["non_2xx"] for r in side["node"]),
            "oxigraph_rps": o["rps"],
            "oxigraph_p99_ms": o["p99_ms"],
            "ratio": round(n["rps"] / o["rps"], 3),
            "runs": [r["rps"] for r in side["node"]],
            "baseline_runs": [r["rps"] for r in side["oxigraph"]],
        }
    one, two = best(cores[1]), best(cores[2])
    out["cores"] = {
        "mix": "point SPARQL (JSON) and resource GET (Turtle), half each, rotating",
        "workers_1_rps": one["rps"],
        "workers_1_p99_ms": one["p99_ms"],
        "workers_2_rps": two["rps"],
        "workers_2_p99_ms": two["p99_ms"],
        "non_2xx": sum(r["non_2xx"] for r in cores[1] + cores[2]),
        "ratio": round(two["rps"] / one["rps"], 3),
        "runs_1": [r["rps"] for r in cores[1]],
        "runs_2": [r["rps"] for r in cores[2]],
        "target_ratio": 1.6,
    }
    out["peer_target_ratio"] = 0.3
    out["cpus"] = os.cpu_count()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--subjects", type=int, default=6_000)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    result = run(args.subjects, args.seconds, args.connections, args.rounds)
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
