"""The node's vocabulary files, found through importlib.resources so they work when installed."""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable

SHAPE_NAMES = ("ifc", "measurements", "bag", "sql", "provenance")


class VocabFileNotFound(FileNotFoundError):
    """A vocabulary, shapes or ontology file that is not shipped with the package."""


def path(name: str) -> Traversable:
    """A file directly under vocab/, e.g. ``path("dsgo.ttl")`` or ``path("context.jsonld")``."""
    return _existing(resources.files(__name__).joinpath(name), name)


def shapes(name: str) -> Traversable:
    """The SHACL shapes for one connector kind (or ``provenance``): ``vocab/shapes/{name}.ttl``."""
    return _existing(
        resources.files(__name__).joinpath("shapes", f"{name}.ttl"), f"shapes/{name}.ttl"
    )


def ontology(name: str) -> Traversable:
    """A vendored ontology under vocab/ontologies/, e.g. ``ontology("bot.ttl")``."""
    return _existing(resources.files(__name__).joinpath("ontologies", name), f"ontologies/{name}")


def read_text(resource: Traversable) -> str:
    """The UTF-8 text of a vocabulary resource."""
    return resource.read_text(encoding="utf-8")


def _existing(resource: Traversable, label: str) -> Traversable:
    if "/" in label.replace("shapes/", "", 1).replace("ontologies/", "", 1) or ".." in label:
        raise VocabFileNotFound(f"not a vocabulary file name: {label!r}")
    if not resource.is_file():
        raise VocabFileNotFound(f"vocab/{label} is not shipped with dsgo-node")
    return resource
