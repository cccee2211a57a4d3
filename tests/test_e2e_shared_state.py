"""Two hosts of one party share all trust state through one PostgreSQL: they behave as one node.

Real processes: a PostgreSQL cluster (initdb/pg_ctl), one `oxigraph serve` store, and two
`dsgo serve` hosts for the same party (the registry-role owner; host 2 with two worker
processes), with separate data directories and `state.backend = "postgresql"`. A guest
party reads; a third party is revoked.
Nothing here goes through a proxy: the test talks to each host directly, as a proxy would.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from nodeproc import (
    ProcessGroup,
    base_of,
    dsgo,
    edit_config,
    free_port,
    init_node,
    init_owner_and_guest,
    sparql_backend,
    trust_client,
)

from tests import pgproc
from trust.ishare_jwt import parse_compact

OWNER = "EU.EORI.NL000000001"
GUEST = "EU.EORI.NL000000002"
DELTA = "EU.EORI.NL000000004"  # registered, later revoked on host 1
DATA = '@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n<building/b1> rdfs:label "B1" .\n'
RESOURCE = "/id/building/b1"


@dataclass
class Cluster:
    owner_config: Path  # host 1
    host2_config: Path
    hosts: dict[int, str]  # 1, 2 -> base URL of that host's process
    guest_config: Path
    delta_config: Path
    pg_url: str
    pg: pgproc.Postgres
    imported_policies: tuple[str, str]  # (granted, revoked) on the SQLite node before the move

    def form(self, config: Path) -> dict[str, str]:
        """A fresh client-assertion form for a token of the owner's party, as `config`'s party."""
        client = trust_client(config)
        try:
            return client.token_form(OWNER)
        finally:
            client.close()

    def token_request(self, host: int, form: dict[str, str]) -> httpx.Response:
        return httpx.post(f"{self.hosts[host]}/connect/token", data=form, timeout=30)

    def token(self, host: int, config: Path) -> str:
        resp = self.token_request(host, self.form(config))
        assert resp.status_code == 200, resp.text
        return resp.json()["access_token"]

    def get(self, host: int, token: str, path: str = RESOURCE) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/turtle"}
        return httpx.get(f"{self.hosts[host]}{path}", headers=headers, timeout=30)


@pytest.fixture(scope="module")
def cluster(
    module_procs: ProcessGroup, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    reason = pgproc.available()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("shared-state")
    with pgproc.postgres() as pg:
        pg_url = pg.url
        engine = module_procs.oxigraph(root / "oxigraph", free_port())
        port1, port2 = free_port(), free_port()
        owner_config, guest_config = init_owner_and_guest(root, OWNER, GUEST, port1)
        delta_config = init_node(
            root / "delta",
            DELTA,
            "Delta",
            free_port(),
            ca=root / "owner" / "keys" / "dev-ca",
            registry_url=f"http://127.0.0.1:{port1}",
            registry_id=OWNER,
        )
        dsgo(
            *("registry", "add", "--config", owner_config, "--party-id", DELTA, "--name", "Delta"),
            *("--cert", delta_config.parent / "keys" / "node.cert.pem"),
        )
        kept = dsgo("policy", "grant", "--config", owner_config, "--to", DELTA, "--dataset", "d1")
        gone = dsgo("policy", "grant", "--config", owner_config, "--to", DELTA, "--dataset", "d2")
        dsgo("policy", "revoke", "--config", owner_config, gone.stdout.strip())
        # Host 1 grows into two hosts: shared state in PostgreSQL, the store in oxigraph serve.
        state = {"backend": "postgresql", "dsn": pg_url, "statement_timeout": 5}
        edit_config(owner_config, {"state": state, "store": sparql_backend(engine.base_url)})
        imported = dsgo("state", "import", "--config", owner_config).stdout
        assert "imported 3 parties, 1 trusted CAs, 2 policies" in imported, imported
        host2_dir = root / "owner-host2"  # same party, same public base IRI, own data directory
        shutil.copytree(owner_config.parent, host2_dir, ignore=shutil.ignore_patterns("data"))
        host2_config = host2_dir / "node.toml"
        data = root / "b.ttl"
        data.write_text(DATA, encoding="utf-8")
        dsgo("load", data, "--dataset", "bim", "--config", owner_config)
        h1 = module_procs.serve(owner_config, port1, name="host1")
        # host 2 also runs two worker processes: three processes share the state
        h2 = module_procs.serve(host2_config, port2, env={"DSGO_SERVER_WORKERS": "2"}, name="host2")
        children = Path(f"/proc/{h2.popen.pid}/task/{h2.popen.pid}/children")
        assert len(children.read_text().split()) >= 2, "host 2 should run two workers"
        assert base_of(host2_config) == base_of(owner_config) == h1.base_url
        assert not (host2_dir / "data" / "policies.sqlite").exists()
        yield Cluster(
            owner_config,
            host2_config,
            {1: h1.base_url, 2: h2.base_url},
            guest_config,
            delta_config,
            pg_url,
            pg,
            (kept.stdout.strip(), gone.stdout.strip()),
        )
        module_procs.stop_all()  # before the database goes away


def test_client_assertion_used_at_host1_is_refused_at_host2(cluster: Cluster) -> None:
    form = cluster.form(cluster.guest_config)
    assert cluster.token_request(1, form).status_code == 200
    again = cluster.token_request(2, form)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_client"
    assert "jti_replayed" in again.json()["error_description"]


def test_same_assertion_at_both_hosts_at_once_is_accepted_once(cluster: Cluster) -> None:
    """20 assertions, each sent to host 1 and host 2 at the same instant: one 200 each."""
    for _ in range(20):
        form = cluster.form(cluster.guest_config)
        barrier = threading.Barrier(2)
        statuses: dict[int, int] = {}

        def send(
            host: int, form: dict[str, str] = form, barrier=barrier, statuses=statuses
        ) -> None:
            barrier.wait()
            statuses[host] = cluster.token_request(host, form).status_code

        threads = [threading.Thread(target=send, args=(h,)) for h in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(statuses.values()) == [200, 400], statuses


def test_tokens_of_either_host_are_accepted_by_the_other(cluster: Cluster) -> None:
    t1, t2 = cluster.token(1, cluster.guest_config), cluster.token(2, cluster.guest_config)
    for token, other in ((t1, 2), (t2, 1)):
        resp = cluster.get(other, token)
        assert resp.status_code == 403, resp.text  # authenticated (not 401), but no grant yet
        assert resp.json()["error"] == "access_denied"
    kid = parse_compact(t1)[0]["kid"]
    assert parse_compact(t2)[0]["kid"] == kid
    for host in (1, 2):
        jwks = httpx.get(f"{cluster.hosts[host]}/.well-known/jwks.json").json()
        assert kid in [k["kid"] for k in jwks["keys"]]
    forged = t1[:-8] + ("AAAAAAAA" if not t1.endswith("AAAAAAAA") else "BBBBBBBB")
    assert cluster.get(2, forged).status_code == 401


def test_grant_on_host1_applies_on_host2_at_once_and_so_does_its_revocation(
    cluster: Cluster,
) -> None:
    owner_token = cluster.token(1, cluster.owner_config)
    guest_at_2 = cluster.token(2, cluster.guest_config)
    assert cluster.get(2, guest_at_2).status_code == 403
    created = httpx.post(
        f"{cluster.hosts[1]}/delegation/policies",
        json={"grant": {"to": GUEST, "dataset": "bim"}},
        headers={"Authorization": f"Bearer {owner_token}"},
    )
    assert created.status_code in (200, 201), created.text
    policy_id = created.json()["id"]
    resp = cluster.get(2, guest_at_2)  # the very next request at the other host
    assert resp.status_code == 200, resp.text
    assert '"B1"' in resp.text
    listed = httpx.get(
        f"{cluster.hosts[2]}/delegation/policies",
        headers={"Authorization": f"Bearer {owner_token}"},  # host 1's token, at host 2
    )
    assert policy_id in listed.text
    revoked = httpx.delete(
        f"{cluster.hosts[1]}/delegation/policies/{policy_id}",
        headers={"Authorization": f"Bearer {owner_token}"},
    )
    assert revoked.status_code in (200, 204), revoked.text
    assert cluster.get(2, guest_at_2).status_code == 403


def test_party_revoked_on_host1_gets_no_token_from_host2(cluster: Cluster) -> None:
    assert cluster.token_request(2, cluster.form(cluster.delta_config)).status_code == 200
    dsgo("registry", "status", DELTA, "Revoked", "--config", cluster.owner_config)
    for host in (2, 1):
        refused = cluster.token_request(host, cluster.form(cluster.delta_config))
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "invalid_client"
    listed = dsgo("registry", "list", "--config", cluster.host2_config).stdout
    assert f"{DELTA}\tRevoked" in listed


def test_both_hosts_write_one_audit_chain(cluster: Cluster) -> None:
    """The audit log is in the same schema: one hash chain with the decisions of both hosts."""
    import psycopg

    with psycopg.connect(cluster.pg_url) as conn:
        kinds = {r[0] for r in conn.execute("SELECT DISTINCT kind FROM dsgo.audit_log")}
        (count,) = conn.execute("SELECT count(*) FROM dsgo.audit_log").fetchone()
    assert {"token_issued", "token_refused"} <= kinds and count > 40
    report = dsgo("audit", "verify", "--config", cluster.host2_config).stdout
    verified = re.match(r"audit log intact: (\d+) entries", report)
    assert verified and int(verified.group(1)) >= count, report


def test_import_moved_the_policies_under_their_ids_and_is_idempotent(cluster: Cluster) -> None:
    granted, revoked = cluster.imported_policies
    listed = dsgo("policy", "list", "--config", cluster.host2_config, "--to", DELTA).stdout
    assert granted in listed and revoked not in listed
    again = dsgo("state", "import", "--config", cluster.owner_config).stdout
    assert "imported 3 parties, 1 trusted CAs, 0 policies (2 already there)" in again, again
    sqlite = cluster.host2_config.parent / "data" / "policies.sqlite"
    assert not sqlite.exists()  # host 2 never had a policy file of its own


def test_import_needs_the_shared_backend(cluster: Cluster) -> None:
    proc = dsgo("state", "import", "--config", cluster.guest_config, check=False)
    assert proc.returncode != 0 and "state.backend" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_state_settings_stop_start_up_with_one_line(cluster: Cluster) -> None:
    for key, value in (
        ("dsn", f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"),
        ("dsn", "mysql://somewhere/db"),
        ("backend", "mongodb"),
        ("schema", "Bad-Name"),
        ("statement_timeout", 0),
        ("key_rotation", 10),
    ):
        config = cluster.host2_config.parent / "bad.toml"  # identity paths resolve as for host 2
        shutil.copy(cluster.host2_config, config)
        edit_config(config, {"state": {key: value}})
        for argv in (("policy", "list"), ("serve",)):
            proc = dsgo(*argv, "--config", config, check=False, timeout=60)
            assert proc.returncode != 0, proc.stdout
            assert "Traceback" not in proc.stderr and f"state.{key}" in proc.stderr, proc.stderr


def test_init_writes_the_shared_state_and_store_settings(cluster: Cluster, tmp_path: Path) -> None:
    """`dsgo init --state-dsn --oxigraph-url`: a registry node whose own record is in PostgreSQL."""
    import psycopg

    with psycopg.connect(cluster.pg_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE init_test")
    dsn = cluster.pg_url.rsplit("/", 1)[0] + "/init_test"
    party = "EU.EORI.NL000000009"
    oxigraph = "http://127.0.0.1:1"  # only written into the file here
    args = ("--party-id", party, "--state-dsn", dsn, "--oxigraph-url", oxigraph)
    dsgo("init", tmp_path / "n", *args, "--roles", "node,registry")
    config = tmp_path / "n" / "node.toml"
    from node.config import load_settings

    settings = load_settings(config)
    assert (settings.state_backend, settings.state_dsn) == ("postgresql", dsn)
    assert (settings.store_backend, settings.sparql_query_url) == ("sparql", f"{oxigraph}/query")
    assert settings.audit_backend == "postgresql"
    listed = dsgo("registry", "list", "--config", config).stdout
    assert f"{party}\tActive" in listed
    assert not (tmp_path / "n" / "data" / "registry.sqlite").exists()
    bad = dsgo("init", tmp_path / "m", "--state-dsn", "mysql://x/y", check=False)
    assert bad.returncode != 0 and "--state-dsn" in bad.stderr and "Traceback" not in bad.stderr


def test_database_down_is_a_json_503_and_the_hosts_recover(cluster: Cluster) -> None:
    """Last in the module: PostgreSQL stops; both hosts answer 503 JSON, then carry on."""
    guest = cluster.token(2, cluster.guest_config)
    cluster.pg.stop()
    try:
        for host in (1, 2):
            refused = cluster.token_request(host, cluster.form(cluster.guest_config))
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"] in ("temporarily_unavailable", "audit_unavailable")
            resp = cluster.get(host, guest)
            assert resp.status_code == 503, resp.text
            assert resp.json()["error"]
            assert httpx.get(f"{cluster.hosts[host]}/healthz").status_code == 200
    finally:
        cluster.pg.start()
    for host in (1, 2):
        # Recovery takes a breaker cool-down (1 s) and fresh connections: seconds, not one call.
        deadline = time.monotonic() + 30
        status = 0
        while time.monotonic() < deadline:
            status = cluster.token_request(host, cluster.form(cluster.guest_config)).status_code
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200, f"host {host} did not recover within 30 s"
        assert cluster.get(host, guest).status_code == 403  # the policies answer again
