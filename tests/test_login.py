"""People log in at a real node through the real development OpenID Provider (oidc-provider),
and every way in that should not work is refused with nothing changed."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from loginflow import BUILDER, RENOVATOR, LoginNode, Person, start_login_node
from nodeproc import ProcessGroup, free_port

from node.config import ConfigError, load_settings
from node.login.devop import DevOp, DevUser, client_entry, write_config
from node.login.oidc import LoginFailed, RelyingParty
from node.runtime import load_identity

pytestmark = pytest.mark.timeout(300)
GRANT = {"grant": {"to": RENOVATOR, "dataset": "bim"}}


@pytest.fixture(scope="module")
def node(module_procs: ProcessGroup, tmp_path_factory: pytest.TempPathFactory) -> LoginNode:
    return start_login_node(module_procs, tmp_path_factory.mktemp("login"))


@pytest.fixture
def person(node: LoginNode) -> Iterator[Person]:
    p = Person(node.base)
    yield p
    p.close()


def _policies(node: LoginNode) -> list:
    """The node's policies, read as a steward would (a fresh session)."""
    steward = Person(node.base)
    try:
        steward.login("steward")
        resp = steward.http.get(f"{node.base}/delegation/policies")
        assert resp.status_code == 200, resp.text
        return resp.json()
    finally:
        steward.close()


def _refused_without_session(p: Person) -> None:
    me = p.me()
    assert me.status_code == 401, me.text
    assert p.http.get(f"{p.node}/audit/entries").status_code == 401


# --- the way that works ----------------------------------------------------------------------


def test_login_makes_a_session_the_enforcement_point_sees(node: LoginNode, person: Person) -> None:
    resp = person.login("rita", next_path="/catalog")
    assert resp.headers["location"] == "/catalog"
    cookie = next(c for c in resp.headers.get_list("set-cookie") if "dsgo_session_" in c)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    me = person.me().json()
    assert me["party_id"] == RENOVATOR and me["person"] == "dev:rita"
    assert me["name"] == "Rita Jansen" and me["role"] is None
    # The same routes answer the session as a token: the catalog, as the renovator's party.
    assert person.http.get(f"{node.base}/catalog").status_code == 200
    page = person.http.get(f"{node.base}/login", headers={"Accept": "text/html"})
    assert "Rita Jansen" in page.text and RENOVATOR in page.text


def test_steward_changes_policies_and_the_audit_names_the_person(node: LoginNode) -> None:
    steward, auditor = Person(node.base), Person(node.base)
    try:
        steward.login("steward")
        created = steward.http.post(
            f"{node.base}/delegation/policies", json=GRANT, headers={"X-CSRF-Token": steward.csrf()}
        )
        assert created.status_code == 201, created.text
        pid = created.json()["id"]
        revoked = steward.http.delete(
            f"{node.base}/delegation/policies/{pid}", headers={"X-CSRF-Token": steward.csrf()}
        )
        assert revoked.status_code == 204
        auditor.login("auditor")
        entries = auditor.http.get(f"{node.base}/audit/entries").json()["entries"]
        admin = [e for e in entries if e["kind"] == "admin" and e["action"] == "create_policy"]
        assert admin and admin[-1]["person"] == "dev:steward" and admin[-1]["party"] == BUILDER
        assert admin[-1]["detail"]["role"] == "steward"
        logins = [e for e in entries if e["kind"] == "login" and e["person"] == "dev:auditor"]
        assert logins and logins[-1]["party"] == BUILDER
        reads = [e for e in entries if e["kind"] == "permit" and e["person"] == "dev:auditor"]
        assert reads, "the auditor's own read of the log names the auditor"
    finally:
        steward.close()
        auditor.close()


def test_form_post_with_csrf_field_and_logout(node: LoginNode, person: Person) -> None:
    person.login("rita")
    before = node.sessions()
    resp = person.http.post(f"{node.base}/logout", data={"csrf_token": person.csrf()})
    assert resp.status_code == 303 and resp.headers["location"] == "/login"
    assert node.sessions() == before - 1
    _refused_without_session(person)
    audit = _auditor_entries(node)
    assert any(e["kind"] == "logout" and e["person"] == "dev:rita" for e in audit)


def _auditor_entries(node: LoginNode) -> list[dict]:
    auditor = Person(node.base)
    try:
        auditor.login("auditor")
        return auditor.http.get(f"{node.base}/audit/entries").json()["entries"]
    finally:
        auditor.close()


def test_next_is_never_another_site(node: LoginNode, person: Person) -> None:
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        assert person.login("rita", next_path=evil).headers["location"] == "/"


# --- refused: state, nonce, code, provider -----------------------------------------------------


def test_wrong_state_is_refused(node: LoginNode, person: Person) -> None:
    callback = person.to_callback("rita")
    before = node.sessions()
    resp = person.finish(callback.with_params(state="not-the-state"))
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_state"
    # the real callback, in another browser (no binding cookie): refused too
    other = Person(node.base)
    try:
        resp = other.finish(callback)
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_state"
        _refused_without_session(other)
    finally:
        other.close()
    assert node.sessions() == before
    _refused_without_session(person)


def test_wrong_nonce_is_refused(node: LoginNode, person: Person) -> None:
    start = person.start()
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    changed = start.headers["location"].replace(query["nonce"][0], "a-nonce-of-my-own")
    before = node.sessions()
    resp = person.finish(person.at_provider(changed, "rita"))
    assert resp.status_code == 400 and resp.json()["error"] == "nonce_mismatch"
    assert node.sessions() == before
    _refused_without_session(person)


def test_replayed_code_is_refused(node: LoginNode, person: Person) -> None:
    callback = person.to_callback("rita")
    assert person.finish(callback).status_code == 303
    person.http.post(f"{node.base}/logout", headers={"X-CSRF-Token": person.csrf()})
    before = node.sessions()
    # the same callback again: its state is used up
    again = person.finish(callback)
    assert again.status_code == 400 and again.json()["error"] == "invalid_state"
    # the old code with a fresh state of this browser: the provider refuses the used code
    fresh = parse_qs(urlsplit(person.start().headers["location"]).query)["state"][0]
    replay = person.finish(callback.with_params(state=fresh))
    assert replay.status_code == 400 and replay.json()["error"] == "code_rejected"
    assert node.sessions() == before
    _refused_without_session(person)


def test_untrusted_provider_is_refused(node: LoginNode, tmp_path: Path) -> None:
    """A second provider, not in node.toml, that knows the node as a client and says its user
    is the builder's steward: neither its callback nor its ID token is accepted."""
    settings = load_settings(node.config)
    identity = load_identity(settings)
    port = free_port()
    config = tmp_path / "rogue.json"
    write_config(
        config,
        port,
        [client_entry(settings.base_iri, BUILDER, identity)],
        [DevUser("mallory", "Mallory", BUILDER, "Builder", ("steward",))],
    )
    policies = len(_policies(node))
    with DevOp(config, tmp_path / "rogue.log") as rogue:
        person = Person(node.base)
        try:
            start = person.start()
            at_rogue = start.headers["location"].replace(node.op.issuer, rogue.issuer)  # type: ignore[attr-defined]
            callback = person.at_provider(at_rogue, "mallory")
            before = node.sessions()
            resp = person.finish(callback)
            assert resp.status_code == 400 and resp.json()["error"] == "issuer_mismatch"
            # without the iss parameter, the code goes to the configured provider, which refuses it
            state = parse_qs(urlsplit(person.start().headers["location"]).query)["state"][0]
            params = {k: v for k, v in callback.params.items() if k != "iss"}
            params["state"] = state
            url = f"{node.base}/login/callback?" + str(httpx.QueryParams(params))
            resp = person.finish(url)
            assert resp.status_code == 400 and resp.json()["error"] == "code_rejected"
            assert node.sessions() == before
            _refused_without_session(person)
        finally:
            person.close()
        # an ID token the rogue provider signed, handed to the node's check for its provider
        rogue_token = _id_token_from(rogue.issuer, settings, identity, "mallory")
        provider = settings.login.providers[0]
        rp = RelyingParty(provider, identity, f"{settings.base_iri}/login/callback", lambda u: None)
        with pytest.raises(LoginFailed) as refused:
            rp.validate_id_token(rogue_token, "n")
        assert refused.value.code in ("id_token_signature", "id_token_issuer")
    assert len(_policies(node)) == policies


def _id_token_from(issuer: str, settings, identity, username: str) -> str:
    """Log in at `issuer` as the node would and keep the ID token it signs."""
    from node.login.config import ProviderConfig

    provider = ProviderConfig(
        name="rogue",
        issuer=issuer,
        client_id=BUILDER,
        discovery=f"{issuer}/.well-known/openid-configuration",
        scopes=("openid", "profile", "dsgo"),
    )
    redirect = f"{settings.base_iri}/login/callback"
    tokens: dict[str, str] = {}
    rp = RelyingParty(provider, identity, redirect, lambda u: None)
    original = rp.validate_id_token

    def keep(token: str, nonce: str) -> dict:
        tokens["id_token"] = token
        return original(token, nonce)

    rp.validate_id_token = keep  # type: ignore[method-assign]
    from node.login.oidc import pkce_pair

    verifier, challenge = pkce_pair()
    browser = Person(settings.base_iri)
    try:
        callback = browser.at_provider(rp.authorization_url("s", "n", challenge), username)
        rp.redeem(callback.params["code"], verifier, "n")
    finally:
        browser.close()
    return tokens["id_token"]


# --- refused: sessions and forms ---------------------------------------------------------------


def test_tampered_session_cookie_is_refused_and_cleared(node: LoginNode, person: Person) -> None:
    person.login("steward")
    name = next(c for c in person.http.cookies if c.startswith("dsgo_session_"))
    value = person.http.cookies[name]
    sid, _, mac = value.rpartition(".")
    policies = len(_policies(node))
    for forged in (sid[:-1] + ("A" if sid[-1] != "A" else "B") + "." + mac, sid + ".", "junk"):
        attacker = httpx.Client(timeout=10, cookies={name: forged})
        try:
            resp = attacker.get(f"{node.base}/audit/entries")
            assert resp.status_code == 401
            assert "invalid_session" in resp.json()["error_description"]
            assert any(f"{name}=;" in c for c in resp.headers.get_list("set-cookie"))
            post = attacker.post(
                f"{node.base}/delegation/policies",
                json=GRANT,
                headers={"X-CSRF-Token": person.csrf()},
            )
            assert post.status_code == 401
        finally:
            attacker.close()
    assert len(_policies(node)) == policies


def test_missing_or_wrong_csrf_token_is_refused(node: LoginNode, person: Person) -> None:
    person.login("steward")
    policies = len(_policies(node))
    url = f"{node.base}/delegation/policies"
    for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": ""}):
        resp = person.http.post(url, json=GRANT, headers=headers)
        assert resp.status_code == 403 and resp.json()["error"] == "csrf_refused", resp.text
    form = person.http.post(url, data={"grant": json.dumps(GRANT)})
    assert form.status_code == 403 and form.json()["error"] == "csrf_refused"
    wrong_field = person.http.post(url, data={"csrf_token": "nope"})
    assert wrong_field.status_code == 403
    multipart = person.http.post(url, files={"f": ("a.txt", b"x")}, data={"csrf_token": "nope"})
    assert multipart.status_code == 403
    logout = person.http.post(f"{node.base}/logout")
    assert logout.status_code == 403
    assert person.me().status_code == 200, "a refused logout leaves the session as it was"
    assert len(_policies(node)) == policies
    sparql = person.http.post(f"{node.base}/sparql", data={"query": "ASK {}"})
    assert sparql.status_code == 403, "a form POST to /sparql from a session needs the token"
    ok = person.http.post(
        f"{node.base}/sparql", data={"query": "ASK {}", "csrf_token": person.csrf()}
    )
    assert ok.status_code == 200, ok.text


def test_expired_session_is_refused(node: LoginNode) -> None:
    settings = load_settings(node.config)
    for column, past in (
        ("last_seen", settings.login.session_idle_seconds + 5),
        ("created", settings.login.session_max_seconds + 5),
    ):
        person = Person(node.base)
        try:
            person.login("steward")
            assert person.me().status_code == 200
            node.backdate(column, past)
            before = node.sessions()
            resp = person.http.get(f"{node.base}/audit/entries")
            assert resp.status_code == 401
            assert "session_expired" in resp.json()["error_description"]
            assert node.sessions() < before, "an expired session is removed"
            post = person.http.post(f"{node.base}/delegation/policies", json=GRANT)
            assert post.status_code == 401
            page = person.http.get(f"{node.base}/login")
            assert "expired" in page.text or person.me().status_code == 401
        finally:
            person.close()


def test_other_partys_person_cannot_use_the_stewards_forms(node: LoginNode, person: Person) -> None:
    person.login("rita")  # the renovator's employee at the builder's node
    policies = len(_policies(node))
    csrf = {"X-CSRF-Token": person.csrf()}
    resp = person.http.post(f"{node.base}/delegation/policies", json=GRANT, headers=csrf)
    assert resp.status_code == 403 and resp.json()["error"] == "insufficient_scope"
    assert person.http.get(f"{node.base}/delegation/policies").status_code == 403
    assert person.http.get(f"{node.base}/audit/entries").status_code == 403
    assert person.http.delete(f"{node.base}/admin/datasets/bim", headers=csrf).status_code == 403
    # the builder's own auditor is staff, but not a steward
    auditor = Person(node.base)
    try:
        auditor.login("auditor")
        resp = auditor.http.post(
            f"{node.base}/delegation/policies", json=GRANT, headers={"X-CSRF-Token": auditor.csrf()}
        )
        assert resp.status_code == 403 and resp.json()["error"] == "insufficient_role", resp.text
    finally:
        auditor.close()
    assert len(_policies(node)) == policies
    denies = [e for e in _auditor_entries(node) if e["kind"] == "deny" and e["person"]]
    assert {"dev:rita", "dev:auditor"} <= {e["person"] for e in denies}


def test_people_without_a_party_or_role_get_no_session(node: LoginNode, person: Person) -> None:
    before = node.sessions()
    for user, code in (("nora", "no_party"), ("otto", "no_role")):
        browser = Person(node.base)
        try:
            resp = browser.finish(browser.to_callback(user))
            assert resp.status_code == 403 and resp.json()["error"] == code, resp.text
            _refused_without_session(browser)
        finally:
            browser.close()
    assert node.sessions() == before


def test_bad_requests_to_the_login_routes(node: LoginNode, person: Person) -> None:
    resp = person.start(provider="nope")
    assert resp.status_code == 400 and resp.json()["error"] == "unknown_provider"
    resp = person.http.get(f"{node.base}/login/callback")
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_state"
    resp = person.http.get(f"{node.base}/login/callback?error=access_denied&state=x")
    assert resp.status_code == 400
    page = person.http.get(f"{node.base}/login/callback", headers={"Accept": "text/html"})
    assert page.status_code == 400 and "invalid_state" in page.text
    resp = person.http.get(f"{node.base}/catalog", headers={"Authorization": "DSGO-Session x"})
    assert resp.status_code == 400
    described = person.http.get(f"{node.base}/openapi.json").json()["paths"]
    assert {"/login", "/login/start", "/login/callback", "/logout", "/login/me"} <= set(described)
    jwks = person.http.get(f"{node.base}/login/jwks").json()
    assert jwks["keys"][0]["kty"] == "RSA" and "d" not in jwks["keys"][0]


def test_login_config_errors_name_the_key(tmp_path: Path, node: LoginNode) -> None:
    text = node.config.read_text(encoding="utf-8")
    cases = {
        'algorithms = ["none"]': "algorithms",
        'algorithms = ["HS256"]': "algorithms",
        'issuer = "ftp://x"': "issuer",
        'colour = "red"': "unknown key",
        'scopes = ["profile"]': "openid",
        'profile = "saml"': "profile",
    }
    for line, needle in cases.items():
        bad = tmp_path / "node.toml"
        key = line.split(" = ")[0]
        body = (
            "\n".join(ln for ln in text.splitlines() if not ln.startswith(f"{key} ="))
            + f"\n{line}\n"
        )
        bad.write_text(body)
        with pytest.raises(ConfigError) as err:
            load_settings(bad)
        assert needle in str(err.value) and "login.providers[" in str(err.value)


def test_ishare_profile_signs_the_request_object(node: LoginNode) -> None:
    """profile = "ishare": the authorisation request is a signed request object the provider
    verifies with the node's registered key; a forged one is refused by the provider."""
    person = Person(node.base)
    try:
        start = person.start(provider="dev-ishare")
        query = parse_qs(urlsplit(start.headers["location"]).query)
        assert set(query) == {"response_type", "client_id", "scope", "request"}
        assert "iSHARE" in query["scope"][0].split()
        header, claims, _ = (part + "==" for part in query["request"][0].split("."))
        decoded = json.loads(base64.urlsafe_b64decode(claims))
        assert decoded["code_challenge_method"] == "S256" and decoded["iss"] == BUILDER
        assert json.loads(base64.urlsafe_b64decode(header))["x5c"]
        resp = person.finish(person.at_provider(start.headers["location"], "rita"))
        assert resp.status_code == 303, resp.text
        assert person.me().json()["party_id"] == RENOVATOR
    finally:
        person.close()
    forger = Person(node.base)
    try:
        start = forger.start(provider="dev-ishare")
        location = start.headers["location"]
        request = parse_qs(urlsplit(location).query)["request"][0]
        head, body, sig = request.split(".")
        forged = location.replace(sig, ("A" if sig[0] != "A" else "B") + sig[1:])
        before = node.sessions()
        resp = forger.http.get(forged)
        while resp.status_code in (302, 303) and not resp.headers["location"].startswith(
            f"{node.base}/login/callback"
        ):
            resp = forger.http.get(resp.headers["location"])
        if resp.status_code in (302, 303):  # the provider sends the error back to the node
            resp = forger.finish(resp.headers["location"])
            assert resp.status_code == 403 and resp.json()["error"] == "provider_error"
        else:
            assert resp.status_code == 400
        assert node.sessions() == before
        _refused_without_session(forger)
    finally:
        forger.close()


def test_reads_and_queries_in_a_session_name_the_person(node: LoginNode, tmp_path: Path) -> None:
    from nodeproc import dsgo

    data = tmp_path / "demo.ttl"
    wall = f"{node.base}/id/demo/wall/1"
    data.write_text(f'<{wall}> <http://www.w3.org/2000/01/rdf-schema#label> "Wall 1" .\n')
    dsgo("load", data, "--dataset", "demo", "--config", node.config)
    steward, rita = Person(node.base), Person(node.base)
    try:
        steward.login("steward")
        grant = {"grant": {"to": RENOVATOR, "dataset": "demo"}}
        created = steward.http.post(
            f"{node.base}/delegation/policies", json=grant, headers={"X-CSRF-Token": steward.csrf()}
        )
        assert created.status_code == 201, created.text
        rita.login("rita")
        resp = rita.http.get(wall, headers={"Accept": "text/turtle"})
        assert resp.status_code == 200 and "Wall 1" in resp.text
        query = rita.http.post(
            f"{node.base}/sparql",
            data={"query": "SELECT ?l WHERE { ?s ?p ?l }", "csrf_token": rita.csrf()},
            headers={"Accept": "application/sparql-results+json"},
        )
        assert query.status_code == 200 and "Wall 1" in query.text
        steward.http.delete(
            f"{node.base}/delegation/policies/{created.json()['id']}",
            headers={"X-CSRF-Token": steward.csrf()},
        )
    finally:
        steward.close()
        rita.close()
    entries = _auditor_entries(node)
    read = [e for e in entries if e["kind"] == "permit" and e["target"] == wall]
    assert read and read[-1]["person"] == "dev:rita" and read[-1]["party"] == RENOVATOR
    queries = [e for e in entries if e["kind"] == "query" and e["party"] == RENOVATOR]
    assert queries and queries[-1]["person"] == "dev:rita"


def test_cli_errors_are_one_line(tmp_path: Path, node: LoginNode) -> None:
    from nodeproc import dsgo

    missing = dsgo("dev-op", tmp_path / "nope.json", check=False)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert "nope.json" in missing.stderr and "--dev-login" in missing.stderr
    bad = tmp_path / "node.toml"
    bad.write_text(
        node.config.read_text(encoding="utf-8")
        + '\n[[login.people]]\nprovider = "dev"\nsubject = "x"\n'
        + f'party_id = "{BUILDER}"\nrole = "admin"\n'
    )
    refused = dsgo("datasets", "--config", bad, check=False)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "login.people[0].role" in refused.stderr


def test_the_stewards_page_works_with_a_session(node: LoginNode) -> None:
    """The pages (node/web) take the session like a token; their forms carry its CSRF token."""
    steward, rita = Person(node.base), Person(node.base)
    try:
        steward.login("steward")
        page = steward.http.get(f"{node.base}/ui/policies", headers={"Accept": "text/html"})
        assert page.status_code == 200, page.text[:300]
        assert f'name="csrf_token" value="{steward.csrf()}"' in page.text
        before = len(_policies(node))
        form = {"party": RENOVATOR, "target": "dataset", "dataset": "*"}
        refused = steward.http.post(f"{node.base}/ui/policies/grant", data=form)
        assert refused.status_code == 403 and len(_policies(node)) == before
        done = steward.http.post(
            f"{node.base}/ui/policies/grant", data={**form, "csrf_token": steward.csrf()}
        )
        assert done.status_code == 303, done.text[:300]
        assert len(_policies(node)) == before + 1
        rita.login("rita")
        other = rita.http.get(f"{node.base}/ui/policies", headers={"Accept": "text/html"})
        assert other.status_code == 403
    finally:
        steward.close()
        rita.close()
