"""`dsgo init DIR`: a node directory with node.toml and a working development identity."""

from __future__ import annotations

import shutil
from pathlib import Path

from node.config import PARTY_ID, ConfigError

TEMPLATE = """# dsgo-node configuration. Every key can be overridden by DSGO_<SECTION>_<KEY>,
# e.g. DSGO_SERVER_PORT=8200. Paths are relative to this file.

[node]
base_iri = "{base_iri}"        # resource IRIs are {{base_iri}}/id/...
party_id = "{party_id}"
party_name = "{name}"
roles = [{roles}]              # node, registry, authorisation_register
data_dir = "data"

[server]
host = "{host}"
port = {port}
workers = 1                    # >1 needs store.backend = "sparql"

[store]
{store}query_timeout = 10.0           # seconds; longer queries are cancelled with 503
max_results = 100000           # rows or triples; more are cut off (header DSGO-Result-Truncated)
query_slots = 2                # queries evaluated at once

[identity]
{identity}

[trust]
trusted_roots = [{trusted_roots}]
{registry}registry_cache_seconds = 60

[sync]
interval = 0                   # seconds between scheduled syncs of [[sources]]; 0 = off
shacl_severity = "Violation"   # fail a connector run at this SHACL severity or worse

[catalog]
advertise = []                 # datasets listed with an ODRL offer to callers who may not read them
# license = "http://creativecommons.org/licenses/by/4.0/"   # default licence of every dataset
# access_rights = "restricted" # public | restricted | non-public: the default dct:accessRights
# contact_email = "data@example.org"
# [catalog.datasets.bim]       # per dataset: title, description, license, access_rights, keywords

[state]
{state}
[audit]
# backend = "sqlite"           # default: as [state] (its PostgreSQL), else data/audit.sqlite;
                               # or "postgresql" with a dsn of its own

# [[sources]]
# kind = "ifc"
# source = "model.ifc"
# dataset = "bim"
"""


def init_node(
    directory: Path,
    *,
    party_id: str,
    name: str | None,
    host: str,
    port: int,
    base_iri: str | None,
    roles: str | None,
    ca_dir: Path | None,
    key: Path | None,
    cert: Path | None,
    pkcs12: Path | None,
    registry_url: str | None,
    registry_id: str | None,
    trust_roots: list[Path],
    force: bool = False,
    state_dsn: str | None = None,
    oxigraph_url: str | None = None,
) -> Path:
    """Write DIR/node.toml; without --key/--cert, issue a party certificate from a development CA."""
    from trust.pki import (
        create_dev_ca,
        issue_party_certificate,
        load_dev_ca,
        save_dev_ca,
        write_pem_identity,
    )

    if not PARTY_ID.match(party_id):
        raise ConfigError(f"--party-id: {party_id!r} is not an EORI or did:ishare id")
    directory = directory.resolve()
    config = directory / "node.toml"
    if config.exists() and not force:
        raise ConfigError(f"{config} exists (use --force to overwrite)")
    if (registry_url is None) != (registry_id is None):
        raise ConfigError("--registry-url and --registry-id go together")
    keys = directory / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    name = name or party_id
    role_list = [r.strip() for r in (roles or "").split(",") if r.strip()]
    if not role_list:
        role_list = ["node"] if registry_url else ["node", "registry"]

    if pkcs12:
        identity_lines = f'pkcs12 = "{pkcs12.resolve()}"   # passphrase from $DSGO_KEY_PASSPHRASE'
        roots = [p.resolve() for p in trust_roots]
        ca = None
    elif key or cert:
        if not (key and cert):
            raise ConfigError("--key and --cert go together")
        identity_lines = f'key = "{key.resolve()}"\ncert = "{cert.resolve()}"'
        roots = [p.resolve() for p in trust_roots]
        ca = None
    else:
        ca_dir = (ca_dir or keys / "dev-ca").resolve()
        if (ca_dir / "root.cert.pem").exists():
            ca = load_dev_ca(ca_dir)
        else:
            ca = create_dev_ca()
            save_dev_ca(ca, ca_dir)
        identity = issue_party_certificate(ca, party_id, name)
        write_pem_identity(identity, keys / "node.key.pem", keys / "node.cert.pem")
        identity_lines = 'key = "keys/node.key.pem"\ncert = "keys/node.cert.pem"'
        root_copy = keys / "trusted-root.cert.pem"
        shutil.copyfile(ca_dir / "root.cert.pem", root_copy)
        roots = [root_copy, *(p.resolve() for p in trust_roots)]
    if not roots:
        raise ConfigError("--trust-root: give the scheme's root CA certificate (PEM)")

    if state_dsn is not None and not state_dsn.startswith(("postgresql://", "postgres://")):
        raise ConfigError("--state-dsn: a postgresql:// URL")
    if oxigraph_url is not None and not oxigraph_url.startswith(("http://", "https://")):
        raise ConfigError("--oxigraph-url: an http(s) URL of `oxigraph serve`")
    registry_lines = ""
    if registry_url:
        registry_lines = f'registry_url = "{registry_url}"\nregistry_party_id = "{registry_id}"\n'
    base_iri = (base_iri or f"http://{host}:{port}").rstrip("/")
    config.write_text(
        TEMPLATE.format(
            base_iri=base_iri,
            party_id=party_id,
            name=name.replace('"', "'"),
            roles=", ".join(f'"{r}"' for r in role_list),
            host=host,
            port=port,
            identity=identity_lines,
            trusted_roots=", ".join(f'"{_rel(p, directory)}"' for p in roots),
            registry=registry_lines,
            state=_state_lines(state_dsn),
            store=_store_lines(oxigraph_url),
        ),
        encoding="utf-8",
    )
    if "registry" in role_list and ca is not None:
        # A node that is its own registry trusts its CA and lists itself as an active party.
        (directory / "data").mkdir(exist_ok=True)
        registry = _registry(directory, state_dsn)
        registry.add_trusted_ca(ca.root_cert)
        registry.add_party(
            party_id,
            name,
            certificates=[identity.certificate],
            roles=["iShareSatellite", "ServiceProvider", "AuthorisationRegistry"],
            capability_url=f"{base_iri}/capabilities",
        )
    return config


def _registry(directory: Path, state_dsn: str | None):
    """Where a registry node's own records go: data/registry.sqlite or the shared state."""
    from trust.registry import Registry

    if state_dsn is None:
        return Registry(directory / "data" / "registry.sqlite")
    from trust.pg import PgSettings, PgState, StateUnavailable
    from trust.registry_pg import PostgresRegistry

    try:
        return PostgresRegistry(PgState(PgSettings(state_dsn)))
    except StateUnavailable as exc:
        raise ConfigError(
            f"--state-dsn: cannot use the state database: {exc.description}"
        ) from None


def _state_lines(dsn: str | None) -> str:
    """[state]: SQLite files in data/, or the shared PostgreSQL of several hosts."""
    if dsn is None:
        return (
            'backend = "sqlite"             # replay cache, token keys, policies, registry in data/;\n'
            '                               # or "postgresql" with dsn = "postgresql://..." (N hosts)\n'
        )
    return (
        'backend = "postgresql"         # shared by every host of this party\n'
        f'dsn = "{dsn}"                 # or $DSGO_STATE_DSN, to keep a password out of this file\n'
    )


def _store_lines(oxigraph_url: str | None) -> str:
    """[store] backend: embedded, or an `oxigraph serve` every host of this party uses."""
    if oxigraph_url is None:
        return 'backend = "oxigraph"           # embedded on disk; or "sparql" with query_url/update_url/store_url\n'
    url = oxigraph_url.rstrip("/")
    return (
        'backend = "sparql"             # an external SPARQL 1.1 Protocol + Graph Store engine\n'
        f'query_url = "{url}/query"\nupdate_url = "{url}/update"\nstore_url = "{url}/store"\n'
    )


def _rel(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
