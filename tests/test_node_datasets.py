"""Dataset IRIs dereference (whole-dataset policy, negotiation, ETag) and signed versions end to end.

Real processes: a builder node (also the scheme registry) and a renovator party registered there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest
import rdflib
from nodeproc import ProcessGroup, dsgo, free_port, init_owner_and_guest, token_for
from rdflib.compare import isomorphic

BUILDER = "EU.EORI.NL000000101"
RENOVATOR = "EU.EORI.NL000000201"
BIM = """\
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix bot: <https://w3id.org/bot#> .
<building/b1> a bot:Building ; rdfs:label "Huis"@nl ; bot:hasStorey <storey/s1> .
<storey/s1> a bot:Storey ; rdfs:label "Begane grond" ; <https://example.org/def#area> [
    <http://qudt.org/schema/qudt/numericValue> 81.5 ] .
"""
BAG = """\
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
<pand/p1> a <https://example.org/def#Pand> ; rdfs:label "Pand 1" .
"""
BIG_TRIPLES = 12_000  # above max_results below, and more than two streaming batches
MAX_RESULTS = 10_000


@dataclass
class World:
    builder: Path
    renovator: Path
    base: str
    root: Path

    def get(self, path: str, config: Path | None, accept: str = "*/*", **headers: str):
        if config is not None:
            headers["Authorization"] = f"Bearer {token_for(config, self.base)}"
        return httpx.get(f"{self.base}{path}", headers={"Accept": accept, **headers}, timeout=60)

    def verify(self, dataset: str, config: Path | None = None):
        target = f"{self.base}/dataset/{dataset}"
        return dsgo("verify", target, "--config", config or self.renovator, check=False)


@pytest.fixture(scope="module")
def world(module_procs: ProcessGroup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("datasets")
    port = free_port()
    builder, renovator = init_owner_and_guest(root, BUILDER, RENOVATOR, port)
    base = f"http://127.0.0.1:{port}"
    big = "".join(
        f'<{base}/id/reading/{i}> <https://example.org/def#value> "{i}" .\n'
        for i in range(BIG_TRIPLES)
    )
    for name, text, ext in (("bim", BIM, "ttl"), ("bag", BAG, "ttl"), ("big", big, "nt")):
        path = root / f"{name}.{ext}"
        path.write_text(text)
        dsgo("load", path, "--dataset", name, "--config", builder)
    # Signed while the node is stopped: `dsgo sign` opens the store directly.
    out = dsgo("sign", "--dataset", "bim", "--config", builder)
    assert "signed dataset bim: 7 triples" in out.stdout
    assert (builder.parent / "data" / "signatures" / "bim.json").is_file()
    module_procs.serve(builder, port, name="builder", env={"DSGO_STORE_MAX_RESULTS": "10000"})
    yield World(builder, renovator, base, root)


def _graph(resp: httpx.Response, fmt: str) -> rdflib.Graph:
    assert resp.status_code == 200, resp.text
    return rdflib.Graph().parse(data=resp.content, format=fmt)


def test_owner_gets_the_dataset_in_every_format(world: World) -> None:
    graphs = {}
    for accept, fmt in (
        ("application/n-triples", "nt"),
        ("text/turtle", "turtle"),
        ("application/ld+json", "json-ld"),
    ):
        resp = world.get("/dataset/bim", world.builder, accept)
        assert resp.headers["content-type"].startswith(accept)
        graphs[fmt] = _graph(resp, fmt)
    assert all(len(g) == 7 for g in graphs.values()), {k: len(g) for k, g in graphs.items()}
    assert isomorphic(graphs["nt"], graphs["turtle"])
    assert isomorphic(graphs["nt"], graphs["json-ld"])
    nq = world.get("/dataset/bim", world.builder, "application/n-quads")
    assert nq.headers["content-type"].startswith("application/n-quads")
    quads = list(ox.parse(nq.content, ox.RdfFormat.N_QUADS))
    assert len(quads) == 7
    assert {q.graph_name.value for q in quads} == {f"{world.base}/dataset/bim"}


def test_strong_etag_and_304(world: World) -> None:
    first = world.get("/dataset/bim", world.builder, "text/turtle")
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    again = world.get("/dataset/bim", world.builder, "text/turtle", **{"If-None-Match": etag})
    assert again.status_code == 304
    other = world.get("/dataset/bim", world.builder, "application/n-triples")
    assert other.headers["etag"] != etag  # a different representation
    assert "Accept" in first.headers["vary"]


def test_not_acceptable_lists_offered_types(world: World) -> None:
    resp = world.get("/dataset/bim", world.builder, "image/png")
    assert resp.status_code == 406
    assert "application/n-quads" in resp.json()["offered"]


def test_a_browser_gets_the_dataset_page(world: World) -> None:
    """Issue 15: text/html is the dataset's page (node.web), not a 406 or a download."""
    resp = world.get("/dataset/bim", world.builder, "text/html")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    assert "Dataset bim" in resp.text and 'href="/dataset/bim?format=nt"' in resp.text


def test_big_dataset_is_streamed_and_never_built_in_memory(world: World) -> None:
    resp = world.get("/dataset/big", world.builder, "text/turtle")
    assert resp.status_code == 406, resp.text
    assert "max_results" in resp.json()["error_description"]
    both = world.get("/dataset/big", world.builder, "text/turtle, application/n-triples;q=0.5")
    assert both.headers["content-type"].startswith("application/n-triples")
    lines = [line for line in both.text.splitlines() if line.strip()]
    assert len(lines) == BIG_TRIPLES
    assert len(set(lines)) == BIG_TRIPLES


def test_whole_dataset_rule(world: World) -> None:
    assert world.get("/dataset/bim", None).status_code == 401
    # No policy yet: 403 with the enforcer's explanation, for the data and the signature.
    for path in ("/dataset/bim", "/dataset/bim/signature"):
        resp = world.get(path, world.renovator)
        assert resp.status_code == 403, resp.text
        body = resp.json()
        assert body["error"] == "access_denied"
        assert body["explanation"]["decision"] == "Deny"
        assert body["explanation"]["party"] == RENOVATOR
    # A partial (type) grant is not the whole dataset.
    dsgo(
        *("policy", "grant", "--config", world.builder, "--to", RENOVATOR),
        *("--type", "bot:Building"),
    )
    assert world.get("/dataset/bim", world.renovator).status_code == 403
    dsgo("policy", "grant", "--config", world.builder, "--to", RENOVATOR, "--dataset", "bim")
    resp = world.get("/dataset/bim", world.renovator, "application/n-triples")
    assert len(_graph(resp, "nt")) == 7
    bag = world.get("/dataset/bag", world.renovator)
    assert bag.status_code == 403
    assert bag.json()["explanation"]["target"] == f"{world.base}/dataset/bag"
    # Unknown datasets: 404 for the owner, but 403 for others (no existence leak).
    assert world.get("/dataset/nothing", world.builder).status_code == 404
    assert world.get("/dataset/nothing", world.renovator).status_code == 403
    assert world.get("/dataset/Bad%20Name", world.builder).status_code == 400
    # Both decisions are in the builder's audit log.
    tail = dsgo("audit", "tail", "--config", world.builder, "-n", "200").stdout
    entries = [json.loads(line) for line in tail.splitlines()]
    mine = [e for e in entries if e["party"] == RENOVATOR]
    assert any(e["kind"] == "permit" and e["target"] == f"{world.base}/dataset/bim" for e in mine)
    assert any(e["kind"] == "deny" and e["target"] == f"{world.base}/dataset/bag" for e in mine)


def test_audit_dataset_has_no_data(world: World) -> None:
    resp = world.get("/dataset/audit", world.builder)
    assert resp.status_code == 404
    assert "/audit/entries" in resp.json()["error_description"]
    assert world.get("/dataset/audit", world.renovator).status_code == 403


def test_signed_dataset_verifies_until_it_changes(world: World) -> None:
    # The renovator (granted bim above) verifies the builder's signature.
    sig_url = f"{world.base}/dataset/bim/signature"
    resp = world.get("/dataset/bim", world.renovator, "application/n-triples")
    assert resp.links["signature"]["url"] == sig_url
    sig = world.get("/dataset/bim/signature", world.renovator)
    assert sig.status_code == 200 and sig.headers["content-type"].startswith("application/jose")
    assert ".." in sig.text
    ok = world.verify("bim")
    assert ok.returncode == 0, ok.stderr
    assert f"OK {BUILDER} signed {world.base}/dataset/bim (7 triples)" in ok.stdout
    # The renovator cannot sign the builder's datasets.
    token = token_for(world.renovator, world.base)
    denied = httpx.post(
        f"{world.base}/admin/sign/bim", headers={"Authorization": f"Bearer {token}"}
    )
    assert denied.status_code == 403

    # The builder loads a changed model: the old signature is no longer served as valid.
    changed = world.root / "bim-v2.ttl"
    changed.write_text(BIM.replace("81.5", "82.0"))
    dsgo("load", changed, "--dataset", "bim", "--config", world.builder)
    resp = world.get("/dataset/bim", world.renovator, "application/n-triples")
    assert resp.status_code == 200 and "signature" not in resp.links
    stale = world.get("/dataset/bim/signature", world.renovator)
    assert stale.status_code == 404
    assert "stale" in stale.json()["error_description"]
    failed = world.verify("bim")
    assert failed.returncode == 1
    assert "no valid signature" in failed.stderr and "stale" in failed.stderr
    assert "OK" not in failed.stdout

    # Re-signed through the running node's admin API: valid again, for the new data.
    out = dsgo("sign", "--dataset", "bim", "--config", world.builder)
    assert "signed dataset bim: 7 triples" in out.stdout
    again = world.verify("bim")
    assert again.returncode == 0, again.stderr
    assert f"OK {BUILDER}" in again.stdout


def test_verify_fails_clearly_without_access_or_signature(world: World) -> None:
    refused = world.verify("bag")
    assert refused.returncode == 1
    assert "HTTP 403" in refused.stderr
    unsigned = world.verify("bag", config=world.builder)
    assert unsigned.returncode == 1
    assert "has no signature" in unsigned.stderr and "dsgo sign --dataset bag" in unsigned.stderr
    not_dataset = world.verify("bim/extra")
    assert not_dataset.returncode == 1 and "not a dataset IRI" in not_dataset.stderr
