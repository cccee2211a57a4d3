"""`make demo` as a newcomer runs it: the demo sets up its five parties, tells its stories, and
keeps serving. Then, against the running demo:

- the builder's catalog is checked against the DCAT-AP 3.0.0 SHACL shapes as an anonymous caller
  and as the renovator;
- a person in a real browser (Debian Chromium, playwright) logs in through the demo's OpenID
  Provider as the renovator's employee and sees the duplex's building overview (wall areas, the
  living rooms' 30.14 m² / 71.39 m³), runs the federated CO2 query in the renovator's SPARQL
  editor, and, logged in as the auditor, sees the derived dataset's trace drawn as a graph;
- the demo stops cleanly on Ctrl+C.
"""

from __future__ import annotations

import os
import re
import shutil
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


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OUT = Path(__file__).parent / "out"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (.ci/run installs it)")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def _logged_in(browser, node: str, user: str, next_path: str, outside: list[str]):
    """A browser context with `user` logged in at `node` through the demo's provider."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(120_000)
    page = context.new_page()
    page.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith("http://127.0.0.1:") else None,
    )
    page.goto(f"{node}/login?next={next_path}")
    page.get_by_role("link", name="Log in with the development provider", exact=True).click()
    page.wait_for_url(re.compile(r"/interaction/"))
    page.fill("input[name=login]", user)
    page.fill("input[name=password]", "demo")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{node}{next_path}*")
    return context, page


def test_a_person_logs_in_and_sees_the_building(demo: Demo, browser) -> None:
    outside: list[str] = []
    builder = demo.url("builder")
    context, page = _logged_in(browser, builder, "rita", "/ui/building/bim", outside)
    try:
        OUT.mkdir(exist_ok=True)
        living = page.locator("tr", has_text="A102").first
        text = " ".join(living.inner_text().split())
        assert "30.14 m²" in text and "71.39 m³" in text, text
        b102 = " ".join(page.locator("tr", has_text="B102").first.inner_text().split())
        assert "30.14 m²" in b102 and "71.39 m³" in b102, b102
        walls = page.locator("#walls tbody tr")
        assert walls.count() > 0 and "m²" in walls.first.inner_text()
        page.screenshot(path=str(OUT / "demo-building.png"), full_page=True)
        assert outside == [], outside
    finally:
        context.close()


def test_the_renovator_runs_the_federated_query_in_the_editor(demo: Demo, browser) -> None:
    from test_browser import CO2_QUERY

    outside: list[str] = []
    renovator, builder = demo.url("renovator"), demo.url("builder")
    context, page = _logged_in(browser, renovator, "rita", "/ui/sparql", outside)
    try:
        page.wait_for_selector(".yasqe .CodeMirror")
        query = CO2_QUERY.replace("@BUILDER@", builder)
        page.evaluate("(q) => window.dsgoYasgui.getTab().getYasqe().setValue(q)", query)
        page.locator(".yasqe_queryButton").click()
        page.wait_for_function(
            "() => /rows in/.test(document.getElementById('sparql-status').textContent)",
            timeout=180_000,
        )
        table = page.locator(".yasr table.dataTable, .yasr table").first
        table.wait_for()
        text = table.inner_text()
        assert "30.14" in text and "71.39" in text, text
        page.screenshot(path=str(OUT / "demo-sparql.png"), full_page=True)
        assert outside == [], outside
    finally:
        context.close()


def test_the_auditor_sees_the_trace_as_a_graph(demo: Demo, browser) -> None:
    outside: list[str] = []
    renovator = demo.url("renovator")
    context, page = _logged_in(browser, renovator, "aude", "/ui/audit", outside)
    try:
        page.fill("input[name=iri]", f"{renovator}/id/co2-summary/A102")
        page.get_by_role("button", name="Show").click()
        svg = page.locator("svg.trace")
        svg.wait_for()
        labels = svg.locator("text").all_text_contents()
        assert "co2-summary" in " ".join(labels), labels
        assert "wasDerivedFrom" in labels, labels
        page.screenshot(path=str(OUT / "demo-trace.png"), full_page=True)
        assert outside == [], outside
    finally:
        context.close()


def test_the_demo_stops_on_ctrl_c(demo: Demo) -> None:
    demo.proc.send_signal(signal.SIGINT)
    assert demo.proc.wait(60) == 0
