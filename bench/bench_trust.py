"""Trust-layer throughput: /connect/token validation, access-token verification, raw RSA costs."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from trust import pki
from trust.access_token import AccessTokenVerifier
from trust.client import TrustClient
from trust.layer import TrustLayer
from trust.registry import LocalDirectory, Registry

NODE_ID = "EU.EORI.NL000000900"
CLIENT_ID = "EU.EORI.NL000000901"


def run(n_tokens: int = 300, n_verify: int = 3000) -> dict[str, Any]:
    """Measure everything in one process/run so the ratios compare like with like."""
    with tempfile.TemporaryDirectory() as tmp:
        layer, client = _setup(Path(tmp))
        forms = [client.token_form(NODE_ID) for _ in range(n_tokens)]  # client-side cost excluded
        t0 = time.perf_counter()
        tokens = [layer.token_response(f)["access_token"] for f in forms]
        issuance = n_tokens / (time.perf_counter() - t0)

        key = layer.issuer.key
        pub = key.public_key()
        msg = tokens[0].rsplit(".", 1)[0].encode()
        sig = key.sign(msg, padding.PKCS1v15(), hashes.SHA256())
        rsa_sign = _rate(lambda: key.sign(msg, padding.PKCS1v15(), hashes.SHA256()), 300)
        rsa_verify = _rate(
            lambda: pub.verify(sig, msg, padding.PKCS1v15(), hashes.SHA256()), n_verify
        )

        many = [
            layer.issuer.issue(CLIENT_ID, "iSHARE").access_token for _ in range(min(n_verify, 1000))
        ]
        cold_verifier = AccessTokenVerifier(NODE_ID, pub, cache_size=1)
        t0 = time.perf_counter()
        for tok in many:
            cold_verifier.verify(tok)
        cold = len(many) / (time.perf_counter() - t0)
        warm_verifier = AccessTokenVerifier(NODE_ID, pub)
        warm_verifier.verify(tokens[0])
        cached = _rate(lambda: warm_verifier.verify(tokens[0]), n_verify * 10)

    # one issuance = 1 RSA sign (access token) + 1 RSA verify (assertion); the 2 chain-link
    # verifies are cached per chain after the first request from a client
    crypto_floor = 1 / (1 / rsa_sign + 1 / rsa_verify)
    return {
        "token_issuance_per_s": round(issuance, 1),
        "access_token_verify_cold_per_s": round(cold, 1),
        "access_token_verify_cached_per_s": round(cached, 1),
        "rsa2048_sign_per_s": round(rsa_sign, 1),
        "rsa2048_verify_per_s": round(rsa_verify, 1),
        "ratio_issuance_vs_crypto_floor": round(issuance / crypto_floor, 3),
        "ratio_issuance_vs_rsa_sign": round(issuance / rsa_sign, 3),
        "ratio_cold_verify_vs_rsa_verify": round(cold / rsa_verify, 3),
        "ratio_cached_vs_cold_verify": round(cached / cold, 1),
    }


def _setup(tmp: Path) -> tuple[TrustLayer, TrustClient]:
    ca = pki.create_dev_ca("Bench")
    node = pki.issue_party_certificate(ca, NODE_ID, "Node")
    client = pki.issue_party_certificate(ca, CLIENT_ID, "Client")
    registry = Registry(tmp / "registry.db")
    registry.add_trusted_ca(ca.root_cert)
    registry.add_party(CLIENT_ID, "Client", certificates=[client.certificate])
    layer = TrustLayer(
        node,
        {ca.root_fingerprint},
        LocalDirectory(registry),
        tmp / "replay.db",
        tmp / "token-key.pem",
        "http://127.0.0.1",
        registry=registry,
    )
    return layer, TrustClient(client, {ca.root_fingerprint})


def _rate(fn: Any, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t0)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
