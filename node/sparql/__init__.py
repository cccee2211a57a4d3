"""SPARQL text in one place: the tokenizer (`text`), one read per query (`outline`), edits made
from that read (`rewrite`), SERVICE planning and evaluation (`federation`) and result writing
(`results`). Import the submodules; this package face names the outline and its edits."""

from node.sparql.outline import GraphRef, QueryOutline, check_length, guard, outline, text_of
from node.sparql.rewrite import splice, with_dataset, with_limit, with_physical_graphs
from node.sparql.text import QueryTooComplex, SparqlSyntaxError

__all__ = [
    "GraphRef",
    "QueryOutline",
    "QueryTooComplex",
    "SparqlSyntaxError",
    "check_length",
    "guard",
    "outline",
    "splice",
    "text_of",
    "with_dataset",
    "with_limit",
    "with_physical_graphs",
]
