"""Sensor time series (CSV, CSV.gz, Parquet) -> SOSA observations with QUDT results, streamed."""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors import ntriples as nt
from connectors.base import ConnectorResult
from connectors.errors import ConnectorError
from connectors.fingerprints import file_prov, require_file, utc_now
from connectors.mapping import expand, load_mapping, section
from vocab.namespaces import QUDT, SOSA

NAME = "measurements"
VERSION = "1.0.0"

RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
RDFS_LABEL = "<http://www.w3.org/2000/01/rdf-schema#label>"
_DATETIME = f"^^<{nt.XSD}dateTime>"
_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
)
_COLUMNS = ("feature", "sensor", "time", "property", "value")


class MeasurementsConnector:
    """Reads a time-series file described by a TOML mapping; writes N-Triples to workdir."""

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
        """Convert every reading; the first bad row stops the run with its row number."""
        started = utc_now()
        path = require_file(source)
        plan = _Plan.load(mapping, base_iri=base_iri, options=options or {})
        out = Path(workdir) / f"{dataset}.nt"
        with nt.NTriplesWriter(out) as writer:
            readings = _convert(path, plan, writer)
        prov = file_prov(
            path,
            connector=NAME,
            version=VERSION,
            started=started,
            party_id=party_id,
            extra={"readings": str(readings), "format": _format_of(path)},
        )
        return ConnectorResult(prov=prov, ntriples_path=out, triple_count=writer.count)


@dataclass
class _Property:
    observes: str  # formatted IRI term
    unit: str | None  # default unit text when the unit column is empty
    boolean: bool


@dataclass
class _Plan:
    """The mapping, resolved once: column names, IRI templates, properties and units."""

    mapping_name: str
    columns: dict[str, str]
    feature_template: str
    feature_iris: dict[str, str]
    sensor_template: str
    properties: dict[str, _Property]
    units: dict[str, str]  # unit text -> formatted IRI term
    base: str
    node: str

    @classmethod
    def load(cls, mapping: Path | None, *, base_iri: str, options: Mapping[str, str]) -> _Plan:
        data = load_mapping(mapping)
        src = str(mapping)
        columns = section(data, "columns", source=src)
        for key in _COLUMNS:
            if not isinstance(columns.get(key), str):
                raise ConnectorError(src, "[columns]", f"missing column name for '{key}'")
        feature = section(data, "feature", source=src)
        if not isinstance(feature.get("iri"), str):
            raise ConnectorError(src, "[feature]", "missing IRI template 'iri'")
        units = {
            str(text): nt.iri(expand(str(name), where=f"[units] '{text}'", source=src))
            for text, name in section(data, "units", source=src).items()
        }
        properties: dict[str, _Property] = {}
        for key, spec in section(data, "properties", source=src).items():
            if not isinstance(spec, dict) or "observes" not in spec:
                raise ConnectorError(src, f"[properties.{key}]", "needs 'observes'")
            boolean = spec.get("datatype") == "boolean"
            unit = spec.get("unit")
            if not boolean and unit is not None and str(unit) not in units:
                raise ConnectorError(
                    src, f"[properties.{key}]", f"unknown unit '{unit}' (not in [units])"
                )
            observes = expand(str(spec["observes"]), where=f"[properties.{key}]", source=src)
            properties[str(key)] = _Property(nt.iri(observes), unit, boolean)
        sensor = data.get("sensor", {})
        return cls(
            mapping_name=src,
            columns={k: str(v) for k, v in columns.items()},
            feature_template=feature["iri"],
            feature_iris={str(k): str(v) for k, v in feature.get("iris", {}).items()},
            sensor_template=str(sensor.get("iri", "{node}/id/sensor/{sensor}/{feature}")),
            properties=properties,
            units=units,
            base=options.get("feature_base", base_iri).rstrip("/"),
            node=base_iri.rstrip("/"),
        )

    def feature_iri(self, feature: str) -> str:
        template = self.feature_iris.get(feature, self.feature_template)
        return self._fill(template, feature=nt.segment(feature))

    def sensor_iri(self, sensor: str, feature: str) -> str:
        return self._fill(
            self.sensor_template, sensor=nt.segment(sensor), feature=nt.segment(feature)
        )

    def _fill(self, template: str, **values: str) -> str:
        try:
            text = template.format(base=self.base, node=self.node, **values)
        except (KeyError, IndexError) as exc:
            raise ConnectorError(
                self.mapping_name, "IRI template", f"unknown placeholder {exc} in {template!r}"
            ) from exc
        try:
            return nt.iri(text)
        except nt.InvalidIri as exc:
            raise ConnectorError(self.mapping_name, "IRI template", str(exc)) from exc


def _convert(path: Path, plan: _Plan, writer: nt.NTriplesWriter) -> int:
    """Stream rows into the writer; returns the number of readings."""
    emitter = _Emitter(plan, writer, str(path))
    rows = _parquet_rows(path, plan) if _format_of(path) == "parquet" else _csv_rows(path, plan)
    count = 0
    for position, feature, sensor, time, prop, value, unit in rows:
        emitter.reading(position, feature, sensor, time, prop, value, unit)
        count += 1
    emitter.finish()
    return count


class _Emitter:
    """Formats one reading as a block of N-Triples lines, caching per-series terms."""

    def __init__(self, plan: _Plan, writer: nt.NTriplesWriter, source: str) -> None:
        self.plan = plan
        self.writer = writer
        self.source = source
        self.obs_base = f"{plan.node}/id/observation/"
        self.features: dict[str, str] = {}
        self.sensors: dict[tuple[str, str], str] = {}
        self.sensor_props: dict[str, set[str]] = {}
        self.seen: set[str] = set()
        self.series: dict[tuple[str, str, str], tuple[_Property, str, str, str]] = {}
        self.buffer: list[str] = []
        self.pending = 0

    def reading(
        self, position: str, feature: str, sensor: str, time: str, prop: str, value: Any, unit: str
    ) -> None:
        series = self.series.get((feature, sensor, prop))
        if series is None:
            series = self._series(position, feature, sensor, prop)
        spec, stem, f_iri, s_iri = series
        compact = time.replace("-", "").replace(":", "")
        if time[-6] == "-":  # negative offset: keep its sign, which the replace above removed
            compact = f"{compact[:-4]}-{compact[-4:]}"
        key = stem + compact
        if key in self.seen:
            n = 2
            while f"{key}-{n}" in self.seen:
                n += 1
            key = f"{key}-{n}"
        self.seen.add(key)
        obs = f"<{key}>"
        head = (
            f"{obs} {RDF_TYPE} <{SOSA}Observation> .\n"
            f"{obs} <{SOSA}hasFeatureOfInterest> {f_iri} .\n"
            f"{obs} <{SOSA}observedProperty> {spec.observes} .\n"
            f"{obs} <{SOSA}madeBySensor> {s_iri} .\n"
            f'{obs} <{SOSA}resultTime> "{time}"{_DATETIME} .\n'
        )
        plan = self.plan
        if spec.boolean:
            self.buffer.append(
                f"{head}{obs} <{SOSA}hasSimpleResult> {nt.boolean(_flag(value, self.source, position))} .\n"
            )
            self.pending += 6
        else:
            unit_text = unit or spec.unit or ""
            u_iri = plan.units.get(unit_text)
            if u_iri is None:
                raise ConnectorError(
                    self.source,
                    position,
                    f"unknown unit '{unit_text}' for property '{prop}' "
                    f"(mapping [units] knows: {', '.join(sorted(plan.units))})",
                )
            number = _number(value, self.source, position)
            res = f"<{key}/result>"
            self.buffer.append(
                f"{head}{obs} <{SOSA}hasResult> {res} .\n"
                f"{res} {RDF_TYPE} <{QUDT}QuantityValue> .\n"
                f"{res} <{QUDT}numericValue> {nt.double(number)} .\n"
                f"{res} <{QUDT}unit> {u_iri} .\n"
            )
            self.pending += 9
        if len(self.buffer) >= 2048:
            self.flush()

    def _series(
        self, position: str, feature: str, sensor: str, prop: str
    ) -> tuple[_Property, str, str, str]:
        """Resolve and cache the terms shared by every reading of one series."""
        spec = self.plan.properties.get(prop)
        if spec is None:
            raise ConnectorError(self.source, position, f"property '{prop}' is not in the mapping")
        f_iri = self.features.get(feature)
        if f_iri is None:
            f_iri = self.features[feature] = self.plan.feature_iri(feature)
        s_iri = self.sensors.get((sensor, feature))
        if s_iri is None:
            s_iri = self.sensors[(sensor, feature)] = self.plan.sensor_iri(sensor, feature)
            self.sensor_props[s_iri] = set()
        self.sensor_props[s_iri].add(spec.observes)
        stem = f"{self.obs_base}{nt.segment(feature)}/{nt.segment(sensor)}/{nt.segment(prop)}/"
        series = self.series[(feature, sensor, prop)] = (spec, stem, f_iri, s_iri)
        return series

    def flush(self) -> None:
        self.writer.lines("".join(self.buffer), self.pending)
        self.buffer.clear()
        self.pending = 0

    def finish(self) -> None:
        self.flush()
        for (sensor, _feature), s_iri in sorted(self.sensors.items()):
            self.writer.triple(s_iri, RDF_TYPE, f"<{SOSA}Sensor>")
            self.writer.triple(s_iri, RDFS_LABEL, nt.literal(sensor))
            for prop in sorted(self.sensor_props[s_iri]):
                self.writer.triple(s_iri, f"<{SOSA}observes>", prop)


def _number(value: Any, source: str, position: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConnectorError(source, position, f"value {value!r} is not a number") from None
    if math.isnan(number):
        raise ConnectorError(source, position, "value is empty or NaN")
    return number


def _flag(value: Any, source: str, position: str) -> bool:
    number = _number(value, source, position)
    if number not in (0.0, 1.0):
        raise ConnectorError(source, position, f"boolean value must be 0 or 1, got {value!r}")
    return number == 1.0


def _check_time(text: str, source: str, position: str) -> str:
    match = _TIMESTAMP.match(text)
    if match is None:
        raise ConnectorError(
            source, position, f"timestamp {text!r} is not ISO 8601 with a time-zone offset"
        )
    return text if text[10] == "T" else f"{text[:10]}T{text[11:]}"


def _format_of(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".csv.gz"):
        return "csv.gz"
    if name.endswith(".csv"):
        return "csv"
    raise ConnectorError(str(path), "", "unsupported file type (expected .csv, .csv.gz, .parquet)")


Row = tuple[str, str, str, str, str, Any, str]


def _csv_rows(path: Path, plan: _Plan) -> Iterator[Row]:
    source = str(path)
    fmt = _format_of(path)
    raw = gzip.open(path, "rb") if fmt == "csv.gz" else open(path, "rb")
    with raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
        reader = csv.reader(text)
        try:
            header = next(reader)
        except StopIteration:
            raise ConnectorError(source, "line 1", "empty file, no header") from None
        except (UnicodeDecodeError, OSError, EOFError) as exc:
            raise ConnectorError(source, "line 1", f"unreadable: {exc}") from None
        cols = plan.columns
        try:
            idx = [header.index(cols[key]) for key in _COLUMNS]
        except ValueError:
            missing = [cols[k] for k in _COLUMNS if cols[k] not in header]
            raise ConnectorError(source, "line 1", f"header lacks column(s) {missing}") from None
        unit_idx = header.index(cols["unit"]) if cols.get("unit") in header else None
        fi, si, ti, pi, vi = idx
        width = len(header)
        row_no = 0
        try:
            for row in reader:
                row_no += 1
                position = f"row {row_no} (line {reader.line_num})"
                if len(row) != width:
                    raise ConnectorError(
                        source, position, f"expected {width} fields, found {len(row)}"
                    )
                time = _check_time(row[ti], source, position)
                unit = row[unit_idx].strip() if unit_idx is not None else ""
                yield position, row[fi], row[si], time, row[pi], row[vi], unit
        except (UnicodeDecodeError, OSError, EOFError, csv.Error) as exc:
            raise ConnectorError(source, f"row {row_no + 1}", f"unreadable: {exc}") from None


def _parquet_rows(path: Path, plan: _Plan) -> Iterator[Row]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    source = str(path)
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise ConnectorError(source, "", f"not a readable Parquet file: {exc}") from None
    cols = plan.columns
    names = pf.schema_arrow.names
    missing = [cols[k] for k in _COLUMNS if cols[k] not in names]
    if missing:
        raise ConnectorError(source, "schema", f"lacks column(s) {missing}")
    time_type = pf.schema_arrow.field(cols["time"]).type
    is_timestamp = pa.types.is_timestamp(time_type)
    if is_timestamp and time_type.tz is None:
        raise ConnectorError(source, f"column {cols['time']}", "timestamps have no time zone")
    wanted = [cols[k] for k in _COLUMNS]
    unit_col = cols.get("unit") if cols.get("unit") in names else None
    if unit_col:
        wanted.append(unit_col)
    row_no = 0
    for batch in pf.iter_batches(batch_size=65536, columns=wanted):
        data = [batch.column(i).to_pylist() for i in range(len(wanted)) if i != 2]
        if is_timestamp:
            stamps = pc.strftime(batch.column(2), format="%Y-%m-%dT%H:%M:%S%z").to_pylist()
            data.insert(2, [_iso_offset(t) if t is not None else None for t in stamps])
        else:
            data.insert(2, batch.column(2).to_pylist())
        feats, sensors, times, props, values = data[:5]
        units = data[5] if unit_col else [None] * batch.num_rows
        for i in range(batch.num_rows):
            row_no += 1
            position = f"row {row_no}"
            t = times[i]
            if t is None:
                raise ConnectorError(source, position, "timestamp is empty")
            time = t if is_timestamp else _check_time(str(t), source, position)
            unit = units[i]
            yield (
                position,
                str(feats[i]),
                str(sensors[i]),
                time,
                str(props[i]),
                values[i],
                unit.strip() if unit else "",
            )


def _iso_offset(stamp: str) -> str:
    """'2022-10-12T16:13:00.000000+0200' (Arrow strftime) -> '2022-10-12T16:13:00+02:00'."""
    frac = stamp[19:-5].rstrip("0")
    return f"{stamp[:19]}{frac if frac != '.' else ''}{stamp[-5:-2]}:{stamp[-2:]}"
