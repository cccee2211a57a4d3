"""Signed exchanges between nodes: JAdES HTTP-header signatures on the way out, receipts on the way in.

Why here and not in the routes: every node-to-node call goes through node/outbound.py, and every
response to another party leaves through the app, so one signer for the calls and one ASGI
middleware for the answers cover all of them without touching a route.

- Outbound (`Exchange.request_headers`, `Exchange.check_response`): each request this node makes
  to a vouched-for peer carries `Digest` and `x-jws-signature`; the peer's answer is verified
  (signature, chain to the trusted roots, signer = the peer the registry named, Active, its
  certificate registered) and kept as a receipt with its body. An answer that does not verify is
  refused (the source and the failed check are named); an unsigned one is accepted and recorded
  as `unsigned` unless `exchange.accept_unsigned = false`.
- Inbound (`SignedExchangeMiddleware`): a signed request is verified the same way before the
  route sees it (a bad signature is 401 `invalid_signature` naming the check) and kept as a
  receipt. The answer is sealed for a caller with another party's access token whose request
  was signed (another node: every node-to-node request is) or asks for it with
  `Accept-Signature`, which every outbound call of this node sends. A plain API client of
  another party (a browser, a script) is not sealed unasked: an RSA signature per answer would
  cost more than the query it seals.

Receipt and refusal entries go to the audit log (kinds `receipt`, `receipt_refused`); they are
records of evidence, not access decisions, which stay with node/enforcement.py.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import httpx
import orjson
from starlette.concurrency import run_in_threadpool

from node.http_body import BodyTooLarge, ClientGone, read_body, replay
from trust.audit import AuditEvent, AuditUnavailable
from trust.errors import TrustError
from trust.jades import (
    ACCEPT_SIGNATURE_HEADER,
    SIGNATURE_HEADER,
    ExchangeSignatureError,
    HttpMessage,
    SignedExchange,
    body_digest,
    check_registered,
    sign_message,
    verify_message,
)
from trust.peers import Peer
from trust.receipts import Receipt, ReceiptStore

__all__ = ["Exchange", "SignedExchangeMiddleware", "exchange_for"]

RECEIPTS_FILE = "receipts.sqlite"
MAX_SIGNED_REQUEST_BODY = 16 * 1024 * 1024
_lock = threading.Lock()

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def exchange_for(rt: Any) -> Exchange:
    """The runtime's one Exchange (made on first use)."""
    found = rt.__dict__.get("_exchange")
    if found is None:
        with _lock:
            found = rt.__dict__.get("_exchange")
            if found is None:
                found = Exchange(rt)
                rt.__dict__["_exchange"] = found
    return found


class Exchange:
    """Signs this node's messages and verifies, keeps and audits the ones it receives."""

    def __init__(self, rt: Any) -> None:
        settings = rt.settings
        self.identity = rt.identity
        self.own_party = settings.party_id
        self.trusted = rt.trusted_roots
        self.directory = rt.layer.directory
        self.audit = rt.audit
        self.sign = settings.exchange_sign
        self.accept_unsigned = settings.exchange_accept_unsigned
        self.max_skew = settings.exchange_max_skew
        self.receipts = ReceiptStore(settings.data_dir / RECEIPTS_FILE)

    # --- outbound ----------------------------------------------------------------------------

    def request_headers(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> dict[str, str]:
        """`Accept-Signature`, and `Digest` and `x-jws-signature` when signing, for a request
        about to be sent: the peer seals its answer either way, so every answer is evidence."""
        asked = {"Accept-Signature": "jades"}
        if not self.sign:
            return asked
        target, host = _target_host(url)
        lower = {k.lower(): v for k, v in headers.items()}
        return {
            **asked,
            **sign_message(HttpMessage(method, target, host, lower, body), self.identity),
        }

    def check_response(
        self,
        peer: Peer,
        method: str,
        url: str,
        resp: httpx.Response,
        *,
        datasets: Sequence[str] = (),
        receipts: list[str] | None = None,
    ) -> Receipt:
        """Verify a peer's answer and keep it; ExchangeSignatureError (audited) if it fails."""
        target, host = _target_host(url)
        headers = {k.lower(): v for k, v in resp.headers.items()}
        body = resp.content
        message = HttpMessage(method, target, host, headers, body)
        try:
            signature = headers.get(SIGNATURE_HEADER)
            if signature is None:
                if not self.accept_unsigned:
                    raise ExchangeSignatureError(
                        "unsigned", "the answer carries no signature (exchange.accept_unsigned)"
                    )
                receipt = self._keep_unsigned("response", peer.party_id, url, message, resp)
            else:
                signed = self._verify(signature, message, peer.party_id)
                receipt = self._keep(
                    "response", peer.party_id, url, message, signed, resp.status_code, datasets
                )
        except ExchangeSignatureError as exc:
            self._refused("response", peer.party_id, url, exc, datasets)
            raise
        if receipts is not None:
            receipts.append(receipt.id)
        return receipt

    # --- inbound -----------------------------------------------------------------------------

    def accept_request(self, message: HttpMessage, signature: str, party: str | None) -> Receipt:
        """Verify a signed request (its signer must be the token's party) and keep it."""
        url = f"http://{message.host}{message.target}"
        try:
            signed = self._verify(signature, message, party)
        except ExchangeSignatureError as exc:
            self._refused("request", party, url, exc, ())
            raise
        return self._keep("request", signed.signer, url, message, signed, None, ())

    def response_headers(
        self, method: str, target: str, host: str, headers: dict[str, str], body: bytes
    ) -> dict[str, str]:
        """`Digest` and `x-jws-signature` of a response to a request for `target` at `host`."""
        return sign_message(HttpMessage(method, target, host, headers, body), self.identity)

    def token_party(self, authorization: str | None, layer: Any) -> str | None:
        """The party of a valid `Authorization: Bearer` token, or None."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        try:
            return layer.verify_access_token(token.strip()).party_id
        except TrustError:
            return None

    # --- helpers -----------------------------------------------------------------------------

    def _verify(self, signature: str, message: HttpMessage, party: str | None) -> SignedExchange:
        now = dt.datetime.now(dt.UTC)
        signed = verify_message(
            signature,
            message,
            self.trusted,
            now=now,
            max_skew=self.max_skew,
            expected_party=party,
        )
        try:
            check_registered(signed, self.directory.get_party, now)
        except ExchangeSignatureError:
            raise
        except TrustError as exc:  # the registry could not be asked
            raise ExchangeSignatureError("registry", exc.description) from None
        except (httpx.HTTPError, OSError) as exc:
            raise ExchangeSignatureError(
                "registry", f"the registry could not be asked: {type(exc).__name__}"
            ) from None
        return signed

    def _keep(
        self,
        direction: str,
        peer: str | None,
        url: str,
        message: HttpMessage,
        signed: SignedExchange,
        status: int | None,
        datasets: Sequence[str],
    ) -> Receipt:
        receipt = self.receipts.add(
            direction=direction,
            peer=peer,
            url=url,
            method=message.method,
            target=message.target,
            host=message.host,
            status=status,
            signer=signed.signer,
            signed_at=signed.signed_at,
            signature=signed.signature,
            signed_headers=signed.signed_headers,
            digest=signed.digest,
            body=message.body,
            registry_checked=_now(),
            dataset=datasets[0] if datasets else None,
        )
        self.audit.append(
            AuditEvent(
                kind="receipt",
                party=signed.signer,
                target=url[:500],
                action=direction,
                datasets=tuple(datasets),
                result_size=len(message.body),
                detail={
                    "receipt": receipt.id,
                    "status": "verified",
                    "signer": signed.signer,
                    "signed_at": signed.signed_at,
                    "digest": signed.digest,
                    "certificate": signed.certificate_sha256,
                    "fingerprint": receipt.fingerprint(),
                    "http_status": status,
                },
            )
        )
        return receipt

    def _keep_unsigned(
        self, direction: str, peer: str, url: str, message: HttpMessage, resp: httpx.Response
    ) -> Receipt:
        """An accepted unsigned answer: its digest is recorded, there is nothing to prove."""
        digest = body_digest(message.body)
        receipt = self.receipts.add(
            direction=direction,
            peer=peer,
            url=url,
            method=message.method,
            target=message.target,
            host=message.host,
            status=resp.status_code,
            signer=None,
            signed_at=None,
            signature=None,
            signed_headers=(),
            digest=digest,
            body=b"",
        )
        self.audit.append(
            AuditEvent(
                kind="receipt",
                party=peer,
                target=url[:500],
                action=direction,
                result_size=len(message.body),
                detail={"receipt": receipt.id, "status": "unsigned", "digest": digest},
            )
        )
        return receipt

    def _refused(
        self,
        direction: str,
        party: str | None,
        url: str,
        exc: ExchangeSignatureError,
        datasets: Sequence[str],
    ) -> None:
        self.audit.append(
            AuditEvent(
                kind="receipt_refused",
                party=party,
                target=url[:500],
                action=direction,
                datasets=tuple(datasets),
                detail={"check": exc.check, "reason": exc.description[:300]},
            )
        )


_SIGNATURE_KEY = SIGNATURE_HEADER.encode("latin-1")
_ACCEPT_KEY = ACCEPT_SIGNATURE_HEADER.encode("latin-1")


class SignedExchangeMiddleware:
    """Verifies signed requests before any route runs; seals answers to other parties' nodes
    (a signed request) and to whoever asks with `Accept-Signature`."""

    def __init__(self, app: Callable[..., Awaitable[None]], rt: Any) -> None:
        self.app = app
        self.rt = rt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ex = exchange_for(self.rt)
        signature = authorization = None
        asked = False
        for key, value in scope.get("headers", ()):  # ASGI header names are lower case
            if key == b"authorization":
                authorization = value.decode("latin-1") if authorization is None else ""
            elif key == _SIGNATURE_KEY:
                signature = value.decode("latin-1") if signature is None else ""
            elif key == _ACCEPT_KEY:
                asked = True
        if signature is None and (not ex.sign or not asked or authorization is None):
            await self.app(scope, receive, send)  # nothing to verify, no seal asked for
            return
        party = ex.token_party(authorization, self.rt.layer)
        if signature is None and (party is None or party == ex.own_party):
            await self.app(scope, receive, send)  # unsigned, and nobody else to sign for
            return
        headers = _headers(scope)
        signature = headers.get(SIGNATURE_HEADER)
        authorization = headers.get("authorization")
        method = scope["method"]
        target = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        host = headers.get("host", "")
        if signature is not None:
            try:
                body = await read_body(receive, MAX_SIGNED_REQUEST_BODY)
            except BodyTooLarge:
                await _json(send, 413, "too_large", "a signed request body is limited to 16 MiB")
                return
            except ClientGone:
                return  # nobody is left to answer
            message = HttpMessage(method, target, host, headers, body)
            try:
                await run_in_threadpool(ex.accept_request, message, signature, party)
            except ExchangeSignatureError as exc:
                await _json(send, 401, exc.error, f"{exc.check}: {exc.description}", exc.check)
                return
            except AuditUnavailable:  # no receipt, no request: as every audited action
                await _json(
                    send,
                    503,
                    "audit_unavailable",
                    "the audit log cannot be written; the request was not performed",
                )
                return
            receive = replay(body, receive)
        if not ex.sign or party is None or party == ex.own_party:
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _SigningSend(send, ex, method, target, host))


class _SigningSend:
    """Holds a response back until its body is complete, then sends it with its signature."""

    def __init__(self, send: Send, ex: Exchange, method: str, target: str, host: str) -> None:
        self.send, self.ex = send, ex
        self.method, self.target, self.host = method, target, host
        self.start: Message | None = None
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
            return
        if message["type"] != "http.response.body" or self.start is None:
            await self.send(message)
            return
        self.chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(self.chunks)
        raw = list(self.start.get("headers", []))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}
        added = self.ex.response_headers(self.method, self.target, self.host, headers, body)
        raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in added.items()]
        await self.send({**self.start, "headers": raw})
        await self.send({"type": "http.response.body", "body": body, "more_body": False})


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        name, text = key.decode("latin-1").lower(), value.decode("latin-1")
        out[name] = f"{out[name]}, {text}" if name in out else text
    return out


async def _json(send: Send, status: int, error: str, description: str, check: str = "") -> None:
    payload: dict[str, str] = {"error": error, "error_description": description}
    if check:
        payload["check"] = check
    body = orjson.dumps(payload)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _target_host(url: str) -> tuple[str, str]:
    parsed = httpx.URL(url)
    return parsed.raw_path.decode("ascii"), parsed.netloc.decode("ascii")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
