"""The default graph of a scope that spans several datasets is their RDF merge (a set union).

pyoxigraph 0.5 (and `oxigraph serve`) evaluate a default graph of several graphs as a *bag*
union: a triple held by two datasets matches twice, so COUNTs double and rows repeat (upstream
oxigraph issue #1919). A bag union of pairwise disjoint graphs is a set union, so the planner
hands the engine disjoint graphs only:

- datasets that share no triple with any other dataset of the scope stay as they are (no copy,
  no extra cost per query once the pairs have been checked);
- each group of datasets that do share triples (a connected component of "shares a triple") is
  given as its largest member plus one hidden graph holding the other members' triples that the
  largest lacks (`⋃ others \\ largest`; a graph is a set, so the rest is de-duplicated too).

Facts are cached per dataset content (the version's physical graph and its triple count), so
a query pays for a pair check or a merge graph only the first time after a load. A scope of one
dataset never reaches the planner's caches.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from node.iri import STAGING_PREFIX

# Hidden graphs: never a dataset, never listed as a named graph (the external store's quad
# listing already leaves out the staging prefix).
MERGE_PREFIX = f"{STAGING_PREFIX}merge:"
_PAIRS = 8192
_MERGES = 512


@dataclass(frozen=True)
class GraphKey:
    """What a dataset graph's content is at this moment; equal keys mean equal triples.

    `owner` is the object holding the data (a store, or an in-memory view), so facts about one
    store are never applied to another; `version` changes whenever the graph's triples may have;
    `triples` (when known) lets the planner check the smaller graph against the larger.
    """

    graph: str
    owner: Any
    version: Hashable
    triples: int | None = None


class MergeStore(Protocol):
    """What the planner needs from a store (every backend in node.store has it)."""

    def graph_keys(self, graphs: list[str]) -> dict[str, GraphKey]: ...

    def merge_graph(self, name: str, anchor: str, others: list[str]) -> int: ...

    def drop_merge(self, name: str) -> None: ...

    def query(self, sparql: str, **kwargs: Any) -> Any: ...


def overlap_query(a: str, b: str) -> str:
    """ASK whether graphs `a` and `b` share a triple (the engine scans `a`, probes `b`)."""
    return f"ASK {{ GRAPH <{a}> {{ ?s ?p ?o }} GRAPH <{b}> {{ ?s ?p ?o }} }}"


def merge_update(name: str, anchor: str, others: Sequence[str]) -> str:
    """SPARQL Update filling graph `name` with the triples of `others` that `anchor` lacks."""
    parts = [
        f"INSERT {{ GRAPH <{name}> {{ ?s ?p ?o }} }} WHERE {{ GRAPH <{g}> {{ ?s ?p ?o }} "
        f"FILTER NOT EXISTS {{ GRAPH <{anchor}> {{ ?s ?p ?o }} }} }}"
        for g in others
    ]
    return " ; ".join(parts)


def merge_name(keys: Sequence[GraphKey]) -> str:
    """A hidden graph name determined by the members' content (same content, same name).

    Building into an existing graph of that name only inserts triples it already has, so two
    workers (or a restarted node) that build the same merge agree.
    """
    text = "\n".join(f"{k.graph} {k.version!r}" for k in sorted(keys, key=lambda k: k.graph))
    return MERGE_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:32]


class NotPlanned(Exception):
    """Answering is not cheap now: it would first build something (a merge plan, a materialised
    view) or read very many graphs. Raised for `build=False`, asked by a caller that must not
    wait (an inline lookup, node/service/dispatch.py)."""


class MergePlanner:
    """Turns a scope's list of default graphs into disjoint graphs (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pairs: OrderedDict[tuple[GraphKey, GraphKey], bool] = OrderedDict()
        self._merges: OrderedDict[tuple[GraphKey, ...], str | None] = OrderedDict()
        # the scope's keys -> its plan (one lookup per query once the facts are known)
        self._plans: OrderedDict[tuple[GraphKey, ...], tuple[str, ...]] = OrderedDict()
        # members (owner, graphs) -> the merge graph built for their current content
        self._current: dict[tuple[Any, frozenset[str]], str] = {}
        self._building: dict[Hashable, threading.Lock] = {}  # single flight per pair / merge
        self.stats = {"pair_checks": 0, "merges_built": 0}

    def default_graphs(
        self, store: MergeStore, graphs: Sequence[str], build: bool = True
    ) -> list[str]:
        """Graphs whose bag union is the RDF merge of `graphs` (one graph: returned as it is).

        With `build=False`, NotPlanned instead of checking pairs or building a merge graph.
        """
        unique = list(dict.fromkeys(graphs))  # FROM <a> FROM <a> names one graph
        if len(unique) < 2:
            return unique
        keys = store.graph_keys(unique)
        plan_key = tuple(keys[g] for g in unique)
        with self._lock:
            plan = self._plans.get(plan_key)
        if plan is not None:
            return list(plan)
        if not build:
            raise NotPlanned("the scope's merge of datasets is not planned yet")
        out: list[str] = []
        for component in self._components(store, unique, keys):
            if len(component) == 1:
                out.append(component[0])
                continue
            anchor = max(component, key=lambda g: (keys[g].triples or 0, g))
            others = [g for g in component if g != anchor]
            out.append(anchor)
            rest = self._merge(store, anchor, others, keys)
            if rest is not None:
                out.append(rest)
        with self._lock:
            self._plans[plan_key] = tuple(out)
            while len(self._plans) > _MERGES:
                self._plans.popitem(last=False)
        return out

    # --- which datasets share triples --------------------------------------------------------

    def _components(
        self, store: MergeStore, graphs: list[str], keys: dict[str, GraphKey]
    ) -> list[list[str]]:
        parent = {g: g for g in graphs}

        def root(g: str) -> str:
            while parent[g] != g:
                parent[g] = parent[parent[g]]
                g = parent[g]
            return g

        for i, a in enumerate(graphs):
            for b in graphs[i + 1 :]:
                if root(a) != root(b) and self._overlap(store, keys[a], keys[b]):
                    parent[root(b)] = root(a)
        groups: dict[str, list[str]] = {}
        for g in graphs:
            groups.setdefault(root(g), []).append(g)
        return list(groups.values())

    def _overlap(self, store: MergeStore, a: GraphKey, b: GraphKey) -> bool:
        if a.triples == 0 or b.triples == 0:
            return False
        if (b.triples or 0) < (a.triples or 0):
            a, b = b, a
        pair = (a, b) if a.graph <= b.graph else (b, a)
        with self._lock:
            known = self._pairs.get(pair)
            if known is not None:
                self._pairs.move_to_end(pair)
                return known
            checking = self._building.setdefault(pair, threading.Lock())
        with checking:  # one check per pair; concurrent queries wait for its answer
            with self._lock:
                known = self._pairs.get(pair)
            if known is not None:
                return known
            # The engine drives the join from the first pattern: the smaller graph goes first,
            # so a check costs about one index probe per triple of the smaller dataset.
            result = bool(
                store.query(
                    overlap_query(a.graph, b.graph),
                    default_graph=[],
                    named_graphs=[a.graph, b.graph],
                )
            )
            with self._lock:
                self.stats["pair_checks"] += 1
                self._pairs[pair] = result
                while len(self._pairs) > _PAIRS:
                    self._pairs.popitem(last=False)
                self._building.pop(pair, None)
        return result

    # --- the hidden graph of a component -----------------------------------------------------

    def _merge(
        self, store: MergeStore, anchor: str, others: list[str], keys: dict[str, GraphKey]
    ) -> str | None:
        members = tuple(sorted((keys[anchor], *(keys[g] for g in others)), key=lambda k: k.graph))
        with self._lock:
            if members in self._merges:
                self._merges.move_to_end(members)
                return self._merges[members]
            building = self._building.setdefault(members, threading.Lock())
        with building:  # one build per merge; concurrent queries wait for it
            with self._lock:
                if members in self._merges:
                    return self._merges[members]
            name = merge_name(members)
            count = store.merge_graph(name, anchor, others)
            result = name if count > 0 else None
            slot = (keys[anchor].owner, frozenset((anchor, *others)))
            with self._lock:
                self.stats["merges_built"] += 1
                self._merges[members] = result
                while len(self._merges) > _MERGES:
                    self._merges.popitem(last=False)
                stale = self._current.get(slot)
                self._current[slot] = name
                self._building.pop(members, None)
            if stale is not None and stale != name:
                store.drop_merge(stale)  # the same datasets' previous content
        return result


DEFAULT_PLANNER = MergePlanner()
