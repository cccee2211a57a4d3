"""trust.jades and trust.receipts: JAdES HTTP-header signatures (ETSI TS 119 182-1 HttpHeaders).

Each rejection path has its own case; every case checks the named `check`, so a verifier that
accepted anything, or refused for the wrong reason, fails here.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from pathlib import Path

import orjson
import pytest

from trust.errors import TrustError
from trust.jades import (
    HTTP_HEADERS_MID,
    ExchangeSignatureError,
    HttpMessage,
    body_digest,
    check_registered,
    sign_message,
    signing_payload,
    verify_message,
)
from trust.pki import create_dev_ca, fingerprint_sha256, issue_party_certificate
from trust.receipts import ReceiptStore, verify_offline
from trust.registry import Adherence, Party, PartyCertificate

BUILDER = "EU.EORI.NL000000101"
OTHER = "EU.EORI.NL000000102"
BODY = b'{"head":{"vars":["s"]},"results":{"bindings":[]}}'
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def pki():
    issued = NOW - dt.timedelta(days=2)
    ca = create_dev_ca(now=issued)
    builder = issue_party_certificate(ca, BUILDER, "Builder", now=issued)
    other = issue_party_certificate(ca, OTHER, "Other", now=issued)
    return ca, builder, other, {ca.root_fingerprint}


def response(body: bytes = BODY, **headers: str) -> HttpMessage:
    base = {"content-type": "application/sparql-results+json"}
    base.update(headers)
    return HttpMessage("POST", "/sparql?x=1", "127.0.0.1:8101", base, body)


def signed(identity, message: HttpMessage, at: dt.datetime | None = None) -> HttpMessage:
    extra = sign_message(message, identity, at=at)
    headers = {**message.headers, **{k.lower(): v for k, v in extra.items()}}
    return HttpMessage(message.method, message.target, message.host, headers, message.body)


def header_of(message: HttpMessage) -> dict:
    head = message.headers["x-jws-signature"].split(".")[0]
    return orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))


def reseal(identity, message: HttpMessage, change) -> HttpMessage:
    """The message's signature with its protected header changed by `change`, signed again
    (so only the changed rule can refuse it)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    header = header_of(message)
    change(header)
    head = base64.urlsafe_b64encode(orjson.dumps(header)).rstrip(b"=").decode()
    pars = header.get("sigD", {}).get("pars", [])
    values = [(p, message.value(p) or "") for p in pars if isinstance(p, str)]
    sig = identity.private_key.sign(
        head.encode() + b"." + signing_payload(values), padding.PKCS1v15(), hashes.SHA256()
    )
    jws = f"{head}..{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"
    headers = {**message.headers, "x-jws-signature": jws}
    return HttpMessage(message.method, message.target, message.host, headers, message.body)


def verify(message: HttpMessage, roots, **kw):
    return verify_message(message.headers.get("x-jws-signature"), message, roots, **kw)


def test_sign_then_verify_names_signer_time_and_signed_headers(pki) -> None:
    _, builder, _, roots = pki
    msg = signed(builder, response(), at=NOW)
    header = header_of(msg)
    assert header["b64"] is False and set(header["crit"]) == {"sigT", "sigD", "b64"}
    assert header["sigD"] == {
        "mId": HTTP_HEADERS_MID,
        "pars": ["(request-target)", "host", "content-type", "digest"],
    }
    assert header["x5c"] == list(builder.x5c)
    result = verify(msg, roots, now=NOW, expected_party=BUILDER)
    assert result.signer == BUILDER
    assert result.signed_at == NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert dict(result.signed_headers)["(request-target)"] == "post /sparql?x=1"
    expected = "SHA-256=" + base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    assert result.digest == expected == msg.headers["digest"] == body_digest(BODY)
    # Without an expected party the signer is read from the certificate.
    assert verify(msg, roots, now=NOW).signer == BUILDER


def test_payload_is_the_header_lines_in_pars_order() -> None:
    assert signing_payload([("(request-target)", "get /a"), ("host", "h:1")]) == (
        b"(request-target): get /a\nhost: h:1"
    )


def test_content_encoding_is_signed_when_present(pki) -> None:
    _, builder, _, roots = pki
    msg = signed(builder, response(**{"content-encoding": "identity"}), at=NOW)
    assert "content-encoding" in header_of(msg)["sigD"]["pars"]
    verify(msg, roots, now=NOW)


@pytest.mark.parametrize(
    ("tamper", "check"),
    [
        (
            lambda m: HttpMessage(m.method, m.target, m.host, m.headers, m.body + b" "),
            "digest_mismatch",
        ),
        (lambda m: HttpMessage("GET", m.target, m.host, m.headers, m.body), "signature_invalid"),
        (lambda m: HttpMessage(m.method, "/other", m.host, m.headers, m.body), "signature_invalid"),
        (
            lambda m: HttpMessage(m.method, m.target, "evil:1", m.headers, m.body),
            "signature_invalid",
        ),
        (
            lambda m: HttpMessage(
                m.method, m.target, m.host, {**m.headers, "content-type": "text/html"}, m.body
            ),
            "signature_invalid",
        ),
        (
            lambda m: HttpMessage(
                m.method, m.target, m.host, {**m.headers, "content-encoding": "gzip"}, m.body
            ),
            "signed_header_missing",
        ),
        (
            lambda m: HttpMessage(
                m.method,
                m.target,
                m.host,
                {k: v for k, v in m.headers.items() if k != "content-type"},
                m.body,
            ),
            "header_value",
        ),
        (
            lambda m: HttpMessage(
                m.method, m.target, m.host, {**m.headers, "x-jws-signature": None}, m.body
            ),
            "signature_missing",
        ),
        (
            lambda m: HttpMessage(
                m.method, m.target, m.host, {**m.headers, "x-jws-signature": "a.b.c"}, m.body
            ),
            "signature_malformed",
        ),
        (
            lambda m: HttpMessage(
                m.method,
                m.target,
                m.host,
                {**m.headers, "x-jws-signature": m.headers["x-jws-signature"][:-4] + "AAAA"},
                m.body,
            ),
            "signature_invalid",
        ),
    ],
)
def test_tampered_messages_are_refused_with_the_check(pki, tamper, check) -> None:
    _, builder, _, roots = pki
    msg = tamper(signed(builder, response(), at=NOW))
    with pytest.raises(ExchangeSignatureError) as err:
        verify(msg, roots, now=NOW)
    assert err.value.check == check
    assert err.value.error == "invalid_signature"


@pytest.mark.parametrize(
    ("change", "check"),
    [
        (lambda h: h.update(alg="HS256"), "header_alg"),
        (lambda h: h.update(b64=True), "header_b64"),
        (lambda h: h.pop("b64"), "header_b64"),
        (lambda h: h.update(crit=["sigT", "sigD"]), "header_crit"),
        (lambda h: h.update(crit=["b64", "exp"]), "header_crit"),
        (lambda h: h["sigD"].update(mId="http://uri.etsi.org/19182/ObjectIdByURI"), "header_sigd"),
        (lambda h: h["sigD"].update(pars=["host", "Host", "digest"]), "header_sigd"),
        (
            lambda h: h["sigD"].update(pars=["host", "content-type", "digest"]),
            "signed_header_missing",
        ),
        (lambda h: h.update(sigT="yesterday"), "header_sigt"),
        (lambda h: h.update(x5c="nope"), "header_x5c"),
        (lambda h: h.update(x5c=["!!!"]), "header_x5c"),
        (lambda h: h.update({"x5t#S256": "AAAA"}), "header_x5t"),
    ],
)
def test_header_rules(pki, change, check) -> None:
    _, builder, _, roots = pki
    msg = reseal(builder, signed(builder, response(), at=NOW), change)
    with pytest.raises(ExchangeSignatureError) as err:
        verify(msg, roots, now=NOW)
    assert err.value.check == check


def test_resealed_unchanged_header_still_verifies(pki) -> None:
    """The control for test_header_rules: resealing alone breaks nothing."""
    _, builder, _, roots = pki
    msg = reseal(builder, signed(builder, response(), at=NOW), lambda h: None)
    assert verify(msg, roots, now=NOW).signer == BUILDER


def test_signing_time_skew_untrusted_root_and_wrong_party(pki) -> None:
    _, builder, _, roots = pki
    old = signed(builder, response(), at=NOW - dt.timedelta(hours=1))
    with pytest.raises(ExchangeSignatureError) as err:
        verify(old, roots, now=NOW)
    assert err.value.check == "sigt_skew"
    assert verify(old, roots, now=NOW, max_skew=None).signer == BUILDER
    fresh = signed(builder, response(), at=NOW)
    with pytest.raises(ExchangeSignatureError) as err:
        verify(fresh, {fingerprint_sha256(builder.certificate)}, now=NOW)
    assert err.value.check == "certificate_untrusted_root"
    with pytest.raises(ExchangeSignatureError) as err:
        verify(fresh, roots, now=NOW, expected_party=OTHER)
    assert err.value.check == "signer_mismatch"


def _party(identity, status: str = "Active", cert: bool = True) -> Party:
    return Party(
        identity.party_id,
        identity.party_id,
        Adherence(status, "2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z"),
        certificates=[PartyCertificate.from_cert(identity.certificate)] if cert else [],
    )


def test_registry_checks(pki) -> None:
    _, builder, other, roots = pki
    result = verify(signed(builder, response(), at=NOW), roots, now=NOW)
    assert check_registered(result, lambda p: _party(builder), NOW).party_id == BUILDER
    cases = [
        (lambda p: None, "party_unknown"),
        (lambda p: _party(builder, status="Revoked"), "party_not_active"),
        (lambda p: _party(builder, cert=False), "certificate_not_registered"),
    ]
    for lookup, check in cases:
        with pytest.raises(ExchangeSignatureError) as err:
            check_registered(result, lookup, NOW)
        assert err.value.check == check


def _keep(store: ReceiptStore, result, msg: HttpMessage):
    return store.add(
        direction="response",
        peer=BUILDER,
        url="http://127.0.0.1:8101/sparql?x=1",
        method=msg.method,
        target=msg.target,
        host=msg.host,
        status=200,
        signer=result.signer,
        signed_at=result.signed_at,
        signature=result.signature,
        signed_headers=result.signed_headers,
        digest=result.digest,
        body=msg.body,
    )


def test_receipts_verify_offline_and_any_tampered_byte_fails(pki, tmp_path: Path) -> None:
    import sqlite3

    _, builder, _, roots = pki
    msg = signed(builder, response(), at=NOW)
    result = verify(msg, roots, now=NOW)
    store = ReceiptStore(tmp_path / "receipts.sqlite")
    receipt = _keep(store, result, msg)
    store.attach([receipt.id], "summary", "http://n/dataset/summary/version/1")
    assert store.latest_version("summary") == "http://n/dataset/summary/version/1"
    [kept] = store.for_version("http://n/dataset/summary/version/1")
    verdict = verify_offline(kept, roots)
    assert verdict.ok and verdict.signer == BUILDER and verdict.signed_at == result.signed_at

    def tampered(column: str, value) -> str:
        fresh = ReceiptStore(tmp_path / f"{column}.sqlite")
        r = _keep(fresh, result, msg)
        with sqlite3.connect(fresh.path) as conn:
            conn.execute(f"UPDATE receipts SET {column} = ? WHERE id = ?", (value, r.id))
        got = verify_offline(fresh.get(r.id), roots)
        assert not got.ok and got.receipt == r.id
        return got.check

    flipped = bytearray(msg.body)
    flipped[5] ^= 0x01
    assert tampered("body", bytes(flipped)) == "digest_mismatch"
    sig = result.signature
    at = len(sig) - 10
    bad_sig = sig[:at] + ("A" if sig[at] != "A" else "B") + sig[at + 1 :]
    assert tampered("signature", bad_sig) == "signature_invalid"
    headers = [list(p) for p in result.signed_headers]
    headers[0][1] = "post /elsewhere"
    assert tampered("signed_headers", json.dumps(headers)) == "header_value"
    assert tampered("target", "/elsewhere") == "signature_invalid"
    assert tampered("signer", OTHER) == "signer_mismatch"
    assert tampered("signed_at", "2001-01-01T00:00:00Z") == "header_sigt"
    # The other roots: a receipt from a party of another scheme does not verify.
    other_roots = {create_dev_ca().root_fingerprint}
    assert verify_offline(kept, other_roots).check == "certificate_untrusted_root"


def test_unsigned_receipt_is_never_verified(tmp_path: Path) -> None:
    store = ReceiptStore(tmp_path / "r.sqlite")
    r = store.add(
        direction="response",
        peer=BUILDER,
        url="http://x/sparql",
        method="POST",
        target="/sparql",
        host="x",
        status=200,
        signer=None,
        signed_at=None,
        signature=None,
        signed_headers=(),
        digest=body_digest(b""),
        body=b"",
    )
    verdict = verify_offline(r, set())
    assert not verdict.ok and verdict.check == "unsigned"
    assert isinstance(ExchangeSignatureError("x"), TrustError)
