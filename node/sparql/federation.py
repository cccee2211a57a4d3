"""SPARQL 1.1 federated query (SERVICE): remote parts evaluated at their endpoints, joined locally.

Each SERVICE group is sent to its endpoint with the local bindings of its join variables pushed
along in VALUES batches; the remote rows replace the group as inline VALUES and the rewritten
query runs on the local store, so aggregates, OPTIONAL and ORDER BY stay pyoxigraph's job.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import httpx
import pyoxigraph as ox

from node.errors import NodeError
from node.sparql.outline import QueryOutline, outline
from node.sparql.rewrite import splice
from node.sparql.text import (
    IRI,
    PUNCT,
    VAR,
    WORD,
    SparqlSyntaxError,
    Token,
    expand_iri,
    matching,
    mentions_service,
    variable_name,
)

Term = ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple
RESULTS_JSON = "application/sparql-results+json"
GRACE = 0.5
SKOLEM = "urn:dsgo:federation:bnode:"
_UNSAFE_IN_FILTER = {"EXISTS", "RAND", "NOW", "UUID", "STRUUID", "BNODE"}


@dataclass
class RemoteSolutions:
    """What an endpoint answered: variable names and rows of terms (None where unbound)."""

    variables: list[str]
    rows: list[list[Term | None]]


Fetch = Callable[[str, str, float], Any]
"""fetch(endpoint, query, timeout) -> RemoteSolutions or pyoxigraph QuerySolutions; raises on failure."""


@dataclass
class SourceReport:
    """How one SERVICE clause went: requests made, rows received, and the error if it failed."""

    endpoint: str
    silent: bool
    requests: int = 0
    rows: int = 0
    bindings_sent: int = 0
    error: str | None = None
    elapsed_ms: float = 0.0


@dataclass
class FederatedResult:
    """The local engine's answer to the rewritten query, and a report per SERVICE clause."""

    result: Any
    sources: list[SourceReport] = field(default_factory=list)
    query: str = ""

    @property
    def requests(self) -> int:
        """HTTP requests made to remote endpoints in total."""
        return sum(s.requests for s in self.sources)


class FederationError(NodeError):
    """Base for federation errors (HTTP 400 `invalid_query` unless said otherwise)."""

    status = 400
    code = "invalid_query"


class InvalidQuery(FederationError):
    """The query text cannot be read (HTTP 400)."""


class UnsupportedService(FederationError):
    """A SERVICE form this engine does not evaluate (variable endpoint, nesting, ...) (HTTP 400)."""


class ServiceNotAllowed(FederationError):
    """The query names an endpoint this node does not call (HTTP 403)."""

    status = 403
    code = "service_not_allowed"

    def __init__(self, endpoint: str):
        super().__init__(f"SERVICE endpoint not allowed: {endpoint}", endpoint=endpoint)
        self.endpoint = endpoint


class RemoteSourceError(FederationError):
    """A remote endpoint failed for a non-SILENT SERVICE (HTTP 502)."""

    status = 502
    code = "remote_source_failed"

    def __init__(self, endpoint: str, reason: str):
        super().__init__(reason, endpoint=endpoint)
        self.endpoint = endpoint
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.endpoint}: {self.reason}"


class RemoteTimeout(RemoteSourceError):
    """A remote endpoint did not answer within the per-call timeout (HTTP 504)."""

    status = 504
    code = "remote_source_timeout"


class RemoteCallError(Exception):
    """Raised by a fetch function for an answer that is not a usable result (bad status, truncated)."""


def evaluate_federated(
    query: str,
    *,
    local: Callable[[str], Any],
    fetch: Fetch,
    batch_size: int = 100,
    timeout: float = 10.0,
    parallel: int = 4,
    max_remote_rows: int = 100_000,
    endpoint_allowed: Callable[[str], bool] | None = None,
    reports: list[SourceReport] | None = None,
    plan: Plan | None = None,
    deadline: float | None = None,
    final: Callable[[str], Any] | None = None,
) -> FederatedResult:
    """Evaluate `query`, calling `fetch` for each SERVICE and `local` for everything else.

    `reports` (if given) receives a report per SERVICE as it is tried, failed ones too.
    `deadline` (time.monotonic()) bounds all remote calls together: a SERVICE tried after it
    is the named RemoteTimeout, so a query with several hung sources still names one. `final`
    evaluates the rewritten query (default `local`): the caller may run it elsewhere, e.g. in
    an engine slot that the remote waits did not hold.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if plan is None:  # a caller that planned already passes its plan
        try:
            plan = plan_query(query)
        except SparqlSyntaxError as exc:
            raise InvalidQuery(f"cannot read the query: {exc}") from None
    final = final or local
    if not plan.services:
        return FederatedResult(final(query), [], query)
    for service in plan.services:
        if endpoint_allowed is not None and not endpoint_allowed(service.endpoint):
            raise ServiceNotAllowed(service.endpoint)
    replacements: list[tuple[int, int, str]] = []
    reports = reports if reports is not None else []
    pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="federation")
    try:
        for service in plan.services:
            report = SourceReport(service.endpoint, service.silent)
            reports.append(report)
            started = time.perf_counter()
            try:
                budget = _budget(service.endpoint, timeout, deadline)
                table = _fetch_service(
                    plan, service, local, fetch, pool, batch_size, budget, max_remote_rows, report
                )
                replacement = "{ " + inline_values(table) + " }"
            except RemoteSourceError as exc:
                report.error = exc.reason
                if not service.silent:
                    raise
                replacement = "{ }"  # SILENT: one solution with no bindings
            finally:
                report.elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
            replacements.append((service.start, service.end, replacement))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a hung fetch must not hold the query
    rewritten = splice(query, replacements)
    return FederatedResult(final(rewritten), reports, rewritten)


def _budget(endpoint: str, timeout: float, deadline: float | None) -> float:
    """The time one SERVICE may take: the per-call timeout, cut to what is left of the deadline."""
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0.05:
        raise RemoteTimeout(endpoint, "no answer within 0 s: no time left before the deadline")
    return min(timeout, left)


def materialise(answer: Any) -> RemoteSolutions:
    """An engine's solutions (or RemoteSolutions) as plain rows, read in the calling thread.

    pyoxigraph's solutions are lazy and may not cross threads: whoever evaluates reads them.
    """
    return _solutions(answer)


def has_service(query: str | QueryOutline) -> bool:
    """True when the query uses SERVICE as a keyword (not inside a string, IRI or comment)."""
    if isinstance(query, str) and not mentions_service(query):
        return False
    return outline(query).has_service


def inline_values(table: RemoteSolutions) -> str:
    """The rows as a SPARQL VALUES block (UNDEF for unbound)."""
    head = " ".join("?" + v for v in table.variables)
    body = "\n".join("(" + " ".join(sparql_term(t) for t in row) + ")" for row in table.rows)
    return f"VALUES ({head}) {{\n{body}\n}}"


def sparql_term(term: Term | None) -> str:
    """A term in SPARQL syntax for a VALUES block."""
    if term is None:
        return "UNDEF"
    if isinstance(term, ox.BlankNode | ox.Triple):
        raise RemoteCallError("blank nodes and triple terms cannot be written in VALUES")
    return str(term)


def parse_results(body: bytes, media_type: str | None) -> RemoteSolutions:
    """A SPARQL results document (JSON, XML or TSV) as RemoteSolutions."""
    media = (media_type or RESULTS_JSON).split(";")[0].strip().lower()
    formats = {
        "application/sparql-results+json": ox.QueryResultsFormat.JSON,
        "application/json": ox.QueryResultsFormat.JSON,
        "application/sparql-results+xml": ox.QueryResultsFormat.XML,
        "text/tab-separated-values": ox.QueryResultsFormat.TSV,
    }
    if media not in formats:
        raise RemoteCallError(f"unexpected response type {media!r}")
    try:
        parsed = ox.parse_query_results(body, format=formats[media])
    except (SyntaxError, ValueError, OSError) as exc:
        raise RemoteCallError(f"unreadable SPARQL results: {exc}") from None
    if isinstance(parsed, ox.QueryBoolean):
        raise RemoteCallError("expected solutions, got a boolean")
    return _solutions(parsed)


def http_fetch(client: httpx.Client, headers: dict[str, str] | None = None) -> Fetch:
    """A fetch for plain SPARQL Protocol endpoints: form POST, JSON results, per-call timeout."""

    def fetch(endpoint: str, query: str, timeout: float) -> RemoteSolutions:
        response = client.post(
            endpoint,
            data={"query": query},
            headers={"Accept": RESULTS_JSON, **(headers or {})},
            timeout=timeout,
        )
        return check_response(response.status_code, response.headers, response.content)

    return fetch


def check_response(status: int, headers: Any, body: bytes) -> RemoteSolutions:
    """Results from an HTTP answer; RemoteCallError for a non-200 or a result the remote cut short."""
    if status != 200:  # the remote's body is not passed on: it is not ours to reflect
        raise RemoteCallError(f"answered HTTP {status}")
    truncated = headers.get("dsgo-result-truncated")
    if truncated:
        raise RemoteCallError(f"remote truncated its result ({truncated})")
    return parse_results(body, headers.get("content-type"))


# --- query plan -------------------------------------------------------------------------------


@dataclass
class Triples:
    start: int
    end: int
    variables: set[str]


@dataclass
class Filter:
    start: int
    end: int
    variables: set[str]
    pushable: bool


@dataclass
class Group:
    start: int
    end: int
    elements: list[Any] = field(default_factory=list)


@dataclass
class Child:
    """A nested group and how it is entered: group, union, optional, minus, graph, exists, subquery."""

    kind: str
    group: Group
    graph: str | None = None


@dataclass
class Service:
    start: int
    end: int
    silent: bool
    endpoint: str
    body: str
    bound: set[str]  # variables every remote solution binds (top-level triples of the body)
    context: str = ""
    shared: list[str] = field(default_factory=list)


@dataclass
class Plan:
    query: str
    prologue: str
    dataset: str
    services: list[Service]


def plan_query(query: str | QueryOutline) -> Plan:
    """Find the SERVICE groups of `query` and, for each, the local pattern that binds its join variables."""
    read = outline(query)
    query, tokens = read.text, list(read.tokens)
    declared, base = read.prefixes, read.base
    form = read.form_index
    found = read.services
    if form is None:
        if found:
            raise UnsupportedService("SERVICE is only evaluated in SELECT/CONSTRUCT/ASK/DESCRIBE")
        return Plan(query, "", "", [])
    prologue = query[: tokens[form].start]
    where, dataset = _where_clause(tokens, form, query)
    if where is None:
        if found:
            raise UnsupportedService("SERVICE outside the WHERE clause is not supported")
        return Plan(query, prologue, dataset, [])
    parser = _Parser(query, tokens, declared, base)
    root, _ = parser.group(where)
    services: list[Service] = []
    _collect(root, [(root, "root", None)], services, query)
    if len(services) != found:
        raise UnsupportedService(
            "SERVICE is only supported as a graph pattern (not inside expressions or templates)"
        )
    return Plan(query, prologue, dataset, services)


def _where_clause(tokens: list[Token], form: int, query: str) -> tuple[int | None, str]:
    """Index of the WHERE group's '{', and the text of the FROM clauses."""
    i = form + 1
    if tokens[form].is_word("CONSTRUCT") and i < len(tokens) and tokens[i].is_punct("{"):
        i = matching(tokens, i) + 1
    dataset: list[str] = []
    while i < len(tokens):
        tok = tokens[i]
        if tok.is_punct("("):
            i = matching(tokens, i) + 1
            continue
        if tok.is_word("FROM"):
            j = i + 2 if i + 1 < len(tokens) and tokens[i + 1].is_word("NAMED") else i + 1
            if j < len(tokens):
                dataset.append(query[tok.start : tokens[j].end])
            i = j + 1
            continue
        if tok.is_punct("{"):
            return i, " ".join(dataset)
        i += 1
    return None, " ".join(dataset)


class _Parser:
    """Reads a group graph pattern into Groups, Triples, Filters, Children and Services."""

    def __init__(self, query: str, tokens: list[Token], declared: dict[str, str], base: str | None):
        self.query = query
        self.tokens = tokens
        self.declared = declared
        self.base = base

    def group(self, i: int) -> tuple[Group, int]:
        """Parse the group opened at token `i`; returns it and the index after its '}'."""
        toks = self.tokens
        close = matching(toks, i)
        group = Group(toks[i].start, toks[close].end)
        j = i + 1
        if j < close and toks[j].is_word("SELECT"):
            group.elements.append(self._subquery(j, close))
            return group, close + 1
        run: list[Token] = []

        def flush() -> None:
            if run:
                group.elements.append(
                    Triples(
                        run[0].start, run[-1].end, {variable_name(t) for t in run if t.kind == VAR}
                    )
                )
                run.clear()

        while j < close:
            tok = toks[j]
            if tok.is_word("OPTIONAL", "MINUS"):
                flush()
                sub, j = self.group(self._expect(j + 1, "{"))
                group.elements.append(Child(tok.text.lower(), sub))
            elif tok.is_word("GRAPH"):
                flush()
                term = toks[j + 1].text
                sub, j = self.group(self._expect(j + 2, "{"))
                group.elements.append(Child("graph", sub, term))
            elif tok.is_word("SERVICE"):
                flush()
                service, j = self._service(j)
                group.elements.append(service)
            elif tok.is_word("FILTER"):
                flush()
                element, j = self._filter(j)
                group.elements.append(element)
            elif tok.is_word("BIND"):
                flush()
                j = matching(toks, self._expect(j + 1, "(")) + 1
            elif tok.is_word("VALUES"):
                flush()
                k = j + 1
                if toks[k].is_punct("("):
                    k = matching(toks, k) + 1
                else:
                    k += 1
                j = matching(toks, self._expect(k, "{")) + 1
            elif tok.is_punct("{"):
                flush()
                subs = []
                sub, j = self.group(j)
                subs.append(sub)
                while j < close and toks[j].is_word("UNION"):
                    sub, j = self.group(self._expect(j + 1, "{"))
                    subs.append(sub)
                kind = "union" if len(subs) > 1 else "group"
                group.elements.extend(Child(kind, s) for s in subs)
            elif tok.is_punct("."):
                if run:
                    run.append(tok)
                j += 1
            elif tok.kind == PUNCT and tok.text in ("(", "["):
                end = matching(toks, j)
                run.extend(toks[j : end + 1])
                j = end + 1
            else:
                run.append(tok)
                j += 1
        flush()
        return group, close + 1

    def _expect(self, i: int, text: str) -> int:
        if i >= len(self.tokens) or not self.tokens[i].is_punct(text):
            where = self.tokens[i].start if i < len(self.tokens) else len(self.query)
            raise SparqlSyntaxError(f"expected '{text}' at offset {where}")
        return i

    def _subquery(self, j: int, close: int) -> Child:
        toks = self.tokens
        k = j + 1
        while k < close and not toks[k].is_punct("{"):
            k = matching(toks, k) + 1 if toks[k].is_punct("(") else k + 1
        if k >= close:
            raise SparqlSyntaxError(f"sub-SELECT at offset {toks[j].start} has no WHERE group")
        inner, _ = self.group(k)
        return Child("subquery", inner)

    def _filter(self, j: int) -> tuple[Any, int]:
        toks = self.tokens
        k = j + 1
        if toks[k].is_word("NOT") and k + 1 < len(toks) and toks[k + 1].is_word("EXISTS"):
            k += 1
        if toks[k].is_word("EXISTS"):
            sub, end = self.group(self._expect(k + 1, "{"))
            return Child("exists", sub), end
        if toks[k].kind in (WORD, IRI) and k + 1 < len(toks) and toks[k + 1].is_punct("("):
            k += 1
        end = matching(toks, self._expect(k, "("))
        inner = toks[k : end + 1]
        pushable = not any(
            t.is_punct("{") or (t.kind == WORD and t.text.upper() in _UNSAFE_IN_FILTER)
            for t in toks[j : end + 1]
        )
        variables = {variable_name(t) for t in inner if t.kind == VAR}
        return Filter(toks[j].start, toks[end].end, variables, pushable), end + 1

    def _service(self, j: int) -> tuple[Service, int]:
        toks = self.tokens
        k = j + 1
        silent = toks[k].is_word("SILENT")
        if silent:
            k += 1
        target = toks[k]
        if target.kind == VAR:
            raise UnsupportedService(
                f"SERVICE {target.text}: a variable endpoint is not supported; name the endpoint IRI"
            )
        if target.kind not in (IRI, WORD):
            raise SparqlSyntaxError(
                f"expected an endpoint IRI after SERVICE at offset {target.start}"
            )
        endpoint = expand_iri(target, self.declared, self.base)
        if not endpoint.startswith(("http://", "https://")):
            raise UnsupportedService(f"SERVICE endpoint must be an http(s) URL: {endpoint}")
        open_ = self._expect(k + 1, "{")
        close = matching(toks, open_)
        body_tokens = toks[open_ + 1 : close]
        if any(t.is_word("SERVICE") for t in body_tokens):
            raise UnsupportedService(f"SERVICE nested inside SERVICE <{endpoint}> is not supported")
        body = self.query[toks[open_].end : toks[close].start]
        parsed, _ = self.group(open_)
        certain = set().union(*(e.variables for e in parsed.elements if isinstance(e, Triples)))
        return Service(toks[j].start, toks[close].end, silent, endpoint, body, certain), close + 1


def _collect(
    group: Group,
    path: list[tuple[Group, str, Any]],
    out: list[Service],
    query: str,
) -> None:
    """Depth-first walk; each Service gets its join context from the groups around it."""
    for element in group.elements:
        if isinstance(element, Service):
            element.context, context_vars = _context(path, query)
            element.shared = sorted(element.bound & context_vars)
            out.append(element)
        elif isinstance(element, Child):
            _collect(element.group, path + [(element.group, element.kind, element)], out, query)


def _context(path: list[tuple[Group, str, Any]], query: str) -> tuple[str, set[str]]:
    """A conjunctive pattern whose solutions cover every local binding the SERVICE can join with.

    Climbs from the SERVICE's group while the way in is monotone (group, UNION branch, GRAPH);
    at OPTIONAL / MINUS only the triples before it count, and EXISTS / sub-SELECT stop the climb.
    """
    level = len(path) - 1
    text, variables = _level(path[level][0], None, query)
    while True:
        _, entry, child = path[level]
        if entry in ("root", "exists", "subquery"):
            break
        parent = path[level - 1][0]
        before = child if entry in ("optional", "minus") else None
        outer, outer_vars = _level(parent, before, query)
        inner = f"GRAPH {child.graph} {{ {text} }}" if entry == "graph" else f"{{ {text} }}"
        text = f"{outer}\n{inner}" if outer else inner
        variables |= outer_vars
        level -= 1
        if before is not None:
            break
    return "{ " + text + " }", variables


def _level(group: Group, before: Any, query: str) -> tuple[str, set[str]]:
    """The triples of one group (those before `before`, if given) and the filters over them."""
    triples: list[Triples] = []
    for element in group.elements:
        if element is before:
            break
        if isinstance(element, Triples):
            triples.append(element)
    variables: set[str] = set().union(*(t.variables for t in triples)) if triples else set()
    parts = [query[t.start : t.end].strip().rstrip(".").rstrip() for t in triples]
    text = " .\n".join(p for p in parts if p)
    filters = [
        query[f.start : f.end]
        for f in group.elements
        if isinstance(f, Filter) and f.pushable and f.variables <= variables
    ]
    if filters:
        text = (text + " .\n" if text else "") + "\n".join(filters)
    return text, variables


# --- evaluation -------------------------------------------------------------------------------


def _fetch_service(
    plan: Plan,
    service: Service,
    local: Callable[[str], Any],
    fetch: Fetch,
    pool: ThreadPoolExecutor,
    batch_size: int,
    timeout: float,
    max_rows: int,
    report: SourceReport,
) -> RemoteSolutions:
    """Remote rows for one SERVICE: bindings pushed in VALUES batches when there are join variables."""
    if not service.shared:
        queries = [f"{plan.prologue}SELECT * WHERE {{\n{service.body}\n}}"]
    else:
        bindings = _local_bindings(plan, service, local)
        report.bindings_sent = len(bindings)
        queries = [
            _remote_query(plan, service, bindings[k : k + batch_size])
            for k in range(0, len(bindings), batch_size)
        ]
    calls = [_RemoteCall(pool, fetch, service.endpoint, q, timeout) for q in queries]
    report.requests = len(queries)
    variables: list[str] | None = None
    rows: list[list[Term | None]] = []
    try:
        for call in calls:
            table = call.result()
            variables = _merge_variables(variables, table, service.endpoint)
            rows.extend(table.rows)
            if len(rows) > max_rows:
                raise RemoteSourceError(service.endpoint, f"more than {max_rows} rows returned")
    except RemoteSourceError:
        for call in calls:
            call.future.cancel()
        raise
    report.rows = len(rows)
    if variables is None:  # no local binding to join with: nothing can match
        variables = sorted(service.bound)
    return RemoteSolutions(variables, _skolemised(rows, service.endpoint))


class _RemoteCall:
    """One fetch on the pool; its timeout counts from when it starts, not from when it was queued."""

    def __init__(
        self, pool: ThreadPoolExecutor, fetch: Fetch, endpoint: str, query: str, timeout: float
    ):
        self.endpoint = endpoint
        self.timeout = timeout
        self.started: float | None = None
        self.future: Future = pool.submit(self._run, fetch, query)

    def _run(self, fetch: Fetch, query: str) -> RemoteSolutions:
        """In the worker thread: pyoxigraph results may not cross threads, so read them here."""
        self.started = time.monotonic()
        answer = fetch(self.endpoint, query, self.timeout)
        try:
            return _solutions(answer)
        except (TypeError, AttributeError, ValueError) as exc:
            raise RemoteCallError(f"unusable answer: {exc}") from None

    def result(self) -> RemoteSolutions:
        """The answer, or the RemoteSourceError that names this endpoint."""
        while True:
            started = self.started
            wait = 0.05 if started is None else started + self.timeout + GRACE - time.monotonic()
            try:
                return self.future.result(timeout=max(wait, 0.0))
            except FutureTimeout:
                if started is not None:
                    self.future.cancel()
                    raise RemoteTimeout(
                        self.endpoint, f"no answer within {self.timeout:g} s"
                    ) from None
            except (httpx.TimeoutException, TimeoutError) as exc:
                raise RemoteTimeout(
                    self.endpoint, f"no answer within {self.timeout:g} s ({type(exc).__name__})"
                ) from None
            except httpx.ConnectError as exc:
                raise RemoteSourceError(self.endpoint, f"cannot connect: {exc}") from None
            except RemoteSourceError:
                raise
            except Exception as exc:  # any failure of a caller-supplied fetch is this source's
                raise RemoteSourceError(self.endpoint, str(exc) or type(exc).__name__) from None


def _solutions(answer: Any) -> RemoteSolutions:
    if isinstance(answer, RemoteSolutions):
        return answer
    if isinstance(answer, ox.QuerySolutions) or not hasattr(answer, "rows"):
        names = [v.value for v in answer.variables]
        width = len(names)
        return RemoteSolutions(names, [[s[i] for i in range(width)] for s in answer])
    names = [v if isinstance(v, str) else v.value for v in answer.variables]
    return RemoteSolutions(names, [list(r) for r in answer.rows])


def _merge_variables(
    known: list[str] | None, table: RemoteSolutions, endpoint: str
) -> list[str] | None:
    if known is None or known == table.variables:
        return list(table.variables)
    if set(known) != set(table.variables):
        raise RemoteSourceError(endpoint, "batches answered with different variables")
    order = [table.variables.index(v) for v in known]
    table.rows = [[row[i] for i in order] for row in table.rows]
    return known


def _skolemised(rows: list[list[Term | None]], endpoint: str) -> list[list[Term | None]]:
    """Remote blank nodes as IRIs unique to the endpoint (VALUES cannot hold blank nodes)."""
    label = hashlib.sha256(endpoint.encode()).hexdigest()[:12]
    out = []
    for row in rows:
        if any(isinstance(t, (ox.BlankNode, ox.Triple)) for t in row):
            if any(isinstance(t, ox.Triple) for t in row):
                raise RemoteSourceError(endpoint, "triple terms cannot be joined across endpoints")
            row = [
                ox.NamedNode(f"{SKOLEM}{label}:{t.value}") if isinstance(t, ox.BlankNode) else t
                for t in row
            ]
        out.append(row)
    return out


def _local_bindings(plan: Plan, service: Service, local: Callable[[str], Any]) -> list[list[Term]]:
    """Distinct local values of the join variables (rows holding a local blank node are left out)."""
    head = " ".join("?" + v for v in service.shared)
    dataset = f"{plan.dataset}\n" if plan.dataset else ""
    query = f"{plan.prologue}SELECT DISTINCT {head}\n{dataset}WHERE {service.context}"
    result = local(query)
    table = _solutions(result)
    order = [table.variables.index(v) for v in service.shared]
    rows = []
    for row in table.rows:
        picked = [row[i] for i in order]
        if all(t is not None and not isinstance(t, (ox.BlankNode, ox.Triple)) for t in picked):
            rows.append(picked)
    return rows


def _remote_query(plan: Plan, service: Service, rows: Sequence[Sequence[Term]]) -> str:
    """The SERVICE pattern joined with one batch of bindings; the pattern keeps its own scope."""
    values = inline_values(RemoteSolutions(list(service.shared), [list(r) for r in rows]))
    return f"{plan.prologue}SELECT * WHERE {{\n{{ {service.body} }}\n{values}\n}}"
