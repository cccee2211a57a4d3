"""Benchmark: the federated query between two real nodes with JAdES-signed exchanges vs without.

Both runs use the same two `dsgo serve` processes' data (a builder that is also the registry, a
renovator with sensor readings) and the same query: the renovator joins its readings with the
builder's spaces through SERVICE. "signed": both nodes sign their requests and answers, each
side verifies and keeps receipts (the default). "unsigned": `exchange.sign = false` on both
(the renovator still records each unsigned answer as such). The ratio signed / unsigned is the
cost of non-repudiation, measured in the same run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.bench_federation import building_ttl, measurements_ttl

ROOT = Path(__file__).resolve().parent.parent
DSGO = [sys.executable, "-m", "node.cli"]
BUILDER = "EU.EORI.NL000000101"
RENOVATOR = "EU.EORI.NL000000102"
RESULTS_JSON = "application/sparql-results+json"
TARGET_RATIO = 1.5  # signing, verifying and keeping every answer may cost at most half again
QUERY = """PREFIX sosa: <http://www.w3.org/ns/sosa/> PREFIX qudt: <http://qudt.org/schema/qudt/>
PREFIX props: <https://w3id.org/props#> PREFIX bot: <https://w3id.org/bot#>
SELECT ?space ?area (AVG(?co2) AS ?avg) WHERE {
  ?obs sosa:hasFeatureOfInterest ?space ; sosa:observedProperty ?prop ;
       sosa:hasResult/qudt:numericValue ?co2 .
  SERVICE <ENDPOINT> { ?space a bot:Space ; props:area/qudt:numericValue ?area }
} GROUP BY ?space ?area"""


def run(spaces: int = 2000, measured: int = 300, observations: int = 6, repeat: int = 9) -> dict:
    """Median latency of the federated query with and without signed exchanges, and the ratio."""
    work = Path(tempfile.mkdtemp(prefix="bench-exchange-"))
    try:
        ports = {BUILDER: _free_port(), RENOVATOR: _free_port()}
        builder, renovator = _setup(work, ports, spaces, measured, observations)
        endpoint = f"http://127.0.0.1:{ports[BUILDER]}/sparql"
        query = QUERY.replace("ENDPOINT", endpoint)
        out: dict = {
            "remote_spaces": spaces,
            "local_observations": measured * observations,
            "repeat": repeat,
        }
        timings: dict[str, list[float]] = {"unsigned": [], "signed": []}
        # Alternating phases (restarts in between), so drift in the machine's load hits both.
        for phase, mode in enumerate(("unsigned", "signed", "unsigned", "signed")):
            env = {"DSGO_EXCHANGE_SIGN": "true" if mode == "signed" else "false"}
            with _node(builder, ports[BUILDER], env, work / f"builder-{phase}.log"):
                with _node(renovator, ports[RENOVATOR], env, work / f"renovator-{phase}.log"):
                    before = _receipts(renovator)
                    ms, rows = _measure(renovator, ports[RENOVATOR], query, repeat)
                    kept = _receipts(renovator) - before
            timings[mode].append(ms)
            out[mode] = {
                "median_ms_per_phase": [round(t, 2) for t in timings[mode]],
                "rows": rows,
                "verified_receipts_per_query": round(kept / (repeat + 1), 2),
            }
        signed, unsigned = statistics.mean(timings["signed"]), statistics.mean(timings["unsigned"])
        out["ratio_signed_over_unsigned"] = round(signed / unsigned, 3)
        out["results_equal"] = out["signed"]["rows"] == out["unsigned"]["rows"]
        per_answer = _per_answer_ms(work)
        out["per_answer_in_process_ms"] = per_answer
        receipts = out["signed"]["verified_receipts_per_query"]
        out["projected_ratio"] = round(
            (unsigned + receipts * per_answer["sign_verify_keep"]) / unsigned, 3
        )
        out["target_ratio"] = TARGET_RATIO
        out["within_target"] = out["ratio_signed_over_unsigned"] <= TARGET_RATIO
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _setup(
    work: Path, ports: dict[str, int], spaces: int, measured: int, observations: int
) -> tuple[Path, Path]:
    """A builder (its own registry, a dev CA) and a renovator registered there, data loaded."""
    builder_dir, renovator_dir = work / "builder", work / "renovator"
    _dsgo("init", builder_dir, "--party-id", BUILDER, "--name", "Builder", "--port", ports[BUILDER])
    base = f"http://127.0.0.1:{ports[BUILDER]}"
    _dsgo(
        *("init", renovator_dir, "--party-id", RENOVATOR, "--name", "Renovator"),
        *("--port", ports[RENOVATOR], "--ca", builder_dir / "keys" / "dev-ca"),
        *("--registry-url", base, "--registry-id", BUILDER),
    )
    builder, renovator = builder_dir / "node.toml", renovator_dir / "node.toml"
    _dsgo(
        *("registry", "add", "--config", builder, "--party-id", RENOVATOR, "--name", "Renovator"),
        *("--cert", renovator_dir / "keys" / "node.cert.pem"),
        *("--capability-url", f"http://127.0.0.1:{ports[RENOVATOR]}/capabilities"),
    )
    (work / "building.ttl").write_text(building_ttl(spaces))
    (work / "sensors.ttl").write_text(measurements_ttl(measured, spaces, observations))
    _dsgo("load", work / "building.ttl", "--dataset", "bim", "--config", builder)
    _dsgo("load", work / "sensors.ttl", "--dataset", "measurements", "--config", renovator)
    _dsgo("policy", "grant", "--config", builder, "--to", RENOVATOR, "--dataset", "bim")
    return builder, renovator


def _measure(config: Path, port: int, query: str, repeat: int) -> tuple[float, int]:
    from node.config import load_settings
    from node.runtime import load_identity, trusted_fingerprints
    from trust.client import TrustClient

    settings = load_settings(config)
    client = TrustClient(load_identity(settings), trusted_fingerprints(settings), timeout=120)
    base = f"http://127.0.0.1:{port}"

    def once() -> httpx.Response:
        resp = client.request(
            "POST", base, "/sparql", data={"query": query}, headers={"Accept": RESULTS_JSON}
        )
        if resp.status_code != 200:
            raise RuntimeError(f"federated query failed: HTTP {resp.status_code} {resp.text[:300]}")
        return resp

    try:
        first = once()  # warm: tokens, connections, caches
        rows = len(first.json()["results"]["bindings"])
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            once()
            times.append(time.perf_counter() - started)
    finally:
        client.close()
    return statistics.median(times) * 1000, rows


def _per_answer_ms(work: Path, body_bytes: int = 64 * 1024, n: int = 50) -> dict[str, float]:
    """In-process cost of one signed answer: the peer signs, this node verifies and keeps it."""
    from trust.jades import HttpMessage, sign_message, verify_message
    from trust.pki import create_dev_ca, issue_party_certificate
    from trust.receipts import ReceiptStore

    ca = create_dev_ca()
    identity = issue_party_certificate(ca, BUILDER, "Builder")
    roots = {ca.root_fingerprint}
    store = ReceiptStore(work / "per-answer.sqlite")
    body = (b'{"s":"http://127.0.0.1/id/bim/space/x","area":12.5},' * 2000)[:body_bytes]
    base = {"content-type": RESULTS_JSON}
    sign_s = verify_s = keep_s = 0.0
    for _ in range(n):
        t0 = time.perf_counter()
        extra = sign_message(HttpMessage("POST", "/sparql", "h:1", base, body), identity)
        t1 = time.perf_counter()
        headers = {**base, **{k.lower(): v for k, v in extra.items()}}
        message = HttpMessage("POST", "/sparql", "h:1", headers, body)
        signed = verify_message(headers["x-jws-signature"], message, roots)
        t2 = time.perf_counter()
        store.add(
            direction="response",
            peer=BUILDER,
            url="http://h:1/sparql",
            method="POST",
            target="/sparql",
            host="h:1",
            status=200,
            signer=signed.signer,
            signed_at=signed.signed_at,
            signature=signed.signature + str(time.perf_counter_ns()),  # a new id each time
            signed_headers=signed.signed_headers,
            digest=signed.digest,
            body=body,
        )
        t3 = time.perf_counter()
        sign_s, verify_s, keep_s = sign_s + t1 - t0, verify_s + t2 - t1, keep_s + t3 - t2
    return {
        "body_bytes": body_bytes,
        "sign": round(sign_s / n * 1000, 3),
        "verify": round(verify_s / n * 1000, 3),
        "keep_receipt": round(keep_s / n * 1000, 3),
        "sign_verify_keep": round((sign_s + verify_s + keep_s) / n * 1000, 3),
    }


def _receipts(config: Path) -> int:
    """Verified receipts in the node's audit log."""
    out = _dsgo("audit", "tail", "-n", "10000000", "--config", config)
    entries = [json.loads(line) for line in out.splitlines()]
    return sum(
        1 for e in entries if e["kind"] == "receipt" and e["detail"].get("status") == "verified"
    )


@contextmanager
def _node(config: Path, port: int, env: dict[str, str], log: Path) -> Iterator[None]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("DSGO_")} | env
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [*DSGO, "serve", "--config", str(config)],
            stdout=out,
            stderr=out,
            env=full,
            cwd=ROOT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"node exited {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"node did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _dsgo(*args: object) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSGO_")}
    proc = subprocess.run(
        [*DSGO, *map(str, args)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300
    )
    if proc.returncode != 0:
        raise RuntimeError(f"dsgo {' '.join(map(str, args[:3]))}: {proc.stderr.strip()[:500]}")
    return proc.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    sys.stdout.write(json.dumps(run(), indent=2) + "\n")
