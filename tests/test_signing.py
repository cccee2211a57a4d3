"""Detached dataset signatures: what verifies, and each way a forged or altered one is refused."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import orjson
import pyoxigraph as ox
import pytest

from trust.errors import CertificateError, TrustError
from trust.pki import (
    create_dev_ca,
    fingerprint_sha256,
    issue_party_certificate,
    load_certificates_pem,
    load_pem_identity,
)
from trust.signing import (
    SignatureError,
    b64url_encode,
    dataset_digest,
    sign_dataset,
    sign_jws,
    verify_dataset,
)

EX = "http://example.org/"
P, Q = ox.NamedNode(EX + "p"), ox.NamedNode(EX + "q")
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(autouse=True)
def _now_at_test_time() -> None:
    """NOW is the moment each test runs: certificates made by fixtures start 5 minutes earlier."""
    global NOW
    NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def ca():
    return create_dev_ca("Test Scheme")


@pytest.fixture(scope="module")
def identity(ca):
    return issue_party_certificate(ca, "EU.EORI.NL000000001", "Builder BV")


@pytest.fixture(scope="module")
def trusted(ca):
    return {ca.root_fingerprint}


def _data(a: str = "a", b: str = "b") -> list[ox.Triple]:
    s = ox.NamedNode(EX + "building/1")
    ba, bb = ox.BlankNode(a), ox.BlankNode(b)
    return [
        ox.Triple(s, P, ba),
        ox.Triple(s, P, bb),
        ox.Triple(ba, Q, ox.Literal("21.5", datatype=ox.NamedNode(EX + "celsius"))),
        ox.Triple(bb, Q, ox.Literal("kitchen", language="nl")),
    ]


def test_signature_verifies(identity, trusted) -> None:
    jws = sign_dataset(_data(), identity)
    assert jws.split(".")[1] == ""
    assert verify_dataset(_data(), jws, trusted, NOW) == "EU.EORI.NL000000001"


def test_reordered_and_relabelled_equal_content_verifies(identity, trusted) -> None:
    jws = sign_dataset(_data(), identity)
    relabelled = list(reversed(_data(a="x9", b="y7")))
    assert verify_dataset(relabelled, jws, trusted, NOW) == identity.party_id
    quads = [ox.Quad(t.subject, t.predicate, t.object) for t in relabelled]
    assert verify_dataset(quads, jws, trusted, NOW) == identity.party_id


def test_changed_triple_rejected(identity, trusted) -> None:
    jws = sign_dataset(_data(), identity)
    changed = _data()
    changed[2] = ox.Triple(changed[2].subject, Q, ox.Literal("22.5"))
    with pytest.raises(SignatureError) as err:
        verify_dataset(changed, jws, trusted, NOW)
    assert err.value.check == "signature"


def test_added_and_removed_triple_rejected(identity, trusted) -> None:
    jws = sign_dataset(_data(), identity)
    extra = [*_data(), ox.Triple(ox.NamedNode(EX + "x"), P, ox.Literal("y"))]
    for data in (extra, _data()[:-1]):
        with pytest.raises(SignatureError):
            verify_dataset(data, jws, trusted, NOW)


def test_content_changing_blank_node_relabel_rejected(identity, trusted) -> None:
    """Same labels and same shapes of triples, but the two values swap blank nodes."""
    jws = sign_dataset(_data(), identity)
    data = _data()
    swapped = [
        data[0],
        data[1],
        ox.Triple(ox.BlankNode("a"), Q, data[3].object),
        ox.Triple(ox.BlankNode("a"), Q, data[2].object),
    ]
    with pytest.raises(SignatureError):
        verify_dataset(swapped, jws, trusted, NOW)


def test_untrusted_certificate_rejected(identity, trusted) -> None:
    rogue = issue_party_certificate(create_dev_ca("Rogue"), identity.party_id, "Builder BV")
    jws = sign_dataset(_data(), rogue)
    with pytest.raises(CertificateError) as err:
        verify_dataset(_data(), jws, trusted, NOW)
    assert err.value.check == "untrusted_root"


def test_expired_certificate_rejected(identity, trusted) -> None:
    jws = sign_dataset(_data(), identity)
    with pytest.raises(CertificateError) as err:
        verify_dataset(_data(), jws, trusted, NOW + dt.timedelta(days=3 * 365))
    assert err.value.check == "validity"


def _resign(identity, header_changes: dict, payload: bytes | None = None) -> str:
    header = {
        "alg": "RS256",
        "typ": "dsgo-dataset+jws",
        "canon": "RDFC-1.0",
        "hash": "sha-256",
        "party": identity.party_id,
        "iat": int(NOW.timestamp()),
        "x5c": list(identity.x5c),
    }
    header.update(header_changes)
    head, _p, sig = sign_jws(
        header, payload or dataset_digest(_data()), identity.private_key
    ).split(".")
    return f"{head}..{sig}"


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        ({"typ": "JWT"}, "header_typ"),
        ({"canon": "URDNA2015"}, "header_canon"),
        ({"hash": "sha-1"}, "header_hash"),
        ({"party": ""}, "header_party"),
        ({"party": "EU.EORI.NL000000002"}, "cert_party"),
        ({"crit": ["b64"]}, "header_crit"),
        ({"x5c": "not-a-list"}, "header_x5c"),
        ({"x5c": ["bm90IGEgY2VydA=="]}, "header_x5c"),
    ],
)
def test_header_checks(identity, trusted, changes, check) -> None:
    jws = _resign(identity, changes)
    with pytest.raises(TrustError) as err:
        verify_dataset(_data(), jws, trusted, NOW)
    assert err.value.check == check


def test_alg_none_rejected(identity, trusted) -> None:
    good = sign_dataset(_data(), identity)
    header = orjson.loads(base64.urlsafe_b64decode(good.split(".")[0] + "=="))
    header["alg"] = "none"
    forged = f"{b64url_encode(orjson.dumps(header))}.."
    with pytest.raises(SignatureError) as err:
        verify_dataset(_data(), forged, trusted, NOW)
    assert err.value.check == "header_alg"


def test_tampered_header_breaks_signature(identity, trusted) -> None:
    other = issue_party_certificate(
        create_dev_ca("Test Scheme 2"), "EU.EORI.NL000000002", "Other BV"
    )
    good = sign_dataset(_data(), identity)
    forged_head = _resign(other, {"x5c": list(identity.x5c)}).split(".")[0]
    with pytest.raises(SignatureError) as err:
        verify_dataset(_data(), f"{forged_head}..{good.split('.')[2]}", trusted, NOW)
    assert err.value.check == "signature"


@pytest.mark.parametrize("jws", ["", "a.b", "a.b.c.d", "$$$..abc", "..sig"])
def test_malformed_rejected(trusted, jws) -> None:
    with pytest.raises(SignatureError) as err:
        verify_dataset(_data(), jws, trusted, NOW)
    assert err.value.check == "malformed"


def test_attached_payload_rejected(identity, trusted) -> None:
    head, _e, sig = sign_dataset(_data(), identity).split(".")
    attached = f"{head}.{b64url_encode(dataset_digest(_data()))}.{sig}"
    with pytest.raises(SignatureError) as err:
        verify_dataset(_data(), attached, trusted, NOW)
    assert err.value.check == "not_detached"


ISHARE = Path(__file__).parent / "data" / "ishare"


@pytest.mark.skipif(not ISHARE.is_dir(), reason="iSHARE test material not present")
def test_real_ishare_test_participant_signs() -> None:
    """A real iSHARE TEST certificate chain (G5 issuing CA, eIDAS root) signs and verifies."""
    abc = load_pem_identity(ISHARE / "ABCTrucking.key.pem", ISHARE / "ABCTrucking.cert.pem")
    root = load_certificates_pem(
        (ISHARE / "TEST_iSHARE_Foundation_eIDAS_root.cert.pem").read_bytes()
    )
    jws = sign_dataset(_data(), abc)
    assert verify_dataset(_data(), jws, {fingerprint_sha256(root[0])}, NOW) == "EU.EORI.NL000000001"
    with pytest.raises(CertificateError):
        verify_dataset(_data(), jws, {"00" * 32}, NOW)
