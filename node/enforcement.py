"""Policy enforcement point: what a caller may read, applied to resource GETs and SPARQL queries.

Whole-dataset scopes run on the node's store restricted by pyoxigraph dataset arguments; partial
scopes run on an in-memory copy holding only the permitted triples. Either way the dataset passed
to the engine only names permitted graphs, so a query's FROM / FROM NAMED can narrow it, never widen.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import pyoxigraph as ox

from node.sparql.outline import QueryOutline, outline
from node.sparql.text import SparqlSyntaxError, mentions_service
from node.store import MemoryStore, Store
from node.store.merge import DEFAULT_PLANNER, MERGE_PREFIX, MergePlanner, NotPlanned
from trust.audit import AuditEvent
from trust.conditions import explain_conditions
from trust.delegation import (
    DSGO_FEDERATE,
    DSGO_QUERY,
    ISHARE_READ,
    WILDCARD,
    Decision,
    DenyRule,
    PartialGrant,
    Policy,
    Scope,
    decide,
)
from trust.errors import TrustError
from trust.peers import OutboundRefused, Peer, PeerResolver
from trust.policy_store import PolicyStore
from vocab.iris import dataset_iri
from vocab.namespaces import RDF_TYPE

_CACHE_SIZE = 64
# The data owner (the node's own party) reads everything it serves; no policy is needed for that.
OWNER_SCOPE = Scope(whole_datasets=frozenset({WILDCARD}), policy_ids=("owner",))
OWNER_SCOPE_NONE = Scope()
_SCOPE_CACHE_SIZE = 10_000


# Actions the enforcement point decides besides reading (ISHARE_READ) and querying (DSGO_QUERY).
READ_DATASET = "dsgo:readDataset"  # the whole dataset at once (GET /dataset/{name})
READ_AUDIT = "dsgo:readAudit"  # the audit log and traces (a grant on the pseudo-dataset `audit`)
ADMIN = "dsgo:admin"  # change data or policies, sign, follow links as the node: the owner only
FEDERATE = DSGO_FEDERATE  # make this node call another node on the caller's behalf
READ_CATALOG = "dsgo:readCatalog"  # an authenticated /catalog read: which datasets it listed
AUDIT_DATASET = "audit"


@dataclass(frozen=True)
class Caller:
    """Who asks: the party (from a verified access token, or the node itself), the token's jti,
    and the person acting for the party when the request comes from a login session."""

    party_id: str
    jti: str | None = None
    scope: str = ""
    person: str | None = None
    # iSHARE 3.0: the request's context (key, value) pairs, for policies with conditions.
    context: tuple[tuple[str, str], ...] = ()
    # A person of the node's own party acts as "steward" (admin and policy actions) or
    # "auditor" (the audit log); other parties' people read under their party's policies.
    role: str | None = None

    @classmethod
    def node(cls, party_id: str) -> Caller:
        """The node acting as itself (CLI, scheduled sync, derive)."""
        return cls(party_id, None, "", None)


class AccessDenied(TrustError):
    """The caller may read nothing of the target; HTTP 403 with an explanation."""

    error = "access_denied"

    def __init__(
        self,
        description: str,
        explanation: dict[str, Any] | None = None,
        error: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__("policy", description)
        self.explanation = explanation or {}
        if error is not None:
            self.error = error
        self.extra = extra


class ServiceNotAllowed(AccessDenied):
    """An outbound call the node does not make (unregistered endpoint, bad URL); HTTP 403."""

    def __init__(self, endpoint: str, reason: str) -> None:
        super().__init__(
            f"SERVICE endpoint not allowed: {endpoint[:300]}: {reason}",
            error="service_not_allowed",
            endpoint=endpoint[:300],
        )
        self.endpoint = endpoint


def decision_event(decision: Decision) -> AuditEvent:
    """The audit entry of an enforcement decision: the only place permit/deny entries are made."""
    detail: dict[str, Any] = {"effect": decision.effect, "reason": decision.reason}
    detail.update((k, v) for k, v in decision.extra.items() if k != "datasets")
    kind = "permit" if decision.effect == "Permit" else "deny"
    action = decision.action
    if decision.action == ADMIN and kind == "permit":  # an owner's change: the admin record
        kind, action = "admin", str(decision.extra.get("operation", ADMIN))
    return AuditEvent(
        kind=kind,
        party=decision.party,
        target=decision.target,
        action=action,
        policy_ids=tuple(decision.policy_ids),
        token_jti=decision.token_jti,
        datasets=tuple(decision.extra.get("datasets", ())),
        detail=detail,
    )


def request_record(decisions: Sequence[Decision], record: AuditEvent) -> AuditEvent:
    """One audit entry for one request: its decisions folded into the use's own record.

    A request that was refused is its deny entry (the use never happened); a permitted one is
    `record` (the query record) carrying the decision, its reason and the policies it rests on,
    so an auditor reads the decision and the query in one entry and counts one per request.
    """
    denied = [d for d in decisions if d.effect != "Permit"]
    if denied:
        event = decision_event(denied[0])
        if len(decisions) > 1:
            event.detail["decisions"] = [_decision_summary(d) for d in decisions]
        return event
    if not decisions:
        return record
    policy_ids = tuple(
        dict.fromkeys([*record.policy_ids, *(p for d in decisions for p in d.policy_ids)])
    )
    detail = {
        **record.detail,
        "effect": "Permit",
        "reason": decisions[0].reason,
    }
    if len(decisions) > 1:
        detail["decisions"] = [_decision_summary(d) for d in decisions]
    return AuditEvent(  # not dataclasses.replace, which costs more: this runs on every request
        kind=record.kind,
        party=record.party,
        target=record.target,
        action=record.action,
        policy_ids=policy_ids,
        token_jti=record.token_jti,
        query_hash=record.query_hash,
        datasets=record.datasets,
        result_size=record.result_size,
        detail=detail,
    )


def _decision_summary(decision: Decision) -> dict[str, Any]:
    return {
        "effect": decision.effect,
        "action": decision.action,
        "target": decision.target,
        "reason": decision.reason,
        "policy_ids": list(decision.policy_ids),
    }


QUICK_GRAPHS = 64  # the most graphs a build=False query reads (scoped_query)


def scoped_query(
    store: Store,
    query: str | QueryOutline,
    scope: Scope,
    *,
    dataset_graphs: Sequence[str],
    cache: MaterialisedCache | None = None,
    data_version: Hashable | None = None,
    timeout: float | None = None,
    merges: MergePlanner | None = None,
    build: bool = True,
) -> Any:
    """Run `query` over only what `scope` permits; the default graph is the RDF merge of it
    (node.store.merge: the engine gets disjoint graphs, so its bag union is a set union).

    With `build=False` (a caller that must not wait: node/service/dispatch.answer_here),
    NotPlanned instead of materialising a partial scope, planning a merge, or reading a default
    graph of more than QUICK_GRAPHS graphs (a pattern costs an index seek in each).
    """
    query = outline(query)
    refuse_engine_service(query.text)
    from_graphs, from_named = query.from_graphs, query.from_named
    whole = _whole_graphs(scope, dataset_graphs)
    if scope.partial:
        if not build:
            raise NotPlanned("a partial scope is read from a materialised view")
        if cache is not None and data_version is not None:
            mem = cache.get_or_build(
                (scope, data_version), lambda: _materialise(store, scope, dataset_graphs)
            )
        else:
            mem = _materialise(store, scope, dataset_graphs)
        target: Store = MemoryStore(mem)
        permitted = set(whole) | {
            g.value for g in mem.named_graphs() if not g.value.startswith(MERGE_PREFIX)
        }
    else:
        target = store
        permitted = set(whole)
    if from_graphs is None and from_named is None:
        default = named = sorted(permitted)
    else:
        default = [g for g in (from_graphs or []) if g in permitted]
        named = [g for g in (from_named or []) if g in permitted]
    default = (merges or DEFAULT_PLANNER).default_graphs(target, default, build)
    if not build and len(default) > QUICK_GRAPHS:
        raise NotPlanned(f"the default graph spans {len(default)} graphs")
    return target.query(query, default_graph=default, named_graphs=named, timeout=timeout)


_SERVICE_TEXT = re.compile("service", re.IGNORECASE)


def refuse_engine_service(query: str) -> None:
    """SparqlSyntaxError (400) if the engine would read a SERVICE keyword in `query`.

    pyoxigraph evaluates SERVICE itself, with its own HTTP client and none of the outbound
    checks, so text handed to it must hold no SERVICE. The planner finds SERVICE with the node's
    tokenizer, which text such as `ex:a\\#b` or `?a<?b#>` can make see a comment or a string where
    the engine sees syntax. So the engine's own parser is asked: with every "service" made
    "servicx" (no keyword; names, IRIs and literals stay valid) the text must still parse.
    Parsing a SELECT or CONSTRUCT does not evaluate it; an ASK is evaluated on an empty store.
    """
    if not mentions_service(query):
        return
    probe = _SERVICE_TEXT.sub(
        lambda m: m.group()[:-1] + ("X" if m.group()[-1] == "E" else "x"), query
    )
    try:
        ox.Store().query(probe)
    except SyntaxError:
        raise SparqlSyntaxError(
            "the query uses SERVICE where this node's planner cannot see it (escapes in names "
            "or IRIs, or '<' written without spaces), or does not parse; it was not evaluated"
        ) from None


def filter_description(
    triples: Iterable[ox.Triple | ox.Quad],
    scope: Scope,
    subject_iri: str,
    graph_iris: Sequence[str],
) -> list[ox.Triple] | None:
    """Keep the permitted triples of a resource description; None (403) if none is permitted.

    Pass Quads (each triple's graph is then known); a plain Triple counts as present in every
    graph of `graph_iris`. Every graph given is treated as a dataset graph.
    """
    items = list(triples)
    if WILDCARD in scope.whole_datasets:  # every dataset in full (the owner, or a '*' grant)
        unique = list(dict.fromkeys(i.triple if isinstance(i, ox.Quad) else i for i in items))
        return unique or None
    types: dict[tuple[str, str], set[str]] = {}
    located: list[tuple[ox.Triple, list[str]]] = []
    for item in items:
        graphs = [item.graph_name.value] if isinstance(item, ox.Quad) else list(graph_iris)
        triple = item.triple if isinstance(item, ox.Quad) else item
        located.append((triple, graphs))
        if triple.predicate.value == RDF_TYPE and isinstance(triple.object, ox.NamedNode):
            for g in graphs:
                types.setdefault((triple.subject.value, g), set()).add(triple.object.value)
    whole = scope.whole_datasets
    kept: list[ox.Triple] = []
    seen: set[ox.Triple] = set()
    for triple, graphs in located:
        if triple in seen:
            continue
        s, p = triple.subject.value, triple.predicate.value
        if any(
            WILDCARD in whole
            or g in whole
            or any(grant_allows(gr, s, p, g, types.get((s, g), ())) for gr in scope.partial)
            for g in graphs
        ):
            seen.add(triple)
            kept.append(triple)
    return kept or None


def grant_allows(grant: PartialGrant, s: str, p: str | None, g: str, types: Iterable[str]) -> bool:
    """Does a partial grant permit triple (s, p, *) in graph g (p None: some property of s)?"""
    if grant.datasets is not None and g not in grant.datasets:
        return False
    if grant.subjects is not None and s not in grant.subjects:
        return False
    if grant.rdf_type is not None and grant.rdf_type not in types:
        return False
    if p is not None and grant.attributes is not None and p not in grant.attributes:
        return False
    return not any(_deny_hits(d, s, p, g, types) for d in grant.denies)


class MaterialisedCache:
    """Small LRU of in-memory stores, keyed by (scope, store data version)."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, ox.Store] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_build(self, key: Hashable, build: Callable[[], ox.Store]) -> ox.Store:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = build()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


@dataclass
class _CachedScope:
    version: int
    valid_until: float
    scope: Scope


class Enforcer:
    """The node's PEP: scopes per caller (cached per policy version), audit on every decision."""

    def __init__(
        self,
        policies: PolicyStore,
        *,
        node_party_id: str,
        base_iri: str,
        on_decision: Callable[[Decision], None] | None = None,
        clock: Callable[[], float] = time.time,
        peers: PeerResolver | None = None,
    ) -> None:
        self.peers = peers
        self.policies = policies
        self.node_party_id = node_party_id
        self.base_iri = base_iri.rstrip("/")
        self.on_decision = on_decision or (lambda decision: None)
        self.clock = clock
        self.materialised = MaterialisedCache()
        self.merges = MergePlanner()
        self._scopes: dict[tuple[str, str], _CachedScope] = {}
        self._graphs: tuple[Hashable, list[str]] | None = None
        self._dataset_re = re.compile(
            re.escape(self.base_iri) + r"/dataset/[a-z0-9][a-z0-9_-]{0,62}"
        )

    def is_owner(self, caller: Caller | str) -> bool:
        return _party(caller) == self.node_party_id

    def authorize(
        self,
        caller: Caller | str,
        action: str,
        target: str = "",
        *,
        evidence: Sequence[Policy] = (),
        collect: list[Decision] | None = None,
        audit: bool = True,
        **extra: Any,
    ) -> Scope:
        """Decide `action` on `target` for `caller`; the scope on permit, AccessDenied on deny.

        Every decision is audited here (or added to `collect` for the caller to write with its
        own entries); `audit=False` skips the permit entry of a decision whose use is recorded
        by its own entry (a federated call). Denies are always audited.
        """
        party = _party(caller)
        role = _person_role(caller, self.node_party_id)
        needed = _staff_role_needed(action)
        if needed is not None and role is not None and role != needed:
            reason = f"the {needed} role is needed for {action}"
            self._deny(caller, action, target, OWNER_SCOPE_NONE, reason, collect, extra)
            raise AccessDenied(
                f"only the node's {needed}s may do this; you are logged in as {role or 'staff'}",
                error="insufficient_role",
            )
        if action == ADMIN:
            if party != self.node_party_id:
                self._deny(caller, action, target, OWNER_SCOPE_NONE, "owner only", collect, extra)
                raise AccessDenied(
                    "only the node's own party may do this", error="insufficient_scope"
                )
            if audit:
                self._permit(caller, action, target, OWNER_SCOPE, "owner", collect, extra)
            return OWNER_SCOPE
        if action in (READ_DATASET, READ_AUDIT):
            name = AUDIT_DATASET if action == READ_AUDIT else target
            graph = self._dataset_iri(name)
            scope = self.scope_for(party, ISHARE_READ, evidence, context=_context(caller))
            if not scope.reaches_dataset(graph):
                what = (
                    "this node's audit log"
                    if action == READ_AUDIT
                    else f"the whole dataset {name!r}"
                )
                self._deny(
                    caller, action, graph, scope, f"no policy lets you read {what}", collect, extra
                )
                raise AccessDenied(
                    f"no policy lets you read {what}",
                    self.explain(party, dataset=name, context=_context(caller)),
                )
            if audit:
                self._permit(
                    caller,
                    action,
                    graph,
                    scope,
                    "whole dataset",
                    collect,
                    {**extra, "datasets": (graph,)},
                )
            return scope
        if action == FEDERATE:
            if party == self.node_party_id:
                return OWNER_SCOPE
            scope = self.scope_for(party, FEDERATE, context=_context(caller))
            if not scope.reaches_service(target):
                reason = "no policy grants you the dsgo:federate action for this endpoint"
                self._deny(caller, action, target, scope, reason, collect, extra)
                raise AccessDenied(
                    "a query with SERVICE makes this node call another node on your behalf; "
                    + reason,
                    self.explain(party, resource=target, action=FEDERATE, context=_context(caller)),
                    error="federation_not_allowed",
                )
            if audit:
                self._permit(caller, action, target, scope, "federate", collect, extra)
            return scope
        scope = self.scope_for(party, action, evidence, context=_context(caller))
        if scope.is_empty:
            self._deny(caller, action, target, scope, "no policy applies", collect, extra)
            raise AccessDenied(
                "no policy permits this",
                self.explain(party, action=action, context=_context(caller)),
            )
        if audit:
            self._permit(caller, action, target, scope, "scoped", collect, extra)
        return scope

    def outbound(
        self,
        caller: Caller | str,
        url: str,
        *,
        endpoint: bool = False,
        collect: list[Decision] | None = None,
    ) -> Peer:
        """The gate of every call this node makes to another node, before any network I/O.

        The caller must be the node's own party or hold a `dsgo:federate` grant; the URL must
        belong to a party the registry vouches for (`endpoint`: be exactly its SPARQL endpoint).
        """
        self.authorize(caller, FEDERATE, url, collect=collect, audit=False)
        try:
            if self.peers is None:
                raise OutboundRefused(
                    "outbound", "this node has no registry to check peers against"
                )
            peer = self.peers.resolve(url)
            if endpoint and (url != peer.sparql):
                raise OutboundRefused(
                    "outbound_url", f"not the SPARQL endpoint {peer.sparql} of {peer.party_id}"
                )
            if peer.party_id == self.node_party_id:
                raise OutboundRefused("outbound_url", "this node does not call itself")
        except (OutboundRefused, TrustError) as exc:
            self._deny(caller, FEDERATE, url, OWNER_SCOPE_NONE, exc.description, collect, {})
            raise ServiceNotAllowed(url, exc.description) from None
        return peer

    def login_outbound(self, url: str, origins: Iterable[str]) -> None:
        """The gate of calls to an OpenID Provider (discovery, JWKS, token, userinfo): only to
        the origins node.toml configures for it; a refusal is audited and raises 403."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if parts.scheme not in ("http", "https") or "@" in parts.netloc or origin not in origins:
            reason = "not at a configured OpenID Provider's origin"
            self.refuse(self.node_party_id, "login", url[:300], reason)
            raise ServiceNotAllowed(url, reason)

    def catalog_read(self, caller: Caller, graphs: Sequence[str], target: str = "catalog") -> None:
        """Record an authenticated catalog read: one permit naming the datasets it listed (the
        listing itself follows the caller's read scope, decided by `scope_for`). VoID
        descriptions are catalog reads too (`target` names the document)."""
        scope = self.scope_for(caller.party_id)
        extra = {"datasets": tuple(graphs)}
        reason = "catalog listing" if target == "catalog" else "VoID description"
        self._permit(caller, READ_CATALOG, target, scope, reason, None, extra)

    def refuse(self, caller: Caller | str, action: str, target: str, reason: str) -> None:
        """Record a refusal decided outside a policy (bad evidence, a guard); always audited."""
        self._deny(caller, action, target, OWNER_SCOPE_NONE, reason, None, {})

    def is_self_endpoint(self, url: str) -> bool:
        """True for this node's own SPARQL endpoint (evaluated locally, never over HTTP)."""
        return url == f"{self.base_iri}/sparql"

    def _permit(self, caller, action, target, scope, reason, collect, extra) -> None:
        self._record("Permit", caller, action, target, scope, reason, collect, extra)

    def _deny(self, caller, action, target, scope, reason, collect, extra) -> None:
        self._record("Deny", caller, action, target, scope, reason, collect, extra)

    def _record(
        self,
        effect: str,
        caller: Caller | str,
        action: str,
        target: str,
        scope: Scope,
        reason: str,
        collect: list[Decision] | None,
        extra: dict[str, Any],
    ) -> None:
        more = dict(extra)
        if isinstance(caller, Caller) and caller.person:
            more["person"] = caller.person
            if caller.role:
                more["role"] = caller.role
        decision = Decision(
            effect,
            _party(caller),
            action,
            target,
            scope.policy_ids,
            reason,
            more,
            caller.jti if isinstance(caller, Caller) else None,
        )
        if collect is not None:
            collect.append(decision)
        else:
            self.on_decision(decision)

    def scope_for(
        self,
        caller: str | Caller,
        action: str = ISHARE_READ,
        evidence: Sequence[Policy] = (),
        *,
        context: Mapping[str, str] | None = None,
    ) -> Scope:
        """What `caller` may read now; recomputed only when policies change or a window ends.

        `evidence`: verified delegation evidence the caller brought (from an external register);
        it counts only where the data owner (this node's party) issued it. `context`: the
        request's context for policies with conditions (a Caller brings its own); a scope
        decided with a context is not cached.
        """
        if isinstance(caller, Caller):
            context = context if context is not None else _context(caller)
            caller = caller.party_id
        if caller == self.node_party_id:
            return OWNER_SCOPE
        if context:
            records = self.policies.list(subject=caller, issuer=self.node_party_id)
            return self._decide(caller, [*records, *evidence], self.clock(), action, context)
        version = self.policies.version()
        now = self.clock()
        key = (caller, action)
        cached = self._scopes.get(key)
        if cached is None or cached.version != version or now >= cached.valid_until:
            records = self.policies.list(subject=caller, issuer=self.node_party_id)
            scope = self._decide(caller, records, now, action)
            cached = _CachedScope(version, _valid_until(records, now), scope)
            if len(self._scopes) >= _SCOPE_CACHE_SIZE:
                self._scopes.clear()
            self._scopes[key] = cached
        if not evidence:
            return cached.scope
        records = self.policies.list(subject=caller, issuer=self.node_party_id)
        return self._decide(caller, [*records, *evidence], now, action)

    def _decide(
        self,
        caller: str,
        records: Sequence[Policy],
        now: float,
        action: str,
        context: Mapping[str, str] | None = None,
    ) -> Scope:
        return decide(
            caller,
            records,
            now,
            issuer=self.node_party_id,
            service_provider=self.node_party_id,
            action=action,
            context=context,
        )

    def permitted_triples(
        self,
        caller: Caller | str,
        triples: Iterable[ox.Triple | ox.Quad],
        subject_iri: str,
        graph_iris: Sequence[str],
        *,
        evidence: Sequence[Policy] = (),
    ) -> list[ox.Triple]:
        """Filter a resource description for `caller`; AccessDenied (403) if nothing is permitted."""
        party = _party(caller)
        scope = self.scope_for(party, ISHARE_READ, evidence, context=_context(caller))
        items = list(triples)
        kept = filter_description(items, scope, subject_iri, graph_iris)
        if kept is None:
            self._deny(caller, ISHARE_READ, subject_iri, scope, "no policy permits it", None, {})
            types = {
                t.object.value
                for t in items
                if t.subject.value == subject_iri and t.predicate.value == RDF_TYPE
            }
            # Explain against the graphs that hold the resource, not every graph of the node.
            holding = sorted(
                {
                    t.graph_name.value
                    for t in items
                    if isinstance(t, ox.Quad) and isinstance(t.graph_name, ox.NamedNode)
                }
            ) or list(graph_iris)
            raise AccessDenied(
                "no policy permits reading this resource",
                self.explain(
                    party,
                    resource=subject_iri,
                    graph_iris=holding,
                    types=types,
                    context=_context(caller),
                ),
            )
        self._permit(caller, ISHARE_READ, subject_iri, scope, f"{len(kept)} triples", None, {})
        return kept

    def query(
        self,
        store: Store,
        caller: Caller | str,
        sparql: str,
        *,
        data_version: Hashable | None = None,
        timeout: float | None = None,
        evidence: Sequence[Policy] = (),
        decisions: list[Decision] | None = None,
    ) -> Any:
        """Run a SPARQL query scoped to `caller`; AccessDenied (403) if it may read nothing.

        With `decisions`, the decision is added there for the caller to audit (with its own
        entries, in one write) instead of going to the audit hook now.
        """
        scope = self.query_scope(caller, evidence, decisions)
        return self.run_scoped(store, sparql, scope, data_version=data_version, timeout=timeout)

    def query_scope(
        self,
        caller: Caller | str,
        evidence: Sequence[Policy] = (),
        decisions: list[Decision] | None = None,
    ) -> Scope:
        """The decision on a SPARQL query (audited): the caller's scope, AccessDenied if empty."""
        party = _party(caller)
        scope = self.scope_for(party, DSGO_QUERY, evidence, context=_context(caller))
        if scope.is_empty:
            self._deny(caller, DSGO_QUERY, "sparql", scope, "no policy applies", decisions, {})
            raise AccessDenied(
                "no policy permits querying this node",
                self.explain(party, context=_context(caller)),
            )
        self._permit(caller, DSGO_QUERY, "sparql", scope, "scoped query", decisions, {})
        return scope

    def run_scoped(
        self,
        store: Store,
        sparql: str | QueryOutline,
        scope: Scope,
        *,
        data_version: Hashable | None = None,
        timeout: float | None = None,
        build: bool = True,
    ) -> Any:
        """Run `sparql` over exactly what an already-decided `scope` permits (scoped_query)."""
        graphs = self.dataset_graphs(store, data_version)
        return scoped_query(
            store,
            sparql,
            scope,
            dataset_graphs=graphs,
            cache=self.materialised,
            data_version=data_version,
            timeout=timeout,
            merges=self.merges,
            build=build,
        )

    def dataset_graphs(self, store: Store, data_version: Hashable | None = None) -> list[str]:
        """The store's dataset graphs `{base}/dataset/{name}` (cached per data version)."""
        if (
            data_version is not None
            and self._graphs is not None
            and self._graphs[0] == data_version
        ):
            return self._graphs[1]
        found = [info.graph for info in store.datasets()]
        graphs = sorted(g for g in found if self._dataset_re.fullmatch(g))
        if data_version is not None:
            self._graphs = (data_version, graphs)
        return graphs

    def explain(
        self,
        caller: str,
        *,
        resource: str | None = None,
        dataset: str | None = None,
        graph_iris: Sequence[str] = (),
        types: Iterable[str] = (),
        action: str = ISHARE_READ,
        context: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Why `caller` may or may not read a target: only policies that apply to the caller.

        Policies with conditions (iSHARE 3.0) show each condition's outcome in `context`.
        """
        now = self.clock()
        context = dict(context or {})
        records = self.policies.list(subject=caller)
        graphs = list(graph_iris) or ([self._dataset_iri(dataset)] if dataset else [])
        types = set(types)
        considered = [
            _explain_policy(
                r, caller, now, self.node_party_id, action, resource, graphs, types, context
            )
            for r in records
        ]
        permit = next((c for c in considered if c["rule"] == "Permit"), None)
        if permit is not None:
            decision, rule = "Permit", f"policy {permit['id']}: Permit rule"
        else:
            deny = next((c for c in considered if c["rule"].startswith("Deny")), None)
            decision = "Deny"
            rule = (
                f"policy {deny['id']}: {deny['rule']}"
                if deny
                else "no policy applies (deny by default)"
            )
        return {
            "decision": decision,
            "party": caller,
            "action": action,
            "target": resource or (graphs[0] if graphs else "sparql"),
            "rule": rule,
            "context": context,
            "policies": considered,
        }

    def _dataset_iri(self, name: str) -> str:
        return name if "/" in name else dataset_iri(self.base_iri, name)


# --- helpers --------------------------------------------------------------------------------


def _party(caller: Caller | str) -> str:
    return caller.party_id if isinstance(caller, Caller) else caller


def _context(caller: Caller | str) -> dict[str, str]:
    return dict(caller.context) if isinstance(caller, Caller) else {}


def _staff_role_needed(action: str) -> str | None:
    """The role a person of the owner's party needs for `action` (None: any of its staff)."""
    return {ADMIN: "steward", READ_AUDIT: "auditor"}.get(action)


def _person_role(caller: Caller | str, owner: str) -> str | None:
    """A logged-in person of the owner's party: their role ("" if none); None otherwise.

    The node acting as itself and bearer tokens carry no person and keep the owner's rights.
    """
    if not isinstance(caller, Caller) or caller.person is None or caller.party_id != owner:
        return None
    return caller.role or ""


def _deny_hits(d: DenyRule, s: str, p: str | None, g: str, types: Iterable[str]) -> bool:
    if d.datasets is not None and g not in d.datasets:
        return False
    if d.subjects is not None and s not in d.subjects:
        return False
    if d.rdf_type is not None and d.rdf_type not in types:
        return False
    if d.ids_any is not None and s not in d.ids_any and g not in d.ids_any:
        return False
    if d.attributes is not None and (p is None or p not in d.attributes):
        return False
    return True


def _whole_graphs(scope: Scope, dataset_graphs: Sequence[str]) -> list[str]:
    if WILDCARD in scope.whole_datasets:
        return list(dataset_graphs)
    return [g for g in dataset_graphs if g in scope.whole_datasets]


def _materialise(store: Store, scope: Scope, dataset_graphs: Sequence[str]) -> ox.Store:
    """An in-memory store holding exactly the triples `scope` permits, in their graphs."""
    mem = ox.Store()
    whole = set(_whole_graphs(scope, dataset_graphs))
    for g in sorted(whole):
        mem.extend(store.quads(graphs=[g]))
    type_maps: dict[str, dict[str, set[str]]] = {}
    for grant in scope.partial:
        graphs = [g for g in dataset_graphs if g not in whole]
        if grant.datasets is not None:
            graphs = [g for g in graphs if g in grant.datasets]
        for g in graphs:
            if g not in type_maps:
                type_maps[g] = _types_in(store, g)
            types = type_maps[g]
            for quad in _candidates(store, grant, g, types):
                s = quad.subject.value
                if grant_allows(grant, s, quad.predicate.value, g, types.get(s, ())):
                    mem.add(quad)
    return mem


def _types_in(store: Store, graph: str) -> dict[str, set[str]]:
    types: dict[str, set[str]] = {}
    for quad in store.quads(predicate=RDF_TYPE, graphs=[graph]):
        if isinstance(quad.object, ox.NamedNode):
            types.setdefault(quad.subject.value, set()).add(quad.object.value)
    return types


def _candidates(
    store: Store, grant: PartialGrant, g: str, types: dict[str, set[str]]
) -> Iterable[ox.Quad]:
    if grant.subjects is not None:
        for s in sorted(grant.subjects):
            yield from store.quads(subject=s, graphs=[g])
    elif grant.rdf_type is not None:
        for s in sorted(s for s, ts in types.items() if grant.rdf_type in ts):
            yield from store.quads(subject=s, graphs=[g])
    elif grant.attributes is not None:
        for p in sorted(grant.attributes):
            yield from store.quads(predicate=p, graphs=[g])
    else:
        yield from store.quads(graphs=[g])


def _valid_until(records: Sequence[Policy], now: float) -> float:
    """The next moment one of these policies starts or ends applying."""
    edges = [r.not_on_or_after for r in records if r.not_on_or_after > now]
    edges += [r.not_before for r in records if r.not_before > now]
    return float(min(edges)) if edges else float("inf")


def _explain_policy(
    record: Policy,
    caller: str,
    now: float,
    node_party_id: str,
    action: str,
    resource: str | None,
    graphs: list[str],
    types: set[str],
    context: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """How one of the caller's policies bears on the target: the rule that decided, if any."""
    info: dict[str, Any] = {
        "id": record.id,
        "policyIssuer": record.issuer,
        "notBefore": record.not_before,
        "notOnOrAfter": record.not_on_or_after,
        "active": record.active(now),
        "rule": "not applicable",
    }
    if record.issuer != node_party_id:
        info["rule"] = "not applicable: issued by another party"
        return info
    if not info["active"]:
        info["rule"] = "not applicable: outside its time window"
        return info
    conditions = explain_conditions(record, context or {})
    if conditions:
        info["conditions"] = conditions
    scope = decide(
        caller, [record], now, service_provider=node_party_id, action=action, context=context
    )
    unrestricted = decide(
        caller,
        [_without_denies(record)],
        now,
        service_provider=node_party_id,
        action=action,
        context=context,
    )
    if action == FEDERATE:
        reaches = lambda sc: sc.reaches_service(resource or "")  # noqa: E731
    else:
        reaches = lambda sc: _scope_reaches(sc, resource, graphs, types)  # noqa: E731
    if reaches(scope):
        info["rule"] = "Permit"
    elif reaches(unrestricted):
        info["rule"] = "Deny rule"
    elif conditions and any(not c["holds"] for c in conditions if c["rule"] == "Permit"):
        info["rule"] = "not applicable: its conditions do not hold in the request context"
    info["grants"] = [asdict(g) for g in scope.partial] + [
        {"datasets": sorted(scope.whole_datasets)}
    ]
    info["grants"] = _jsonable(info["grants"])
    return info


def _without_denies(record: Policy) -> Policy:
    sets = []
    for pset in record.evidence.get("policySets", ()):
        policies = [{**p, "rules": list(p.get("rules", ()))[:1]} for p in pset.get("policies", ())]
        sets.append({**pset, "policies": policies})
    return Policy(record.id, {**record.evidence, "policySets": sets})


def _scope_reaches(scope: Scope, resource: str | None, graphs: list[str], types: set[str]) -> bool:
    if scope.is_empty:
        return False
    if not graphs:
        return resource is None
    for g in graphs:
        if WILDCARD in scope.whole_datasets or g in scope.whole_datasets:
            return True
        for grant in scope.partial:
            if resource is None:
                if grant.datasets is None or g in grant.datasets:
                    return True
            elif grant_allows(grant, resource, None, g, types):
                return True
    return False


def _jsonable(value: Any) -> Any:
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if v not in (None, (), frozenset())}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


_IRI_OK = re.compile(r'[^<>"{}|^`\\\x00-\x20]+')
