"""Issue 14 end to end: a builder's permit check, read and verified by a municipality.

Real `dsgo serve` processes: a registry and a builder whose `bim` is the ILS example model, with
`[[checks]]` checking it against the ILS after every sync. The municipality (registered, with its
own key) gets 403 with an explanation until it is granted the report dataset and the model's
spaces and storeys (type grants); then it reads the report, verifies its signature, and sees of
the model exactly the granted resources' triples (a leak check against what the owner sees).
The builder's fix is synced, the check reruns, and the new report revises the old one.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest
from ilsmodel import ils_models
from nodeproc import base_of, dsgo, free_port, init_node, select_rows, token_for

ROOT = Path(__file__).resolve().parent.parent
ILS = ROOT / "tests" / "data" / "ids" / "dsgo-ils"
IDS_912B = ILS / "26-9.12b-Verblijfsruimte.ids"
REGISTRY = "EU.EORI.NL000000100"
BUILDER = "EU.EORI.NL000000101"
MUNICIPALITY = "EU.EORI.NL000000104"
BOT = "https://w3id.org/bot#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
PROV = "http://www.w3.org/ns/prov#"
DSGO = "https://w3id.org/dsgo-node/def#"
GRANTED_TYPES = {f"{BOT}Space", f"{BOT}Storey"}
RESULTS_JSON = "application/sparql-results+json"
NTRIPLES = "application/n-triples"
FAILING_912B = """PREFIX sh: <http://www.w3.org/ns/shacl#> PREFIX bot: <https://w3id.org/bot#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> PREFIX props: <https://w3id.org/props#>
SELECT ?space ?name ?long ?found WHERE {{
  GRAPH <{base}/dataset/permit-check> {{
    ?spec rdfs:label "9.12b Verblijfsruimte" .
    ?result sh:sourceShape ?spec ; sh:focusNode ?space . OPTIONAL {{ ?result sh:value ?found }} }}
  GRAPH <{base}/dataset/bim> {{ ?space a bot:Space ; rdfs:label ?name ; props:longName ?long }}
}} ORDER BY ?name"""


@dataclass
class World:
    root: Path
    builder: Path
    municipality: Path
    base: str
    model: Path
    fixed: Path

    def as_municipality(self, method: str, path: str, **kw) -> httpx.Response:
        token = token_for(self.municipality, self.base)
        headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
        return httpx.request(method, f"{self.base}{path}", headers=headers, timeout=60, **kw)

    def as_owner(self, method: str, path: str, **kw) -> httpx.Response:
        token = token_for(self.builder, self.base)
        headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
        return httpx.request(method, f"{self.base}{path}", headers=headers, timeout=60, **kw)

    def construct(self, who: str, query: str) -> set[ox.Triple]:
        call = self.as_owner if who == "owner" else self.as_municipality
        resp = call("POST", "/sparql", data={"query": query}, headers={"Accept": NTRIPLES})
        assert resp.status_code == 200, resp.text
        return set(ox.parse(resp.content, format=ox.RdfFormat.N_TRIPLES))

    def graph(self, who: str, dataset: str) -> set[ox.Triple]:
        return self.construct(
            who,
            f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{self.base}/dataset/{dataset}> "
            "{ ?s ?p ?o } }",
        )

    def select(self, who: str, query: str) -> list[tuple[str | None, ...]]:
        call = self.as_owner if who == "owner" else self.as_municipality
        return select_rows(
            call("POST", "/sparql", data={"query": query}, headers={"Accept": RESULTS_JSON})
        )

    def grant(self, *args: str) -> str:
        out = dsgo("policy", "grant", "--config", self.builder, "--to", MUNICIPALITY, *args)
        return out.stdout.strip()


@pytest.fixture(scope="module")
def world(module_procs, dev_ca: Path, tmp_path_factory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("permit")
    made = ils_models(tmp_path_factory, root)
    built, fixed = made.built, made.fixed
    reg_port, b_port, m_port = free_port(), free_port(), free_port()
    registry_cfg = init_node(root / "registry", REGISTRY, "Registry", reg_port, ca=dev_ca)
    registry = module_procs.serve(registry_cfg, reg_port, name="registry")
    configs = {}
    for party, name, port in (
        (BUILDER, "Builder", b_port),
        (MUNICIPALITY, "Gemeente", m_port),
    ):
        configs[party] = init_node(
            root / name.lower(),
            party,
            name,
            port,
            ca=dev_ca,
            registry_url=registry.base_url,
            registry_id=REGISTRY,
        )
        dsgo(
            *("registry", "add", "--config", registry_cfg, "--party-id", party, "--name", name),
            *("--cert", configs[party].parent / "keys" / "node.cert.pem"),
            *("--capability-url", f"{base_of(configs[party])}/capabilities"),
        )
    builder = configs[BUILDER]
    model = builder.parent / "model.ifc"
    shutil.copyfile(built, model)
    builder.write_text(
        builder.read_text(encoding="utf-8")
        + f"""
[[sources]]
kind = "ifc"
source = "model.ifc"
dataset = "bim"

[[checks]]
kind = "ids"
dataset = "bim"
ids = ["{ILS}"]
report = "permit-check"
""",
        encoding="utf-8",
    )
    out = dsgo("sync", "--config", builder).stdout
    assert "permit-check: checked" in out and "5 passed, 6 failed" in out, out
    module_procs.serve(builder, b_port, name="builder")
    yield World(root, builder, configs[MUNICIPALITY], f"http://127.0.0.1:{b_port}", model, fixed)


def _denied(resp: httpx.Response) -> dict:
    assert resp.status_code == 403, resp.text
    body = resp.json()
    assert body["error"] == "access_denied"
    assert body["explanation"]["decision"] == "Deny"
    assert body["explanation"]["party"] == MUNICIPALITY
    return body


def test_without_a_grant_403_with_the_explanation(world: World) -> None:
    body = _denied(world.as_municipality("GET", "/dataset/permit-check"))
    assert "permit-check" in body["error_description"]
    space = world.select("owner", f"SELECT ?s WHERE {{ ?s a <{BOT}Space> }} LIMIT 1")[0][0]
    _denied(world.as_municipality("GET", space[len(world.base) :]))
    _denied(
        world.as_municipality(
            "POST",
            "/sparql",
            data={"query": "SELECT * WHERE { ?s ?p ?o } LIMIT 1"},
            headers={"Accept": RESULTS_JSON},
        )
    )
    # and the check itself is the owner's: the admin route refuses anyone else
    resp = world.as_municipality(
        "POST", "/admin/check", json={"report": "x", "ids": [str(IDS_912B)], "dataset": "bim"}
    )
    assert resp.status_code == 403 and resp.json()["error"] == "insufficient_scope"


def test_the_owner_checks_through_the_running_node(world: World) -> None:
    """`dsgo check ids` while the node runs goes through POST /admin/check; same exit codes."""
    args = ("check", "ids", "--config", world.builder, "--report", "check-912b")
    run = dsgo(*args, "--dataset", "bim", "--ids", IDS_912B, check=False)
    assert run.returncode == 1, run.stderr
    assert "admin API" in run.stderr
    assert run.stdout.startswith("check-912b (version 1): 1 applicable specification, 0 passed")
    ifc2x3 = ROOT / "examples" / "data" / "duplex.ifc"
    run = dsgo(*args, "--model", ifc2x3, "--ids", IDS_912B, check=False)
    assert run.returncode == 2 and "HTTP 422" in run.stderr and "IFC2X3" in run.stderr
    resp = world.as_owner("POST", "/admin/check", json={"report": "x", "ids": []})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"
    resp = world.as_owner(
        "POST", "/admin/check", json={"report": "x", "ids": ["/nope.ids"], "dataset": "bim"}
    )
    assert resp.status_code == 400 and "IDS file not found" in resp.json()["error_description"]


def test_granted_municipality_reads_and_verifies_the_report(world: World) -> None:
    world.grant("--dataset", "permit-check")
    world.grant("--type", "bot:Space")
    world.grant("--type", "bot:Storey")
    resp = world.as_municipality("GET", "/dataset/permit-check", headers={"Accept": NTRIPLES})
    assert resp.status_code == 200, resp.text
    assert 'rel="signature"' in resp.headers.get("link", "")
    read = set(ox.parse(resp.content, format=ox.RdfFormat.N_TRIPLES))
    assert read == world.graph("owner", "permit-check")
    out = dsgo("verify", f"{world.base}/dataset/permit-check", "--config", world.municipality)
    assert out.stdout.startswith(f"OK {BUILDER} signed {world.base}/dataset/permit-check")
    # the failed spaces' attributes, at the builder's node, with the municipality's own token
    rows = world.select("municipality", FAILING_912B.format(base=world.base))
    assert [(r[1], r[3]) for r in rows] == [
        ("A202", "Netto-Inhoud"),
        ("A203", "Netto-Inhoud"),
        ("B202", "Netto-Inhoud"),
        ("B203", "Netto-Inhoud"),
    ]
    assert all(r[2] for r in rows)  # props:longName, an attribute of the granted space


def test_municipality_sees_exactly_the_granted_types(world: World) -> None:
    """A leak check: only triples of spaces and storeys, whichever way the model is asked."""
    owner = world.graph("owner", "bim")
    types: dict[str, set[str]] = {}
    for t in owner:
        if t.predicate.value == RDF_TYPE:
            types.setdefault(t.subject.value, set()).add(t.object.value)

    def granted(t: ox.Triple) -> bool:
        return bool(types.get(t.subject.value, set()) & GRANTED_TYPES)

    allowed = {t for t in owner if granted(t)}
    assert len(allowed) > 100 and len(allowed) < len(owner) / 5
    assert world.graph("municipality", "bim") == allowed
    report = world.graph("owner", "permit-check")
    bim = f"{world.base}/dataset/bim"
    rng = random.Random(14)
    subjects = sorted({t.subject.value for t in owner})
    spaces = sorted(s for s in subjects if types.get(s, set()) & GRANTED_TYPES)
    sample = rng.sample(subjects, 20) + rng.sample(spaces, 5)
    for s in sample:
        seen = world.construct(
            "municipality",
            f"CONSTRUCT {{ <{s}> ?p ?o }} WHERE {{ GRAPH <{bim}> {{ <{s}> ?p ?o }} }}",
        )
        assert seen == {t for t in allowed if t.subject.value == s}, s
        # without naming the graph: the granted triples, plus what the report says of it
        anywhere = world.construct(
            "municipality", f"CONSTRUCT {{ <{s}> ?p ?o }} WHERE {{ <{s}> ?p ?o }}"
        )
        assert anywhere <= allowed | report, s
        resp = world.as_municipality("GET", s[len(world.base) :], headers={"Accept": NTRIPLES})
        if types.get(s, set()) & GRANTED_TYPES:
            assert resp.status_code == 200, resp.text
            got = set(ox.parse(resp.content, format=ox.RdfFormat.N_TRIPLES))
            assert got and got <= allowed | report
        else:
            assert resp.status_code in (403, 404), (s, resp.status_code)
    predicates = sorted({t.predicate.value for t in owner})
    for p in rng.sample(predicates, 12):
        seen = world.construct(
            "municipality",
            f"CONSTRUCT {{ ?s <{p}> ?o }} WHERE {{ GRAPH <{bim}> {{ ?s <{p}> ?o }} }}",
        )
        assert seen == {t for t in allowed if t.predicate.value == p}, p
    # nothing else of the node: not its provenance, not the owner's other report (the type
    # grants reach every dataset, so the explanation is a partial Permit: no whole dataset)
    for dataset in ("provenance", "check-912b"):
        resp = world.as_municipality("GET", f"/dataset/{dataset}")
        assert resp.status_code == 403 and resp.json()["error"] == "access_denied"
        assert world.graph("municipality", dataset) == set()


def test_the_fix_is_synced_rechecked_and_revises_the_report(world: World) -> None:
    shutil.copyfile(world.fixed, world.model)
    out = dsgo("sync", "--config", world.builder).stdout
    assert "bim: updated" in out
    assert "permit-check: checked" in out and "(version 2)" in out and "8 passed, 3 failed" in out
    report = f"{world.base}/id/report/permit-check"
    first = f"{world.base}/dataset/permit-check/version/1"
    rows = world.select(
        "municipality",
        f"""SELECT ?prev ?before ?after ?model WHERE {{
          GRAPH <{world.base}/dataset/permit-check> {{
            <{report}> <{PROV}wasRevisionOf> ?prev ;
                <{DSGO}passedSpecificationCount> ?after ; <{PROV}wasDerivedFrom> ?model .
            ?model <{PROV}specializationOf> <{world.base}/dataset/bim> .
            ?prev <{DSGO}passedSpecificationCount> ?before }} }}""",
    )
    assert rows == [(first, "5", "8", f"{world.base}/dataset/bim/version/2")]
    assert world.select("municipality", FAILING_912B.format(base=world.base)) == []
    out = dsgo("verify", f"{world.base}/dataset/permit-check", "--config", world.municipality)
    assert out.stdout.startswith(f"OK {BUILDER} signed")
