"""`dsgo`: set up, run and administer a node. Errors print one line, never a traceback.

The commands live by topic (data, trust, policy, audit); this module builds the parser.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from node.cli._common import EXIT_ERROR, EXIT_USAGE, CliError, _describe
from node.cli.audit import cmd_audit_tail, cmd_audit_trace, cmd_audit_verify
from node.cli.data import (
    cmd_check_ids,
    cmd_connect,
    cmd_datasets,
    cmd_derive,
    cmd_get,
    cmd_init,
    cmd_load,
    cmd_query,
    cmd_serve,
    cmd_sign,
    cmd_sync,
    cmd_token,
    cmd_verify,
)
from node.cli.login import cmd_dev_op
from node.cli.policy import cmd_policy_grant, cmd_policy_list, cmd_policy_revoke
from node.cli.trust import (
    cmd_registry_add,
    cmd_registry_list,
    cmd_registry_status,
    cmd_registry_trust_ca,
    cmd_state_import,
    cmd_trust_ca,
    cmd_trust_fingerprint,
    cmd_trust_issue,
)

__all__ = ["CliError", "build_parser", "main"]

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
    p.add_argument(
        "--state-dsn",
        help="keep the trust state in this PostgreSQL (postgresql://...), for N hosts",
    )
    p.add_argument("--oxigraph-url", help="use the `oxigraph serve` at this URL as the store")
    p.add_argument(
        "--dev-login",
        action="store_true",
        help="people log in through the development OpenID Provider (writes DIR/dev-op.json)",
    )
    p.add_argument("--dev-login-port", type=int, default=8900, help="its port on 127.0.0.1")

    p = command(
        "dev-op", cmd_dev_op, "run the development OpenID Provider (tools/dev-op)", config=False
    )
    p.add_argument("file", type=Path, help="its config, e.g. DIR/dev-op.json from init --dev-login")

    p = command("serve", cmd_serve, "run the node (uvicorn with uvloop/httptools)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int, help="needs store.backend = 'engine' or 'sparql'")

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

    # state ...
    state = sub.add_parser("state", help="the node's shared state ([state] backend)")
    ssub = state.add_subparsers(metavar="ACTION")
    p = ssub.add_parser(
        "import",
        help="copy the data directory's SQLite registry and policies into the shared PostgreSQL state",
    )
    _config_arg(p)
    p.set_defaults(func=cmd_state_import)

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
    from node.cli import receipts

    receipts.add_parser(asub, _config_arg)
    return parser


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="node config (default: $DSGO_CONFIG or ./node.toml)",
    )


if __name__ == "__main__":
    sys.exit(main())
