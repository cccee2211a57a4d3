"""iSHARE JWT creation/verification (trust/ishare_jwt.py), incl. the real iSHARE example token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from trust import pki
from trust.errors import CertificateError, JwtError
from trust.ishare_jwt import (
    b64url_encode,
    create_client_assertion,
    create_jwt,
    create_signed_response,
    sign_compact,
    verify_client_assertion,
    verify_signed_response,
)

DATA = Path(__file__).parent / "data" / "ishare"
ISHARE_ROOT = "8C39DD06E35DE8467004A542D0CA4B8FDC7D6F8F713F40A35BD9E65938A191CF"
SERVER = "EU.EORI.NL000000900"


@pytest.fixture(scope="module")
def ca() -> pki.DevCA:
    return pki.create_dev_ca("JWT test")


@pytest.fixture(scope="module")
def client(ca) -> pki.PartyIdentity:
    return pki.issue_party_certificate(ca, "EU.EORI.NL000000901", "Client")


@pytest.fixture(scope="module")
def trusted(ca) -> set[str]:
    return {ca.root_fingerprint}


def _forge(identity, header_extra=None, claims_extra=None, drop=(), now=None):
    now = time.time() if now is None else now
    header = {"alg": "RS256", "typ": "JWT", "x5c": identity.x5c, **(header_extra or {})}
    claims = {
        "iss": identity.party_id,
        "sub": identity.party_id,
        "aud": SERVER,
        "jti": "j-1",
        "iat": int(now),
        "exp": int(now) + 30,
        **(claims_extra or {}),
    }
    for name in drop:
        claims.pop(name)
    return sign_compact(header, claims, identity.private_key)


def _check(fn, *args, **kwargs) -> str:
    with pytest.raises((JwtError, CertificateError)) as e:
        fn(*args, **kwargs)
    return e.value.check


def test_roundtrip_client_assertion(client, trusted):
    token = create_client_assertion(client, SERVER)
    header = orjson.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert set(header) == {"alg", "typ", "x5c"} and header["alg"] == "RS256"
    v = verify_client_assertion(token, audience=SERVER, trusted_sha256=trusted)
    assert v.issuer == client.party_id
    assert v.claims["exp"] - v.claims["iat"] == 30
    assert v.leaf == client.certificate


def test_float_numeric_dates_accepted(client, trusted):
    now = time.time()
    token = _forge(client, claims_extra={"iat": now, "exp": now + 30})
    assert (
        verify_client_assertion(token, audience=SERVER, trusted_sha256=trusted).claims["iat"] == now
    )


def test_alg_none_rejected(client, trusted):
    good = _forge(client).split(".")
    header = b64url_encode(orjson.dumps({"alg": "none", "typ": "JWT", "x5c": client.x5c}))
    assert _check(
        verify_client_assertion, f"{header}.{good[1]}.", audience=SERVER, trusted_sha256=trusted
    ) in {"header_alg", "malformed"}
    assert (
        _check(
            verify_client_assertion,
            f"{header}.{good[1]}.{good[2]}",
            audience=SERVER,
            trusted_sha256=trusted,
        )
        == "header_alg"
    )


def test_hs256_with_public_key_rejected(client, trusted):
    pub = client.certificate.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64url_encode(orjson.dumps({"alg": "HS256", "typ": "JWT", "x5c": client.x5c}))
    payload = _forge(client).split(".")[1]
    sig = hmac.new(pub, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{b64url_encode(sig)}"
    assert (
        _check(verify_client_assertion, token, audience=SERVER, trusted_sha256=trusted)
        == "header_alg"
    )


@pytest.mark.parametrize(
    ("header_extra", "check"),
    [
        ({"kid": "k1"}, "header_params"),
        ({"jku": "http://x"}, "header_params"),
        ({"typ": "at+jwt"}, "header_typ"),
        ({"x5c": []}, "header_x5c"),
        ({"x5c": ["%%%"]}, "header_x5c"),
    ],
)
def test_header_allow_list(client, trusted, header_extra, check):
    token = _forge(client, header_extra=header_extra)
    assert _check(verify_client_assertion, token, audience=SERVER, trusted_sha256=trusted) == check


@pytest.mark.parametrize(
    ("claims_extra", "check"),
    [
        ({"aud": [SERVER]}, "aud_list"),
        ({"aud": "EU.EORI.NL000000999"}, "aud"),
        ({"sub": "EU.EORI.NL000000999"}, "iss_sub"),
        ({"exp": "+60"}, "exp_iat_30"),
        ({"iat": "-100", "exp": "-70"}, "expired"),
        ({"iat": "+100", "exp": "+130"}, "iat_future"),
        ({"iat": "now"}, "iat_exp"),
        ({"parties_info": {"count": 0}}, "token_kind"),
        ({"client_id": "x", "scope": "iSHARE"}, "token_kind"),
    ],
)
def test_claim_checks(client, trusted, claims_extra, check):
    # Times are offsets from the moment the test runs ("+60"), not from collection time.
    now = int(time.time())
    claims_extra = {
        k: now + int(v) if isinstance(v, str) and v[:1] in "+-" else v
        for k, v in claims_extra.items()
    }
    token = _forge(client, claims_extra=claims_extra)
    assert _check(verify_client_assertion, token, audience=SERVER, trusted_sha256=trusted) == check


def test_missing_jti(client, trusted):
    token = _forge(client, drop=("jti",))
    assert (
        _check(verify_client_assertion, token, audience=SERVER, trusted_sha256=trusted)
        == "claim_jti"
    )


def test_tampered_payload(client, trusted):
    h, p, s = _forge(client).split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(p + "=="))
    claims["jti"] = "other"
    token = f"{h}.{b64url_encode(orjson.dumps(claims))}.{s}"
    assert (
        _check(verify_client_assertion, token, audience=SERVER, trusted_sha256=trusted)
        == "signature"
    )


def test_signed_by_other_key_than_x5c(ca, client, trusted):
    other = pki.issue_party_certificate(ca, "EU.EORI.NL000000902", "Other")
    header = {"alg": "RS256", "typ": "JWT", "x5c": client.x5c}
    now = int(time.time())
    claims = {
        "iss": client.party_id,
        "sub": client.party_id,
        "aud": SERVER,
        "jti": "x",
        "iat": now,
        "exp": now + 30,
    }
    token = sign_compact(header, claims, other.private_key)
    assert (
        _check(verify_client_assertion, token, audience=SERVER, trusted_sha256=trusted)
        == "signature"
    )


def test_iss_must_match_certificate(ca, client, trusted):
    """A trusted certificate of party A cannot sign as party B."""
    now = int(time.time())
    claims = {
        "iss": "EU.EORI.NL000000903",
        "sub": "EU.EORI.NL000000903",
        "aud": SERVER,
        "jti": "x",
        "iat": now,
        "exp": now + 30,
    }
    token = sign_compact(
        {"alg": "RS256", "typ": "JWT", "x5c": client.x5c}, claims, client.private_key
    )
    assert (
        _check(verify_client_assertion, token, audience=SERVER, trusted_sha256=trusted)
        == "cert_party"
    )


def test_untrusted_chain(client):
    token = create_client_assertion(client, SERVER)
    assert (
        _check(verify_client_assertion, token, audience=SERVER, trusted_sha256={ISHARE_ROOT})
        == "untrusted_root"
    )


@pytest.mark.parametrize(
    "token", ["", "abc", "a.b", "a.b.c.d", "e30.e30.!!", "W10.e30.AA", "x" * 20000]
)
def test_malformed(token, trusted):
    assert _check(verify_client_assertion, token, audience=SERVER, trusted_sha256=trusted) in {
        "malformed",
        "oversized",
    }


def test_signed_response_kinds(client, trusted):
    token = create_signed_response(client, "party_info", {"party_id": "x"}, SERVER)
    v = verify_signed_response(
        token, claim="party_info", issuer=client.party_id, audience=SERVER, trusted_sha256=trusted
    )
    assert v.claims["party_info"] == {"party_id": "x"}
    # a signed response never passes as a client assertion, nor as another response kind
    assert (
        _check(verify_client_assertion, token, audience=SERVER, trusted_sha256=trusted)
        == "token_kind"
    )
    assert (
        _check(
            verify_signed_response,
            token,
            claim="trusted_list",
            issuer=None,
            audience=SERVER,
            trusted_sha256=trusted,
        )
        == "token_kind"
    )
    assert (
        _check(
            verify_signed_response,
            token,
            claim="party_info",
            issuer="EU.EORI.NL000000000",
            audience=SERVER,
            trusted_sha256=trusted,
        )
        == "iss"
    )
    # and a client assertion never passes as a signed response
    assertion = create_client_assertion(client, SERVER)
    assert (
        _check(
            verify_signed_response,
            assertion,
            claim="party_info",
            issuer=None,
            audience=SERVER,
            trusted_sha256=trusted,
        )
        == "token_kind"
    )


def test_anonymous_response_has_no_aud(client, trusted):
    token = create_jwt(client, None, {"capabilities_info": {}})
    v = verify_signed_response(
        token, claim="capabilities_info", issuer=None, audience=None, trusted_sha256=trusted
    )
    assert "aud" not in v.claims
    addressed = create_jwt(client, SERVER, {"capabilities_info": {}})
    assert (
        _check(
            verify_signed_response,
            addressed,
            claim="capabilities_info",
            issuer=None,
            audience=None,
            trusted_sha256=trusted,
        )
        == "aud"
    )


def test_real_ishare_token_verifies_at_its_time():
    token = (DATA / "example_dataspace_list_token.jwt").read_text().strip()
    v = verify_signed_response(
        token,
        claim="dataspace_info",
        issuer="EU.EORI.NL000000000",
        audience="EU.EORI.NL000000003",
        trusted_sha256={ISHARE_ROOT},
        now=1691078933 + 10,
    )
    assert len(v.chain) == 3
    assert v.chain[-1].subject.rfc4514_string() == "CN=TEST iSHARE Foundation eIDAS"
    info = v.claims["dataspace_info"]
    assert info["count"] == len(info["data"]) == 7
    assert info["data"][0]["dataspace_id"] == "EU.DS.NL.DLDS_Logistics"


def test_real_ishare_token_expired_now():
    token = (DATA / "example_dataspace_list_token.jwt").read_text().strip()
    assert (
        _check(
            verify_signed_response,
            token,
            claim="dataspace_info",
            issuer="EU.EORI.NL000000000",
            audience="EU.EORI.NL000000003",
            trusted_sha256={ISHARE_ROOT},
        )
        == "expired"
    )


def test_real_ishare_token_untrusted_without_root():
    token = (DATA / "example_dataspace_list_token.jwt").read_text().strip()
    assert (
        _check(
            verify_signed_response,
            token,
            claim="dataspace_info",
            issuer="EU.EORI.NL000000000",
            audience="EU.EORI.NL000000003",
            trusted_sha256={"00" * 32},
            now=1691078933 + 10,
        )
        == "untrusted_root"
    )


@settings(max_examples=150, deadline=None)
@given(
    st.text(max_size=300)
    | st.from_regex(r"[A-Za-z0-9_-]{0,40}\.[A-Za-z0-9_-]{0,40}\.[A-Za-z0-9_-]{0,40}")
)
def test_garbage_only_raises_trust_errors(garbage):
    """Arbitrary input never escapes as anything but a JwtError/CertificateError (-> 400, not 500)."""
    with pytest.raises((JwtError, CertificateError)):
        verify_client_assertion(garbage, audience=SERVER, trusted_sha256={ISHARE_ROOT})


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["alg", "typ", "x5c", "kid"]),
        st.one_of(
            st.none(), st.integers(), st.text(max_size=5), st.lists(st.text(max_size=5), max_size=2)
        ),
    )
)
def test_random_headers_rejected(header):
    token = f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(b'{}')}.AAAA"
    with pytest.raises((JwtError, CertificateError)):
        verify_client_assertion(token, audience=SERVER, trusted_sha256={ISHARE_ROOT})
