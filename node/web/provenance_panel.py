"""The provenance panel of a resource or dataset page: where the data a person sees came from.

For each dataset the shown triples come from: the current version, its source file and
SHA-256, when and by which connector it was made, by which party, and whether the version is
signed. Read from the node's provenance graph (PROV-O, node/provenance.py) and signatures
(node/signatures.py); it is metadata of datasets the enforcement point already let the caller
read from.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.html import Section, Text
from node.iri import sparql_iri
from node.runtime import Runtime
from node.signatures import has_current_signature
from vocab.iris import dataset_name
from vocab.namespaces import DSGO, PROV


@dataclass(frozen=True)
class DatasetProvenance:
    """One dataset's current version as its provenance record says (empty strings if unknown)."""

    dataset: str
    version: str
    generated_at: str
    connector: str
    source: str
    sha256: str
    party: str
    signed: bool


def dataset_provenance(rt: Runtime, graph: str) -> DatasetProvenance:
    """The newest version record of the dataset whose graph is `graph`."""
    base = rt.settings.base_iri
    name = dataset_name(base, graph) or graph
    rows = list(
        rt.store.query(
            f"""SELECT ?v ?t ?connector ?cversion ?location ?sha ?party WHERE {{
              ?v <{PROV}specializationOf> {sparql_iri(graph)} ; <{PROV}generatedAtTime> ?t .
              OPTIONAL {{ ?v <{PROV}wasGeneratedBy> ?run .
                OPTIONAL {{ ?run <{DSGO}connector> ?connector }}
                OPTIONAL {{ ?run <{DSGO}connectorVersion> ?cversion }}
                OPTIONAL {{ ?run <{PROV}used>/<{DSGO}sourceLocation> ?location }} }}
              OPTIONAL {{ ?v <{DSGO}sourceSha256> ?sha }}
              OPTIONAL {{ ?v <{PROV}wasAttributedTo>/<{DSGO}partyId> ?party }}
            }} ORDER BY DESC(?t) LIMIT 1""",
            default_graph=[f"{base}/dataset/provenance"],
            named_graphs=[],
        )
    )
    signed = has_current_signature(rt.store, rt.settings.data_dir, name)
    if not rows:
        return DatasetProvenance(name, "", "", "", "", "", "", signed)
    row = rows[0]

    def val(key: str) -> str:
        term = row[key]
        return term.value if term is not None else ""

    connector = " ".join(x for x in (val("connector"), val("cversion")) if x)
    return DatasetProvenance(
        name,
        val("v"),
        val("t"),
        connector,
        val("location"),
        val("sha"),
        val("party"),
        signed,
    )


def provenance_section(rt: Runtime, graphs: list[str]) -> Section:
    """A "Provenance" table, one row per dataset."""
    rows = []
    for graph in graphs:
        p = dataset_provenance(rt, graph)
        version = p.version.rsplit("/", 1)[-1] if p.version else "—"
        rows.append(
            [
                Text(p.dataset),
                Text(version, p.version if p.version else ""),
                Text(p.source or "—"),
                Text(p.sha256 or "—"),
                Text(p.generated_at or "—"),
                Text(p.connector or "—", p.party),
                Text("signed" if p.signed else "not signed"),
            ]
        )
    return Section(
        "Provenance",
        rows,
        ("dataset", "version", "source file", "sha256", "generated", "by", "signature"),
        anchor="provenance",
    )
