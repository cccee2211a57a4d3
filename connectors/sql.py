"""Relational tables (SQLAlchemy URL or SQLite file) -> RDF by a TOML mapping, read-only."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors import ntriples as nt
from connectors.base import ConnectorResult, ProvRecord
from connectors.errors import ConnectorError
from connectors.fingerprints import utc_now
from connectors.mapping import expand, load_mapping

NAME = "sql"
VERSION = "1.0.0"
RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"


class SqlConnector:
    """Each ``[[tables]]`` entry maps rows to resources ``iri`` (template over row columns)."""

    name = NAME
    version = VERSION

    def run(
        self,
        source: str,
        *,
        base_iri: str,
        dataset: str,
        party_id: str,
        mapping: Path | None = None,
        workdir: Path,
        options: Mapping[str, str] | None = None,
    ) -> ConnectorResult:
        """Read every mapped table in key order inside a read-only transaction."""
        started = utc_now()
        tables = _tables(load_mapping(mapping), str(mapping))
        engine, shown = open_read_only(source)
        digest = hashlib.sha256()
        out = Path(workdir) / f"{dataset}.nt"
        rows = 0
        try:
            with engine.connect() as conn, nt.NTriplesWriter(out) as writer:
                for spec in tables:
                    rows += _write_table(conn, spec, base_iri.rstrip("/"), writer, shown, digest)
        except ConnectorError:
            raise
        except Exception as exc:  # SQLAlchemy wraps driver errors in many classes
            raise ConnectorError(shown, "database", f"{type(exc).__name__}: {exc}") from None
        finally:
            engine.dispose()
        prov = ProvRecord(
            source=shown,
            source_sha256=digest.hexdigest(),
            source_modified=started,
            connector=NAME,
            connector_version=VERSION,
            started=started,
            ended=utc_now(),
            party_id=party_id,
            extra={"rows": str(rows)},
        )
        return ConnectorResult(prov=prov, ntriples_path=out, triple_count=writer.count)


def open_read_only(source: str) -> tuple[Any, str]:
    """An engine that cannot write, and the source as shown in errors (password hidden)."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import make_url

    if "://" not in source:
        path = Path(source)
        if not path.is_file():
            raise ConnectorError(source, "", "SQLite file not found")
        url = f"sqlite:///file:{path.resolve()}?mode=ro&uri=true"
        return create_engine(url), source
    try:
        parsed = make_url(source)
    except Exception as exc:
        raise ConnectorError("(database URL)", "", f"invalid database URL: {exc}") from None
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        url = f"sqlite:///file:{Path(database).resolve()}?mode=ro&uri=true"
        return create_engine(url), shown
    engine = create_engine(parsed)
    if parsed.get_backend_name() == "postgresql":

        @event.listens_for(engine, "connect")
        def _read_only(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            cur.close()
            dbapi_conn.commit()

    return engine, shown


def _tables(data: dict[str, Any], src: str) -> list[dict[str, Any]]:
    tables = data.get("tables")
    if not isinstance(tables, list) or not tables:
        raise ConnectorError(src, "[[tables]]", "mapping has no [[tables]] entries")
    resolved = []
    for i, spec in enumerate(tables, start=1):
        where = f"[[tables]] #{i}"
        for key in ("table", "key", "iri"):
            if not isinstance(spec.get(key), str):
                raise ConnectorError(src, where, f"missing '{key}'")
        columns = {}
        for column, col_spec in spec.get("columns", {}).items():
            if isinstance(col_spec, str):
                col_spec = {"property": col_spec}
            if "property" not in col_spec:
                raise ConnectorError(src, f"{where} column {column}", "needs 'property'")
            columns[column] = {
                "property": nt.iri(expand(col_spec["property"], where=where, source=src)),
                "datatype": expand(col_spec["datatype"], where=where, source=src)
                if "datatype" in col_spec
                else None,
                "iri": col_spec.get("iri"),
            }
        classes = spec.get("class", [])
        classes = [classes] if isinstance(classes, str) else classes
        resolved.append(
            {
                "table": spec["table"],
                "key": spec["key"],
                "iri": spec["iri"],
                "classes": [nt.iri(expand(c, where=where, source=src)) for c in classes],
                "columns": columns,
                "where": where,
            }
        )
    return resolved


def _write_table(
    conn: Any, spec: dict[str, Any], base: str, w: nt.NTriplesWriter, shown: str, digest: Any
) -> int:
    from sqlalchemy import column, select, table

    names = list(dict.fromkeys([spec["key"], *spec["columns"]]))
    query = select(*[column(n) for n in names]).select_from(table(spec["table"]))
    query = query.order_by(column(spec["key"]))
    count = 0
    for count, row in enumerate(conn.execute(query), start=1):
        values = dict(zip(names, row, strict=True))
        digest.update(repr((spec["table"], tuple(values.values()))).encode())
        position = f"table {spec['table']} row {count} ({spec['key']}={values[spec['key']]!r})"
        subject = _fill(spec["iri"], values, base, shown, position)
        for cls in spec["classes"]:
            w.triple(subject, RDF_TYPE, cls)
        for name, col in spec["columns"].items():
            value = values[name]
            if value is None:
                continue
            if col["iri"]:
                obj = _fill(col["iri"], values, base, shown, position)
            else:
                obj = _literal(value, col["datatype"])
            w.triple(subject, col["property"], obj)
    return count


def _fill(template: str, values: dict[str, Any], base: str, shown: str, position: str) -> str:
    encoded = {k: nt.segment("" if v is None else str(v)) for k, v in values.items()}
    try:
        return nt.iri(template.format(base=base, **encoded))
    except KeyError as exc:
        raise ConnectorError(shown, position, f"IRI template names unknown column {exc}") from None
    except nt.InvalidIri as exc:
        raise ConnectorError(shown, position, str(exc)) from None


def _literal(value: Any, datatype: str | None) -> str:
    if datatype:
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, datetime | date):
            text = value.isoformat()
        else:
            text = str(value)
        return nt.literal(text, datatype)
    if isinstance(value, bool):
        return nt.boolean(value)
    if isinstance(value, int):
        return nt.integer(value)
    if isinstance(value, float):
        return nt.double(value)
    if isinstance(value, Decimal):
        return nt.literal(str(value), "xsd:decimal")
    if isinstance(value, datetime):
        return nt.literal(value.isoformat(), "xsd:dateTime")
    if isinstance(value, date):
        return nt.literal(value.isoformat(), "xsd:date")
    return nt.literal(str(value))
