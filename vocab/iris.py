"""The IRIs a node mints for its datasets, in one place low enough for trust/ to use.

A dataset `name` of the node at `base_iri` is the named graph `{base_iri}/dataset/{name}`; its
IRI also dereferences to the whole dataset (GET /dataset/{name}).
"""

from __future__ import annotations

import re

__all__ = ["DATASET_NAME", "DATASET_PATH", "dataset_iri", "dataset_name"]

DATASET_PATH = "/dataset/"
DATASET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def dataset_iri(base_iri: str, name: str) -> str:
    """The IRI (and named graph) of dataset `name` (the name is not checked here)."""
    return f"{base_iri}{DATASET_PATH}{name}"


def dataset_name(base_iri: str, iri: str) -> str | None:
    """The dataset name for a dataset IRI of this node, or None for any other IRI."""
    prefix = base_iri + DATASET_PATH
    if iri.startswith(prefix):
        name = iri[len(prefix) :]
        if DATASET_NAME.match(name):
            return name
    return None
