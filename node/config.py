"""Node settings: one `node.toml` per node, every key overridable by a DSGO_<SECTION>_<KEY> variable."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from node.login.config import LoginConfig, LoginConfigError, parse_login
from node.store.engine_profile import ENGINES
from vocab.iris import DATASET_NAME, dataset_iri

if TYPE_CHECKING:
    from node.catalog_settings import CatalogSettings

DEFAULT_CONFIG = "node.toml"
PARTY_ID = re.compile(
    r"^(EU\.EORI\.[A-Z]{2}[A-Za-z0-9]{1,15}|did:ishare:EU\.[A-Z]{2}\.NTR[A-Z]{2}-\d{8})$"
)
ROLES = {"node", "registry", "authorisation_register"}


class ConfigError(Exception):
    """A missing or wrong setting; the message names it and is shown as one line."""


@dataclass(frozen=True)
class SourceConfig:
    """A connector source kept in step by `dsgo sync`."""

    kind: str
    source: str
    dataset: str
    mapping: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckConfig:
    """A `[[checks]]` entry: check a dataset's model after every sync that changes it."""

    kind: str  # "ids": the model against IDS files (connectors/ids_check.py)
    dataset: str  # the checked model's dataset
    ids: tuple[str, ...]  # IDS files or directories of them (absolute after loading)
    report: str  # the report's dataset
    strict: bool = False  # the verdict counts required specifications no entity meets


CHECK_KINDS = ("ids",)
_CHECK_KEYS = {"kind", "dataset", "ids", "report", "strict"}
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")  # state.schema: a plain PostgreSQL identifier


@dataclass(frozen=True)
class QueryLimits:
    """Checked before the engine sees a caller's query text (config section [query])."""

    max_length: int = 262_144  # query.max_length: characters
    max_depth: int = 64  # query.max_depth: nesting of { ( [
    max_operators: int = 512  # query.max_operators: OPTIONAL/MINUS/UNION, path and operators
    max_services: int = 8  # query.max_services: SERVICE clauses


@dataclass(frozen=True)
class Bounds:
    """How long the node waits on each dependency, and how much it takes on (issue 17)."""

    audit_timeout: float = 2.0  # audit.timeout: PostgreSQL statement/lock timeout and deadline
    audit_connect_timeout: float = 2.0  # audit.connect_timeout
    registry_timeout: float = 3.0  # trust.registry_timeout: connect and read, per lookup
    registry_negative_seconds: float = 5.0  # trust.registry_negative_seconds: failures cached
    registry_threads: int = 4  # trust.registry_threads: lookups at once (a separate pool)
    remote_connect_timeout: float = 2.0  # federation.connect_timeout
    remote_read_timeout: float = 10.0  # federation.read_timeout (capped by the query timeout)
    max_in_flight: int = 256  # server.max_in_flight: requests admitted at once per worker
    federated_threads: int = 32  # federation.threads: SERVICE queries waiting on remotes at once
    retry_after: int = 1  # server.retry_after: seconds, sent with every 503
    min_free_mb: int = 256  # node.min_free_mb: /readyz fails below this free space


@dataclass(frozen=True)
class Settings:
    """Everything a node needs to start; paths are absolute after loading."""

    config_path: Path
    base_iri: str
    party_id: str
    party_name: str
    roles: frozenset[str]
    data_dir: Path
    host: str
    port: int
    workers: int
    store_backend: str  # "oxigraph" | "sparql"
    sparql_query_url: str | None
    sparql_update_url: str | None
    sparql_store_url: str | None
    query_timeout: float
    max_results: int
    query_slots: int
    key_file: Path | None
    cert_file: Path | None
    pkcs12_file: Path | None
    key_passphrase: str | None
    trusted_roots: tuple[Path, ...]
    registry_url: str | None
    registry_party_id: str | None
    registry_cache_seconds: float
    sources: tuple[SourceConfig, ...]
    sync_interval: float
    shacl_severity: str
    audit_backend: str  # "sqlite" | "postgresql"
    audit_dsn: str | None
    log_requests: bool
    advertise: tuple[str, ...] = ()
    limits: QueryLimits = field(default_factory=lambda: QueryLimits())
    federation_endpoints: dict[str, str] = field(default_factory=dict)  # base URL -> party id
    authorisation_registers: tuple[str, ...] = ()
    registry_version: str = "auto"  # iSHARE version spoken with the registry: auto, 2.1, 3.0
    audit_checkpoint_every: int = 100
    audit_checkpoint_seconds: float = 1.0
    audit_witness_url: str | None = None
    audit_witness_party_id: str | None = None
    checks: tuple[CheckConfig, ...] = ()
    login: LoginConfig = field(default_factory=LoginConfig)  # [login]: people (node/login/)
    bounds: Bounds = field(default_factory=lambda: Bounds())
    warm_up: bool = True  # store.warm_up: merge plans and VoID numbers computed after each load
    catalog: CatalogSettings = field(default_factory=lambda: _catalog_settings({}))
    state_backend: str = (
        "sqlite"  # "sqlite" | "postgresql": replay cache, token keys, policies, registry
    )
    state_dsn: str | None = None
    state_schema: str = "dsgo"
    sparql_engine: str = "auto"  # store.sparql_engine: node.store.engine_profile.ENGINES
    state_statement_timeout: float = 5.0
    state_key_rotation: float = 7 * 24 * 3600.0
    state_pool_size: int = 8
    exchange_sign: bool = True  # exchange.sign: JAdES-sign requests to and responses for parties
    exchange_accept_unsigned: bool = True  # exchange.accept_unsigned: take unsigned peer answers
    exchange_max_skew: float = 300.0  # exchange.max_skew: seconds a sigT may be off
    engine: EngineSettings | None = None  # store.engine_*: the supervised engine (node/engine.py)

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @property
    def state_db(self) -> Path:
        return self.data_dir / "state.sqlite"

    def dataset_iri(self, name: str) -> str:
        return dataset_iri(self.base_iri, name)


def load_settings(path: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Read node.toml (or $DSGO_CONFIG), apply DSGO_* environment and keyword overrides, validate."""
    config_path = Path(path or os.environ.get("DSGO_CONFIG") or DEFAULT_CONFIG).resolve()
    if not config_path.is_file():
        raise ConfigError(f"config file not found: {config_path} (create one with `dsgo init DIR`)")
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}") from None
    _apply_environment(raw, os.environ)
    for dotted, value in overrides.items():
        if value is not None:
            section, _, key = dotted.partition("__")
            raw.setdefault(section, {})[key] = value
    return _build(raw, config_path)


def _apply_environment(raw: dict[str, Any], env: os._Environ[str] | dict[str, str]) -> None:
    """DSGO_SERVER_PORT=8080 sets [server] port; values are parsed as TOML scalars when they can be."""
    for name, value in env.items():
        if not name.startswith("DSGO_") or name in ("DSGO_CONFIG", "DSGO_KEY_PASSPHRASE"):
            continue
        parts = name[5:].lower().split("_", 1)
        if len(parts) != 2 or parts[0] not in _SECTIONS:
            continue
        section, key = parts
        raw.setdefault(section, {})[key] = _scalar(value)


_SECTIONS = {
    "node",
    "server",
    "store",
    "identity",
    "trust",
    "sync",
    "audit",
    "log",
    "catalog",
    "query",
    "federation",
    "login",
    "state",
    "exchange",
}


def _scalar(value: str) -> Any:
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def _build(raw: dict[str, Any], config_path: Path) -> Settings:
    root = config_path.parent
    node = _section(raw, "node")
    server = _section(raw, "server")
    store = _section(raw, "store")
    identity = _section(raw, "identity")
    trust = _section(raw, "trust")
    sync = _section(raw, "sync")
    audit = _section(raw, "audit")
    log = _section(raw, "log")
    catalog = _section(raw, "catalog")
    query = _section(raw, "query")
    federation = _section(raw, "federation")
    exchange = _section(raw, "exchange")
    for key in ("sign", "accept_unsigned"):
        if not isinstance(exchange.get(key, True), bool):
            raise ConfigError(f"exchange.{key}: must be true or false")

    base_iri = _require_str(node, "node.base_iri").rstrip("/")
    parts = urlsplit(base_iri)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"node.base_iri: must be an absolute http(s) IRI, got {base_iri!r}")
    party_id = _require_str(node, "node.party_id")
    if not PARTY_ID.match(party_id):
        raise ConfigError(
            f"node.party_id: {party_id!r} is not an EORI (EU.EORI.NL...) or did:ishare:EU.NL.NTRNL-<KvK> id"
        )
    roles = frozenset(_list(node, "node.roles", ["node"]))
    if unknown := roles - ROLES:
        raise ConfigError(f"node.roles: unknown role(s) {sorted(unknown)}; known: {sorted(ROLES)}")

    backend = str(store.get("backend", "oxigraph"))
    if backend not in ("oxigraph", "sparql", "engine"):
        raise ConfigError(
            f"store.backend: must be 'oxigraph', 'sparql' or 'engine', got {backend!r}"
        )
    query_url = store.get("query_url")
    if backend == "sparql" and not query_url:
        raise ConfigError("store.query_url: required when store.backend = 'sparql'")
    sparql_engine = str(store.get("sparql_engine", "auto"))
    if sparql_engine not in ENGINES:
        raise ConfigError(
            f"store.sparql_engine: must be one of {', '.join(ENGINES)}, got {sparql_engine!r}"
        )

    port = _int(server, "server.port", 8100, 1, 65535)
    workers = _int(server, "server.workers", 1, 1, 64)
    if workers > 1 and backend == "oxigraph":
        raise ConfigError(
            "server.workers: the embedded store is owned by one process; use store.backend = "
            "'engine' (a supervised oxigraph server) or 'sparql' (an external engine) to run "
            "several workers"
        )
    severity = str(sync.get("shacl_severity", "Violation"))
    if severity not in ("Violation", "Warning", "Info"):
        raise ConfigError("sync.shacl_severity: must be Violation, Warning or Info")
    state = _section(raw, "state")
    state_backend = str(state.get("backend", "sqlite"))
    if state_backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"state.backend: must be 'sqlite' or 'postgresql', got {state_backend!r}")
    state_dsn = state.get("dsn") or None
    if state_backend == "postgresql" and not (
        isinstance(state_dsn, str) and state_dsn.startswith(("postgresql://", "postgres://"))
    ):
        raise ConfigError(
            "state.dsn: required when state.backend = 'postgresql', a postgresql:// URL"
        )
    state_schema = str(state.get("schema", "dsgo"))
    if not _SCHEMA.fullmatch(state_schema):
        raise ConfigError(
            f"state.schema: lowercase letters, digits and _ (at most 63), got {state_schema!r}"
        )
    state_timeout = _float(state, "state.statement_timeout", 5.0)
    if not 0.05 <= state_timeout <= 600:
        raise ConfigError(
            f"state.statement_timeout: seconds from 0.05 to 600, got {state_timeout!r}"
        )
    key_rotation = _float(state, "state.key_rotation", 7 * 24 * 3600.0)
    if key_rotation < 60:
        raise ConfigError(f"state.key_rotation: at least 60 seconds, got {key_rotation!r}")
    # With the shared state the audit log joins it, unless [audit] says otherwise.
    audit_backend = str(
        audit.get("backend", "postgresql" if state_backend == "postgresql" else "sqlite")
    )
    if audit_backend not in ("sqlite", "postgresql"):
        raise ConfigError("audit.backend: must be 'sqlite' or 'postgresql'")
    if audit_backend == "postgresql" and not audit.get("dsn") and state_backend != "postgresql":
        raise ConfigError("audit.dsn: required when audit.backend = 'postgresql'")

    sources = []
    for i, item in enumerate(raw.get("sources", [])):
        if not isinstance(item, dict):
            raise ConfigError(f"sources[{i}]: must be a table")
        for key in ("kind", "source", "dataset"):
            if not isinstance(item.get(key), str) or not item[key]:
                raise ConfigError(f"sources[{i}].{key}: required")
        src = item["source"]
        if "://" not in src:
            src = str((root / src).resolve())
        mapping = item.get("mapping")
        sources.append(
            SourceConfig(
                kind=item["kind"],
                source=src,
                dataset=item["dataset"],
                mapping=str((root / mapping).resolve()) if mapping else None,
                options={
                    k: v
                    for k, v in item.items()
                    if k not in ("kind", "source", "dataset", "mapping")
                },
            )
        )

    checks = _checks(raw, root, {s.dataset for s in sources})

    endpoints = federation.get("allowed_endpoints", {})
    if not isinstance(endpoints, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and PARTY_ID.match(v)
        for k, v in endpoints.items()
    ):
        raise ConfigError(
            "federation.allowed_endpoints: must be a table of node base URL = party id, e.g. "
            '{ "https://node.example" = "EU.EORI.NL000000001" }'
        )
    for url in endpoints:
        if urlsplit(url).scheme not in ("http", "https") or "@" in url:
            raise ConfigError(f"federation.allowed_endpoints: {url!r} is not an http(s) URL")
    registers = _list(trust, "trust.authorisation_registers", [])
    if bad := [r for r in registers if not PARTY_ID.match(r)]:
        raise ConfigError(f"trust.authorisation_registers: not party ids: {bad}")
    witness_url = audit.get("witness_url") or None
    witness_party = audit.get("witness_party_id") or None
    if (witness_url is None) != (witness_party is None):
        raise ConfigError("audit.witness_url and audit.witness_party_id go together")

    try:
        login = parse_login(raw.get("login"), party_id)
    except LoginConfigError as exc:
        raise ConfigError(str(exc)) from None

    passphrase = os.environ.get("DSGO_KEY_PASSPHRASE") or identity.get("passphrase")
    return Settings(
        config_path=config_path,
        base_iri=base_iri,
        party_id=party_id,
        party_name=str(node.get("party_name", party_id)),
        roles=roles,
        data_dir=_path(root, node.get("data_dir", "data")),
        host=str(server.get("host", "127.0.0.1")),
        port=port,
        workers=workers,
        store_backend=backend,
        sparql_query_url=query_url,
        sparql_update_url=store.get("update_url"),
        sparql_store_url=store.get("store_url"),
        query_timeout=_float(store, "store.query_timeout", 10.0),
        max_results=_int(store, "store.max_results", 100_000, 1, 10**9),
        query_slots=_int(store, "store.query_slots", 8 if backend == "engine" else 2, 1, 64),
        warm_up=_flag(store, "store.warm_up", True),
        key_file=_opt_path(root, identity.get("key")),
        cert_file=_opt_path(root, identity.get("cert")),
        pkcs12_file=_opt_path(root, identity.get("pkcs12")),
        key_passphrase=passphrase,
        trusted_roots=tuple(_path(root, p) for p in _list(trust, "trust.trusted_roots", [])),
        registry_url=(trust.get("registry_url") or None),
        registry_party_id=(trust.get("registry_party_id") or None),
        registry_cache_seconds=_float(trust, "trust.registry_cache_seconds", 60.0),
        sources=tuple(sources),
        sync_interval=_float(sync, "sync.interval", 0.0),
        shacl_severity=severity,
        audit_backend=audit_backend,
        audit_dsn=audit.get("dsn"),
        log_requests=bool(log.get("requests", True)),
        advertise=tuple(_list(catalog, "catalog.advertise", [])),
        limits=QueryLimits(
            max_length=_int(query, "query.max_length", 262_144, 16, 16 * 1024 * 1024),
            max_depth=_int(query, "query.max_depth", 64, 2, 256),
            max_operators=_int(query, "query.max_operators", 512, 8, 4096),
            max_services=_int(query, "query.max_services", 8, 0, 64),
        ),
        federation_endpoints=dict(endpoints),
        authorisation_registers=tuple(registers),
        registry_version=_registry_version(trust),
        audit_checkpoint_every=_int(audit, "audit.checkpoint_every", 100, 1, 1_000_000),
        audit_checkpoint_seconds=_float(audit, "audit.checkpoint_seconds", 1.0),
        audit_witness_url=witness_url,
        audit_witness_party_id=witness_party,
        checks=checks,
        login=login,
        catalog=_catalog_settings(catalog),
        state_backend=state_backend,
        state_dsn=state_dsn,
        state_schema=state_schema,
        sparql_engine=sparql_engine,
        state_statement_timeout=state_timeout,
        state_key_rotation=key_rotation,
        state_pool_size=_int(state, "state.pool_size", 8, 1, 256),
        exchange_sign=exchange.get("sign", True),
        exchange_accept_unsigned=exchange.get("accept_unsigned", True),
        exchange_max_skew=_float(exchange, "exchange.max_skew", 300.0),
        bounds=_bounds(node, server, trust, audit, federation),
        engine=(
            engine_settings(store, root, _path(root, node.get("data_dir", "data")))
            if backend == "engine"
            else None
        ),
    )


@dataclass(frozen=True)
class EngineSettings:
    """store.backend = "engine": an `oxigraph serve` child the node supervises (node/engine.py),
    so several workers share one store and an overrunning query can be stopped by a restart."""

    location: Path  # store.engine_dir: its RocksDB directory (not the embedded store's)
    binary: str  # store.engine_binary: the `oxigraph` executable
    start_timeout: float  # store.engine_start_timeout: seconds to wait for it to answer
    max_connections: int  # store.engine_connections: keep-alive connections per worker


def engine_settings(store: dict[str, Any], root: Path, data_dir: Path) -> EngineSettings:
    """The [store] engine_* keys, with the oxigraph binary next to this Python by default."""
    import shutil
    import sys

    default = Path(sys.executable).parent / "oxigraph"
    binary = str(store.get("engine_binary") or (default if default.exists() else "oxigraph"))
    if shutil.which(binary) is None:
        raise ConfigError(f"store.engine_binary: no executable {binary!r}")
    timeout = _float(store, "store.engine_start_timeout", 30.0)
    if timeout <= 0:
        raise ConfigError("store.engine_start_timeout: must be a positive number of seconds")
    return EngineSettings(
        location=_path(root, store["engine_dir"]) if "engine_dir" in store else data_dir / "engine",
        binary=binary,
        start_timeout=timeout,
        max_connections=_int(store, "store.engine_connections", 32, 1, 1024),
    )


def _bounds(
    node: dict[str, Any],
    server: dict[str, Any],
    trust: dict[str, Any],
    audit: dict[str, Any],
    federation: dict[str, Any],
) -> Bounds:
    """The [issue 17] bounds; each timeout must be positive (0 would mean "wait forever")."""

    def positive(section: dict[str, Any], name: str, default: float) -> float:
        value = _float(section, name, default)
        if value <= 0:
            raise ConfigError(f"{name}: must be a positive number of seconds, got {value!r}")
        return value

    return Bounds(
        audit_timeout=positive(audit, "audit.timeout", 2.0),
        audit_connect_timeout=positive(audit, "audit.connect_timeout", 2.0),
        registry_timeout=positive(trust, "trust.registry_timeout", 3.0),
        registry_negative_seconds=_float(trust, "trust.registry_negative_seconds", 5.0),
        registry_threads=_int(trust, "trust.registry_threads", 4, 1, 64),
        remote_connect_timeout=positive(federation, "federation.connect_timeout", 2.0),
        remote_read_timeout=positive(federation, "federation.read_timeout", 10.0),
        max_in_flight=_int(server, "server.max_in_flight", 256, 1, 1_000_000),
        federated_threads=_int(federation, "federation.threads", 32, 1, 1024),
        retry_after=_int(server, "server.retry_after", 1, 1, 3600),
        min_free_mb=_int(node, "node.min_free_mb", 256, 0, 10**9),
    )


def _catalog_settings(section: dict[str, Any]) -> CatalogSettings:
    from node.catalog_settings import catalog_settings  # it imports ConfigError from here

    return catalog_settings(section)


def _checks(raw: dict[str, Any], root: Path, source_datasets: set[str]) -> tuple[CheckConfig, ...]:
    """The `[[checks]]` tables; ConfigError naming the entry and key for anything wrong."""
    items = raw.get("checks", [])
    if not isinstance(items, list):
        raise ConfigError("checks: use [[checks]] tables")
    checks: list[CheckConfig] = []
    for i, item in enumerate(items):
        where = f"checks[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: must be a table")
        if unknown := sorted(set(item) - _CHECK_KEYS):
            raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(_CHECK_KEYS)}")
        kind = item.get("kind")
        if kind not in CHECK_KINDS:
            raise ConfigError(f"{where}.kind: must be one of {list(CHECK_KINDS)}, got {kind!r}")
        for key in ("dataset", "report"):
            value = item.get(key)
            if not isinstance(value, str) or not DATASET_NAME.match(value):
                raise ConfigError(
                    f"{where}.{key}: required, a dataset name (lowercase letters, digits, - or _), "
                    f"got {value!r}"
                )
        ids = item.get("ids")
        if isinstance(ids, str):
            ids = [ids]
        if not isinstance(ids, list) or not ids or not all(isinstance(v, str) and v for v in ids):
            raise ConfigError(f"{where}.ids: required, a list of IDS files or directories")
        strict = item.get("strict", False)
        if not isinstance(strict, bool):
            raise ConfigError(f"{where}.strict: must be true or false")
        report = item["report"]
        if report in ("provenance", "audit"):
            raise ConfigError(f"{where}.report: {report!r} is a reserved dataset name")
        if report == item["dataset"] or report in source_datasets:
            raise ConfigError(
                f"{where}.report: {report!r} is a checked or synced dataset; the report needs a "
                "dataset of its own"
            )
        if report in {c.report for c in checks}:
            raise ConfigError(f"{where}.report: {report!r} is the report of another check")
        checks.append(
            CheckConfig(
                kind=kind,
                dataset=item["dataset"],
                ids=tuple(str(_path(root, v)) for v in ids),
                report=report,
                strict=strict,
            )
        )
    return tuple(checks)


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}]: must be a table")
    return value


def _require_str(section: dict[str, Any], name: str) -> str:
    value = section.get(name.split(".", 1)[1])
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name}: required (a non-empty string)")
    return value


def _int(section: dict[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    value = section.get(name.split(".", 1)[1], default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{name}: must be a whole number from {lo} to {hi}, got {value!r}")
    return value


def _float(section: dict[str, Any], name: str, default: float) -> float:
    value = section.get(name.split(".", 1)[1], default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{name}: must be a non-negative number, got {value!r}")
    return float(value)


def _list(section: dict[str, Any], name: str, default: list[str]) -> list[str]:
    value = section.get(name.split(".", 1)[1], default)
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{name}: must be a list of strings")
    return value


def _path(root: Path, value: Any) -> Path:
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else (root / path).resolve()


def _opt_path(root: Path, value: Any) -> Path | None:
    return _path(root, value) if value else None


def _flag(section: dict[str, Any], key: str, default: bool) -> bool:
    """A true/false setting; ConfigError naming the key for anything else."""
    value = section.get(key.rsplit(".", 1)[1], default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")  # DSGO_* environment values are strings
    raise ConfigError(f"{key}: must be true or false, got {value!r}")


def _registry_version(trust: dict) -> str:
    """trust.registry_version: `auto` (ask the registry once), `2.1` or `3.0`."""
    value = str(trust.get("registry_version", "auto"))
    if value not in ("auto", "2.1", "3.0"):
        raise ConfigError(f"trust.registry_version: must be auto, 2.1 or 3.0, not {value!r}")
    return value
