"""Where a resource came from and who read it, as this node knows it (one hop of `dsgo audit trace`)."""

from __future__ import annotations

from typing import Any

from node.iri import sparql_iri
from node.runtime import Runtime
from node.store import Store
from vocab.iris import dataset_name
from vocab.namespaces import DCT, DSGO, PROV


def trace(rt: Runtime, iri: str, access_limit: int = 50) -> dict[str, Any]:
    """The datasets holding `iri`, each with its current version's provenance, plus access records."""
    base = rt.settings.base_iri
    graphs = rt.enforcer.dataset_graphs(rt.store, rt.store.version())
    holding = sorted({q.graph_name.value for q in rt.store.quads(subject=iri, graphs=graphs)})
    datasets = [_dataset_provenance(rt.store, base, g) for g in holding]
    # A derived dataset names all its inputs; keep those this resource itself links to, if any.
    linked = {q.object.value for q in rt.store.quads(subject=iri, graphs=holding)}
    for ds in datasets:
        inputs = ds.get("derived_from") or []
        own = [d for d in inputs if d["iri"] in linked]
        if own:
            ds["derived_from"] = own
    names = {d["dataset"] for d in datasets}
    accesses = []
    for entry in rt.audit.entries(None, None, None, None, limit=None):
        if entry.target == iri or names.intersection(entry.datasets):
            accesses.append(
                {
                    "seq": entry.seq,
                    "time": entry.time,
                    "kind": entry.kind,
                    "party": entry.party,
                    "target": entry.target,
                    "policies": list(entry.policy_ids),
                    "datasets": list(entry.datasets),
                }
            )
    return {
        "iri": iri,
        "node": base,
        "party": rt.settings.party_id,
        "datasets": datasets,
        "accesses": accesses[-access_limit:],
        "access_count": len(accesses),
    }


def _dataset_provenance(store: Store, base: str, graph: str) -> dict[str, Any]:
    prov_graph = f"{base}/dataset/provenance"
    rows = list(
        store.query(
            f"""SELECT ?v ?t ?connector ?cversion ?started ?ended ?location ?sha ?modified ?party WHERE {{
              ?v <{PROV}specializationOf> {sparql_iri(graph)} ; <{PROV}generatedAtTime> ?t ;
                 <{PROV}wasGeneratedBy> ?run .
              ?run <{DSGO}connector> ?connector ; <{DSGO}connectorVersion> ?cversion ;
                   <{PROV}startedAtTime> ?started ; <{PROV}endedAtTime> ?ended ; <{PROV}used> ?src .
              ?src <{DSGO}sourceLocation> ?location ; <{DSGO}sha256> ?sha .
              OPTIONAL {{ ?src <{DCT}modified> ?modified }}
              OPTIONAL {{ ?v <{PROV}wasAttributedTo>/<{DSGO}partyId> ?party }}
            }} ORDER BY DESC(?t) LIMIT 1""",
            default_graph=[prov_graph],
            named_graphs=[],
        )
    )
    out: dict[str, Any] = {"dataset": dataset_name(base, graph) or graph, "graph": graph}
    if not rows:
        out["version"] = None
        return out
    row = rows[0]
    version = row["v"].value

    def val(name: str) -> str | None:
        term = row[name]
        return term.value if term is not None else None

    out.update(
        {
            "version": version,
            "generated_at": val("t"),
            "attributed_to": val("party"),
            "activity": {
                "connector": val("connector"),
                "connector_version": val("cversion"),
                "started": val("started"),
                "ended": val("ended"),
            },
            "source": {
                "location": val("location"),
                "sha256": val("sha"),
                "modified": val("modified"),
            },
            "previous_version": _previous(store, prov_graph, version),
            "derived_from": _derived(store, prov_graph, version),
        }
    )
    return out


def _previous(store: Store, prov_graph: str, version: str) -> str | None:
    rows = list(
        store.query(
            f"SELECT ?p WHERE {{ {sparql_iri(version)} <{PROV}wasRevisionOf> ?p }}",
            default_graph=[prov_graph],
            named_graphs=[],
        )
    )
    return rows[0]["p"].value if rows else None


def _derived(store: Store, prov_graph: str, version: str) -> list[dict[str, str | None]]:
    rows = store.query(
        f"""SELECT ?remote ?etag WHERE {{ {sparql_iri(version)} <{PROV}wasDerivedFrom> ?read .
            ?read <{PROV}specializationOf> ?remote ; <{DSGO}etag> ?etag }} ORDER BY ?remote""",
        default_graph=[prov_graph],
        named_graphs=[],
    )
    return [{"iri": r["remote"].value, "etag": r["etag"].value} for r in rows]
