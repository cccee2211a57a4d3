"""What every `dsgo` command shares: settings, the node's own trust client, errors as one line,
progress bars, and the choice between a local and a remote node."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from node.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:  # loaded when a command needs them: `dsgo --help` and the light commands
    import httpx  # start without the HTTP client, the store and the enforcement point

    from node.service.ops import NodeOps

EXIT_ERROR = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing failure: printed as `dsgo: error: ...`."""


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    return load_settings(args.config, **overrides)


def _self_client(settings: Settings):
    """A trust client acting as this node's party (for the admin API and outgoing calls).

    The party a URL belongs to is taken from the registry, never from what the URL serves.
    """
    from node.runtime import load_identity, trusted_fingerprints
    from trust.client import TrustClient

    peers = _peers(settings)
    return TrustClient(
        load_identity(settings),
        trusted_fingerprints(settings),
        timeout=60.0,
        resolve_party=lambda base: peers.resolve(base).party_id,
    )


def _peers(settings: Settings):
    """Outbound URL -> the registered party it belongs to (registry records, federation config)."""
    from node.runtime import build_directory, build_peers, load_identity, trusted_fingerprints

    identity = load_identity(settings)
    directory, _ = build_directory(settings, identity, trusted_fingerprints(settings))
    return build_peers(settings, directory)


def _json_or_fail(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        body = {"error_description": resp.text[:500]}
    if resp.status_code >= 400:
        detail = body.get("error_description") or body.get("error") or resp.reason_phrase
        raise CliError(f"HTTP {resp.status_code}: {detail}")
    return body


def _print_response(resp: httpx.Response) -> None:
    if resp.status_code >= 400:
        _json_or_fail(resp)
    sys.stdout.write(resp.text if resp.text.endswith("\n") else resp.text + "\n")


class _progress:
    """A tqdm byte progress bar on stderr (quiet when stderr is not a terminal)."""

    def __init__(self, total: int, desc: str):
        self.total, self.desc, self.bar = total, desc, None

    def __enter__(self) -> Callable[[int], None]:
        from tqdm import tqdm

        self.bar = tqdm(
            total=self.total,
            desc=self.desc,
            unit="B",
            unit_scale=True,
            disable=None,
            file=sys.stderr,
        )

        def update(done: int) -> None:
            assert self.bar is not None
            self.bar.update(done - self.bar.n)

        return update

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _kv(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise CliError(f"--option {text!r}: use KEY=VALUE")
    return key, value


def _expand(term: str) -> str:
    """Prefixed names (bot:Building) become IRIs with the node's context; IRIs stay."""
    from node.jsonld import load_context

    if term == "*" or "://" in term or term.startswith("urn:"):
        return term
    prefix, sep, local = term.partition(":")
    if sep:
        for name, namespace in load_context().prefixes:
            if name == prefix:
                return namespace + local
    raise CliError(f"{term!r}: not an IRI or a known prefixed name")


def _timestamp(text: str) -> int:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--until {text!r}: use an ISO date such as 2027-12-31") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (CliError, ConfigError)):
        return str(exc)
    description = getattr(exc, "description", None)
    if description:
        return f"{description}"
    httpx = sys.modules.get("httpx")  # not loaded: the failure cannot be one of its errors
    if httpx is not None and isinstance(exc, httpx.HTTPError):
        return f"HTTP failure: {exc}"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    text = str(exc) or type(exc).__name__
    return text


@contextmanager
def open_ops(settings: Settings, doing: str = "") -> Iterator[NodeOps]:
    """The node's operations: on the store here, or through the running node that holds it.

    The embedded store allows one process; when a node is serving, every operation goes to
    its admin API as the node's own party. Either way the enforcement point decides and audits.
    """
    from node.service.ops import LocalNode, RemoteNode
    from node.store import StoreLocked, open_store

    try:
        store = open_store(settings)
    except StoreLocked:
        if doing:
            print(
                f"dsgo: the store is in use by the running node; {doing} through its admin API",
                file=sys.stderr,
            )
        yield RemoteNode(_self_client(settings), settings)
        return
    from node.runtime import build_runtime

    local = LocalNode(build_runtime(settings, store=store))
    try:
        yield local
    finally:
        local.close()
