"""`dsgo init`, `serve`, and the data commands: load, datasets, query, connect, sync, check,
sign, verify, derive, token, get. Each picks a NodeOps (LocalNode or RemoteNode) and prints."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from node.cli._common import (
    EXIT_ERROR,
    EXIT_USAGE,
    CliError,
    _describe,
    _kv,
    _peers,
    _progress,
    _self_client,
    _settings,
    open_ops,
)


def cmd_init(args: argparse.Namespace) -> int:
    from node.init import init_node

    path = init_node(
        args.dir,
        party_id=args.party_id,
        name=args.name,
        host=args.host,
        port=args.port,
        base_iri=args.base_iri,
        roles=args.roles,
        ca_dir=args.ca,
        key=args.key,
        cert=args.cert,
        pkcs12=args.pkcs12,
        registry_url=args.registry_url,
        registry_id=args.registry_id,
        trust_roots=args.trust_root,
        state_dsn=args.state_dsn,
        oxigraph_url=args.oxigraph_url,
        force=args.force,
    )
    print(f"wrote {path}")
    from node.cli.login import init_dev_login

    init_dev_login(args, path)  # --dev-login: the development OpenID Provider
    return 0


SHUTDOWN_GRACE_S = 5


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    overrides = {
        "server__host": args.host,
        "server__port": args.port,
        "server__workers": args.workers,
    }
    settings = _settings(args, **overrides)
    os.environ["DSGO_CONFIG"] = str(settings.config_path)
    for key, value in overrides.items():
        if value is not None:
            section, _, name = key.partition("__")
            os.environ[f"DSGO_{section.upper()}_{name.upper()}"] = str(value)
    print(
        f"dsgo: serving {settings.party_name} ({settings.party_id}) at {settings.base_iri} "
        f"on {settings.host}:{settings.port}",
        file=sys.stderr,
    )
    from node.engine import EngineError, serving

    with contextlib.ExitStack() as stack:
        try:  # store.backend = "engine": this process supervises the engine (node/engine.py)
            stack.enter_context(serving(settings))
        except EngineError as exc:
            raise CliError(f"store.backend = 'engine': {exc}") from None
        uvicorn.run(
            "node.asgi:create",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level="warning",
            # On SIGTERM/Ctrl+C, requests in flight get this long to finish; then the worker
            # closes what is left and exits (an open browser tab never keeps a node up).
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        )
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from node.store import format_for

    settings = _settings(args)
    if not args.file.is_file():
        raise CliError(f"{args.file}: no such file")
    from node.service.ops import LocalNode

    fmt = format_for(args.file, args.format)
    with open_ops(settings, "loading") as ops:
        if isinstance(ops, LocalNode):
            with _progress(args.file.stat().st_size, f"loading {args.file.name}") as progress:
                body = ops.load(args.dataset, args.file, fmt, str(args.file), progress=progress)
            print("compacting the store", file=sys.stderr)
        else:
            body = ops.load(args.dataset, args.file, fmt, str(args.file))
    print(f"dataset {body['dataset']}: {body['triples']} triples")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    with open_ops(_settings(args)) as ops:
        rows = ops.datasets()
    if not rows:
        print("no datasets (load one with `dsgo load FILE --dataset NAME`)")
    for row in rows:
        print(f"{row['name']}\t{row['triples']}\t{row['modified'] or ''}")
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    text = args.file.read_text(encoding="utf-8") if args.file else args.query
    if not text:
        raise CliError("give the query text or --file")
    with open_ops(_settings(args)) as ops:
        answer = ops.query(text, args.format)
    body = answer.body.decode("utf-8", errors="replace")
    sys.stdout.write(body if body.endswith("\n") else body + "\n")
    return 0


def cmd_connect(args: argparse.Namespace) -> int:
    options = dict(_kv(o) for o in args.option)
    source = args.source if "://" in args.source else str(Path(args.source).resolve())
    with open_ops(_settings(args), "connecting") as ops:
        body = ops.connect(args.kind, source, args.dataset, args.mapping, options)
    print(f"dataset {body['dataset']}: {body['triples']} triples (version {body['version']})")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not settings.sources:
        raise CliError("no [[sources]] in the config: nothing to sync")
    with open_ops(settings, "syncing") as ops:
        outcomes = ops.sync(args.force)
    failed = 0
    for o in outcomes:
        line = f"{o['dataset']}: {o['status']}"
        if o.get("triple_count"):
            line += f" ({o['triple_count']} triples)"
        if o.get("summary"):  # a [[checks]] entry that ran
            line += f": {o['summary']}"
        if o.get("error"):
            line += f" — {o['error']}"
            failed += 1
        print(line)
    return EXIT_ERROR if failed else 0


def cmd_check_ids(args: argparse.Namespace) -> int:
    """`dsgo check ids`: exit 0 pass, 1 fail, 2 for every error (so 1 always means a failure)."""
    try:
        body = _check_ids(args)
    except Exception as exc:  # noqa: BLE001 - one line, exit 2: an error is never a verdict
        print(f"dsgo: error: {_describe(exc)}", file=sys.stderr)
        if os.environ.get("DSGO_DEBUG"):
            raise
        return EXIT_USAGE
    from node.checks import exit_code, summary_line

    print(summary_line(body))
    for name in body.get("failed", []):
        print(f"  failed: {name}", file=sys.stderr)
    if args.strict:
        for name in body.get("missing", []):
            print(f"  required, no applicable entity: {name}", file=sys.stderr)
    return exit_code(body["summary"], args.strict)


def _check_ids(args: argparse.Namespace) -> dict[str, Any]:
    from node.checks import resolve_ids
    from node.iri import check_dataset_name

    settings = _settings(args)
    check_dataset_name(args.report)
    if args.dataset is not None:
        check_dataset_name(args.dataset)
    ids = [str(p) for p in resolve_ids(args.ids)]
    model = str(args.model.resolve()) if args.model is not None else None
    with open_ops(settings, "checking") as ops:
        return ops.check(args.report, ids, args.dataset, model)


def cmd_sign(args: argparse.Namespace) -> int:
    with open_ops(_settings(args)) as ops:
        body = ops.sign(args.dataset)
    print(f"signed dataset {body['dataset']}: {body['triples']} triples, by {body['party']}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from node.signatures import verify_remote_dataset

    settings = _settings(args)
    peers = _peers(settings)
    result = verify_remote_dataset(_self_client(settings), args.dataset_iri, peers.resolve)
    print(f"OK {result.party} signed {result.iri} ({result.triples} triples)")
    return 0


def cmd_derive(args: argparse.Namespace) -> int:
    text = args.file.read_text(encoding="utf-8") if args.file else args.query
    if not text:
        raise CliError("give the query text or --file")
    with open_ops(_settings(args), "deriving") as ops:
        body = ops.derive(text, args.dataset)
    print(f"dataset {body['dataset']}: {body['triples']} triples (version {body['version']})")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    settings = _settings(args)
    print(_self_client(settings).get_token(args.target))
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    from node.outbound import fetch_resource

    settings = _settings(args)
    peer = _peers(settings).resolve(args.iri)
    remote = fetch_resource(_self_client(settings), peer, args.iri, accept=args.accept, timeout=60)
    sys.stdout.write(remote.body.decode("utf-8", errors="replace"))
    if not remote.body.endswith(b"\n"):
        sys.stdout.write("\n")
    return 0
