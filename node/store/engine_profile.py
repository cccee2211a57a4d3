"""What differs between the SPARQL engines the external store talks to (`store.sparql_engine`).

The SPARQL 1.1 Protocol leaves room, and engines use it. One profile object per engine keeps
those differences in one place, so SparqlProtocolStore stays protocol-only:

- Virtuoso 7 never answers a query POSTed as `application/sparql-query` (the request hangs):
  it gets the query as a form field instead, which every engine must accept.
- Virtuoso names blank nodes `nodeID://b10000` in JSON results, which is no valid blank node
  label: the profile turns them into `b10000`, the label its N-Triples output uses.
- Virtuoso keeps system graphs (its quad-map schema, LDP) in the store: they are no dataset,
  so a scan over "every graph" leaves them out.
- Virtuoso lets FROM / FROM NAMED in the query text win over the protocol's
  default-graph-uri / named-graph-uri, where SPARQL 1.1 says the protocol wins. The node
  scopes every query through the protocol (a FROM the caller may not read is dropped there),
  so for Virtuoso the dataset clauses are cut from the text whenever the protocol names a
  dataset: otherwise a FROM would reach graphs outside the caller's grants. Likewise
  `GRAPH <iri>` reaches a graph that is not among the protocol's named-graph-uri: such an
  IRI is replaced by a graph that never holds data.
- Virtuoso answers `GRAPH ?g { }` with one empty solution instead of one per named graph:
  the profile asks `{ SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } } }` instead (the same
  answer, since Virtuoso holds no empty graphs).
- Virtuoso runs a SPARQL update as one transaction whose row locks block every reader of
  those rows until it commits (its log: "Locks are held for a long time"); building a merge
  graph of a 46,600-triple model then stalled queries past their deadline. The profile
  prefixes updates with `DEFINE sql:log-enable 3` (row-by-row autocommit), Virtuoso's own
  advice for bulk updates: an update that fails half-way leaves what it did, which the node
  can afford: every update it sends is idempotent (records are replaced, merge graphs rebuilt).
- Virtuoso answers a CONSTRUCT asked with the node's usual Accept (results JSON first) in
  results JSON, as s/p/o rows: for CONSTRUCT and DESCRIBE the profile asks for N-Triples only.
- "auto" reads the engine's `Server` header once and picks the profile from it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from node.sparql.outline import QueryOutline, outline
from node.sparql.text import PUNCT, VAR

ENGINES = ("auto", "generic", "oxigraph", "virtuoso")

NO_GRAPH = "urn:dsgo:empty"  # a graph that never holds data
ACCEPT = "application/sparql-results+json, application/n-triples;q=0.9"
_VIRTUOSO_BNODE = re.compile(r"^nodeID://")


@dataclass(frozen=True)
class EngineProfile:
    """How to talk to one engine where SPARQL 1.1 leaves a choice (see the module docstring)."""

    name: str
    query_as_form: bool = False  # POST the query as a form field, not as application/sparql-query
    bnode_prefix: str | None = None  # a scheme the engine puts before blank node labels in JSON
    system_graphs: tuple[str, ...] = field(default=())  # graph IRI prefixes that are no data
    query_dataset_wins: bool = False  # FROM in the text overrides the protocol's dataset
    empty_graph_group: bool = True  # `GRAPH ?g { }` yields one solution per named graph
    update_prologue: str = ""  # put before every SPARQL update
    graph_forms_by_accept: bool = True  # picks RDF for CONSTRUCT from a mixed Accept header

    def accept(self, query: str | QueryOutline) -> str:
        """The Accept header for `query`: results JSON, or N-Triples for a graph result."""
        if not self.graph_forms_by_accept:
            try:
                form = outline(query).form
            except Exception:  # noqa: BLE001 - the engine reports what the node cannot read
                form = None
            if form in ("CONSTRUCT", "DESCRIBE"):
                return "application/n-triples"
            return "application/sparql-results+json"
        return ACCEPT

    def update_text(self, update: str) -> str:
        """The text of a SPARQL update for this engine."""
        return self.update_prologue + update

    def query_text(
        self,
        query: str | QueryOutline,
        protocol_dataset: bool,
        named_graphs: list[str] | None = None,
    ) -> str:
        """The text to send: `query` with this engine's deviations worked around."""
        text = query.text if isinstance(query, QueryOutline) else query
        if self.empty_graph_group and not self.query_dataset_wins:
            return text
        upper = text.upper()
        if "FROM" not in upper and "GRAPH" not in upper:
            return text
        try:
            read = outline(query)
        except Exception:  # noqa: BLE001 - a text the node could not read goes as it is
            return text
        edits: list[tuple[int, int, str]] = []
        if self.query_dataset_wins and protocol_dataset:
            edits += [(start, end, " ") for start, end in read.dataset_spans]
        if self.query_dataset_wins and named_graphs is not None:
            allowed = set(named_graphs)
            edits += [
                (ref.start, ref.end, f"<{NO_GRAPH}>")
                for ref in read.graph_refs
                if ref.clause == "GRAPH" and ref.iri not in allowed
            ]
        if not self.empty_graph_group and read.binds_graph:
            toks = read.tokens
            for i in range(len(toks) - 3):
                if (
                    toks[i].is_word("GRAPH")
                    and toks[i + 1].kind == VAR
                    and toks[i + 2].kind == PUNCT
                    and toks[i + 2].text == "{"
                    and toks[i + 3].kind == PUNCT
                    and toks[i + 3].text == "}"
                ):
                    var = toks[i + 1].text
                    pattern = (
                        f"{{ SELECT DISTINCT {var} WHERE {{ GRAPH {var} "
                        "{ ?dsgo_s ?dsgo_p ?dsgo_o } } }"
                    )
                    edits.append((toks[i].start, toks[i + 3].end, pattern))
        for start, end, replacement in sorted(edits, reverse=True):
            text = text[:start] + replacement + text[end:]
        return text

    def query_request(self, text: str) -> tuple[bytes, str]:
        """The body and content type that carry `text` to this engine's query endpoint."""
        if self.query_as_form:
            from urllib.parse import urlencode

            return urlencode({"query": text}).encode(), "application/x-www-form-urlencoded"
        return text.encode(), "application/sparql-query"

    def json_results(self, body: bytes) -> bytes:
        """SPARQL JSON results as SPARQL 1.1 says them (blank node labels that parse)."""
        if self.bnode_prefix is None or self.bnode_prefix.encode() not in body:
            return body
        doc = json.loads(body)
        for row in doc.get("results", {}).get("bindings", []):
            for term in row.values():
                if term.get("type") == "bnode":
                    term["value"] = _VIRTUOSO_BNODE.sub("", term["value"])
        return json.dumps(doc).encode()

    def graph_filter(self, var: str) -> str:
        """SPARQL FILTER terms that leave the engine's own system graphs out ('' if none)."""
        return "".join(f' && !STRSTARTS(STR(?{var}), "{g}")' for g in self.system_graphs)


GENERIC = EngineProfile("generic")
OXIGRAPH = EngineProfile("oxigraph")
VIRTUOSO = EngineProfile(
    "virtuoso",
    query_as_form=True,
    bnode_prefix="nodeID://",
    system_graphs=(
        "http://www.openlinksw.com/schemas/virtrdf#",
        "http://www.w3.org/ns/ldp#",
        "http://localuriqaserver/",
    ),
    query_dataset_wins=True,
    empty_graph_group=False,
    update_prologue="DEFINE sql:log-enable 3 ",
    graph_forms_by_accept=False,
)
_BY_NAME = {p.name: p for p in (GENERIC, OXIGRAPH, VIRTUOSO)}


def profile_named(name: str) -> EngineProfile | None:
    """The profile for a configured engine name; None for "auto" (detect it)."""
    return None if name == "auto" else _BY_NAME[name]


def profile_from_server(server_header: str | None) -> EngineProfile:
    """The profile for an engine that answered with this `Server` header."""
    text = (server_header or "").lower()
    if "virtuoso" in text:
        return VIRTUOSO
    if "oxigraph" in text:
        return OXIGRAPH
    return GENERIC
