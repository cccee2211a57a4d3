"""node/signatures.py: signing a stored dataset version, refusing stale signatures, verifying data."""

from __future__ import annotations

import json
from pathlib import Path

import pyoxigraph as ox
import pytest

import node.signatures as signatures
from node.signatures import (
    NoSignature,
    SigningRace,
    StaleSignature,
    current_signature,
    has_current_signature,
    load_signature,
    maybe_sign,
    sign_stored_dataset,
    signature_path,
    verify_triples,
    version_marker,
)
from node.store import OxigraphStore, UnknownDataset
from trust.errors import CertificateError
from trust.pki import create_dev_ca, issue_party_certificate
from trust.signing import SignatureError

BASE = "http://node.test"
PARTY = "EU.EORI.NL000000101"
GRAPH = f"{BASE}/dataset/bim"

DATA_V1 = (
    f'<{BASE}/id/space/1> <http://www.w3.org/2000/01/rdf-schema#label> "Kitchen" .\n'
    f"<{BASE}/id/space/1> <https://w3id.org/props#area> _:a .\n"
    '_:a <http://qudt.org/schema/qudt/numericValue> "12.5" .\n'
).encode()
DATA_V2 = DATA_V1.replace(b'"12.5"', b'"13.0"')


@pytest.fixture(scope="module")
def ca():
    return create_dev_ca("Test Scheme")


@pytest.fixture(scope="module")
def identity(ca):
    return issue_party_certificate(ca, PARTY, "Builder BV")


@pytest.fixture
def store():
    s = OxigraphStore(BASE, None)
    s.replace_dataset("bim", DATA_V1, ox.RdfFormat.N_TRIPLES)
    yield s
    s.close()


def _triples(store: OxigraphStore) -> list[ox.Triple]:
    return [q.triple for q in store.quads(graphs=[GRAPH])]


def test_signed_version_is_current_and_verifies(store, identity, ca, tmp_path: Path) -> None:
    signed = sign_stored_dataset(store, identity, tmp_path, "bim")
    assert signed.party == PARTY and signed.triples == 3 and signed.graph == GRAPH
    assert signed.jws.count(".") == 2 and ".." in signed.jws  # detached
    assert signature_path(tmp_path, "bim").is_file()
    assert current_signature(store, tmp_path, "bim").jws == signed.jws
    assert has_current_signature(store, tmp_path, "bim")
    assert verify_triples(_triples(store), signed.jws, {ca.root_fingerprint}) == PARTY


def test_data_fetched_as_ntriples_or_nquads_verifies(store, identity, ca, tmp_path) -> None:
    signed = sign_stored_dataset(store, identity, tmp_path, "bim")
    nt = ox.serialize(_triples(store), format=ox.RdfFormat.N_TRIPLES)
    nq = ox.serialize(list(store.quads(graphs=[GRAPH])), format=ox.RdfFormat.N_QUADS)
    roots = {ca.root_fingerprint}
    for body, fmt in ((nt, ox.RdfFormat.N_TRIPLES), (nq, ox.RdfFormat.N_QUADS)):
        parsed = list(ox.parse(body, fmt))  # fresh blank node ids: canonicalisation handles them
        assert verify_triples(parsed, signed.jws, roots, graph=GRAPH) == PARTY


def test_quads_from_another_graph_are_refused(store, identity, ca, tmp_path) -> None:
    signed = sign_stored_dataset(store, identity, tmp_path, "bim")
    other = ox.NamedNode(f"{BASE}/dataset/bag")
    quads = [ox.Quad(t.subject, t.predicate, t.object, other) for t in _triples(store)]
    with pytest.raises(SignatureError) as err:
        verify_triples(quads, signed.jws, {ca.root_fingerprint}, graph=GRAPH)
    assert err.value.check == "foreign_graph"


def test_replaced_dataset_makes_the_signature_stale(store, identity, ca, tmp_path) -> None:
    signed = sign_stored_dataset(store, identity, tmp_path, "bim")
    before = version_marker(store, "bim")
    store.replace_dataset("bim", DATA_V2, ox.RdfFormat.N_TRIPLES)
    assert version_marker(store, "bim") != before
    with pytest.raises(StaleSignature, match="stale.*dsgo sign --dataset bim"):
        current_signature(store, tmp_path, "bim")
    assert not has_current_signature(store, tmp_path, "bim")
    # ... and the old JWS really does not match the new data.
    with pytest.raises(SignatureError) as err:
        verify_triples(_triples(store), signed.jws, {ca.root_fingerprint})
    assert err.value.check == "signature"
    # Re-signing makes it current again.
    sign_stored_dataset(store, identity, tmp_path, "bim")
    assert verify_triples(
        _triples(store), current_signature(store, tmp_path, "bim").jws, {ca.root_fingerprint}
    )


def test_reloading_identical_data_is_still_a_new_version(store, identity, tmp_path) -> None:
    sign_stored_dataset(store, identity, tmp_path, "bim")
    store.replace_dataset("bim", DATA_V1, ox.RdfFormat.N_TRIPLES)
    with pytest.raises(StaleSignature):
        current_signature(store, tmp_path, "bim")


def test_append_makes_the_signature_stale(store, identity, tmp_path) -> None:
    sign_stored_dataset(store, identity, tmp_path, "bim")
    extra = ox.Triple(
        ox.NamedNode(f"{BASE}/id/space/2"),
        ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#label"),
        ox.Literal("Hall"),
    )
    store.append("bim", [extra])
    with pytest.raises(StaleSignature):
        current_signature(store, tmp_path, "bim")


def test_missing_signature_and_unknown_dataset(store, tmp_path) -> None:
    with pytest.raises(NoSignature) as err:
        current_signature(store, tmp_path, "bim")
    assert not isinstance(err.value, StaleSignature)
    assert err.value.status == 404
    with pytest.raises(UnknownDataset):
        current_signature(store, tmp_path, "nope")
    with pytest.raises(UnknownDataset):
        sign_stored_dataset(store, None, tmp_path, "nope")  # type: ignore[arg-type]


def test_damaged_signature_file_counts_as_none(store, identity, tmp_path) -> None:
    sign_stored_dataset(store, identity, tmp_path, "bim")
    signature_path(tmp_path, "bim").write_text("{not json", encoding="utf-8")
    assert load_signature(tmp_path, "bim") is None
    with pytest.raises(NoSignature):
        current_signature(store, tmp_path, "bim")


def test_signature_file_is_replaced_without_leftovers(store, identity, tmp_path) -> None:
    first = sign_stored_dataset(store, identity, tmp_path, "bim")
    store.replace_dataset("bim", DATA_V2, ox.RdfFormat.N_TRIPLES)
    second = sign_stored_dataset(store, identity, tmp_path, "bim")
    assert first.marker != second.marker
    files = sorted(p.name for p in (tmp_path / "signatures").iterdir())
    assert files == ["bim.json"]
    raw = json.loads((tmp_path / "signatures" / "bim.json").read_text())
    assert raw["marker"] == second.marker and raw["jws"] == second.jws


def test_untrusted_signer_is_refused(store, identity, tmp_path) -> None:
    signed = sign_stored_dataset(store, identity, tmp_path, "bim")
    other_scheme = create_dev_ca("Other Scheme")
    with pytest.raises(CertificateError) as err:
        verify_triples(_triples(store), signed.jws, {other_scheme.root_fingerprint})
    assert err.value.check == "untrusted_root"


def test_signing_retries_while_the_dataset_changes(store, identity, tmp_path, monkeypatch):
    calls = iter(range(1000))
    monkeypatch.setattr(signatures, "version_marker", lambda s, n: f"v{next(calls)}")
    with pytest.raises(SigningRace):
        sign_stored_dataset(store, identity, tmp_path, "bim")
    assert not signature_path(tmp_path, "bim").exists()


def test_maybe_sign_skips_big_datasets(store, identity, tmp_path) -> None:
    assert maybe_sign(store, identity, tmp_path, "bim", limit=2) is None
    assert not signature_path(tmp_path, "bim").exists()
    assert maybe_sign(store, identity, tmp_path, "bim", limit=3) is not None
    assert has_current_signature(store, tmp_path, "bim")
