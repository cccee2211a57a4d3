"""`dsgo`: set up, run and administer a node. Errors print one line, never a traceback."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from node.config import PARTY_ID, ConfigError, Settings, load_settings

CONNECT_EPILOG = """\
kinds:
  ifc           IFC2X3, IFC4 or IFC4X3_ADD2 model (other schemas, e.g. IFC4X3_RC2, are refused).
                Sites, buildings, storeys, spaces -> BOT; IFC 4.3 facilities (road, railway,
                bridge, marine) and facility parts -> bot:Zone; every element but virtual ones,
                and alignments -> bot:Element (BEO class where one exists, bSDD IFC 4.3 class
                always); every property and quantity set with its name (lengths/areas/volumes
                in m, m2, m3); schema, authoring application, georeferencing (e.g. EPSG:28992)
                and address on the site. IRIs: {base}/id/{dataset}/{kind}/{GlobalId}.
                Options: bag_pand=<16-digit BAG pand id>, progress=0|1.
  measurements  sensor readings (CSV/Parquet) with a --mapping TOML
  bag           BAG 2.0 XML extract
  sql           tables of a database (SQLAlchemy URL or SQLite file) with a --mapping TOML
The full IFC mapping: README, "The IFC connector" (or the connectors.ifc module docstring).
"""
EXIT_ERROR = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing failure: printed as `dsgo: error: ...`."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `dsgo` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (
        Exception
    ) as exc:  # every known failure becomes one line; unknown ones too, with the type
        print(f"dsgo: error: {_describe(exc)}", file=sys.stderr)
        if os.environ.get("DSGO_DEBUG"):
            raise
        return EXIT_ERROR


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dsgo",
        description="A DSGO-style linked-data node: serve, load, query, trust and federate.",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(
        name: str, func: Callable[[argparse.Namespace], Any], help: str, config: bool = True
    ):
        p = sub.add_parser(name, help=help, description=help)
        if config:
            _config_arg(p)
        p.set_defaults(func=func)
        return p

    p = command(
        "init", cmd_init, "write DIR/node.toml with a working development identity", config=False
    )
    p.add_argument("dir", type=Path)
    p.add_argument("--party-id", default="EU.EORI.NL000000101", help="EORI or did:ishare id")
    p.add_argument("--name", default=None, help="party name shown in the catalog")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8100)
    p.add_argument("--base-iri", default=None, help="default: http://HOST:PORT")
    p.add_argument("--roles", default=None, help="comma list: node,registry,authorisation_register")
    p.add_argument(
        "--ca", type=Path, help="development CA directory (from `dsgo trust ca`); made if absent"
    )
    p.add_argument("--key", type=Path, help="existing party key (PEM)")
    p.add_argument("--cert", type=Path, help="existing party certificate chain (PEM, leaf first)")
    p.add_argument("--pkcs12", type=Path, help="existing party key + chain as PKCS#12")
    p.add_argument(
        "--registry-url", help="participant registry to use (default: the node is its own)"
    )
    p.add_argument("--registry-id", help="party id of that registry")
    p.add_argument(
        "--trust-root", type=Path, action="append", default=[], help="trusted root CA (PEM)"
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing node.toml")

    p = command("serve", cmd_serve, "run the node (uvicorn with uvloop/httptools)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int, help="needs store.backend = 'sparql'")

    p = command("load", cmd_load, "replace a dataset with an RDF file, atomically")
    p.add_argument("file", type=Path)
    p.add_argument("--dataset", required=True)
    p.add_argument("--format", help="media type or extension when the file name does not say it")

    command("datasets", cmd_datasets, "list the node's datasets")

    p = command("query", cmd_query, "run a SPARQL query on the node (as the node's own party)")
    p.add_argument("query", nargs="?", help="the query text (or --file)")
    p.add_argument("--file", type=Path)
    p.add_argument(
        "--format", default="tsv", help="json, xml, csv, tsv; ttl, nt, jsonld for graphs"
    )
    p.add_argument(
        "--federated", action="store_true", help="allow SERVICE (always on through a node)"
    )

    p = command(
        "connect", cmd_connect, "convert a source with a connector and load it as a dataset"
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = CONNECT_EPILOG
    p.add_argument("kind", help="ifc, measurements, bag or sql")
    p.add_argument("source")
    p.add_argument("--dataset", required=True)
    p.add_argument("--mapping", type=Path)
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")

    p = command(
        "derive", cmd_derive, "save a CONSTRUCT (may use SERVICE) as a dataset, with provenance"
    )
    p.add_argument("query", nargs="?", help="the CONSTRUCT query text (or --file)")
    p.add_argument("--file", type=Path)
    p.add_argument("--dataset", required=True)

    p = command("sync", cmd_sync, "re-run every configured connector whose source changed")
    p.add_argument("--force", action="store_true")

    # check ...
    chk = sub.add_parser("check", help="check a model and keep the report as a signed dataset")
    csub = chk.add_subparsers(metavar="KIND")
    p = csub.add_parser(
        "ids",
        help="check an IFC model against IDS 1.0 files (exit 0 pass, 1 fail, 2 error)",
        description="Check an IFC model against IDS 1.0 files with ifctester; the report is "
        "stored as dataset --report (SHACL results + PROV-O) and signed. Exit 0 when every "
        "applicable specification passes, 1 when one fails, 2 on a usage or input error.",
    )
    _config_arg(p)
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--dataset", help="check the source model of this dataset's newest version")
    model.add_argument("--model", type=Path, help="check this IFC file")
    p.add_argument(
        "--ids", nargs="+", required=True, metavar="FILE.ids", help="IDS files (or directories)"
    )
    p.add_argument("--report", required=True, help="dataset name for the report")
    p.add_argument(
        "--strict",
        action="store_true",
        help="also fail when a required specification has no applicable entity (IDS 1.0)",
    )
    p.set_defaults(func=cmd_check_ids)

    p = command("sign", cmd_sign, "sign a dataset's current version (RDFC-1.0 + detached JWS)")
    p.add_argument("--dataset", required=True)

    p = command("verify", cmd_verify, "fetch a dataset from any node and verify its signature")
    p.add_argument("dataset_iri", metavar="URL_OR_IRI", help="e.g. http://host:port/dataset/bim")

    p = command("token", cmd_token, "get an access token from a node, as this node's party")
    p.add_argument("--for", dest="target", required=True, metavar="NODE_URL")

    p = command("get", cmd_get, "fetch a resource from any node, with a token")
    p.add_argument("iri")
    p.add_argument("--accept", default="text/turtle")

    # trust ...
    trust = sub.add_parser("trust", help="development PKI: CA and party certificates")
    tsub = trust.add_subparsers(metavar="ACTION")
    p = tsub.add_parser("ca", help="create a development scheme CA (root + issuing CA)")
    p.add_argument("dir", type=Path)
    p.add_argument("--name", default="DSGO Development")
    p.set_defaults(func=cmd_trust_ca)
    p = tsub.add_parser("issue", help="issue a party key + certificate chain from a development CA")
    p.add_argument("--ca", type=Path, required=True)
    p.add_argument("--party-id", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--out", type=Path, required=True, help="directory for key.pem and cert.pem")
    p.add_argument(
        "--pkcs12-passphrase-env", help="also write party.p12, protected by this variable"
    )
    p.set_defaults(func=cmd_trust_issue)
    p = tsub.add_parser(
        "fingerprint", help="SHA-256 fingerprints of the certificates in a PEM file"
    )
    p.add_argument("pem", type=Path)
    p.set_defaults(func=cmd_trust_fingerprint)

    # registry ...
    reg = sub.add_parser("registry", help="administer the participant registry of a registry node")
    rsub = reg.add_subparsers(metavar="ACTION")
    p = rsub.add_parser("add", help="register a party (Active by default) with its certificate")
    _config_arg(p)
    p.add_argument("--party-id", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--cert", type=Path, required=True, help="the party's certificate chain (PEM)")
    p.add_argument(
        "--role", action="append", default=[], help="ServiceConsumer, ServiceProvider, ..."
    )
    p.add_argument(
        "--status", default="Active", choices=["Active", "Pending", "NotActive", "Revoked"]
    )
    p.add_argument("--capability-url")
    p.add_argument(
        "--also-known-as",
        action="append",
        default=[],
        metavar="ID",
        help="another id of the party (iSHARE 3.0 alsoKnownAs: did:web:..., did:ishare:...)",
    )
    p.add_argument(
        "--auth-registry",
        action="append",
        default=[],
        metavar="ID[;PROVIDER[;SERVICE]]",
        help="an authorisation register holding the party's policies (for one service "
        "provider / service only when given)",
    )
    p.set_defaults(func=cmd_registry_add)
    p = rsub.add_parser("status", help="set a party's adherence status (e.g. Revoked)")
    _config_arg(p)
    p.add_argument("party_id")
    p.add_argument("status", choices=["Active", "Pending", "NotActive", "Revoked"])
    p.set_defaults(func=cmd_registry_status)
    p = rsub.add_parser("list", help="list registered parties")
    _config_arg(p)
    p.set_defaults(func=cmd_registry_list)
    p = rsub.add_parser("trust-ca", help="put a CA certificate on the trusted list")
    _config_arg(p)
    p.add_argument("cert", type=Path)
    p.set_defaults(func=cmd_registry_trust_ca)

    # policy ...
    pol = sub.add_parser(
        "policy", help="grant, list and revoke read policies (delegation evidence)"
    )
    psub = pol.add_subparsers(metavar="ACTION")
    p = psub.add_parser("grant", help="let a party read a dataset, or resources of a type")
    _config_arg(p)
    p.add_argument("--to", required=True, help="the party that may read")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--dataset", help="dataset name, or * for all")
    target.add_argument("--type", help="class IRI or prefixed name, e.g. bot:Building")
    target.add_argument(
        "--federate",
        action="store_true",
        help="let the party make this node call other nodes' endpoints (--ids) on its behalf",
    )
    p.add_argument(
        "--ids",
        nargs="*",
        help="resource IRIs (with --type) or endpoints (--federate); default all",
    )
    p.add_argument("--attributes", nargs="*", help="property IRIs or prefixed names; default all")
    p.add_argument("--until", help="ISO date or datetime (UTC) after which the policy ends")
    p.set_defaults(func=cmd_policy_grant)
    p = psub.add_parser("list", help="list policies issued by this node")
    _config_arg(p)
    p.add_argument("--to", help="only policies for this party")
    p.set_defaults(func=cmd_policy_list)
    p = psub.add_parser("revoke", help="revoke a policy by id")
    _config_arg(p)
    p.add_argument("policy_id")
    p.set_defaults(func=cmd_policy_revoke)

    # audit ...
    aud = sub.add_parser("audit", help="verify and read the audit log")
    asub = aud.add_subparsers(metavar="ACTION")
    p = asub.add_parser("verify", help="check the hash chain and signed checkpoints")
    _config_arg(p)
    p.add_argument(
        "--witness",
        metavar="URL",
        help="also check the log against the heads this witness node countersigned",
    )
    p.set_defaults(func=cmd_audit_verify)
    p = asub.add_parser("trace", help="where a resource came from and who read it, across nodes")
    _config_arg(p)
    p.add_argument("iri")
    p.add_argument("--depth", type=int, default=5, help="how many derivation hops to follow")
    p.add_argument("--json", action="store_true", help="print the raw trace")
    p.set_defaults(func=cmd_audit_trace)
    p = asub.add_parser("tail", help="print the newest audit entries")
    _config_arg(p)
    p.add_argument("-n", type=int, default=20)
    p.set_defaults(func=cmd_audit_tail)
    return parser


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="node config (default: $DSGO_CONFIG or ./node.toml)",
    )


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    return load_settings(args.config, **overrides)


# --- init / serve -----------------------------------------------------------------------------


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
        force=args.force,
    )
    print(f"wrote {path}")
    return 0


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
    )
    return 0


# --- data -------------------------------------------------------------------------------------


def cmd_load(args: argparse.Namespace) -> int:
    from node.store import StoreLocked, format_for, open_store

    settings = _settings(args)
    if not args.file.is_file():
        raise CliError(f"{args.file}: no such file")
    fmt = format_for(args.file, args.format)
    try:
        store = open_store(settings)
    except StoreLocked:
        return _load_via_node(settings, args.file, args.dataset, fmt)
    try:
        with _progress(args.file.stat().st_size, f"loading {args.file.name}") as progress:
            info = store.replace_dataset(
                args.dataset, args.file, fmt, label=str(args.file), progress=progress
            )
        print("compacting the store", file=sys.stderr)
        store.compact()
    finally:
        store.close()
    print(f"dataset {info.name}: {info.triples} triples")
    return 0


def _load_via_node(settings: Settings, file: Path, dataset: str, fmt: Any) -> int:
    print(
        "dsgo: the store is in use by the running node; loading through its admin API",
        file=sys.stderr,
    )
    client = _self_client(settings)
    with open(file, "rb") as fh:
        resp = client.request(
            "PUT",
            settings.base_iri,
            f"/admin/datasets/{dataset}",
            party_id=settings.party_id,
            content=fh,
            headers={"Content-Type": fmt.media_type, "X-DSGO-Source": str(file)},
            timeout=None,
        )
    body = _json_or_fail(resp)
    print(f"dataset {body['dataset']}: {body['triples']} triples")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    settings = _settings(args)
    rows = _with_store(
        settings,
        lambda store: [
            {
                "name": d.name,
                "triples": d.triples,
                "modified": d.modified.isoformat() if d.modified else None,
            }
            for d in store.datasets()
        ],
        lambda client: _json_or_fail(
            client.request("GET", settings.base_iri, "/admin/datasets", party_id=settings.party_id)
        )["datasets"],
    )
    if not rows:
        print("no datasets (load one with `dsgo load FILE --dataset NAME`)")
    for row in rows:
        print(f"{row['name']}\t{row['triples']}\t{row['modified'] or ''}")
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    settings = _settings(args)
    text = args.file.read_text(encoding="utf-8") if args.file else args.query
    if not text:
        raise CliError("give the query text or --file")
    client = None
    try:
        from node.store import StoreLocked, open_store

        store = open_store(settings)
    except StoreLocked:
        store = None
        client = _self_client(settings)
    if store is not None:
        # Not running: run through the same code path as HTTP with an in-process app, on the
        # store opened here (a second handle in this process would find it locked).
        from starlette.testclient import TestClient

        from node.app import create_app
        from node.runtime import build_runtime

        app = create_app(settings, runtime=build_runtime(settings, store=store))
        with TestClient(app, base_url=settings.base_iri) as http:
            token = _self_client(settings).token_form(settings.party_id)
            tok = http.post("/connect/token", data=token)
            access = _json_or_fail(tok)["access_token"]
            resp = http.post(
                "/sparql",
                data={"query": text},
                params={"format": args.format},
                headers={"Authorization": f"Bearer {access}"},
            )
            _print_response(resp)
        return 0
    assert client is not None
    resp = client.request(
        "POST",
        settings.base_iri,
        "/sparql",
        party_id=settings.party_id,
        data={"query": text},
        params={"format": args.format},
    )
    _print_response(resp)
    return 0


def cmd_connect(args: argparse.Namespace) -> int:
    from node.store import StoreLocked, open_store
    from node.sync import connect

    settings = _settings(args)
    options = dict(_kv(o) for o in args.option)
    source = args.source if "://" in args.source else str(Path(args.source).resolve())
    try:
        store = open_store(settings)
    except StoreLocked:
        client = _self_client(settings)
        resp = client.request(
            "POST",
            settings.base_iri,
            "/admin/connect",
            party_id=settings.party_id,
            json={
                "kind": args.kind,
                "source": source,
                "dataset": args.dataset,
                "mapping": str(args.mapping.resolve()) if args.mapping else None,
                "options": options,
            },
            timeout=None,
        )
        body = _json_or_fail(resp)
        print(f"dataset {body['dataset']}: {body['triples']} triples (version {body['version']})")
        return 0
    try:
        with tempfile.TemporaryDirectory(dir=settings.data_dir) as work:
            result, version = connect(
                store,
                kind=args.kind,
                source=source,
                dataset=args.dataset,
                base_iri=settings.base_iri,
                party_id=settings.party_id,
                workdir=Path(work),
                mapping=args.mapping,
                options=options,
                severity=settings.shacl_severity,
            )
    finally:
        store.close()
    print(f"dataset {args.dataset}: {result.triple_count} triples (version {version})")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from node.store import StoreLocked, open_store

    settings = _settings(args)
    if not settings.sources:
        raise CliError("no [[sources]] in the config: nothing to sync")
    try:
        store = open_store(settings)
    except StoreLocked:
        client = _self_client(settings)
        resp = client.request(
            "POST",
            settings.base_iri,
            "/admin/sync",
            party_id=settings.party_id,
            params={"force": "true" if args.force else "false"},
            timeout=None,
        )
        outcomes = _json_or_fail(resp)["outcomes"]
    else:
        from node.runtime import build_runtime
        from node.sync import make_sync_runner

        rt = build_runtime(settings, store=store)
        try:
            outcomes = make_sync_runner(rt)(args.force)
        finally:
            rt.close()
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


# --- checks -----------------------------------------------------------------------------------


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
    from node.checks import resolve_ids, run_check
    from node.iri import check_dataset_name
    from node.runtime import load_identity
    from node.store import StoreLocked, open_store

    settings = _settings(args)
    check_dataset_name(args.report)
    if args.dataset is not None:
        check_dataset_name(args.dataset)
    ids = [str(p) for p in resolve_ids(args.ids)]
    model = str(args.model.resolve()) if args.model is not None else None
    try:
        store = open_store(settings)
    except StoreLocked:
        print(
            "dsgo: the store is in use by the running node; checking through its admin API",
            file=sys.stderr,
        )
        resp = _self_client(settings).request(
            "POST",
            settings.base_iri,
            "/admin/check",
            party_id=settings.party_id,
            json={"report": args.report, "ids": ids, "dataset": args.dataset, "model": model},
            timeout=None,
        )
        return _json_or_fail(resp)
    try:
        outcome = run_check(
            store,
            load_identity(settings),
            settings.data_dir,
            base_iri=settings.base_iri,
            party_id=settings.party_id,
            report=args.report,
            ids=ids,
            dataset=args.dataset,
            model=model,
        )
    finally:
        store.close()
    return outcome.to_json()


# --- signed datasets --------------------------------------------------------------------------


def cmd_sign(args: argparse.Namespace) -> int:
    from node.runtime import load_identity
    from node.signatures import sign_stored_dataset
    from node.store import StoreLocked, open_store

    settings = _settings(args)
    try:
        store = open_store(settings)
    except StoreLocked:
        resp = _self_client(settings).request(
            "POST",
            settings.base_iri,
            f"/admin/sign/{args.dataset}",
            party_id=settings.party_id,
            timeout=None,
        )
        body = _json_or_fail(resp)
    else:
        try:
            signed = sign_stored_dataset(
                store, load_identity(settings), settings.data_dir, args.dataset
            )
        finally:
            store.close()
        body = {"dataset": signed.dataset, "triples": signed.triples, "party": signed.party}
    print(f"signed dataset {body['dataset']}: {body['triples']} triples, by {body['party']}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from node.signatures import verify_remote_dataset

    settings = _settings(args)
    peers = _peers(settings)
    result = verify_remote_dataset(_self_client(settings), args.dataset_iri, peers.resolve)
    print(f"OK {result.party} signed {result.iri} ({result.triples} triples)")
    return 0


# --- trust ------------------------------------------------------------------------------------


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


def cmd_trust_ca(args: argparse.Namespace) -> int:
    from trust.pki import create_dev_ca, save_dev_ca

    if (args.dir / "root.cert.pem").exists():
        raise CliError(f"{args.dir} already holds a CA")
    ca = create_dev_ca(args.name)
    save_dev_ca(ca, args.dir)
    print(f"development CA in {args.dir}; root fingerprint {ca.root_fingerprint}")
    return 0


def cmd_trust_issue(args: argparse.Namespace) -> int:
    from trust.pki import (
        issue_party_certificate,
        load_dev_ca,
        validate_party_id,
        write_pem_identity,
        write_pkcs12_identity,
    )

    validate_party_id(args.party_id)
    ca = load_dev_ca(args.ca)
    identity = issue_party_certificate(ca, args.party_id, args.name)
    args.out.mkdir(parents=True, exist_ok=True)
    write_pem_identity(identity, args.out / "key.pem", args.out / "cert.pem")
    if args.pkcs12_passphrase_env:
        passphrase = os.environ.get(args.pkcs12_passphrase_env)
        if not passphrase:
            raise CliError(f"${args.pkcs12_passphrase_env} is empty")
        write_pkcs12_identity(identity, args.out / "party.p12", passphrase)
    print(f"issued {args.party_id}: {args.out / 'key.pem'}, {args.out / 'cert.pem'}")
    return 0


def cmd_trust_fingerprint(args: argparse.Namespace) -> int:
    from trust.pki import fingerprint_sha256, load_certificates_pem

    for cert in load_certificates_pem(args.pem.read_bytes()):
        print(f"{fingerprint_sha256(cert)}  {cert.subject.rfc4514_string()}")
    return 0


def _registry(args: argparse.Namespace):
    from trust.registry import Registry

    settings = _settings(args)
    if "registry" not in settings.roles:
        raise CliError(
            f"{settings.config_path} is not a registry node (node.roles lacks 'registry')"
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Registry(settings.data_dir / "registry.sqlite")


def cmd_registry_add(args: argparse.Namespace) -> int:
    from trust.pki import load_certificates_pem, validate_party_id

    validate_party_id(args.party_id)
    certs = load_certificates_pem(args.cert.read_bytes())
    registry = _registry(args)
    registry.add_party(
        args.party_id,
        args.name,
        certificates=certs[:1],
        status=args.status,
        roles=args.role or ["ServiceConsumer", "ServiceProvider"],
        capability_url=args.capability_url,
        also_known_as=args.also_known_as,
        auth_registries=[_auth_registry(v) for v in args.auth_registry],
    )
    print(f"registered {args.party_id} ({args.status})")
    return 0


def _auth_registry(value: str):
    """`ID[;PROVIDER[;SERVICE]]` -> an AuthRegistry (ids checked)."""
    from trust.pki import validate_party_id
    from trust.registry import AuthRegistry

    parts = value.split(";")
    if len(parts) > 3 or not parts[0]:
        raise CliError(f"--auth-registry {value!r}: use ID[;SERVICE_PROVIDER[;SERVICE]]")
    validate_party_id(parts[0])
    provider = parts[1] if len(parts) > 1 else ""
    if provider:
        validate_party_id(provider)
    return AuthRegistry(
        parts[0], service_provider=provider, service=parts[2] if len(parts) > 2 else ""
    )


def cmd_registry_status(args: argparse.Namespace) -> int:
    _registry(args).set_status(args.party_id, args.status)
    print(f"{args.party_id}: {args.status}")
    return 0


def cmd_registry_list(args: argparse.Namespace) -> int:
    for party in _registry(args).find_parties():
        print(f"{party.party_id}\t{party.adherence.status}\t{party.name}")
    return 0


def cmd_registry_trust_ca(args: argparse.Namespace) -> int:
    from trust.pki import load_certificates_pem

    registry = _registry(args)
    for cert in load_certificates_pem(args.cert.read_bytes()):
        entry = registry.add_trusted_ca(cert)
        print(f"trusted {entry.certificate_fingerprint}")
    return 0


# --- policy / audit ---------------------------------------------------------------------------


def _policies(settings: Settings):
    from trust.policy_store import PolicyStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return PolicyStore(
        settings.data_dir / "policies.sqlite", issuer=settings.party_id, base_iri=settings.base_iri
    )


def cmd_policy_grant(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not PARTY_ID.match(args.to):
        raise CliError(f"--to: {args.to!r} is not a party id")
    until = _timestamp(args.until) if args.until else None
    if args.federate:
        from trust.delegation import DSGO_FEDERATE, DSGO_SERVICE

        policy_id = _policies(settings).grant(
            args.to, type=DSGO_SERVICE, ids=args.ids or None, actions=[DSGO_FEDERATE], until=until
        )
        print(policy_id)
        return 0
    policy_id = _policies(settings).grant(
        args.to,
        dataset=args.dataset,
        type=_expand(args.type) if args.type else None,
        ids=[_expand(i) for i in args.ids] if args.ids else None,
        attributes=[_expand(a) for a in args.attributes] if args.attributes else None,
        until=until,
    )
    print(policy_id)
    return 0


def cmd_policy_list(args: argparse.Namespace) -> int:
    settings = _settings(args)
    policies = _policies(settings).list(subject=args.to, issuer=settings.party_id)
    if not policies:
        print("no policies")
    for p in policies:
        print(json.dumps({"id": p.id, **p.evidence}))
    return 0


def cmd_policy_revoke(args: argparse.Namespace) -> int:
    _policies(_settings(args)).revoke(args.policy_id)
    print(f"revoked {args.policy_id}")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from node.runtime import load_identity, trusted_fingerprints
    from trust.audit import verify
    from trust.audit_store import open_audit_store

    settings = _settings(args)
    store = open_audit_store(
        settings.audit_dsn
        if settings.audit_backend == "postgresql"
        else str(settings.data_dir / "audit.sqlite")
    )
    roots = trusted_fingerprints(settings)
    party = load_identity(settings).party_id
    report = verify(store, roots, node_party=party)
    failed = not report.ok
    for line in report.describe():
        print(line)
    if args.witness:
        failed |= not _check_witness(settings, store, roots, party, args.witness)
    if not failed:
        print(
            f"audit log intact: {report.entries} entries, {report.checkpoints} signed checkpoints"
        )
        return 0
    return EXIT_ERROR


def _check_witness(settings: Settings, store: Any, roots: set[str], party: str, url: str) -> bool:
    """Compare the log with the heads the witness at `url` countersigned; print the outcome."""
    from trust.witness import check_against_witness, verify_witness_receipt

    peer = _peers(settings).resolve(url)
    resp = _self_client(settings).request(
        "GET", peer.base_url, f"/audit/witness/{party}", party_id=peer.party_id
    )
    body = _json_or_fail(resp)
    heads = []
    for item in body.get("heads", []):
        payload = verify_witness_receipt(item["receipt"], roots, peer.party_id, party)
        heads.append((int(payload["seq"]), str(payload["hash"])))
    problem = check_against_witness(store, heads)
    if problem is None:
        newest = max((s for s, _ in heads), default=0)
        print(f"witness {peer.party_id}: {len(heads)} countersigned heads hold (newest {newest})")
        return True
    what, (first, last) = problem
    print(f"audit log BROKEN against witness {peer.party_id}: {what} (entries {first}-{last})")
    return False


def cmd_derive(args: argparse.Namespace) -> int:
    settings = _settings(args)
    text = args.file.read_text(encoding="utf-8") if args.file else args.query
    if not text:
        raise CliError("give the query text or --file")
    resp = _self_client(settings).request(
        "POST",
        settings.base_iri,
        "/admin/derive",
        party_id=settings.party_id,
        json={"query": text, "dataset": args.dataset},
        timeout=None,
    )
    body = _json_or_fail(resp)
    print(f"dataset {body['dataset']}: {body['triples']} triples (version {body['version']})")
    return 0


def cmd_audit_trace(args: argparse.Namespace) -> int:
    settings = _settings(args)
    client = _self_client(settings)
    peers = _peers(settings)
    hops: list[dict[str, Any]] = []
    todo = [(args.iri, 0)]
    seen: set[str] = set()
    while todo:
        iri, depth = todo.pop(0)
        if iri in seen or depth > args.depth:
            continue
        seen.add(iri)
        peer = peers.resolve(iri)  # only nodes the registry vouches for are asked
        hop = _json_or_fail(
            client.request(
                "GET", peer.base_url, "/audit/trace", party_id=peer.party_id, params={"iri": iri}
            )
        )
        hop["depth"] = depth
        hops.append(hop)
        for ds in hop.get("datasets", []):
            for derived in ds.get("derived_from") or []:
                todo.append((derived["iri"], depth + 1))
    if args.json:
        print(json.dumps(hops, indent=2))
        return 0
    for hop in hops:
        indent = "  " * hop["depth"]
        print(f"{indent}{hop['iri']}")
        print(f"{indent}  held by {hop['party']} at {hop['node']}")
        for ds in hop["datasets"]:
            print(f"{indent}  dataset {ds['dataset']}, version {ds.get('version')}")
            if ds.get("version"):
                act, src = ds["activity"], ds["source"]
                print(
                    f"{indent}    generated {ds['generated_at']} by {act['connector']} {act['connector_version']}"
                    f" for {ds.get('attributed_to')}"
                )
                print(f"{indent}    from {src['location']}")
                print(f"{indent}    source sha256 {src['sha256']}")
                for d in ds.get("derived_from") or []:
                    print(f"{indent}    derived from {d['iri']} (ETag {d['etag']})")
        print(f"{indent}  {hop['access_count']} access records on this node; latest:")
        for a in hop["accesses"][-5:]:
            print(
                f"{indent}    #{a['seq']} {a['time']} {a['kind']:<13} {a['party']} {a['target'] or ''}"
            )
    return 0


def cmd_audit_tail(args: argparse.Namespace) -> int:
    from trust.audit import AuditLog
    from trust.audit_store import open_audit_store

    settings = _settings(args)
    log = AuditLog(open_audit_store(str(settings.data_dir / "audit.sqlite")), None)
    entries = log.entries(None, None, None, None, limit=100_000)
    for e in entries[-args.n :]:
        line = {
            "seq": e.seq,
            "time": e.time,
            "kind": e.kind,
            "party": e.party,
            "target": e.target,
            "policies": list(e.policy_ids),
        }
        # what the entry says beyond that, when it says it
        optional = {
            "action": e.action,
            "token_jti": e.token_jti,
            "query_hash": e.query_hash,
            "datasets": list(e.datasets),
            "result_size": e.result_size,
            "detail": e.detail,
        }
        line.update({k: v for k, v in optional.items() if v not in (None, [], {})})
        print(json.dumps(line))
    return 0


# --- helpers ----------------------------------------------------------------------------------


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


def _with_store(
    settings: Settings, direct: Callable[[Any], Any], via_node: Callable[[Any], Any]
) -> Any:
    from node.store import StoreLocked, open_store

    try:
        store = open_store(settings)
    except StoreLocked:
        return via_node(_self_client(settings))
    try:
        return direct(store)
    finally:
        store.close()


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
    if isinstance(exc, httpx.HTTPError):
        return f"HTTP failure: {exc}"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    text = str(exc) or type(exc).__name__
    return text


if __name__ == "__main__":
    sys.exit(main())
