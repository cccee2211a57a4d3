"""`make demo` as a newcomer runs it: the demo sets up its five parties, tells its stories, and
keeps serving; the builder's catalog is then checked against the DCAT-AP 3.0.0 SHACL shapes as
an anonymous caller and as the renovator, and the demo stops cleanly on Ctrl+C.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyshacl
import pytest
import rdflib
from nodeproc import token_for

ROOT = Path(__file__).resolve().parent.parent
SHAPES = Path(__file__).parent / "data" / "dcat-ap" / "dcat-ap-3.0.0-SHACL.ttl"
READY = "Serving until Ctrl+C"
# The demo sets up five parties and runs five stories before it serves: minutes, not seconds.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


class Demo:
    def __init__(self, proc: subprocess.Popen, work: Path, output: list[str]) -> None:
        self.proc, self.work, self.output = proc, work, output

    def url(self, party: str) -> str:
        for line in self.output:
            m = re.match(rf"\s+{party}\s+(http://127\.0\.0\.1:\d+)", line)
            if m:
                return m.group(1)
        raise AssertionError(f"the demo printed no URL for {party}:\n" + "".join(self.output))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    work = tmp_path_factory.mktemp("demo") / "demo-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSGO_")}
    env.update(DEMO_DIR=str(work), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    deadline = time.monotonic() + 900
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            output.append(line)
            if READY in line:
                break
            if time.monotonic() > deadline:
                raise AssertionError("the demo did not get ready in 15 minutes")
        else:
            raise AssertionError("the demo ended before serving:\n" + "".join(output[-60:]))
        yield Demo(proc, work, output)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _conforms(turtle: str) -> tuple[bool, str]:
    data = rdflib.Graph().parse(data=turtle, format="turtle")
    shapes = rdflib.Graph().parse(SHAPES, format="turtle")
    ok, _, text = pyshacl.validate(data, shacl_graph=shapes, inference="none")
    return bool(ok), text


def test_the_demo_tells_every_story(demo: Demo) -> None:
    text = "".join(demo.output)
    assert "demo: error" not in text
    assert "verified receipt" in text  # the federated story's signed answers


def test_builder_catalog_is_dcat_ap_3_for_anonymous_and_the_renovator(demo: Demo) -> None:
    builder = demo.url("builder")
    anonymous = httpx.get(f"{builder}/catalog", headers={"Accept": "text/turtle"}, timeout=60)
    assert anonymous.status_code == 200, anonymous.text
    ok, report = _conforms(anonymous.text)
    assert ok, report
    token = token_for(demo.work / "renovator" / "node.toml", builder)
    as_renovator = httpx.get(
        f"{builder}/catalog",
        headers={"Accept": "text/turtle", "Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert as_renovator.status_code == 200, as_renovator.text
    ok, report = _conforms(as_renovator.text)
    assert ok, report
    # the renovator sees datasets the anonymous caller does not
    g = rdflib.Graph().parse(data=as_renovator.text, format="turtle")
    datasets = set(g.subjects(rdflib.RDF.type, rdflib.URIRef("http://www.w3.org/ns/dcat#Dataset")))
    assert datasets, "the renovator sees no dataset in the builder's catalog"


def test_the_demo_stops_on_ctrl_c(demo: Demo) -> None:
    demo.proc.send_signal(signal.SIGINT)
    assert demo.proc.wait(60) == 0
