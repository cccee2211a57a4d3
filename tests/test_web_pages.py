"""Issue 15, pages for people, over HTTP on a real node: what the pages show, that they stay on
the node (relative links, no other origin anywhere), and every way a page or form refuses.

The owner node (also its registry) holds the duplex (`bim`), the Revit sample with U-values
(`walls`) and the German Revit sample (`german`); the guest may read `bim` only.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from nodeproc import DUPLEX_IFC, ProcessGroup, dsgo, free_port, init_owner_and_guest, token_for
from starlette.requests import Request

from node.web.csrf import CsrfRejected, check_csrf, csrf_token

OWNER = "EU.EORI.NL000000301"
GUEST = "EU.EORI.NL000000302"
STRANGER = "EU.EORI.NL000000399"
IFC = Path(__file__).parent / "data" / "ifc"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
FORM = "application/x-www-form-urlencoded"
LIVING_ROOM = "0BTBFw6f90Nfh9rP1dlXr2"  # A102 "Living Room" in duplex.ifc
STATIC = Path(__file__).parent.parent / "node" / "static" / "vendor"


@dataclass
class World:
    base: str
    owner_config: Path
    guest_config: Path

    def token(self, who: str = OWNER) -> str:
        return token_for(self.owner_config if who == OWNER else self.guest_config, self.base)

    def get(
        self, path: str, who: str | None = OWNER, accept: str = BROWSER, **kw
    ) -> httpx.Response:
        headers = {"Accept": accept}
        if who is not None:
            headers["Authorization"] = f"Bearer {self.token(who)}"
        return httpx.get(urljoin(self.base, path), headers=headers, timeout=60, **kw)

    def post(self, path: str, data: dict[str, str] | bytes, who: str = OWNER, **headers: str):
        head = {"Authorization": f"Bearer {self.token(who)}", "Content-Type": FORM, **headers}
        body = data if isinstance(data, bytes) else httpx.QueryParams(data).__str__().encode()
        return httpx.post(urljoin(self.base, path), content=body, headers=head, timeout=60)

    def policy_ids(self) -> list[str]:
        out = dsgo("policy", "list", "--config", self.owner_config).stdout
        return re.findall(r'"id": "([^"]+)"', out)


@pytest.fixture(scope="module")
def world(module_procs: ProcessGroup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if not (STATIC / "yasgui" / "yasgui.min.js").is_file():
        pytest.fail("node/static/vendor is missing: run `make assets` (part of `make test`)")
    root = tmp_path_factory.mktemp("pages")
    port = free_port()
    owner, guest = init_owner_and_guest(root, OWNER, GUEST, port)
    for name, source in (
        ("bim", DUPLEX_IFC),
        ("walls", IFC / "example.ifc"),
        ("german", IFC / "Sample_entities.ifc"),
    ):
        copy = root / source.name
        shutil.copyfile(source, copy)
        dsgo("connect", "ifc", copy, "--dataset", name, "--config", owner)
    dsgo("sign", "--dataset", "bim", "--config", owner)
    dsgo("policy", "grant", "--config", owner, "--to", GUEST, "--dataset", "bim")
    module_procs.serve(owner, port, name="owner")
    yield World(f"http://127.0.0.1:{port}", owner, guest)


class Page(HTMLParser):
    """Tags with attributes and the visible text of an HTML page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.parts: list[str] = []
        self.feed(html)
        self.text = " ".join(" ".join(self.parts).split())

    _skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._skip += tag in ("style", "script", "title")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "script", "title")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)

    def links(self) -> list[str]:
        return [a["href"] for t, a in self.tags if t == "a" and "href" in a]

    def references(self) -> list[str]:
        """Every URL the page names in src, href, action or a style's url()."""
        refs = [a[k] for _, a in self.tags for k in ("src", "href", "action") if a.get(k)]
        return refs


def html(resp: httpx.Response) -> Page:
    assert resp.status_code == 200, resp.text[:500]
    assert resp.headers["content-type"] == "text/html; charset=utf-8"
    return Page(resp.text)


def assert_error(resp: httpx.Response, status: int, word: str) -> dict:
    """A refusal: the status, a JSON body whose description names the problem."""
    assert resp.status_code == status, resp.text[:500]
    body = resp.json()
    assert word in body["error_description"] or word in body["error"], body
    return body


# --- what the pages show ------------------------------------------------------------------------


def test_building_overview_shows_spaces_by_long_name_with_area_and_volume(world: World) -> None:
    page = html(world.get("/ui/building/bim", GUEST))
    assert "4 storeys" in page.text and "21 spaces" in page.text
    rows = re.findall(r"Living Room (A10\d|B10\d) ([\d.]+ m²) ([\d.]+ m³)", page.text)
    assert rows == [("A102", "30.14 m²", "71.39 m³"), ("B102", "30.14 m²", "71.39 m³")]
    assert "External walls" in page.text and "23 external walls" in page.text
    assert re.search(
        r"Basic Wall:Exterior - Brick on Block:\d+ IfcWallStandardCase [\d.]+ m²", page.text
    )
    assert f"/id/bim/space/{LIVING_ROOM}" in page.links()


def test_building_overview_shows_u_values_in_their_unit(world: World) -> None:
    page = html(world.get("/ui/building/walls"))
    assert re.search(
        r"Basic Wall:150 Concrete:\d+ IfcWallStandardCase — 6\.97 W/\(m²⋅K\)", page.text
    )


def test_building_overview_is_scoped_to_the_caller(world: World) -> None:
    assert_error(world.get("/ui/building/walls", GUEST), 403, "no policy")
    assert_error(world.get("/ui/building/bim", None), 401, "token")
    assert_error(world.get("/ui/building/Not_A_Name"), 400, "dataset")
    assert_error(world.get("/ui/building/nothing"), 404, "nothing")


def test_resource_page_label_first_quantities_with_units_provenance(world: World) -> None:
    page = html(world.get(f"/id/bim/space/{LIVING_ROOM}", GUEST))
    assert page.text.startswith("Home Catalog SPARQL Policies Audit API Living Room ")
    assert "props:area 30.14 m² PSet_Revit_Dimensions" in page.text
    assert "props:volume 71.39 m³" in page.text
    assert "/qv/" not in page.text  # value nodes are shown as values, not as links to them
    assert "Provenance" in page.text and "duplex.ifc" in page.text and "signed" in page.text
    sha = re.search(r"\b[0-9a-f]{64}\b", page.text)
    assert sha is not None
    assert sha.group(0) == __import__("hashlib").sha256(DUPLEX_IFC.read_bytes()).hexdigest()
    for href in page.links():
        assert href.startswith(("/", "?", "#")), href  # every link stays on this node


def test_conneg_links_answer_their_formats(world: World) -> None:
    path = f"/id/bim/space/{LIVING_ROOM}"
    page = html(world.get(path, GUEST))
    alternates = {
        a["type"]: a["href"] for t, a in page.tags if t == "link" and a.get("rel") == "alternate"
    }
    shown = [h for h in page.links() if h.startswith("?format=")]
    assert sorted(shown) == sorted(alternates.values()) and len(shown) == 3
    for media, href in alternates.items():
        resp = world.get(path + href, GUEST)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith(media), href
        assert "Living Room" in resp.text and "<html" not in resp.text


def test_umlauts_are_shown_as_written(world: World) -> None:
    page = html(world.get("/catalog"))
    german = [h for h in page.links() if h == "/dataset/german"]
    assert german
    rows = world.get(
        "/sparql",
        accept="application/sparql-results+json",
        params={
            "query": "SELECT ?s WHERE { GRAPH ?g { ?s <https://w3id.org/props#gebäudegeschoss> ?v } } LIMIT 1"
        },
    ).json()["results"]["bindings"]
    storey = urlsplit(rows[0]["s"]["value"]).path
    text = html(world.get(storey)).text
    assert "props:gebäudegeschoss" in text and "Abhängigkeiten" in text
    assert "Ã" not in text  # no UTF-8 read as Latin-1


def test_catalog_and_dataset_pages_for_a_browser(world: World) -> None:
    catalog = html(world.get("/catalog", GUEST))
    assert catalog.links().count("/dataset/bim") == 1 and "/dataset/walls" not in catalog.links()
    page = html(world.get("/dataset/bim", GUEST))
    assert "Dataset bim" in page.text and "duplex.ifc" in page.text
    assert "/ui/building/bim" in page.links()
    for href, media in (
        ("/dataset/bim?format=nt", "application/n-triples"),
        ("/dataset/bim?format=ttl", "text/turtle"),
    ):
        assert href in page.links()
        resp = world.get(href, GUEST)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith(media)
    # Machines keep getting data: */* and an explicit RDF type are not a browser.
    assert (
        world.get("/dataset/bim", GUEST, accept="*/*")
        .headers["content-type"]
        .startswith("application/n-triples")
    )
    assert_error(world.get("/dataset/walls", GUEST), 403, "no policy")
    assert_error(world.get("/dataset/nothing"), 404, "nothing")


def test_home_is_a_page_for_browsers_and_json_for_programs(world: World) -> None:
    page = html(world.get("/", None))
    assert {"/catalog", "/ui/sparql", "/ui/policies", "/ui/audit", "/docs"} <= set(page.links())
    assert world.get("/", None, accept="application/json").json()["party_id"] == OWNER


def test_sparql_editor_page_loads_the_vendored_editor(world: World) -> None:
    page = html(world.get("/ui/sparql", GUEST))
    scripts = [a["src"] for t, a in page.tags if t == "script"]
    assert scripts == ["/static/vendor/yasgui/yasgui.min.js", "/static/sparql.js"]
    for src in scripts:
        resp = world.get(src, None)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith(
            "text/javascript"
        )
    assert_error(world.get("/ui/sparql", None), 401, "token")


def test_docs_work_from_the_node_alone(world: World) -> None:
    page = html(world.get("/docs", None))
    refs = page.references()
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in refs
    for ref in refs:
        resp = world.get(ref, None)
        assert resp.status_code == 200, ref
    assert world.get("/openapi.json", None, accept="application/json").json()["paths"]["/ui/audit"]


def test_no_page_or_asset_references_another_origin(world: World) -> None:
    """Crawl every page reachable from / (as the owner) and every asset they name."""
    origin = urlsplit(world.base)
    seen: set[str] = set()
    todo = [
        "/",
        "/ui/building/bim",
        f"/id/bim/space/{LIVING_ROOM}",
        "/ui/audit?iri=" + f"{world.base}/id/bim/space/{LIVING_ROOM}&verify=1",
        "/docs",
    ]
    external: list[tuple[str, str]] = []
    assets = 0
    while todo and len(seen) < 120:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        resp = world.get(path)
        ctype = resp.headers.get("content-type", "")
        if ctype.startswith("text/html"):
            refs = Page(resp.text).references()
            refs += re.findall(r"url\(\s*['\"]?([^'\")]+)", resp.text)
        elif ctype.startswith("text/css"):
            assets += 1
            refs = re.findall(r"url\(\s*['\"]?([^'\")]+)", resp.text)
        else:
            assets += 1
            continue
        for ref in refs:
            if ref.startswith(("data:", "#")):
                continue
            url = urlsplit(urljoin(world.base + path, ref))
            if (url.scheme, url.netloc) != (origin.scheme, origin.netloc):
                external.append((path, ref))
            elif (
                url.path.startswith(("/static/", "/ui/", "/catalog", "/dataset/", "/id/"))
                and "format=" not in url.query
            ):
                todo.append(url.path + ("?" + url.query if url.query else ""))
    assert external == []
    assert assets >= 5 and len(seen) > 30  # the crawl reached pages and assets


def test_static_files_refuse_anything_outside_the_assets(world: World) -> None:
    for path in (
        "/static/../node.toml",
        "/static/%2e%2e/app.py",
        "/static/vendor",
        "/static/.hidden",
        "/static/vendor/nope.js",
    ):
        resp = world.get(path, None)
        assert resp.status_code == 404, path
        assert resp.headers["content-type"] == "application/json"


# --- the steward's page -------------------------------------------------------------------------


def test_policy_page_lists_grants_and_revokes(world: World) -> None:
    page = html(world.get("/ui/policies"))
    assert GUEST in page.text and "bim" in page.text
    forms = [a for t, a in page.tags if t == "form" and a.get("method") == "post"]
    assert {f["action"] for f in forms} == {"/ui/policies/grant", "/ui/policies/revoke"}
    hidden = [a for t, a in page.tags if t == "input" and a.get("name") == "csrf_token"]
    assert len(hidden) == len(forms)  # every form has the csrf field
    before = world.policy_ids()
    resp = world.post(
        "/ui/policies/grant",
        {
            "csrf_token": "",
            "party": STRANGER,
            "target": "type",
            "type": "https://w3id.org/bot#Space",
            "until": "2099-12-31",
        },
    )
    assert resp.status_code == 303 and resp.headers["location"].startswith("/ui/policies?granted=")
    new = sorted(set(world.policy_ids()) - set(before))
    assert len(new) == 1
    page = html(world.get(resp.headers["location"]))
    assert f"Granted: policy {new[0]}" in page.text and STRANGER in page.text
    assert "2100-01-01" in page.text  # the whole of the day given counts
    resp = world.post("/ui/policies/revoke", {"csrf_token": "", "policy_id": new[0]})
    assert resp.status_code == 303
    assert world.policy_ids() == before


def test_policy_page_explains_a_decision(world: World) -> None:
    page = html(world.get("/ui/policies", params={"party": GUEST, "dataset": "walls"}))
    assert "Deny for " + GUEST in page.text and "deny by default" in page.text
    page = html(world.get("/ui/policies", params={"party": GUEST, "dataset": "bim"}))
    assert "Permit for " + GUEST in page.text
    iri = f"{world.base}/id/bim/space/{LIVING_ROOM}"
    assert (
        "Permit for"
        in html(world.get("/ui/policies", params={"party": GUEST, "resource": iri})).text
    )
    assert_error(world.get("/ui/policies", params={"party": "nobody"}), 400, "party")
    assert_error(world.get("/ui/policies", params={"party": GUEST, "action": "x"}), 400, "action")
    assert_error(
        world.get("/ui/policies", params={"party": GUEST, "resource": "not an iri"}),
        400,
        "resource",
    )


def test_policy_page_is_the_owners_only(world: World) -> None:
    before = world.policy_ids()
    assert_error(world.get("/ui/policies", GUEST), 403, "only the node's own party")
    assert_error(world.get("/ui/policies", None), 401, "token")
    grant = {"csrf_token": "", "party": GUEST, "target": "dataset", "dataset": "walls"}
    assert_error(
        world.post("/ui/policies/grant", grant, who=GUEST), 403, "only the node's own party"
    )
    assert_error(
        world.post("/ui/policies/revoke", {"policy_id": before[0]}, who=GUEST), 403, "only"
    )
    assert world.policy_ids() == before  # nothing changed


@pytest.mark.parametrize(
    ("fields", "status", "word"),
    [
        ({"party": ""}, 400, "party"),
        ({"party": "someone"}, 400, "party"),
        ({"party": GUEST, "target": "dataset", "dataset": ""}, 400, "dataset"),
        ({"party": GUEST, "target": "dataset", "dataset": "Bad Name"}, 400, "dataset"),
        ({"party": GUEST, "target": "type", "type": ""}, 400, "type"),
        ({"party": GUEST, "target": "type", "type": "javascript:alert(1)"}, 400, "type"),
        ({"party": GUEST, "target": "group", "dataset": "bim"}, 400, "target"),
        ({"party": GUEST, "dataset": "bim", "until": "next week"}, 400, "until"),
        ({"party": GUEST, "dataset": "bim", "until": "2001-01-01"}, 400, "passed"),
    ],
)
def test_grant_form_refuses_bad_fields(world: World, fields: dict, status: int, word: str) -> None:
    before = world.policy_ids()
    assert_error(world.post("/ui/policies/grant", {"csrf_token": "", **fields}), status, word)
    assert world.policy_ids() == before


def test_forms_refuse_wrong_bodies(world: World) -> None:
    before = world.policy_ids()
    assert_error(world.post("/ui/policies/revoke", {"policy_id": "nope"}), 404, "nope")
    assert_error(world.post("/ui/policies/revoke", {}), 400, "policy_id")
    big = ("party=" + "x" * 20_000).encode()
    assert_error(world.post("/ui/policies/grant", big), 413, "form")
    resp = world.post("/ui/policies/grant", b'{"party": 1}', **{"Content-Type": "application/json"})
    assert_error(resp, 415, "form")
    assert_error(world.post("/ui/policies/grant", b"party=\xff\xfe"), 400, "UTF-8")
    assert world.policy_ids() == before


def _request(headers: dict[str, str], session_token: str | None = None) -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/ui/policies/grant",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    if session_token is not None:
        scope["dsgo.csrf_token"] = session_token
    return Request(scope)


def test_csrf_passes_bearer_requests_and_refuses_sessions_without_the_token() -> None:
    bearer = _request({"Authorization": "Bearer abc"})
    assert csrf_token(bearer) == ""
    check_csrf(bearer, None)  # a bearer token is never sent by a browser on its own
    session = _request({"Cookie": "session=1"}, session_token="t0ken")
    assert csrf_token(session) == "t0ken"
    check_csrf(session, "t0ken")
    for value in (None, "", "other"):
        with pytest.raises(CsrfRejected):
            check_csrf(session, value)
    with pytest.raises(CsrfRejected):
        check_csrf(_request({"Authorization": "Bearer "}), "")  # an empty token is no token
    with pytest.raises(CsrfRejected):
        check_csrf(_request({}), "")


# --- the auditor's page -------------------------------------------------------------------------


def test_audit_page_filters_verifies_and_draws_the_trace(world: World) -> None:
    iri = f"{world.base}/id/bim/space/{LIVING_ROOM}"
    world.get(iri, GUEST)  # an access the trace must show
    page = html(world.get("/ui/audit", params={"iri": iri, "verify": "1", "party": GUEST}))
    assert "audit log intact:" in page.text
    svg = re.search(
        r"<svg class=\"trace\".*?</svg>", world.get("/ui/audit", params={"iri": iri}).text, re.S
    )
    assert svg is not None
    drawing = svg.group(0)
    for word in (
        "duplex.ifc",
        "ifc",
        "bim",
        "version",
        "wasGeneratedBy",
        "used",
        GUEST,
        "accessed",
    ):
        assert word in drawing, word
    assert drawing.count("<rect") >= 4 and drawing.count("<path") >= 4
    kinds = {
        m
        for m in re.findall(
            r"<td>(permit|deny|query|token_issued|admin)</td>",
            world.get("/ui/audit", params={"party": GUEST}).text,
        )
    }
    assert kinds and kinds <= {"permit", "deny", "query", "token_issued"}


def test_audit_page_refuses(world: World) -> None:
    assert_error(world.get("/ui/audit", GUEST), 403, "audit log")
    assert_error(world.get("/ui/audit", None), 401, "token")
    assert_error(world.get("/ui/audit", params={"since": "yesterday"}), 400, "since")
    assert_error(world.get("/ui/audit", params={"limit": "0"}), 400, "limit")
    assert_error(world.get("/ui/audit", params={"limit": "many"}), 400, "limit")
    assert_error(world.get("/ui/audit", params={"iri": "not an iri"}), 400, "iri")
