"""Property: a scoped query answers exactly as the same query on a store holding only what the
caller's policies permit (random data, random policies, GRAPH/FROM/DESCRIBE/CONSTRUCT/COUNT/paths).

The reference side decides per quad straight from the policy JSON, independently of Scope.
"""

from __future__ import annotations

import pyoxigraph as ox
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.enforcement import MaterialisedCache, scoped_query
from node.sparql.outline import outline
from node.store import MemoryStore
from trust.delegation import DSGO_DATASET, DSGO_QUERY, ISHARE_READ, Policy, build_policy, decide

BASE = "http://127.0.0.1:8101"
OWNER = "EU.EORI.NL000000003"
CALLER = "EU.EORI.NL000000001"
OTHER = "EU.EORI.NL000000002"
NOW = 1_700_000_000
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
GRAPHS = [f"{BASE}/dataset/{n}" for n in ("a", "b", "c")]
OUTSIDE = f"{BASE}/staging/a"  # present in the store, never a dataset
SUBJECTS = [f"{BASE}/id/thing/{i}" for i in range(5)]
CLASSES = ["https://w3id.org/bot#Building", "https://w3id.org/bot#Space"]
PREDICATES = [f"https://w3id.org/props#p{i}" for i in range(3)]
READING = {ISHARE_READ, DSGO_QUERY}


# --- strategies -------------------------------------------------------------------------------

objects = st.one_of(
    st.sampled_from(SUBJECTS).map(ox.NamedNode),
    st.integers(0, 3).map(lambda i: ox.Literal(f"v{i}")),
)
plain_quads = st.builds(
    lambda g, s, p, o: ox.Quad(ox.NamedNode(s), ox.NamedNode(p), o, ox.NamedNode(g)),
    st.sampled_from(GRAPHS + [OUTSIDE]),
    st.sampled_from(SUBJECTS),
    st.sampled_from(PREDICATES),
    objects,
)
type_quads = st.builds(
    lambda g, s, c: ox.Quad(
        ox.NamedNode(s), ox.NamedNode(RDF_TYPE), ox.NamedNode(c), ox.NamedNode(g)
    ),
    st.sampled_from(GRAPHS + [OUTSIDE]),
    st.sampled_from(SUBJECTS),
    st.sampled_from(CLASSES),
)
datasets = st.lists(st.one_of(plain_quads, type_quads), min_size=0, max_size=40)


attr_lists = st.one_of(
    st.none(),
    st.just(["*"]),
    st.lists(st.sampled_from(PREDICATES + [RDF_TYPE]), min_size=1, max_size=3, unique=True),
)


@st.composite
def resource_targets(draw, deny: bool = False):
    rtype = draw(st.sampled_from([DSGO_DATASET] + CLASSES + ([None] if deny else [])))
    pool = GRAPHS if rtype == DSGO_DATASET else SUBJECTS
    ids = draw(
        st.one_of(
            st.just(["*"]),
            st.just(["*"]),
            st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True),
        )
    )
    resource = {"identifiers": ids}
    if rtype is not None:
        resource["type"] = rtype
    attrs = draw(attr_lists) if draw(st.booleans()) else None
    if attrs is not None:
        resource["attributes"] = attrs
    return resource


@st.composite
def policies(draw):
    out = []
    for i in range(draw(st.sampled_from([0, 1, 1, 2, 2, 3]))):
        resource = draw(resource_targets())
        denies = []
        for _ in range(draw(st.integers(0, 2))):
            target = {"resource": draw(resource_targets(deny=True))}
            actions = draw(st.sampled_from([None, [ISHARE_READ], [DSGO_QUERY], ["ISHARE.DELETE"]]))
            if actions is not None:
                target["actions"] = actions
            denies.append(target)
        if draw(st.booleans()):
            denies = []
        active = (NOW - 10, NOW + 10)
        window = draw(st.sampled_from([active] * 4 + [(NOW - 10, NOW), (NOW + 1, NOW + 10)]))
        subject = draw(st.sampled_from([CALLER] * 5 + [OTHER]))
        issuer = draw(st.sampled_from([OWNER] * 5 + [OTHER]))
        doc = build_policy(
            issuer=issuer,
            subject=subject,
            resource_type=resource["type"],
            identifiers=resource["identifiers"],
            attributes=resource.get("attributes"),
            actions=draw(st.sampled_from([[ISHARE_READ]] * 3 + [[DSGO_QUERY], ["ISHARE.DELETE"]])),
            not_before=window[0],
            not_on_or_after=window[1],
            deny=denies,
        )
        out.append(Policy(f"p{i}", doc))
    return out


def _iri(values):
    return st.sampled_from(values).map(lambda v: f"<{v}>")


TEMPLATES = [
    ("SELECT ?s ?p ?o WHERE {{ ?s ?p ?o }}", False),
    ("SELECT ?g ?s ?p ?o WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}", False),
    ("SELECT ?s ?o FROM {g} FROM {h} WHERE {{ ?s {p} ?o }}", True),
    ("SELECT ?g ?s FROM NAMED {g} WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}", True),
    (
        "SELECT ?o FROM {g} FROM NAMED {h} WHERE {{ {{ ?s ?p ?o }} UNION {{ GRAPH ?g {{ ?s ?p ?o }} }} }}",
        True,
    ),
    ("SELECT (COUNT(*) AS ?n) WHERE {{ ?s ?p ?o }}", False),
    ("SELECT ?g (COUNT(?s) AS ?n) WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }} GROUP BY ?g", False),
    ("SELECT (COUNT(DISTINCT ?s) AS ?n) FROM NAMED {g} WHERE {{ ?s ?p ?o }}", True),
    ("DESCRIBE {s}", False),
    ("DESCRIBE ?s WHERE {{ ?s a {c} }}", False),
    ("DESCRIBE ?s FROM {g} WHERE {{ ?s ?p ?o }}", True),
    ("CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH {g} {{ ?s ?p ?o }} }}", False),
    ("CONSTRUCT {{ ?s {p} ?o }} FROM {g} WHERE {{ ?s {p} ?o }}", True),
    ("SELECT ?x WHERE {{ {s} {p}+ ?x }}", False),
    ("SELECT ?x ?y WHERE {{ ?x ({p}|{q})*/{p} ?y }}", False),
    ("SELECT ?x ?y WHERE {{ ?x {p}* ?y }}", False),
    ("SELECT ?x WHERE {{ GRAPH ?g {{ {s} ^{p}/{q}? ?x }} }}", False),
    ("ASK {{ GRAPH {g} {{ {s} ?p ?o }} }}", False),
    ("PREFIX d: <{base}/dataset/> SELECT ?o FROM d:{gname} WHERE {{ ?s ?p ?o }}", True),
    ("SELECT ?s WHERE {{ ?s ?p ?o FILTER NOT EXISTS {{ GRAPH ?g {{ ?s a {c} }} }} }}", False),
    ("SELECT ?g WHERE {{ GRAPH ?g {{ }} }}", False),
]


@st.composite
def queries(draw):
    template, has_dataset = draw(st.sampled_from(TEMPLATES))
    g = draw(st.sampled_from(GRAPHS + [OUTSIDE]))
    text = template.format(
        g=f"<{g}>",
        h=draw(_iri(GRAPHS + [OUTSIDE])),
        p=draw(_iri(PREDICATES)),
        q=draw(_iri(PREDICATES)),
        s=draw(_iri(SUBJECTS)),
        c=draw(_iri(CLASSES)),
        base=BASE,
        gname=draw(st.sampled_from(["a", "b", "c"])),
    )
    return text, has_dataset


# --- the independent reference -------------------------------------------------------------------


def _in(values, value):
    return values is None or "*" in values or value in values


def _typed(data, s, c, g):
    return (
        ox.Quad(ox.NamedNode(s), ox.NamedNode(RDF_TYPE), ox.NamedNode(c), ox.NamedNode(g)) in data
    )


def _matches(resource, quad, data, deny):
    s, p, g = quad.subject.value, quad.predicate.value, quad.graph_name.value
    rtype = resource.get("type")
    ids = resource.get("identifiers")
    if rtype == DSGO_DATASET:
        hit = _in(ids, g)
    elif rtype is None:
        hit = _in(ids, s) or _in(ids, g)
    elif ids is None or "*" in ids:
        hit = _typed(data, s, rtype, g)
    else:
        hit = s in ids
    return hit and _in(resource.get("attributes"), p)


def reference_quads(data, records):
    """Quads the caller may read, decided per quad from the raw policy documents."""
    out = set()
    for quad in data:
        if quad.graph_name.value not in GRAPHS:
            continue
        for record in records:
            ev = record.evidence
            if ev["target"]["accessSubject"] != CALLER or ev["policyIssuer"] != OWNER:
                continue
            if not (ev["notBefore"] <= NOW < ev["notOnOrAfter"]):
                continue
            for pset in ev["policySets"]:
                for pol in pset["policies"]:
                    if not READING & set(pol["target"]["actions"]):
                        continue
                    if not _matches(pol["target"]["resource"], quad, data, False):
                        continue
                    denied = any(
                        (
                            rule["target"].get("actions") is None
                            or READING & set(rule["target"]["actions"])
                        )
                        and _matches(rule["target"]["resource"], quad, data, True)
                        for rule in pol["rules"][1:]
                    )
                    if not denied:
                        out.add(quad)
    return out


def normalise(result):
    if isinstance(result, ox.QueryBoolean):
        return bool(result)
    if isinstance(result, ox.QueryTriples):
        return sorted(str(t) for t in result)
    names = [v.value for v in result.variables]
    return sorted(tuple(str(sol[n]) if sol[n] is not None else "" for n in names) for sol in result)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=datasets, records=policies(), query=queries())
def test_scoped_query_equals_query_on_permitted_store(data, records, query) -> None:
    text, has_dataset = query
    source = ox.Store()
    source.extend(data)
    store = MemoryStore(source)
    present = sorted(g.value for g in source.named_graphs() if g.value in GRAPHS)
    scope = decide(CALLER, records, NOW, issuer=OWNER, service_provider=OWNER, action=DSGO_QUERY)
    got = normalise(
        scoped_query(
            store, text, scope, dataset_graphs=present, cache=MaterialisedCache(), data_version=1
        )
    )

    reference = ox.Store()
    reference.extend(reference_quads(set(data), records))
    graphs = [g.value for g in reference.named_graphs()]
    default, named = graphs, graphs
    if has_dataset:
        read = outline(text)
        froms, from_named = read.from_graphs, read.from_named
        default = [g for g in froms or [] if g in graphs]
        named = [g for g in from_named or [] if g in graphs]
    # The default graph is the RDF merge (a set union) of its graphs, as SPARQL 1.1 says.
    merge = ox.NamedNode("urn:test:merge")
    for g in default:
        for q in list(reference.quads_for_pattern(None, None, None, ox.NamedNode(g))):
            reference.add(ox.Quad(q.subject, q.predicate, q.object, merge))
    named_nodes = [ox.NamedNode(g) for g in named]
    expected = normalise(reference.query(text, default_graph=[merge], named_graphs=named_nodes))
    assert got == expected, text
