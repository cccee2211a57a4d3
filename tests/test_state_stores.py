"""Each shared-state store: the PostgreSQL one behaves as the SQLite one (parametrised).

"Two hosts" are two store instances with their own connections (SQLite: the same file;
PostgreSQL: one schema of a real server started for this module with initdb/pg_ctl).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from trust.access_token import AccessTokenIssuer, AccessTokenVerifier
from trust.delegation import DSGO_DATASET
from trust.errors import InvalidRequest, InvalidToken, NotFound, ReplayError
from trust.ishare_jwt import b64url_encode, parse_compact
from trust.pg import PgSettings, PgState, StateUnavailable
from trust.pki import create_dev_ca, issue_party_certificate
from trust.policy_store import PolicyNotFound, PolicyStore
from trust.policy_store_pg import PostgresPolicyStore
from trust.registry import Registry
from trust.registry_pg import PostgresRegistry
from trust.replay import ReplayCache
from trust.replay_pg import PostgresReplayCache
from trust.token_keys import RETAIN_MARGIN, PostgresTokenKeys, SqliteTokenKeys, thumbprint

BASE = "http://127.0.0.1:8101"
OWNER = "EU.EORI.NL000000003"
ABC = "EU.EORI.NL000000001"
NOW = 1_700_000_000.0
BACKENDS = ["sqlite", "postgresql"]


class Hosts:
    """Opens stores of one backend as separate hosts would: same data, own connections."""

    def __init__(self, backend: str, tmp: Path, pg_url: str | None) -> None:
        self.backend = backend
        self.tmp = tmp
        self.pg = PgSettings(pg_url, schema=f"t{uuid.uuid4().hex[:12]}") if pg_url else None

    def state(self) -> PgState:
        assert self.pg is not None
        return PgState(self.pg)

    def replay(self, **kw: Any):
        if self.backend == "sqlite":
            return ReplayCache(self.tmp / "replay.sqlite", **kw)
        return PostgresReplayCache(self.state(), **kw)

    def keys(self, **kw: Any):
        if self.backend == "sqlite":
            return SqliteTokenKeys(self.tmp / "keys.sqlite", **kw)
        return PostgresTokenKeys(self.state(), **kw)

    def policies(self, clock=lambda: NOW) -> PolicyStore:
        if self.backend == "sqlite":
            return PolicyStore(self.tmp / "p.sqlite", issuer=OWNER, base_iri=BASE, clock=clock)
        return PostgresPolicyStore(self.state(), issuer=OWNER, base_iri=BASE, clock=clock)

    def registry(self) -> Registry:
        if self.backend == "sqlite":
            return Registry(self.tmp / "registry.sqlite")
        return PostgresRegistry(self.state())


@pytest.fixture(params=BACKENDS)
def hosts(request, tmp_path) -> Hosts:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    return Hosts(request.param, tmp_path, url)


# --- replay cache ------------------------------------------------------------------------------


def test_replay_second_use_refused_on_the_other_host(hosts) -> None:
    one, two = hosts.replay(), hosts.replay()
    one.check_and_store("token", ABC, "j1", exp=NOW + 30, now=NOW)
    with pytest.raises(ReplayError) as e:
        two.check_and_store("token", ABC, "j1", exp=NOW + 30, now=NOW + 1)
    assert e.value.check == "jti_replayed" and e.value.error == "invalid_client"


def test_replay_keyed_per_namespace_and_issuer(hosts) -> None:
    cache = hosts.replay()
    cache.check_and_store("token", "A", "j1", exp=NOW + 30, now=NOW)
    cache.check_and_store("previous_steps", "A", "j1", exp=NOW + 30, now=NOW)
    cache.check_and_store("token", "B", "j1", exp=NOW + 30, now=NOW)
    with pytest.raises(ReplayError):
        cache.check_and_store("previous_steps", "A", "j1", exp=NOW + 30, now=NOW)


def test_replay_kept_until_exp_plus_skew_then_reclaimed(hosts) -> None:
    cache = hosts.replay(skew=10)
    cache.check_and_store("token", "A", "j", exp=NOW + 30, now=NOW)
    with pytest.raises(ReplayError):
        cache.check_and_store("token", "A", "j", exp=NOW + 30, now=NOW + 39)
    cache.check_and_store("token", "A", "j", exp=NOW + 1030, now=NOW + 41)  # old entry expired
    with pytest.raises(ReplayError):
        cache.check_and_store("token", "A", "j", exp=NOW + 1030, now=NOW + 42)
    assert cache.purge(now=NOW + 5000) == 1
    assert cache.purge(now=NOW + 5000) == 0


def _race(caches: list, jti: str) -> list[str]:
    """Every cache submits `jti` at the same instant (a barrier); the outcomes."""
    barrier = threading.Barrier(len(caches))
    outcomes: list[str] = []

    def submit(cache) -> None:
        barrier.wait()
        try:
            cache.check_and_store("token", ABC, jti, exp=NOW + 30, now=NOW)
            outcomes.append("accepted")
        except ReplayError:
            outcomes.append("refused")

    threads = [threading.Thread(target=submit, args=(c,)) for c in caches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return outcomes


def test_replay_same_jti_at_once_on_many_connections_one_wins(hosts) -> None:
    """Eight connections submit the same jti at the same instant: exactly one is accepted."""
    caches = [hosts.replay() for _ in range(8)]
    for round_ in range(5):
        assert sorted(_race(caches, f"race-{round_}")) == ["accepted"] + ["refused"] * 7


def _replay_worker(backend: str, where: str, schema: str, count: int, results) -> None:
    if backend == "sqlite":
        cache = ReplayCache(where)
    else:
        cache = PostgresReplayCache(PgState(PgSettings(where, schema=schema)))
    ok = 0
    for i in range(count):
        try:
            cache.check_and_store("token", "A", f"j{i}", exp=1e12, now=1000)
            ok += 1
        except ReplayError:
            pass
    results.put(ok)


def test_replay_two_processes_each_jti_accepted_once(hosts) -> None:
    cache = hosts.replay()  # creates the table / schema
    where = str(hosts.tmp / "replay.sqlite") if hosts.pg is None else hosts.pg.dsn
    schema = hosts.pg.schema if hosts.pg else ""
    assert cache is not None
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_replay_worker, args=(hosts.backend, where, schema, 300, results))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert sum(results.get(timeout=5) for _ in procs) == 300


# --- token keys --------------------------------------------------------------------------------


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_keys_one_key_for_both_hosts_and_tokens_verify_across(hosts) -> None:
    clock = Clock(NOW)
    one, two = hosts.keys(clock=clock), hosts.keys(clock=clock)
    kid1, key1 = one.signing_key()
    kid2, _ = two.signing_key()
    assert kid1 == kid2 == thumbprint(key1.public_key())
    issued = AccessTokenIssuer(OWNER, keys=one).issue(ABC, "iSHARE", now=NOW)
    header = parse_compact(issued.access_token)[0]
    assert header == {"alg": "RS256", "typ": "at+jwt", "kid": kid1}
    claims = AccessTokenVerifier(OWNER, keys=two, clock=clock).verify(issued.access_token)
    assert claims.party_id == ABC


def test_keys_rotation_keeps_old_key_for_its_tokens_then_drops_it(hosts) -> None:
    clock = Clock(NOW)
    one = hosts.keys(rotate_after=1000, token_lifetime=3600, clock=clock)
    two = hosts.keys(rotate_after=1000, token_lifetime=3600, clock=clock)
    old = AccessTokenIssuer(OWNER, keys=one).issue(ABC, "iSHARE", now=NOW)
    old_kid = parse_compact(old.access_token)[0]["kid"]
    clock.t = NOW + 1000  # due: the next issue rotates
    new = AccessTokenIssuer(OWNER, keys=two).issue(ABC, "iSHARE", now=clock.t)
    new_kid = parse_compact(new.access_token)[0]["kid"]
    assert new_kid != old_kid
    assert one.signing_key()[0] == new_kid  # the first host follows the rotation
    verifier = AccessTokenVerifier(OWNER, keys=hosts.keys(clock=clock), clock=clock)
    assert verifier.verify(old.access_token).party_id == ABC  # still within its lifetime
    assert verifier.verify(new.access_token).party_id == ABC
    assert [k["kid"] for k in one.jwks()["keys"]] == [new_kid, old_kid]
    clock.t = NOW + 1000 + 3600 + RETAIN_MARGIN  # every token of the old key has expired
    assert [k["kid"] for k in two.jwks()["keys"]] == [new_kid]
    clock.t += 1000  # the next rotation deletes it
    newest = two.signing_key()[0]
    fresh = hosts.keys(clock=clock)
    assert fresh.public_key(old_kid) is None and fresh.public_key(new_kid) is not None
    assert newest not in (old_kid, new_kid)


def test_keys_simultaneous_rotation_agrees_on_one_key(hosts) -> None:
    clock = Clock(NOW)
    stores = [hosts.keys(rotate_after=100, clock=clock) for _ in range(4)]
    stores[0].signing_key()
    clock.t = NOW + 100
    barrier = threading.Barrier(len(stores))
    kids: list[str] = []

    def rotate(store) -> None:
        barrier.wait()
        kids.append(store.signing_key()[0])

    threads = [threading.Thread(target=rotate, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(kids) == 4 and len(set(kids)) == 1


def test_keys_jwks_is_a_jwk_set(hosts) -> None:
    store = hosts.keys()
    kid, key = store.signing_key()
    (jwk,) = store.jwks()["keys"]
    assert set(jwk) == {"kty", "n", "e", "kid", "use", "alg"}
    assert (jwk["kid"], jwk["alg"], jwk["use"], jwk["kty"]) == (kid, "RS256", "sig", "RSA")
    n = key.public_key().public_numbers().n
    assert jwk["n"] == b64url_encode(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def test_keyed_verifier_refuses_unknown_kid_and_kidless_tokens(hosts) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    store = hosts.keys()
    verifier = AccessTokenVerifier(OWNER, keys=store)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kidless = AccessTokenIssuer(OWNER, stranger).issue(ABC, "iSHARE")
    with pytest.raises(InvalidToken) as e:
        verifier.verify(kidless.access_token)
    assert e.value.check == "token_header"
    foreign_store = SqliteTokenKeys(hosts.tmp / "elsewhere.sqlite")
    foreign = AccessTokenIssuer(OWNER, keys=foreign_store).issue(ABC, "iSHARE")
    with pytest.raises(InvalidToken) as e:
        verifier.verify(foreign.access_token)
    assert e.value.check == "token_kid"
    for bad_kid in ("x" * 42, "x" * 44, "../" + "x" * 40, 7):
        header = b64url_encode(
            f'{{"alg":"RS256","typ":"at+jwt","kid":{bad_kid!r}}}'.replace("'", '"').encode()
        )
        payload, sig = foreign.access_token.split(".")[1:]
        with pytest.raises(InvalidToken) as e:
            verifier.verify(f"{header}.{payload}.{sig}")
        assert e.value.check == "token_header"
    # a token naming our kid but signed by another key fails on the signature
    kid = store.signing_key()[0]
    header, payload, _sig = foreign.access_token.split(".")
    forged_header = b64url_encode(b'{"alg":"RS256","typ":"at+jwt","kid":"' + kid.encode() + b'"}')
    with pytest.raises(InvalidToken) as e:
        verifier.verify(f"{forged_header}.{payload}.{_sig}")
    assert e.value.check == "token_signature"


# --- policies ----------------------------------------------------------------------------------


def test_policy_grant_and_revoke_apply_on_the_other_host_at_once(hosts) -> None:
    one, two = hosts.policies(), hosts.policies()
    v0 = two.version()
    pid = one.grant(ABC, dataset="ifc")
    assert two.version() != v0
    (policy,) = two.list(subject=ABC)
    assert policy.id == pid and policy.issuer == OWNER
    resource = policy.evidence["policySets"][0]["policies"][0]["target"]["resource"]
    assert resource == {"type": DSGO_DATASET, "identifiers": [f"{BASE}/dataset/ifc"]}
    assert [p.id for p in two.involving(ABC)] == [pid]
    v1 = two.version()
    two.revoke(pid)
    assert one.version() != v1 and one.list() == []
    with pytest.raises(PolicyNotFound):
        one.get(pid)
    with pytest.raises(PolicyNotFound):
        one.revoke(pid)


def test_policy_list_order_and_filters(hosts) -> None:
    store = hosts.policies()
    ids = [store.grant(ABC, dataset=f"d{i}") for i in range(5)]
    other = store.grant("EU.EORI.NL000000002", dataset="x")
    assert [p.id for p in store.list(subject=ABC)] == ids
    assert [p.id for p in store.list(issuer=OWNER)] == [*ids, other]
    assert store.list(subject=ABC, issuer="EU.EORI.NL000000009") == []
    assert [p.id for p in store.involving(OWNER)] == [*ids, other]


def test_policy_bad_grant_changes_nothing(hosts) -> None:
    store = hosts.policies()
    v = store.version()
    with pytest.raises(Exception) as e:
        store.grant(ABC, dataset="Bad Name")
    assert "invalid dataset name" in str(e.value)
    assert store.version() == v and store.list() == []


# --- registry ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def party_cert():
    ca = create_dev_ca("State Test CA")
    return ca, issue_party_certificate(ca, ABC, "ABC").certificate


def test_registry_status_change_seen_by_the_other_host(hosts, party_cert) -> None:
    ca, cert = party_cert
    one, two = hosts.registry(), hosts.registry()
    one.add_party(ABC, "ABC Trucking", certificates=[cert])
    party = two.get_party(ABC)
    assert party is not None and party.adherence.status == "Active" and party.has_certificate(cert)
    assert [p.party_id for p in two.find_parties(active_only=True)] == [ABC]
    one.set_status(ABC, "Revoked")
    assert two.get_party(ABC).adherence.status == "Revoked"
    assert two.find_parties(active_only=True) == []
    assert two.get_party("EU.EORI.NL000000009") is None
    with pytest.raises(NotFound):
        two.set_status("EU.EORI.NL000000009", "Active")


def test_registry_find_and_trusted_list(hosts, party_cert) -> None:
    ca, _ = party_cert
    reg = hosts.registry()
    for pid, name in [("EU.EORI.NL000000002", "Beta"), (ABC, "Alpha"), (OWNER, "Gamma")]:
        reg.add_party(pid, name, also_known_as=["did:web:alpha.example"] if pid == ABC else [])
    assert [p.party_id for p in reg.find_parties()] == sorted([ABC, OWNER, "EU.EORI.NL000000002"])
    # the alsoKnownAs filter (iSHARE 3.0 /parties) on both backends
    assert [p.party_id for p in reg.find_parties(also_known_as="did:web:alpha.example")] == [ABC]
    assert reg.find_parties(also_known_as="did:web:nobody.example") == []
    assert [p.name for p in reg.find_parties(name="*a")] == ["Alpha", "Beta", "Gamma"]
    assert [p.party_id for p in reg.find_parties(party_id="*03")] == [OWNER]
    entry = reg.add_trusted_ca(ca.root_cert)
    assert hosts.registry().trusted_list() == [entry]
    reg.set_trusted_ca_status(entry.certificate_fingerprint, "revoked", "invalid")
    (changed,) = hosts.registry().trusted_list()
    assert (changed.status, changed.validity, changed.usable) == ("revoked", "invalid", False)
    with pytest.raises(NotFound):
        reg.set_trusted_ca_status("00" * 32, "granted", "valid")
    with pytest.raises(InvalidRequest):
        reg.add_party(ABC, "Alpha", status="Sleeping")
    with pytest.raises(InvalidRequest):
        reg.add_trusted_ca()


# --- PostgreSQL only: migrations, failures as 503 ----------------------------------------------


def test_migrations_are_idempotent_and_in_one_schema(pg_url) -> None:
    import psycopg

    import trust.pg as pg

    settings = PgSettings(pg_url, schema="migrtest")
    assert PgState(settings).migrate() == 1
    pg._migrated.clear()  # as a second host starting: the steps run again, and change nothing
    assert PgState(settings).migrate() == 1
    with psycopg.connect(pg_url) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'migrtest'"
            )
        }
        versions = conn.execute("SELECT version FROM migrtest.schema_migrations").fetchall()
    assert tables == {
        "schema_migrations",
        "seen_jti",
        "token_keys",
        "policies",
        "policy_meta",
        "party",
        "trusted_ca",
    }
    assert versions == [(1,)]


def test_audit_store_lands_in_the_state_schema(pg_url) -> None:
    import psycopg

    from trust.audit import AuditEvent, AuditLog
    from trust.audit_store import open_audit_store

    settings = PgSettings(pg_url, schema="audtest")
    PgState(settings).migrate()
    log = AuditLog(open_audit_store(settings.conninfo()), checkpoint_every=None)
    log.append(AuditEvent(kind="query", party=ABC))
    with psycopg.connect(pg_url) as conn:
        (count,) = conn.execute("SELECT count(*) FROM audtest.audit_log").fetchone()
        timeout = psycopg.connect(settings.conninfo()).execute("SHOW statement_timeout").fetchone()
    assert count == 1 and timeout == ("5s",)


def test_unreachable_database_is_503_not_a_hang() -> None:
    with pytest.raises(StateUnavailable) as e:
        PostgresReplayCache(
            PgState(PgSettings(f"postgresql://postgres@127.0.0.1:{_closed_port()}/postgres"))
        )
    assert e.value.error == "temporarily_unavailable" and "postgresql://" not in e.value.description


def test_a_locked_row_fails_the_statement_instead_of_waiting(pg_url) -> None:
    import psycopg

    settings = PgSettings(pg_url, schema="locktest", statement_timeout=0.3)
    store = PostgresPolicyStore(PgState(settings), issuer=OWNER, base_iri=BASE)
    with psycopg.connect(pg_url) as holder:
        holder.execute("SELECT value FROM locktest.policy_meta FOR UPDATE")  # opens a transaction
        with pytest.raises(StateUnavailable) as e:
            store.grant(ABC, dataset="ifc")
        assert e.value.error == "temporarily_unavailable"
    assert store.list() == []  # the failed grant left nothing behind
    store.grant(ABC, dataset="ifc")  # and the store reconnects
    assert len(store.list()) == 1


def test_a_busy_pool_is_a_503_after_the_statement_timeout(pg_url) -> None:
    state = PgState(PgSettings(pg_url, schema="pooltest", statement_timeout=0.2, pool_size=1))
    with state.transaction() as conn:  # holds the only connection
        conn.execute("SELECT 1")
        with pytest.raises(StateUnavailable) as e:
            state.run(lambda c: c.execute("SELECT 1").fetchone())
        assert e.value.check == "state_pool" and e.value.error == "temporarily_unavailable"
    assert state.run(lambda c: c.execute("SELECT 2").fetchone()) == (2,)  # handed back


def _terminate(pg_url: str, pids: list[int]) -> None:
    """End these backends as a server restart would, and wait until they are gone."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(200):
            (left,) = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
            ).fetchone()
            if left == 0:
                return
            time.sleep(0.01)
    raise AssertionError(f"backends {pids} did not end")


def test_connections_the_server_ended_while_idle_are_not_reused(pg_url) -> None:
    """After a restart every pooled connection is dead; no caller sees that, all reconnect."""
    state = PgState(PgSettings(pg_url, schema="brokentest", pool_size=4))
    held: list[Any] = []
    with contextlib.ExitStack() as stack:  # fill the pool: four idle connections
        for _ in range(4):
            held.append(stack.enter_context(state._lease()).info.backend_pid)
    _terminate(pg_url, held)
    after = [state.run(lambda c: c.info.backend_pid) for _ in range(4)]
    assert not set(after) & set(held)


def test_a_connection_broken_during_a_call_is_a_503_and_replaced(pg_url) -> None:
    import psycopg

    state = PgState(PgSettings(pg_url, schema="brokentest", pool_size=1))
    pid = state.run(lambda c: c.info.backend_pid)

    def killed_mid_call(conn: Any) -> Any:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        return conn.execute("SELECT pg_sleep(5)").fetchone()

    with pytest.raises(StateUnavailable) as e:
        state.run(killed_mid_call)
    assert e.value.error == "temporarily_unavailable"
    assert state.run(lambda c: c.info.backend_pid) != pid


def test_the_audit_store_reconnects_when_the_server_ended_its_session(pg_url) -> None:
    from trust.audit import AuditEvent, AuditLog
    from trust.audit_store import open_audit_store

    settings = PgSettings(pg_url, schema="audreconnect")
    PgState(settings).migrate()
    store = open_audit_store(settings.conninfo())
    log = AuditLog(store, checkpoint_every=None)
    log.append(AuditEvent(kind="query", party=ABC))
    _terminate(pg_url, [store._conn.info.backend_pid])
    log.append(AuditEvent(kind="query", party=ABC))  # no error: a fresh session
    assert [r.seq for r in store.rows()] == [1, 2]
    assert store.breaker.state().ok


def test_bad_schema_names_are_refused() -> None:
    for bad in ("Dsgo", "a-b", "x;drop", ""):
        with pytest.raises(ValueError):
            PgSettings("postgresql://h/db", schema=bad)
    with pytest.raises(ValueError):
        PgSettings("mysql://h/db")
    with pytest.raises(ValueError):
        PgSettings("postgresql://h/db", pool_size=0)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
