"""Loading connector mapping files (TOML) and expanding prefixed names with the node's prefixes."""

from __future__ import annotations

import json
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import vocab
from connectors.errors import ConnectorError


def load_mapping(path: Path | None, *, required: bool = True) -> dict[str, Any]:
    """The parsed TOML mapping; a ConnectorError names the file and the line of a syntax error."""
    if path is None:
        if required:
            raise ConnectorError("(no mapping)", "", "this connector needs a mapping file")
        return {}
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConnectorError(str(path), "", "mapping file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConnectorError(str(path), "", f"invalid TOML: {exc}") from exc


def expand(name: str, *, where: str, source: str) -> str:
    """A full IRI for ``prefix:local`` (prefixes from vocab/context.jsonld) or an absolute IRI."""
    if "://" in name or name.startswith("urn:"):
        return name
    prefix, sep, local = name.partition(":")
    if sep and prefix in prefixes():
        return prefixes()[prefix] + local
    raise ConnectorError(source, where, f"'{name}' is neither an absolute IRI nor a known prefix")


def section(data: dict[str, Any], key: str, *, source: str) -> dict[str, Any]:
    """A required table of the mapping, with a clear error when it is missing."""
    value = data.get(key)
    if not isinstance(value, dict):
        raise ConnectorError(source, f"[{key}]", "missing table in mapping")
    return value


@cache
def prefixes() -> dict[str, str]:
    """Prefix -> namespace IRI, read once from the node's JSON-LD context."""
    context = json.loads(vocab.read_text(vocab.path("context.jsonld")))["@context"]
    return {k: v for k, v in context.items() if isinstance(v, str) and not k.startswith("@")}
