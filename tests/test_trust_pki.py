"""Chain validation, development CA, party identities and key/cert loading (trust/pki.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from trust import pki
from trust.errors import CertificateError, IdentifierError

DATA = Path(__file__).parent / "data" / "ishare"
ISHARE_ROOT = "8C39DD06E35DE8467004A542D0CA4B8FDC7D6F8F713F40A35BD9E65938A191CF"
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(autouse=True)
def _now_at_test_time() -> None:
    """NOW is the moment each test runs: certificates made by fixtures start 5 minutes earlier."""
    global NOW
    NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def ca() -> pki.DevCA:
    return pki.create_dev_ca("Test PKI")


@pytest.fixture(scope="module")
def party(ca: pki.DevCA) -> pki.PartyIdentity:
    return pki.issue_party_certificate(ca, "did:ishare:EU.NL.NTRNL-12345678", "Bouwer BV")


def _check(excinfo: pytest.ExceptionInfo[CertificateError]) -> str:
    return excinfo.value.check


def test_valid_chain_returns_leaf(ca, party):
    leaf = pki.validate_chain(party.chain, {ca.root_fingerprint}, NOW)
    assert leaf == party.certificate
    # the issuing CA may be the trust anchor as well, in colon form
    fp = pki.fingerprint_sha256(ca.issuing_cert)
    colon = ":".join(fp[i : i + 2] for i in range(0, len(fp), 2)).lower()
    assert pki.validate_chain(party.chain, {colon}, NOW) == party.certificate


def test_real_ishare_chain_validates():
    chain = pki.load_certificates_pem((DATA / "ABCTrucking.cert.pem").read_bytes())
    leaf = pki.validate_chain(chain, {ISHARE_ROOT}, dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    assert pki.x5t_s256(leaf).startswith("778e8858")
    assert "EU.EORI.NL000000001" in pki.certificate_party_ids(leaf)


def test_untrusted_root(ca, party):
    other = pki.create_dev_ca("Other")
    with pytest.raises(CertificateError) as e:
        pki.validate_chain(party.chain, {other.root_fingerprint}, NOW)
    assert _check(e) == "untrusted_root"


def test_empty_chain():
    with pytest.raises(CertificateError) as e:
        pki.validate_chain([], {ISHARE_ROOT}, NOW)
    assert _check(e) == "chain_empty"


def test_broken_signature_link(ca, party):
    other = pki.create_dev_ca("Other")
    chain = [party.certificate, other.issuing_cert, other.root_cert]
    with pytest.raises(CertificateError) as e:
        pki.validate_chain(chain, {other.root_fingerprint}, NOW)
    assert _check(e) == "chain_signature"


def test_expired_and_not_yet_valid(ca, party):
    for at in (NOW + dt.timedelta(days=800), NOW - dt.timedelta(days=1)):
        with pytest.raises(CertificateError) as e:
            pki.validate_chain(party.chain, {ca.root_fingerprint}, at)
        assert _check(e) == "validity"


def test_leaf_that_is_ca(ca):
    bad = pki.issue_party_certificate(ca, "EU.EORI.NL000000111", "Bad", ca_flag=True)
    with pytest.raises(CertificateError) as e:
        pki.validate_chain(bad.chain, {ca.root_fingerprint}, NOW)
    assert _check(e) == "leaf_is_ca"


def test_wrong_key_usage(ca):
    bad = pki.issue_party_certificate(
        ca, "EU.EORI.NL000000112", "Bad", key_usage=("key_encipherment",)
    )
    with pytest.raises(CertificateError) as e:
        pki.validate_chain(bad.chain, {ca.root_fingerprint}, NOW)
    assert _check(e) == "key_usage"


def test_small_rsa_key(ca):
    bad = pki.issue_party_certificate(ca, "EU.EORI.NL000000113", "Bad", key=pki.new_rsa_key(1024))
    with pytest.raises(CertificateError) as e:
        pki.validate_chain(bad.chain, {ca.root_fingerprint}, NOW)
    assert _check(e) == "key_size"


def test_leaf_signed_by_non_ca(ca, party):
    """A party certificate must not be able to act as an issuer."""
    key = pki.new_rsa_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "child")])
    child = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(party.certificate.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False), True
        )
        .sign(party.private_key, hashes.SHA256())
    )
    with pytest.raises(CertificateError) as e:
        pki.validate_chain([child, *party.chain], {ca.root_fingerprint}, NOW)
    assert _check(e) == "issuer_not_ca"


def test_self_signed_leaf():
    key = pki.new_rsa_key()
    name = x509.Name([x509.NameAttribute(NameOID.SERIAL_NUMBER, "EU.EORI.NL000000114")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False), True
        )
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(CertificateError) as e:
        pki.validate_chain([cert], {pki.fingerprint_sha256(cert)}, NOW)
    assert _check(e) == "self_signed_leaf"


def test_party_certificate_carries_id(party):
    cert = party.certificate
    assert pki.certificate_party_ids(cert) == {"did:ishare:EU.NL.NTRNL-12345678"}
    org = cert.subject.get_attributes_for_oid(pki.ORGANIZATION_IDENTIFIER)[0].value
    assert org == party.party_id
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.content_commitment and not ku.key_cert_sign
    assert cert.public_key().key_size == 2048
    assert pki.certificate_matches_party(cert, party.party_id)
    assert not pki.certificate_matches_party(cert, "EU.EORI.NL000000001")


@pytest.mark.parametrize(
    "pid",
    [
        "EU.EORI.NL000000001",
        "did:ishare:EU.NL.NTRNL-10000001",
        "EU.EORI.DE12345",
        "did:web:builder.example.com",
        "did:web:node.example.com%3A8443:parties:builder",
    ],
)
def test_party_id_accepted(pid):
    assert pki.validate_party_id(pid) == pid


@pytest.mark.parametrize(
    "pid",
    [
        "",
        "NL000000001",
        "EU.EORI.nl000000001",
        "did:ishare:EU.NL.NTRNL-123",
        "did:web:x",
        "did:web:Example.com",
        "did:web:example.com/path",
        "EU.EORI.NL0000000001234567",
    ],
)
def test_party_id_rejected(pid):
    with pytest.raises(IdentifierError):
        pki.validate_party_id(pid)


def test_pem_roundtrip_with_passphrase(tmp_path, party):
    key_path, chain_path = tmp_path / "k.pem", tmp_path / "c.pem"
    pki.write_pem_identity(party, key_path, chain_path, passphrase="s3cret")
    assert b"ENCRYPTED" in key_path.read_bytes()
    assert key_path.stat().st_mode & 0o077 == 0
    loaded = pki.load_pem_identity(key_path, chain_path, passphrase="s3cret")
    assert loaded.party_id == party.party_id
    assert loaded.chain == party.chain
    with pytest.raises((ValueError, TypeError)):
        pki.load_pem_identity(key_path, chain_path, passphrase="wrong")


def test_pkcs12_roundtrip(tmp_path, party):
    path = tmp_path / "p.p12"
    pki.write_pkcs12_identity(party, path, "pw")
    loaded = pki.load_pkcs12_identity(path, "pw")
    assert loaded.chain == party.chain
    assert loaded.x5c == party.x5c


def test_key_must_match_certificate(party, ca):
    other = pki.issue_party_certificate(ca, "EU.EORI.NL000000115", "Other")
    key_pem, _ = pki.identity_to_pem(other)
    _, chain_pem = pki.identity_to_pem(party)
    with pytest.raises(CertificateError) as e:
        pki.load_pem_identity(key_pem, chain_pem)
    assert _check(e) == "key_mismatch"


def test_load_real_ishare_identity():
    ident = pki.load_pem_identity(DATA / "ABCTrucking.key.pem", DATA / "ABCTrucking.cert.pem")
    assert ident.party_id == "EU.EORI.NL000000001"
    assert len(ident.x5c) == 3
