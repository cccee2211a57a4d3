"""Issue 15 in a real browser: headless Debian Chromium, driven by playwright, on real nodes.

A registry, a builder (the duplex IFC) and a renovator (sensor readings, and a dataset derived
from them and the builder's spaces) run as processes; the auditor is a registered party. Each
person is a browser context whose requests carry that party's bearer token for one node (until
the login branch lands, pages authenticate like every other route). The tests look at what a
person sees: text, numbers with units, links that work. Every request the browser makes is
checked: anything for another origin is blocked and fails the test, so the pages (and /docs)
work offline. Screenshots go to tests/out/.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from nodeproc import (
    DUPLEX_IFC,
    ProcessGroup,
    base_of,
    dsgo,
    free_port,
    init_node,
    token_for,
    write_measurements,
)

CHROMIUM = os.environ.get("DSGO_CHROMIUM", "/usr/bin/chromium")
if not Path(CHROMIUM).is_file():
    pytest.skip(
        f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver; .ci/run does)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (dev extra)")

REGISTRY = "EU.EORI.NL000000500"
BUILDER = "EU.EORI.NL000000501"
RENOVATOR = "EU.EORI.NL000000502"
AUDITOR = "EU.EORI.NL000000503"
OUT = Path(__file__).parent / "out"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 60_000
CO2_QUERY = """PREFIX sosa: <http://www.w3.org/ns/sosa/>
PREFIX qudt: <http://qudt.org/schema/qudt/>
PREFIX dsgo: <https://w3id.org/dsgo-node/def#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX props: <https://w3id.org/props#>
SELECT ?code ?avgCO2 ?area ?volume WHERE {
  { SELECT ?space (AVG(?co2) AS ?avgCO2) WHERE {
      ?obs sosa:observedProperty dsgo:CO2Concentration ; sosa:hasFeatureOfInterest ?space ;
           sosa:hasResult/qudt:numericValue ?co2 } GROUP BY ?space }
  SERVICE <@BUILDER@/sparql> {
    ?space rdfs:label ?code .
    OPTIONAL { ?space props:area/qudt:numericValue ?area }
    OPTIONAL { ?space props:volume/qudt:numericValue ?volume } }
} ORDER BY ?code"""


@dataclass
class World:
    configs: dict[str, Path]
    urls: dict[str, str]
    summary: str  # the derived dataset's resource for room A102, at the renovator
    blocked: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def world(
    module_procs: ProcessGroup, dev_ca: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    root = tmp_path_factory.mktemp("browser")
    names = {REGISTRY: "Registry", BUILDER: "Builder", RENOVATOR: "Renovator", AUDITOR: "Auditor"}
    ports = {party: free_port() for party in names}
    urls = {party: f"http://127.0.0.1:{port}" for party, port in ports.items()}
    registry = init_node(root / "registry", REGISTRY, "Registry", ports[REGISTRY], ca=dev_ca)
    module_procs.serve(registry, ports[REGISTRY], name="registry")
    configs = {REGISTRY: registry}
    for party in (BUILDER, RENOVATOR, AUDITOR):
        directory = root / names[party].lower()
        configs[party] = init_node(
            directory,
            party,
            names[party],
            ports[party],
            ca=dev_ca,
            registry_url=urls[REGISTRY],
            registry_id=REGISTRY,
        )
        dsgo(
            *("registry", "add", "--config", registry, "--party-id", party),
            *("--name", names[party], "--cert", directory / "keys" / "node.cert.pem"),
            *("--capability-url", f"{base_of(configs[party])}/capabilities"),
        )
    ifc = root / "duplex.ifc"
    shutil.copyfile(DUPLEX_IFC, ifc)
    dsgo("connect", "ifc", ifc, "--dataset", "bim", "--config", configs[BUILDER])
    csv_path, mapping = write_measurements(root / "sensors", rows_per_room=8)
    dsgo(
        *("connect", "measurements", csv_path, "--dataset", "measurements"),
        *("--mapping", mapping, "--option", f"feature_base={urls[BUILDER]}"),
        *("--config", configs[RENOVATOR]),
    )
    dsgo("policy", "grant", "--config", configs[BUILDER], "--to", RENOVATOR, "--dataset", "bim")
    dsgo("policy", "grant", "--config", configs[RENOVATOR], "--to", AUDITOR, "--dataset", "audit")
    for party in (BUILDER, RENOVATOR):
        # A small cap on the renovator, so that the editor can show a truncated answer.
        env = {"DSGO_STORE_MAX_RESULTS": "40"} if party == RENOVATOR else None
        module_procs.serve(configs[party], ports[party], env=env, name=names[party].lower())
    construct = CO2_QUERY.replace("@BUILDER@", urls[BUILDER])
    construct = construct.replace(
        "SELECT ?code ?avgCO2 ?area ?volume WHERE {",
        "CONSTRUCT { ?summary a dsgo:RoomSummary ; rdfs:label ?code ; dsgo:aboutSpace ?space ;"
        " dsgo:averageCO2 ?avgCO2 ; dsgo:floorArea ?area } WHERE {",
    ).replace(
        "} ORDER BY ?code",
        f'BIND(IRI(CONCAT("{urls[RENOVATOR]}/id/co2-summary/", ?code)) AS ?summary) }}',
    )
    dsgo("derive", construct, "--dataset", "co2-summary", "--config", configs[RENOVATOR])
    yield World(configs, urls, f"{urls[RENOVATOR]}/id/co2-summary/A102")


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[object]:
    OUT.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    assert world.blocked == [], f"pages asked for other origins: {world.blocked}"


def person(browser, world: World, party: str | None, node: str):
    """A browser context for `party`'s person at `node`: its token on every request, and every
    request for another origin blocked and recorded (the test then fails)."""
    headers = {}
    if party is not None:
        headers["Authorization"] = f"Bearer {token_for(world.configs[party], world.urls[node])}"
    context = browser.new_context(
        extra_http_headers=headers, viewport={"width": 1280, "height": 900}, locale="nl-NL"
    )
    context.set_default_timeout(TIMEOUT_MS)
    allowed = {urlsplit(url).netloc for url in world.urls.values()}

    def gate(route) -> None:
        url = urlsplit(route.request.url)
        if url.scheme in ("http", "https") and url.netloc not in allowed:
            world.blocked.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", gate)
    page = context.new_page()
    page.on(
        "console",
        lambda msg: world.console.append(msg.text) if msg.type == "error" else None,
    )
    return context, page


def shot(page, name: str) -> None:
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=False)


def fetch_status(page, href: str) -> tuple[int, str]:
    """GET a link's target as the person's browser context (its credentials, the page's URL as
    the base: a relative link resolves as a click would)."""
    resp = page.context.request.get(urljoin(page.url, href))
    return resp.status, resp.headers.get("content-type", "")


def test_renovator_sees_the_building_overview_with_units(browser, world: World) -> None:
    context, page = person(browser, world, RENOVATOR, BUILDER)
    try:
        page.goto(f"{world.urls[BUILDER]}/ui/building/bim")
        living = page.locator("tr", has_text="A102")
        assert re.fullmatch(r"Living Room\s+A102\s+30\.14 m²\s+71\.39 m³", living.inner_text())
        assert page.locator("tr", has_text="B102").inner_text().endswith("30.14 m²\t71.39 m³")
        walls = page.locator("#walls tbody tr")
        assert walls.count() == 23
        first_wall = walls.first.inner_text()
        assert re.search(r"IfcWall\w*\s+\d+\.\d\d m²", first_wall), first_wall
        assert page.locator(".card", has_text="storeys").inner_text().startswith("4")
        shot(page, "building-overview")
        page.locator("tr", has_text="A102").get_by_role("link", name="Living Room").click()
        page.wait_for_url(re.compile(r"/id/bim/space/0BTBFw6f90Nfh9rP1dlXr2$"))
        assert page.locator("h1").inner_text() == "Living Room"
        area = page.locator("tr", has_text="props:area").first.inner_text()
        assert "30.14 m²" in area
        assert "duplex.ifc" in page.locator("#provenance").inner_text()
    finally:
        context.close()


def test_renovator_opens_a_wall_and_its_formats(browser, world: World) -> None:
    context, page = person(browser, world, RENOVATOR, BUILDER)
    try:
        page.goto(f"{world.urls[BUILDER]}/ui/building/bim")
        page.locator("#walls tbody tr").first.get_by_role("link").click()
        page.wait_for_url(re.compile(r"/id/bim/element/"))
        assert page.locator("h1").inner_text().startswith("Basic Wall:")
        rows = {
            r.locator("th").inner_text(): r.locator("td").inner_text()
            for r in page.locator("section").first.locator("tbody tr").all()
        }
        assert re.fullmatch(r"\d+\.\d\d m² PSet_Revit_Dimensions", rows["props:area"])
        assert re.fullmatch(r"\d*\.\d+ m PSet_Revit_Type_Construction", rows["props:width"])
        assert rows["props:isExternal"].startswith("true")
        for name, media in (
            ("JSON-LD", "application/ld+json"),
            ("Turtle", "text/turtle"),
            ("N-Triples", "application/n-triples"),
        ):
            href = page.locator("p.alt").get_by_role("link", name=name).get_attribute("href")
            status, ctype = fetch_status(page, href)
            assert status == 200 and ctype.startswith(media), (name, status, ctype)
        # links to other resources stay on the node's pages and work
        link = page.locator("td a[href^='/id/']").first
        href = link.get_attribute("href")
        assert fetch_status(page, href)[0] == 200
        shot(page, "wall")
    finally:
        context.close()


def test_renovator_runs_the_federated_co2_query_in_the_editor(browser, world: World) -> None:
    context, page = person(browser, world, RENOVATOR, RENOVATOR)
    try:
        page.goto(f"{world.urls[RENOVATOR]}/ui/sparql")
        page.wait_for_selector(".yasqe .CodeMirror")
        query = CO2_QUERY.replace("@BUILDER@", world.urls[BUILDER])
        page.evaluate("(q) => window.dsgoYasgui.getTab().getYasqe().setValue(q)", query)
        page.locator(".yasqe_queryButton").click()
        page.wait_for_function(
            "() => /rows in/.test(document.getElementById('sparql-status').textContent)"
        )
        assert page.locator("#sparql-status").inner_text().startswith("3 rows in")
        table = page.locator(".yasr table.dataTable, .yasr table").first
        table.wait_for()
        text = table.inner_text()
        for code in ("A102", "A103", "B102"):
            assert code in text
        assert "30.14" in text and "71.39" in text
        shot(page, "sparql-editor")
        # an answer cut at store.max_results says so
        page.evaluate(
            "(q) => window.dsgoYasgui.getTab().getYasqe().setValue(q)",
            "SELECT ?s ?p ?o WHERE { ?s ?p ?o }",
        )
        page.locator(".yasqe_queryButton").click()
        page.wait_for_function(
            "() => document.getElementById('sparql-status').dataset.truncated !== ''"
        )
        status = page.locator("#sparql-status").inner_text()
        assert status.startswith("40 rows") and "truncated by the node (max_results=40)" in status
    finally:
        context.close()


def test_steward_grants_and_revokes_on_the_policy_page(browser, world: World) -> None:
    context, page = person(browser, world, BUILDER, BUILDER)
    try:
        page.goto(f"{world.urls[BUILDER]}/ui/policies")
        assert page.locator("#policies tbody tr").count() == 1
        page.fill("#g-party", AUDITOR)
        page.select_option("#g-target", "dataset")
        page.select_option("#g-dataset", "bim")
        page.fill("#g-until", "2031-06-30")
        page.get_by_role("button", name="Grant").click()
        page.wait_for_url(re.compile(r"/ui/policies\?granted="))
        assert page.locator(".message").inner_text().startswith("Granted: policy ")
        row = page.locator("#policies tbody tr", has_text=AUDITOR)
        assert row.count() == 1 and "2031-07-01" in row.inner_text()
        listed = dsgo("policy", "list", "--config", world.configs[BUILDER]).stdout
        assert AUDITOR in listed
        page.fill("#e-party", AUDITOR)
        page.select_option("#e-dataset", "bim")
        page.get_by_role("button", name="Explain").click()
        assert page.locator("#decision").inner_text() == "Permit"
        shot(page, "policies")
        row.get_by_role("button", name="Revoke").click()
        page.wait_for_url(re.compile(r"/ui/policies\?revoked="))
        assert page.locator("#policies tbody tr", has_text=AUDITOR).count() == 0
        assert AUDITOR not in dsgo("policy", "list", "--config", world.configs[BUILDER]).stdout
    finally:
        context.close()


def test_auditor_sees_the_trace_of_the_derived_dataset_as_a_graph(browser, world: World) -> None:
    context, page = person(browser, world, AUDITOR, RENOVATOR)
    try:
        page.goto(f"{world.urls[RENOVATOR]}/ui/audit")
        page.fill("input[name=iri]", world.summary)
        page.get_by_role("button", name="Show").click()
        page.get_by_role("link", name="Verify the audit log").click()
        assert page.locator("#verify-result").inner_text().startswith("audit log intact:")
        svg = page.locator("svg.trace")
        box = svg.bounding_box()
        assert box is not None and box["width"] > 600 and box["height"] > 100
        labels = svg.locator("text").all_text_contents()
        assert "co2-summary" in labels and "wasDerivedFrom" in labels and "accessed" in labels
        derived = [t for t in labels if t.startswith("bim/space/") or "space/" in t]
        assert derived, labels  # the builder's spaces it was derived from
        assert page.locator("#entries tbody tr").count() > 3
        shot(page, "audit")
    finally:
        context.close()


def test_docs_work_offline_and_pages_break_no_rule(browser, world: World) -> None:
    context, page = person(browser, world, None, BUILDER)
    try:
        page.goto(f"{world.urls[BUILDER]}/docs")
        title = page.locator(".swagger-ui .info .title")
        title.wait_for()
        assert "dsgo-node" in title.inner_text()
        assert page.locator(".opblock-summary-path", has_text="/ui/building/{name}").count() == 1
        shot(page, "docs")
    finally:
        context.close()
    refused = [m for m in world.console if "Content Security Policy" in m or "Refused" in m]
    assert refused == []
