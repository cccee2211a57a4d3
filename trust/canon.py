"""RDFC-1.0 (W3C RDF Dataset Canonicalization) with a bound on Hash N-Degree Quads work.

pyoxigraph's `Dataset.canonicalize(RDFC_1_0)` gives the same output on every W3C vector, but it
has no poison-graph limit (the 10-node clique never finishes), so a node verifying a remote
signature could be stalled. The labelling is therefore done here, with a call budget; pyoxigraph
parses and serialises the terms (its N-Quads form is the canonical one).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import permutations

import pyoxigraph as ox

from trust.errors import TrustError

DEFAULT_MAX_STEPS_PER_BLANK_NODE = 1000
# (subject, predicate, object, graph name or None for the default graph)
_Q = tuple[
    ox.NamedNode | ox.BlankNode,
    ox.NamedNode,
    ox.NamedNode | ox.BlankNode | ox.Literal,
    ox.NamedNode | ox.BlankNode | None,
]


class CanonicalizationError(TrustError):
    """The dataset exceeds the Hash N-Degree Quads budget (a poison graph) and is refused."""

    error = "poison_graph"


def canonical_nquads(
    quads: Iterable[ox.Quad | ox.Triple],
    *,
    hash_name: str = "sha256",
    max_steps: int | None = None,
) -> str:
    """Canonical N-Quads (RDFC-1.0) of a dataset: sorted, deduplicated, one quad per line."""
    canon = _Canonicalizer(quads, hash_name, max_steps)
    issued = canon.run()
    lines = [_line(q, issued.__getitem__) for q in canon.quads]
    lines.sort()
    return "".join(lines)


def issued_identifiers(
    quads: Iterable[ox.Quad | ox.Triple],
    *,
    hash_name: str = "sha256",
    max_steps: int | None = None,
) -> dict[str, str]:
    """The RDFC-1.0 issued identifiers map: input blank node label -> canonical label."""
    return _Canonicalizer(quads, hash_name, max_steps).run()


@dataclass
class _Issuer:
    """RDFC-1.0 identifier issuer: prefix, counter and issue order."""

    prefix: str
    issued: dict[str, str] = field(default_factory=dict)

    def issue(self, existing: str) -> str:
        found = self.issued.get(existing)
        if found is None:
            found = f"{self.prefix}{len(self.issued)}"
            self.issued[existing] = found
        return found

    def copy(self) -> _Issuer:
        return _Issuer(self.prefix, dict(self.issued))


class _Canonicalizer:
    """One run of the algorithm over one dataset (state of RDFC-1.0 section 4.2)."""

    def __init__(
        self, quads: Iterable[ox.Quad | ox.Triple], hash_name: str, max_steps: int | None
    ) -> None:
        self.quads = {_as_tuple(q) for q in quads}
        self.hash_name = hash_name
        self.bnode_quads: dict[str, list[_Q]] = {}
        for q in self.quads:
            for term in (q[0], q[2], q[3]):
                if isinstance(term, ox.BlankNode):
                    lst = self.bnode_quads.setdefault(term.value, [])
                    if not lst or lst[-1] is not q:
                        lst.append(q)
        self.canonical = _Issuer("c14n")
        self.first_degree: dict[str, str] = {}
        n = len(self.bnode_quads)
        self.budget = max_steps if max_steps is not None else DEFAULT_MAX_STEPS_PER_BLANK_NODE * n
        self.steps = 0

    def run(self) -> dict[str, str]:
        by_hash: dict[str, list[str]] = {}
        for b in self.bnode_quads:
            by_hash.setdefault(self._hash_first_degree(b), []).append(b)
        shared: list[tuple[str, list[str]]] = []
        for h in sorted(by_hash):
            nodes = by_hash[h]
            if len(nodes) == 1:
                self.canonical.issue(nodes[0])
            else:
                shared.append((h, nodes))
        for _h, nodes in shared:
            results: list[tuple[str, _Issuer]] = []
            for b in nodes:
                if b in self.canonical.issued:
                    continue
                temp = _Issuer("b")
                temp.issue(b)
                results.append(self._hash_n_degree(b, temp))
            results.sort(key=lambda r: r[0])
            for _rh, issuer in results:
                for existing in issuer.issued:
                    self.canonical.issue(existing)
        return dict(self.canonical.issued)

    def _spend(self) -> None:
        self.steps += 1
        if self.steps > self.budget:
            raise CanonicalizationError(
                "canonicalization_budget",
                f"more than {self.budget} Hash N-Degree Quads steps: refusing a poison graph",
            )

    def _hash(self, data: str) -> str:
        return hashlib.new(self.hash_name, data.encode("utf-8")).hexdigest()

    def _hash_first_degree(self, ref: str) -> str:
        found = self.first_degree.get(ref)
        if found is not None:
            return found

        def label(value: str) -> str:
            return "a" if value == ref else "z"

        lines = sorted(_line(q, label) for q in self.bnode_quads[ref])
        found = self._hash("".join(lines))
        self.first_degree[ref] = found
        return found

    def _hash_related(self, related: str, q: _Q, issuer: _Issuer, position: str) -> str:
        data = position
        if position != "g":
            data += f"<{q[1].value}>"
        ident = self.canonical.issued.get(related) or issuer.issued.get(related)
        data += f"_:{ident}" if ident is not None else self._hash_first_degree(related)
        return self._hash(data)

    def _hash_n_degree(self, ref: str, issuer: _Issuer) -> tuple[str, _Issuer]:
        self._spend()
        related_by_hash: dict[str, list[str]] = {}
        for q in self.bnode_quads[ref]:
            for term, pos in ((q[0], "s"), (q[2], "o"), (q[3], "g")):
                if isinstance(term, ox.BlankNode) and term.value != ref:
                    h = self._hash_related(term.value, q, issuer, pos)
                    related_by_hash.setdefault(h, []).append(term.value)
        data = ""
        for h in sorted(related_by_hash):
            data += h
            chosen_path = ""
            chosen_issuer: _Issuer | None = None
            for perm in permutations(related_by_hash[h]):
                self._spend()
                path = self._permutation_path(perm, issuer, chosen_path)
                if path is None:
                    continue
                path_str, issuer_copy = path
                if not chosen_path or path_str < chosen_path:
                    chosen_path, chosen_issuer = path_str, issuer_copy
            data += chosen_path
            assert chosen_issuer is not None
            issuer = chosen_issuer
        return self._hash(data), issuer

    def _permutation_path(
        self, perm: tuple[str, ...], issuer: _Issuer, chosen: str
    ) -> tuple[str, _Issuer] | None:
        issuer_copy = issuer.copy()
        path = ""
        recursion: list[str] = []
        for related in perm:
            canon = self.canonical.issued.get(related)
            if canon is not None:
                path += f"_:{canon}"
            else:
                if related not in issuer_copy.issued:
                    recursion.append(related)
                path += f"_:{issuer_copy.issue(related)}"
            if chosen and len(path) >= len(chosen) and path > chosen:
                return None
        for related in recursion:
            result_hash, result_issuer = self._hash_n_degree(related, issuer_copy)
            path += f"_:{issuer_copy.issue(related)}<{result_hash}>"
            issuer_copy = result_issuer
            if chosen and len(path) >= len(chosen) and path > chosen:
                return None
        return path, issuer_copy


def _as_tuple(q: ox.Quad | ox.Triple) -> _Q:
    if isinstance(q, ox.Triple):
        return (q.subject, q.predicate, q.object, None)
    graph = q.graph_name
    return (q.subject, q.predicate, q.object, None if isinstance(graph, ox.DefaultGraph) else graph)


def _line(q: _Q, label: Callable[[str], str]) -> str:
    """One canonical N-Quads line, blank nodes named by `label`."""
    s, p, o, g = q
    s_text = f"_:{label(s.value)}" if isinstance(s, ox.BlankNode) else str(s)
    o_text = f"_:{label(o.value)}" if isinstance(o, ox.BlankNode) else str(o)
    if g is None:
        return f"{s_text} {p} {o_text} .\n"
    g_text = f"_:{label(g.value)}" if isinstance(g, ox.BlankNode) else str(g)
    return f"{s_text} {p} {o_text} {g_text} .\n"
