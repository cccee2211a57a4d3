"""Naming rules the node relies on: dataset names, graph IRIs, and IRIs safe to put in query text."""

from __future__ import annotations

import re

from node.errors import NodeError

DATASET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
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
    """The named graph that holds dataset `name`."""
    return f"{base_iri}/dataset/{check_dataset_name(name)}"


def dataset_name(base_iri: str, graph_iri: str) -> str | None:
    """The dataset name for a graph IRI of this node, or None for any other graph."""
    prefix = f"{base_iri}/dataset/"
    if graph_iri.startswith(prefix):
        name = graph_iri[len(prefix) :]
        if DATASET_NAME.match(name):
            return name
    return None


def sparql_iri(iri: str) -> str:
    """`<iri>` for SPARQL text; refuses characters that could break out of the IRI."""
    if not iri or _IRI_FORBIDDEN.search(iri):
        raise InvalidName(f"not a valid IRI: {iri!r}")
    return f"<{iri}>"
