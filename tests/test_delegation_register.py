"""Authorisation register role: access rule, previous_steps, signed evidence, external evidence."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import pytest

from trust.authorization_register import (
    AssertionPairError,
    AuthorizationRegister,
    EvidenceError,
    ForeignEvidence,
    NoPolicy,
    NotEntitled,
    PreviousStepsError,
    verify_external_evidence,
)
from trust.delegation import InvalidMask
from trust.ishare_jwt import (
    create_client_assertion,
    create_signed_response,
    verify_signed_response,
)
from trust.pki import create_dev_ca, issue_party_certificate
from trust.policy_store import PolicyStore
from trust.registry import AuthRegistry, Registry

DATA = Path(__file__).parent / "data" / "delegation"
BASE = "http://127.0.0.1:8101"
ABC = "EU.EORI.NL000000001"  # consumer
AWESOME = "EU.EORI.NL000000002"  # service provider asking on ABC's behalf
W13 = "EU.EORI.NL000000003"  # data owner, runs this register
AR = "EU.EORI.NL000000004"  # an external authorisation register
BANANA = "EU.EORI.NL000000005"
NOW = 1_800_000_000.0
AT = dt.datetime.fromtimestamp(NOW - 86400 * 30, dt.UTC)


def load(name: str) -> dict:
    text = (DATA / name).read_text(encoding="utf-8")
    return json.loads("\n".join(x for x in text.splitlines() if not x.lstrip().startswith("//")))


@pytest.fixture(scope="module")
def pki():
    ca = create_dev_ca(now=AT)
    ids = {
        pid: issue_party_certificate(ca, pid, name, now=AT)
        for pid, name in [
            (ABC, "ABC"),
            (AWESOME, "Awesome"),
            (W13, "W13"),
            (AR, "AR"),
            (BANANA, "B"),
        ]
    }
    rogue_ca = create_dev_ca("Rogue", now=AT)
    rogue = issue_party_certificate(rogue_ca, AR, "Fake AR", now=AT)
    return ca, ids, rogue


@pytest.fixture()
def registry(tmp_path, pki) -> Registry:
    _, ids, _ = pki
    reg = Registry(tmp_path / "registry.db")
    reg.add_party(ABC, "ABC", certificates=[ids[ABC].certificate], start_date=AT)
    reg.add_party(AWESOME, "Awesome", certificates=[ids[AWESOME].certificate], start_date=AT)
    reg.add_party(
        AR,
        "AR",
        certificates=[ids[AR].certificate],
        roles=["AuthorisationRegistry"],
        start_date=AT,
    )
    reg.add_party(BANANA, "B", certificates=[ids[BANANA].certificate], start_date=AT)
    return reg


@pytest.fixture()
def policies(tmp_path) -> PolicyStore:
    return PolicyStore(tmp_path / "p.db", issuer=W13, base_iri=BASE, clock=lambda: NOW)


@pytest.fixture()
def register(pki, policies, registry) -> AuthorizationRegister:
    ca, ids, _ = pki
    return AuthorizationRegister(
        ids[W13],
        policies,
        trusted_sha256={ca.root_fingerprint},
        directory=registry,
        clock=lambda: NOW,
    )


def case2(policies: PolicyStore, mask_name: str) -> dict:
    doc = load("case2_policy.json")["delegationEvidence"]
    doc.update(notBefore=int(NOW) - 100, notOnOrAfter=int(NOW) + 100)
    policies.add(doc)
    return load(mask_name)


def test_subject_gets_signed_permit_and_deny(register, policies, pki) -> None:
    ca, _, _ = pki
    permit = register.delegation(case2(policies, "case2_mask2.json"), ABC)
    deny = register.delegation(load("case2_mask1.json"), ABC)
    assert (permit.effect, deny.effect) == ("Permit", "Deny")
    verified = verify_signed_response(
        permit.token,
        claim="delegationEvidence",
        issuer=W13,
        audience=ABC,
        trusted_sha256={ca.root_fingerprint},
        now=NOW,
    )
    assert verified.claims["delegationEvidence"] == permit.evidence["delegationEvidence"]


def test_issuer_may_ask(register, policies) -> None:
    assert register.delegation(case2(policies, "case2_mask2.json"), W13).effect == "Permit"


def test_third_party_without_previous_steps_is_refused(register, policies) -> None:
    mask = case2(policies, "case2_mask2.json")
    with pytest.raises(NotEntitled) as info:
        register.delegation(mask, AWESOME)
    assert info.value.error == "access_denied"


def test_sp_with_consumer_assertion_in_previous_steps(register, policies, pki) -> None:
    _, ids, _ = pki
    mask = case2(policies, "case2_mask2.json")
    step = create_client_assertion(ids[ABC], AWESOME, now=NOW)
    mask["previous_steps"] = [step]
    answer = register.delegation(mask, AWESOME)
    assert answer.effect == "Permit"
    inner = copy.deepcopy(mask)
    inner["delegationRequest"]["previous_steps"] = inner.pop("previous_steps")
    assert register.delegation(inner, AWESOME).effect == "Permit"


@pytest.mark.parametrize(
    ("make_step", "error"),
    [
        # assertion of another party than the access subject
        (
            lambda ids, rogue: create_client_assertion(ids[BANANA], AWESOME, now=NOW),
            AssertionPairError,
        ),
        # addressed to someone else than the requesting SP
        (lambda ids, rogue: create_client_assertion(ids[ABC], W13, now=NOW), PreviousStepsError),
        # expired (iat + 30 s long past)
        (
            lambda ids, rogue: create_client_assertion(ids[ABC], AWESOME, now=NOW - 120),
            PreviousStepsError,
        ),
        # certificate from an untrusted CA
        (lambda ids, rogue: create_client_assertion(rogue, AWESOME, now=NOW), PreviousStepsError),
        # garbage
        (lambda ids, rogue: "not.a.jwt", PreviousStepsError),
    ],
)
def test_bad_previous_steps_are_refused(register, policies, pki, make_step, error) -> None:
    _, ids, rogue = pki
    mask = case2(policies, "case2_mask2.json")
    mask["previous_steps"] = [make_step(ids, rogue)]
    with pytest.raises(error):
        register.delegation(mask, AWESOME)


def test_previous_step_of_inactive_consumer_is_refused(register, policies, pki, registry) -> None:
    _, ids, _ = pki
    registry.add_party(
        ABC, "ABC", certificates=[ids[ABC].certificate], status="Revoked", start_date=AT
    )
    mask = case2(policies, "case2_mask2.json")
    mask["previous_steps"] = [create_client_assertion(ids[ABC], AWESOME, now=NOW)]
    with pytest.raises(PreviousStepsError):
        register.delegation(mask, AWESOME)


def test_unknown_pair_is_404_and_malformed_is_400(register) -> None:
    with pytest.raises(NoPolicy) as info:
        register.delegation(load("case1_mask.json"), ABC)
    assert info.value.error == "not_found"
    with pytest.raises(InvalidMask):
        register.delegation({"policyIssuer": W13}, ABC)
    with pytest.raises(InvalidMask):
        register.delegation({**load("case1_mask.json"), "previous_steps": "x"}, W13)


# --- evidence from an external register --------------------------------------------------------


def _evidence(subject: str = ABC, window=(NOW - 10, NOW + 10)) -> dict:
    return {
        "notBefore": int(window[0]),
        "notOnOrAfter": int(window[1]),
        "policyIssuer": W13,
        "target": {"accessSubject": subject},
        "policySets": [
            {
                "maxDelegationDepth": 0,
                "target": {"environment": {"licenses": ["ISHARE.0001"]}},
                "policies": [
                    {
                        "target": {
                            "resource": {
                                "type": "https://w3id.org/dsgo-node/def#Dataset",
                                "identifiers": [f"{BASE}/dataset/ifc"],
                            },
                            "actions": ["ISHARE.READ"],
                        },
                        "rules": [{"effect": "Permit"}],
                    }
                ],
            }
        ],
    }


def _verify(token, registry, pki, caller=ABC):
    ca, _, _ = pki
    return verify_external_evidence(
        token,
        caller=caller,
        audiences=[caller, W13],
        trusted_sha256={ca.root_fingerprint},
        directory=registry,
        now=NOW,
    )


def test_external_evidence_accepted(registry, pki) -> None:
    _, ids, _ = pki
    token = create_signed_response(ids[AR], "delegationEvidence", _evidence(), ABC, now=NOW)
    policy = _verify(token, registry, pki)
    assert policy.subject == ABC and policy.issuer == W13 and policy.active(NOW)


@pytest.mark.parametrize(
    "make",
    [
        # signed by a registered party that is not an Authorisation Registry
        lambda ids, rogue: create_signed_response(
            ids[BANANA], "delegationEvidence", _evidence(), ABC, now=NOW
        ),
        # not registered at all
        lambda ids, rogue: create_signed_response(
            ids[W13], "delegationEvidence", _evidence(), ABC, now=NOW
        ),
        # the AR's id with a certificate from an untrusted CA
        lambda ids, rogue: create_signed_response(
            rogue, "delegationEvidence", _evidence(), ABC, now=NOW
        ),
        # evidence about another party
        lambda ids, rogue: create_signed_response(
            ids[AR], "delegationEvidence", _evidence(BANANA), ABC, now=NOW
        ),
        # evidence outside its window
        lambda ids, rogue: create_signed_response(
            ids[AR], "delegationEvidence", _evidence(window=(NOW - 100, NOW - 1)), ABC, now=NOW
        ),
        # JWT expired
        lambda ids, rogue: create_signed_response(
            ids[AR], "delegationEvidence", _evidence(), ABC, now=NOW - 300
        ),
        # addressed to another party
        lambda ids, rogue: create_signed_response(
            ids[AR], "delegationEvidence", _evidence(), BANANA, now=NOW
        ),
        # a different signed response kind
        lambda ids, rogue: create_signed_response(ids[AR], "party_info", _evidence(), ABC, now=NOW),
        # malformed evidence
        lambda ids, rogue: create_signed_response(
            ids[AR], "delegationEvidence", {"x": 1}, ABC, now=NOW
        ),
    ],
)
def test_external_evidence_rejections(registry, pki, make) -> None:
    _, ids, rogue = pki
    with pytest.raises(EvidenceError) as info:
        _verify(make(ids, rogue), registry, pki)
    assert info.value.error == "invalid_token"


def test_external_evidence_tampered_signature(registry, pki) -> None:
    _, ids, _ = pki
    token = create_signed_response(ids[AR], "delegationEvidence", _evidence(), ABC, now=NOW)
    head, payload, sig = token.split(".")
    other = create_signed_response(ids[AR], "delegationEvidence", _evidence(), ABC, now=NOW)
    forged = ".".join([head, other.split(".")[1], sig])
    assert forged != token
    with pytest.raises(EvidenceError):
        _verify(forged, registry, pki)


# --- iSHARE 3.0: an authorisation register per service provider and service ------------------


def _owner_lists(registry: Registry, pki, register) -> None:
    _, ids, _ = pki
    registry.add_party(
        W13, "W13", certificates=[ids[W13].certificate], start_date=AT, auth_registries=[register]
    )


def _owner_evidence(registry, pki, **kw):
    ca, ids, _ = pki
    token = create_signed_response(ids[AR], "delegationEvidence", _evidence(), ABC, now=NOW)
    return verify_external_evidence(
        token,
        caller=ABC,
        audiences=[ABC, W13],
        trusted_sha256={ca.root_fingerprint},
        directory=registry,
        now=NOW,
        data_owner=W13,
        **kw,
    )


@pytest.mark.parametrize(
    "listed,kw,counts",
    [
        (AuthRegistry(AR), {}, True),  # the owner's register for everything
        (AuthRegistry(AR, service_provider=W13), {}, True),  # for its own service
        (AuthRegistry(AR, service_provider=W13, service="sparql"), {"service": "sparql"}, True),
        (AuthRegistry(AR, service_provider=W13, service="sparql"), {}, True),  # service unknown
        (AuthRegistry(AR, service_provider=AWESOME), {}, False),  # another provider's register
        (AuthRegistry(AR, service_provider=W13, service="sparql"), {"service": "catalog"}, False),
        (AuthRegistry(AR), {"service_provider": AWESOME}, True),
    ],
)
def test_register_per_service_provider_and_service(registry, pki, listed, kw, counts) -> None:
    _owner_lists(registry, pki, listed)
    if counts:
        assert _owner_evidence(registry, pki, **kw).subject == ABC
    else:
        with pytest.raises(ForeignEvidence, match="not an authorisation register"):
            _owner_evidence(registry, pki, **kw)
