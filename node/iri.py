"""Naming rules the node relies on: dataset names, graph IRIs, and IRIs safe to put in query text."""

from __future__ import annotations

import re

from node.errors import NodeError
from vocab.iris import DATASET_NAME
from vocab.iris import dataset_iri as _dataset_iri

__all__ = [
    "META_GRAPH",
    "STAGING_PREFIX",
    "InvalidName",
    "check_dataset_name",
    "dataset_iri",
    "sparql_iri",
]

META_GRAPH = "urn:dsgo:meta"
STAGING_PREFIX = "urn:dsgo:staging:"
_IRI_FORBIDDEN = re.compile(r'[\x00-\x20<>"{}|^`\\]')


class InvalidName(NodeError, ValueError):
    """A dataset name or IRI that the node refuses to use (HTTP 400)."""

    status = 400
    code = "bad_request"


def check_dataset_name(name: str) -> str:
    """Return the name if it is a valid dataset name, else raise InvalidName saying what is allowed."""
    if not DATASET_NAME.match(name):
        raise InvalidName(
            f"invalid dataset name {name!r}: use 1-63 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


def dataset_iri(base_iri: str, name: str) -> str:
    """The named graph that holds dataset `name`, for a name that passes the naming rule."""
    return _dataset_iri(base_iri, check_dataset_name(name))


def sparql_iri(iri: str) -> str:
    """`<iri>` for SPARQL text; refuses characters that could break out of the IRI."""
    if not iri or _IRI_FORBIDDEN.search(iri):
        raise InvalidName(f"not a valid IRI: {iri!r}")
    return f"<{iri}>"
