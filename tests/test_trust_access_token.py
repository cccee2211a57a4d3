"""Node access tokens (trust/access_token.py): RFC 9068 shape, verification, cache, shared key."""

from __future__ import annotations

import base64
import multiprocessing as mp

import orjson
import pytest

from trust.access_token import (
    AccessTokenIssuer,
    AccessTokenVerifier,
    load_or_create_signing_key,
)
from trust.errors import InvalidToken
from trust.ishare_jwt import b64url_encode, sign_compact

NODE = "EU.EORI.NL000000800"
OTHER = "EU.EORI.NL000000801"


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    return load_or_create_signing_key(tmp_path_factory.mktemp("k") / "at.pem")


def _parts(token):
    h, p, _ = token.split(".")
    dec = lambda s: orjson.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))  # noqa: E731
    return dec(h), dec(p)


def test_rfc9068_shape(key):
    issued = AccessTokenIssuer(NODE, key).issue("EU.EORI.NL000000001", "iSHARE", now=1000)
    header, claims = _parts(issued.access_token)
    assert header == {"alg": "RS256", "typ": "at+jwt"}
    assert claims["iss"] == claims["aud"] == NODE
    assert claims["sub"] == claims["client_id"] == "EU.EORI.NL000000001"
    assert claims["exp"] - claims["iat"] == 3600 == issued.expires_in
    assert issued.response() == {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": 3600,
    }


def test_verify_and_cache_until_exp(key):
    clock = Clock(1000)
    issued = AccessTokenIssuer(NODE, key).issue("EU.EORI.NL000000001", "iSHARE", now=1000)
    verifier = AccessTokenVerifier(NODE, key.public_key(), clock=clock)
    claims = verifier.verify(issued.access_token)
    assert (claims.party_id, claims.jti, claims.scope) == (
        "EU.EORI.NL000000001",
        issued.jti,
        "iSHARE",
    )
    assert verifier.verify(issued.access_token) is claims  # cached
    clock.t = 1000 + 3600
    with pytest.raises(InvalidToken) as e:
        verifier.verify(issued.access_token)  # cached, but expired now
    assert e.value.check == "token_expired" and e.value.error == "invalid_token"


def test_expired_uncached(key):
    issued = AccessTokenIssuer(NODE, key).issue("EU.EORI.NL000000001", "iSHARE", now=1000)
    with pytest.raises(InvalidToken) as e:
        AccessTokenVerifier(NODE, key.public_key(), clock=Clock(5000)).verify(issued.access_token)
    assert e.value.check == "token_expired"


def test_cache_is_bounded(key):
    issuer = AccessTokenIssuer(NODE, key)
    verifier = AccessTokenVerifier(NODE, key.public_key(), cache_size=3, clock=Clock(1000))
    for i in range(5):
        verifier.verify(issuer.issue(f"EU.EORI.NL00000000{i}", "iSHARE", now=1000).access_token)
    assert len(verifier._cache) == 3


def test_other_node_token_rejected(key, tmp_path):
    # same key material, other node id (e.g. misconfigured shared key) -> still refused
    theirs = AccessTokenIssuer(OTHER, key).issue("EU.EORI.NL000000001", "iSHARE")
    with pytest.raises(InvalidToken) as e:
        AccessTokenVerifier(NODE, key.public_key()).verify(theirs.access_token)
    assert e.value.check == "token_audience"
    other_key = load_or_create_signing_key(tmp_path / "other.pem")
    forged = AccessTokenIssuer(NODE, other_key).issue("EU.EORI.NL000000001", "iSHARE")
    with pytest.raises(InvalidToken) as e:
        AccessTokenVerifier(NODE, key.public_key()).verify(forged.access_token)
    assert e.value.check == "token_signature"


@pytest.mark.parametrize("token", [None, "", "abc", "a.b.c", "e30.e30.e30"])
def test_missing_or_malformed(key, token):
    with pytest.raises(InvalidToken) as e:
        AccessTokenVerifier(NODE, key.public_key()).verify(token)
    assert e.value.error == "invalid_token"


def test_ishare_jwt_is_not_an_access_token(key):
    """A typ JWT token signed with the node key must not pass as an access token."""
    claims = {
        "iss": NODE,
        "aud": NODE,
        "sub": "x",
        "client_id": "x",
        "jti": "j",
        "iat": 1000,
        "exp": 9e9,
    }
    token = sign_compact({"alg": "RS256", "typ": "JWT"}, claims, key)
    with pytest.raises(InvalidToken) as e:
        AccessTokenVerifier(NODE, key.public_key()).verify(token)
    assert e.value.check == "token_header"


def test_tampered_claims(key):
    issued = AccessTokenIssuer(NODE, key).issue("EU.EORI.NL000000001", "iSHARE")
    h, p, s = issued.access_token.split(".")
    _, claims = _parts(issued.access_token)
    claims["sub"] = claims["client_id"] = "EU.EORI.NL000000666"
    with pytest.raises(InvalidToken) as e:
        AccessTokenVerifier(NODE, key.public_key()).verify(
            f"{h}.{b64url_encode(orjson.dumps(claims))}.{s}"
        )
    assert e.value.check == "token_signature"


def _load(path, q):
    from cryptography.hazmat.primitives import serialization

    key = load_or_create_signing_key(path)
    q.put(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def test_key_file_shared_by_processes(tmp_path):
    path = tmp_path / "data" / "token-key.pem"
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_load, args=(path, q)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    keys = {q.get(timeout=5) for _ in procs}
    assert len(keys) == 1
    assert list(path.parent.iterdir()) == [path]
