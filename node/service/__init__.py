"""Use cases between HTTP and the store: each decides through the enforcement point, then acts."""

from node.service.ops import LocalNode, NodeOps, QueryOutput, RemoteNode
from node.service.query import Answer, SparqlRequest, answer_query, evaluate

__all__ = [
    "Answer",
    "LocalNode",
    "NodeOps",
    "QueryOutput",
    "RemoteNode",
    "SparqlRequest",
    "answer_query",
    "evaluate",
]
