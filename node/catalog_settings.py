"""The `[catalog]` section: what the DCAT-AP catalog says about the node and each dataset.

Licence, access rights, descriptions and contact are the owner's statements, not something the
node can derive from the data, so they are configured (with defaults for every dataset) and the
catalog only adds what it can count or read from the data (size, coverage, distributions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from node.config import ConfigError

ACCESS_RIGHT = "http://publications.europa.eu/resource/authority/access-right/"
ACCESS_RIGHTS = {
    "public": ACCESS_RIGHT + "PUBLIC",
    "restricted": ACCESS_RIGHT + "RESTRICTED",
    "non-public": ACCESS_RIGHT + "NON_PUBLIC",
}
_IRI = re.compile(r"^https?://[^\s<>\"{}|\\^`]+$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_DATASET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_DATASET_KEYS = {"title", "description", "license", "access_rights", "keywords"}
_CATALOG_KEYS = {
    "advertise",
    "title",
    "description",
    "license",
    "access_rights",
    "contact_email",
    "contact_name",
    "language",
    "keywords",
    "datasets",
}


@dataclass(frozen=True)
class DatasetMeta:
    """What the owner says about one dataset (None: the catalog default applies)."""

    title: str | None = None
    description: str | None = None
    license: str | None = None
    access_rights: str | None = None
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class CatalogSettings:
    """`[catalog]` keys besides `advertise`; `datasets` holds `[catalog.datasets.NAME]` tables."""

    title: str | None = None
    description: str | None = None
    license: str | None = None  # licence IRI, the default for every dataset
    access_rights: str = ACCESS_RIGHTS["restricted"]  # deny by default: granted per party
    contact_email: str | None = None
    contact_name: str | None = None
    language: str | None = None  # e.g. "nl" (BCP 47)
    keywords: tuple[str, ...] = ()
    datasets: dict[str, DatasetMeta] = field(default_factory=dict)

    def meta(self, name: str) -> DatasetMeta:
        """The dataset's own entry with the catalog defaults filled in."""
        own = self.datasets.get(name, DatasetMeta())
        return DatasetMeta(
            title=own.title,
            description=own.description,
            license=own.license or self.license,
            access_rights=own.access_rights or self.access_rights,
            keywords=own.keywords or self.keywords,
        )


def catalog_settings(section: dict[str, Any]) -> CatalogSettings:
    """Validate the `[catalog]` table; a ConfigError names the key that is wrong."""
    if unknown := sorted(set(section) - _CATALOG_KEYS):
        raise ConfigError(f"catalog: unknown key(s) {unknown}; known: {sorted(_CATALOG_KEYS)}")
    datasets_raw = section.get("datasets", {})
    if not isinstance(datasets_raw, dict):
        raise ConfigError("catalog.datasets: use [catalog.datasets.NAME] tables")
    datasets = {}
    for name, table in datasets_raw.items():
        where = f"catalog.datasets.{name}"
        if not _DATASET_NAME.match(name):
            raise ConfigError(f"{where}: {name!r} is not a dataset name")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a table")
        if unknown := sorted(set(table) - _DATASET_KEYS):
            raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(_DATASET_KEYS)}")
        datasets[name] = DatasetMeta(
            title=_text(table, where, "title"),
            description=_text(table, where, "description"),
            license=_iri(table, where, "license"),
            access_rights=_access(table, where),
            keywords=_keywords(table, where),
        )
    email = _text(section, "catalog", "contact_email")
    if email is not None and not _EMAIL.match(email.removeprefix("mailto:")):
        raise ConfigError(f"catalog.contact_email: not an e-mail address: {email!r}")
    language = _text(section, "catalog", "language")
    if language is not None and not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*", language):
        raise ConfigError(f"catalog.language: not a language tag such as 'nl': {language!r}")
    return CatalogSettings(
        title=_text(section, "catalog", "title"),
        description=_text(section, "catalog", "description"),
        license=_iri(section, "catalog", "license"),
        access_rights=_access(section, "catalog") or ACCESS_RIGHTS["restricted"],
        contact_email=email.removeprefix("mailto:") if email else None,
        contact_name=_text(section, "catalog", "contact_name"),
        language=language,
        keywords=_keywords(section, "catalog"),
        datasets=datasets,
    )


def _text(table: dict[str, Any], where: str, key: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}.{key}: must be a non-empty string")
    return value.strip()


def _iri(table: dict[str, Any], where: str, key: str) -> str | None:
    value = _text(table, where, key)
    if value is not None and not _IRI.match(value):
        raise ConfigError(
            f"{where}.{key}: must be an http(s) IRI, e.g. "
            f"'http://creativecommons.org/licenses/by/4.0/', got {value!r}"
        )
    return value


def _access(table: dict[str, Any], where: str) -> str | None:
    value = _text(table, where, "access_rights")
    if value is None:
        return None
    if value.lower() in ACCESS_RIGHTS:
        return ACCESS_RIGHTS[value.lower()]
    if _IRI.match(value):
        return value
    raise ConfigError(
        f"{where}.access_rights: must be public, restricted, non-public or an IRI, got {value!r}"
    )


def _keywords(table: dict[str, Any], where: str) -> tuple[str, ...]:
    value = table.get("keywords", [])
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where}.keywords: must be a list of strings")
    return tuple(v.strip() for v in value)
