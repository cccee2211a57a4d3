"""The node exports nothing through OpenTelemetry, even when its process has a provider.

FastAPI (0.165 and later) starts spans and metrics for every request as soon as a provider is
configured in the process, with the request's path and query: SPARQL text and IRIs would leave
the node outside its enforcement point. Run in a child process: a provider is process-wide.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from opentelemetry import metrics, trace
from opentelemetry.metrics import MeterProvider, NoOpMeter
from opentelemetry.trace import NoOpTracer, TracerProvider

asked = []

class RecordingTracers(TracerProvider):  # a configured provider, as an SDK's would be
    def get_tracer(self, name, *args, **kwargs):
        asked.append(("tracer", name))
        return NoOpTracer()

class RecordingMeters(MeterProvider):
    def get_meter(self, name, *args, **kwargs):
        asked.append(("meter", name))
        return NoOpMeter(name)

trace.set_tracer_provider(RecordingTracers())
metrics.set_meter_provider(RecordingMeters())

from starlette.testclient import TestClient
from test_bad_input import BASE, READER, build_node

node = build_node(Path(sys.argv[1]))
with TestClient(node.app, base_url=BASE) as client:
    statuses = [
        client.get("/healthz").status_code,
        client.get("/sparql", params={"query": "ASK {}"}, headers=node.auth(READER)).status_code,
        client.get("/id/building/b1", headers=node.auth(READER)).status_code,
        client.get("/catalog").status_code,
    ]
print(json.dumps({"statuses": statuses, "asked": asked}))
"""


def test_no_request_reaches_an_opentelemetry_provider(tmp_path: Path) -> None:
    tests = Path(__file__).parent
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), str(tests)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tests.parent,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["statuses"][:3] == [200, 200, 200], seen
    assert seen["asked"] == [], seen
